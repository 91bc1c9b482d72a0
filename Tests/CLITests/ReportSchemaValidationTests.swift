import Foundation
import XCTest

/// docs/schema/analyze.schema.json against the real output of every bundled capture:
/// `analyze --format json`, `analyze --format jsonl` and `http --format jsonl`, validated by
/// scripts/validate-report.py (Python's jsonschema, installed by scripts/setup.sh).
final class ReportSchemaValidationTests: XCTestCase {
    func testOutputOfEveryCaptureValidatesAgainstThePublishedSchema() throws {
        guard let python = TestEnv.which("python3") else { throw XCTSkip("no python3 to run the JSON Schema validator") }
        let probe = try TestEnv.run(python, ["-c", "import jsonschema"])
        guard probe.status == 0 else { throw XCTSkip("python3 has no jsonschema module (scripts/setup.sh installs python3-jsonschema)") }
        let schema = TestEnv.repoRoot.appendingPathComponent("docs/schema/analyze.schema.json").path
        let script = TestEnv.repoRoot.appendingPathComponent("scripts/validate-report.py").path
        let dir = TestEnv.temporaryFile("schema-validation")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var files: [String: [String]] = ["document": [], "jsonl": [], "http": []]
        for (i, capture) in try EveryCaptureTests.captures().enumerated() {
            for (kind, args) in [("document", ["analyze", capture, "--format", "json"]), ("jsonl", ["analyze", capture, "--format", "jsonl"]),
                                 ("http", ["http", "-r", capture, "--format", "jsonl"])] {
                let r = try TestEnv.run(TestEnv.hoptrace, args)
                guard r.status == 0, !r.stdout.isEmpty else { continue }  // unreadable on purpose: EveryCaptureTests checks the message
                let out = dir.appendingPathComponent("\(i)-\(kind).json")
                try Data(r.stdout.utf8).write(to: out)
                files[kind]!.append(out.path)
            }
        }
        XCTAssertGreaterThan(files["document"]!.count, 10)
        for (kind, paths) in files.sorted(by: { $0.key < $1.key }) {
            let r = try TestEnv.run(python, [script, schema, kind] + paths, timeout: 300)
            XCTAssertEqual(r.status, 0, "\(kind): \(r.stdout.suffix(3000)) \(r.stderr)")
            XCTAssertTrue(r.stdout.contains(" 0 problem(s)"), r.stdout)
        }
        // The validator can fail: a document with a key the schema does not know, a jsonl chain
        // whose connection was not described before it.
        let bad = dir.appendingPathComponent("bad.json")
        let first = try String(contentsOfFile: files["document"]![0], encoding: .utf8)
        try Data(first.replacingOccurrences(of: "{\"schemaVersion\":", with: "{\"unknown\":1,\"schemaVersion\":").utf8).write(to: bad)
        XCTAssertEqual(try TestEnv.run(python, [script, schema, "document", bad.path]).status, 1)
        let described = try XCTUnwrap(files["jsonl"]!.lazy.map { try? String(contentsOfFile: $0, encoding: .utf8) }.first { $0?.hasPrefix("{\"connection\":") == true } ?? nil)
        let lines = described.split(separator: "\n")
        let undescribed = dir.appendingPathComponent("undescribed.jsonl")
        try Data(lines.filter { !$0.hasPrefix("{\"connection\":") }.joined(separator: "\n").utf8).write(to: undescribed)
        XCTAssertEqual(try TestEnv.run(python, [script, schema, "jsonl", undescribed.path]).status, 1)
    }
}
