#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import HopCapture
import HopCorrelation

/// The HTML report's instruments: the latency histograms and the timeline (inline SVG drawn
/// here), the routes table (sorted in the page by any column), the problems panel.
extension HTMLReport {
    /// The heading of the answer, fitting the capture: no requests, no proxy copies, or copies.
    static func answerHeading(_ r: AnalysisReport) -> String {
        let s = r.summary
        if s.requestsOnWire == 0 { return "No HTTP requests in this capture" }
        if s.multiHopChains == 0 {
            return r.rulesName == "none" ? "No sidecar copies in this capture" : "No request was copied by a proxy"
        }
        return "Why \(s.requestsOnWire) requests on the wire are \(TextReport.plural(s.logicalRequests, "request"))"
    }

    // MARK: latency

    /// The split of the client's time (the text report's table) and a histogram of the client's
    /// time and of the time the proxy added.
    static func latencySection(_ h: inout HTMLWriter, _ r: AnalysisReport) {
        let g = r.latency.overall
        guard g.count(.client) > 0 else { return }
        let proxied = g.count(.proxyAdded) > 0
        h.raw("<section id=\"latency\">\n<h2>What the sidecar costs</h2>\n")
        h.raw("<table class=\"latency\">\n<thead><tr><th>\(TextReport.plural(g.chains, "chain"))</th><th class=\"num\">samples</th>")
        for p in LatencyModel.percentiles { h.raw("<th class=\"num\">\(p.name)</th>") }
        h.raw("</tr></thead>\n<tbody>\n")
        let rows: [(String, LatencyModel.Measure)] = proxied
            ? [("client waited", .client), ("app took", .app), ("proxy before the app", .proxyBefore),
               ("proxy after the app", .proxyAfter), ("proxy added", .proxyAdded)]
            : [("client waited", .client)]
        for (label, m) in rows {
            h.raw("<tr><td>")
            h.text(label)
            h.raw("</td><td class=\"num\">\(g.count(m))</td>")
            for v in g.percentiles(m) { h.raw("<td class=\"num\">\(v.map(Timestamp.duration) ?? "–")</td>") }
            h.raw("</tr>\n")
        }
        h.raw("</tbody>\n</table>\n")
        if g.ambiguousSamples(.proxyAdded) > 0 {
            h.raw("<p class=\"note\">\(g.ambiguousSamples(.proxyAdded)) of the proxy's samples come from ambiguous pairings (stated below 0.9).</p>\n")
        }
        h.raw("<div class=\"charts\">\n")
        histogramSVG(&h, g, .client, title: "client waited", color: "#2f6fdb")
        if proxied { histogramSVG(&h, g, .proxyAdded, title: "proxy added", color: "#d9822b") }
        h.raw("</div>\n<p class=\"note\">Histograms on a log scale of time (five bins a decade); the dashed lines are p50 and p99.</p>\n</section>\n")
    }

    /// Bins of a measure on a log scale (five a decade, edges 10^(k/5) ns): (k, count).
    static func logBins(_ g: LatencyModel.Group, _ m: LatencyModel.Measure) -> [(k: Int, count: UInt64)] {
        var bins: [Int: UInt64] = [:]
        for v in g.histograms[m.index].recordedValues() where v.countAddedInThisIterationStep > 0 {
            let k = v.value <= 1 ? 0 : Int((log10Approx(Double(v.value)) * 5).rounded(.down))
            bins[k, default: 0] += v.countAddedInThisIterationStep
        }
        guard let lo = bins.keys.min(), let hi = bins.keys.max() else { return [] }
        return (lo...hi).map { ($0, bins[$0] ?? 0) }
    }

    static func log10Approx(_ x: Double) -> Double { x > 0 ? log10(x) : 0 }

    static func pow10(_ x: Double) -> Double { pow(10, x) }

    static func histogramSVG(_ h: inout HTMLWriter, _ g: LatencyModel.Group, _ m: LatencyModel.Measure, title: String, color: String) {
        let bins = logBins(g, m)
        guard !bins.isEmpty else { return }
        let w = 560.0, ht = 220.0, left = 48.0, right = 12.0, top = 26.0, bottom = 36.0
        let plotW = w - left - right, plotH = ht - top - bottom
        let maxCount = Double(bins.map(\.count).max() ?? 1)
        let bw = plotW / Double(bins.count)
        let k0 = bins[0].k
        func xOf(ns: Int64) -> Double {
            let k = log10Approx(Double(max(1, ns))) * 5
            return left + (k - Double(k0)) * bw
        }
        h.raw("<svg class=\"histogram\" width=\"\(num(w))\" height=\"\(num(ht))\" viewBox=\"0 0 \(num(w)) \(num(ht))\" role=\"img\" aria-label=\"histogram of \(title)\">\n")
        h.raw("<text class=\"chart-title\" x=\"\(num(left))\" y=\"16\">")
        h.text("\(title) — \(g.count(m)) samples")
        h.raw("</text>\n")
        for i in 0...4 {
            let y = top + plotH * Double(i) / 4
            h.raw("<line class=\"grid\" x1=\"\(num(left))\" y1=\"\(num(y))\" x2=\"\(num(w - right))\" y2=\"\(num(y))\" />")
            h.raw("<text class=\"tick y\" x=\"\(num(left - 4))\" y=\"\(num(y + 4))\">\(Int((maxCount * Double(4 - i) / 4).rounded()))</text>\n")
        }
        for (i, b) in bins.enumerated() where b.count > 0 {
            let bh = plotH * Double(b.count) / maxCount
            let lo = Int64(pow10(Double(b.k) / 5)), hi = Int64(pow10(Double(b.k + 1) / 5))
            h.raw("<rect class=\"hbar\" x=\"\(num(left + Double(i) * bw + 0.5))\" y=\"\(num(top + plotH - bh))\" width=\"\(num(max(1, bw - 1)))\" height=\"\(num(bh))\" fill=\"\(color)\"><title>")
            h.text("\(Timestamp.duration(lo)) – \(Timestamp.duration(hi)): \(b.count)")
            h.raw("</title></rect>\n")
        }
        // Decade ticks.
        for (i, b) in bins.enumerated() where b.k % 5 == 0 {
            let x = left + Double(i) * bw
            h.raw("<line class=\"grid\" x1=\"\(num(x))\" y1=\"\(num(top + plotH))\" x2=\"\(num(x))\" y2=\"\(num(top + plotH + 4))\" />")
            h.raw("<text class=\"tick\" x=\"\(num(x))\" y=\"\(num(top + plotH + 16))\">\(Timestamp.duration(Int64(pow10(Double(b.k) / 5))))</text>\n")
        }
        let ps = g.percentiles(m)
        for (k, (name, v)) in [("p50", ps[0]), ("p99", ps[2])].enumerated() {
            guard let v else { continue }
            let x = min(w - right, max(left, xOf(ns: v)))
            h.raw("<line class=\"pline\" x1=\"\(num(x))\" y1=\"\(num(top - 4))\" x2=\"\(num(x))\" y2=\"\(num(top + plotH))\" />")
            // p99's label a line below p50's: close percentiles do not overlap.
            h.raw("<text class=\"ptext\" x=\"\(num(x + 3))\" y=\"\(num(top + 6 + Double(k) * 13))\">\(name) \(Timestamp.duration(v))</text>\n")
        }
        h.raw("</svg>\n")
    }

    // MARK: timeline

    /// Requests a second (5xx in red) and the mean time the proxy added, over the capture.
    static func timelineSection(_ h: inout HTMLWriter, _ r: AnalysisReport) {
        let t = r.timeline
        guard let origin = t.origin, !t.buckets.isEmpty else { return }
        let perSecond = 1e9 / Double(t.width)
        let w = 1180.0, ht = 240.0, left = 56.0, right = 64.0, top = 28.0, bottom = 38.0
        let plotW = w - left - right, plotH = ht - top - bottom
        let n = t.buckets.count
        let maxRate = max(1, t.buckets.map { Double($0.requests) * perSecond }.max() ?? 1)
        let maxAdded = Double(t.buckets.compactMap(\.proxyAddedMean).max() ?? 0)
        let bw = plotW / Double(n)
        h.raw("<section id=\"timeline\">\n<h2>Over time</h2>\n<div class=\"scroll\">\n")
        h.raw("<svg class=\"timeline\" width=\"\(num(w))\" height=\"\(num(ht))\" viewBox=\"0 0 \(num(w)) \(num(ht))\" role=\"img\" aria-label=\"requests per second and proxy added over time\">\n")
        h.raw("<text class=\"chart-title\" x=\"\(num(left))\" y=\"16\">requests per second (bars; 5xx in red)\(maxAdded > 0 ? " and the mean time the proxy added (line, right axis)" : "")</text>\n")
        for i in 0...4 {
            let y = top + plotH * Double(i) / 4
            h.raw("<line class=\"grid\" x1=\"\(num(left))\" y1=\"\(num(y))\" x2=\"\(num(w - right))\" y2=\"\(num(y))\" />")
            h.raw("<text class=\"tick y\" x=\"\(num(left - 4))\" y=\"\(num(y + 4))\">\(Int((maxRate * Double(4 - i) / 4).rounded()))</text>")
            if maxAdded > 0 {
                h.raw("<text class=\"tick y2\" x=\"\(num(w - right + 4))\" y=\"\(num(y + 4))\">\(Timestamp.duration(Int64(maxAdded * Double(4 - i) / 4)))</text>")
            }
            h.raw("\n")
        }
        for (i, b) in t.buckets.enumerated() where b.requests > 0 {
            let x = left + Double(i) * bw
            let bh = plotH * Double(b.requests) * perSecond / maxRate
            h.raw("<rect class=\"tbar\" x=\"\(num(x))\" y=\"\(num(top + plotH - bh))\" width=\"\(num(max(0.5, bw - 0.5)))\" height=\"\(num(bh))\"><title>")
            h.text("+\(Timestamp.duration(Int64(i) * t.width)): \(b.requests) requests, \(b.serverErrors) 5xx\(b.proxyAddedMean.map { ", proxy added \(Timestamp.duration($0)) mean, \(Timestamp.duration(b.proxyAddedMax)) max" } ?? "")")
            h.raw("</title></rect>")
            if b.serverErrors > 0 {
                let eh = max(1, plotH * Double(b.serverErrors) * perSecond / maxRate)
                h.raw("<rect class=\"ebar\" x=\"\(num(x))\" y=\"\(num(top + plotH - eh))\" width=\"\(num(max(0.5, bw - 0.5)))\" height=\"\(num(eh))\" />")
            }
            h.raw("\n")
        }
        if maxAdded > 0 {
            var points: [String] = []
            for (i, b) in t.buckets.enumerated() {
                guard let mean = b.proxyAddedMean else { continue }
                points.append("\(num(left + (Double(i) + 0.5) * bw)),\(num(top + plotH - plotH * Double(mean) / maxAdded))")
            }
            h.raw("<polyline class=\"tline\" points=\"\(points.joined(separator: " "))\" />\n")
        }
        // Time ticks: about eight, on whole buckets.
        let step = max(1, n / 8)
        for i in stride(from: 0, to: n, by: step) {
            let x = left + Double(i) * bw
            h.raw("<text class=\"tick\" x=\"\(num(x))\" y=\"\(num(top + plotH + 16))\">+\(Timestamp.duration(Int64(i) * t.width))</text>")
        }
        h.raw("\n</svg>\n</div>\n<p class=\"note\">")
        h.text("From \(Timestamp.timeOfDay(origin)), \(TextReport.plural(n, "bucket")) of \(Timestamp.duration(t.width)); each chain counted at its first request.")
        h.raw("</p>\n</section>\n")
    }

    // MARK: routes

    /// Every route (up to `LatencyModel.routeLimit`), sortable in the page by any column (each
    /// cell carries its value in `data-v`).
    static func routesSection(_ h: inout HTMLWriter, _ r: AnalysisReport) {
        let l = r.latency
        guard !l.routes.isEmpty else { return }
        let proxied = l.overall.count(.proxyAdded) > 0
        h.raw("<section id=\"routes\">\n<h2>Routes</h2>\n<p class=\"note\">")
        h.text("\(TextReport.plural(l.routes.count, "route")) (method and path, ids folded), worst first by p99 \(proxied ? "proxy added" : "of the client's time"); click a heading to sort.")
        h.raw("</p>\n<div class=\"scroll\">\n<table class=\"routes sortable\">\n<thead><tr><th data-type=\"text\">route</th><th class=\"num\">chains</th>")
        for p in ["client p50", "client p90", "client p99", "client max"] { h.raw("<th class=\"num\">\(p)</th>") }
        if proxied { for p in ["proxy p50", "proxy p90", "proxy p99", "proxy max"] { h.raw("<th class=\"num\">\(p)</th>") } }
        h.raw("</tr></thead>\n<tbody>\n")
        let measure: LatencyModel.Measure = proxied ? .proxyAdded : .client
        let ranked = l.routes.map { ($0.route, $0.group, $0.group.percentiles(.client), $0.group.percentiles(.proxyAdded)) }
            .sorted { a, b in
                let x = (measure == .client ? a.2 : a.3)[2] ?? -1, y = (measure == .client ? b.2 : b.3)[2] ?? -1
                return x != y ? x > y : a.0 < b.0
            }
        func cell(_ v: Int64?) {
            h.raw("<td class=\"num\" data-v=\"\(v ?? -1)\">\(v.map(Timestamp.duration) ?? "–")</td>")
        }
        for (route, g, client, added) in ranked {
            h.raw("<tr><td data-v=\"")
            h.text(route)
            h.raw("\"><code>")
            h.text(route)
            h.raw("</code></td><td class=\"num\" data-v=\"\(g.chains)\">\(g.chains)</td>")
            for i in [0, 1, 2, 4] { cell(client[i]) }
            if proxied { for i in [0, 1, 2, 4] { cell(added[i]) } }
            h.raw("</tr>\n")
        }
        h.raw("</tbody>\n</table>\n</div>\n</section>\n")
    }

    // MARK: problems

    /// Each kind of problem, its count, what it means and the worst few; chain ids open the
    /// chain in the table below.
    static func problemsPanel(_ h: inout HTMLWriter, _ r: AnalysisReport) {
        let sections = r.problemSections
        h.raw("<section id=\"problems\">\n<h2>Problems</h2>\n")
        if sections.isEmpty {
            h.raw("<p class=\"ok\">None found: every chain complete, no retries, 5xx, resets, orphans, slow outliers or ambiguous pairings, no copy unexplained.</p>\n</section>\n")
            return
        }
        h.raw("<div class=\"problems\">\n")
        for sec in sections {
            let severe: Set<ProblemModel.Kind> = [.serverErrors, .resets, .unexplainedDuplicates, .incomplete]
            h.raw("<div class=\"problem\(severe.contains(sec.kind) ? " severe" : "")\" data-kind=\"\(sec.kind.rawValue)\"><h3>")
            h.text(sec.kind.title)
            h.raw(" <span class=\"count\">")
            h.text(sec.countText)
            h.raw("</span></h3><p class=\"note\">")
            h.text(sec.kind.meaning)
            h.raw("</p><ul>\n")
            for item in sec.items {
                h.raw("<li>")
                h.text(item.text)
                if !item.chainIDs.isEmpty {
                    h.raw(" <span class=\"dim\">chain")
                    for id in item.chainIDs.prefix(8) { h.raw(" <a href=\"#chain-\(id)\" data-chain=\"\(id)\">#\(id)</a>") }
                    if item.chainIDs.count > 8 { h.raw(" …") }
                    h.raw("</span>")
                }
                h.raw("</li>\n")
            }
            h.raw("</ul></div>\n")
        }
        h.raw("</div>\n</section>\n")
    }
}
