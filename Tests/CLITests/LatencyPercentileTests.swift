import Foundation
import XCTest

/// The latency distributions of `analyze --format jsonl` (HdrHistogram) against an independent
/// computation: numpy over the same output's chain lines (scripts/check-latency.py), on every
/// bundled capture.
final class LatencyPercentileTests: XCTestCase {
    func testPercentilesAgreeWithNumpyOnEveryCapture() throws {
        guard let python = TestEnv.which("python3") else { throw XCTSkip("no python3 to run scripts/check-latency.py") }
        guard try TestEnv.run(python, ["-c", "import numpy"]).status == 0 else {
            throw XCTSkip("python3 has no numpy (scripts/setup.sh installs python3-numpy)")
        }
        let script = TestEnv.repoRoot.appendingPathComponent("scripts/check-latency.py").path
        let dir = TestEnv.temporaryFile("latency")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var checked = 0
        var multiHop: String?
        for (i, capture) in try EveryCaptureTests.captures().enumerated() {
            let r = try TestEnv.run(TestEnv.hoptrace, ["analyze", capture, "--format", "jsonl"])
            guard r.status == 0, !r.stdout.isEmpty else { continue }  // unreadable on purpose
            let out = dir.appendingPathComponent("\(i).jsonl")
            try Data(r.stdout.utf8).write(to: out)
            let check = try TestEnv.run(python, [script, out.path])
            XCTAssertEqual(check.status, 0, "\(capture): \(check.stdout) \(check.stderr)")
            XCTAssertTrue(check.stdout.contains(", 0 differ"), "\(capture): \(check.stdout)")
            checked += 1
            if multiHop == nil, r.stdout.contains("\"proxyAdded\":{\"count\":"), !r.stdout.contains("\"proxyAdded\":{\"count\":0,") {
                multiHop = out.path
            }
        }
        XCTAssertGreaterThan(checked, 10)
        // The check can fail: a stated p50 one bucket off is a difference.
        let path = try XCTUnwrap(multiHop, "no bundled capture with a proxy hop")
        var lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        let last = lines.removeLast()
        let range = try XCTUnwrap(last.range(of: #""proxyAdded":\{"count":\d+,"ambiguous":\d+,"p50Ns":\d+"#, options: .regularExpression))
        let stated = String(last[range])
        let value = try XCTUnwrap(Int(stated.split(separator: ":").last!))
        let bad = dir.appendingPathComponent("bad.jsonl")
        let changed = last.replacingCharacters(in: range, with: stated.replacingOccurrences(of: "\(value)", with: "\(value * 2 + 10)"))
        try Data((lines + [changed]).joined(separator: "\n").utf8).write(to: bad)
        let check = try TestEnv.run(python, [script, bad.path])
        XCTAssertEqual(check.status, 1, check.stdout)
        XCTAssertTrue(check.stdout.contains("proxyAdded p50"), check.stdout)
    }
}
