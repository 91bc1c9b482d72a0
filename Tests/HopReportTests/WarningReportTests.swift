import Foundation
import HopCorrelation
import HopReport
import XCTest

/// How the reports carry the analysis's warnings, and the capture notes' counters.
final class WarningReportTests: XCTestCase {
    let oneSided = AnalysisWarning(
        code: .oneSidedConnections, message: "the filter 'tcp port 80' left 2 connections one-sided: include 15001/15006 and lo, or drop the filter",
        reason: "the filter 'tcp port 80' left 2 connections one-sided",
        counts: [.init("one-sided-connections", 2), .init("responses-without-request", 2)], evidence: ["c3 one way"])

    func testTextReportHasAWarningsBlockAndAnAnswerThatCantTell() throws {
        var r = try analyze("seed-doubled-head.pcap")
        let plain = TextReport.render(r)
        XCTAssertFalse(plain.contains("\nwarnings\n"), plain)
        XCTAssertTrue(r.answer.hasSuffix("No copy is left unexplained."), r.answer)
        r.warnings = [oneSided]
        let text = TextReport.render(r)
        XCTAssertTrue(text.contains("""
        warnings
          [one-sided-connections] the filter 'tcp port 80' left 2 connections one-sided:
            include 15001/15006 and lo, or drop the filter (2 one-sided-connections, 2
            responses-without-request)
        """), text)
        XCTAssertTrue(r.answer.hasSuffix("Can't tell whether that is all, because the filter 'tcp port 80' left 2 connections one-sided (see the warnings)."), r.answer)
    }

    func testJSONDocumentAndTrailerCarryTheWarnings() throws {
        var r = try analyze("seed-doubled-head.pcap")
        let none = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(JSONReport.document(r).utf8)) as? [String: Any])
        XCTAssertEqual((none["warnings"] as? [Any])?.count, 0)
        r.warnings = [oneSided]
        for text in [JSONReport.document(r), JSONReport.trailer(r)] {
            var o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
            if let inner = o["summary"] as? [String: Any], o["warnings"] == nil { o = inner }
            let w = try XCTUnwrap((o["warnings"] as? [[String: Any]])?.first, text)
            XCTAssertEqual(w["code"] as? String, "one-sided-connections")
            XCTAssertEqual(w["message"] as? String, oneSided.message)
            XCTAssertEqual(w["reason"] as? String, oneSided.reason)
            XCTAssertEqual(w["counts"] as? [String: Int], ["one-sided-connections": 2, "responses-without-request": 2])
            XCTAssertEqual(w["evidence"] as? [String], ["c3 one way"])
        }
    }

    /// The HTTP stage counts the gaps reassembly handed it: the same events, listed once.
    func testCaptureNotesListACounterSeveralStagesCountOnce() throws {
        var r = try analyze("seed-doubled-head.pcap")
        r.counters = [
            .init(name: "flows", items: [("gaps", 4, ""), ("gap-bytes", 146, ""), ("gaps-acked-unseen", 4, "")]),
            .init(name: "http", items: [("gaps", 4, ""), ("gap-bytes", 140, ""), ("responses", 4, "")]),
        ]
        XCTAssertTrue(TextReport.render(r).contains("capture notes: 4 gaps, 146 gap-bytes, 4 gaps-acked-unseen, 140 http gap-bytes\n"),
                      TextReport.render(r))
    }
}
