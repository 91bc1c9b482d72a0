import Foundation
import HopInstaller
import XCTest

/// The shared process runner: output, input, limits, how a run ended (no root needed).
final class ProcessRunnerTests: XCTestCase {
    func sh(_ script: String, stdin: [UInt8]? = nil, environment: [String: String] = [:], currentDirectory: String? = nil,
            timeout: Double? = nil, terminateGrace: Double = 0, shouldStop: (() -> Bool)? = nil) throws -> ProcessRunner.Result {
        try ProcessRunner.run("/bin/sh", ["-c", script], stdin: stdin, environment: environment, currentDirectory: currentDirectory,
                              timeout: timeout, terminateGrace: terminateGrace, shouldStop: shouldStop)
    }

    func testBothOutputsAndTheExitStatus() throws {
        let r = try sh("echo out; echo err >&2; exit 3")
        XCTAssertEqual(r.stdoutText, "out\n")
        XCTAssertEqual(r.stderrText, "err\n")
        XCTAssertEqual(r.status, 3)
        XCTAssertNil(r.signal)
        XCTAssertFalse(r.timedOut)
    }

    /// More input than a pipe holds, echoed back while it is written: no deadlock, no loss.
    func testLargeInputIsWrittenWhileTheOutputIsRead() throws {
        let input = (0..<1_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let r = try ProcessRunner.run("/bin/cat", [], stdin: input, timeout: 60)
        XCTAssertEqual(r.status, 0)
        XCTAssertEqual(r.stdout, input)
    }

    /// A child that exits without reading its input: the write fails with EPIPE, the test
    /// process gets no SIGPIPE.
    func testAChildThatIgnoresItsInput() throws {
        let r = try sh("exit 0", stdin: [UInt8](repeating: 0x61, count: 1_000_000), timeout: 30)
        XCTAssertEqual(r.status, 0)
    }

    func testNoInputIsDevNull() throws {
        XCTAssertEqual(try sh("wc -c").stdoutText.trimmingCharacters(in: .whitespaces), "0\n")
    }

    func testEnvironmentAndDirectory() throws {
        let r = try sh("echo \"$HOPTRACE_TEST_VAR\"; pwd", environment: ["HOPTRACE_TEST_VAR": "set"], currentDirectory: "/tmp")
        XCTAssertEqual(r.stdoutText, "set\n/tmp\n")
        XCTAssertNotNil(ProcessInfo.processInfo.environment["PATH"])
        XCTAssertTrue(try sh("echo \"$PATH\"", environment: ["X": "1"]).stdoutText.count > 1, "the rest of the environment is kept")
    }

    func testKilledAtTheTimeLimit() throws {
        let started = Date()
        let r = try sh("echo before; exec sleep 30", timeout: 0.3)
        XCTAssertTrue(r.timedOut)
        XCTAssertEqual(r.signal, SIGKILL)
        XCTAssertEqual(r.status, 128 + SIGKILL)
        XCTAssertEqual(r.stdoutText, "before\n")
        XCTAssertLessThan(Date().timeIntervalSince(started), 10)
    }

    /// A killed child's own child keeps the pipes open: the run still ends at the limit.
    func testTheTimeLimitHoldsWhenAGrandchildKeepsThePipes() throws {
        let started = Date()
        let r = try sh("echo kept; sleep 5; true", timeout: 0.3)
        XCTAssertTrue(r.timedOut)
        XCTAssertEqual(r.stdoutText, "kept\n")
        XCTAssertLessThan(Date().timeIntervalSince(started), 4)
    }

    func testTermThenKillWithAGrace() throws {
        // Ignores SIGTERM: SIGKILL after the grace.
        let r = try sh("trap '' TERM; echo ready; while :; do sleep 0.05; done", timeout: 0.5, terminateGrace: 0.2)
        XCTAssertTrue(r.timedOut)
        XCTAssertEqual(r.signal, SIGKILL)
        // Ends on SIGTERM.
        let t = try ProcessRunner.run("/bin/sleep", ["30"], timeout: 0.3, terminateGrace: 5)
        XCTAssertEqual(t.signal, SIGTERM)
    }

    func testStoppedWhenAsked() throws {
        let started = Date()
        let r = try sh("exec sleep 30", shouldStop: { Date().timeIntervalSince(started) > 0.2 })
        XCTAssertTrue(r.stopped)
        XCTAssertEqual(r.signal, SIGKILL)
    }

    func testArgv0() throws {
        XCTAssertEqual(try ProcessRunner.run("/bin/sh", ["-c", "echo $0"], argv0: "named").stdoutText, "named\n")
    }

    func testAMissingProgramIsAStartError() {
        XCTAssertThrowsError(try ProcessRunner.run("/nonexistent/program", [])) { error in
            XCTAssertEqual((error as? ProcessRunner.StartError)?.errno, ENOENT)
        }
    }

    func testWhich() {
        XCTAssertNotNil(ProcessRunner.which("sh"))
        XCTAssertNil(ProcessRunner.which("no-such-tool-hoptrace"))
    }
}
