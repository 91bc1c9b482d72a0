import Foundation
import XCTest

/// `watch --summary-interval`: the one-screen summary every so many seconds of capture time and
/// at the end, beside the per-exchange lines (a file replayed as if live).
final class WatchSummaryTests: XCTestCase {
    func testSummariesComeEveryIntervalAndAtTheEndAgreeingWithAnalyze() throws {
        let capture = TestEnv.captures.appendingPathComponent("lab-load.pcap").path
        let r = try TestEnv.hoptrace("watch", "-r", capture, "--summary-interval", "0.01")
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        // lab-load spans 66 ms: a summary every 10 ms of it, each counting more chains.
        let sofar = lines.filter { $0.hasPrefix("── so far: ") }
        XCTAssertGreaterThanOrEqual(sofar.count, 3, r.stdout)
        let counts = sofar.compactMap { Int($0.dropFirst("── so far: ".count).prefix { $0.isNumber }) }
        XCTAssertEqual(counts, counts.sorted())
        XCTAssertEqual(Set(counts).count, counts.count, "each summary after more chains")
        let finals = lines.enumerated().filter { $0.element.hasPrefix("── summary: ") }
        XCTAssertEqual(finals.count, 1)
        XCTAssertTrue(finals[0].element.hasPrefix("── summary: 200 chains in "), finals[0].element)
        // The per-exchange lines are still there (one per hop), the final summary last.
        XCTAssertEqual(lines.filter { $0.contains(" inbound-intercepted ") || $0.contains(" inbound-forwarded ") }.count, 400)
        let tail = lines[finals[0].offset...]
        XCTAssertTrue(tail.allSatisfy { !$0.contains(" inbound-forwarded ") }, "no hop line after the final summary")
        // The same percentiles as analyze's (every chain of the capture, one latency model).
        let analyzed = try TestEnv.hoptrace("analyze", capture)
        let row = try XCTUnwrap(analyzed.stdout.split(separator: "\n").first { $0.hasPrefix("  client waited") })
        XCTAssertTrue(tail.contains(String(row)), "final summary's client row differs from analyze's: \(row)")
        // The summary fits 80 columns off a terminal (the hop lines are tcpdump-like, as wide as they are).
        XCTAssertTrue(tail.allSatisfy { $0.count <= 80 }, "a summary wider than 80 columns off a terminal")
        XCTAssertFalse(r.stdout.contains("\u{1B}["), "no colour off a terminal")
    }

    func testJSONLinesStayJSONAndABadIntervalIsRefused() throws {
        let capture = TestEnv.captures.appendingPathComponent("lab-seed.pcap").path
        let j = try TestEnv.hoptrace("watch", "-r", capture, "--summary-interval", "0.001", "--format", "jsonl")
        XCTAssertEqual(j.status, 0, j.stderr)
        for line in j.stdout.split(separator: "\n") {
            XCTAssertNoThrow(try JSONSerialization.jsonObject(with: Data(line.utf8)), String(line))
        }
        for bad in ["0", "-1", "nan"] {
            let r = try TestEnv.hoptrace("watch", "-r", capture, "--summary-interval", bad)
            XCTAssertEqual(r.status, 2, bad)
            XCTAssertTrue(r.stderr.contains("--summary-interval"), r.stderr)
        }
    }
}
