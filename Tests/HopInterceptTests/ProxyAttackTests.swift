import Foundation
import XCTest

/// A short version of Benchmarks/attack.sh in the namespace lab: slowloris clients against a
/// 2 s header timeout, and each request-smuggling shape, with the attackers of
/// Benchmarks/attack-clients.py.
final class ProxyAttackTests: XCTestCase {
    /// Benchmarks/attack-clients.py, found from this file's place in the package.
    static let clients = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Benchmarks/attack-clients.py").path

    /// Runs one mode of the attackers from the client namespace; its JSON summary.
    func attack(_ lab: Lab, _ arguments: [String], timeout: TimeInterval = 60) throws -> [String: Any] {
        let r = try lab.exec(lab.client, [lab.python, Self.clients] + arguments + ["--host", Lab.podIP, "--port", "80"], timeout: timeout)
        let line = r.stdout.split(separator: "\n").last.map(String.init) ?? ""
        guard let json = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
            throw LabError("attack-clients.py \(arguments.first ?? "") printed no summary: \(r.stdout) \(r.stderr)")
        }
        return json
    }

    func testSlowlorisGets408AtTheHeaderTimeoutAndSmugglingShapesGet400() throws {
        guard FileManager.default.fileExists(atPath: Self.clients) else { throw XCTSkip("Benchmarks/attack-clients.py is not beside the tests") }
        let lab = try Lab(tag: "attack", proxyArguments: ["--header-timeout", "2"])
        defer { lab.tearDown() }

        // 50 connections sending a head a byte a second: each gets 408 two seconds after its first byte.
        let slow = try attack(lab, ["slowloris", "--count", "50", "--interval", "1", "--max-seconds", "8"])
        XCTAssertEqual(slow["opened"] as? Int, 50, "\(slow)")
        XCTAssertEqual(slow["closedByServer"] as? Int, 50, "\(slow)")
        XCTAssertEqual(slow["statuses"] as? [String: Int], ["408": 50], "\(slow)")
        let after = slow["closedAfterSeconds"] as? [String: Double] ?? [:]
        XCTAssertGreaterThanOrEqual(after["min"] ?? 0, 1.9, "not before the timeout: \(slow)")
        XCTAssertLessThanOrEqual(after["max"] ?? 99, 4, "not long after it: \(slow)")
        let timedOut = lab.waitForAccessLog(count: 50) { $0["error"] as? String == "header_timeout" }
        XCTAssertEqual(timedOut.count, 50)
        XCTAssertTrue(timedOut.allSatisfy { $0["status"] as? Int == 408 })

        // Each smuggling shape: 400, the connection closed, a line naming the shape.
        let expected = [
            "cl_and_te": "te_and_content_length", "two_content_lengths": "conflicting_content_length", "obs_fold": "obs_fold",
            "bare_lf": "bare_lf", "chunk_size_overflow": "chunk_size_overflow", "te_chunked_identity": "te_not_chunked_last",
            "invalid_content_length": "invalid_content_length",
        ]
        let shapes = try attack(lab, ["smuggle", "--max-seconds", "3"])["shapes"] as? [[String: Any]] ?? []
        XCTAssertEqual(Set(shapes.compactMap { $0["shape"] as? String }), Set(expected.keys))
        for shape in shapes {
            let name = shape["shape"] as? String ?? "?"
            XCTAssertEqual(shape["status"] as? String, "400", name)
            XCTAssertEqual(shape["closed"] as? Bool, true, name)
            let client = shape["client"] as? String
            let lines = lab.waitForAccessLog { ($0["downstream"] as? [String: Any])?["client"] as? String == client }
            XCTAssertEqual(lines.first?["error"] as? String, expected[name], name)
            XCTAssertEqual(lines.first?["status"] as? Int, 400, name)
        }
        // Only the overflowing chunk's head went upstream (its body broke on the way).
        let reached = Set(lab.appLog().compactMap { $0["path"] as? String }.filter { $0.hasPrefix("/smuggle/") })
        XCTAssertTrue(reached.isSubset(of: ["/smuggle/chunk_size_overflow"]), "\(reached)")

        // And the proxy still serves.
        let get = try lab.python(lab.client, "import urllib.request; print(urllib.request.urlopen('http://\(Lab.podIP)/after', timeout=5).status)")
        XCTAssertEqual(get.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "200", get.stderr)
    }
}
