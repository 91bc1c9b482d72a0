import ArgumentParser
import HopPipeline

struct Flows: ParsableCommand, PacketReading {
    static let configuration = CommandConfiguration(commandName: "flows",
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
        try FlowPipeline.print(source: source, writer: try capture.writer(for: source), options: capture.stream(jsonl: format == .jsonl))
    }
}
