import Dispatch
import HopCapture
import HopCorrelation
import HopFlows
import HopHTTP
import HopReport
#if canImport(Glibc)
import Glibc
#endif

/// capture → decode → connection table → a consumer of stream events, to the end of the
/// capture, Ctrl-C, or until `shouldStop` says so.
public enum FlowPipeline {
    /// Reads `source` to its end. `threaded`: a file's reassembly stays on this thread and the
    /// consumer runs on a second one (both cores; the output is the same). A live capture's
    /// packets come off the kernel on a capture thread of its own (`PcapSource.next()` reads
    /// its queue); everything here stays on this thread so every line appears at once. `raw` sees every packet read (`-w`),
    /// `observe` every TCP segment before reassembly.
    public static func run(
        source: PcapSource, consumer: StreamEventConsumer, configuration: FlowConfiguration = .init(),
        threaded: Bool = false, raw: ((RawPacket) -> Void)? = nil,
        observe: ((TCPSegment) -> Void)? = nil, shouldStop: () -> Bool = { false }
    ) -> PipelineResult {
        var decoder = PacketDecoder(linkType: source.linkType)
        let pipe = threaded && !source.isLive ? StreamEventPipe(consumer: consumer) : nil
        let table = ConnectionTable(configuration: configuration, consumer: pipe ?? consumer)
        var progress = Progress(source: source)
        let readError = readSegments(from: source, decoder: &decoder, raw: raw) { seg in
            observe?(seg)
            table.process(seg)
            progress.tick()
            return !shouldStop()
        }
        source.countFilterUnmatched(into: &decoder)
        progress.done()
        table.finish()
        pipe?.finish()
        var result = PipelineResult(linkType: source.linkType, decode: decoder.counters, flows: table.counters,
                                    statistics: source.statistics(), readError: readError, connections: table.counters.connections)
        result.linkTypeName = source.linkTypeDescription
        result.interfaceCount = source.interfaceCount
        return result
    }
}

/// Reads every packet of `source` through `decoder`, calling `body` for each TCP segment.
/// Returns the error that ended the read early (a truncated file), if any; `body` returns
/// false to stop. Ctrl-C ends a live capture.
@inline(__always)
public func readSegments(
    from source: PcapSource, decoder: inout PacketDecoder, raw: ((RawPacket) -> Void)? = nil,
    _ body: (TCPSegment) -> Bool
) -> CaptureError? {
    if source.isLive { CaptureInterrupt.install(for: source) }
    defer { if source.isLive { CaptureInterrupt.uninstall() } }
    var segment = TCPSegment.empty
    while true {
        let result: PcapSource.ReadResult
        do {
            result = try source.next()
        } catch {
            return error
        }
        switch result {
        case .packet(let p):
            raw?(p)
            if decoder.decode(p, into: &segment) {
                if !body(segment) { return nil }
            }
        case .timeout:
            continue
        case .end:
            return nil
        }
    }
}

/// Calls back with each connection as it closes.
public final class ClosedConnections: StreamEventConsumer {
    let onClose: (Connection) -> Void
    public init(_ onClose: @escaping (Connection) -> Void) { self.onClose = onClose }
    public func handle(_ event: StreamEvent) {
        if case .closed(let c) = event { onClose(c) }
    }
}

/// What a pipeline run read and counted.
public struct PipelineResult {
    public typealias Section = (section: String, items: [(name: String, count: Int, explanation: String)])

    public var linkType: LinkType
    public var decode: DecodeCounters
    public var flows: FlowCounters
    public var statistics: CaptureStatistics?
    public var readError: CaptureError?
    public var connections: Int
    /// The link type as said: of a pcapng file with interfaces of several, each one's.
    public var linkTypeName: String
    /// The interfaces the capture holds (a pcapng file's; 1 otherwise).
    public var interfaceCount = 1

    public init(linkType: LinkType, decode: DecodeCounters, flows: FlowCounters, statistics: CaptureStatistics?,
                readError: CaptureError?, connections: Int) {
        self.linkType = linkType
        self.linkTypeName = linkType.name
        self.decode = decode
        self.flows = flows
        self.statistics = statistics
        self.readError = readError
        self.connections = connections
    }

    /// The final `{"summary": …}` line of a jsonl stream: counters, libpcap's statistics,
    /// the error that ended the read and the warnings; `extra` are the command's own sections.
    /// `flows`: whether connections were rebuilt (`packets` does not).
    public func summaryJSON(extra: [Section] = [], warnings: [AnalysisWarning] = [], flows showFlows: Bool = true) -> String {
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
        w.field("linkType", linkTypeName)
        w.field("packets", decode.packets)
        w.field("tcpSegments", decode.tcpSegments)
        counts("decode", decode.report.map { ($0.name, $0.count) })
        if showFlows { counts("flows", flows.report.map { ($0.name, $0.count) }) }
        for section in extra { counts(section.section, section.items.map { ($0.name, $0.count) }) }
        if let st = statistics {
            w.key("capture")
            w.beginObject()
            w.field("received", st.received)
            w.field("dropped", st.dropped)
            w.field("interfaceDropped", st.interfaceDropped)
            if let q = st.queue {
                w.field("queueDropped", q.shed)
                w.field("queueHighWaterPackets", q.highWaterPackets)
                w.field("queueHighWaterBytes", q.highWaterBytes)
                w.field("queueCapacityBytes", q.capacityBytes)
            }
            w.endObject()
        }
        if let e = readError { w.field("error", e.description) }
        w.key("warnings")
        JSONReport.write(warnings: warnings, to: w)
        w.endObject()
        w.endObject()
        return w.string
    }

    /// The counters as lines for standard error: what was read, each kind of packet not
    /// analyzed, the connections' and the command's own counters, libpcap's statistics.
    public func counterLines(extra: [Section] = []) -> [String] {
        var lines = Self.decodeLines(decode, linkTypeName: linkTypeName)
        let flowItems = flows.report
        if !flowItems.isEmpty {
            lines.append("connections:")
            for r in flowItems { lines.append("  \(r.count) \(r.name): \(r.explanation)") }
        }
        for section in extra where !section.items.isEmpty {
            lines.append("\(section.section):")
            for r in section.items { lines.append("  \(r.count) \(r.name): \(r.explanation)") }
        }
        if let st = statistics { lines.append(Self.statisticsLine(st)) }
        return lines
    }

    /// The decoder's counters, as lines for standard error.
    public static func decodeLines(_ c: DecodeCounters, linkType: LinkType) -> [String] {
        decodeLines(c, linkTypeName: linkType.name)
    }

    /// The decoder's counters, as lines for standard error (`linkTypeName`: `EN10MB`, or a
    /// pcapng file's several).
    public static func decodeLines(_ c: DecodeCounters, linkTypeName: String) -> [String] {
        var lines = ["\(c.packets) packet\(c.packets == 1 ? "" : "s") read (\(linkTypeName)), \(c.tcpSegments) TCP segment\(c.tcpSegments == 1 ? "" : "s")"]
        for r in c.report {
            lines.append("  \(r.count) \(r.name) (first: packet \(r.firstPacket)): \(r.explanation)")
        }
        return lines
    }

    /// libpcap's statistics as tcpdump prints them, then the capture queue's.
    public static func statisticsLine(_ s: CaptureStatistics) -> String {
        "\(s.received) packets received by filter, \(s.dropped) packets dropped by kernel, \(s.interfaceDropped) packets dropped by interface"
            + (s.queue.map { ", " + queueText($0) } ?? "")
    }

    /// The capture queue's figures in words: what it shed, its high-water mark.
    public static func queueText(_ q: PacketQueue.Figures) -> String {
        "\(q.shed) packets dropped by hoptrace's queue (analysis behind; high-water mark \(q.highWaterPackets) packets, \(mib(q.highWaterBytes)) of \(mib(q.capacityBytes)) MiB)"
    }

    static func mib(_ bytes: Int) -> String {
        let tenths = (bytes * 10 + (1 << 19)) >> 20
        return "\(tenths / 10).\(tenths % 10)"
    }
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
        Self.stderr("\rhoptrace: \(pct)% of \(p.total >> 20) MiB, \(count) segments, \(Int(secs)) s ")
    }

    func done() {
        guard shown else { return }
        Self.stderr("\r\u{1b}[K")
    }

    private static func stderr(_ text: String) {
        var text = text
        text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }
}

/// capture → flows → HTTP: every exchange handed to `onExchange` as it completes (`http`).
public enum ExchangePipeline {
    public struct Outcome {
        public var result: PipelineResult
        public var counters: HTTPCounters
        /// The warning when a BPF filter left connections one-sided.
        public var warnings: [AnalysisWarning]
    }

    /// Reads `source` to its end (or until `shouldStop`); a file on two threads unless
    /// `threaded` is false (`-c` stops from the consumer's side: keep one thread then).
    public static func run(source: PcapSource, configuration: HTTPConfiguration = .init(), filter: String? = nil,
                           threaded: Bool = true, raw: ((RawPacket) -> Void)? = nil, shouldStop: () -> Bool = { false },
                           onExchange: @escaping (HTTPExchange) -> Void) -> Outcome {
        let analyzer = HTTPAnalyzer(configuration: configuration, onExchange: onExchange)
        let result = FlowPipeline.run(source: source, consumer: analyzer, threaded: threaded, raw: raw, shouldStop: shouldStop)
        analyzer.finish()
        let warnings = [AnalysisWarnings.oneSided(flows: result.flows, http: analyzer.counters, filter: filter)].compactMap { $0 }
        return Outcome(result: result, counters: analyzer.counters, warnings: warnings)
    }
}
