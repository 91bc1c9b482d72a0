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
        let quiet = self.quiet, style = TextStyle(capture)
        var clock = capture.clock
        let readError = readSegments(from: source, decoder: &decoder, raw: writer.map { w in { w.write($0) } }) { seg in
            printed += 1
            if !quiet {
                let iface = names.name(for: seg.interfaceIndex)
                out.line(jsonl ? Self.json(seg, interface: iface) : Self.text(seg, interface: iface, style: style, clock: &clock))
            }
            return printed < limit
        }
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

    /// What a text line shows besides the default.
    struct TextStyle {
        var ascii = false
        var verbose = false
        var number = false

        init() {}
        init(_ o: CaptureOptions<Packets>) {
            ascii = o.ascii
            verbose = o.verbose
            number = o.number
        }
    }

    static func text(_ s: TCPSegment, interface: String?) -> String {
        var clock = LineClock(level: 0)
        return text(s, interface: interface, style: TextStyle(), clock: &clock)
    }

    static func text(_ s: TCPSegment, interface: String?, style: TextStyle, clock: inout LineClock) -> String {
        var line = style.number ? "\(s.packetIndex)  " : ""
        var head: [String] = []
        if let t = clock.text(s.timestamp) { head.append(t) }
        if let interface { head.append(interface) }
        if let d = s.direction { head.append(d.tcpdumpDescription) }
        head.append(s.ipVersion == 6 ? "IP6" : "IP")
        line += head.joined(separator: " ")
        if style.verbose { line += " (ttl \(s.ttl)\(s.ipVersion == 4 ? ", id \(s.ipIdentification)" : ""))" }
        line += " " + s.source.tcpdumpDescription + " > " + s.destination.tcpdumpDescription
        line += ": Flags [" + s.flags.tcpdumpDescription + "]"
        if s.payloadLength > 0 || s.flags.contains(.syn) || s.flags.contains(.fin) || s.flags.contains(.rst) {
            if s.payloadLength > 0 {
                line += ", seq \(s.sequenceNumber):\(s.sequenceNumber &+ UInt32(truncatingIfNeeded: s.payloadLength))"
            } else {
                line += ", seq \(s.sequenceNumber)"
            }
        }
        if s.flags.contains(.ack) { line += ", ack \(s.acknowledgementNumber)" }
        line += ", win \(s.window)"
        let o = s.options
        if !o.isEmpty {
            var parts: [String] = []
            if let m = o.mss { parts.append("mss \(m)") }
            if o.sackPermitted { parts.append("sackOK") }
            if let v = o.timestampValue { parts.append("TS val \(v) ecr \(o.timestampEcho ?? 0)") }
            if let w = o.windowScale { parts.append("wscale \(w)") }
            line += ", options [" + parts.joined(separator: ",") + "]"
        }
        line += ", length \(s.payloadLength)"
        if s.isReassembled {
            line += " [reassembled from IP fragments]"
        } else if s.isTruncated {
            line += " [|truncated: \(s.payload.count) of \(s.payloadLength) bytes captured]"
        }
        if style.ascii && s.payload.count > 0 { line += "\n" + printable(s.payload) }
        return line
    }

    /// Bytes as tcpdump -A shows them: printable ASCII, newlines kept, '.' for the rest.
    static func printable(_ bytes: UnsafeRawBufferPointer) -> String {
        var text = [UInt8]()
        text.reserveCapacity(bytes.count)
        for b in bytes where b != 13 { text.append(b == 10 || (32..<127).contains(b) ? b : 0x2e) }
        while text.last == 10 { text.removeLast() }
        return String(decoding: text, as: UTF8.self)
    }

    static func json(_ s: TCPSegment, interface: String?) -> String {
        let o = JSONWriter(capacity: 512)
        o.beginObject()
        o.field("packet", s.packetIndex)
        o.field("time", iso8601: s.timestamp)
        o.field("timestampNs", s.timestamp)
        o.field("interface", interface)
        o.field("ifindex", s.interfaceIndex)
        o.field("direction", s.direction?.jsonName)
        o.field("ipVersion", Int(s.ipVersion))
        o.field("src", s.source.description)
        o.field("dst", s.destination.description)
        o.field("flags", s.flags.tcpdumpDescription)
        o.field("seq", s.sequenceNumber)
        o.field("ack", s.flags.contains(.ack) ? s.acknowledgementNumber : nil)
        o.field("win", s.window)
        o.field("len", s.payloadLength)
        o.field("capturedLen", s.payload.count)
        o.field("truncated", s.isTruncated)
        o.key("options")
        o.beginObject()
        o.field("mss", s.options.mss)
        o.field("wscale", s.options.windowScale)
        o.field("sackOK", s.options.sackPermitted)
        o.field("tsval", s.options.timestampValue)
        o.field("tsecr", s.options.timestampEcho)
        o.endObject()
        o.endObject()
        return o.string
    }
}
