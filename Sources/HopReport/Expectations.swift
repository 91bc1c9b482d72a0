// Expectation files (`NAME.expect.json` beside `NAME.pcap`): what `hoptrace check` compares an
// analysis with. They work on the `analyze --format json` document, parsed with Foundation.
import Foundation

/// An expectation: how to analyze a capture, the structural result it must give, and
/// assertions a user wants in their own CI. Every key is optional: what is absent is not checked.
///
/// ```json
/// {
///   "capture": "lab-seed.pcap",
///   "analyze": {"rules": "istio-2018", "podIPs": ["198.18.10.2"], "filter": "tcp"},
///   "summary": {"requestsOnWire": 6, "logicalRequests": 3, "multiHopChains": 3, ...},
///   "chains": [{"method": "HEAD", "target": "/", "status": 200, "complete": true, "retries": 0,
///               "hops": [{"role": "inbound-intercepted", "client": "198.18.10.1:40000",
///                         "server": "198.18.10.2:80", "status": 200,
///                         "decidingRule": "nat/ISTIO_REDIRECT rule 1"}, ...]}],
///   "assertions": {"noUnexplainedDuplicates": true, "everyRequestAnswered": true,
///                  "noRequestBypassedSidecar": true, "maxProxyAddedMsP99": 50},
///   "warnings": ["single-interface"]
/// }
/// ```
public struct Expectation {
    public var json: [String: Any]

    public init(json: [String: Any]) { self.json = json }

    public static func load(_ path: String) throws -> Expectation {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard let o = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ExpectationError("\(path): not a JSON object")
        }
        return Expectation(json: o)
    }

    /// The capture file, relative to the expectation's directory (default: NAME.pcap).
    public var capture: String? { json["capture"] as? String }
    private var analyze: [String: Any] { json["analyze"] as? [String: Any] ?? [:] }
    public var rules: String? { analyze["rules"] as? String }
    public var podIPs: [String] { analyze["podIPs"] as? [String] ?? [] }
    public var filter: String? { analyze["filter"] as? String }
    public var assertions: [String: Any] { json["assertions"] as? [String: Any] ?? [:] }

    /// The summary keys an expectation records (structural counts, never timings).
    public static let summaryKeys = [
        "requestsOnWire", "logicalRequests", "multiHopChains", "unexplainedDuplicates", "duplicateGroups",
        "repeatedStreams", "incompleteChains", "retries", "ambiguousPairings", "orphanUpstreams", "orphanResponses",
    ]

    /// An expectation recording `analysis` as it is (what `--update` writes); `assertions` kept.
    public static func make(from analysis: [String: Any], capture: String, rules: String?, podIPs: [String],
                            filter: String?, assertions: [String: Any]) -> Expectation {
        var o: [String: Any] = ["capture": capture]
        var a: [String: Any] = ["podIPs": podIPs]
        if let rules { a["rules"] = rules }
        if let filter { a["filter"] = filter }
        o["analyze"] = a
        let s = analysis["summary"] as? [String: Any] ?? [:]
        var summary: [String: Any] = [:]
        for k in summaryKeys { if let v = s[k] { summary[k] = v } }
        if let roles = s["roles"] { summary["roles"] = roles }
        o["summary"] = summary
        o["chains"] = (analysis["chains"] as? [[String: Any]] ?? []).map(chainShape)
        o["warnings"] = warningCodes(analysis)
        if !assertions.isEmpty { o["assertions"] = assertions }
        return Expectation(json: o)
    }

    static func chainShape(_ c: [String: Any]) -> [String: Any] {
        var o: [String: Any] = [:]
        for k in ["method", "target", "status", "complete", "missing", "retries"] { o[k] = c[k] ?? NSNull() }
        o["hops"] = (c["hops"] as? [[String: Any]] ?? []).map { h -> [String: Any] in
            var x: [String: Any] = [:]
            for k in ["role", "attempt", "client", "server", "originalDestination", "method", "target", "status"] {
                x[k] = h[k] ?? NSNull()
            }
            x["decidingRule"] = (h["ruleEvaluation"] as? [String: Any])?["decidingRule"] ?? NSNull()
            return x
        }
        return o
    }

    /// Serialised for review and diffs: one line per top-level key, per chain and per hop.
    public func render() -> String {
        func compact(_ v: Any) -> String {
            if v is NSNull { return "null" }
            if let s = v as? String {
                let d = (try? JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes])) ?? Data("[\"\"]".utf8)
                return String(String(decoding: d, as: UTF8.self).dropFirst().dropLast())
            }
            if let d = v as? [String: Any] {
                return "{" + d.keys.sorted().map { compact($0) + ": " + compact(d[$0]!) }.joined(separator: ", ") + "}"
            }
            if let a = v as? [Any] { return "[" + a.map(compact).joined(separator: ", ") + "]" }
            return Self.show(v)
        }
        var lines = ["{"]
        var keys = json.keys.sorted().filter { $0 != "chains" }
        if json["chains"] != nil { keys.append("chains") }
        for (i, k) in keys.enumerated() {
            let comma = i == keys.count - 1 ? "" : ","
            if k == "chains", let chains = json[k] as? [[String: Any]] {
                lines.append("  \"chains\": [")
                for (j, c) in chains.enumerated() {
                    let rest = c.keys.sorted().filter { $0 != "hops" }.map { compact($0) + ": " + compact(c[$0]!) }
                    if let hops = c["hops"] as? [Any] {
                        lines.append("    {" + rest.joined(separator: ", ") + (rest.isEmpty ? "" : ", ") + "\"hops\": [")
                        for (h, hop) in hops.enumerated() { lines.append("      " + compact(hop) + (h == hops.count - 1 ? "" : ",")) }
                        lines.append("    ]}" + (j == chains.count - 1 ? "" : ","))
                    } else {
                        lines.append("    {" + rest.joined(separator: ", ") + "}" + (j == chains.count - 1 ? "" : ","))
                    }
                }
                lines.append("  ]" + comma)
            } else {
                lines.append("  " + compact(k) + ": " + compact(json[k]!) + comma)
            }
        }
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: comparison

    /// Every difference between this expectation and `analysis`, as readable lines.
    public func differences(_ analysis: [String: Any]) -> [String] {
        var diffs: [String] = []
        let s = analysis["summary"] as? [String: Any] ?? [:]
        if let es = json["summary"] as? [String: Any] {
            for k in es.keys.sorted() where k != "roles" {
                if !Self.same(es[k], s[k]) { diffs.append("summary \(k): expected \(Self.show(es[k])), got \(Self.show(s[k]))") }
            }
            if let er = es["roles"] as? [String: Any] {
                let ar = s["roles"] as? [String: Any] ?? [:]
                for k in er.keys.sorted() where !Self.same(er[k], ar[k] ?? 0) {
                    diffs.append("summary roles \(k): expected \(Self.show(er[k])), got \(Self.show(ar[k] ?? 0))")
                }
            }
        }
        let chains = analysis["chains"] as? [[String: Any]] ?? []
        if let ec = json["chains"] as? [[String: Any]] {
            if ec.count != chains.count { diffs.append("chains: expected \(ec.count), got \(chains.count)") }
            for (i, (e, a)) in zip(ec, chains).enumerated() {
                diffs += Self.chainDifferences(e, a, label: "chain \(i + 1)")
            }
            if chains.count > ec.count {
                for (i, c) in chains.enumerated().dropFirst(ec.count) {
                    diffs.append("chain \(i + 1): unexpected \(Self.describe(c))")
                }
            } else if ec.count > chains.count {
                for (i, c) in ec.enumerated().dropFirst(chains.count) {
                    diffs.append("chain \(i + 1): missing \(Self.describe(c))")
                }
            }
        }
        if let ew = json["warnings"] as? [String] {
            let aw = Self.warningCodes(analysis)
            if ew.sorted() != aw.sorted() {
                diffs.append("warnings: expected [\(ew.joined(separator: ", "))], got [\(aw.joined(separator: ", "))]")
            }
        }
        diffs += assertionFailures(analysis)
        return diffs
    }

    /// The codes of the analysis's warnings, in its order.
    static func warningCodes(_ analysis: [String: Any]) -> [String] {
        (analysis["warnings"] as? [[String: Any]] ?? []).compactMap { $0["code"] as? String }
    }

    static func describe(_ c: [String: Any]) -> String {
        let hops = (c["hops"] as? [[String: Any]] ?? []).map { "\($0["role"] as? String ?? "?") \($0["client"] as? String ?? "?") → \($0["server"] as? String ?? "?")" }
        return "\(c["method"] as? String ?? "?") \(c["target"] as? String ?? "?") → \(show(c["status"])) [\(hops.joined(separator: "; "))]"
    }

    static func chainDifferences(_ e: [String: Any], _ a: [String: Any], label: String) -> [String] {
        var diffs: [String] = []
        for k in e.keys.sorted() where k != "hops" && k != "proxyAddedMsMax" {
            if !same(e[k], a[k]) { diffs.append("\(label): \(k) expected \(show(e[k])), got \(show(a[k]))") }
        }
        if let max = number(e["proxyAddedMsMax"]) {
            if let ns = number(a["proxyAddedNs"]) {
                if ns / 1e6 > max { diffs.append("\(label): proxy added \(fmt(ns / 1e6)) ms, more than the expected maximum \(fmt(max)) ms") }
            } else {
                diffs.append("\(label): proxy added time unknown, expected at most \(fmt(max)) ms")
            }
        }
        if let eh = e["hops"] as? [[String: Any]] {
            let ah = a["hops"] as? [[String: Any]] ?? []
            if eh.count != ah.count {
                diffs.append("\(label): hops expected \(eh.count) (\(eh.map { $0["role"] as? String ?? "?" }.joined(separator: ", "))), got \(ah.count) (\(ah.map { $0["role"] as? String ?? "?" }.joined(separator: ", ")))")
            }
            for (j, (x, y)) in zip(eh, ah).enumerated() {
                var y = y
                if y["decidingRule"] == nil { y["decidingRule"] = (y["ruleEvaluation"] as? [String: Any])?["decidingRule"] ?? NSNull() }
                for k in x.keys.sorted() where !same(x[k], y[k]) {
                    diffs.append("\(label) hop \(j + 1): \(k) expected \(show(x[k])), got \(show(y[k]))")
                }
            }
        }
        return diffs
    }

    /// The user's assertions that do not hold.
    public func assertionFailures(_ analysis: [String: Any]) -> [String] {
        var out: [String] = []
        let a = assertions
        let s = analysis["summary"] as? [String: Any] ?? [:]
        let chains = analysis["chains"] as? [[String: Any]] ?? []
        if a["noUnexplainedDuplicates"] as? Bool == true {
            let n = Int(Self.number(s["unexplainedDuplicates"]) ?? 0)
            if n != 0 {
                let groups = (analysis["duplicates"] as? [[String: Any]] ?? []).filter { $0["repeatedStream"] as? Bool != true }
                let what = groups.prefix(3).map { "\($0["method"] as? String ?? "?") \($0["target"] as? String ?? "?") ×\(Self.show($0["copies"])) from \($0["client"] as? String ?? "?")" }
                out.append("assertion noUnexplainedDuplicates: \(n) unexplained duplicate\(n == 1 ? "" : "s")\(what.isEmpty ? "" : " (\(what.joined(separator: "; ")))")")
            }
        }
        if a["everyRequestAnswered"] as? Bool == true {
            for (i, c) in chains.enumerated() where c["status"] == nil || c["status"] is NSNull {
                out.append("assertion everyRequestAnswered: chain \(i + 1) \(c["method"] as? String ?? "?") \(c["target"] as? String ?? "?") has no response")
            }
        }
        if let v = a["noRequestBypassedSidecar"], (v as? Bool) == true || v is [String: Any] {
            let ports = ((v as? [String: Any])?["ports"] as? [Int]).map(Set.init) ?? [80]
            let pod = Set(((analysis["pod"] as? [String: Any])?["addresses"] as? [String]) ?? [])
            for (i, c) in chains.enumerated() {
                for h in c["hops"] as? [[String: Any]] ?? [] where h["role"] as? String == "direct" {
                    guard let server = h["server"] as? String, let (host, port) = Self.split(server) else { continue }
                    if ports.contains(port) && (pod.contains(host) || pod.isEmpty) {
                        out.append("assertion noRequestBypassedSidecar: chain \(i + 1) \(c["method"] as? String ?? "?") \(c["target"] as? String ?? "?") went from \(h["client"] as? String ?? "?") to \(server) directly, around the sidecar")
                    }
                }
            }
        }
        if let limit = Self.number(a["maxProxyAddedMsP99"]) {
            let values = chains.compactMap { Self.number($0["proxyAddedNs"]) }.sorted()
            if !values.isEmpty {
                let idx = min(values.count - 1, Int((Double(values.count) * 0.99).rounded(.up)) - 1)
                let p99 = values[max(0, idx)] / 1e6
                if p99 > limit { out.append("assertion maxProxyAddedMsP99: p99 of the proxy's added time is \(Self.fmt(p99)) ms, more than \(Self.fmt(limit)) ms (\(values.count) chains)") }
            }
        }
        let known: Set<String> = ["noUnexplainedDuplicates", "everyRequestAnswered", "noRequestBypassedSidecar", "maxProxyAddedMsP99"]
        for k in a.keys.sorted() where !known.contains(k) {
            out.append("assertion \(k): unknown (known: \(known.sorted().joined(separator: ", ")))")
        }
        return out
    }

    static func split(_ endpoint: String) -> (String, Int)? {
        guard let i = endpoint.lastIndex(of: ":"), let p = Int(endpoint[endpoint.index(after: i)...]) else { return nil }
        var host = String(endpoint[..<i])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host, p)
    }

    static func number(_ v: Any?) -> Double? {
        if let i = v as? Int { return Double(i) }
        if let d = v as? Double { return d }
        if let n = v as? NSNumber { return n.doubleValue }
        return nil
    }

    /// A JSON boolean (Foundation on Linux gives NSNumbers of type "c" for them).
    static func boolValue(_ v: Any) -> Bool? {
        if type(of: v) == Bool.self { return v as? Bool }
        if let n = v as? NSNumber {
            let t = String(cString: n.objCType)
            if t == "c" || t == "B" { return n.boolValue }
        }
        return nil
    }

    static func fmt(_ d: Double) -> String { String(format: "%.3f", d) }

    /// Equality of JSON values; absent and null are the same.
    static func same(_ x: Any?, _ y: Any?) -> Bool {
        let xn = x == nil || x is NSNull, yn = y == nil || y is NSNull
        if xn || yn { return xn && yn }
        if let a = x as? String, let b = y as? String { return a == b }
        if let a = x as? NSNumber, let b = y as? NSNumber { return a == b }
        if let a = x as? [Any], let b = y as? [Any] { return a.count == b.count && zip(a, b).allSatisfy { same($0, $1) } }
        if let a = x as? [String: Any], let b = y as? [String: Any] {
            return Set(a.keys).union(b.keys).allSatisfy { same(a[$0], b[$0]) }
        }
        return false
    }

    static func show(_ v: Any?) -> String {
        guard let v, !(v is NSNull) else { return "null" }
        if let s = v as? String { return s }
        if let b = boolValue(v) { return b ? "true" : "false" }
        if let n = v as? NSNumber { return n.stringValue }
        if let d = try? JSONSerialization.data(withJSONObject: v, options: [.sortedKeys]) { return String(decoding: d, as: UTF8.self) }
        return "\(v)"
    }
}

public struct ExpectationError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}
