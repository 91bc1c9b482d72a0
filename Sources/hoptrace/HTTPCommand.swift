import ArgumentParser
import HopCapture
import HopCorrelation
import HopReport
import HopFlows
import HopHTTP
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
        let out = Output.stdout
        let jsonl = format == .jsonl
        let limit = capture.count ?? Int.max
        var printed = 0
        let quiet = self.quiet, heads = headers || capture.ascii, bodies = capture.ascii
        var connections = ConnectionTextCache()
        var clock = capture.clock
        let plainClock = capture.timestampLevel == 0
        // jsonl: each exchange is written into the JSON writer's bytes, handed to standard
        // output in 64 KiB blocks (every line at once when line-buffered).
        let writer = JSONWriter(capacity: Output.flushBytes + 8192, flushThreshold: Output.flushBytes) { out.write(bytes: $0) }
        var configuration = HTTPConfiguration()
        if bodies { configuration.bodyPrefixBytes = ExchangeText.bodyPrefixBytes }
        let raw = try capture.writer(for: source)
        // -c stops the read from the analysis side: keep both on one thread then.
        let outcome = ExchangePipeline.run(source: source, configuration: configuration, filter: capture.filterExpression,
                                           threaded: capture.count == nil, raw: raw.map { w in { w.write($0) } },
                                           shouldStop: { printed >= limit }) { exchange in
            guard printed < limit else { return }
            printed += 1
            if quiet { return }
            if jsonl {
                JSONReport.write(exchange: exchange, headers: heads, bodies: bodies, to: writer)
                writer.newline()
                if out.lineBuffered { writer.flush() } else { writer.flushIfNeeded() }
            } else {
                out.line { b in
                    if plainClock {
                        ExchangeText.text(exchange, into: &b, connections: &connections)
                    } else {
                        ExchangeText.text(exchange, into: &b, connections: &connections, clock: &clock)
                    }
                    if heads { ExchangeText.heads(exchange, bodies: bodies, into: &b) }
                }
            }
        }
        raw?.flush()
        capture.reportUnwritten(raw, source: source)
        writer.flush()
        out.flush()
        report(outcome.result, jsonl: jsonl, extra: [("http", outcome.counters.report)], warnings: outcome.warnings)
        if let e = outcome.result.readError { throw InputError(message: e.description) }
    }
}
