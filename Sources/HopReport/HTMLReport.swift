import HopCapture
import HopCorrelation

/// `--format html`: one self-contained page.
///
/// An instrument for a capture of any size: the answer under a heading that fits the capture,
/// what the sidecar costs (the latency split, histograms of the client's time and of the time the
/// proxy added), requests and proxy added over time, the routes (sortable), the problems, then
/// every chain in a table rendered a page at a time from compact JSON, each chain's sequence
/// diagram drawn on demand; then the first chains' diagrams and waterfall, and the counters.
///
/// No network access: the style and the script are inline, the charts inline SVG, and a
/// Content-Security-Policy forbids loading anything. Every string from the capture is escaped
/// (in the JSON too: no `<`, `>` or `&` raw).
public enum HTMLReport {
    public struct Options: Sendable {
        /// Chains whose explanation, evidence and rules the page carries (every chain is in the
        /// table; these are the ones kept whole).
        public var tableLimit: Int = 500
        /// Chains drawn in the sequence diagram and the waterfall.
        public var diagramLimit: Int = 50
        /// Duplicate groups and incomplete chains listed.
        public var listLimit: Int = 200
        public init() {}
    }

    public static func render(_ r: AnalysisReport, options: Options = Options()) -> String {
        var h = HTMLWriter()
        let s = r.summary
        h.raw("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\" />\n")
        h.raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\" />\n")
        h.raw("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\" />\n")
        h.raw("<title>hoptrace — ")
        h.text(r.source)
        h.raw("</title>\n<style>\n\(css)</style>\n</head>\n<body>\n<main>\n")

        // Title and capture summary.
        h.raw("<header>\n<h1>hoptrace analyze</h1>\n<p class=\"source\">")
        h.text(r.source)
        h.raw("</p>\n<dl class=\"facts\">\n")
        h.fact("capture", "\(r.packets) packets (\(r.linkType)), \(r.connections) TCP connections, \(s.exchanges) HTTP exchanges")
        h.fact("rules", "\(r.rulesName) (\(r.rulesOrigin))")
        let pods = r.podAddresses.isEmpty ? "unknown" : r.podAddresses.joined(separator: ", ")
        h.fact("pod", pods + (r.podAddressesInferred ? " (inferred; --pod-ip to set)" : ""))
        if let e = r.readError { h.fact("warning", e, cls: "warn") }
        h.raw("</dl>\n</header>\n")

        // The answer.
        h.raw("<section id=\"answer\">\n<h2>")
        h.text(answerHeading(r))
        h.raw("</h2>\n<p class=\"answer\">")
        h.text(r.answer)
        h.raw("</p>\n</section>\n")

        summarySection(&h, r)
        latencySection(&h, r)
        timelineSection(&h, r)
        routesSection(&h, r)
        problemsPanel(&h, r)
        chainsSection(&h, r, options)

        let shown = Array(SequenceModel.interesting(r).prefix(max(0, options.diagramLimit)))
        let interestingCount = SequenceModel.interestingCount(r)
        let direct = interestingCount < r.chainCount
        if !shown.isEmpty {
            h.raw("<section id=\"sequence\">\n<h2>Sequence</h2>\n")
            h.raw("<p class=\"note\">Requests are solid arrows, responses dashed, the iptables REDIRECT dotted; notes name the rule. Times are relative to each chain's first request.\(direct ? " Direct (not intercepted) requests are in the table only." : "")</p>\n")
            h.raw("<div class=\"scroll\">\n")
            sequenceSVG(&h, SequenceModel(chains: shown))
            h.raw("</div>\n")
            leftOut(&h, interestingCount - shown.count, "chain", "not drawn")
            h.raw("</section>\n")

            h.raw("<section id=\"waterfall\">\n<h2>Timing</h2>\n")
            h.raw("<p class=\"note\">One bar per hop, from the first byte of its request to the last byte of its response, on a time axis relative to each chain's start. The gap between a downstream bar and the upstream bar inside it is the time the proxy added.\(direct ? " Direct (not intercepted) requests are in the table only." : "")</p>\n")
            legend(&h)
            h.raw("<div class=\"scroll\">\n")
            waterfallSVG(&h, shown)
            h.raw("</div>\n")
            leftOut(&h, interestingCount - shown.count, "chain", "not drawn")
            h.raw("</section>\n")
        }

        problemsSection(&h, r, options)
        countersSection(&h, r)
        h.raw("<footer>hoptrace analyze --format html · every copy explained by the rule that made it, or said to be unexplained</footer>\n")
        // In a CDATA section behind JS comments: the page stays well-formed XML as well.
        h.raw("</main>\n<script>\n//<![CDATA[\n\(script)//]]>\n</script>\n</body>\n</html>\n")
        return h.out
    }

    // MARK: sections

    static func summarySection(_ h: inout HTMLWriter, _ r: AnalysisReport) {
        let s = r.summary
        h.raw("<section id=\"summary\">\n<h2>Summary</h2>\n<div class=\"cards\">\n")
        func card(_ value: String, _ label: String, warn: Bool = false) {
            h.raw("<div class=\"card\(warn ? " warn" : "")\"><div class=\"value\">")
            h.text(value)
            h.raw("</div><div class=\"label\">")
            h.text(label)
            h.raw("</div></div>\n")
        }
        card("\(s.requestsOnWire) → \(s.logicalRequests)", "requests on the wire → logical requests")
        card("\(s.multiHopChains)", "multi-hop chain\(s.multiHopChains == 1 ? "" : "s")")
        card("\(s.incompleteChains)", "incomplete", warn: s.incompleteChains > 0)
        card("\(s.unexplainedDuplicates)", "unexplained duplicate\(s.unexplainedDuplicates == 1 ? "" : "s")", warn: s.unexplainedDuplicates > 0)
        card("\(s.retries)", "retr\(s.retries == 1 ? "y" : "ies")")
        if let m = r.medianProxyAdded { card(Timestamp.duration(m), "proxy added (median)") }
        if s.ambiguousPairings > 0 { card("\(s.ambiguousPairings)", "ambiguous pairings", warn: true) }
        if s.orphanUpstreams > 0 { card("\(s.orphanUpstreams)", "upstream copies without a downstream one", warn: true) }
        h.raw("</div>\n<table class=\"roles\">\n<thead><tr><th>hop role</th><th>what it is</th><th class=\"num\">copies</th></tr></thead>\n<tbody>\n")
        for role in HopRole.allCases {
            let n = s.roles[role] ?? 0
            h.raw("<tr\(n == 0 ? " class=\"zero\"" : "")><td>")
            roleChip(&h, role)
            h.raw("</td><td>")
            h.text(role.phrase)
            h.raw("</td><td class=\"num\">\(n)</td></tr>\n")
        }
        h.raw("</tbody>\n</table>\n</section>\n")
    }

    static func summaryLine(_ c: RequestChain) -> String {
        if c.isIncomplete { return "incomplete: a hop is not in the capture" }
        if c.isMultiHop { return "\(c.hops.count) copies of one request" + (c.retries > 0 ? ", \(c.retries) retr\(c.retries == 1 ? "y" : "ies")" : "") }
        return c.hops.first?.role == .direct ? "direct, not intercepted" : "one copy"
    }

    static func problemsSection(_ h: inout HTMLWriter, _ r: AnalysisReport, _ o: Options) {
        // Chains the command counted without keeping are in `omitted` and `directRequests`.
        let direct = r.directRequests
        let incomplete = r.chains.filter(\.isIncomplete)
        let incompleteCount = incomplete.count + r.omitted.incomplete
        guard direct.count > 0 || incompleteCount > 0 || !r.duplicates.isEmpty else { return }
        h.raw("<section id=\"details\">\n<h2>Duplicates, incomplete and direct requests</h2>\n")
        if !r.duplicates.isEmpty {
            h.raw("<h3>Unexplained duplicates</h3>\n<table>\n<thead><tr><th>request</th><th class=\"num\">copies</th><th>from → to</th><th>chains</th><th>explanation</th></tr></thead>\n<tbody>\n")
            for g in r.duplicates.prefix(o.listLimit) {
                h.raw("<tr><td><span class=\"method\">")
                h.text(g.method)
                h.raw("</span> <code class=\"target\">")
                h.text(g.target)
                h.raw("</code></td><td class=\"num\">\(g.starts.count)</td><td><code>")
                h.text("\(g.client) → \(g.server)")
                h.raw("</code></td><td>")
                for (i, id) in g.chainIDs.prefix(20).enumerated() {
                    if i > 0 { h.raw(", ") }
                    h.raw("<a href=\"#chain-\(id)\">\(id)</a>")
                }
                if g.chainIDs.count > 20 { h.raw(", …") }
                h.raw("</td><td>")
                h.text(g.explanation)
                h.raw("</td></tr>\n")
            }
            h.raw("</tbody>\n</table>\n")
            leftOut(&h, r.duplicates.count - min(r.duplicates.count, o.listLimit), "duplicate group", "not listed")
        }
        if incompleteCount > 0 {
            h.raw("<h3>Incomplete chains: \(incompleteCount)</h3>\n<ul class=\"advice\">\n")
            for (text, n) in SequenceModel.adviceCounts(incomplete, plus: r.omitted.incompleteAdvice) {
                h.raw("<li><strong>\(n)×</strong> ")
                h.text(text)
                h.raw("</li>\n")
            }
            h.raw("</ul>\n<p class=\"note\">chains ")
            for (i, c) in incomplete.prefix(o.listLimit).enumerated() {
                if i > 0 { h.raw(", ") }
                h.raw("<a href=\"#chain-\(c.id)\">\(c.id)</a>")
            }
            if incompleteCount > o.listLimit { h.raw(", … \(incompleteCount - min(incomplete.count, o.listLimit)) more") }
            h.raw("</p>\n")
        }
        if direct.count > 0 {
            h.raw("<h3>Direct (not intercepted)</h3>\n<p>")
            h.text("\(direct.count) request\(direct.count == 1 ? "" : "s") — \(direct.summary)")
            h.raw("</p>\n")
        }
        h.raw("</section>\n")
    }

    static func countersSection(_ h: inout HTMLWriter, _ r: AnalysisReport) {
        guard !r.counters.isEmpty else { return }
        h.raw("<section id=\"counters\">\n<h2>Counters</h2>\n<table class=\"counters\">\n<thead><tr><th>stage</th><th>counter</th><th class=\"num\">count</th><th>meaning</th></tr></thead>\n<tbody>\n")
        for sec in r.counters {
            for item in sec.items {
                let problem = item.count > 0 && TextReport.isProblem(sec.name, item.name)
                let cls = problem ? " class=\"problem\"" : (item.count == 0 ? " class=\"zero\"" : "")
                h.raw("<tr\(cls)><td>")
                h.text(sec.name)
                h.raw("</td><td><code>")
                h.text(item.name)
                h.raw("</code></td><td class=\"num\">\(item.count)</td><td>")
                h.text(item.explanation)
                h.raw("</td></tr>\n")
            }
        }
        h.raw("</tbody>\n</table>\n</section>\n")
    }

    static func leftOut(_ h: inout HTMLWriter, _ n: Int, _ what: String, _ how: String) {
        guard n > 0 else { return }
        h.raw("<p class=\"note more\">")
        h.text("… \(n) more \(what)\(n == 1 ? "" : "s") \(how) (--format json lists them)")
        h.raw("</p>\n")
    }

    static func roleChip(_ h: inout HTMLWriter, _ role: HopRole) {
        h.raw("<span class=\"role \(role.rawValue)\">\(role.rawValue)</span>")
    }

    static func legend(_ h: inout HTMLWriter) {
        h.raw("<p class=\"legend\">")
        for role in HopRole.allCases {
            roleChip(&h, role)
            h.raw(" ")
        }
        h.raw("</p>\n")
    }

    static func colour(_ role: HopRole) -> String {
        switch role {
        case .inboundIntercepted: "#2f6fdb"
        case .inboundForwarded: "#3f9a5a"
        case .outboundRedirected: "#d9822b"
        case .outboundForwarded: "#9b59c4"
        case .direct: "#8a8f98"
        }
    }

    // MARK: sequence diagram

    static func sequenceSVG(_ h: inout HTMLWriter, _ m: SequenceModel) {
        let n = m.participants.count
        // Fit the page (about 1230 px) when the participants allow it; scroll beyond that.
        let colW = min(290.0, max(180.0, (1230.0 / Double(max(1, n))).rounded(.down)))
        let margin = 16.0, headH = 44.0, arrowH = 44.0, noteH = 30.0, titleH = 26.0, gap = 10.0
        let width = margin * 2 + Double(n) * colW
        func x(_ i: Int) -> Double { margin + colW / 2 + Double(i) * colW }
        var height = margin + headH + 14
        for b in m.blocks {
            height += titleH + gap
            for s in b.steps {
                if case .arrow = s { height += arrowH } else { height += noteH }
            }
        }
        height += margin
        h.raw("<svg class=\"sequence\" width=\"\(num(width))\" height=\"\(num(height))\" viewBox=\"0 0 \(num(width)) \(num(height))\" role=\"img\" aria-label=\"sequence diagram of the chains\">\n")
        h.raw("<defs><marker id=\"seq-head\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"8\" markerHeight=\"8\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#333\" /></marker>")
        h.raw("<marker id=\"seq-head-redirect\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"8\" markerHeight=\"8\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#c0392b\" /></marker></defs>\n")
        // Lifelines and heads.
        for (i, p) in m.participants.enumerated() {
            let cx = x(i)
            h.raw("<line class=\"lifeline\" x1=\"\(num(cx))\" y1=\"\(num(margin + headH))\" x2=\"\(num(cx))\" y2=\"\(num(height - margin))\" />\n")
            h.raw("<rect class=\"actor \(p.kind.idPrefix)\" x=\"\(num(cx - colW / 2 + 12))\" y=\"\(num(margin))\" width=\"\(num(colW - 24))\" height=\"\(num(headH))\" rx=\"6\" />\n")
            h.raw("<text class=\"actor-kind\" x=\"\(num(cx))\" y=\"\(num(margin + 18))\">")
            h.text(p.kind == .proxy ? "proxy" : p.kind.word)
            h.raw("</text><text class=\"actor-addr\" x=\"\(num(cx))\" y=\"\(num(margin + 35))\">")
            h.text(fit(p.address, colW - 30, 6.6))
            h.raw("</text>\n")
        }
        var y = margin + headH + 14
        for (bi, b) in m.blocks.enumerated() {
            var bh = titleH
            for s in b.steps {
                if case .arrow = s { bh += arrowH } else { bh += noteH }
            }
            let left = x(b.first) - colW / 2 + 4, right = x(b.last) + colW / 2 - 4
            let cls = b.chain.isIncomplete ? "block incomplete" : (bi % 2 == 0 ? "block even" : "block odd")
            h.raw("<g class=\"chain\" id=\"seq-chain-\(b.chain.id)\">\n")
            h.raw("<rect class=\"\(cls)\" x=\"\(num(left))\" y=\"\(num(y))\" width=\"\(num(right - left))\" height=\"\(num(bh))\" rx=\"4\" />\n")
            h.raw("<text class=\"block-title\" x=\"\(num(left + 8))\" y=\"\(num(y + 17))\">")
            h.text(fit(b.title, right - left - 16, 6.8))
            h.raw("</text>\n")
            var sy = y + titleH
            for s in b.steps {
                switch s {
                case .arrow(let f, let t, let text, let detail, let style):
                    let x1 = x(f), x2 = x(t)
                    let mid = (x1 + x2) / 2, span = abs(x2 - x1) - 10
                    let lineY = sy + 22
                    let (lineCls, head): (String, String) = switch style {
                    case .request: ("msg request", "seq-head")
                    case .response: ("msg response", "seq-head")
                    case .redirect: ("msg redirect", "seq-head-redirect")
                    case .lost: ("msg lost", "seq-head-redirect")
                    }
                    let tip = x2 > x1 ? x2 - 3 : x2 + 3
                    h.raw("<line class=\"\(lineCls)\" x1=\"\(num(x1))\" y1=\"\(num(lineY))\" x2=\"\(num(tip))\" y2=\"\(num(lineY))\" marker-end=\"url(#\(head))\" />\n")
                    h.raw("<text class=\"msg-text\" x=\"\(num(mid))\" y=\"\(num(lineY - 6))\">")
                    h.text(fit(text, span, 6.6))
                    h.raw("<title>")
                    h.text(detail.isEmpty ? text : "\(text) (\(detail))")
                    h.raw("</title></text>\n")
                    if !detail.isEmpty {
                        h.raw("<text class=\"msg-detail\" x=\"\(num(mid))\" y=\"\(num(lineY + 14))\">")
                        h.text(fit(detail, span, 5.4))
                        h.raw("<title>")
                        h.text(detail)
                        h.raw("</title></text>\n")
                    }
                    sy += arrowH
                case .note(let f, let l, let text, let warning):
                    let nl = x(f) - colW / 2 + 14, nr = x(l) + colW / 2 - 14
                    h.raw("<rect class=\"note\(warning ? " warning" : "")\" x=\"\(num(nl))\" y=\"\(num(sy + 4))\" width=\"\(num(nr - nl))\" height=\"\(num(noteH - 8))\" rx=\"3\" />\n")
                    h.raw("<text class=\"note-text\" x=\"\(num((nl + nr) / 2))\" y=\"\(num(sy + 19))\">")
                    h.text(fit(text, nr - nl - 10, 6.2))
                    h.raw("<title>")
                    h.text(text)
                    h.raw("</title></text>\n")
                    sy += noteH
                }
            }
            h.raw("</g>\n")
            y += bh + gap
        }
        h.raw("</svg>\n")
    }

    // MARK: waterfall

    static func waterfallSVG(_ h: inout HTMLWriter, _ chains: [RequestChain]) {
        let gutter = 420.0, plot = 640.0, right = 130.0, axisH = 34.0, titleH = 22.0, rowH = 18.0, gap = 8.0
        let width = gutter + plot + right
        func span(_ hop: Hop) -> (start: Int64, end: Int64)? {
            let x = hop.exchange
            guard let start = x.requestFirstTimestamp ?? x.response?.firstTimestamp else { return nil }
            let end = x.responseLastTimestamp ?? x.requestLastTimestamp ?? start
            return (start, max(start, end))
        }
        func origin(_ c: RequestChain) -> Int64 { c.hops.compactMap { span($0)?.start }.min() ?? 0 }
        var maxNs: Int64 = 1
        for c in chains {
            let t0 = origin(c)
            for hop in c.hops { if let s = span(hop) { maxNs = max(maxNs, Timestamp.elapsed(from: t0, to: s.end)) } }
        }
        // Saturated offsets can reach Int64.max: the axis stops short of overflowing.
        maxNs = min(maxNs, Int64.max / 4)
        let (step, unit) = tickStep(maxNs)
        let axisMax = ((maxNs + step - 1) / step) * step
        func x(_ ns: Int64) -> Double { gutter + plot * Double(min(ns, axisMax)) / Double(axisMax) }
        var height = axisH
        for c in chains { height += titleH + Double(c.hops.count) * rowH + gap }
        height += 6
        h.raw("<svg class=\"waterfall\" width=\"\(num(width))\" height=\"\(num(height))\" viewBox=\"0 0 \(num(width)) \(num(height))\" role=\"img\" aria-label=\"timing waterfall, one bar per hop\">\n")
        var t: Int64 = 0
        while t <= axisMax {
            let tx = x(t)
            h.raw("<line class=\"grid\" x1=\"\(num(tx))\" y1=\"\(num(axisH - 8))\" x2=\"\(num(tx))\" y2=\"\(num(height - 4))\" />")
            h.raw("<text class=\"tick\" x=\"\(num(tx))\" y=\"\(num(axisH - 14))\">\(axisLabel(t, unit))</text>\n")
            t += step
        }
        var y = axisH
        for c in chains {
            let t0 = origin(c)
            h.raw("<g class=\"chain\" id=\"wf-chain-\(c.id)\">\n")
            var title = "chain \(c.id)  \(c.shownMethod) \(c.shownTarget)  → \(c.status.map(String.init) ?? "-")"
            if c.isIncomplete { title += "  [incomplete]" }
            h.raw("<text class=\"wf-title\" x=\"8\" y=\"\(num(y + 15))\">")
            h.text(fit(title, gutter - 16, 7.0))
            h.raw("</text>\n")
            if let p = c.proxyAddedNs {
                h.raw("<text class=\"wf-added\" x=\"\(num(gutter))\" y=\"\(num(y + 15))\">")
                h.text("proxy added \(Timestamp.duration(p))")
                h.raw("</text>\n")
            }
            y += titleH
            for (i, hop) in c.hops.enumerated() {
                let cn = hop.connection
                h.raw("<text class=\"wf-hop\" x=\"20\" y=\"\(num(y + 13))\">")
                h.text(fit("\(i + 1). \(hop.role.rawValue)  \(cn.client) → \(cn.server)", gutter - 30, 5.9))
                h.raw("</text>")
                let s = span(hop) ?? (t0, t0)
                let bx = x(Timestamp.elapsed(from: t0, to: s.start))
                let bw = max(2, x(Timestamp.elapsed(from: t0, to: s.end)) - bx)
                let complete = hop.exchange.responseLastTimestamp != nil
                h.raw("<rect class=\"bar \(hop.role.rawValue)\(complete ? "" : " open")\" x=\"\(num(bx))\" y=\"\(num(y + 3))\" width=\"\(num(bw))\" height=\"\(num(rowH - 6))\" rx=\"2\" fill=\"\(colour(hop.role))\"><title>")
                var tip = "\(hop.role.rawValue) \(cn.client) → \(cn.server): +\(Timestamp.duration(Timestamp.elapsed(from: t0, to: s.start))) … +\(Timestamp.duration(Timestamp.elapsed(from: t0, to: s.end)))"
                if !complete { tip += " (no response captured)" }
                h.text(tip)
                h.raw("</title></rect>")
                h.raw("<text class=\"wf-label\" x=\"\(num(bx + bw + 6))\" y=\"\(num(y + 13))\">")
                h.text(hop.exchange.response.map { Timestamp.duration(Timestamp.elapsed(from: s.start, to: s.end)) + "  " + String($0.status) } ?? "request only, no response captured")
                h.raw("</text>\n")
                y += rowH
            }
            h.raw("</g>\n")
            y += gap
        }
        h.raw("</svg>\n")
    }

    /// A tick step of 1, 2 or 5 × 10^k ns giving at most 8 intervals, and the unit to label the
    /// axis in (the largest of s, ms, µs, ns not above the axis' end).
    static func tickStep(_ maxNs: Int64) -> (step: Int64, unit: Int64) {
        var magnitude: Int64 = 1
        var step: Int64 = 1
        search: while true {
            for m: Int64 in [1, 2, 5] {
                step = m * magnitude
                if maxNs / step < 8 || step >= Int64.max / 20 { break search }
            }
            magnitude *= 10
        }
        let end = ((maxNs + step - 1) / step) * step
        let unit: Int64 = end >= 1_000_000_000 ? 1_000_000_000 : end >= 1_000_000 ? 1_000_000 : end >= 1_000 ? 1_000 : 1
        return (step, unit)
    }

    /// `0`, `200 µs`, `1.2 ms`, `0.05 s`: a tick value in the axis' unit, with the decimals it needs.
    static func axisLabel(_ ns: Int64, _ unit: Int64) -> String {
        if ns == 0 { return "0" }
        let name = unit == 1_000_000_000 ? "s" : unit == 1_000_000 ? "ms" : unit == 1_000 ? "µs" : "ns"
        var decimals = 0
        var scale: Int64 = 1
        while (ns * scale) % unit != 0 && decimals < 9 {
            decimals += 1
            scale *= 10
        }
        let scaled = ns * scale / unit
        guard decimals > 0 else { return "\(scaled) \(name)" }
        let whole = scaled / scale
        var frac = String(scaled % scale)
        frac = String(repeating: "0", count: decimals - frac.count) + frac
        return "\(whole).\(frac) \(name)"
    }

    // MARK: helpers

    /// Cuts text to about `width` pixels at `charWidth` per character.
    static func fit(_ s: String, _ width: Double, _ charWidth: Double) -> String {
        let maxChars = max(4, Int(width / charWidth))
        guard s.count > maxChars else { return s }
        return String(s.prefix(maxChars - 1)) + "…"
    }

    /// A coordinate with at most one decimal.
    static func num(_ v: Double) -> String {
        let t = Int((v * 10).rounded())
        let sign = t < 0 ? "-" : ""
        let a = abs(t)
        return a % 10 == 0 ? "\(sign)\(a / 10)" : "\(sign)\(a / 10).\(a % 10)"
    }

    static let css = """
    :root { --fg: #1d2330; --dim: #5d6778; --line: #dde2ea; --bg: #ffffff; --soft: #f5f7fa; --accent: #2f6fdb; --warn: #b85c00; }
    * { box-sizing: border-box; }
    body { margin: 0; background: var(--soft); color: var(--fg); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
    main { max-width: 1360px; margin: 0 auto; padding: 24px 28px 40px; }
    header { margin-bottom: 8px; }
    h1 { font-size: 24px; margin: 0 0 2px; }
    h2 { font-size: 18px; margin: 0 0 12px; }
    h3 { font-size: 15px; margin: 18px 0 8px; }
    section { background: var(--bg); border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px; margin: 16px 0; }
    code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; font-size: 12.5px; }
    .source { color: var(--dim); margin: 0 0 10px; word-break: break-all; }
    dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
    dl.facts dt { color: var(--dim); }
    dl.facts dd { margin: 0; }
    dl.facts .warn { color: var(--warn); font-weight: 600; }
    .answer { font-size: 15.5px; margin: 0; max-width: 1100px; }
    .cards { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 16px; }
    .card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; min-width: 150px; background: var(--soft); }
    .card .value { font-size: 22px; font-weight: 650; }
    .card .label { color: var(--dim); font-size: 12.5px; }
    .card.warn { border-color: #f0c08a; background: #fff6ec; }
    .card.warn .value { color: var(--warn); }
    table { border-collapse: collapse; width: 100%; }
    th, td { text-align: left; vertical-align: top; padding: 6px 10px; border-bottom: 1px solid var(--line); }
    th { font-size: 12.5px; color: var(--dim); font-weight: 600; background: var(--soft); }
    td.num, th.num { text-align: right; white-space: nowrap; }
    th.expl { min-width: 200px; }
    th.req { min-width: 150px; }
    table.roles { width: auto; }
    tr.zero td { color: #9aa3b2; }
    tr.problem td { background: #fff6ec; }
    tr.incomplete td { background: #fff8f0; }
    .method { font-weight: 650; }
    .target { word-break: break-all; }
    .host, .dim { color: var(--dim); font-size: 12.5px; }
    ol.hops { margin: 0; padding-left: 18px; }
    ol.hops li { margin: 1px 0; }
    details summary { cursor: pointer; color: var(--accent); }
    details[open] { min-width: 420px; }
    details p, details ul { margin: 6px 0; max-width: 620px; }
    details ul { padding-left: 18px; }
    .sub { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--dim); margin-bottom: 0 !important; }
    .advice { color: var(--warn); }
    .badge { display: inline-block; font-size: 11.5px; padding: 0 6px; border-radius: 9px; margin-top: 4px; }
    .badge.warn { background: #ffe7cc; color: var(--warn); }
    .role { display: inline-block; font-size: 11.5px; padding: 0 7px; border-radius: 9px; color: #fff; white-space: nowrap; }
    .role.inbound-intercepted { background: #2f6fdb; }
    .role.inbound-forwarded { background: #3f9a5a; }
    .role.outbound-redirected { background: #d9822b; }
    .role.outbound-forwarded { background: #9b59c4; }
    .role.direct { background: #8a8f98; }
    .note { color: var(--dim); font-size: 13px; }
    .more { font-style: italic; }
    .legend { margin: 0 0 8px; }
    .scroll { overflow-x: auto; }
    svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
    svg .lifeline { stroke: #b8c0cc; stroke-dasharray: 4 4; }
    svg .actor { fill: #eef3fb; stroke: #8fa6c8; }
    svg .actor.proxy { fill: #fdf1e4; stroke: #d9a46b; }
    svg .actor-kind { font-size: 13px; font-weight: 650; text-anchor: middle; fill: var(--fg); }
    svg .actor-addr { font-size: 12px; text-anchor: middle; fill: var(--dim); }
    svg .block.even { fill: #eaf2ff; }
    svg .block.odd { fill: #f1f2f6; }
    svg .block.incomplete { fill: #fff1e3; }
    svg .block-title { font-size: 12.5px; font-weight: 650; fill: var(--fg); }
    svg .msg { stroke: #333; stroke-width: 1.3; }
    svg .msg.response { stroke-dasharray: 5 4; }
    svg .msg.redirect { stroke: #c0392b; stroke-dasharray: 2 3; }
    svg .msg.lost { stroke: #c0392b; stroke-dasharray: 5 4; }
    svg .msg-text { font-size: 12px; text-anchor: middle; fill: var(--fg); }
    svg .msg-detail { font-size: 10.5px; text-anchor: middle; fill: var(--dim); }
    svg .note { fill: #fff8d6; stroke: #d8c56a; }
    svg .note.warning { fill: #ffe9d6; stroke: #e0a060; }
    svg .note-text { font-size: 11.5px; text-anchor: middle; fill: #4a4020; }
    svg .grid { stroke: #e3e7ee; }
    svg .tick { font-size: 11px; text-anchor: middle; fill: var(--dim); }
    svg .wf-title { font-size: 12.5px; font-weight: 650; fill: var(--fg); }
    svg .wf-added { font-size: 11.5px; fill: var(--warn); }
    svg .wf-hop { font-size: 11px; fill: var(--dim); }
    svg .wf-label { font-size: 11px; fill: var(--fg); }
    svg .bar.open { opacity: .55; }
    footer { color: var(--dim); font-size: 12px; text-align: center; margin-top: 24px; }
    .charts { display: flex; flex-wrap: wrap; gap: 16px; margin-top: 12px; }
    table.latency { width: auto; }
    svg .chart-title { font-size: 13px; font-weight: 650; fill: var(--fg); }
    svg .tick.y { text-anchor: end; }
    svg .tick.y2 { text-anchor: start; }
    svg .pline { stroke: #1d2330; stroke-dasharray: 3 3; }
    svg .ptext { font-size: 11px; fill: var(--fg); }
    svg .tbar { fill: #7fa6e8; }
    svg .ebar { fill: #c0392b; }
    svg .tline { fill: none; stroke: #d9822b; stroke-width: 2; }
    .problems { display: grid; grid-template-columns: repeat(auto-fill, minmax(380px, 1fr)); gap: 12px; }
    .problem { border: 1px solid var(--line); border-left: 4px solid #e0b050; border-radius: 6px; padding: 8px 12px; background: var(--soft); }
    .problem.severe { border-left-color: #c0392b; }
    .problem h3 { margin: 0 0 2px; }
    .problem .count { color: var(--warn); font-weight: 650; }
    .problem ul { margin: 6px 0 0; padding-left: 18px; }
    .ok { color: #3f9a5a; font-weight: 600; }
    .controls { display: flex; flex-wrap: wrap; gap: 10px; align-items: center; margin-bottom: 8px; }
    .sortable-head { cursor: pointer; }
    th[data-order="asc"]::after { content: " ▲"; }
    th[data-order="desc"]::after { content: " ▼"; }
    #chain-rows tr { cursor: pointer; }
    #chain-rows tr:hover td { background: #eef3fb; }
    td.bad { color: #c0392b; font-weight: 650; }
    td.flags { color: var(--warn); }
    .detail { border-top: 2px solid var(--accent); margin-top: 12px; padding-top: 8px; }

    """
}

/// Builds HTML text; `text` escapes, `raw` does not. Bytes, not a String, as it grows: a
/// page of a large capture is megabytes of escaped text.
struct HTMLWriter {
    var bytes: [UInt8] = []

    var out: String { String(decoding: bytes, as: UTF8.self) }

    mutating func raw(_ s: String) { bytes.append(contentsOf: s.utf8) }

    mutating func text(_ s: String) { HTMLWriter.escape(s, into: &bytes) }

    mutating func fact(_ name: String, _ value: String, cls: String? = nil) {
        raw("<dt>")
        text(name)
        raw("</dt><dd\(cls.map { " class=\"\($0)\"" } ?? "")>")
        text(value)
        raw("</dd>\n")
    }

    /// Escapes `& < > " '` and replaces control characters (which HTML does not allow: C0 but
    /// tab and newline, DEL, C1) with U+FFFD. Runs of plain bytes are copied whole.
    static func escape(_ s: String, into out: inout [UInt8]) {
        var s = s
        s.withUTF8 { b in
            let n = b.count
            var start = 0, i = 0
            func flush(_ end: Int) { if end > start { out.append(contentsOf: UnsafeBufferPointer(rebasing: b[start..<end])) } }
            while i < n {
                let c = b[i]
                var replacement: StaticString? = nil
                var width = 1
                switch c {
                case 0x26: replacement = "&amp;"
                case 0x3c: replacement = "&lt;"
                case 0x3e: replacement = "&gt;"
                case 0x22: replacement = "&quot;"
                case 0x27: replacement = "&#39;"
                case 0x09, 0x0a: break
                case 0x00..<0x20, 0x7f: replacement = "\u{FFFD}"
                case 0xc2 where i + 1 < n && b[i + 1] >= 0x80 && b[i + 1] < 0xa0:
                    replacement = "\u{FFFD}"  // U+0080–U+009F
                    width = 2
                default: break
                }
                if let r = replacement {
                    flush(i)
                    r.withUTF8Buffer { out.append(contentsOf: $0) }
                    i += width
                    start = i
                } else {
                    i += 1
                }
            }
            flush(n)
        }
    }

    static func escape(_ s: String) -> String {
        var out: [UInt8] = []
        escape(s, into: &out)
        return String(decoding: out, as: UTF8.self)
    }
}
