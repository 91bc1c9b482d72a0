import Foundation
import XCTest

/// `analyze --chain ID` and `--all`: the per-chain detail the default report leaves out.
final class AnalyzeChainOptionTests: XCTestCase {
    func testChainShowsOnlyThatChainInFull() throws {
        let capture = TestEnv.captures.appendingPathComponent("lab-seed.pcap").path
        let r = try TestEnv.hoptrace("analyze", capture, "--chain", "2", "--chain", "9")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("\nchain 2  HEAD /  host "), r.stdout)
        XCTAssertFalse(r.stdout.contains("\nchain 1 ") || r.stdout.contains("\nchain 3 "), r.stdout)
        XCTAssertTrue(r.stdout.contains("  why: HEAD / appears 2 times because iptables REDIRECTed"), r.stdout)
        XCTAssertTrue(r.stdout.contains("  evidence: same method and target"), r.stdout)
        XCTAssertTrue(r.stdout.contains("\nno chain 9: the capture has 3 chains (ids 1 to 3)\n"), r.stdout)
        XCTAssertFalse(r.stdout.contains("\nproblems "), "only the chains asked for")
        let json = try TestEnv.hoptrace("analyze", capture, "--chain", "2", "--format", "json")
        XCTAssertEqual(json.status, 2)
        XCTAssertTrue(json.stderr.contains("--chain shows chains in the text report"), json.stderr)
    }

    /// The default report lists 20 chains and says how many more; --all shows every one in full.
    func testAllListsEveryChain() throws {
        let capture = TestEnv.captures.appendingPathComponent("lab-load.pcap").path
        let brief = try TestEnv.hoptrace("analyze", capture)
        XCTAssertEqual(brief.status, 0, brief.stderr)
        let listed = brief.stdout.split(separator: "\n").filter { $0.hasPrefix("  #") }.count
        XCTAssertEqual(listed, 20)
        XCTAssertTrue(brief.stdout.contains("… 180 more chains: --all shows every chain in full, --chain ID one of them"), brief.stdout)
        let all = try TestEnv.hoptrace("analyze", capture, "--all")
        XCTAssertEqual(all.status, 0, all.stderr)
        let blocks = all.stdout.split(separator: "\n").filter { $0.hasPrefix("chain ") }.count
        XCTAssertEqual(blocks, 200)
        XCTAssertTrue(all.stdout.split(separator: "\n").allSatisfy { $0.count <= 80 })
    }
}
