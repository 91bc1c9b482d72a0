import Foundation
import HopTestSupport
import XCTest

/// Golden files: for every bundled capture, what each printer writes (`packets`, `flows` and
/// `http` as text and jsonl; `analyze` as text, json, mermaid and html), kept under
/// `Captures/golden/<capture>/` and compared byte for byte, like tcpdump's tests. Run from
/// the repository's root on the relative path, with times in UTC, so the files hold nothing of
/// the machine. A change of output shows as a diff of these files in review.
///
/// Regenerate: `scripts/golden.sh` (runs this test with `HOPTRACE_UPDATE_GOLDEN=1`, which
/// writes the files instead of comparing them).
final class GoldenTests: XCTestCase {
    struct Printer {
        var file: String
        var arguments: [String]
    }

    static let printers: [Printer] = [
        Printer(file: "packets.txt", arguments: ["packets"]),
        Printer(file: "packets.jsonl", arguments: ["packets", "--format", "jsonl"]),
        Printer(file: "flows.txt", arguments: ["flows"]),
        Printer(file: "flows.jsonl", arguments: ["flows", "--format", "jsonl"]),
        Printer(file: "http.txt", arguments: ["http"]),
        Printer(file: "http.jsonl", arguments: ["http", "--format", "jsonl"]),
        Printer(file: "analyze.txt", arguments: ["analyze"]),
        Printer(file: "analyze.json", arguments: ["analyze", "--format", "json"]),
        Printer(file: "analyze.mmd", arguments: ["analyze", "--format", "mermaid"]),
        Printer(file: "analyze.html", arguments: ["analyze", "--format", "html"]),
    ]

    static var golden: URL { TestEnv.captures.appendingPathComponent("golden") }

    func testEveryPrinterOnEveryCaptureMatchesItsGoldenFile() throws {
        let update = ProcessInfo.processInfo.environment["HOPTRACE_UPDATE_GOLDEN"] == "1"
        let root = TestEnv.repoRoot
        let captures = try EveryCaptureTests.captures().map { String($0.dropFirst(root.path.count + 1)) }
        XCTAssertGreaterThan(captures.count, 20)
        var mismatches: [String] = []
        var expected: Set<String> = []
        for capture in captures {
            // Captures/third-party/zeek/x.pcap → golden/third-party/zeek/x.pcap/
            let dir = Self.golden.appendingPathComponent(String(capture.dropFirst("Captures/".count)))
            if update { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) }
            for printer in Self.printers {
                let r = try TestProcess.run(TestEnv.hoptrace, printer.arguments + [capture, "--utc"],
                                            environment: ["TZ": "UTC"], currentDirectory: root)
                XCTAssertNil(r.signal, "\(printer.arguments) \(capture) crashed")
                let url = dir.appendingPathComponent(printer.file)
                expected.insert(url.path)
                if update {
                    try r.stdoutData.write(to: url)
                    continue
                }
                guard let want = FileManager.default.contents(atPath: url.path) else {
                    mismatches.append("\(url.path): missing (scripts/golden.sh writes it)")
                    continue
                }
                if want != r.stdoutData {
                    let actual = TestEnv.temporaryFile("golden-\(printer.file)")
                    try r.stdoutData.write(to: actual)
                    mismatches.append("\(capture) \(printer.arguments.joined(separator: " ")): differs from \(url.path)\(Self.firstDifference(want, r.stdoutData)); got \(actual.path) (diff them; scripts/golden.sh regenerates)")
                }
            }
        }
        // No golden file without a capture and a printer (a renamed capture leaves none behind).
        if let e = FileManager.default.enumerator(at: Self.golden, includingPropertiesForKeys: [.isRegularFileKey]) {
            for case let url as URL in e where (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true {
                if !expected.contains(url.path) {
                    if update { try FileManager.default.removeItem(at: url) } else { mismatches.append("\(url.path): no capture or printer makes it") }
                }
            }
        }
        XCTAssertTrue(mismatches.isEmpty, "\(mismatches.count) golden file(s) differ:\n" + mismatches.joined(separator: "\n"))
    }

    /// " at line N: expected …, got …" for the first line that differs.
    static func firstDifference(_ a: Data, _ b: Data) -> String {
        let x = String(decoding: a, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        let y = String(decoding: b, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        for i in 0..<max(x.count, y.count) {
            let l = i < x.count ? x[i] : "<end>", r = i < y.count ? y[i] : "<end>"
            if l != r { return " at line \(i + 1): expected \(l.prefix(160)), got \(r.prefix(160))" }
        }
        return ""
    }
}
