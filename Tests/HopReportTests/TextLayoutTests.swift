import HopCorrelation
@testable import HopReport
import XCTest

/// The text report's layout: wrapping, colour, plurals, the problems first.
final class TextLayoutTests: XCTestCase {
    func testWrapKeepsTheWidthWithAHangingIndent() {
        let st = TextStyle(width: 40)
        let lines = st.wrap("one two three four five six seven eight nine ten eleven twelve", first: "label    ", indent: 9)
        XCTAssertEqual(lines, ["label    one two three four five six",
                               "         seven eight nine ten eleven",
                               "         twelve"])
        XCTAssertTrue(lines.allSatisfy { $0.count <= 40 })
    }

    func testWrapKeepsTheSpacesBetweenWordsOnALineAndCutsAWordLongerThanALine() {
        let st = TextStyle(width: 40)
        XCTAssertEqual(st.wrap("a  → 200  2 hops", indent: 2), ["a  → 200  2 hops"])
        let long = String(repeating: "x", count: 90)
        let lines = st.wrap("see " + long, first: "  ", indent: 4)
        XCTAssertEqual(lines.map(\.count), [5, 40, 40, 22], lines.joined(separator: "\n"))
        XCTAssertEqual(lines.joined().filter { $0 == "x" }.count, 90)
    }

    func testStyleFollowsTheTerminalAndNoColor() {
        XCTAssertEqual(TextStyle.decide(isTerminal: false, environment: ["COLUMNS": "200"], terminalWidth: 150), .plain)
        XCTAssertEqual(TextStyle.decide(isTerminal: true, environment: [:], terminalWidth: 150), TextStyle(width: 150, color: true))
        XCTAssertEqual(TextStyle.decide(isTerminal: true, environment: ["COLUMNS": "120"], terminalWidth: 150).width, 120)
        XCTAssertEqual(TextStyle.decide(isTerminal: true, environment: [:], terminalWidth: nil).width, 80)
        XCTAssertFalse(TextStyle.decide(isTerminal: true, environment: ["NO_COLOR": "1"], terminalWidth: nil).color)
        // no-color.org: an empty NO_COLOR is as if unset.
        XCTAssertTrue(TextStyle.decide(isTerminal: true, environment: ["NO_COLOR": ""], terminalWidth: nil).color)
        XCTAssertFalse(TextStyle.decide(isTerminal: true, environment: ["TERM": "dumb"], terminalWidth: nil).color)
        XCTAssertEqual(TextStyle(color: true).paint("5xx", .red), "\u{1B}[31m5xx\u{1B}[0m")
        XCTAssertEqual(TextStyle(color: false).paint("5xx", .red), "5xx")
    }

    func testPlurals() {
        XCTAssertEqual(TextReport.plural(1, "chain"), "1 chain")
        XCTAssertEqual(TextReport.plural(0, "chain"), "0 chains")
        XCTAssertEqual(TextReport.plural(2, "retry"), "2 retries")
        XCTAssertEqual(TextReport.plural(3, "day"), "3 days")
        XCTAssertEqual(TextReport.plural(1, "hop"), "1 hop")
    }

    /// The answer before the numbers, the problems before the chains, no line over the width,
    /// no colour off a terminal; with colour, the same text once the escapes are taken out.
    func testReportOrderWidthAndColour() throws {
        let r = try counted(analyze("lab-retry.pcap"))
        for width in [60, 80, 132] {
            var o = TextReport.Options()
            o.style = TextStyle(width: width)
            let text = TextReport.render(r, options: o)
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            XCTAssertTrue(lines.allSatisfy { $0.count <= width }, "over \(width):\n" + lines.filter { $0.count > width }.joined(separator: "\n"))
            let answer = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("answer ") })
            let latency = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("latency ") })
            let problems = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("problems ") })
            let chains = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("chains ") })
            XCTAssertTrue(answer < latency && latency < problems && problems < chains, text)
            XCTAssertFalse(text.contains("\u{1B}["))
            XCTAssertFalse(text.contains("(see below)"))
            o.style.color = true
            let colored = TextReport.render(r, options: o)
            XCTAssertTrue(colored.contains("\u{1B}[1m"))
            XCTAssertEqual(colored.replacingOccurrences(of: "\u{1B}\\[[0-9]+m", with: "", options: .regularExpression), text)
        }
    }

    /// lab-retry: the proxy's first attempt was reset, its second answered: one chain retried,
    /// named by its id, and its line in the chain list says so.
    func testProblemsNameTheRetriedChain() throws {
        let r = try counted(analyze("lab-retry.pcap"))
        let sections = r.problemSections
        let retried = try XCTUnwrap(sections.first { $0.kind == .retries })
        XCTAssertEqual(retried.count, 1)
        XCTAssertEqual(retried.items.first?.chainIDs, [1])
        XCTAssertEqual(retried.countText, "1 chain")
        let text = TextReport.render(r)
        XCTAssertTrue(text.contains("  retried: 1 chain — the proxy sent the request upstream again\n      #1 GET / → 200, "), text)
        XCTAssertTrue(text.contains("  #1 GET /  → 200  3 hops  "), text)
        XCTAssertTrue(text.contains("  1 retry\n"), text)
    }

    /// A chain's full block says each rule once: in the explanation when it names it, else on
    /// the hop's `rule:` line.
    func testChainBlockSaysEachRuleOnce() throws {
        let r = try analyze("seed-doubled-head.pcap")
        let c = try XCTUnwrap(r.chains.first { $0.isMultiHop })
        let block = TextReport.chainBlock(c, report: r, style: TextStyle(width: 1000)).joined(separator: "\n")
        for h in c.hops {
            let n = block.components(separatedBy: h.rule.sentence).count - 1
            XCTAssertEqual(n, 1, "rule said \(n) times: \(h.rule.sentence)\n\(block)")
        }
    }

    /// Worst first, at most `keep` of a kind, the count still whole.
    func testProblemModelKeepsTheWorstAndCountsAll() throws {
        let r = try analyze("lab-retry.pcap")
        let base = try XCTUnwrap(r.chains.first { $0.retries > 0 })
        var model = ProblemModel()
        for id in 1...12 {
            var c = base
            c.id = id
            // Every third chain retried twice (a third upstream attempt).
            if id % 3 == 0, let up = c.hops.last { c.hops.append(up) }
            model.add(c)
        }
        let s = model.sections(summary: AnalysisSummary(), duplicates: [], orphans: [], latency: LatencyModel())
        let retried = try XCTUnwrap(s.first { $0.kind == .retries })
        XCTAssertEqual(retried.count, 12)
        XCTAssertEqual(retried.items.map { $0.chainIDs[0] }, [3, 6, 9, 12, 1])
        XCTAssertTrue(retried.items[0].text.hasSuffix("2 retries"), retried.items[0].text)
    }
}

/// `r` with its latency, problems and timeline counted from its chains (as `Analysis.run` does).
func counted(_ r: AnalysisReport) -> AnalysisReport {
    var r = r
    var c = AnalysisReport.Counted(rows: true)
    for chain in r.chains { c.add(chain) }
    r.latency = c.latency
    r.problems = c.problems
    r.timeline = c.timeline
    r.chainRows = c.rows!
    return r
}

/// The colours of the streaming commands' lines.
final class LineColorTests: XCTestCase {
    func testResetsDifferencesAndStatusesAreColoured() {
        let on = TextStyle(color: true), off = TextStyle()
        let flow = "c3 15:02:19.068652633 198.18.13.1:37832 > 198.18.13.2:80 → 77 B 1 seg ← 0 B 0 seg 1.00 ms rst-by-server anomalies: → 1 gap"
        XCTAssertEqual(on.flowLine(flow), flow.replacingOccurrences(of: " rst-by-server", with: "\u{1B}[31m rst-by-server\u{1B}[0m")
                                               .replacingOccurrences(of: " anomalies:", with: "\u{1B}[33m anomalies:\u{1B}[0m"))
        XCTAssertEqual(off.flowLine(flow), flow)
        let packet = "15:02:19.068652633 IP 198.18.13.1.37832 > 198.18.13.2.80: Flags [R.], seq 1, ack 2, win 0, length 0"
        XCTAssertEqual(on.packetLine(packet, reset: true), "15:02:19.068652633 IP 198.18.13.1.37832 > 198.18.13.2.80: \u{1B}[31mFlags [R.]\u{1B}[0m, seq 1, ack 2, win 0, length 0")
        XCTAssertEqual(on.packetLine(packet, reset: false), packet)
        XCTAssertEqual(on.checkLine("capture Captures/lab-seed.pcap: ok (3 chains)"), "capture Captures/lab-seed.pcap\u{1B}[32m: ok\u{1B}[0m (3 chains)")
        XCTAssertEqual(on.checkLine("capture x.pcap: 2 differences from x.expect.json"), "capture x.pcap: 2\u{1B}[31m difference\u{1B}[0ms from x.expect.json")
    }
}

/// The timeline stays within its buckets whatever the capture's length, losing no chain.
final class TimelineTests: XCTestCase {
    func testBucketsWidenAndNothingIsLost() throws {
        let r = try analyze("seed-doubled-head.pcap")
        let base = try XCTUnwrap(r.chains.first { $0.proxyAddedNs != nil })
        func shifted(_ seconds: Int64) -> RequestChain {
            var c = base
            for i in c.hops.indices {
                c.hops[i].exchange.request?.firstTimestamp += seconds * 1_000_000_000
                c.hops[i].exchange.response?.lastTimestamp += seconds * 1_000_000_000
            }
            return c
        }
        var t = Timeline()
        for s in stride(from: Int64(0), to: 2000, by: 1) { t.add(shifted(s)) }
        XCTAssertLessThanOrEqual(t.buckets.count, Timeline.maxBuckets)
        XCTAssertEqual(t.width, 4_000_000_000, "1 s doubled until 2000 s fit in 600 buckets")
        XCTAssertEqual(t.buckets.reduce(0) { $0 + $1.requests }, 2000)
        XCTAssertEqual(t.buckets.reduce(0) { $0 + $1.proxied }, 2000)
        XCTAssertEqual(t.buckets.map(\.proxyAddedMax).max(), base.proxyAddedNs)
        // A chain from before the first bucket: buckets in front, still none lost.
        t.add(shifted(-100))
        XCTAssertEqual(t.buckets.reduce(0) { $0 + $1.requests }, 2001)
        XCTAssertLessThanOrEqual(t.buckets.count, Timeline.maxBuckets)
        XCTAssertEqual(t.buckets.first?.requests, 1)
    }
}
