import ArgumentParser
import Dispatch
#if canImport(Glibc)
import Glibc
#endif
import HopCapture
import HopCorrelation
import HopFlows
import HopHTTP
import HopReport

struct Flows: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print one line per TCP connection, with NAT-split halves joined.",
        discussion: """
        Rebuilds every TCP connection of the capture. A connection that iptables REDIRECTed \
        on its way out (nat OUTPUT) shows on lo/any as `podIP:eph > 127.0.0.1:15001` while its \
        replies come from `remote:80`: hoptrace joins the two halves and prints both on-wire \
        tuples and the original destination the proxy read with SO_ORIGINAL_DST.

        Each line: connection id, start time, client > server as seen on the wire, [replies \
        from … / original destination …] for joined halves, bytes and segments each way \
        (→ client to server, ← server to client), duration, how it ended, and anomalies. \
        Lines appear as connections close. The counters go to standard error (text) or a \
        final {"summary": …} object (jsonl).

        Examples:
          hoptrace flows -r Captures/nat-split.pcap
          hoptrace flows -r capture.pcap --format jsonl 'tcp port 80'
        """)

    @OptionGroup var capture: CaptureOptions

    @Option(name: .long, help: "Output format: text or jsonl.")
    var format: OutputFormat = .text

    @Flag(name: .customShort("l"), help: "Line-buffered output.")
    var lineBuffered = false

    func validate() throws {
        try capture.requireSource()
        if format == .json { throw ValidationError("flows prints a stream: use --format text or --format jsonl") }
    }

    func run() throws {
        let out = Output.stdout
        let jsonl = format == .jsonl
        let printer = FlowPrinter { conn in
            out.line(jsonl ? Self.json(conn) : Self.text(conn))
        }
        let result = try runPipeline(capture: capture, lineBuffered: lineBuffered, flowConsumer: printer)
        out.flush()
        result.report(jsonl: jsonl, extra: [],
                      warnings: [AnalysisWarnings.oneSided(flows: result.flows, http: HTTPCounters(), filter: capture.filterExpression)].compactMap { $0 })
        if let e = result.readError { throw InputError(message: e.description) }
    }

    static func text(_ c: Connection) -> String {
        var line = "\(c.id) \(Timestamp.timeOfDay(c.firstTimestamp)) \(c.client) > \(c.server)"
        if let r = c.replySource {
            line += " [replies from \(r)"
            if let o = c.originalDestination { line += ", original destination \(o)" }
            line += "]"
        }
        let up = c[.clientToServer], down = c[.serverToClient]
        line += " → \(up.bytes) B \(up.segments) seg ← \(down.bytes) B \(down.segments) seg"
        line += " \(Timestamp.duration(Timestamp.elapsed(from: c.firstTimestamp, to: c.lastTimestamp)))"
        line += " " + (c.closeReason?.description ?? "open")
        if !c.sawHandshake { line += " (picked up mid-stream)" }
        let anomalies = Self.anomalies(c)
        if !anomalies.isEmpty { line += " anomalies: " + anomalies.map { "\($0.0) \($0.1)" }.joined(separator: ", ") }
        return line
    }

    static func anomalies(_ c: Connection) -> [(String, Int)] {
        var out: [(String, Int)] = []
        for (dir, name) in [(FlowDirection.clientToServer, "→"), (.serverToClient, "←")] {
            let s = c[dir]
            if s.retransmissions > 0 { out.append(("\(name)retransmissions", s.retransmissions)) }
            if s.inconsistentRetransmissions > 0 { out.append(("\(name)inconsistent-retransmissions", s.inconsistentRetransmissions)) }
            if s.outOfOrder > 0 { out.append(("\(name)out-of-order", s.outOfOrder)) }
            if s.gapBytes > 0 { out.append(("\(name)gap-bytes", s.gapBytes)) }
        }
        return out
    }

    static func writeDirection(_ s: DirectionStats, to o: JSONWriter) {
        o.beginObject()
        o.field("bytes", s.bytes)
        o.field("segments", s.segments)
        o.field("gapBytes", s.gapBytes)
        o.field("retransmissions", s.retransmissions)
        o.field("inconsistentRetransmissions", s.inconsistentRetransmissions)
        o.field("outOfOrder", s.outOfOrder)
        o.field("fin", s.sawFIN)
        o.field("rst", s.sawRST)
        o.endObject()
    }

    static func json(_ c: Connection) -> String {
        let o = JSONWriter(capacity: 1024)
        o.beginObject()
        o.field("connection", c.id.value)
        o.field("client", c.client.description)
        o.field("server", c.server.description)
        o.field("replySource", c.replySource?.description)
        o.field("originalDestination", c.originalDestination?.description)
        o.field("natJoined", c.isNATJoined)
        o.field("start", iso8601: c.firstTimestamp)
        o.field("end", iso8601: c.lastTimestamp)
        o.field("durationNs", Timestamp.elapsed(from: c.firstTimestamp, to: c.lastTimestamp))
        o.field("handshake", c.sawHandshake)
        o.field("closed", c.closeReason?.description)
        o.key("interfaces")
        o.ints(c.interfaceIndexes)
        o.key("clientToServer")
        writeDirection(c[.clientToServer], to: o)
        o.key("serverToClient")
        writeDirection(c[.serverToClient], to: o)
        o.endObject()
        return o.string
    }
}

/// Calls back with each connection as it closes.
final class FlowPrinter: StreamEventConsumer {
    let onClose: (Connection) -> Void
    init(_ onClose: @escaping (Connection) -> Void) { self.onClose = onClose }
    func handle(_ event: StreamEvent) {
        if case .closed(let c) = event { onClose(c) }
    }
}

/// What a pipeline run read and counted.
struct PipelineResult {
    var linkType: LinkType
    var decode: DecodeCounters
    var flows: FlowCounters
    var statistics: CaptureStatistics?
    var readError: CaptureError?
    var connections: Int

    /// Counter lines (stderr) or a final summary object (jsonl, on stdout).
    func report(jsonl: Bool, extra: [(section: String, items: [(name: String, count: Int, explanation: String)])],
                warnings: [AnalysisWarning] = []) {
        if jsonl {
            let w = JSONWriter()
            func counts(_ key: String, _ items: [(name: String, count: Int)]) {
                w.key(key)
                w.beginObject()
                for r in items { w.key(r.name); w.int(r.count) }
                w.endObject()
            }
            w.beginObject()
            w.key("summary")
            w.beginObject()
            w.field("linkType", linkType.name)
            w.field("packets", decode.packets)
            w.field("tcpSegments", decode.tcpSegments)
            counts("decode", decode.report.map { ($0.name, $0.count) })
            counts("flows", flows.report.map { ($0.name, $0.count) })
            for section in extra { counts(section.section, section.items.map { ($0.name, $0.count) }) }
            if let st = statistics {
                w.key("capture")
                w.beginObject()
                w.field("received", st.received)
                w.field("dropped", st.dropped)
                w.field("interfaceDropped", st.interfaceDropped)
                w.endObject()
            }
            if let e = readError { w.field("error", e.description) }
            w.key("warnings")
            JSONReport.write(warnings: warnings, to: w)
            w.endObject()
            w.endObject()
            Output.stdout.line(w.string)
            Output.stdout.flush()
        }
        for l in counterLines(decode, linkType: linkType) { Output.stderr.line(l) }
        let flowItems = flows.report
        if !flowItems.isEmpty {
            Output.stderr.line("connections:")
            for r in flowItems { Output.stderr.line("  \(r.count) \(r.name): \(r.explanation)") }
        }
        for section in extra where !section.items.isEmpty {
            Output.stderr.line("\(section.section):")
            for r in section.items { Output.stderr.line("  \(r.count) \(r.name): \(r.explanation)") }
        }
        if let st = statistics { Output.stderr.line(statisticsLine(st)) }
        if !jsonl { printWarnings(warnings) }
    }
}

/// capture → decode → connection table → consumer, to the end of the capture (or Ctrl-C).
func runPipeline(capture: CaptureOptions, lineBuffered: Bool, flowConsumer: StreamEventConsumer,
                 configuration: FlowConfiguration = .init(), source given: PcapSource? = nil,
                 observe: ((TCPSegment) -> Void)? = nil, threaded: Bool = false,
                 shouldStop: () -> Bool = { false }) throws -> PipelineResult {
    let source = try given ?? capture.open()
    guard source.linkType.isSupported else {
        var n = 0
        while case .packet = try? source.next() { n += 1 }
        throw InputError(message: "\(CaptureError.unsupportedLinkType(source.linkType).description) (\(n) packet\(n == 1 ? "" : "s") not decoded)")
    }
    Output.stdout.lineBuffered = lineBuffered || source.isLive
    if source.isLive { Output.stderr.line(listeningLine(source, snaplen: capture.snaplen)) }
    var decoder = PacketDecoder(linkType: source.linkType)
    // Files: reassembly here, the analysis above it on a second thread (both cores).
    // Live captures stay on one thread so every line appears at once.
    let pipe = threaded && !source.isLive ? StreamEventPipe(consumer: flowConsumer) : nil
    let table = ConnectionTable(configuration: configuration, consumer: pipe ?? flowConsumer)
    var progress = Progress(source: source)
    let readError = readSegments(from: source, decoder: &decoder) { seg in
        observe?(seg)
        table.process(seg)
        progress.tick()
        return !shouldStop()
    }
    progress.done()
    table.finish()
    pipe?.finish()
    return PipelineResult(linkType: source.linkType, decode: decoder.counters, flows: table.counters,
                          statistics: source.statistics(), readError: readError, connections: table.counters.connections)
}

/// A progress line on standard error for large files, only when standard error is a terminal.
struct Progress {
    let source: PcapSource
    let enabled: Bool
    var count = 0
    var lastShown: UInt64 = 0
    var shown = false
    let start = DispatchTime.now().uptimeNanoseconds

    init(source: PcapSource) {
        self.source = source
        let big = (source.fileProgress()?.total ?? 0) > 32 << 20
        enabled = big && isatty(2) == 1
    }

    @inline(__always)
    mutating func tick() {
        guard enabled else { return }
        count += 1
        if count & 0xffff != 0 { return }
        let now = DispatchTime.now().uptimeNanoseconds
        guard now - lastShown > 250_000_000, let p = source.fileProgress() else { return }
        lastShown = now
        shown = true
        let pct = p.total > 0 ? Int(p.read * 100 / p.total) : 0
        let secs = Double(now - start) / 1e9
        Output.stderr.write("\rhoptrace: \(pct)% of \(p.total >> 20) MiB, \(count) segments, \(Int(secs)) s ")
        Output.stderr.flush()
    }

    func done() {
        guard shown else { return }
        Output.stderr.write("\r\u{1b}[K")
        Output.stderr.flush()
    }
}
