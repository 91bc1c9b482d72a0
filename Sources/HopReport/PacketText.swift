import HopCapture

/// `hoptrace packets`: one line per TCP segment, tcpdump style, or one JSON object.
public enum PacketText {
    /// What a text line shows besides the default (tcpdump's -A, -v, -#).
    public struct Style {
        public var ascii = false
        public var verbose = false
        public var number = false

        public init(ascii: Bool = false, verbose: Bool = false, number: Bool = false) {
            self.ascii = ascii
            self.verbose = verbose
            self.number = number
        }
    }

    public static func text(_ s: TCPSegment, interface: String?) -> String {
        var clock = LineClock(level: 0)
        return text(s, interface: interface, style: Style(), clock: &clock)
    }

    public static func text(_ s: TCPSegment, interface: String?, style: Style, clock: inout LineClock) -> String {
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
    public static func printable(_ bytes: UnsafeRawBufferPointer) -> String {
        var text = [UInt8]()
        text.reserveCapacity(bytes.count)
        for b in bytes where b != 13 { text.append(b == 10 || (32..<127).contains(b) ? b : 0x2e) }
        while text.last == 10 { text.removeLast() }
        return String(decoding: text, as: UTF8.self)
    }

    public static func json(_ s: TCPSegment, interface: String?) -> String {
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
