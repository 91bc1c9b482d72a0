import Foundation
import XCTest

/// A lab run killed with SIGKILL mid-run leaves namespaces and processes behind; the next run
/// removes all of them.
final class CrashCleanupTests: XCTestCase {
    func isGone(_ pid: Int32) -> Bool {
        if kill(pid, 0) != 0 { return true }
        // A zombie (nobody reaped it yet) is gone too.
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        guard let close = stat.lastIndex(of: ")") else { return true }
        return stat[stat.index(close, offsetBy: 2)] == "Z"
    }

    func testKilledRunIsCleanedByTheNextOne() throws {
        try LabEnv.requireLab()
        let ip = LabEnv.which("ip")!
        let p = Process()
        p.executableURL = URL(fileURLWithPath: LabEnv.hoptrace)
        p.arguments = ["lab", "load", "--requests", "20000", "--connections", "2", "--namespace-prefix", LabEnv.prefix]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let pid = p.processIdentifier
        let nsPrefix = "\(LabEnv.prefix)\(pid)-"
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("\(LabEnv.prefix)\(pid)-load")
        // Wait (bounded) until the capture is running: the scene is fully built.
        let deadline = Date().addingTimeInterval(60)
        var capturing = false
        while Date() < deadline && p.isRunning {
            if let s = try? String(contentsOf: tmp.appendingPathComponent("capture.err"), encoding: .utf8), s.contains("listening on") {
                capturing = true
                break
            }
            usleep(20_000)
        }
        usleep(300_000)  // the client is sending
        kill(pid, SIGKILL)
        p.waitUntilExit()
        XCTAssertTrue(capturing, "the lab never started its capture")

        let left = LabEnv.namespaces().filter { $0.hasPrefix(nsPrefix) }
        XCTAssertFalse(left.isEmpty, "a SIGKILLed lab should have left its namespaces")
        var pids: [Int32] = []
        for ns in left {
            let r = try LabEnv.run(ip, ["netns", "pids", ns])
            pids += r.stdout.split(separator: "\n").compactMap { Int32($0) }
        }
        XCTAssertFalse(pids.isEmpty, "the killed lab's app, proxy and capture should still run")

        let next = try LabEnv.hoptrace(["lab", "no-sidecar", "--namespace-prefix", LabEnv.prefix], timeout: 120)
        XCTAssertEqual(next.status, 0, next.stdout + next.stderr)
        XCTAssertTrue(next.stderr.contains("left by an earlier run"), next.stderr)
        XCTAssertEqual(LabEnv.namespaces().filter { $0.hasPrefix(nsPrefix) }, [])
        let deadline2 = Date().addingTimeInterval(5)
        while Date() < deadline2 && !pids.allSatisfy(isGone) { usleep(20_000) }
        for q in pids { XCTAssertTrue(isGone(q), "process \(q) of the killed lab still runs") }
        XCTAssertFalse(FileManager.default.fileExists(atPath: tmp.path), "temp directory \(tmp.path) left")
        // And the new run left nothing of its own.
        XCTAssertEqual(LabEnv.namespaces().filter { $0.hasPrefix(LabEnv.prefix) }, [])
    }

    /// SIGINT and SIGTERM mid-run: the lab stops what it started, deletes its namespaces and
    /// temp files, and exits 130.
    func testInterruptedRunCleansUp() throws {
        try LabEnv.requireLab()
        let ip = LabEnv.which("ip")!
        for sig in [SIGINT, SIGTERM] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: LabEnv.hoptrace)
            p.arguments = ["lab", "load", "--requests", "20000", "--connections", "2", "--namespace-prefix", LabEnv.prefix]
            let errURL = try LabEnv.temporaryDirectory("int\(sig)").appendingPathComponent("err")
            XCTAssertTrue(FileManager.default.createFile(atPath: errURL.path, contents: nil), "could not create \(errURL.path)")
            p.standardOutput = FileHandle.nullDevice
            p.standardError = try FileHandle(forWritingTo: errURL)
            p.standardInput = FileHandle.nullDevice
            try p.run()
            let pid = p.processIdentifier
            let nsPrefix = "\(LabEnv.prefix)\(pid)-"
            let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("\(LabEnv.prefix)\(pid)-load")
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline && p.isRunning {
                if let s = try? String(contentsOf: tmp.appendingPathComponent("capture.err"), encoding: .utf8), s.contains("listening on") { break }
                usleep(20_000)
            }
            usleep(300_000)
            var pids: [Int32] = []
            for ns in LabEnv.namespaces().filter({ $0.hasPrefix(nsPrefix) }) {
                pids += try LabEnv.run(ip, ["netns", "pids", ns]).stdout.split(separator: "\n").compactMap { Int32($0) }
            }
            XCTAssertFalse(pids.isEmpty)
            kill(pid, sig)
            let d2 = Date().addingTimeInterval(30)
            while p.isRunning && Date() < d2 { usleep(20_000) }
            XCTAssertFalse(p.isRunning, "the lab did not stop on signal \(sig)")
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 130, (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
            XCTAssertTrue(((try? String(contentsOf: errURL, encoding: .utf8)) ?? "").contains("everything the lab made was removed"))
            XCTAssertEqual(LabEnv.namespaces().filter { $0.hasPrefix(nsPrefix) }, [])
            let d3 = Date().addingTimeInterval(5)
            while Date() < d3 && !pids.allSatisfy(isGone) { usleep(20_000) }
            for q in pids { XCTAssertTrue(isGone(q), "process \(q) still runs after signal \(sig)") }
            XCTAssertFalse(FileManager.default.fileExists(atPath: tmp.path))
            try? FileManager.default.removeItem(at: errURL.deletingLastPathComponent())
        }
    }
}
