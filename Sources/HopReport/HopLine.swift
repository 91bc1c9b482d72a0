import Foundation
import HopCapture
import HopCorrelation

/// `hoptrace watch`: one line (or JSON object) per hop as it completes; a chain's downstream
/// copy carries the links to its other hops.
public enum HopLine {
    public static func text(_ h: Hop, chain: RequestChain?, color: Bool, names: inout InterfaceNames, clock: inout LineClock) -> String {
        LineBuilder.string { write(h, chain: chain, color: color, names: &names, clock: &clock, into: &$0) }
    }

    /// The role column, padded to 19, plain and in each role's colour: made once.
    private static let roleColumns: [(plain: [UInt8], colored: [UInt8])] = HopRole.allCases.map { role in
        let padded = Array(role.rawValue.utf8) + [UInt8](repeating: 0x20, count: max(0, 19 - role.rawValue.utf8.count))
        let c: TextStyle.Color = role.isDownstream ? .blue : role.isUpstream ? .green : .gray
        return (padded, Array(c.start.utf8) + padded + Array(TextStyle.Color.end.utf8))
    }
    private static let phrases: [[UInt8]] = HopRole.allCases.map { Array($0.phrase.utf8) }

    /// The line written straight into `b` (watch's hot path: no String on the way; the
    /// connection's endpoints formatted into bytes, the role column made once).
    public static func write(_ h: Hop, chain: RequestChain?, color: Bool, names: inout InterfaceNames, clock: inout LineClock,
                             into b: inout LineBuilder) {
        // Fields are read in place: binding the exchange, its request or its connection would
        // copy each, with its strings and headers, for every line.
        let start = h.exchange.requestFirstTimestamp ?? h.exchange.response?.firstTimestamp ?? h.exchange.connectionFirstTimestamp
        if clock.write(start, into: &b) { b.byte(0x20) }
        let column = roleColumns[h.role.index]
        (color ? column.colored : column.plain).withUnsafeBytes { b.append($0) }
        b.byte(0x20)
        if h.exchange.request != nil {
            b.text(h.exchange.request!.method); b.byte(0x20); b.text(h.exchange.request!.target)
        } else if let t = h.exchange.tls {
            // The method and target are the chain's plaintext copy's, when it has one.
            if let c = chain, let m = c.method, let tg = c.target { b.text(m); b.byte(0x20); b.text(tg); b.byte(0x20) }
            b.byte(0x5b); b.text(TLSRendering.text(t, turn: h.exchange.sequence)); b.byte(0x5d)
        } else {
            b.ascii("- (request not seen)")
        }
        b.ascii(" → ")
        if h.exchange.response != nil {
            b.int(h.exchange.response!.status)
        } else if h.exchange.tls?.responseFirstTimestamp != nil {
            b.ascii("encrypted")
        } else {
            b.byte(0x2d)
        }
        if let qs = h.exchange.requestFirstTimestamp, let re = h.exchange.responseLastTimestamp {
            b.byte(0x20); b.duration(Timestamp.elapsed(from: qs, to: re))
        }
        b.ascii("  "); b.endpoint(h.exchange.client); b.ascii(" > "); b.endpoint(h.exchange.server)
        if let o = h.exchange.originalDestination { b.ascii(" (for "); b.endpoint(o); b.byte(0x29) }
        if let i = h.exchange.interfaceIndexes.first, let n = names.name(for: i) { b.ascii(" on "); b.text(n) }
        guard let chain else { return }
        if chain.hops.count > 1 {
            let id = h.exchange.connectionID
            // A hop whose request was not captured is timed by its response's first byte.
            let from = h.requestStart ?? h.exchange.response?.firstTimestamp
            b.ascii("  — hop 1 of chain "); b.int(chain.id)
            for i in chain.hops.indices where chain.hops[i].exchange.connectionID != id {
                b.ascii("; hop "); b.int(i + 1); b.ascii(": ")
                phrases[chain.hops[i].role.index].withUnsafeBytes { b.append($0) }
                b.ascii(" c"); b.int(chain.hops[i].exchange.connectionID.value)
                let to = chain.hops[i].requestStart ?? chain.hops[i].exchange.response?.firstTimestamp
                if let from, let to { b.ascii(" +"); b.duration(Timestamp.elapsed(from: from, to: to)) }
            }
        } else if chain.isIncomplete, case .incomplete(let m, _) = chain.completeness {
            b.ascii("  — chain "); b.int(chain.id); b.ascii(" incomplete: no "); b.text(m.rawValue); b.ascii(" copy")
        }
    }

    public static func json(_ h: Hop, chain: RequestChain?, headers: Bool = false) -> String {
        let o = JSONWriter(capacity: 1024)
        o.beginObject()
        o.field("time", iso8601: h.requestStart ?? h.connection.firstTimestamp)
        o.field("chain", chain?.id)
        o.field("hopIndex", chain == nil ? nil : 1)
        o.field("hops", chain?.hops.count)
        o.field("role", h.role.rawValue)
        o.field("method", h.exchange.request?.method)
        o.field("target", h.exchange.request?.target)
        o.field("status", h.exchange.response.map { $0.status })
        o.field("client", h.connection.client.description)
        o.field("server", h.connection.server.description)
        o.field("originalDestination", h.connection.originalDestination?.description)
        if let q = h.exchange.request, let r = h.exchange.response { o.field("durationNs", Timestamp.elapsed(from: q.firstTimestamp, to: r.lastTimestamp)) }
        if headers {
            o.key("requestHeaders")
            o.rawValue(JSONReport.headers(h.exchange.request?.headers))
            o.key("responseHeaders")
            o.rawValue(JSONReport.headers(h.exchange.response?.headers))
            o.field("requestBodyPrefix", h.exchange.request.map { String(decoding: $0.bodyPrefix, as: UTF8.self) })
            o.field("responseBodyPrefix", h.exchange.response.map { String(decoding: $0.bodyPrefix, as: UTF8.self) })
        }
        if let chain {
            o.key("linked")
            o.beginArray()
            for hop in chain.hops.dropFirst() { JSONReport.write(hop: hop, report: nil, to: o) }
            o.endArray()
        }
        o.endObject()
        return o.string
    }
}
