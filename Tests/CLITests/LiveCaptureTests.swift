import Foundation
import XCTest

/// Live capture on `lo` inside a network namespace made for the test (needs root).
final class LiveCaptureTests: XCTestCase {
    /// A namespace of the test's own with lo up, deleted after `body` (skips without root,
    /// `ip` or python3, which drives the traffic).
    private func inNamespace(_ tag: String, _ body: (_ ip: String, _ python: String, _ ns: String) throws -> Void) throws {
        guard TestEnv.isRoot else { throw XCTSkip("live capture test needs root (CAP_NET_RAW, CAP_SYS_ADMIN for network namespaces)") }
        guard let ip = TestEnv.which("ip") else { throw XCTSkip("`ip` (iproute2) is missing: cannot create a network namespace") }
        guard let python = TestEnv.which("python3") else { throw XCTSkip("python3 is missing: it drives the test traffic") }
        let ns = "hoptest-\(tag)-\(getpid())"
        _ = try? TestEnv.run(ip, ["netns", "del", ns])
        let add = try TestEnv.run(ip, ["netns", "add", ns])
        guard add.status == 0 else { throw XCTSkip("cannot create a network namespace here: \(add.stderr.trimmingCharacters(in: .whitespacesAndNewlines))") }
        defer { _ = try? TestEnv.run(ip, ["netns", "del", ns]) }
        XCTAssertEqual(try TestEnv.run(ip, ["-n", ns, "link", "set", "lo", "up"]).status, 0)
        try body(ip, python, ns)
    }

    /// `hoptrace ARGS…` started in the namespace, once it says it is listening (the capture is
    /// active from then on): the process, its output pipes and its first standard-error text.
    private func startCapture(_ ip: String, _ ns: String, _ args: [String]) throws -> (Process, Pipe, Pipe, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: ip)
        p.arguments = ["netns", "exec", ns, TestEnv.hoptrace] + args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        return (p, out, err, String(decoding: err.fileHandleForReading.availableData, as: UTF8.self))
    }

    /// Waits up to 15 s for `p` to stop by itself (its -c count reached).
    private func awaitExit(_ p: Process, _ what: String) {
        let deadline = Date().addingTimeInterval(15)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        XCTAssertFalse(p.isRunning, what)
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
    }

    func testLiveCaptureOnLoopbackInANamespace() throws {
        try inNamespace("live") { ip, python, ns in
            // Start the capture: 4 segments of port 8099 (SYN, SYN-ACK, ACK, data).
            let (p, out, err, first) = try startCapture(ip, ns, ["packets", "-i", "lo", "-c", "4", "--format", "jsonl", "-l", "tcp", "port", "8099"])
            defer { if p.isRunning { p.terminate() } }
            XCTAssertTrue(first.contains("listening on lo, link-type EN10MB"), first)

            let script = """
            import socket
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 8099)); s.listen(1)
            c = socket.create_connection(("127.0.0.1", 8099))
            a, _ = s.accept()
            c.sendall(b"HEAD / HTTP/1.1\\r\\nHost: live\\r\\n\\r\\n")
            a.recv(100); a.close(); c.close(); s.close()
            """
            let traffic = try TestEnv.run(ip, ["netns", "exec", ns, python, "-c", script], timeout: 20)
            XCTAssertEqual(traffic.status, 0, traffic.stderr)

            awaitExit(p, "hoptrace should stop by itself after -c 4")
            let lines = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: "\n")
            XCTAssertEqual(lines.count, 5, "4 segments and the summary")
            guard lines.count == 5 else { return }
            XCTAssertTrue(lines[4].hasPrefix(#"{"summary":{"linkType":"EN10MB","packets":"#), String(lines[4]))
            XCTAssertTrue(lines[4].contains(#""capture":{"received":"#), "a live capture's summary carries libpcap's statistics: \(lines[4])")
            XCTAssertTrue(lines[0].contains(#""interface":"lo""#), String(lines[0]))
            XCTAssertTrue(lines[0].contains(#""dst":"127.0.0.1:8099","flags":"S""#), String(lines[0]))
            XCTAssertTrue(lines[1].contains(#""src":"127.0.0.1:8099""#) && lines[1].contains(#""flags":"S.""#), String(lines[1]))
            XCTAssertTrue(lines[2].contains(#""flags":"."#), String(lines[2]))
            XCTAssertTrue(lines[3].contains(#""len":31"#), String(lines[3]))
            let rest = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            XCTAssertTrue(rest.contains("packets received by filter"), rest)
            XCTAssertTrue(rest.contains("packets dropped by kernel"), rest)
        }
    }

    /// `analyze -i`: the report of what it captured, then the capture's figures as the other
    /// live commands give them (the packets it captured first: Benchmarks/live-load.sh reads
    /// that line to put its CPU per packet beside watch's).
    func testLiveAnalyzeReportsItsChainsAndTheCapturesFigures() throws {
        try inNamespace("live-analyze") { ip, python, ns in
            let (p, out, err, first) = try startCapture(ip, ns, ["analyze", "-i", "lo", "-c", "1", "--rules", "none", "tcp", "port", "8098"])
            defer { if p.isRunning { p.terminate() } }
            XCTAssertTrue(first.contains("listening on lo"), first)

            let script = """
            import socket
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 8098)); s.listen(1)
            c = socket.create_connection(("127.0.0.1", 8098))
            a, _ = s.accept()
            c.sendall(b"GET /live-analyze HTTP/1.1\\r\\nHost: live\\r\\n\\r\\n")
            a.recv(200); a.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok")
            c.recv(200); a.close(); c.close(); s.close()
            """
            let traffic = try TestEnv.run(ip, ["netns", "exec", ns, python, "-c", script], timeout: 20)
            XCTAssertEqual(traffic.status, 0, traffic.stderr)

            awaitExit(p, "analyze should stop by itself after -c 1")
            let report = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            XCTAssertTrue(report.contains("GET /live-analyze"), report)
            let rest = first + String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            let captured = rest.split(separator: "\n").first { $0.hasSuffix(" packets captured") }
            XCTAssertNotNil(captured, rest)
            XCTAssertGreaterThanOrEqual(Int(captured?.split(separator: " ").first ?? "") ?? 0, 4, rest)
            XCTAssertTrue(rest.contains("packets received by filter"), rest)
            XCTAssertTrue(rest.contains("packets dropped by hoptrace's queue"), rest)
        }
    }
}
