import ArgumentParser
import HopReport
import HopPipeline

struct HTTP: ParsableCommand, PacketReading {
    static let configuration = CommandConfiguration(
        commandName: "http",
        abstract: "Print one line per HTTP/1.x exchange (request and its response).",
        discussion: """
        Reassembles every TCP connection (joining NAT-split halves, so the responses of a \
        REDIRECTed connection are found) and parses HTTP/1.x on both directions: keep-alive, \
        pipelining, chunked bodies, HEAD, 100-continue, CONNECT/Upgrade tunnels; after a \
        capture gap it resynchronises at the next request or status line. TLS and non-HTTP \
        connections are recognised and counted.

        Each line: request start time, connection, client > server (and the original \
        destination of a REDIRECTed connection), method, target, Host, status, body sizes, \
        response time (request start to response end), and flags such as [lost-in-gap]. \
        Unanswered requests print with status '-'. Times are the local time of day (--utc \
        for UTC). Counters go to standard error (text) or a \
        final {"summary": …} object (jsonl).

        Examples:
          hoptrace http Captures/nat-split.pcap
          hoptrace http Captures/lab-seed.pcap --headers
          hoptrace http -r capture.pcap --format jsonl 'tcp port 80 or tcp port 15001'
        """)

    static let countsWhat = "HTTP exchanges"
    static let printing: PrintingOptions = [.timestamps, .ascii]
    static let asciiHelp = "Show each exchange's request and response heads after its line, and the first \(ExchangeText.bodyPrefixBytes) bytes of each body in ASCII ('.' for what is not printable; as `requestBodyPrefix` / `responseBodyPrefix` in jsonl)."

    @OptionGroup var capture: CaptureOptions<HTTP>

    @Option(name: .long, help: "Output format: text or jsonl (one object per exchange, then a summary).")
    var format: StreamFormat = .text

    @Flag(name: .long, help: "Show the request and response heads: after each text line, and as `requestHeaders` / `responseHeaders` in jsonl.")
    var headers = false

    @Flag(name: [.customShort("q"), .long], help: "Analyze everything but print only the counters (for timing the analysis).")
    var quiet = false

    func validate() throws {
        try capture.requireSource()
    }

    func run() throws {
        guard let source = try capture.open() else { return }
        try ExchangePipeline.print(source: source, writer: try capture.writer(for: source), options: capture.stream(jsonl: format == .jsonl),
                                   headers: headers, bodies: capture.ascii, quiet: quiet)
    }
}
