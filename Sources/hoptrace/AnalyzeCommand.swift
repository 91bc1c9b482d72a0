import ArgumentParser
import Foundation
import HopCapture
import HopCorrelation
import HopFlows
import HopHTTP
import HopNetfilter
import HopReport

struct Analyze: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pair the copies of each request across proxy hops and explain why each exists.",
        discussion: """
        Reads a capture (a FILE, -r FILE, or live with -i), rebuilds every connection (joining \
        NAT-split halves), parses HTTP/1.x, gives every exchange a hop role \
        (inbound-intercepted, inbound-forwarded, outbound-redirected, outbound-forwarded, \
        direct), pairs the copies of one request into a chain by evidence (method, target, \
        Host, request ids, time nesting, status; optimal matching when many identical requests \
        are in flight), and explains each chain with the netfilter rule that made each copy.

        Rules: --rules istio-2018 (the seed article's), istio-current, a file of \
        iptables-save (or `iptables -t nat -S`) text, or auto (default): the capture's sidecar \
        traces pick a preset, none means no rules. The pod's addresses are inferred \
        (packets sent out of the host, NAT-split clients, the busiest address) unless \
        --pod-ip is given.

        With no FILE, analyzes the bundled capture of the seed scenario (the doubled HEAD).

        Examples:
          hoptrace analyze
          hoptrace analyze capture.pcap --rules istio-current --pod-ip 10.0.0.7
          hoptrace analyze capture.pcap --format html > report.html
        """)

    @Argument(help: ArgumentHelp("The capture to analyze (pcap or pcapng); the bundled seed capture when omitted.", valueName: "file"))
    var file: String?

    @OptionGroup var capture: CaptureOptions

    @Option(name: .long, help: ArgumentHelp("istio-2018, istio-current, auto, none, or a file of iptables-save / iptables -S text.", valueName: "rules"))
    var rules: String = "auto"

    @Option(name: .customLong("pod-ip"), help: ArgumentHelp("The pod's address (repeatable); inferred when omitted.", valueName: "ip"))
    var podIPs: [String] = []

    @Option(name: .long, help: "Output: text, json (one document), jsonl (one chain per line), mermaid, html.")
    var format: AnalyzeFormat = .text

    @Flag(name: .long, help: "Text: show every chain in full, including direct requests.")
    var all = false

    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Slack for time nesting between capture points, in ms.", valueName: "ms"))
    var tolerance: Double = 0.2

    @Option(name: .customLong("duplicate-window"), parsing: .unconditional, help: ArgumentHelp("Identical direct requests closer than this are reported as duplicates (0: off), in ms.", valueName: "ms"))
    var duplicateWindow: Double = 1000

    enum AnalyzeFormat: String, ExpressibleByArgument, CaseIterable {
        case text, json, jsonl, mermaid, html
    }

    func validate() throws {
        if file != nil && (capture.readFile != nil || capture.interface != nil) {
            throw ValidationError("give the capture once: as FILE or with -r/-i")
        }
        for ip in podIPs where HopCapture.IPAddress(ip) == nil { throw ValidationError("--pod-ip \(ip) is not an IPv4 or IPv6 address") }
        for (name, ms) in [("--tolerance", tolerance), ("--duplicate-window", duplicateWindow)] where !(ms >= 0 && ms <= 86_400_000) {
            throw ValidationError("\(name) \(ms): must be a number of milliseconds from 0 to 86400000 (a day)")
        }
    }

    func ruleSelection() throws -> RuleSelection {
        switch rules {
        case "auto": return .auto(presets: { NetfilterOracle.preset($0) })
        case "none": return .fixed(NoRules())
        default:
            if let p = NetfilterOracle.preset(rules) { return .fixed(p) }
            let text = try readRulesFile(rules, keywords: ["auto", "none"])
            do {
                let set = try RuleSet.parse(text)
                for w in set.warnings { Output.stderr.line("hoptrace: --rules \(rules): \(w)") }
                return .fixed(NetfilterOracle(ruleSet: set, name: (rules as NSString).lastPathComponent))
            } catch {
                throw InputError(message: "--rules \(rules): \(error)")
            }
        }
    }

    func run() throws {
        let ruleSelection = try ruleSelection()
        var capture = self.capture
        var sourceName: String
        var given: PcapSource? = nil
        if let f = file {
            capture.readFile = f
            sourceName = f
        } else if let r = capture.readFile {
            sourceName = r
        } else if let i = capture.interface {
            sourceName = "live capture on \(i)"
        } else {
            sourceName = "\(BundledCapture.name) (bundled seed scenario: give a FILE to analyze yours)"
            do { given = try PcapSource.openMemory(BundledCapture.bytes, name: BundledCapture.name) } catch {
                throw InputError(message: error.description)
            }
            if let f = capture.filterExpression {
                do { try given!.setFilter(f) } catch { throw InputError(message: error.description) }
            }
            Output.stderr.line("hoptrace: no capture given: analyzing the bundled seed capture \(BundledCapture.name)")
        }
        var cfg = CorrelatorConfiguration()
        cfg.rules = ruleSelection
        cfg.podAddresses = Set(podIPs.compactMap { HopCapture.IPAddress($0) })
        cfg.tolerance = Int64(tolerance * 1_000_000)
        cfg.duplicateWindow = Int64(duplicateWindow * 1_000_000)

        let out = Output.stdout
        let format = self.format
        var chains: [RequestChain] = []
        // json and jsonl write each chain as it comes (the document streams: memory stays flat
        // in the capture's length); what the end of the report says about every chain is
        // counted in `omitted`.
        let writer = JSONWriter(capacity: Output.flushBytes + 8192, flushThreshold: Output.flushBytes) { out.write(bytes: $0) }
        let document = format == .json ? JSONReport.DocumentWriter(writer) : nil
        var omitted = ChainTally()
        // Text shows direct requests as counts and the first chains in full: keep only those.
        let aggregateDirect = format == .text && !all
        let keep = aggregateDirect ? TextReport.Options().detailLimit : Int.max
        var direct = DirectCounts()
        var diagramKeep = DiagramKeep()
        let reportChain: (RequestChain) -> Void = { chain in
            switch format {
            case .jsonl:
                JSONReport.writeLine(chain: chain, to: writer)
                if out.lineBuffered { writer.flush() }
                omitted.add(chain)
            case .json:
                document!.chain(chain)
                omitted.add(chain)
            case .text:
                if aggregateDirect && !chain.isMultiHop && !chain.isIncomplete && chain.firstRole == .direct {
                    direct.count(method: chain.method ?? "?", target: chain.target ?? "?")
                } else if chains.count < keep {
                    chains.append(chain)
                } else {
                    omitted.add(chain)
                }
            case .mermaid, .html:
                // What the diagrams, the table and the lists show, and no more: memory stays
                // bounded whatever the capture; the rest is counted (`omitted`, `direct`).
                if diagramKeep.keeps(chain, kept: chains.count) {
                    chains.append(chain)
                } else {
                    omitted.add(chain)
                    if chain.isDirect { direct.count(method: chain.method ?? "?", target: chain.target ?? "?") }
                }
            }
        }
        // A file: HTTP is parsed on the capture thread, the exchanges are paired on a second
        // one, and json and jsonl are written on a third (hand-offs batched and bounded).
        // Live: one thread, each exchange reported as it completes.
        let file = capture.interface == nil
        let writing = file && (format == .json || format == .jsonl) ? HandOff<RequestChain>(batchSize: 64) { reportChain($0) } : nil
        let correlator = Correlator(configuration: cfg) { chain in
            if let writing { writing.send(chain) } else { reportChain(chain) }
        }
        if aggregateDirect {
            correlator.onPlainDirect = { x in
                direct.count(method: x.request?.method ?? "?", target: x.request?.target ?? "?")
            }
        }
        let pairing = file ? HandOff<HTTPExchange> { correlator.add($0) } : nil
        let http = HTTPAnalyzer { x in
            if let pairing { pairing.send(x) } else { correlator.add(x) }
        }
        // The capture thread notes the addresses packets left the host from; the analysis
        // thread reads them when it decides the pod's addresses.
        let local = LocalAddresses()
        correlator.localAddressSource = { local.snapshot() }
        let result: PipelineResult
        do {
            result = try runPipeline(capture: capture, lineBuffered: false, flowConsumer: http, source: given,
                                     observe: { seg in
                                         if seg.direction == .outgoing { local.insert(seg.source.address) }
                                     })
        } catch {
            pairing?.finish()
            writing?.finish()
            throw error
        }
        http.finish()
        pairing?.finish()
        // The pairing thread has ended: the correlator's last chains go from this thread.
        correlator.finish()
        writing?.finish()

        let origin: String
        switch cfg.rules {
        case .fixed: origin = rules == "none" ? "given: no interception rules" : "given with --rules"
        case .auto: origin = correlator.evidence.detected
            ? "auto: \(correlator.evidence.description); --rules to choose"
            : "auto: no sidecar traces in the capture; --rules to evaluate a rule set"
        }
        var report = AnalysisReport(
            source: sourceName, linkType: result.linkType.name, packets: result.decode.packets,
            connections: result.connections, rulesName: correlator.rules.name, rulesOrigin: origin,
            podAddresses: correlator.podAddresses.sorted().map(\.description),
            podAddressesInferred: correlator.podAddressesInferred, summary: correlator.summary, chains: chains,
            duplicates: correlator.duplicates,
            counters: [
                .init(name: "decode", items: result.decode.report.map { ($0.name, $0.count, $0.explanation) }),
                .init(name: "flows", items: result.flows.report),
                .init(name: "http", items: http.counters.report),
            ],
            readError: result.readError?.description)
        report.directCounts = direct.counts
        report.directOthers = direct.others
        report.orphanResponses = correlator.orphanResponses
        report.omitted = omitted
        report.warnings = AnalysisWarnings.detect(correlator: correlator, flows: result.flows, http: http.counters,
                                                  linkType: result.linkType, filter: capture.filterExpression)
        if format != .json && format != .jsonl { printWarnings(report.warnings) }
        switch format {
        case .text:
            var o = TextReport.Options()
            if all { o.detailLimit = .max; o.showDirect = true }
            out.write(TextReport.render(report, options: o))
        case .json:
            document!.finish(report)
            writer.flush()
        case .jsonl:
            JSONReport.write(trailer: report, to: writer)
            writer.newline()
            writer.flush()
        case .mermaid:
            out.write(MermaidReport.render(report))
        case .html:
            out.write(HTMLReport.render(report))
        }
        out.flush()
        if let e = result.readError { throw InputError(message: e.description) }
    }
}

/// The chains `--format mermaid|html` keep: the first ones (the HTML table's rows) and, past
/// them, the first touched (drawn) and incomplete (listed) ones; the rest are counted.
struct DiagramKeep {
    static let first = HTMLReport.Options().tableLimit
    static let touched = max(HTMLReport.Options().diagramLimit, MermaidReport.Options().chainLimit)
    static let incomplete = HTMLReport.Options().listLimit
    private var touchedKept = 0
    private var incompleteKept = 0

    mutating func keeps(_ chain: RequestChain, kept: Int) -> Bool {
        let keep = kept < Self.first || (!chain.isDirect && touchedKept < Self.touched)
            || (chain.isIncomplete && incompleteKept < Self.incomplete)
        if keep {
            if !chain.isDirect { touchedKept += 1 }
            if chain.isIncomplete { incompleteKept += 1 }
        }
        return keep
    }
}

/// Direct requests counted by method and target, in first-seen order. A load capture repeats
/// a few requests: the last few keys are compared before the table is hashed.
struct DirectCounts {
    private struct Key: Hashable {
        var method: String
        var target: String
    }
    private var index: [Key: Int] = [:]
    private var keys: [Key] = []
    private var totals: [Int] = []
    private var recent: (Int, Int, Int, Int) = (-1, -1, -1, -1)

    mutating func count(method: String, target: String) {
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
    var counts: [(String, Int)] { keys.indices.map { ("\(keys[$0].method) \(keys[$0].target)", totals[$0]) } }
    /// Requests whose `METHOD target` came after `maxKeys` others: counted, not named (the
    /// reports name the first eight; a capture of distinct targets must not grow the table).
    private(set) var others = 0
    static let maxKeys = 64
}

/// Addresses seen leaving the host, shared between the capture and analysis threads.
final class LocalAddresses: @unchecked Sendable {
    // @unchecked Sendable: every access holds `lock`.
    private var set = Set<HopCapture.IPAddress>()
    private var last: HopCapture.IPAddress?
    private let lock = NSLockish()

    func insert(_ a: HopCapture.IPAddress) {
        if a == last { return }  // the same few addresses over and over: skip the lock
        lock.lock()
        set.insert(a)
        lock.unlock()
        last = a
    }

    func snapshot() -> [HopCapture.IPAddress] {
        lock.lock()
        defer { lock.unlock() }
        return Array(set)
    }
}
