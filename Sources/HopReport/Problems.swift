import HopCapture
import HopCorrelation
import HopFlows
import HopHTTP

/// What is wrong in a capture, to put first: for each kind of problem how many chains (or
/// copies, or responses) it touches and the worst few, with their chain ids.
///
/// Fed chain by chain as a report streams (`add(_:)`, like `LatencyModel`): memory is bounded
/// (`keep` items per kind, `slowCandidates` slow chains), whatever the capture's length. The
/// kinds the correlator finds at the end (unexplained duplicates, orphan responses) and the slow
/// outliers, which need every route's median, are added by `sections(_:)`.
public struct ProblemModel: Sendable {
    public enum Kind: String, CaseIterable, Sendable {
        /// Copies of a request no proxy hop explains (`DuplicateGroup`s that are not load).
        case unexplainedDuplicates = "unexplained-duplicates"
        /// Chains missing a hop the rules imply.
        case incomplete
        /// Chains whose proxy sent the request upstream more than once.
        case retries
        /// Chains whose client saw a 5xx status.
        case serverErrors = "5xx"
        /// Chains with a hop whose connection was reset before its response was complete.
        case resets
        /// Responses whose request is not in the capture.
        case orphans
        /// Chains whose client waited more than `slowFactor` times its route's median.
        case slow
        /// Chains paired among several equally possible candidates (confidence below 0.9).
        case ambiguous

        /// What a report calls the kind.
        public var title: String {
            switch self {
            case .unexplainedDuplicates: "unexplained duplicates"
            case .incomplete: "incomplete chains"
            case .retries: "retried"
            case .serverErrors: "5xx"
            case .resets: "reset"
            case .orphans: "orphan responses"
            case .slow: "slow outliers"
            case .ambiguous: "ambiguous pairings"
            }
        }

        /// What a count of the kind counts, in the singular and the plural.
        func unit(_ n: Int) -> String {
            switch self {
            case .unexplainedDuplicates: n == 1 ? "copy" : "copies"
            case .orphans: n == 1 ? "response" : "responses"
            default: n == 1 ? "chain" : "chains"
            }
        }

        /// What the kind means, said once under its title.
        public var meaning: String {
            switch self {
            case .unexplainedDuplicates: "copies no proxy hop explains"
            case .incomplete: "a hop the rules imply is not in the capture"
            case .retries: "the proxy sent the request upstream again"
            case .serverErrors: "the status the client saw"
            case .resets: "a connection reset before its response was complete"
            case .orphans: "their request is not in the capture"
            case .slow: "the client waited over \(Int(ProblemModel.slowFactor))× its route's median"
            case .ambiguous: "paired among identical requests in flight, confidence below 0.9"
            }
        }
    }

    /// One problem: the chains it names (none for an orphan response) and a line saying it.
    public struct Item: Sendable, Equatable {
        public var chainIDs: [Int]
        public var text: String
        /// Larger is worse (items are kept and listed worst first, ties by first seen).
        var rank: Int64
    }

    /// One kind: how many, and the worst `ProblemModel.keep` items.
    public struct Section: Sendable, Equatable {
        public var kind: Kind
        public var count: Int
        public var items: [Item]
        /// `12 chains`, `1 copy`, …
        public var countText: String { "\(count) \(kind.unit(count))" }
    }

    /// Items kept per kind.
    public static let keep = 5
    /// Slow chains kept as candidates until every route's median is known.
    static let slowCandidates = 256
    /// A chain is a slow outlier when its client waited more than this many times its route's median.
    public static let slowFactor = 10.0

    private var counts = [Int](repeating: 0, count: Kind.allCases.count)
    private var kept = [[Item]](repeating: [], count: Kind.allCases.count)
    /// The slowest chains seen: (client time, route, item).
    private var slowest: [(ns: Int64, route: String, item: Item)] = []

    public init() {}

    /// Counts a chain's problems.
    public mutating func add(_ c: RequestChain) {
        guard !c.hops.isEmpty else { return }
        let request = Request(id: c.id, method: c.shownMethod, target: c.shownTarget, status: c.status, client: Self.clientTime(c))
        if case .incomplete(let missing, _) = c.completeness {
            note(.incomplete, request, rank: -Int64(c.id), detail: "missing \(missing.rawValue)")
        }
        let retries = c.retries
        if retries > 0 {
            note(.retries, request, rank: Int64(retries) << 40 - Int64(c.id), detail: "\(retries) retr\(retries == 1 ? "y" : "ies")")
        }
        if Self.wasReset(c) { note(.resets, request, rank: -Int64(c.id), detail: nil) }
        if c.pairing != nil && (c.confidence * 1000).rounded() / 1000 < 0.9 {
            note(.ambiguous, request, rank: Int64((1 - c.confidence) * 1_000_000) << 20 - Int64(c.id),
                 detail: "confidence \(TextReport.format2(c.confidence))")
        }
        common(request, complete: !c.isIncomplete)
    }

    /// Counts the problems of a direct request handed over as its exchange (no chain made).
    public mutating func add(direct x: HTTPExchange, chainID: Int) {
        let client = x.request.flatMap { q in x.response.map { $0.lastTimestamp &- q.firstTimestamp } }
        let request = Request(id: chainID, method: x.request?.method, target: x.request?.target, status: x.response?.status, client: client)
        if Self.wasReset(x) { note(.resets, request, rank: -Int64(chainID), detail: nil) }
        common(request, complete: true)
    }

    /// What a problem line says of a request.
    struct Request {
        var id: Int
        var method: String?
        var target: String?
        var status: Int?
        var client: Int64?
    }

    /// The 5xx and the slow candidates: every request.
    private mutating func common(_ r: Request, complete: Bool) {
        if let s = r.status, s >= 500, s <= 599 { note(.serverErrors, r, rank: -Int64(r.id), detail: nil) }
        if let client = r.client, complete, slowest.count < Self.slowCandidates || client > slowest[slowest.count - 1].ns {
            let item = Item(chainIDs: [r.id], text: Self.describe(r, detail: nil), rank: client)
            let route = LatencyModel.route(method: r.method, target: r.target)
            let at = slowest.firstIndex { $0.ns < client } ?? slowest.count
            slowest.insert((client, route, item), at: at)
            if slowest.count > Self.slowCandidates { slowest.removeLast() }
        }
    }

    private mutating func note(_ kind: Kind, _ r: Request, rank: Int64, detail: String?) {
        let k = kind.index
        counts[k] += 1
        if kept[k].count == Self.keep, let last = kept[k].last, last.rank >= rank { return }
        let item = Item(chainIDs: [r.id], text: Self.describe(r, detail: detail), rank: rank)
        let at = kept[k].firstIndex { $0.rank < rank } ?? kept[k].count
        kept[k].insert(item, at: at)
        if kept[k].count > Self.keep { kept[k].removeLast() }
    }

    /// Every kind that has a problem, in `Kind`'s order, with what only the end of an analysis
    /// knows: the unexplained duplicates, the orphan responses and (from every route's median in
    /// `latency`) the slow outliers.
    public func sections(summary s: AnalysisSummary, duplicates: [DuplicateGroup], orphans: [Hop],
                         latency: LatencyModel) -> [Section] {
        var out: [Section] = []
        for kind in Kind.allCases {
            let k = kind.index
            switch kind {
            case .unexplainedDuplicates:
                let groups = duplicates.filter { !$0.isRepeatedStream }
                guard s.unexplainedDuplicates > 0 else { continue }
                let items = groups.sorted { $0.copies != $1.copies ? $0.copies > $1.copies : ($0.chainIDs.first ?? 0) < ($1.chainIDs.first ?? 0) }
                    .prefix(Self.keep).map { g in
                        Item(chainIDs: g.chainIDs, text: "\(g.method) \(Self.short(g.target)) ×\(g.copies) from \(g.client) to \(g.server)",
                             rank: Int64(g.copies))
                    }
                out.append(Section(kind: kind, count: s.unexplainedDuplicates, items: Array(items)))
            case .orphans:
                guard s.orphanResponses > 0 else { continue }
                let items = orphans.prefix(Self.keep).map { h in
                    Item(chainIDs: [], text: "\(h.exchange.client) → \(h.exchange.server) \(h.exchange.response.map { String($0.status) } ?? "?")",
                         rank: 0)
                }
                out.append(Section(kind: kind, count: s.orphanResponses, items: Array(items)))
            case .slow:
                let (count, items) = slowOutliers(latency)
                if count > 0 { out.append(Section(kind: kind, count: count, items: items)) }
            default:
                if counts[k] > 0 { out.append(Section(kind: kind, count: counts[k], items: kept[k])) }
            }
        }
        return out
    }

    /// The chains over `slowFactor` times their route's median client time: counted from each
    /// route's histogram, the worst (largest ratio) from the slowest chains kept.
    func slowOutliers(_ latency: LatencyModel) -> (Int, [Item]) {
        var threshold: [String: Int64] = [:]
        var count = 0
        for r in latency.routes {
            guard let median = r.group.percentile(.client, 50), median > 0 else { continue }
            let limit = Int64(Double(median) * Self.slowFactor)
            threshold[r.route] = limit
            count += r.group.countAbove(.client, limit)
        }
        let worst = slowest.compactMap { s -> (Double, Item)? in
            guard let t = threshold[s.route], s.ns > t else { return nil }
            var item = s.item
            item.text += " (\(Int(Double(s.ns) / Double(t) * Self.slowFactor))× the route's median)"
            return (Double(s.ns) / Double(t), item)
        }
        .sorted { $0.0 > $1.0 }
        .prefix(Self.keep).map(\.1)
        return (count, Array(worst))
    }

    /// Downstream request start to downstream response end (a direct chain's only hop).
    static func clientTime(_ c: RequestChain) -> Int64? {
        // None where the client's copy cannot be timed: an encrypted HTTP/2 connection's chain
        // (not a request: first data to the moment it was recognised), and a plaintext copy
        // alone whose client's copy is inside one (its time is the app's, as `LatencyModel`
        // counts it).
        if c.isEncryptedHTTP2Connection || c.timedByTheAppOnly { return nil }
        guard let s = c.hops[0].exchange.requestFirstTimestamp, let e = c.hops[0].exchange.responseLastTimestamp else { return nil }
        return e &- s
    }

    /// A hop whose connection was reset before its response was complete.
    static func wasReset(_ c: RequestChain) -> Bool {
        c.hops.indices.contains { wasReset(c.hops[$0].exchange) }
    }

    static func wasReset(_ x: HTTPExchange) -> Bool {
        guard case .reset? = x.connection.closeReason else { return false }
        if let t = x.tls { return t.responseFirstTimestamp == nil }
        return x.response == nil || x.flags.contains(.responseIncomplete)
    }

    /// `#812 POST /api/orders → 500, 4.10 ms`: what a problem line says of its request.
    static func describe(_ r: Request, detail: String?) -> String {
        var t = "#\(r.id) \(r.method ?? "?") \(short(r.target ?? "?")) → \(r.status.map(String.init) ?? "no response")"
        if let ns = r.client { t += ", \(Timestamp.duration(ns))" }
        if let detail { t += ", " + detail }
        return t
    }

    /// A target cut to 48 characters (`…` at the end).
    static func short(_ s: String) -> String {
        s.count <= 48 ? s : String(s.prefix(47)) + "…"
    }
}

extension ProblemModel.Kind {
    var index: Int { Self.allCases.firstIndex(of: self)! }
}

extension LatencyModel.Group {
    /// Samples of `m` above `value` (within the histogram's precision).
    public func countAbove(_ m: LatencyModel.Measure, _ value: Int64) -> Int {
        let h = histograms[m.index]
        var n: UInt64 = 0
        for v in h.recordedValues() where Int64(clamping: h.lowestEquivalentForValue(v.value)) > value {
            n += v.countAddedInThisIterationStep
        }
        return Int(n)
    }
}
