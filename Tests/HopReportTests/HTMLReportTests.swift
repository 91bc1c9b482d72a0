import Foundation
import HopCapture
import HopCorrelation
@testable import HopReport
import XCTest
#if canImport(FoundationXML)
import FoundationXML
#endif

final class HTMLReportTests: XCTestCase {
    func check(_ html: String, file: StaticString = #filePath, line: UInt = #line) -> HTMLChecker {
        let c = HTMLChecker(html)
        XCTAssertEqual(c.problems, [], file: file, line: line)
        XCTAssertTrue(html.hasPrefix("<!doctype html>\n<html"), file: file, line: line)
        // Self-contained: nothing is loaded from anywhere. The only scripts are the page's own
        // (inline) and its chain data (JSON).
        XCTAssertLessThanOrEqual(c.count("script") { $0.attribute("src") == nil && ($0.attribute("type") == nil || $0.attribute("type") == "application/json") }, 2, file: file, line: line)
        XCTAssertEqual(c.count("script") { $0.attribute("src") != nil }, 0, file: file, line: line)
        for e in c.elements {
            XCTAssertFalse(["link", "img", "iframe", "object", "embed", "image", "use", "audio", "video", "source", "base", "form"].contains(e.name),
                           "<\(e.name)> in the page", file: file, line: line)
            for (name, value) in e.attributes {
                XCTAssertFalse(name.lowercased().hasPrefix("on"), "event handler \(name) on <\(e.name)>", file: file, line: line)
                if name == "href" || name == "src" || name == "xlink:href" {
                    XCTAssertTrue(value.hasPrefix("#"), "\(name)=\(value) on <\(e.name)>", file: file, line: line)
                }
                if value.contains("url(") {
                    XCTAssertTrue(value.hasPrefix("url(#"), "\(name)=\(value)", file: file, line: line)
                }
            }
        }
        XCTAssertFalse(html.contains("@import"), file: file, line: line)
        XCTAssertEqual(c.count("style"), 1, file: file, line: line)
        XCTAssertEqual(c.count("meta") { $0.attribute("http-equiv") == "Content-Security-Policy" }, 1, file: file, line: line)
        return c
    }

    /// The page parses as XML too (it is written XHTML-compatible), when Foundation has a parser.
    func assertParsesAsXML(_ html: String, file: StaticString = #filePath, line: UInt = #line) {
        #if canImport(FoundationXML) || canImport(Darwin)
        let body = html.replacingOccurrences(of: "<!doctype html>\n", with: "")
        let parser = XMLParser(data: Data(body.utf8))
        // corelibs' parse() may return true with an error set: check both.
        let parsed = parser.parse()
        XCTAssertTrue(parsed && parser.parserError == nil, "XML parse error: \(String(describing: parser.parserError)) at line \(parser.lineNumber)", file: file, line: line)
        #endif
    }

    func waterfallBars(_ c: HTMLChecker) -> [HTMLChecker.Element] {
        c.elements.filter { $0.name == "rect" && $0.classes.contains("bar") && $0.path.contains("svg") }
    }

    func testSeedCapturePage() throws {
        let r = counted(try analyze("seed-doubled-head.pcap"))
        let html = HTMLReport.render(r)
        let c = check(html)
        assertParsesAsXML(html)
        XCTAssertFalse(html.replacingOccurrences(of: "http://www.w3.org/2000/svg", with: "").contains("http://"))
        XCTAssertFalse(html.contains("https://"))
        XCTAssertTrue(c.text.contains(r.answer), "the answer paragraph")
        XCTAssertTrue(c.text.contains("Captures/seed-doubled-head.pcap"))
        XCTAssertTrue(c.text.contains("istio-2018 (given with --rules)"))
        XCTAssertTrue(c.text.contains("198.18.1.40 (inferred; --pod-ip to set)"))
        XCTAssertTrue(c.text.contains("6 → 3"))
        // Every chain in the table's data, each kept chain with its explanation and hops.
        let data = try chainData(html)
        XCTAssertEqual(data["id"] as? [Int], [1, 2, 3])
        let kept = try XCTUnwrap(data["x"] as? [String: [String: Any]])
        for ch in r.chains { XCTAssertEqual(kept[String(ch.id)]?["e"] as? String, ch.explanation, "chain \(ch.id)") }
        XCTAssertTrue(html.contains("198.18.1.30:50932 → 198.18.1.40:80"))
        XCTAssertTrue(c.text.contains("1.06 ms"))
        XCTAssertEqual(answerHeading(html), "Why 6 requests on the wire are 3 requests")
        // The sequence and the waterfall with one bar per hop, two histograms and the timeline.
        XCTAssertEqual(c.count("svg"), 5)
        XCTAssertEqual(c.count("svg") { $0.classes.contains("histogram") }, 2)
        XCTAssertEqual(c.count("svg") { $0.classes.contains("timeline") }, 1)
        XCTAssertEqual(c.count("svg") { $0.classes.contains("waterfall") }, 1)
        let bars = waterfallBars(c)
        XCTAssertEqual(bars.count, r.hopCount)
        XCTAssertEqual(bars.filter { $0.classes.contains("inbound-intercepted") }.count, 3)
        XCTAssertEqual(bars.filter { $0.classes.contains("inbound-forwarded") }.count, 3)
        // The upstream bar lies inside the downstream one (time nesting), on a shared axis.
        for k in 0..<3 {
            let d = bars[2 * k], u = bars[2 * k + 1]
            let dx = Double(d.attribute("x")!)!, dw = Double(d.attribute("width")!)!
            let ux = Double(u.attribute("x")!)!, uw = Double(u.attribute("width")!)!
            XCTAssertLessThan(dx, ux)
            XCTAssertLessThan(ux + uw, dx + dw)
        }
        XCTAssertTrue(c.text.contains("µs"), "axis labelled in µs")
        XCTAssertEqual(c.count("g") { $0.attribute("id")?.hasPrefix("seq-chain-") == true }, 3)
        XCTAssertTrue(c.text.contains("REDIRECT 15001 by nat/ISTIO_REDIRECT rule 1"))
        XCTAssertTrue(c.text.contains("proxy"))
        // Counters table.
        XCTAssertTrue(c.text.contains("paired-exchanges"))
        XCTAssertEqual(c.count("tr") { $0.path.last == "tbody" && $0.path.contains("table") } >= 3 + 5 + 1, true)
    }

    func testNATSplitPage() throws {
        let r = counted(try analyze("nat-split.pcap"))
        let html = HTMLReport.render(r)
        let c = check(html)
        assertParsesAsXML(html)
        XCTAssertEqual((try chainData(html)["id"] as? [Int])?.count, 4)
        let bars = waterfallBars(c)
        XCTAssertEqual(bars.count, 8)
        XCTAssertEqual(bars.filter { $0.classes.contains("outbound-redirected") }.count, 4)
        XCTAssertEqual(bars.filter { $0.classes.contains("outbound-forwarded") }.count, 4)
        XCTAssertTrue(html.contains("198.18.1.10:56876 → 127.0.0.1:15001 (for 198.18.1.20:80)"))
        XCTAssertTrue(c.text.contains("not redirected: uid 1337 is exempt (nat/ISTIO_OUTPUT rule 2)"))
        XCTAssertTrue(c.text.contains(r.answer))
    }

    func testCaptureTextIsEscaped() throws {
        let r = counted(planted(try analyze("seed-doubled-head.pcap"), target: "/<script>alert(1)</script>?u=https://evil.example/x&y='1'"))
        let html = HTMLReport.render(r)
        let c = check(html)
        assertParsesAsXML(html)
        XCTAssertEqual(html.lowercased().components(separatedBy: "<script").count - 1, 2, "a planted script must not survive: only the page's own two")
        // In the chain data the planted text is JSON with <, > and & escaped.
        XCTAssertTrue(html.contains(#"/\u003cscript\u003ealert(1)\u003c/script\u003e?u=https://evil.example/x\u0026y='1'"#))
        XCTAssertEqual((try chainData(html)["strings"] as? [String])?.contains("/<script>alert(1)</script>?u=https://evil.example/x&y='1'"), true)
        XCTAssertFalse(html.lowercased().contains("<img"))
        XCTAssertTrue(html.contains("/&lt;script&gt;alert(1)&lt;/script&gt;?u=https://evil.example/x&amp;y=&#39;1&#39;"))
        XCTAssertTrue(html.contains(#"explained \u003cscript\u003ealert('x')\u003c/script\u003e \u0026 more"#))
        XCTAssertTrue(html.contains("<title>hoptrace — capture &lt;script&gt;.pcap</title>"))
        // The planted URL only appears as escaped text, never in an attribute.
        for e in c.elements { for (_, v) in e.attributes { XCTAssertFalse(v.contains("evil.example"), "\(e.name)") } }
        XCTAssertTrue(c.text.contains("/<script>alert(1)</script>?u=https://evil.example/x&y='1'"), "shown as text")
        XCTAssertEqual(waterfallBars(c).count, r.hopCount)
    }

    func testHugeReportsAreCapped() throws {
        let r0 = try analyze("seed-doubled-head.pcap")
        var r = r0
        r.chains = (0..<620).map { i in
            var c = r0.chains[i % 3]
            c.id = i + 1
            return c
        }
        r = counted(r)
        let html = HTMLReport.render(r)
        let c = check(html)
        // Every chain in the table's data; the first 500 with their explanation.
        let data = try chainData(html)
        XCTAssertEqual((data["id"] as? [Int])?.count, 620)
        XCTAssertEqual((data["x"] as? [String: Any])?.count, 500)
        XCTAssertEqual(c.count("g") { $0.attribute("id")?.hasPrefix("wf-chain-") == true }, 50)
        XCTAssertEqual(c.count("g") { $0.attribute("id")?.hasPrefix("seq-chain-") == true }, 50)
        XCTAssertEqual(waterfallBars(c).count, 100)
        XCTAssertTrue(c.text.contains("… 570 more chains not drawn (--format json lists them)"))
        var o = HTMLReport.Options()
        o.tableLimit = 10
        o.diagramLimit = 2
        let smallHTML = HTMLReport.render(r, options: o)
        let small = HTMLChecker(smallHTML)
        XCTAssertEqual((try chainData(smallHTML)["x"] as? [String: Any])?.count, 10)
        XCTAssertEqual(waterfallBars(small).count, 4)
    }

    func testIncompleteRetriedAndDirectChains() throws {
        let r0 = try analyze("seed-doubled-head.pcap")
        var r = r0
        // Chain 1: the proxy → app copy is missing.
        var incomplete = r0.chains[0]
        incomplete.hops = [incomplete.hops[0]]
        incomplete.completeness = .incomplete(missing: .inboundForwarded, advice: "capture lo too (-i any inside the pod)")
        incomplete.hops[0].exchange.response = nil
        // Chain 2: the proxy retried: two upstream attempts.
        var retried = r0.chains[1]
        var first = retried.hops[1]
        first.exchange.response?.status = 503
        first.exchange.response?.reason = "Service Unavailable"
        retried.hops = [retried.hops[0], first, retried.hops[1]]
        retried.hops[2].attempt = 2
        // Chain 3: direct.
        var direct = r0.chains[2]
        direct.hops = [direct.hops[1]]
        direct.hops[0].role = .direct
        r.chains = [incomplete, retried, direct]
        r.summary.incompleteChains = 1
        r.summary.retries = 1
        r = counted(r)
        let html = HTMLReport.render(r)
        let c = check(html)
        assertParsesAsXML(html)
        XCTAssertEqual(waterfallBars(c).count, 1 + 3)
        XCTAssertEqual(waterfallBars(c).filter { $0.classes.contains("open") }.count, 1, "the bar of a hop without response")
        XCTAssertTrue(c.text.contains("missing inbound-forwarded: capture lo too (-i any inside the pod)"))
        XCTAssertTrue(c.text.contains("no response captured"))
        XCTAssertTrue(c.text.contains("attempt 2"))
        XCTAssertTrue(c.text.contains("503 Service Unavailable"))
        XCTAssertTrue(c.text.contains("1 request — HEAD / ×1"), "direct summary")
        let data = try chainData(html)
        XCTAssertEqual(data["f"] as? [Int], [1, 2, 32], "flags: incomplete, retried, direct")
        // The problems panel names them.
        XCTAssertEqual(c.count("div") { $0.attribute("data-kind") == "incomplete" }, 1)
        XCTAssertEqual(c.count("div") { $0.attribute("data-kind") == "retries" }, 1)

        let m = MermaidReport.render(r)
        XCTAssertTrue(m.contains("proxy--xclient1: no response captured"), m)
        XCTAssertTrue(m.contains("Note over client1,proxy: missing inbound-forwarded copy#58; capture lo too (-i any inside the pod)"), m)
        XCTAssertTrue(m.contains("app1-->>proxy: 503 Service Unavailable"), m)
        XCTAssertTrue(m.contains("proxy->>app1: GET / (attempt 2)"), m)
        XCTAssertEqual(matches(#"^\s*rect rgb\("#, in: m).count, 3)
    }

    func testEmptyReport() throws {
        var r = try analyze("seed-doubled-head.pcap")
        r.chains = []
        r.summary = AnalysisSummary()
        let html = HTMLReport.render(r)
        let c = check(html)
        XCTAssertEqual(answerHeading(html), "No HTTP requests in this capture")
        XCTAssertTrue(c.text.contains("No HTTP requests were found in this capture."))
        XCTAssertEqual(c.count("svg"), 0)
    }

    /// The heading over the answer fits the capture: copies explained, or no sidecar at all.
    func testHeadingFitsTheCapture() throws {
        var r = counted(try analyze("ipv4.pcap"))
        XCTAssertEqual(answerHeading(HTMLReport.render(r)), "No request was copied by a proxy")
        r.rulesName = "none"
        XCTAssertEqual(answerHeading(HTMLReport.render(r)), "No sidecar copies in this capture")
    }

    func answerHeading(_ html: String) -> String? {
        let open = "<section id=\"answer\">\n<h2>"
        guard let a = html.range(of: open), let b = html.range(of: "</h2>", range: a.upperBound..<html.endIndex) else { return nil }
        return String(html[a.upperBound..<b.lowerBound])
    }

    func testOutputIsDeterministic() throws {
        let a = HTMLReport.render(try analyze("nat-split.pcap"))
        let b = HTMLReport.render(try analyze("nat-split.pcap"))
        XCTAssertEqual(a, b)
        let r = try analyze("seed-doubled-head.pcap")
        XCTAssertEqual(HTMLReport.render(r), HTMLReport.render(r))
    }

    func testAxisTicks() {
        func labels(_ maxNs: Int64) -> [String] {
            let (step, unit) = HTMLReport.tickStep(maxNs)
            return stride(from: Int64(0), through: ((maxNs + step - 1) / step) * step, by: Int(step)).map { HTMLReport.axisLabel($0, unit) }
        }
        XCTAssertEqual(labels(1_210_000), ["0", "0.2 ms", "0.4 ms", "0.6 ms", "0.8 ms", "1 ms", "1.2 ms", "1.4 ms"])
        XCTAssertEqual(labels(683_000), ["0", "100 µs", "200 µs", "300 µs", "400 µs", "500 µs", "600 µs", "700 µs"])
        XCTAssertEqual(labels(3_500_000_000), ["0", "0.5 s", "1 s", "1.5 s", "2 s", "2.5 s", "3 s", "3.5 s"])
        XCTAssertEqual(labels(12), ["0", "2 ns", "4 ns", "6 ns", "8 ns", "10 ns", "12 ns"])
        XCTAssertEqual(labels(45_000), ["0", "10 µs", "20 µs", "30 µs", "40 µs", "50 µs"])
    }

    /// The checkers catch what they are meant to catch.
    func testCheckersRejectBrokenPages() {
        XCTAssertFalse(HTMLChecker("<p><b>x</p></b>").problems.isEmpty)
        XCTAssertFalse(HTMLChecker("<p>a < b</p>").problems.isEmpty)
        XCTAssertFalse(HTMLChecker("<p>a > b</p>").problems.isEmpty)
        XCTAssertFalse(HTMLChecker("<p>R&D</p>").problems.isEmpty)
        XCTAssertFalse(HTMLChecker("<p class=x>y</p>").problems.isEmpty)
        XCTAssertFalse(HTMLChecker("<div><p>y</p>").problems.isEmpty)
        XCTAssertFalse(HTMLChecker("<p title=\"a<b\">y</p>").problems.isEmpty)
        let ok = HTMLChecker("<p title=\"a &amp; b\">x &lt;y&gt; &#39;z&#39;<br /><meta charset=\"utf-8\"></p><style>a > b { }</style>")
        XCTAssertEqual(ok.problems, [])
        XCTAssertEqual(ok.text, "x <y> 'z'")
        #if canImport(FoundationXML) || canImport(Darwin)
        let broken = XMLParser(data: Data("<html><p></html>".utf8))
        XCTAssertFalse(broken.parse() && broken.parserError == nil)
        #else
        print("note: no XMLParser here; pages are checked by HTMLChecker only")
        #endif
    }
}

/// The chain table's data (the JSON in `script#chain-data`).
func chainData(_ html: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
    let open = "<script type=\"application/json\" id=\"chain-data\">"
    let start = try XCTUnwrap(html.range(of: open), "no chain data", file: file, line: line)
    let end = try XCTUnwrap(html.range(of: "</script>", range: start.upperBound..<html.endIndex), file: file, line: line)
    let text = String(html[start.upperBound..<end.lowerBound])
    XCTAssertFalse(text.contains("<") || text.contains(">") || text.contains("&"), "raw markup in the chain data", file: file, line: line)
    return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], file: file, line: line)
}
