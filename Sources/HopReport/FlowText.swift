import HopCapture
import HopFlows

/// `hoptrace flows`: one line (or JSON object) per reassembled TCP connection.
public enum FlowText {
    public static func text(_ c: Connection) -> String {
        var clock = LineClock(level: 0)
        return text(c, clock: &clock)
    }

    public static func text(_ c: Connection, clock: inout LineClock) -> String {
        var line = "\(c.id) \(clock.prefix(c.firstTimestamp))\(c.client) > \(c.server)"
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

    public static func anomalies(_ c: Connection) -> [(String, Int)] {
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

    public static func writeDirection(_ s: DirectionStats, to o: JSONWriter) {
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

    public static func json(_ c: Connection) -> String {
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
