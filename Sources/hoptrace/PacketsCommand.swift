import ArgumentParser
import HopCapture
import HopReport

struct Packets: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print one line per TCP segment, tcpdump style.",
        discussion: """
        Reads a capture file (-r) or a live interface (-i) through libpcap, decodes Ethernet \
        (with 802.1Q/QinQ), Linux cooked v1/v2, BSD loopback and raw IP down to TCP, and prints \
        each segment: time (UTC), interface and direction when the link type records them, \
        source > destination, flags, absolute sequence numbers and payload length. \
        Everything that is not a clean TCP segment (non-IP, UDP, fragments, truncated or \
        malformed packets) is counted and reported on standard error at the end.

        Examples:
          hoptrace packets -r Captures/sll2-any.pcap
          hoptrace packets -r capture.pcapng --format jsonl 'tcp port 80'
          hoptrace packets -i any -c 20 port 15001
        """)

    @OptionGroup var capture: CaptureOptions

    @Option(name: .customShort("c"), parsing: .unconditional, help: ArgumentHelp("Stop after this many TCP segments.", valueName: "count"))
    var count: Int?

    @Option(name: .long, help: "Output format: text (tcpdump-like lines) or jsonl (one JSON object per segment).")
    var format: OutputFormat = .text

    @Flag(name: .customShort("l"), help: "Line-buffered output (flush after every line).")
    var lineBuffered = false

    @Flag(name: [.customShort("q"), .long], help: "Decode every packet but print only the counters (for timing the decoder).")
    var quiet = false

    @Option(name: .customShort("w"), help: ArgumentHelp("Also write the packets read (all of them, as filtered) to this pcap file.", valueName: "file"))
    var writeFile: String?

    func validate() throws {
        try capture.requireSource()
        if format == .json { throw ValidationError("packets prints a stream: use --format text or --format jsonl") }
        try validateCount(count)
    }

    func run() throws {
        let source = try capture.open()
        guard source.linkType.isSupported else {
            // Count what is there so the report says how many packets were not decoded.
            var n = 0
            while case .packet = try? source.next() { n += 1 }
            throw InputError(message: "\(CaptureError.unsupportedLinkType(source.linkType).description) (\(n) packet\(n == 1 ? "" : "s") not decoded)")
        }
        let out = Output.stdout
        out.lineBuffered = lineBuffered || source.isLive
        var writer: PcapWriter?
        if let w = writeFile {
            do { writer = try PcapWriter(path: w, source: source) } catch { throw InputError(message: error.description) }
        }
        if source.isLive { Output.stderr.line(listeningLine(source, snaplen: capture.snaplen)) }
        var decoder = PacketDecoder(linkType: source.linkType)
        var names = InterfaceNames(source: source)
        var printed = 0
        let limit = count ?? Int.max
        let jsonl = format == .jsonl
        let quiet = self.quiet  // read once: property wrappers are slow in the per-packet closure
        let readError = readSegments(from: source, decoder: &decoder, raw: writer.map { w in { w.write($0) } }) { seg in
            printed += 1
            if !quiet {
                let iface = names.name(for: seg.interfaceIndex)
                out.line(jsonl ? Self.json(seg, interface: iface) : Self.text(seg, interface: iface))
            }
            return printed < limit
        }
        out.flush()
        writer?.flush()
        for l in counterLines(decoder.counters, linkType: source.linkType) { Output.stderr.line(l) }
        if let stats = source.statistics() { Output.stderr.line(statisticsLine(stats)) }
        if let readError { throw InputError(message: readError.description) }
    }

    static func text(_ s: TCPSegment, interface: String?) -> String {
        var line = Timestamp.timeOfDay(s.timestamp)
        if let interface { line += " " + interface }
        if let d = s.direction { line += " " + d.tcpdumpDescription }
        line += s.ipVersion == 6 ? " IP6 " : " IP "
        line += s.source.tcpdumpDescription + " > " + s.destination.tcpdumpDescription
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
        return line
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
