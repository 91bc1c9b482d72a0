import Foundation
import HopCapture
import HopCorrelation
import HopFlows
import HopHTTP
import HopReport

/// What an analysis is told besides its source.
public struct AnalysisSettings {
    public var rules: RuleSource.Resolved
    /// The pod's addresses; inferred from the capture when empty.
    public var podAddresses: Set<IPAddress> = []
    /// Slack for time nesting between capture points (ns).
    public var tolerance: Int64 = 200_000
    /// Identical direct requests closer than this are duplicates (ns; 0: off).
    public var duplicateWindow: Int64 = 1_000_000_000
    /// The BPF filter the capture was read with (the warnings look at it).
    public var filter: String?
    /// Stop after this many HTTP exchanges (everything then runs on one thread).
    public var exchangeLimit: Int?
    /// Body bytes kept from the start of each message (`HTTPConfiguration.bodyPrefixBytes`).
    public var bodyPrefixBytes: Int = 0

    public init(rules: RuleSource.Resolved) { self.rules = rules }

    var http: HTTPConfiguration {
        var c = HTTPConfiguration()
        c.bodyPrefixBytes = bodyPrefixBytes
        return c
    }

    var correlator: CorrelatorConfiguration {
        var c = CorrelatorConfiguration()
        c.rules = rules.selection
        c.podAddresses = podAddresses
        c.tolerance = tolerance
        c.duplicateWindow = duplicateWindow
        return c
    }
}

/// What the pairing thread is handed, in the order the analyzer made it: an exchange, or a TLS
/// connection that closed (the correlator then knows when an encrypted HTTP/2 connection
/// ended: copies after it did not travel in it).
enum PairingInput {
    case exchange(HTTPExchange)
    /// The connection and its last packet's time.
    case ended(ConnectionID, Int64)

    /// A TLS connection's end, from the analyzer's summary of it (nil for other kinds).
    init?(_ s: HTTPConnectionSummary) {
        guard s.kind == .tls else { return nil }
        self = .ended(s.connection.id, s.connection.lastTimestamp)
    }

    func feed(_ correlator: Correlator) {
        switch self {
        case .exchange(let x): correlator.add(x)
        case .ended(let id, let end): correlator.connectionEnded(id, at: end)
        }
    }
}

/// Where an analysis's chains go as they are made.
public enum ChainOutput {
    /// One JSON document (`analyze --format json`): chains streamed into it, the rest of the
    /// report written at the end.
    case jsonDocument(JSONWriter)
    /// One chain per line and a final summary line (`--format jsonl`).
    case jsonLines(JSONWriter, flushEachLine: Bool)
    /// Kept for a report rendered at the end (text, Mermaid, HTML): at most `limit` chains;
    /// with `aggregateDirect`, plain direct requests are only counted by method and target.
    case keep(limit: Int, aggregateDirect: Bool)
    /// Only the chains with these ids (`analyze --chain ID`); the rest are counted.
    case select(Set<Int>)
    /// What Mermaid and HTML show and no more (`DiagramKeep`): memory stays bounded whatever
    /// the capture; the rest is counted (`omitted`, direct requests by method and target).
    case diagrams
}

/// source → flows → HTTP → correlation → report, as `analyze` runs it.
///
/// A file: HTTP is parsed on the capture thread, the exchanges are paired on a second
/// thread, and json and jsonl are written on a third (hand-offs batched and bounded); the
/// output is the same as one thread's. Live (or with an exchange limit): one thread, each
/// exchange reported as it completes.
public enum Analysis {
    public struct Outcome {
        public var report: AnalysisReport
        public var result: PipelineResult
    }

    public static func run(source: PcapSource, sourceName: String, settings: AnalysisSettings, output: ChainOutput,
                           raw: ((RawPacket) -> Void)? = nil) -> Outcome {
        var chains: [RequestChain] = []
        // A pcapng file names its interfaces: chains streamed as json or jsonl say the names too.
        let names: InterfaceNameTable? = source.interfaces.isEmpty ? nil : InterfaceNameTable()
        var named = [Bool](repeating: false, count: 256)
        // What the end of the report says about every chain not kept is counted in `omitted`.
        var omitted = ChainTally()
        // The latency distributions, the problems and the timeline count every chain, whatever
        // the output keeps of it (`AnalysisReport.count`).
        var counted: AnalysisReport.Counted
        if case .diagrams = output { counted = .init(rows: true) } else { counted = .init() }
        var direct = DirectCounts()
        let document: JSONReport.DocumentWriter?
        if case .jsonDocument(let w) = output { document = JSONReport.DocumentWriter(w) } else { document = nil }
        document?.names = names
        var linesWriter: JSONReport.LinesWriter?
        let reportChain: (RequestChain) -> Void
        switch output {
        case .jsonLines(let writer, let flushEachLine):
            let lines = JSONReport.LinesWriter(writer)
            lines.names = names
            linesWriter = lines
            reportChain = { chain in
                counted.add(chain)
                lines.chain(chain)
                if flushEachLine { writer.flush() }
                omitted.add(chain)
            }
        case .jsonDocument:
            reportChain = { chain in
                counted.add(chain)
                document!.chain(chain)
                omitted.add(chain)
            }
        case .diagrams:
            var keep = DiagramKeep()
            reportChain = { chain in
                counted.add(chain)
                if keep.keeps(chain, kept: chains.count) {
                    chains.append(chain)
                } else {
                    omitted.add(chain)
                    if chain.isDirect { direct.count(method: chain.method ?? "?", target: chain.target ?? "?") }
                }
            }
        case .select(let ids):
            reportChain = { chain in
                counted.add(chain)
                if ids.contains(chain.id) { chains.append(chain) } else { omitted.add(chain) }
            }
        case .keep(let limit, let aggregateDirect):
            reportChain = { chain in
                counted.add(chain)
                if aggregateDirect && !chain.isMultiHop && !chain.isIncomplete && chain.firstRole == .direct {
                    direct.count(method: chain.method ?? "?", target: chain.target ?? "?")
                } else if chains.count < limit {
                    chains.append(chain)
                } else {
                    omitted.add(chain)
                }
            }
        }
        let threaded = !source.isLive && settings.exchangeLimit == nil
        var streaming = false
        switch output {
        case .keep, .diagrams, .select: break
        case .jsonDocument, .jsonLines: streaming = true
        }
        let writing = threaded && streaming ? HandOff<RequestChain>(batchSize: 64) { reportChain($0) } : nil
        let correlator = Correlator(configuration: settings.correlator) { chain in
            if let writing { writing.send(chain) } else { reportChain(chain) }
        }
        if case .keep(_, true) = output {
            correlator.onPlainDirect = { x, id in
                counted.add(direct: x, chainID: id)
                direct.count(method: x.request?.method ?? "?", target: x.request?.target ?? "?")
            }
        }
        let limit = settings.exchangeLimit ?? .max
        var exchanges = 0
        let pairing = threaded ? HandOff<PairingInput> { $0.feed(correlator) } : nil
        let http = HTTPAnalyzer(configuration: settings.http) { x in
            // With a limit, the exchanges completed when the read stops are not analyzed.
            guard exchanges < limit else { return }
            exchanges += 1
            if let pairing { pairing.send(.exchange(x)) } else { correlator.add(x) }
        }
        http.onConnectionSummary = { s in
            guard let end = PairingInput(s) else { return }
            if let pairing { pairing.send(end) } else { end.feed(correlator) }
        }
        // The capture thread notes the addresses packets left the host from; the analysis
        // thread reads them when it decides the pod's addresses.
        let local = LocalAddresses()
        correlator.localAddressSource = { local.snapshot() }
        let result = FlowPipeline.run(source: source, consumer: http, raw: raw, observe: { seg in
            if seg.direction == .outgoing { local.insert(seg.source.address) }
            if let names, let i = seg.interfaceIndex, i >= 0, i < 256, !named[Int(i)] {
                named[Int(i)] = true
                if let n = source.interfaceName(ordinal: i) { names.set(i, n) }
            }
        }, shouldStop: { exchanges >= limit })
        http.finish()
        pairing?.finish()
        // The pairing thread has ended: the correlator's last chains go from this thread.
        correlator.finish()
        writing?.finish()

        var report = AnalysisReport(
            source: sourceName, linkType: result.linkType, decode: result.decode, flows: result.flows, http: http.counters,
            correlator: correlator, rulesOrigin: RuleSource.origin(settings.rules, evidence: correlator.evidence),
            chains: chains, readError: result.readError?.description)
        report.interfaceNames = source.interfaceNames
        report.linkType = result.linkTypeName
        report.directCounts = direct.counts
        report.directOthers = direct.others
        report.orphanResponses = correlator.orphanResponses
        report.omitted = omitted
        report.latency = counted.latency
        report.problems = counted.problems
        report.timeline = counted.timeline
        report.chainRows = counted.rows ?? ChainRows()
        report.warnings = AnalysisWarnings.detect(correlator: correlator, flows: result.flows, http: http.counters,
                                                  linkType: result.linkType, filter: settings.filter,
                                                  interfaces: result.interfaceCount)
        switch output {
        case .jsonDocument(let writer):
            document!.finish(report)
            writer.flush()
        case .jsonLines(let writer, _):
            linesWriter!.finish(report)
            writer.flush()
        case .keep, .diagrams, .select:
            break
        }
        return Outcome(report: report, result: result)
    }

    /// The `analyze --format json` document of a capture file, as `check` and the lab compare
    /// it: `rules` a preset, a keyword or a path; `filter` a BPF expression.
    public static func document(capture: String, rules: String?, podIPs: [String], filter: String?) throws(InputError) -> [UInt8] {
        let spec = CaptureSpec(file: capture, filter: filter.flatMap { $0.isEmpty ? nil : $0 })
        let source = try spec.open()
        try CaptureSpec.requireSupported(source)
        var settings = AnalysisSettings(rules: try RuleSource(rules ?? "auto").resolve(live: false))
        settings.podAddresses = try AnalysisSettings.podAddresses(podIPs)
        settings.filter = spec.filter
        var bytes: [UInt8] = []
        let writer = JSONWriter(capacity: 1 << 16 + 8192, flushThreshold: 1 << 16) { bytes.append(contentsOf: $0) }
        _ = run(source: source, sourceName: capture, settings: settings, output: .jsonDocument(writer))
        return bytes
    }
}

/// Direct requests counted by method and target, in first-seen order. A load capture repeats
/// a few requests: the last few keys are compared before the table is hashed.
public struct DirectCounts {
    private struct Key: Hashable {
        var method: String
        var target: String
    }
    private var index: [Key: Int] = [:]
    private var keys: [Key] = []
    private var totals: [Int] = []
    private var recent: (Int, Int, Int, Int) = (-1, -1, -1, -1)

    public init() {}

    public mutating func count(method: String, target: String) {
        var r = recent
        let hit = withUnsafeBytes(of: &r) { slots -> Int in
            for i in slots.bindMemory(to: Int.self) where i >= 0 {
                if keys[i].target == target && keys[i].method == method { return i }
            }
            return -1
        }
        if hit >= 0 {
            totals[hit] += 1
            return
        }
        let key = Key(method: method, target: target)
        let i: Int
        if let known = index[key] {
            i = known
        } else if keys.count >= Self.maxKeys {
            others += 1
            return
        } else {
            i = keys.count
            index[key] = i
            keys.append(key)
            totals.append(0)
        }
        totals[i] += 1
        recent = (i, recent.0, recent.1, recent.2)
    }

    /// `METHOD target` and its count, in first-seen order.
    public var counts: [(String, Int)] { keys.indices.map { ("\(keys[$0].method) \(keys[$0].target)", totals[$0]) } }
    /// Requests whose `METHOD target` came after `maxKeys` others: counted, not named (the
    /// reports name the first eight; a capture of distinct targets must not grow the table).
    public private(set) var others = 0
    public static let maxKeys = 64
}

/// The chains `--format mermaid|html` keep: the first ones (the HTML table's rows) and, past
/// them, the first touched (drawn) and incomplete (listed) ones; the rest are counted.
public struct DiagramKeep {
    static let first = HTMLReport.Options().tableLimit
    static let touched = max(HTMLReport.Options().diagramLimit, MermaidReport.Options().chainLimit)
    static let incomplete = HTMLReport.Options().listLimit
    private var touchedKept = 0
    private var incompleteKept = 0

    public init() {}

    public mutating func keeps(_ chain: RequestChain, kept: Int) -> Bool {
        let keep = kept < Self.first || (!chain.isDirect && touchedKept < Self.touched)
            || (chain.isIncomplete && incompleteKept < Self.incomplete)
        if keep {
            if !chain.isDirect { touchedKept += 1 }
            if chain.isIncomplete { incompleteKept += 1 }
        }
        return keep
    }
}

/// Addresses seen leaving the host, shared between the capture and analysis threads.
public final class LocalAddresses: @unchecked Sendable {
    // @unchecked Sendable: every access holds `lock`.
    private var set = Set<IPAddress>()
    private var last: IPAddress?
    private let lock = NSLockish()

    public init() {}

    public func insert(_ a: IPAddress) {
        if a == last { return }  // the same few addresses over and over: skip the lock
        lock.lock()
        set.insert(a)
        lock.unlock()
        last = a
    }

    public func snapshot() -> [IPAddress] {
        lock.lock()
        defer { lock.unlock() }
        return Array(set)
    }
}
