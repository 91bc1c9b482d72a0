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
            out.line(jsonl ? FlowText.json(conn) : FlowText.text(conn, clock: &clock))
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
}
