import Foundation
import HopCapture
import HopCorrelation
import HopFlows
import HopHTTP
import HopReport

// The streaming commands (`packets`, `flows`, `http`, `watch`) as they print: one line per
// item as it comes (text or jsonl) on standard output, at most `limit`, then the counters,
// libpcap's statistics and the warnings (a final summary object with jsonl); the error that
// ended the read early is thrown last, once everything read was printed.

/// How a streaming command prints, besides its source.
public struct StreamOptions {
    /// One JSON object per line, then a `{"summary": …}` object (else text lines).
    public var jsonl = false
    /// Stop after this many items (`-c`).
    public var limit: Int?
    /// How text lines begin with their time (`-t`…).
    public var clock = LineClock(level: 0)
    /// The BPF filter the capture was read with (the warnings look at it).
    public var filter: String?
    /// Text lines in colour (a terminal: `TextStyle.colorOn`).
    public var color = false

    public init(jsonl: Bool = false, limit: Int? = nil, clock: LineClock = LineClock(level: 0), filter: String? = nil, color: Bool = false) {
        self.jsonl = jsonl
        self.limit = limit
        self.clock = clock
        self.filter = filter
        self.color = color && !jsonl
    }
}

extension PcapWriter {
    /// Flushes the file and says on `err` what it could not write (`unwrittenWarning`).
    public func finish(source: PcapSource, err: Output = .stderr) {
        flush()
        if let w = unwrittenWarning(source: source) { err.warning(w) }
    }

    /// The writer as a pipeline's `raw` sink.
    var sink: (RawPacket) -> Void { { self.write($0) } }
}

extension PacketPipeline {
    /// `packets`: each TCP segment as a tcpdump-like line (`style`: `-A`, `-v`, `-#`) or a JSON
    /// object; `quiet` decodes everything but prints only the counters.
    public static func print(source: PcapSource, writer: PcapWriter?, options: StreamOptions, style: PacketText.Style,
                             quiet: Bool = false, out: Output = .stdout, err: Output = .stderr) throws(InputError) {
        var names = InterfaceNames(source: source)
        var printed = 0
        let limit = options.limit ?? .max, jsonl = options.jsonl
        var clock = options.clock
        let result = run(source: source, raw: writer?.sink) { seg in
            printed += 1
            if !quiet {
                let iface = names.name(for: seg.interfaceIndex)
                if jsonl {
                    out.line(PacketText.json(seg, interface: iface))
                } else {
                    let line = PacketText.text(seg, interface: iface, style: style, clock: &clock)
                    out.line(options.color ? TextStyle(color: true).packetLine(line, reset: seg.flags.contains(.rst)) : line)
                }
            }
            return printed < limit
        }
        out.flush()
        writer?.finish(source: source, err: err)
        result.report(jsonl: jsonl, flows: false, out: out, err: err)
        if let e = result.readError { throw InputError(message: e.description) }
    }
}

extension FlowPipeline {
    /// `flows`: each connection as it closes (`FlowText`), NAT-split halves joined; the
    /// warning when the filter left connections one-sided.
    public static func print(source: PcapSource, writer: PcapWriter?, options: StreamOptions,
                             out: Output = .stdout, err: Output = .stderr) throws(InputError) {
        let limit = options.limit ?? .max, jsonl = options.jsonl
        var printed = 0
        var clock = options.clock
        let printer = ClosedConnections { conn in
            guard printed < limit else { return }
            printed += 1
            if jsonl {
                out.line(FlowText.json(conn))
            } else {
                let line = FlowText.text(conn, clock: &clock)
                out.line(options.color ? TextStyle(color: true).flowLine(line) : line)
            }
        }
        let result = run(source: source, consumer: printer, raw: writer?.sink, shouldStop: { printed >= limit })
        writer?.finish(source: source, err: err)
        out.flush()
        let oneSided = AnalysisWarnings.oneSided(flows: result.flows, http: HTTPCounters(), filter: options.filter)
        result.report(jsonl: jsonl, warnings: oneSided.map { [$0] } ?? [], out: out, err: err)
        if let e = result.readError { throw InputError(message: e.description) }
    }
}

extension ExchangePipeline {
    /// `http`: each exchange as it completes (`ExchangeLines`; `headers`, `bodies` as there);
    /// `quiet` analyzes everything but prints only the counters. A file is read on two
    /// threads unless a limit stops the read from the analysis side.
    public static func print(source: PcapSource, writer: PcapWriter?, options: StreamOptions, headers: Bool, bodies: Bool,
                             quiet: Bool = false, out: Output = .stdout, err: Output = .stderr) throws(InputError) {
        let limit = options.limit ?? .max
        var printed = 0
        let lines = ExchangeLines(out: out, jsonl: options.jsonl, headers: headers || bodies, bodies: bodies, clock: options.clock,
                                  color: options.color)
        var configuration = HTTPConfiguration()
        if bodies { configuration.bodyPrefixBytes = ExchangeText.bodyPrefixBytes }
        // Threaded (no limit), nothing stops the read from the analysis side: the reading
        // thread must not read `printed`, which the analysis thread writes (ThreadSanitizer
        // saw that race in 2 of 480 runs).
        let threaded = options.limit == nil
        let stop: () -> Bool = threaded ? { false } : { printed >= limit }
        // Without a limit nothing is counted: `printed`, captured by two closures, is checked
        // for exclusive access at run time on every read and write (1% of `http` on the h2c
        // benchmark capture, callgrind).
        let print: (HTTPExchange) -> Void = threaded ? { if !quiet { lines.write($0) } } : { exchange in
            guard printed < limit else { return }
            printed += 1
            if !quiet { lines.write(exchange) }
        }
        let outcome = run(source: source, configuration: configuration, filter: options.filter, threaded: threaded,
                          raw: writer?.sink, shouldStop: stop, onExchange: print)
        writer?.finish(source: source, err: err)
        lines.finish()
        out.flush()
        outcome.result.report(jsonl: options.jsonl, extra: [("http", outcome.counters.report)], warnings: outcome.warnings,
                              out: out, err: err)
        if let e = outcome.result.readError { throw InputError(message: e.description) }
    }
}

extension WatchPipeline {
    /// `watch`'s settings: `rules` resolved (a live capture may read the namespace's, each
    /// note said on `err`); the pod's addresses given, else (live) the namespace's own; the
    /// filter; with `bodies`, the first bytes of each body kept.
    public static func settings(rules: String, podIPs: [String], live: Bool, filter: String?, bodies: Bool,
                                err: Output = .stderr) throws(InputError) -> AnalysisSettings {
        var settings = AnalysisSettings(rules: try RuleSource.resolve(rules, live: live, notesTo: err))
        settings.podAddresses = !podIPs.isEmpty ? try AnalysisSettings.podAddresses(podIPs) : live ? NetworkNamespace.localAddresses() : []
        settings.filter = filter
        if bodies { settings.bodyPrefixBytes = ExchangeText.bodyPrefixBytes }
        return settings
    }

    /// `watch`: each hop as it completes (`HopLine`), linked to the other copies of its request
    /// once its chain is known; `heads` adds each exchange's heads and body prefixes; `color`
    /// for a terminal. A live capture first says where its rules come from. `summaryInterval`
    /// (text only): a `LiveSummary` every so many seconds of capture time and at the end.
    public static func print(source: PcapSource, writer: PcapWriter?, settings: AnalysisSettings, options: StreamOptions,
                             heads: Bool, color: Bool, summaryInterval: Double? = nil,
                             out: Output = .stdout, err: Output = .stderr) throws(InputError) {
        let limit = options.limit ?? .max, jsonl = options.jsonl
        var printed = 0
        var names = InterfaceNames(source: source)
        var clock = options.clock
        if source.isLive { err.line("hoptrace: rules: \(settings.rules.origin)") }
        // Live with no -c: the correlation and the lines on a second thread (the capture has a
        // thread of its own already); HOPTRACE_WATCH_THREADS=1 keeps them on the reading thread.
        let threaded = source.isLive && options.limit == nil && getenv("HOPTRACE_WATCH_THREADS").map { String(cString: $0) } != "1"
        var summary = jsonl ? nil : summaryInterval.map(LiveSummary.init(intervalSeconds:))
        let style = TextStyle.standardOutput()
        let outcome = run(source: source, settings: settings, raw: writer?.sink, threaded: threaded, shouldStop: { printed >= limit }) { hop, chain in
            printed += 1
            if let chain, summary?.add(chain) == true {
                for line in summary!.render(style: style) { out.line(line) }
            }
            if jsonl {
                out.line(HopLine.json(hop, chain: chain, headers: heads))
            } else {
                out.line { b in
                    HopLine.write(hop, chain: chain, color: color, names: &names, clock: &clock, into: &b)
                    if heads { ExchangeText.heads(hop.exchange, bodies: true, into: &b) }
                }
            }
        }
        writer?.finish(source: source, err: err)
        if let summary { for line in summary.render(style: style, final: true) { out.line(line) } }
        out.flush()
        outcome.report(jsonl: jsonl, out: out, err: err)
        if let e = outcome.result.readError { throw InputError(message: e.description) }
    }
}

/// The forms of `analyze`'s report.
public enum ReportFormat: String, CaseIterable, Sendable {
    /// For people (`TextReport`).
    case text
    /// One JSON document.
    case json
    /// One chain per line, then a summary object.
    case jsonl
    /// A Mermaid sequence diagram.
    case mermaid
    /// One self-contained HTML page.
    case html
}

extension Analysis {
    /// `analyze`: the analysis of `source` printed on `out` in `format`. json and jsonl are
    /// written as the chains come (memory stays flat in the capture's length) and carry the
    /// warnings; the others are rendered at the end, the warnings first on `err`. Text lists the
    /// first chains one line each and counts direct requests; with `all` every chain in full;
    /// with `chains` only those ids, in full. `style`: the text's width and colour (nil: as
    /// standard output calls for, `TextStyle.standardOutput`).
    public static func print(source: PcapSource, sourceName: String, settings: AnalysisSettings, format: ReportFormat,
                             all: Bool = false, chains selected: [Int] = [], style: TextStyle? = nil, writer: PcapWriter?,
                             out: Output = .stdout, err: Output = .stderr) throws(InputError) {
        if !selected.isEmpty && format != .text {
            throw InputError(message: "--chain shows chains in the text report: leave out --format \(format.rawValue)")
        }
        let json = JSONWriter(capacity: Output.flushBytes + 8192, flushThreshold: Output.flushBytes) { out.write(bytes: $0) }
        let output: ChainOutput
        switch format {
        case .json: output = .jsonDocument(json)
        case .jsonl: output = .jsonLines(json, flushEachLine: out.lineBuffered)
        case .text where !selected.isEmpty: output = .select(Set(selected))
        case .text where !all: output = .keep(limit: TextReport.Options().chainLimit, aggregateDirect: true)
        case .text: output = .keep(limit: .max, aggregateDirect: false)
        case .mermaid, .html: output = .diagrams
        }
        let outcome = run(source: source, sourceName: sourceName, settings: settings, output: output, raw: writer?.sink)
        writer?.finish(source: source, err: err)
        let report = outcome.report
        if format != .json && format != .jsonl { err.warnings(report.warnings) }
        switch format {
        case .text:
            var o = TextReport.Options()
            o.style = style ?? .standardOutput()
            o.full = all
            if !selected.isEmpty { o.selected = selected }
            out.write(TextReport.render(report, options: o))
        case .json, .jsonl:
            break
        case .mermaid:
            out.write(MermaidReport.render(report))
        case .html:
            out.write(HTMLReport.render(report))
        }
        out.flush()
        // A live capture: libpcap's figures and the capture queue's, as the other commands say them.
        if let st = outcome.result.statistics {
            err.line("\(outcome.result.decode.packets) packets captured")
            err.line(PipelineResult.statisticsLine(st))
        }
        if let e = outcome.result.readError { throw InputError(message: e.description) }
    }
}
