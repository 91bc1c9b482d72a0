import ArgumentParser
import HopCapture
import HopFlows
import HopPipeline
import HopReport

struct Packets: ParsableCommand, PacketReading {
    static let configuration = CommandConfiguration(
        abstract: "Print one line per TCP segment, tcpdump style.",
        discussion: """
        Reads a capture file (FILE or -r) or a live interface (-i) through libpcap, decodes \
        Ethernet (with 802.1Q/QinQ), Linux cooked v1/v2, BSD loopback and raw IP down to TCP, \
        and prints each segment: time (local time of day; --utc for UTC), interface and \
        direction when the link type records them, source > destination, flags, absolute \
        sequence numbers and payload length. Everything that is not a clean TCP segment \
        (non-IP, UDP, fragments, truncated or malformed packets) is counted and reported on \
        standard error at the end (or in a final {"summary": …} object with --format jsonl).

        Examples:
          hoptrace packets Captures/sll2-any.pcap
          hoptrace packets -r capture.pcapng --format jsonl 'tcp port 80'
          hoptrace packets -i any -c 20 -A port 15001
        """)

    static let countsWhat = "TCP segments"
    static let printing: PrintingOptions = [.timestamps, .ascii, .verbose, .absoluteSequence, .number]
    static let asciiHelp = "Print each segment's payload (as captured) in ASCII after its line, '.' for what is not printable (tcpdump -A)."

    @OptionGroup var capture: CaptureOptions<Packets>

    @Option(name: .long, help: "Output format: text (tcpdump-like lines) or jsonl (one JSON object per segment, then a summary).")
    var format: StreamFormat = .text

    @Flag(name: [.customShort("q"), .long], help: "Decode every packet but print only the counters (for timing the decoder).")
    var quiet = false

    func validate() throws {
        try capture.requireSource()
    }

    func run() throws {
        guard let source = try capture.open() else { return }
        let out = Output.stdout
        let writer = try capture.writer(for: source)
        var decoder = PacketDecoder(linkType: source.linkType)
        var names = InterfaceNames(source: source)
        var printed = 0
        let limit = capture.count ?? Int.max
        let jsonl = format == .jsonl
        // Read once: property wrappers are slow in the per-packet closure.
        let quiet = self.quiet, style = PacketText.Style(capture)
        var clock = capture.clock
        let readError = readSegments(from: source, decoder: &decoder, raw: writer.map { w in { w.write($0) } }) { seg in
            printed += 1
            if !quiet {
                let iface = names.name(for: seg.interfaceIndex)
                out.line(jsonl ? PacketText.json(seg, interface: iface) : PacketText.text(seg, interface: iface, style: style, clock: &clock))
            }
            return printed < limit
        }
        source.countFilterUnmatched(into: &decoder)
        out.flush()
        writer?.flush()
        capture.reportUnwritten(writer, source: source)
        var result = PipelineResult(linkType: source.linkType, decode: decoder.counters, flows: FlowCounters(),
                                    statistics: source.statistics(), readError: readError, connections: 0)
        result.linkTypeName = source.linkTypeDescription
        if jsonl {
            out.line(result.summaryJSON(flows: false))
            out.flush()
        }
        for l in PipelineResult.decodeLines(decoder.counters, linkTypeName: result.linkTypeName) { Output.stderr.line(l) }
        if let stats = source.statistics() { Output.stderr.line(PipelineResult.statisticsLine(stats)) }
        if let readError { throw InputError(message: readError.description) }
    }
}

extension PacketText.Style {
    init(_ o: CaptureOptions<Packets>) {
        self.init(ascii: o.ascii, verbose: o.verbose, number: o.number)
    }
}
