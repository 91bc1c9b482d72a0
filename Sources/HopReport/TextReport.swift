import HopCapture
import HopCorrelation

/// The default report, for people: the answer first, then what the sidecar costs (the
/// latency split and a table of routes), then the problems (the worst of each kind, with their
/// chain ids), then one line per chain (the first `chainLimit`), then the notes. Wrapped to
/// `TextStyle.width` with a hanging indent; coloured when `TextStyle.color` says so. `--all`
/// (`full`) shows every chain in full, `--chain ID` (`selected`) only the chains asked for.
public enum TextReport {
    public struct Options: Sendable {
        /// Chains listed one per line (the rest are counted).
        public var chainLimit: Int = 20
        /// Every chain in full, direct requests included (`--all`).
        public var full: Bool = false
        /// Show only these chains, in full (`--chain ID`); an id not found is said so.
        public var selected: [Int]? = nil
        /// Routes in the table (the rest are counted).
        public var routeLimit: Int = 6
        /// Problems listed per kind.
        public var problemLimit: Int = 2
        public var style: TextStyle = .plain
        public init() {}
    }

    public static func render(_ r: AnalysisReport, options o: Options = Options()) -> String {
        let st = o.style
        var out: [String] = []
        func label(_ name: String, _ text: String) {
            let lines = st.wrap(text, first: name.padding(9), indent: 9)
            out.append(st.paint(lines[0], prefix: name.count, .bold))
            out.append(contentsOf: lines.dropFirst())
        }
        let s = r.summary
        out.append(contentsOf: st.wrap(r.source, first: "hoptrace analyze — ", indent: 2))
        label("capture", "\(r.packets) packets (\(r.linkType)), \(r.connections) TCP connections, \(s.exchanges) HTTP exchanges")
        label("rules", "\(r.rulesName) (\(r.rulesOrigin))")
        let pods = r.podAddresses.isEmpty ? "unknown" : r.podAddresses.joined(separator: ", ")
        label("pod", "\(pods)\(r.podAddressesInferred ? " (inferred; --pod-ip to set)" : "")")
        if let e = r.readError { label("warning", e) }

        if let ids = o.selected {
            for id in ids {
                out.append("")
                if let c = r.chains.first(where: { $0.id == id }) {
                    out.append(contentsOf: chainBlock(c, report: r, style: st))
                } else {
                    out.append("no chain \(id): the capture has \(plural(r.chainCount, "chain")) (ids 1 to \(r.chainCount))")
                }
            }
            return out.joined(separator: "\n") + "\n"
        }

        out.append("")
        label("answer", r.answer)
        let roleLine = HopRole.allCases.compactMap { role -> String? in
            guard let n = s.roles[role], n > 0 else { return nil }
            return "\(role.rawValue) \(n)"
        }.joined(separator: ", ")
        if !roleLine.isEmpty { label("hops", roleLine) }

        let latency = latencyBlock(r.latency, style: st)
        if !latency.isEmpty {
            out.append("")
            out.append(contentsOf: latency)
        }
        let routes = routeTable(r.latency, limit: o.routeLimit, style: st)
        if !routes.isEmpty {
            out.append("")
            out.append(contentsOf: routes)
        }
        let problems = problemBlock(r, limit: o.problemLimit, style: st)
        out.append("")
        out.append(contentsOf: problems)

        if o.full {
            for c in r.chains {
                out.append("")
                out.append(contentsOf: chainBlock(c, report: r, style: st))
            }
        } else {
            let listed = r.chains.filter { $0.isMultiHop || $0.isIncomplete || $0.firstRole != .direct }
            if !listed.isEmpty {
                out.append("")
                let heading = st.wrap("one line each: id, request, status, hops, client's time, proxy added", first: "chains   ", indent: 9)
                out.append(st.paint(heading[0], prefix: 6, .bold))
                out.append(contentsOf: heading.dropFirst())
                for c in listed.prefix(o.chainLimit) { out.append(chainLine(c, style: st)) }
                // Chains the command did not keep (past the limit) are counted in `omitted`.
                let more = listed.count + r.omitted.chains - min(listed.count, o.chainLimit)
                if more > 0 {
                    out.append(contentsOf: st.wrap("… \(plural(more, "more chain")): --all shows every chain in full, --chain ID one of them, --format json lists them", indent: 4))
                }
            }
        }
        let direct = r.directRequests
        if direct.count > 0 && !o.full {
            out.append("")
            out.append(contentsOf: st.wrap("direct (not intercepted): \(plural(direct.count, "request")) — \(direct.summary)", indent: 4))
        }
        if s.repeatedStreams > 0 {
            out.append("")
            out.append(contentsOf: st.wrap("repeated requests (load, not duplicates): \(plural(s.repeatedStreamRequests, "request")) in \(plural(s.repeatedStreams, "run")) of identical requests from one client, more copies than a proxy makes", indent: 4))
        }
        let notes = captureNotes(r.counters)
        if !notes.isEmpty {
            out.append("")
            out.append(contentsOf: st.wrap(notes.joined(separator: ", "), first: "capture notes: ", indent: 4))
        }
        if !r.warnings.isEmpty {
            out.append("")
            out.append(st.paint("warnings", .yellow))
            for w in r.warnings { out.append(contentsOf: st.wrap(warningLine(w), first: "  ", indent: 4)) }
        }
        return out.joined(separator: "\n") + "\n"
    }

    /// `1 chain`, `2 chains`; `1 retry`, `2 retries` (a word ending in a consonant and y).
    public static func plural(_ n: Int, _ word: String) -> String {
        if n == 1 { return "\(n) \(word)" }
        if word.hasSuffix("y"), let before = word.dropLast().last, !"aeiou".contains(before) {
            return "\(n) \(word.dropLast())ies"
        }
        if word.hasSuffix("s") || word.hasSuffix("x") { return "\(n) \(word)es" }
        return "\(n) \(word)s"
    }

    /// The problems, worst first within each kind: a heading with the count and what it means,
    /// then at most `limit` lines naming chains; `no problems found` when there are none.
    static func problemBlock(_ r: AnalysisReport, limit: Int, style st: TextStyle) -> [String] {
        let sections = r.problemSections
        guard !sections.isEmpty else { return [st.paint("problems", .bold) + " none found"] }
        // Many kinds: the worst one of each, so that the answer, the routes and the problems
        // stay on one screen.
        let limit = sections.count > 4 ? min(limit, 1) : limit
        var out = st.wrap("the worst \(limit == 1 ? "one" : String(limit)) of each kind; --chain ID shows one in full", first: "problems ", indent: 9)
        out[0] = st.paint(out[0], prefix: 8, .bold)
        for sec in sections {
            let head = "  \(sec.kind.title): \(sec.countText)"
            let color: TextStyle.Color = [.serverErrors, .resets, .unexplainedDuplicates, .incomplete].contains(sec.kind) ? .red : .yellow
            var text = sec.kind.meaning
            if sec.kind == .orphans {
                // Responses to requests the queue's cap emitted early are orphans too, but their
                // request was in the capture: say so rather than blame the capture.
                let overflowed = r.counters.lazy.flatMap(\.items).first { $0.name == "queue-overflow-responses" }?.count ?? 0
                if overflowed > 0 { text += " (\(overflowed) answer requests emitted unanswered by the per-connection queue's cap: queue-overflows)" }
            }
            let lines = st.wrap("— " + text, first: head + " ", indent: 6)
            out.append(st.paint(lines[0], prefix: head.count, color))
            out.append(contentsOf: lines.dropFirst())
            for item in sec.items.prefix(limit) {
                var t = item.text
                if sec.kind == .unexplainedDuplicates {
                    t += " (chains \(item.chainIDs.prefix(6).map { "#\($0)" }.joined(separator: ", "))\(item.chainIDs.count > 6 ? ", …" : ""))"
                }
                out.append(contentsOf: st.wrap(t, first: "      ", indent: 8))
            }
            if sec.kind == .incomplete {
                var advice = r.omitted.incompleteAdvice
                for c in r.chains { if case .incomplete(let m, let a) = c.completeness { advice["missing \(m.rawValue): \(a)", default: 0] += 1 } }
                // The commonest reason and what to do about it (the JSON document has them all).
                for (a, n) in advice.sorted(by: { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }).prefix(1) {
                    out.append(contentsOf: st.wrap("\(n)× \(a)", first: "      ", indent: 8))
                }
            }
        }
        return out
    }

    /// One chain on one line: `#12 GET /users/7 → 200  2 hops  4.10 ms  proxy +270.1 µs`, the
    /// target cut to fit the width.
    static func chainLine(_ c: RequestChain, style st: TextStyle) -> String {
        var tail = "  → \(c.status.map(String.init) ?? "-")  \(plural(c.hops.count, "hop"))"
        if let t = ProblemModel.clientTime(c) {
            tail += "  \(Timestamp.duration(t))"
        } else if c.timedByTheAppOnly, let s = c.hops[0].exchange.requestFirstTimestamp, let e = c.hops[0].exchange.responseLastTimestamp {
            // The client's copy is inside an encrypted HTTP/2 connection: the app's time only.
            tail += "  app \(Timestamp.duration(e &- s))"
        }
        if let p = c.proxyAddedNs { tail += "  proxy +\(Timestamp.duration(p))" }
        if c.retries > 0 { tail += "  \(plural(c.retries, "retry"))" }
        if c.isIncomplete { tail += "  [incomplete]" }
        let head = "  #\(c.id) \(c.shownMethod) "
        let room = max(8, st.width - head.count - tail.count)
        var target = c.shownTarget
        if target.count > room { target = String(target.prefix(room - 1)) + "…" }
        var line = head + target + tail
        if st.color {
            if let status = c.status, status >= 500 {
                line = line.replacingFirst("→ \(status)", with: st.paint("→ \(status)", .red))
            }
            if c.isIncomplete { line = line.replacingFirst("[incomplete]", with: st.paint("[incomplete]", .yellow)) }
        }
        return line
    }

    /// The routes, worst first by the p99 of the time the proxy added (by the client's time
    /// when no chain went through a proxy): chains, the client's p50 and p99, the proxy's p50,
    /// p90, p99. At most `limit` rows, then how many more; nothing with fewer than two routes
    /// (the latency table says it all).
    static func routeTable(_ l: LatencyModel, limit: Int, style st: TextStyle) -> [String] {
        guard l.routes.count > 1, l.overall.count(.client) > 0 else { return [] }
        let proxied = l.overall.count(.proxyAdded) > 0
        let ranked = l.routes.map { r -> (route: String, n: Int, client: [Int64?], added: [Int64?]) in
            (r.route, r.group.count(.client), r.group.percentiles(.client), r.group.percentiles(.proxyAdded))
        }
        .sorted { a, b in
            let x = proxied ? (a.added[2] ?? -1) : (a.client[2] ?? -1)
            let y = proxied ? (b.added[2] ?? -1) : (b.client[2] ?? -1)
            return x != y ? x > y : a.route < b.route
        }
        func cell(_ v: Int64?, _ w: Int) -> String {
            let t = v.map { Timestamp.duration($0) } ?? "-"
            return String(repeating: " ", count: max(1, w - t.count)) + t
        }
        typealias Row = (route: String, n: Int, client: [Int64?], added: [Int64?])
        // Columns in the order shown; `order` says which to keep first when the width is short.
        var columns: [(title: String, width: Int, value: (Row) -> String)] = [
            ("chains", 7, { r in let t = String(r.n); return String(repeating: " ", count: max(1, 7 - t.count)) + t }),
            ("client p50", 11, { cell($0.client[0], 11) }),
            ("p99", 10, { cell($0.client[2], 10) }),
        ]
        if proxied {
            columns += [("proxy p50", 11, { cell($0.added[0], 11) }), ("p90", 9, { cell($0.added[1], 9) }),
                        ("p99", 10, { cell($0.added[2], 10) })]
        }
        let order = proxied ? [0, 1, 5, 3, 2, 4] : [0, 1, 2]
        var kept = order
        while kept.count > 2 && 2 + 16 + kept.reduce(0, { $0 + columns[$1].width }) > st.width { kept.removeLast() }
        kept.sort()
        let routeWidth = max(16, st.width - 2 - kept.reduce(0) { $0 + columns[$1].width })
        func right(_ t: String, _ w: Int) -> String { String(repeating: " ", count: max(1, w - t.count)) + t }
        var out: [String] = []
        let title = st.wrap("\(plural(l.routes.count, "route")), by p99 \(proxied ? "proxy added" : "of the client's time")", first: "routes   ", indent: 9)
        out.append(st.paint(title[0], prefix: 6, .bold))
        out.append(contentsOf: title.dropFirst())
        let head = "  " + "route".padding(routeWidth) + kept.map { right(columns[$0].title, columns[$0].width) }.joined()
        out.append(st.paint(String(head.prefix(st.width)), .dim))
        for r in ranked.prefix(limit) {
            var name = r.route
            if name.count > routeWidth - 1 { name = String(name.prefix(routeWidth - 2)) + "…" }
            let row: Row = r
            out.append("  " + name.padding(routeWidth) + kept.map { columns[$0].value(row) }.joined())
        }
        if ranked.count > limit {
            out.append("  … \(plural(ranked.count - limit, "more route")) (--format json or html lists every route)")
        }
        return out
    }

    /// What the sidecar costs (`LatencyModel`): a table of percentiles of the client's time, the
    /// app's and the proxy's before, after and in all. Empty when no chain was complete; only
    /// the client's row when no chain has a proxy hop.
    static func latencyBlock(_ l: LatencyModel, style st: TextStyle = .plain) -> [String] {
        let g = l.overall
        // No client's time at all: only plaintext copies whose client's copy is inside an
        // encrypted HTTP/2 connection, whose app's time is all there is to show.
        let appOnly = g.count(.client) == 0
        let lead: LatencyModel.Measure = appOnly ? .app : .client
        guard g.count(lead) > 0 else { return [] }
        func cell(_ v: Int64?) -> String {
            let t = v.map { Timestamp.duration($0) } ?? "-"
            return String(repeating: " ", count: max(0, 10 - t.count)) + t
        }
        func pad(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: max(1, n - s.count)) }
        let proxied = g.count(.proxyAdded) > 0
        let ambiguous = g.ambiguousSamples(.proxyAdded)
        // Every percentile when they fit (80 columns), else the most telling ones that do.
        let fit = max(2, (st.width - 30) / 10)
        let shown = [0, 4, 2, 1, 3].prefix(fit).sorted()
        let names = LatencyModel.percentiles.map(\.name)
        var out = [st.paint(pad("latency  \(plural(g.count(lead), "chain"))", 30), prefix: 7, .bold)
                   + st.paint(shown.map { String(repeating: " ", count: 10 - names[$0].count) + names[$0] }.joined(), .dim)]
        let rows: [(String, LatencyModel.Measure)] = appOnly ? [("app took", .app)]
            : proxied
            ? [("client waited", .client), ("app took", .app), ("proxy before the app", .proxyBefore),
               ("proxy after the app", .proxyAfter), ("proxy added", .proxyAdded)]
            : [("client waited", .client)]
        for (label, m) in rows {
            let ps = g.percentiles(m)
            out.append(pad("  " + label + (m == lead || g.count(m) == g.count(lead) ? "" : " (\(g.count(m)))"), 30)
                       + shown.map { cell(ps[$0]) }.joined())
        }
        if appOnly {
            out.append("  (the client's copies are inside encrypted HTTP/2 connections: their times cannot be read)")
        }
        if ambiguous > 0 {
            out.append("  (\(ambiguous) of the proxy's samples come from ambiguous pairings, stated below 0.9)")
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

    /// One chain in full: its heading, each hop (connection, interface, times, status, and the
    /// rule that made it unless the explanation names that rule already), the explanation and
    /// the evidence, each wrapped with a hanging indent.
    public static func chainBlock(_ c: RequestChain, report r: AnalysisReport, style st: TextStyle = .plain) -> [String] {
        var out: [String] = []
        var head = "chain \(c.id)  \(c.shownMethod) \(c.shownTarget)"
        if let h = c.host { head += "  host \(h)" }
        head += "  → \(c.status.map(String.init) ?? "-")"
        head += "  confidence \(String(format2(c.confidence)))"
        if let p = c.proxyAddedNs { head += "  proxy added \(Timestamp.duration(p))" }
        if c.isIncomplete { head += "  [incomplete]" }
        let headLines = st.wrap(head, indent: 4)
        out.append(st.paint(headLines[0], prefix: "chain \(c.id)".count, .bold))
        out.append(contentsOf: headLines.dropFirst())
        let explanation = c.explanation
        // Times are offsets from the chain's first byte: its earliest request start, or, for a
        // chain whose requests were not captured, its earliest response start.
        let t0 = chainOrigin(c)
        for (i, h) in c.hops.enumerated() {
            let cn = h.connection
            var line = "\(h.role.rawValue.padding(21))\(cn.client) → \(cn.server)"
            if let o = cn.originalDestination { line += " (original destination \(o))" }
            if let iface = r.interface(of: h) { line += "  on \(iface)" }
            if h.attempt > 0 && c.retries > 0 { line += "  attempt \(h.attempt)" }
            if let info = h.exchange.http2 { line += "  " + HTTP2Rendering.text(info) }
            if let t = h.exchange.tls { line += "  " + TLSRendering.text(t, turn: h.exchange.sequence) }
            out.append(contentsOf: st.wrap(line, first: "  \(i + 1). ", indent: 7))
            var timing = ""
            if let t0 {
                if let s = h.requestStart {
                    timing += i == 0 ? Timestamp.timeOfDay(s) : "+" + Timestamp.duration(Timestamp.elapsed(from: t0, to: s))
                } else {
                    timing += "request not captured"
                    if i == 0 { timing += ", from " + Timestamp.timeOfDay(t0) }
                }
                if let e = h.responseEnd { timing += " … +" + Timestamp.duration(Timestamp.elapsed(from: t0, to: e)) }
            }
            if let t = h.exchange.tls {
                timing += "  " + TLSRendering.sizes(t)
            } else {
                timing += "  status \(h.exchange.response.map { String($0.status) } ?? "-")"
            }
            out.append(contentsOf: st.wrap(timing, first: "     ", indent: 7))
            let rule = h.rule.sentence
            if !explanation.contains(rule) {
                out.append(contentsOf: st.wrap(rule, first: "     rule: ", indent: 11))
            }
        }
        out.append(contentsOf: st.wrap(explanation, first: "  why: ", indent: 7))
        let evidence = c.evidence
        if !evidence.isEmpty { out.append(contentsOf: st.wrap(evidence.joined(separator: "; "), first: "  evidence: ", indent: 12)) }
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
    /// `self` with the first occurrence of `s` replaced.
    func replacingFirst(_ s: String, with r: String) -> String {
        let n = s.count
        var i = startIndex
        while i < endIndex {
            if self[i...].hasPrefix(s) {
                return String(self[..<i]) + r + self[index(i, offsetBy: n)...]
            }
            i = index(after: i)
        }
        return self
    }

    func padding(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}
