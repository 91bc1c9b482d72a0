import Foundation
import XCTest

/// Every lab scenario, run through the binary (root only): it builds the namespaces, captures,
/// analyzes and compares with ground truth; exit 0 means the analysis matched.
final class LabScenarioTests: XCTestCase {
    func runScenario(_ name: String, _ extra: [String] = []) throws {
        try LabEnv.requireLab()
        let r = try LabEnv.hoptrace(["lab", name, "--namespace-prefix", LabEnv.prefix, "--format", "json"] + extra, timeout: 180)
        let doc = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any]
        XCTAssertEqual(r.status, 0, "lab \(name) failed:\n\(r.stdout)\n\(r.stderr)")
        XCTAssertEqual(doc?["ok"] as? Bool, true, r.stdout)
        let s = (doc?["scenarios"] as? [[String: Any]])?.first
        XCTAssertEqual(s?["scenario"] as? String, name)
        XCTAssertEqual((s?["differences"] as? [Any])?.count, 0, r.stdout)
        XCTAssertGreaterThan(s?["requests"] as? Int ?? 0, 0)
    }

    func testSeed() throws { try runScenario("seed") }
    func testOutbound() throws { try runScenario("outbound") }
    func testCurrent() throws { try runScenario("current") }
    func testLoad() throws { try runScenario("load") }
    func testPipelined() throws { try runScenario("pipelined") }
    func testRetry() throws { try runScenario("retry") }
    func testMissingHop() throws { try runScenario("missing-hop") }
    func testNoSidecar() throws { try runScenario("no-sidecar") }

    /// The built-in Python app is used when nginx is not installed: force it once.
    func testSeedWithTheBuiltInApp() throws {
        try LabEnv.requireLab()
        let r = try LabEnv.run("/usr/bin/env", ["HOPLAB_NO_NGINX=1", LabEnv.hoptrace, "lab", "seed", "--namespace-prefix", LabEnv.prefix, "-v"], timeout: 120)
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stderr.contains("python app on :80"), r.stderr)
    }

    func testListNamesEveryScenario() throws {
        let r = try LabEnv.hoptrace(["lab", "--list"])
        XCTAssertEqual(r.status, 0)
        for n in ["seed", "outbound", "current", "load", "pipelined", "retry", "missing-hop", "no-sidecar"] {
            XCTAssertTrue(r.stdout.contains(n), "--list lacks \(n): \(r.stdout)")
        }
    }

    func testWithoutRootItRefuses() throws {
        guard geteuid() == 0, let setpriv = LabEnv.which("setpriv") else { throw XCTSkip("needs root and setpriv to run the binary as another user") }
        let probe = try LabEnv.run(setpriv, ["--reuid=65534", "--regid=65534", "--clear-groups", LabEnv.hoptrace, "lab", "--list"])
        guard probe.status == 0 else { throw XCTSkip("uid 65534 cannot run \(LabEnv.hoptrace) (a private build directory)") }
        let r = try LabEnv.run(setpriv, ["--reuid=65534", "--regid=65534", "--clear-groups", LabEnv.hoptrace, "lab", "seed"])
        XCTAssertEqual(r.status, 2, r.stdout + r.stderr)
        XCTAssertTrue(r.stderr.contains("lab needs root"), r.stderr)
    }

    func testUnknownScenarioIsAUsageError() throws {
        let r = try LabEnv.hoptrace(["lab", "nonesuch"])
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains("unknown scenario"), r.stderr)
    }
}

