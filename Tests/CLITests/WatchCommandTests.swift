import Foundation
import XCTest

/// `hoptrace watch`'s bad inputs: each a clear message and exit 2. (Its lines, links and
/// statistics are tested inside the lab: Tests/LabTests/WatchInLabTests.swift.)
final class WatchCommandTests: XCTestCase {
    func testUnknownNamespace() throws {
        let r = try TestEnv.hoptrace("watch", "-i", "any", "--netns", "hoptest-no-such-ns", "-c", "1")
        XCTAssertEqual(r.status, 2)
        if TestEnv.isRoot {
            XCTAssertTrue(r.stderr.contains("network namespace hoptest-no-such-ns does not exist"), r.stderr)
        } else {
            XCTAssertTrue(r.stderr.contains("hoptest-no-such-ns"), r.stderr)
        }
    }

    func testUnknownInterfaceAndBadFilter() throws {
        let r = try TestEnv.hoptrace("watch", "-i", "nosuchif0", "-c", "1")
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("nosuchif0") && (r.stderr.contains("no such interface") || r.stderr.contains("CAP_NET_RAW")), r.stderr)
        if TestEnv.isRoot {
            let f = try TestEnv.hoptrace("watch", "-i", "lo", "-c", "1", "tcp", "port", "eighty")
            XCTAssertEqual(f.status, 2)
            XCTAssertTrue(f.stderr.contains("bad filter expression 'tcp port eighty'"), f.stderr)
        }
    }

    func testNoPermissionNamesTheCapability() throws {
        if TestEnv.isRoot {
            guard let setpriv = TestEnv.which("setpriv") else { throw XCTSkip("setpriv (util-linux) is missing") }
            let r = try TestEnv.run(setpriv, ["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", TestEnv.hoptrace, "watch", "-i", "lo", "-c", "1"])
            XCTAssertEqual(r.status, 2, r.stderr)
            XCTAssertTrue(r.stderr.contains("needs CAP_NET_RAW"), r.stderr)
        } else {
            let r = try TestEnv.hoptrace("watch", "-i", "lo", "-c", "1")
            XCTAssertEqual(r.status, 2)
            XCTAssertTrue(r.stderr.contains("needs CAP_NET_RAW"), r.stderr)
        }
    }

    func testUsageErrors() throws {
        let r = try TestEnv.hoptrace("watch", "--format", "json")
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("The value 'json' is invalid for '--format <format>'"), r.stderr)
        let u = try TestEnv.hoptrace("watch", "-i", "lo", "-Z", "no-such-user-hoptrace", "-c", "1")
        XCTAssertEqual(u.status, 2)
    }
}
