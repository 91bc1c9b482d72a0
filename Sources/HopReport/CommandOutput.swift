import HopCorrelation
import HopHTTP

extension Output {
    /// A warning, as hoptrace says it (on standard error): `hoptrace: warning: TEXT`.
    public func warning(_ text: String) {
        line("hoptrace: warning: " + text)
    }

    /// An analysis's warnings, one line each (`TextReport.warningLine`).
    public func warnings(_ warnings: [AnalysisWarning]) {
        for w in warnings { warning(TextReport.warningLine(w)) }
    }
}

/// `http`'s stream on an `Output`: each exchange as one text line (`ExchangeText`), or one
/// JSON object per line (`jsonl`, written through a `JSONWriter` in 64 KiB blocks, each line
/// at once when the output is line-buffered).
public final class ExchangeLines {
    let out: Output
    let jsonl: Bool, headers: Bool, bodies: Bool, plainClock: Bool, color: Bool
    let writer: JSONWriter
    // Touched only by the thread that writes the stream.
    @exclusivity(unchecked) var clock: LineClock
    @exclusivity(unchecked) var connections = ConnectionTextCache()

    /// `headers`: each exchange's request and response heads too; `bodies`: the first bytes of
    /// each body (what the parser kept, `ExchangeText.bodyPrefixBytes`), in ASCII; `clock`:
    /// how text lines begin with their time; `color`: the status in colour (a terminal).
    public init(out: Output, jsonl: Bool, headers: Bool, bodies: Bool, clock: LineClock, color: Bool = false) {
        self.out = out
        self.color = color
        self.jsonl = jsonl
        self.headers = headers
        self.bodies = bodies
        self.clock = clock
        plainClock = clock.level == 0
        writer = JSONWriter(capacity: Output.flushBytes + 8192, flushThreshold: Output.flushBytes) { out.write(bytes: $0) }
    }

    public func write(_ exchange: HTTPExchange) {
        if jsonl {
            JSONReport.write(exchange: exchange, headers: headers, bodies: bodies, to: writer)
            writer.newline()
            if out.lineBuffered { writer.flush() } else { writer.flushIfNeeded() }
            return
        }
        out.line { b in
            if plainClock && !color {
                ExchangeText.text(exchange, into: &b, connections: &connections)
            } else {
                ExchangeText.text(exchange, into: &b, connections: &connections, clock: &clock, color: color)
            }
            if headers { ExchangeText.heads(exchange, bodies: bodies, into: &b) }
        }
    }

    /// Hands what jsonl has written to the output (which the caller flushes).
    public func finish() { writer.flush() }
}
