// Expectation files (`NAME.expect.json` beside `NAME.pcap`): what `hoptrace check` compares an
// analysis with. They work on the `analyze --format json` document read as a `ReportDocument`;
// the expectation itself is a `JSONValue` tree (every key optional).
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
    public var json: [String: JSONValue]

    public init(json: [String: JSONValue]) { self.json = json }

    public static func load(_ path: String) throws -> Expectation {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard let o = try ReportCoding.decode(JSONValue.self, from: data).object else {
            throw ExpectationError("\(path): not a JSON object")
        }
        return Expectation(json: o)
    }

    /// The capture file, relative to the expectation's directory (default: NAME.pcap).
    public var capture: String? { json["capture"]?.string }
    private var analyze: JSONValue { json["analyze"] ?? .null }
    public var rules: String? { analyze["rules"]?.string }
    public var podIPs: [String] { analyze["podIPs"]?.array?.compactMap(\.string) ?? [] }
    public var filter: String? { analyze["filter"]?.string }
    public var assertions: [String: JSONValue] { json["assertions"]?.object ?? [:] }

    /// The summary keys an expectation records (structural counts, never timings).
    public static let summaryKeys = [
        "requestsOnWire", "logicalRequests", "multiHopChains", "unexplainedDuplicates", "duplicateGroups",
        "repeatedStreams", "incompleteChains", "retries", "ambiguousPairings", "orphanUpstreams", "orphanResponses",
    ]

    /// An expectation recording `analysis` as it is (what `--update` writes); `assertions` kept.
    public static func make(from analysis: ReportDocument, capture: String, rules: String?, podIPs: [String],
                            filter: String?, assertions: [String: JSONValue]) -> Expectation {
        var o: [String: JSONValue] = ["capture": .string(capture)]
        var a: [String: JSONValue] = ["podIPs": .array(podIPs.map(JSONValue.string))]
        if let rules { a["rules"] = .string(rules) }
        if let filter { a["filter"] = .string(filter) }
        o["analyze"] = .object(a)
        let s = JSONValue(encoding: analysis.summary)
        var summary: [String: JSONValue] = [:]
        for k in summaryKeys + ["roles"] { if let v = s[k] { summary[k] = v } }
        o["summary"] = .object(summary)
        let connections = analysis.connectionsByID
        o["chains"] = .array(analysis.chains.map { chainShape($0, in: analysis, connections: connections) })
        o["warnings"] = .array(warningCodes(analysis).map(JSONValue.string))
        if !assertions.isEmpty { o["assertions"] = .object(assertions) }
        return Expectation(json: o)
    }

    /// The keys of `value` an expectation records, null where `value` has none.
    static func pick(_ keys: [String], from value: JSONValue) -> [String: JSONValue] {
        var o: [String: JSONValue] = [:]
        for k in keys { o[k] = value[k] ?? .null }
        return o
    }

    static func chainShape(_ c: ReportChain, in analysis: ReportDocument, connections: [Int: ReportConnection]) -> JSONValue {
        var o = pick(["method", "target", "status", "complete", "missing", "retries"], from: JSONValue(encoding: c))
        o["hops"] = .array(c.hops.map { h in
            var x = pick(["role", "attempt", "client", "server", "originalDestination", "method", "target", "status"], from: JSONValue(encoding: h))
            x["decidingRule"] = decidingRule(of: h, in: analysis, connections: connections)
            return .object(x)
        })
        return .object(o)
    }

    /// The hop's deciding rule (its own evaluation's, else its connection's), or null.
    static func decidingRule(of h: ReportHop, in analysis: ReportDocument, connections: [Int: ReportConnection]) -> JSONValue {
        analysis.ruleEvaluation(of: h, in: connections)?.decidingRule.map(JSONValue.string) ?? .null
    }

    /// Serialised for review and diffs: one line per top-level key, per chain and per hop.
    public func render() -> String {
        func compact(_ v: JSONValue) -> String { v.text(separator: ", ", colon: ": ") }
        var lines = ["{"]
        var keys = json.keys.sorted().filter { $0 != "chains" }
        if json["chains"] != nil { keys.append("chains") }
        for (i, k) in keys.enumerated() {
            let comma = i == keys.count - 1 ? "" : ","
            if k == "chains", let chains = json[k]?.array, chains.allSatisfy({ $0.object != nil }) {
                lines.append("  \"chains\": [")
                for (j, chain) in chains.enumerated() {
                    let c = chain.object!
                    let rest = c.keys.sorted().filter { $0 != "hops" }.map { compact(.string($0)) + ": " + compact(c[$0]!) }
                    if let hops = c["hops"]?.array {
                        lines.append("    {" + rest.joined(separator: ", ") + (rest.isEmpty ? "" : ", ") + "\"hops\": [")
                        for (h, hop) in hops.enumerated() { lines.append("      " + compact(hop) + (h == hops.count - 1 ? "" : ",")) }
                        lines.append("    ]}" + (j == chains.count - 1 ? "" : ","))
                    } else {
                        lines.append("    {" + rest.joined(separator: ", ") + "}" + (j == chains.count - 1 ? "" : ","))
                    }
                }
                lines.append("  ]" + comma)
            } else {
                lines.append("  " + compact(.string(k)) + ": " + compact(json[k]!) + comma)
            }
        }
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: comparison

    /// Every difference between this expectation and `analysis`, as readable lines.
    public func differences(_ analysis: ReportDocument) -> [String] {
        var diffs: [String] = []
        let s = JSONValue(encoding: analysis.summary)
        if let es = json["summary"]?.object {
            for k in es.keys.sorted() where k != "roles" {
                if !Self.same(es[k], s[k]) { diffs.append("summary \(k): expected \(Self.show(es[k])), got \(Self.show(s[k]))") }
            }
            if let er = es["roles"]?.object {
                let ar = analysis.summary.roles
                for k in er.keys.sorted() where !Self.same(er[k], .int(Int64(ar[k] ?? 0))) {
                    diffs.append("summary roles \(k): expected \(Self.show(er[k])), got \(ar[k] ?? 0)")
                }
            }
        }
        // Each actual hop with its `decidingRule` (from its connection's record).
        let connections = analysis.connectionsByID
        let chains = analysis.chains.map { c -> JSONValue in
            var o = JSONValue(encoding: c).object ?? [:]
            o["hops"] = .array(c.hops.map { h in
                var x = JSONValue(encoding: h).object ?? [:]
                x["decidingRule"] = Self.decidingRule(of: h, in: analysis, connections: connections)
                return .object(x)
            })
            return .object(o)
        }
        if let ec = json["chains"]?.array {
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
        if let ew = json["warnings"]?.array?.compactMap(\.string) {
            let aw = Self.warningCodes(analysis)
            if ew.sorted() != aw.sorted() {
                diffs.append("warnings: expected [\(ew.joined(separator: ", "))], got [\(aw.joined(separator: ", "))]")
            }
        }
        diffs += assertionFailures(analysis)
        return diffs
    }

    /// The codes of the analysis's warnings, in its order.
    static func warningCodes(_ analysis: ReportDocument) -> [String] {
        analysis.warnings.map(\.code)
    }

    /// `METHOD target → status [role client → server; …]` of a chain (expected or analysed).
    static func describe(_ c: JSONValue) -> String {
        let hops = (c["hops"]?.array ?? []).map { "\($0["role"]?.string ?? "?") \($0["client"]?.string ?? "?") → \($0["server"]?.string ?? "?")" }
        return "\(c["method"]?.string ?? "?") \(c["target"]?.string ?? "?") → \(show(c["status"])) [\(hops.joined(separator: "; "))]"
    }

    static func chainDifferences(_ e: JSONValue, _ a: JSONValue, label: String) -> [String] {
        var diffs: [String] = []
        let expected = e.object ?? [:]
        for k in expected.keys.sorted() where k != "hops" && k != "proxyAddedMsMax" {
            if !same(expected[k], a[k]) { diffs.append("\(label): \(k) expected \(show(expected[k])), got \(show(a[k]))") }
        }
        if let max = expected["proxyAddedMsMax"]?.number {
            if let ns = a["proxyAddedNs"]?.number {
                if ns / 1e6 > max { diffs.append("\(label): proxy added \(fmt(ns / 1e6)) ms, more than the expected maximum \(fmt(max)) ms") }
            } else {
                diffs.append("\(label): proxy added time unknown, expected at most \(fmt(max)) ms")
            }
        }
        if let eh = expected["hops"]?.array {
            let ah = a["hops"]?.array ?? []
            if eh.count != ah.count {
                diffs.append("\(label): hops expected \(eh.count) (\(eh.map { $0["role"]?.string ?? "?" }.joined(separator: ", "))), got \(ah.count) (\(ah.map { $0["role"]?.string ?? "?" }.joined(separator: ", ")))")
            }
            for (j, (x, y)) in zip(eh, ah).enumerated() {
                let y = y.object ?? [:]
                let x = x.object ?? [:]
                for k in x.keys.sorted() where !same(x[k], y[k]) {
                    diffs.append("\(label) hop \(j + 1): \(k) expected \(show(x[k])), got \(show(y[k]))")
                }
            }
        }
        return diffs
    }

    /// The user's assertions that do not hold.
    public func assertionFailures(_ analysis: ReportDocument) -> [String] {
        var out: [String] = []
        let a = assertions
        let chains = analysis.chains
        if a["noUnexplainedDuplicates"]?.bool == true {
            let n = analysis.summary.unexplainedDuplicates
            if n != 0 {
                let groups = analysis.duplicates.filter { !$0.repeatedStream }
                let what = groups.prefix(3).map { "\($0.method) \($0.target) ×\($0.copies) from \($0.client)" }
                out.append("assertion noUnexplainedDuplicates: \(n) unexplained duplicate\(n == 1 ? "" : "s")\(what.isEmpty ? "" : " (\(what.joined(separator: "; ")))")")
            }
        }
        if a["everyRequestAnswered"]?.bool == true {
            // An encrypted copy answered by an encrypted response turn has no status to read.
            for (i, c) in chains.enumerated() where c.status == nil && (c.hops.first?.tls?.responseRecords ?? 0) == 0 {
                out.append("assertion everyRequestAnswered: chain \(i + 1) \(c.method ?? "?") \(c.target ?? "?") has no response")
            }
        }
        if let v = a["noRequestBypassedSidecar"], v.bool == true || v.object != nil {
            let ports = (v["ports"]?.array?.compactMap { $0.number.map { Int($0) } }).map(Set.init) ?? [80]
            let pod = Set(analysis.pod.addresses)
            for (i, c) in chains.enumerated() {
                for h in c.hops where h.role == "direct" {
                    guard let (host, port) = Self.split(h.server) else { continue }
                    if ports.contains(port) && (pod.contains(host) || pod.isEmpty) {
                        out.append("assertion noRequestBypassedSidecar: chain \(i + 1) \(c.method ?? "?") \(c.target ?? "?") went from \(h.client) to \(h.server) directly, around the sidecar")
                    }
                }
            }
        }
        if let limit = a["maxProxyAddedMsP99"]?.number {
            let values = chains.compactMap { $0.proxyAddedNs.map(Double.init) }.sorted()
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

    static func fmt(_ d: Double) -> String { String(format: "%.3f", d) }

    static func same(_ x: JSONValue?, _ y: JSONValue?) -> Bool { JSONValue.same(x, y) }

    static func show(_ v: JSONValue?) -> String { JSONValue.show(v) }
}

public struct ExpectationError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}
