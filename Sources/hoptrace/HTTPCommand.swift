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
    static let asciiHelp = "Show each exchange's request and response heads after its line, and the first \(bodyPrefixBytes) bytes of each body in ASCII ('.' for what is not printable; as `requestBodyPrefix` / `responseBodyPrefix` in jsonl)."
    /// Body bytes `-A` shows of each message.
    static let bodyPrefixBytes = 256

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
        if bodies { configuration.bodyPrefixBytes = Self.bodyPrefixBytes }
        let analyzer = HTTPAnalyzer(configuration: configuration) { exchange in
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
                        Self.text(exchange, into: &b, connections: &connections)
                    } else {
                        Self.text(exchange, into: &b, connections: &connections, clock: &clock)
                    }
                    if heads { Self.heads(exchange, bodies: bodies, into: &b) }
                }
            }
        }
        let raw = try capture.writer(for: source)
        // -c stops the read from the analysis side: keep both on one thread then.
        let result = FlowPipeline.run(source: source, consumer: analyzer, threaded: capture.count == nil,
                                      raw: raw.map { w in { w.write($0) } }, shouldStop: { printed >= limit })
        raw?.flush()
        capture.reportUnwritten(raw, source: source)
        analyzer.finish()
        writer.flush()
        out.flush()
        report(result, jsonl: jsonl, extra: [("http", analyzer.counters.report)],
               warnings: [AnalysisWarnings.oneSided(flows: result.flows, http: analyzer.counters, filter: capture.filterExpression)].compactMap { $0 })
        if let e = result.readError { throw InputError(message: e.description) }
    }

    /// The request and response heads, indented, after an exchange's line; with `bodies`,
    /// each body's kept prefix after its head (as tcpdump -A: printable ASCII, '.' for the
    /// rest, a line per LF).
    static func heads(_ x: HTTPExchange, bodies: Bool = false, into b: inout LineBuilder) {
        if let q = x.request, q.malformedLine == nil {
            b.ascii("\n    > "); b.text(q.method); b.byte(0x20); b.text(q.target); b.byte(0x20); b.text(q.version.description)
            for h in q.headers { b.ascii("\n    > "); b.text(h.name); b.ascii(": "); b.text(h.value) }
            if bodies { body(q.bodyPrefix, of: q.bodyLength, mark: 0x3e, into: &b) }
        }
        if let r = x.response {
            b.ascii("\n    < "); b.text(r.version.description); b.byte(0x20); b.int(r.status); b.byte(0x20); b.text(r.reason)
            for h in r.headers { b.ascii("\n    < "); b.text(h.name); b.ascii(": "); b.text(h.value) }
            if bodies { body(r.bodyPrefix, of: r.bodyLength, mark: 0x3c, into: &b) }
        }
    }

    /// A body prefix under its head: a blank marked line, then its lines (CR dropped before
    /// LF), then how much of the body that was when it is not all of it.
    static func body(_ prefix: [UInt8], of length: Int64, mark: UInt8, into b: inout LineBuilder) {
        guard length > 0 else { return }
        func start() { b.ascii("\n    "); b.byte(mark); b.byte(0x20) }
        b.ascii("\n    "); b.byte(mark)
        start()
        for (i, c) in prefix.enumerated() {
            if c == 0x0a { start(); continue }
            if c == 0x0d, i + 1 < prefix.count, prefix[i + 1] == 0x0a { continue }
            b.byte(c >= 0x20 && c < 0x7f ? c : 0x2e)
        }
        if Int64(prefix.count) < length {
            start()
            b.byte(0x5b); b.int(prefix.count); b.ascii(" of "); b.int(length); b.ascii(" body bytes shown]")
        }
    }

    static func text(_ x: HTTPExchange) -> String {
        var connections = ConnectionTextCache()
        return LineBuilder.string { text(x, into: &$0, connections: &connections) }
    }

    /// The text line, written straight into the output buffer; `connections` keeps the
    /// connection part of recent lines.
    static func text(_ x: HTTPExchange, into b: inout LineBuilder, connections: inout ConnectionTextCache) {
        // Fields are read in place (`x.request?.…`): binding the request, the response or the
        // connection would copy each, with its strings and headers, for every line.
        b.timeOfDay(x.request?.firstTimestamp ?? x.response?.firstTimestamp ?? x.connectionFirstTimestamp)
        rest(x, into: &b, connections: &connections)
    }

    /// The line with its time as `clock` says (-t…).
    static func text(_ x: HTTPExchange, into b: inout LineBuilder, connections: inout ConnectionTextCache, clock: inout LineClock) {
        let start = x.request?.firstTimestamp ?? x.response?.firstTimestamp ?? x.connectionFirstTimestamp
        let time = clock.text(start)
        if let time { b.text(time) }
        let lineStart = b.count
        rest(x, into: &b, connections: &connections)
        if time == nil { b.remove(at: lineStart) }  // -t: no time, no space before the connection
    }

    /// The line after its time.
    static func rest(_ x: HTTPExchange, into b: inout LineBuilder, connections: inout ConnectionTextCache) {
        connections.append(x, into: &b)
        if let line = x.request?.malformedLine {
            b.ascii(" (malformed request line \""); b.text(line); b.ascii("\")")
        } else if x.request != nil {
            b.byte(0x20); b.text(x.request!.method); b.byte(0x20); b.text(x.request!.target)
            if let h = x.request!.host { b.ascii(" host="); b.text(h) }
        } else {
            b.ascii(" (request not seen)")
        }
        if x.response != nil {
            b.ascii(" → "); b.int(x.response!.status); b.byte(0x20); b.text(x.response!.reason)
        } else {
            b.ascii(" → -")
        }
        b.ascii(" req "); b.int(x.request?.bodyLength ?? 0); b.ascii(" B resp "); b.int(x.response?.bodyLength ?? 0); b.ascii(" B")
        if let qs = x.request?.firstTimestamp, let re = x.response?.lastTimestamp {
            b.byte(0x20); b.duration(Timestamp.elapsed(from: qs, to: re))
        }
        if x.pipelinePosition > 0 { b.ascii(" pipelined#"); b.int(x.pipelinePosition) }
        if !x.flags.isEmpty { b.byte(0x20); b.text(x.flags.description) }
    }
}

/// ` cID client > server` (and ` (original destination o)`) of recent connections, as bytes:
/// formatted once per connection (it repeats on every exchange of a keep-alive connection).
struct ConnectionTextCache {
    private struct Entry {
        var id = -1
        var client = Endpoint(IPAddress(ipv4: 0), 0)
        var server = Endpoint(IPAddress(ipv4: 0), 0)
        var original: Endpoint?
        var text: [UInt8] = []
    }
    private var entries = [Entry](repeating: Entry(), count: 256)

    mutating func append(_ x: HTTPExchange, into b: inout LineBuilder) {
        let id = x.connectionID.value
        let client = x.client, server = x.server, original = x.originalDestination
        let k = id & 255
        // The connection's view can change (roles swapped mid-stream, a NAT join): compare it.
        if entries[k].id != id || entries[k].client != client || entries[k].server != server || entries[k].original != original {
            let text = LineBuilder.bytes { t in
                t.ascii(" c"); t.int(id); t.byte(0x20)
                t.endpoint(client); t.ascii(" > "); t.endpoint(server)
                if let o = original { t.ascii(" (original destination "); t.endpoint(o); t.byte(0x29) }
            }
            entries[k] = Entry(id: id, client: client, server: server, original: original, text: text)
        }
        entries[k].text.withUnsafeBytes { b.append($0) }
    }
}
