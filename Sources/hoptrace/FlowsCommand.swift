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

    static func directionJSON(_ s: DirectionStats) -> String {
        var o = JSONObject()
        o.add("bytes", s.bytes)
        o.add("segments", s.segments)
        o.add("gapBytes", s.gapBytes)
        o.add("retransmissions", s.retransmissions)
        o.add("inconsistentRetransmissions", s.inconsistentRetransmissions)
        o.add("outOfOrder", s.outOfOrder)
        o.add("fin", s.sawFIN)
        o.add("rst", s.sawRST)
        return o.json
    }

    static func json(_ c: Connection) -> String {
        var o = JSONObject()
        o.add("connection", c.id.value)
        o.add("client", c.client.description)
        o.add("server", c.server.description)
        o.add("replySource", c.replySource?.description)
        o.add("originalDestination", c.originalDestination?.description)
        o.add("natJoined", c.isNATJoined)
        o.add("start", Timestamp.iso8601(c.firstTimestamp))
        o.add("end", Timestamp.iso8601(c.lastTimestamp))
        o.add("durationNs", Timestamp.elapsed(from: c.firstTimestamp, to: c.lastTimestamp))
        o.add("handshake", c.sawHandshake)
        o.add("closed", c.closeReason?.description)
        o.addRaw("interfaces", "[" + c.interfaceIndexes.map(String.init).joined(separator: ",") + "]")
        o.addRaw("clientToServer", directionJSON(c[.clientToServer]))
        o.addRaw("serverToClient", directionJSON(c[.serverToClient]))
        return o.json
    }
}
