import Foundation
import XCTest

/// The problems in the JSON document and in jsonl's summary line: the same, naming the chains.
final class ProblemsJSONTests: XCTestCase {
    func testDocumentAndSummaryLineCarryTheSameProblems() throws {
        let capture = TestEnv.captures.appendingPathComponent("lab-retry.pcap").path
        let doc = try TestEnv.hoptrace("analyze", capture, "--format", "json")
        XCTAssertEqual(doc.status, 0, doc.stderr)
        let d = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(doc.stdout.utf8)) as? [String: Any])
        let problems = try XCTUnwrap(d["problems"] as? [[String: Any]])
        let retried = try XCTUnwrap(problems.first { $0["kind"] as? String == "retries" })
        XCTAssertEqual(retried["count"] as? Int, 1)
        let worst = try XCTUnwrap(retried["worst"] as? [[String: Any]])
        XCTAssertEqual(worst.first?["chains"] as? [Int], [1])
        XCTAssertEqual(worst.first?["text"] as? String, "#1 GET / → 200, 5.73 ms, 1 retry")

        let lines = try TestEnv.hoptrace("analyze", capture, "--format", "jsonl")
        let last = try XCTUnwrap(lines.stdout.split(separator: "\n").last)
        let summary = try XCTUnwrap((JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])?["summary"] as? [String: Any])
        XCTAssertEqual(summary["problems"] as? NSArray, problems as NSArray)
    }
}
