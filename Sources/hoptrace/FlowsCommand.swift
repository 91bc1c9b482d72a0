import ArgumentParser
import HopCapture
import HopCorrelation
import HopFlows
import HopHTTP
import HopPipeline
import HopReport

struct Flows: ParsableCommand, PacketReading {
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
          hoptrace flows Captures/nat-split.pcap
          hoptrace flows -r capture.pcap --format jsonl 'tcp port 80'
        """)

    static let countsWhat = "connections"
    static let printing: PrintingOptions = [.timestamps]

    @OptionGroup var capture: CaptureOptions<Flows>

    @Option(name: .long, help: "Output format: text or jsonl (one object per connection, then a summary).")
    var format: StreamFormat = .text

    func validate() throws {
        try capture.requireSource()
    }

    func run() throws {
        guard let source = try capture.open() else { return }
        let out = Output.stdout
        let jsonl = format == .jsonl
        let limit = capture.count ?? .max
        var printed = 0
        var clock = capture.clock
        let printer = ClosedConnections { conn in
            guard printed < limit else { return }
            printed += 1
            out.line(jsonl ? Self.json(conn) : Self.text(conn, clock: &clock))
        }
        let writer = try capture.writer(for: source)
        let result = FlowPipeline.run(source: source, consumer: printer, raw: writer.map { w in { w.write($0) } },
                                      shouldStop: { printed >= limit })
        writer?.flush()
        capture.reportUnwritten(writer, source: source)
        out.flush()
        report(result, jsonl: jsonl,
               warnings: [AnalysisWarnings.oneSided(flows: result.flows, http: HTTPCounters(), filter: capture.filterExpression)].compactMap { $0 })
        if let e = result.readError { throw InputError(message: e.description) }
    }

    static func text(_ c: Connection) -> String {
        var clock = LineClock(level: 0)
        return text(c, clock: &clock)
    }

    static func text(_ c: Connection, clock: inout LineClock) -> String {
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
