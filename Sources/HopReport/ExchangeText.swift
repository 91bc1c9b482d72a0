import HopCapture
import HopHTTP

/// `hoptrace http`: one line per HTTP exchange, written straight into a `LineBuilder`, with
/// the heads and body prefixes under it on request (`-A`, `--headers`).
public enum ExchangeText {
    /// Body bytes `-A` shows of each message.
    public static let bodyPrefixBytes = 256

    /// The request and response heads, indented, after an exchange's line; with `bodies`,
    /// each body's kept prefix after its head (as tcpdump -A: printable ASCII, '.' for the
    /// rest, a line per LF).
    public static func heads(_ x: HTTPExchange, bodies: Bool = false, into b: inout LineBuilder) {
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
    public static func body(_ prefix: [UInt8], of length: Int64, mark: UInt8, into b: inout LineBuilder) {
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

    public static func text(_ x: HTTPExchange) -> String {
        var connections = ConnectionTextCache()
        return LineBuilder.string { text(x, into: &$0, connections: &connections) }
    }

    /// The text line, written straight into the output buffer; `connections` keeps the
    /// connection part of recent lines.
    public static func text(_ x: HTTPExchange, into b: inout LineBuilder, connections: inout ConnectionTextCache) {
        // Fields are read in place (`x.request?.…`): binding the request, the response or the
        // connection would copy each, with its strings and headers, for every line.
        b.timeOfDay(x.request?.firstTimestamp ?? x.response?.firstTimestamp ?? x.tls?.requestFirstTimestamp ?? x.connectionFirstTimestamp)
        rest(x, into: &b, connections: &connections)
    }

    /// The line with its time as `clock` says (-t…); `color`: its status in colour.
    public static func text(_ x: HTTPExchange, into b: inout LineBuilder, connections: inout ConnectionTextCache, clock: inout LineClock,
                            color: Bool = false) {
        let start = x.request?.firstTimestamp ?? x.response?.firstTimestamp ?? x.tls?.requestFirstTimestamp ?? x.connectionFirstTimestamp
        let time = clock.text(start)
        if let time { b.text(time) }
        let lineStart = b.count
        rest(x, into: &b, connections: &connections, color: color)
        if time == nil { b.remove(at: lineStart) }  // -t: no time, no space before the connection
    }

    /// The line after its time.
    public static func rest(_ x: HTTPExchange, into b: inout LineBuilder, connections: inout ConnectionTextCache, color: Bool = false) {
        connections.append(x, into: &b)
        if let line = x.request?.malformedLine {
            b.ascii(" (malformed request line \""); b.text(line); b.ascii("\")")
        } else if let method = x.request?.method {
            // Each field through `?.`, read in place: binding the request retains and releases
            // its storage (it copied every field before requests kept them in shared storage).
            b.byte(0x20); b.text(method); b.byte(0x20); b.text(x.request?.target ?? "")
            if let h = x.request?.host { b.ascii(" host="); b.text(h) }
        } else if let info = x.http2 {
            b.byte(0x20); b.text(HTTP2Rendering.missingRequest(info))
        } else if let t = x.tls {
            b.byte(0x20); b.text(TLSRendering.text(t, turn: x.sequence))
            if t.multiplexed != nil {
                b.ascii(": "); b.text(TLSRendering.sizes(t))
                if !x.flags.isEmpty { b.byte(0x20); b.text(x.flags.description) }
                return
            }
            b.ascii(x.tls!.responseFirstTimestamp == nil ? " → - " : " → ")
            b.text(TLSRendering.sizes(t))
            if let end = t.responseLastTimestamp {
                b.byte(0x20); b.duration(Timestamp.elapsed(from: t.requestFirstTimestamp, to: end))
            }
            if !x.flags.isEmpty { b.byte(0x20); b.text(x.flags.description) }
            return
        } else {
            b.ascii(" (request not seen)")
        }
        if let status = x.response?.status {
            b.ascii(" → ")
            if color { b.text(TextStyle.Color.status(status).start) }
            b.int(status)
            if let reason = x.response?.reason, !reason.isEmpty { b.byte(0x20); b.text(reason) }
            if color { b.text(TextStyle.Color.end) }
        } else {
            b.ascii(" → -")
        }
        b.ascii(" req "); b.int(x.request?.bodyLength ?? 0); b.ascii(" B resp "); b.int(x.response?.bodyLength ?? 0); b.ascii(" B")
        if let qs = x.request?.firstTimestamp, let re = x.response?.lastTimestamp {
            b.byte(0x20); b.duration(Timestamp.elapsed(from: qs, to: re))
        }
        if let info = x.http2 {
            // Streams run side by side: the position is how many were open, not a pipeline.
            b.byte(0x20); HTTP2Rendering.write(info, into: &b)
            if x.pipelinePosition > 0 { b.ascii(" concurrent#"); b.int(x.pipelinePosition) }
        } else if x.pipelinePosition > 0 { b.ascii(" pipelined#"); b.int(x.pipelinePosition) }
        if !x.flags.isEmpty { b.byte(0x20); b.text(x.flags.description) }
    }
}

/// ` cID client > server` (and ` (original destination o)`) of recent connections, as bytes:
/// formatted once per connection (it repeats on every exchange of a keep-alive connection).
public struct ConnectionTextCache {
    public init() {}

    private struct Entry {
        var id = -1
        var client = Endpoint(IPAddress(ipv4: 0), 0)
        var server = Endpoint(IPAddress(ipv4: 0), 0)
        var original: Endpoint?
        var text: [UInt8] = []
    }
    private var entries = [Entry](repeating: Entry(), count: 256)

    public mutating func append(_ x: HTTPExchange, into b: inout LineBuilder) {
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
