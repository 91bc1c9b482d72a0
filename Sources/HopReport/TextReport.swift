import HopCapture
import HopCorrelation

/// The default report, for people.
public enum TextReport {
    public struct Options: Sendable {
        /// Chains shown in full (the rest are counted).
        public var detailLimit: Int = 20
        public var showDirect: Bool = false
        public init() {}
    }

    public static func render(_ r: AnalysisReport, options: Options = Options()) -> String {
        var out: [String] = []
        let s = r.summary
        out.append("hoptrace analyze — \(r.source)")
        out.append("capture  \(r.packets) packets (\(r.linkType)), \(r.connections) TCP connections, \(s.exchanges) HTTP exchanges")
        out.append("rules    \(r.rulesName) (\(r.rulesOrigin))")
        let pods = r.podAddresses.isEmpty ? "unknown" : r.podAddresses.joined(separator: ", ")
        out.append("pod      \(pods)\(r.podAddressesInferred ? " (inferred; --pod-ip to set)" : "")")
        if let e = r.readError { out.append("warning  \(e)") }
        out.append("")
        out.append("\(s.requestsOnWire) requests on the wire → \(s.logicalRequests) logical requests: \(s.multiHopChains) multi-hop chain\(s.multiHopChains == 1 ? "" : "s"), \(s.incompleteChains) incomplete, \(s.unexplainedDuplicates) unexplained duplicate\(s.unexplainedDuplicates == 1 ? "" : "s")")
        let roleLine = HopRole.allCases.compactMap { role -> String? in
            guard let n = s.roles[role], n > 0 else { return nil }
            return "\(role.rawValue) \(n)"
        }.joined(separator: ", ")
        if !roleLine.isEmpty { out.append("hops     \(roleLine)") }
        let latency = latencyBlock(r.latency)
        if !latency.isEmpty {
            out.append("")
            out.append(contentsOf: latency)
        }
        if s.orphanResponses > 0 {
            let n = s.orphanResponses
            let first = r.orphanResponses.prefix(3).map { h in
                "\(h.exchange.client) → \(h.exchange.server) \(h.exchange.response.map { String($0.status) } ?? "?")"
            }.joined(separator: ", ")
            // Responses to requests the queue's cap emitted early are orphans too, but their
            // request was in the capture: say so rather than blame the capture.
            let overflowed = r.counters.lazy.flatMap(\.items).first { $0.name == "queue-overflow-responses" }?.count ?? 0
            let cap = overflowed > 0 ? " (\(overflowed) of them answer requests emitted unanswered by the per-connection queue's cap: queue-overflows)" : ""
            out.append("orphans  \(n) response\(n == 1 ? "" : "s") whose request is not in the capture (not counted as requests)\(cap): \(first)\(n > 3 ? ", …" : "")")
        }

        let detailed = r.chains.filter { $0.isMultiHop || $0.isIncomplete || $0.hops.first?.role != .direct || options.showDirect }
        if !detailed.isEmpty || !latency.isEmpty { out.append("") }
        for c in detailed.prefix(options.detailLimit) {
            out.append(contentsOf: chainBlock(c, report: r))
            out.append("")
        }
        // Chains the command did not keep (past the detail limit) are counted in `omitted`.
        let more = detailed.count + r.omitted.chains - options.detailLimit
        if more > 0 {
            out.append("… \(more) more chain\(more == 1 ? "" : "s") (--all shows every chain; --format json lists them)")
            out.append("")
        }
        let direct = r.directRequests
        if direct.count > 0 && !options.showDirect {
            out.append("direct (not intercepted): \(direct.count) request\(direct.count == 1 ? "" : "s") — \(direct.summary)")
            out.append("")
        }
        let real = r.duplicates.filter { !$0.isRepeatedStream }
        if !real.isEmpty {
            out.append("unexplained duplicates:")
            for g in real.prefix(options.detailLimit) {
                out.append("  \(g.method) \(g.target) ×\(g.copies) from \(g.client) to \(g.server) (chains \(g.chainIDs.prefix(6).map(String.init).joined(separator: ", "))\(g.chainIDs.count > 6 ? ", …" : ""))")
                out.append("    \(g.explanation)")
            }
            if real.count > options.detailLimit { out.append("  … \(real.count - options.detailLimit) more groups") }
            out.append("")
        }
        if s.repeatedStreams > 0 {
            out.append("repeated requests (load, not duplicates): \(s.repeatedStreamRequests) requests in \(s.repeatedStreams) run\(s.repeatedStreams == 1 ? "" : "s") of identical requests from one client, more copies than a proxy makes")
            out.append("")
        }
        let incomplete = r.chains.filter(\.isIncomplete)
        let incompleteCount = incomplete.count + r.omitted.incompleteAdvice.values.reduce(0, +)
        if incompleteCount > 0 {
            out.append("incomplete chains: \(incompleteCount)")
            var advice = r.omitted.incompleteAdvice
            for c in incomplete { if case .incomplete(let m, let a) = c.completeness { advice["missing \(m.rawValue): \(a)", default: 0] += 1 } }
            for (a, n) in advice.sorted(by: { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }) { out.append("  \(n)× \(a)") }
            out.append("")
        }
        let problems = captureNotes(r.counters)
        if !problems.isEmpty {
            out.append("capture notes: " + problems.joined(separator: ", "))
            out.append("")
        }
        if !r.warnings.isEmpty {
            out.append("warnings:")
            out.append(contentsOf: r.warnings.map { "  " + warningLine($0) })
            out.append("")
        }
        out.append("answer: " + r.answer)
        return out.joined(separator: "\n") + "\n"
    }

    /// What the sidecar costs (`LatencyModel`): a table of percentiles of the client's time, the
    /// app's and the proxy's before, after and in all, then the routes whose proxy added the
    /// most at p99 (at most 5). Empty when no chain was complete; only the client's row when no
    /// chain has a proxy hop.
    static func latencyBlock(_ l: LatencyModel) -> [String] {
        let g = l.overall
        guard g.count(.client) > 0 else { return [] }
        func cell(_ v: Int64?) -> String {
            let t = v.map { Timestamp.duration($0) } ?? "-"
            return String(repeating: " ", count: max(0, 10 - t.count)) + t
        }
        func pad(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: max(1, n - s.count)) }
        let proxied = g.count(.proxyAdded) > 0
        let ambiguous = g.ambiguousSamples(.proxyAdded)
        var out = [pad("latency  \(g.count(.client)) chain\(g.count(.client) == 1 ? "" : "s")", 30)
                   + ["p50", "p90", "p99", "p99.9", "max"].map { String(repeating: " ", count: 10 - $0.count) + $0 }.joined()]
        let rows: [(String, LatencyModel.Measure)] = proxied
            ? [("client waited", .client), ("app took", .app), ("proxy before the app", .proxyBefore),
               ("proxy after the app", .proxyAfter), ("proxy added", .proxyAdded)]
            : [("client waited", .client)]
        for (label, m) in rows {
            out.append(pad("  " + label + (m == .client || g.count(m) == g.count(.client) ? "" : " (\(g.count(m)))"), 30)
                       + g.percentiles(m).map(cell).joined())
        }
        if ambiguous > 0 {
            out.append("  (\(ambiguous) of the proxy's samples come from ambiguous pairings, stated below 0.9)")
        }
        let measure: LatencyModel.Measure = proxied ? .proxyAdded : .client
        // Each route's p50 and p99 worked out once (`percentiles`: one pass each), then ranked.
        let ranked = l.routes.filter { $0.group.count(measure) > 0 }
            .map { r -> (route: String, n: Int, p50: Int64, p99: Int64) in
                let ps = r.group.percentiles(measure)
                return (r.route, r.group.count(measure), ps[0] ?? 0, ps[2] ?? 0)
            }
            .sorted { $0.p99 > $1.p99 }
        if ranked.count > 1 || (ranked.count == 1 && l.routes.count > 1) {
            out.append("  routes by p99 \(proxied ? "proxy added" : "client time") (\(l.routes.count) in all):")
            for r in ranked.prefix(5) {
                out.append("    \(r.route) ×\(r.n): p50 \(Timestamp.duration(r.p50)), p99 \(Timestamp.duration(r.p99))")
            }
        }
        return out
    }

    /// `COUNT NAME` of every counter that signals a problem. Stages count some events each
    /// (the HTTP stage counts the gaps reassembly handed it): a name already listed with the
    /// same count is not repeated, one with another count is named with its section.
    static func captureNotes(_ sections: [AnalysisReport.CounterSection]) -> [String] {
        var listed: [String: Int] = [:]
        var notes: [String] = []
        for sec in sections {
            for item in sec.items where isProblem(sec.name, item.name) {
                if let count = listed[item.name] {
                    if count != item.count { notes.append("\(item.count) \(sec.name) \(item.name)") }
                    continue
                }
                listed[item.name] = item.count
                notes.append("\(item.count) \(item.name)")
            }
        }
        return notes
    }

    /// `[code] message (counts)`: one warning on one line (the text report's block, standard error).
    public static func warningLine(_ w: AnalysisWarning) -> String {
        let counts = w.counts.map { "\($0.value) \($0.name)" }.joined(separator: ", ")
        return "[\(w.code.rawValue)] \(w.message)\(counts.isEmpty ? "" : " (\(counts))")"
    }

    static func isProblem(_ section: String, _ name: String) -> Bool {
        let keys = ["malformed", "truncated", "gap", "inconsistent", "cap", "evict", "lost", "error", "bad-", "unknown", "tls", "non-http", "fragments", "overflow", "backwards", "limit", "not-applicable"]
        return keys.contains { name.contains($0) }
    }

    public static func chainBlock(_ c: RequestChain, report r: AnalysisReport) -> [String] {
        var out: [String] = []
        var head = "chain \(c.id)  \(c.method ?? "?") \(c.target ?? "?")"
        if let h = c.host { head += "  host \(h)" }
        head += "  → \(c.status.map(String.init) ?? "-")"
        head += "  confidence \(String(format2(c.confidence)))"
        if let p = c.proxyAddedNs { head += "  proxy added \(Timestamp.duration(p))" }
        if c.isIncomplete { head += "  [incomplete]" }
        out.append(head)
        // Times are offsets from the chain's first byte: its earliest request start, or, for a
        // chain whose requests were not captured, its earliest response start.
        let t0 = chainOrigin(c)
        for (i, h) in c.hops.enumerated() {
            let cn = h.connection
            var line = "  \(i + 1). \(h.role.rawValue.padding(21))\(cn.client) → \(cn.server)"
            if let o = cn.originalDestination { line += " (original destination \(o))" }
            if let iface = r.interface(of: h) { line += "  on \(iface)" }
            if h.attempt > 0 && c.retries > 0 { line += "  attempt \(h.attempt)" }
            if let info = h.exchange.http2 { line += "  " + HTTP2Rendering.text(info) }
            out.append(line)
            var timing = "     "
            if let t0 {
                if let s = h.requestStart {
                    timing += i == 0 ? Timestamp.timeOfDay(s) : "+" + Timestamp.duration(Timestamp.elapsed(from: t0, to: s))
                } else {
                    timing += "request not captured"
                    if i == 0 { timing += ", from " + Timestamp.timeOfDay(t0) }
                }
                if let e = h.responseEnd { timing += " … +" + Timestamp.duration(Timestamp.elapsed(from: t0, to: e)) }
            }
            timing += "  status \(h.exchange.response.map { String($0.status) } ?? "-")"
            out.append(timing)
            out.append("     rule: \(h.rule.sentence)")
        }
        out.append("  why: \(c.explanation)")
        if !c.evidence.isEmpty { out.append("  evidence: " + c.evidence.joined(separator: "; ")) }
        return out
    }

    /// The first time of a chain: its earliest request start, else its earliest response start
    /// (nil when no hop has either).
    public static func chainOrigin(_ c: RequestChain) -> Int64? {
        var t0: Int64? = nil
        for h in c.hops {
            if let s = h.requestStart { t0 = min(t0 ?? s, s) }
        }
        if t0 != nil { return t0 }
        for h in c.hops {
            if let s = h.exchange.response?.firstTimestamp { t0 = min(t0 ?? s, s) }
        }
        return t0
    }

    static func format2(_ v: Double) -> String {
        guard v.isFinite, v >= 0, v < 1e12 else { return v.isNaN ? "?" : String(v) }
        let x = Int((v * 100).rounded())
        return "\(x / 100).\(x % 100 < 10 ? "0" : "")\(x % 100)"
    }
}

extension String {
    func padding(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}
