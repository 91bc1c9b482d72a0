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

    /// At --max-connections, a new client is served: the connection kept alive and idle the
    /// longest is closed to make room (the others stay), instead of the new client being
    /// refused until the keep-alive timeout frees a slot.
    func testIdleKeepAliveConnectionsAreClosedOldestFirstAtTheCap() throws {
        let lab = try Lab(tag: "idlecap", proxyArguments: ["--max-connections", "3", "--threads", "1"])
        defer { lab.tearDown() }
        let r = try lab.python(lab.client, """
            import json, socket, time
            def get(s, path):
                s.sendall(b"GET " + path + b" HTTP/1.1\\r\\nHost: pod\\r\\n\\r\\n")
                data = b""
                while b"\\r\\n\\r\\n" not in data:
                    chunk = s.recv(65536)
                    if not chunk: return "closed"
                    data += chunk
                head, _, body = data.partition(b"\\r\\n\\r\\n")
                length = [int(l.split(b":")[1]) for l in head.split(b"\\r\\n") if l.lower().startswith(b"content-length:")][0]
                while len(body) < length:
                    chunk = s.recv(65536)
                    if not chunk: return "closed"
                    body += chunk
                return head.split(b" ")[1].decode()
            def state(s):
                s.settimeout(1.0)
                try:
                    return "closed" if s.recv(1) == b"" else "data"
                except socket.timeout:
                    return "open"
                except OSError:
                    return "closed"
            held = []
            for i in range(3):
                s = socket.create_connection(("\(Lab.podIP)", 80), timeout=5)
                held.append((s, get(s, b"/held/%d" % i)))
                time.sleep(0.2)
            # The first one asks again: the second is now the one idle the longest.
            again = get(held[0][0], b"/held/0/again")
            time.sleep(0.2)
            new = socket.create_connection(("\(Lab.podIP)", 80), timeout=5)
            new.settimeout(5)
            status = get(new, b"/new")
            print(json.dumps({"held": [h[1] for h in held], "again": again, "new": status,
                              "states": [state(h[0]) for h in held]}))
            """, timeout: 30)
        let line = r.stdout.split(separator: "\n").last.map(String.init) ?? ""
        let out = try XCTUnwrap((try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any], "\(r.stdout) \(r.stderr)")
        XCTAssertEqual(out["held"] as? [String], ["200", "200", "200"], "\(out)")
        XCTAssertEqual(out["again"] as? String, "200", "\(out)")
        XCTAssertEqual(out["new"] as? String, "200", "the new client is served at the cap: \(out)")
        XCTAssertEqual(out["states"] as? [String], ["open", "closed", "open"], "the one idle the longest was closed: \(out)")
        let stderr = (try? String(contentsOf: lab.proxyStderr!, encoding: .utf8)) ?? ""
        XCTAssertTrue(stderr.contains("closed 1 idle keep-alive connection(s) to make room"), stderr)
    }

    /// An upstream that resets in the middle of a response body: the access log says
    /// `upstream_reset`, the client's connection is reset (not ended as if the response were
    /// complete), and the proxy goes on serving.
    func testUpstreamResetMidBodyResetsTheClient() throws {
        guard FileManager.default.fileExists(atPath: Self.clients) else { throw XCTSkip("Benchmarks/attack-clients.py is not beside the tests") }
        guard let iptables = Run.which("iptables") else { throw XCTSkip("iptables is missing") }
        let lab = try Lab(tag: "upreset")
        defer { lab.tearDown() }
        let (_, _, serverErr) = try lab.start(
            in: lab.pod, [lab.python, Self.clients, "reset-server", "--host", "127.0.0.1", "--port", "81", "--max-seconds", "60"], name: "reset-server")
        XCTAssertTrue(lab.waitFor("ready", in: serverErr), "the reset server did not start")
        let rule = try lab.exec(lab.pod, [iptables, "-t", "nat", "-I", "PREROUTING", "1", "-p", "tcp", "--dport", "81", "-j", "REDIRECT", "--to-ports", "15001"])
        XCTAssertEqual(rule.status, 0, rule.stderr)

        let r = try lab.exec(lab.client, [lab.python, Self.clients, "reset", "--host", Lab.podIP, "--port", "81", "--count", "10", "--concurrency", "5", "--max-seconds", "5"], timeout: 60)
        let line = r.stdout.split(separator: "\n").last.map(String.init) ?? ""
        let out = try XCTUnwrap((try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any], "\(r.stdout) \(r.stderr)")
        XCTAssertEqual(out["outcomes"] as? [String: Int], ["200, cut short by a reset": 10], "\(out)")
        let lines = lab.waitForAccessLog(count: 10) { $0["target"] as? String == "/reset" }
        XCTAssertEqual(lines.count, 10)
        XCTAssertTrue(lines.allSatisfy { $0["error"] as? String == "upstream_reset" && $0["status"] as? Int == 200 }, "\(lines)")

        let get = try lab.python(lab.client, "import urllib.request; print(urllib.request.urlopen('http://\(Lab.podIP)/after', timeout=5).status)")
        XCTAssertEqual(get.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "200", get.stderr)
    }
}
