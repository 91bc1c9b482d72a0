import Foundation
import HopCapture
import HopCorrelation

/// `hoptrace watch`: one line (or JSON object) per hop as it completes; a chain's downstream
/// copy carries the links to its other hops.
public enum HopLine {
    public static func text(_ h: Hop, chain: RequestChain?, color: Bool, names: inout InterfaceNames, clock: inout LineClock) -> String {
        let x = h.exchange
        let c = h.connection
        let start = x.request?.firstTimestamp ?? x.response?.firstTimestamp ?? c.firstTimestamp
        var line = clock.prefix(start)
        let role = h.role.rawValue.padding(toLength: 19, withPad: " ", startingAt: 0)
        line += color ? "\u{1b}[\(h.role.isDownstream ? "34" : h.role.isUpstream ? "32" : "90")m\(role)\u{1b}[0m" : role
        line += " \(x.request?.method ?? "-") \(x.request?.target ?? "(request not seen)")"
        line += " → \(x.response.map { String($0.status) } ?? "-")"
        if let q = x.request, let r = x.response { line += " \(Timestamp.duration(Timestamp.elapsed(from: q.firstTimestamp, to: r.lastTimestamp)))" }
        line += "  \(c.client) > \(c.server)"
        if let o = c.originalDestination { line += " (for \(o))" }
        if let i = c.interfaceIndexes.first, let n = names.name(for: i) { line += " on \(n)" }
        if let chain, chain.hops.count > 1 {
            let others = chain.hops.enumerated().filter { $0.element.exchange.connection.id != c.id }
            let links = others.map { i, o -> String in
                // A hop whose request was not captured is timed by its response's first byte.
                let from = h.requestStart ?? h.exchange.response?.firstTimestamp
                let to = o.requestStart ?? o.exchange.response?.firstTimestamp
                guard let from, let to else { return "hop \(i + 1): \(o.role.phrase) \(o.connection.id)" }
                return "hop \(i + 1): \(o.role.phrase) \(o.connection.id) +\(Timestamp.duration(Timestamp.elapsed(from: from, to: to)))"
            }
            line += "  — hop 1 of chain \(chain.id); " + links.joined(separator: "; ")
        } else if let chain, chain.isIncomplete, case .incomplete(let m, _) = chain.completeness {
            line += "  — chain \(chain.id) incomplete: no \(m.rawValue) copy"
        }
        return line
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
