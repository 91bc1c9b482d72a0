import HopCorrelation
import HopHTTP

/// Every chain in a few numbers, for the HTML report's chain table (paginated in the page) and
/// its sequence diagrams drawn on demand: id, start, method, target, status, the client's time,
/// the time the proxy added, flags, and each hop's role and times. About 60 bytes a chain plus
/// its target; at most `limit` chains (the rest counted in `left`), so the page and the memory
/// stay bounded: 250,000 chains are about 20 MB of page (100,000: 8.1 MB, rendered in about half
/// a second by headless Chromium). Measured on 100,000 chains: `--format html` peaks at 146 MB
/// RSS against 112 MB for text, the rows and the page's text together.
public struct ChainRows: Sendable {
    public static let limit = 250_000

    public struct Flags: OptionSet, Sendable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let incomplete = Flags(rawValue: 1)
        public static let retried = Flags(rawValue: 2)
        public static let ambiguous = Flags(rawValue: 4)
        public static let serverError = Flags(rawValue: 8)
        public static let reset = Flags(rawValue: 16)
        public static let direct = Flags(rawValue: 32)
    }

    public private(set) var ids: [Int] = []
    /// Start of each chain's first request (ns since the epoch).
    public private(set) var starts: [Int64] = []
    public private(set) var methods: [Int32] = []
    public private(set) var targets: [Int32] = []
    /// 0: no response.
    public private(set) var statuses: [Int16] = []
    /// ns; -1: not known.
    public private(set) var clientTimes: [Int64] = []
    public private(set) var proxyAdded: [Int64] = []
    public private(set) var flags: [Flags] = []
    /// Per hop: role index, request start and response end relative to the chain's start (ns;
    /// -1 when not captured); `hopStart[i]..<hopStart[i+1]` are chain i's hops.
    public private(set) var hopRoles: [UInt8] = []
    public private(set) var hopTimes: [(Int64, Int64)] = []
    /// Per hop: the status of its response (0: none).
    public private(set) var hopStatuses: [Int16] = []
    public private(set) var hopStart: [Int] = [0]
    /// Strings by index (methods and targets), each kept once.
    public private(set) var strings: [String] = []
    private var stringIndex: [String: Int32] = [:]
    /// Chains past `limit`.
    public private(set) var left = 0

    public init() {}

    public var count: Int { ids.count }

    public mutating func add(_ c: RequestChain) {
        guard !c.hops.isEmpty else { return }
        guard ids.count < Self.limit else { left += 1; return }
        let t0 = TextReport.chainOrigin(c) ?? 0
        ids.append(c.id)
        starts.append(t0)
        methods.append(intern(c.shownMethod))
        targets.append(intern(c.shownTarget))
        statuses.append(Int16(clamping: c.status ?? 0))
        clientTimes.append(ProblemModel.clientTime(c) ?? -1)
        proxyAdded.append(c.proxyAddedNs ?? -1)
        var f: Flags = []
        if c.isIncomplete { f.insert(.incomplete) }
        if c.retries > 0 { f.insert(.retried) }
        if c.pairing != nil && (c.confidence * 1000).rounded() / 1000 < 0.9 { f.insert(.ambiguous) }
        if let s = c.status, s >= 500, s <= 599 { f.insert(.serverError) }
        if ProblemModel.wasReset(c) { f.insert(.reset) }
        if c.isDirect { f.insert(.direct) }
        flags.append(f)
        for i in c.hops.indices {
            let x = c.hops[i].exchange
            hopRoles.append(UInt8(c.hops[i].role.index))
            hopTimes.append((x.requestFirstTimestamp.map { $0 - t0 } ?? -1, x.responseLastTimestamp.map { $0 - t0 } ?? -1))
            hopStatuses.append(Int16(clamping: x.response?.status ?? 0))
        }
        hopStart.append(hopRoles.count)
    }

    /// A direct request handed over as its exchange (`Correlator.onPlainDirect`).
    public mutating func add(direct x: HTTPExchange, chainID: Int) {
        guard ids.count < Self.limit else { left += 1; return }
        let t0 = x.requestFirstTimestamp ?? x.response?.firstTimestamp ?? 0
        ids.append(chainID)
        starts.append(t0)
        methods.append(intern(x.request?.method ?? "?"))
        targets.append(intern(x.request?.target ?? "?"))
        statuses.append(Int16(clamping: x.response?.status ?? 0))
        clientTimes.append(x.request.flatMap { q in x.response.map { $0.lastTimestamp - q.firstTimestamp } } ?? -1)
        proxyAdded.append(-1)
        var f: Flags = [.direct]
        if let s = x.response?.status, s >= 500, s <= 599 { f.insert(.serverError) }
        if ProblemModel.wasReset(x) { f.insert(.reset) }
        flags.append(f)
        hopRoles.append(UInt8(HopRole.direct.index))
        hopTimes.append((x.request == nil ? -1 : 0, x.response.map { $0.lastTimestamp - t0 } ?? -1))
        hopStatuses.append(Int16(clamping: x.response?.status ?? 0))
        hopStart.append(hopRoles.count)
    }

    private mutating func intern(_ s: String) -> Int32 {
        if let i = stringIndex[s] { return i }
        let i = Int32(strings.count)
        strings.append(s)
        stringIndex[s] = i
        return i
    }
}
