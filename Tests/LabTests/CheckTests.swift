import Foundation
import XCTest

/// `hoptrace check` on the saved lab captures, on a tampered expectation and on a capture with
/// one packet removed.
final class CheckTests: XCTestCase {
    func labCaptures() throws -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: LabEnv.captures.path)) ?? []
        let lab = names.filter { $0.hasPrefix("lab-") && $0.hasSuffix(".expect.json") }.sorted()
        guard !lab.isEmpty else { throw XCTSkip("no Captures/lab-*.expect.json (scripts/remake-lab-captures.sh makes them)") }
        return lab
    }

    func testCapturesMatchTheirExpectations() throws {
        let lab = try labCaptures()
        let r = try LabEnv.hoptrace(["check", LabEnv.captures.path])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        for name in lab {
            XCTAssertTrue(r.stdout.contains(name.replacingOccurrences(of: ".expect.json", with: ".pcap") + ": ok"), r.stdout)
        }
        let j = try LabEnv.hoptrace(["check", LabEnv.captures.path, "--format", "json"])
        XCTAssertEqual(j.status, 0)
        let doc = try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as? [String: Any]
        XCTAssertEqual(doc?["ok"] as? Bool, true)
        XCTAssertEqual((doc?["captures"] as? [Any])?.count, lab.count)
    }

    func testEveryLabCaptureIsSmall() throws {
        var total = 0
        for name in try labCaptures() {
            let pcap = LabEnv.captures.appendingPathComponent(name.replacingOccurrences(of: ".expect.json", with: ".pcap"))
            let size = (try FileManager.default.attributesOfItem(atPath: pcap.path)[.size] as? Int) ?? 0
            XCTAssertLessThan(size, 2_000_000, pcap.lastPathComponent)
            total += size
        }
        XCTAssertLessThan(total, 20_000_000)
    }

    /// A copy of the seed capture and its expectation in a temp directory.
    func seedCopy(_ name: String) throws -> (dir: URL, pcap: URL, expect: URL) {
        let src = LabEnv.captures.appendingPathComponent("lab-seed.pcap")
        guard FileManager.default.fileExists(atPath: src.path) else { throw XCTSkip("no Captures/lab-seed.pcap") }
        let dir = try LabEnv.temporaryDirectory(name)
        let pcap = dir.appendingPathComponent("lab-seed.pcap"), expect = dir.appendingPathComponent("lab-seed.expect.json")
        try FileManager.default.copyItem(at: src, to: pcap)
        try FileManager.default.copyItem(at: LabEnv.captures.appendingPathComponent("lab-seed.expect.json"), to: expect)
        return (dir, pcap, expect)
    }

    func testTamperedExpectationFailsWithAReadableDiff() throws {
        let (dir, _, expect) = try seedCopy("tampered")
        defer { try? FileManager.default.removeItem(at: dir) }
        var e = try JSONSerialization.jsonObject(with: Data(contentsOf: expect)) as! [String: Any]
        var chains = e["chains"] as! [[String: Any]]
        var hops = chains[1]["hops"] as! [[String: Any]]
        hops[1]["role"] = "direct"
        chains[1]["hops"] = hops
        chains[2]["status"] = 404
        e["chains"] = chains
        var summary = e["summary"] as! [String: Any]
        summary["logicalRequests"] = 4
        e["summary"] = summary
        try JSONSerialization.data(withJSONObject: e).write(to: expect)

        let r = try LabEnv.hoptrace(["check", dir.path])
        XCTAssertEqual(r.status, 1, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("capture \(dir.path)/lab-seed.pcap: chain 2 hop 2: role expected direct, got inbound-forwarded"), r.stdout)
        XCTAssertTrue(r.stdout.contains("chain 3: status expected 404, got 200"), r.stdout)
        XCTAssertTrue(r.stdout.contains("summary logicalRequests: expected 4, got 3"), r.stdout)
        XCTAssertTrue(r.stdout.contains("check: 1 of 1 capture differ"), r.stdout)

        let j = try LabEnv.hoptrace(["check", dir.path, "--format", "json"])
        XCTAssertEqual(j.status, 1)
        let doc = try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as? [String: Any]
        XCTAssertEqual(doc?["ok"] as? Bool, false)
        let diffs = ((doc?["captures"] as? [[String: Any]])?.first?["differences"] as? [String]) ?? []
        XCTAssertEqual(diffs.count, 3, "\(diffs)")

        // --update records the analysis again; then it passes.
        let u = try LabEnv.hoptrace(["check", dir.path, "--update"])
        XCTAssertEqual(u.status, 0, u.stdout)
        XCTAssertEqual(try LabEnv.hoptrace(["check", dir.path]).status, 0)
    }

    func testCaptureWithOnePacketRemovedFails() throws {
        let (dir, pcap, _) = try seedCopy("removed")
        defer { try? FileManager.default.removeItem(at: dir) }
        var file = try PcapFile(Data(contentsOf: pcap))
        // The client's second request (chain 2's downstream copy), one TCP data packet.
        let first = try XCTUnwrap(file.firstRecord(containing: "HEAD / HTTP/1.1"))
        let occurrences = file.records.indices.filter { file.records[$0].range(of: Data("HEAD / HTTP/1.1".utf8)) != nil }
        XCTAssertGreaterThanOrEqual(occurrences.count, 6)
        let victim = occurrences.first { $0 > first && file.records[$0].range(of: Data("x-request-id".utf8)) == nil } ?? first
        file.records.remove(at: victim)
        try file.data.write(to: pcap)

        let r = try LabEnv.hoptrace(["check", pcap.path])
        XCTAssertEqual(r.status, 1, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("capture \(pcap.path): "), r.stdout)
        XCTAssertTrue(r.stdout.contains("expected"), r.stdout)
        XCTAssertTrue(r.stdout.contains("difference"), r.stdout)
    }

    func testACaptureWithoutExpectationIsAnInputError() throws {
        let dir = try LabEnv.temporaryDirectory("noexpect")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try LabEnv.hoptrace(["check", dir.path])
        XCTAssertEqual(r.status, 2, r.stdout + r.stderr)
        XCTAssertTrue(r.stderr.contains("no expectation files"), r.stderr)
    }
}
