import HopCapture
import HopCorrelation
import HopReport
import XCTest

/// No report traps on time arithmetic, whatever the chains hold.
final class OverflowTests: XCTestCase {
    /// The seed capture's first chain with no request on any hop: only responses were captured
    /// (a capture that starts mid-exchange). Its times are real ones (~1.8e18 ns since 1970).
    func responsesOnly() throws -> (AnalysisReport, RequestChain) {
        var r = try analyze("seed-doubled-head.pcap")
        var c = r.chains[0]
        for i in c.hops.indices { c.hops[i].exchange.request = nil }
        XCTAssertNotNil(c.hops[0].exchange.response)
        r.chains = [c]
        return (r, c)
    }

    /// The crash seen on a HAProxy capture: `TextReport.chainBlock` timed a chain without a
    /// request start from t0 = 0 and `Timestamp.duration` multiplied the absolute time by 10^3.
    func testTextReportOfAChainWithoutRequestStart() throws {
        let (r, c) = try responsesOnly()
        let lines = TextReport.chainBlock(c, report: r)
        let timing = lines[2]
        XCTAssertTrue(timing.contains("request not captured, from "), timing)
        // Timed from the first response byte: the offsets are small.
        let offsets = matches(#"\+([0-9.]+) (ns|µs|ms|s)\b"#, in: lines.joined(separator: "\n"))
        XCTAssertFalse(offsets.isEmpty, lines.joined(separator: "\n"))
        for o in offsets { XCTAssertNotEqual(o[2], "s", "an offset in seconds: \(o[0])") }
        _ = TextReport.render(r, options: { var o = TextReport.Options(); o.full = true; return o }())
    }

    func testEveryFormatOfAChainWithoutRequestStart() throws {
        let (r, _) = try responsesOnly()
        XCTAssertFalse(MermaidReport.render(r).isEmpty)
        XCTAssertTrue(HTMLChecker(HTMLReport.render(r)).problems.isEmpty)
        let doc = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(JSONReport.document(r).utf8)) as? [String: Any])
        let hop = try XCTUnwrap(((doc["chains"] as? [[String: Any]])?.first?["hops"] as? [[String: Any]])?.first)
        XCTAssertTrue(hop["requestStartNs"] is NSNull)
        XCTAssertTrue(hop["requestEndNs"] is NSNull)
        XCTAssertNotNil(hop["responseStartNs"] as? Int)
    }

    /// Times at the ends of Int64 (a hostile or broken capture) in every format.
    func testExtremeTimesInEveryFormat() throws {
        var r = try analyze("seed-doubled-head.pcap")
        var c = r.chains[0]
        c.hops[0].exchange.request?.firstTimestamp = .min
        c.hops[0].exchange.response?.lastTimestamp = .max
        c.hops[1].exchange.request = nil
        c.hops[1].exchange.response?.firstTimestamp = .max
        r.chains = [c, r.chains[1]]
        _ = TextReport.render(r)
        _ = MermaidReport.render(r)
        _ = HTMLReport.render(r)
        XCTAssertNotNil(try JSONSerialization.jsonObject(with: Data(JSONReport.document(r).utf8)))
    }

    func testDurationAndElapsedNeverTrap() {
        XCTAssertEqual(Timestamp.duration(840), "840 ns")
        XCTAssertEqual(Timestamp.duration(12_345), "12.3 µs")
        XCTAssertEqual(Timestamp.duration(4_567_890), "4.56 ms")
        XCTAssertEqual(Timestamp.duration(1_234_567_890), "1.234 s")
        XCTAssertEqual(Timestamp.duration(-1_500), "-1.5 µs")
        XCTAssertEqual(Timestamp.duration(1_795_705_336_720_396_214), "1795705336.720 s")
        XCTAssertEqual(Timestamp.duration(.max), "9223372036.854 s")
        XCTAssertEqual(Timestamp.duration(.min), "-9223372036.854 s")
        XCTAssertEqual(Timestamp.elapsed(from: 10, to: 25), 15)
        XCTAssertEqual(Timestamp.elapsed(from: .min, to: .max), .max)
        XCTAssertEqual(Timestamp.elapsed(from: .max, to: .min), .min)
    }

    func testJSONWriterEscapesAsRFC8259() {
        let w = JSONWriter()
        w.beginObject()
        w.field("s", "a\"b\\c\nd\re\tf\u{01}g\u{7f}é→")
        w.field("n", nil as String?)
        w.key("t"); w.iso8601(1_795_705_336_720_396_214)
        w.endObject()
        XCTAssertEqual(w.string, #"{"s":"a\"b\\c\nd\re\tf\u0001g"# + "\u{7f}é→" + #"","n":null,"t":"2026-11-26T15:02:16.720396214Z"}"#)
        XCTAssertEqual(Timestamp.iso8601(1_795_705_336_720_396_214), "2026-11-26T15:02:16.720396214Z")
    }
}
