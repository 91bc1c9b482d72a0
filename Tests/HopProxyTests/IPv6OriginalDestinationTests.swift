import Foundation
import XCTest

/// `IP6T_SO_ORIGINAL_DST`: an IPv6 connection REDIRECTed by ip6tables reaches the proxy, which
/// reads where it was going and takes it there. Loopback only, in a namespace of its own
/// (`hitest-<pid>-v6`): no IPv6 address outside it is used.
final class IPv6OriginalDestinationTests: XCTestCase {
    func testRedirectedIPv6ConnectionReachesItsOriginalDestination() throws {
        guard geteuid() == 0 else { throw XCTSkip("the IPv6 redirect test needs root (a network namespace, ip6tables)") }
        guard let ip = Run.which("ip") else { throw XCTSkip("`ip` (iproute2) is missing") }
        guard let ip6tables = Run.which("ip6tables") else { throw XCTSkip("ip6tables is missing (Debian: iptables)") }
        guard let python = Run.which("python3") else { throw XCTSkip("python3 is missing (the test app)") }
        guard let curl = Run.which("curl") else { throw XCTSkip("curl is missing") }
        guard FileManager.default.isExecutableFile(atPath: Run.hoptrace) else {
            throw XCTSkip("the hoptrace binary is not built at \(Run.hoptrace)")
        }
        let ns = "hitest-\(getpid())-v6"
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(ns)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var started: [Process] = []
        defer {
            for p in started where p.isRunning {
                kill(p.processIdentifier, SIGTERM)
                p.waitUntilExit()
            }
            _ = try? Run.run(ip, ["netns", "del", ns])
            try? FileManager.default.removeItem(at: dir)
        }
        _ = try? Run.run(ip, ["netns", "del", ns])
        let add = try Run.run(ip, ["netns", "add", ns])
        guard add.status == 0 else { throw XCTSkip("cannot make a network namespace: \(add.stderr.trimmingCharacters(in: .whitespacesAndNewlines))") }
        XCTAssertEqual(try Run.run(ip, ["-n", ns, "link", "set", "lo", "up"]).status, 0)
        let rule = try Run.run(ip, ["netns", "exec", ns, ip6tables, "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", "::1",
                                    "--dport", "80", "-m", "owner", "!", "--uid-owner", "1337",
                                    "-j", "REDIRECT", "--to-ports", "15001"])
        guard rule.status == 0 else {
            throw XCTSkip("ip6tables cannot add a nat rule here: \(rule.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }

        // The app: answers on [::1]:80 with a body naming the address the request arrived at.
        let app = """
            import http.server, socket
            class H(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    body = ("v6 app at [%s]:%d\\n" % self.connection.getsockname()[:2]).encode()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                def log_message(self, *a): pass
            class S(http.server.ThreadingHTTPServer):
                address_family = socket.AF_INET6
            S(("::1", 80), H).serve_forever()
            """
        let appFile = dir.appendingPathComponent("app.py")
        try app.write(to: appFile, atomically: true, encoding: .utf8)
        started.append(try spawn(ip, ["netns", "exec", ns, python, appFile.path]))
        let log = dir.appendingPathComponent("access.jsonl")
        let proxyErr = dir.appendingPathComponent("proxy.err")
        started.append(try spawn(ip, ["netns", "exec", ns, Run.hoptrace, "proxy", "--access-log", log.path], stderr: proxyErr))

        // Both listening: the proxy on [::]:15001 (it says so), the app on [::1]:80.
        var ready = false
        for _ in 0..<100 {
            let err = (try? String(contentsOf: proxyErr, encoding: .utf8)) ?? ""
            let app = try Run.run(ip, ["netns", "exec", ns, "ss", "-Hltn", "sport = :80"])
            if err.contains("[::]:15001") && !app.stdout.isEmpty { ready = true; break }
            usleep(50_000)
        }
        XCTAssertTrue(ready, "proxy or app did not start: \((try? String(contentsOf: proxyErr, encoding: .utf8)) ?? "")")

        let r = try Run.run(ip, ["netns", "exec", ns, curl, "-s", "-6", "-m", "5", "http://[::1]:80/v6"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, "v6 app at [::1]:80\n")

        // The proxy saw the connection (it was redirected) and read its original destination.
        var line: [String: Any]?
        for _ in 0..<100 {
            // The access log is written in batches (at most about 20 ms late).
            if let text = try? String(contentsOf: log, encoding: .utf8), let first = text.split(separator: "\n").first,
               let obj = try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any] {
                line = obj
                break
            }
            usleep(50_000)
        }
        let entry = try XCTUnwrap(line, "no access-log line: the connection did not go through the proxy")
        XCTAssertEqual(entry["originalDestination"] as? String, "[::1]:80")
        XCTAssertEqual(entry["status"] as? Int, 200)
        XCTAssertEqual(entry["target"] as? String, "/v6")
        let downstream = try XCTUnwrap(entry["downstream"] as? [String: Any])
        XCTAssertEqual(downstream["local"] as? String, "[::1]:15001", "the client's connection ended at the proxy's port")
        let upstream = try XCTUnwrap(entry["upstream"] as? [String: Any])
        XCTAssertEqual(upstream["remote"] as? String, "[::1]:80")
    }

    private func spawn(_ exe: String, _ args: [String], stderr: URL? = nil) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        if let stderr {
            _ = FileManager.default.createFile(atPath: stderr.path, contents: nil)
            p.standardError = try FileHandle(forWritingTo: stderr)
        } else {
            p.standardError = FileHandle.nullDevice
        }
        try p.run()
        return p
    }
}
