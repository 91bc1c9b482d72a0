import Foundation
import XCTest

/// The proxy end to end: client, pod and remote namespaces, the 2018 Istio rules in the pod,
/// `hoptrace proxy` running there as uid 1337, and real HTTP traffic.
final class ProxyLabTests: XCTestCase {
    nonisolated(unsafe) static var sharedLab: Lab?
    nonisolated(unsafe) static var sharedLabError: Error?

    /// One lab for the tests that don't stop the proxy (built on first use).
    func lab() throws -> Lab {
        if let lab = Self.sharedLab { return lab }
        if let error = Self.sharedLabError { throw error }
        do {
            let lab = try Lab(tag: "main")
            Self.sharedLab = lab
            return lab
        } catch {
            Self.sharedLabError = error
            throw error
        }
    }

    override class func tearDown() {
        sharedLab?.tearDown()
        sharedLab = nil
        super.tearDown()
    }

    static let uuidPattern = try! NSRegularExpression(pattern: "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

    static func isUUIDv4(_ s: String?) -> Bool {
        guard let s else { return false }
        return uuidPattern.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil
    }

    /// curl when installed, else a Python stand-in with the same output shape (-i style).
    func fetch(_ lab: Lab, from ns: String, _ url: String, method: String = "GET", headers: [String] = []) throws -> (status: Int, headers: String, body: String) {
        if let curl = Run.which("curl") {
            var args = [curl, "-sS", "-m", "15", "-i", "-X", method]
            if method == "HEAD" { args = [curl, "-sS", "-m", "15", "-I"] }
            for h in headers { args += ["-H", h] }
            args.append(url)
            let r = try lab.exec(ns, args, timeout: 20)
            XCTAssertEqual(r.status, 0, "curl failed: \(r.stderr)")
            return Self.splitResponse(r.stdout)
        }
        let hdrs = headers.map { h -> String in
            let kv = h.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            return "\"\(kv[0])\": \"\(kv.count > 1 ? kv[1] : "")\""
        }.joined(separator: ",")
        let code = """
            import http.client, urllib.parse, sys
            u = urllib.parse.urlsplit("\(url)")
            c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=15)
            c.request("\(method)", u.path + ("?" + u.query if u.query else ""), headers={\(hdrs)})
            r = c.getresponse()
            sys.stdout.write("HTTP/1.1 %d %s\\r\\n" % (r.status, r.reason))
            for k, v in r.getheaders(): sys.stdout.write("%s: %s\\r\\n" % (k, v))
            sys.stdout.write("\\r\\n"); sys.stdout.write(r.read().decode("latin-1"))
            """
        let r = try lab.python(ns, code, timeout: 20)
        XCTAssertEqual(r.status, 0, r.stderr)
        return Self.splitResponse(r.stdout)
    }

    static func splitResponse(_ text: String) -> (status: Int, headers: String, body: String) {
        var rest = Substring(text)
        // Skip interim responses (100 Continue).
        while rest.hasPrefix("HTTP/1.1 100") || rest.hasPrefix("HTTP/1.0 100") {
            guard let r = rest.range(of: "\r\n\r\n") else { break }
            rest = rest[r.upperBound...]
        }
        guard let split = rest.range(of: "\r\n\r\n") else { return (0, String(rest), "") }
        let head = String(rest[..<split.lowerBound])
        let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
        return (status, head, String(rest[split.upperBound...]))
    }

    func entry(_ lab: Lab, method: String, target: String, file: StaticString = #filePath, line: UInt = #line) -> [String: Any]? {
        let found = lab.waitForAccessLog { ($0["method"] as? String) == method && ($0["target"] as? String) == target }
        XCTAssertEqual(found.count, 1, "access-log lines for \(method) \(target): \(found)", file: file, line: line)
        return found.first
    }

    // MARK: inbound and outbound

    func testInboundHeadAndGet() throws {
        let lab = try lab()
        let head = try fetch(lab, from: lab.client, "http://\(Lab.podIP)/inbound-head", method: "HEAD")
        XCTAssertEqual(head.status, 200, head.headers)
        XCTAssertTrue(head.headers.lowercased().contains("content-length: 18"), head.headers)
        let get = try fetch(lab, from: lab.client, "http://\(Lab.podIP)/inbound-get")
        XCTAssertEqual(get.status, 200)
        XCTAssertEqual(get.body, "pod /inbound-get\n")

        for (method, target, bytes) in [("HEAD", "/inbound-head", 0), ("GET", "/inbound-get", 17)] {
            guard let e = entry(lab, method: method, target: target) else { continue }
            XCTAssertEqual(e["direction"] as? String, "inbound")
            XCTAssertEqual(e["protocol"] as? String, "http")
            XCTAssertEqual(e["originalDestination"] as? String, "\(Lab.podIP):80")
            XCTAssertEqual(e["status"] as? Int, 200)
            XCTAssertEqual(e["host"] as? String, Lab.podIP)
            XCTAssertEqual(e["responseBytes"] as? Int, bytes)
            XCTAssertEqual(e["requestBytes"] as? Int, 0)
            XCTAssertEqual(e["attempts"] as? Int, 1)
            let down = e["downstream"] as? [String: Any]
            XCTAssertTrue((down?["client"] as? String)?.hasPrefix("\(Lab.clientIP):") == true, "\(e)")
            XCTAssertEqual(down?["local"] as? String, "\(Lab.podIP):15001")
            let up = e["upstream"] as? [String: Any]
            XCTAssertEqual(up?["remote"] as? String, "127.0.0.1:80")
            let upLocal = up?["local"] as? String
            XCTAssertTrue(upLocal?.hasPrefix("127.0.0.1:") == true, "\(e)")
            XCTAssertNotNil(e["durationMs"] as? Double ?? (e["durationMs"] as? Int).map(Double.init))
            XCTAssertNotNil(e["upstreamConnectMs"] as? Double ?? (e["upstreamConnectMs"] as? Int).map(Double.init))
            XCTAssertNotNil(e["time"] as? String)
            let id = e["requestId"] as? String
            XCTAssertTrue(Self.isUUIDv4(id), "requestId \(id ?? "nil")")
            // The app saw the added headers, from the proxy's upstream connection.
            let seen = lab.appRequests(withRequestID: id ?? "?")
            XCTAssertEqual(seen.count, 1, "app log: \(lab.appLog())")
            let headers = seen.first?["headers"] as? [String: String]
            XCTAssertEqual(headers?["x-forwarded-proto"], "http")
            XCTAssertEqual(seen.first?["peer"] as? String, upLocal)
            XCTAssertEqual(seen.first?["name"] as? String, "pod")
        }
    }

    func testOutboundHeadAndGet() throws {
        let lab = try lab()
        // The app (root in the pod: redirected) calls the remote service.
        let head = try fetch(lab, from: lab.pod, "http://\(Lab.remoteIP)/outbound-head", method: "HEAD", headers: ["x-request-id: given-id-1"])
        XCTAssertEqual(head.status, 200, head.headers)
        let get = try fetch(lab, from: lab.pod, "http://\(Lab.remoteIP)/outbound-get")
        XCTAssertEqual(get.status, 200)
        XCTAssertEqual(get.body, "remote /outbound-get\n")

        for (method, target) in [("HEAD", "/outbound-head"), ("GET", "/outbound-get")] {
            guard let e = entry(lab, method: method, target: target) else { continue }
            XCTAssertEqual(e["direction"] as? String, "outbound")
            XCTAssertEqual(e["originalDestination"] as? String, "\(Lab.remoteIP):80")
            XCTAssertEqual(e["status"] as? Int, 200)
            let down = e["downstream"] as? [String: Any]
            XCTAssertEqual(down?["local"] as? String, "127.0.0.1:15001", "OUTPUT REDIRECT maps to 127.0.0.1")
            let up = e["upstream"] as? [String: Any]
            XCTAssertEqual(up?["remote"] as? String, "\(Lab.remoteIP):80")
            let upLocal = up?["local"] as? String
            XCTAssertTrue(upLocal?.hasPrefix("\(Lab.podRemoteSideIP):") == true, "\(e)")
            let id = e["requestId"] as? String
            if method == "HEAD" {
                XCTAssertEqual(id, "given-id-1", "an x-request-id the client sent is kept")
            } else {
                XCTAssertTrue(Self.isUUIDv4(id))
            }
            let seen = lab.appRequests(withRequestID: id ?? "?")
            XCTAssertEqual(seen.count, 1)
            XCTAssertEqual(seen.first?["name"] as? String, "remote")
            XCTAssertEqual((seen.first?["headers"] as? [String: String])?["x-forwarded-proto"], "http")
            XCTAssertEqual(seen.first?["peer"] as? String, upLocal, "the upstream connection's local address is in the log")
        }
    }

    func testCurrentIstioLayoutForwardsFrom127_0_0_6() throws {
        let lab = try Lab(tag: "cur", rules: Lab.rulesCurrent, proxyArguments: ["--layout", "istio-current"])
        defer { lab.tearDown() }
        let get = try fetch(lab, from: lab.client, "http://\(Lab.podIP)/current-inbound")
        XCTAssertEqual(get.status, 200)
        XCTAssertEqual(get.body, "pod /current-inbound\n")
        let out = try fetch(lab, from: lab.pod, "http://\(Lab.remoteIP)/current-outbound")
        XCTAssertEqual(out.status, 200)
        if let e = entry(lab, method: "GET", target: "/current-inbound") {
            XCTAssertEqual(e["direction"] as? String, "inbound")
            XCTAssertEqual((e["downstream"] as? [String: Any])?["local"] as? String, "\(Lab.podIP):15006")
            let up = e["upstream"] as? [String: Any]
            XCTAssertEqual(up?["remote"] as? String, "\(Lab.podIP):80")
            XCTAssertTrue((up?["local"] as? String)?.hasPrefix("127.0.0.6:") == true, "\(e)")
            let seen = lab.appRequests(withRequestID: e["requestId"] as? String ?? "?")
            XCTAssertEqual(seen.first?["peer"] as? String, up?["local"] as? String)
        }
        if let e = entry(lab, method: "GET", target: "/current-outbound") {
            XCTAssertEqual(e["direction"] as? String, "outbound")
            XCTAssertEqual((e["downstream"] as? [String: Any])?["local"] as? String, "127.0.0.1:15001")
        }
    }

    // MARK: bodies

    func testTwentyMegabyteUploadAndDownload() throws {
        let lab = try lab()
        let n = 20 * 1024 * 1024
        let code = """
            import http.client, hashlib, json, random
            N = \(n)
            block = random.Random(11).randbytes(65536)
            def body():
                left = N
                while left > 0:
                    k = min(left, len(block)); yield block[:k]; left -= k
            sent = hashlib.sha256()
            for c in body(): sent.update(c)
            c = http.client.HTTPConnection("\(Lab.podIP)", 80, timeout=60)
            c.request("POST", "/upload", body=body(), headers={"content-length": str(N)})
            r = c.getresponse(); up = json.loads(r.read())
            c.request("GET", "/bytes/%d" % N)
            r = c.getresponse()
            got = hashlib.sha256(); size = 0
            while True:
                d = r.read(65536)
                if not d: break
                got.update(d); size += len(d)
            print(json.dumps({"uploadStatus": 200, "sent": sent.hexdigest(), "serverGot": up["sha256"], "serverBytes": up["bytes"],
                              "downloadStatus": r.status, "announced": r.getheader("x-body-sha256"), "received": got.hexdigest(), "receivedBytes": size}))
            """
        let r = try lab.python(lab.client, code, timeout: 120)
        XCTAssertEqual(r.status, 0, r.stderr)
        let result = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(result["serverBytes"] as? Int, n)
        XCTAssertEqual(result["sent"] as? String, result["serverGot"] as? String, "upload sha256")
        XCTAssertEqual(result["downloadStatus"] as? Int, 200)
        XCTAssertEqual(result["receivedBytes"] as? Int, n)
        XCTAssertEqual(result["announced"] as? String, result["received"] as? String, "download sha256")
        if let e = entry(lab, method: "POST", target: "/upload") {
            XCTAssertEqual(e["requestBytes"] as? Int, n)
        }
        if let e = entry(lab, method: "GET", target: "/bytes/\(n)") {
            XCTAssertEqual(e["responseBytes"] as? Int, n)
            XCTAssertEqual(e["upstreamReused"] as? Bool, true, "second request on a kept-alive connection")
        }
    }

    func testChunkedBothWays() throws {
        let lab = try lab()
        let code = """
            import http.client, hashlib, json, random
            c = http.client.HTTPConnection("\(Lab.podIP)", 80, timeout=30)
            c.request("GET", "/bytes/300001?chunked=1")
            r = c.getresponse(); data = r.read()
            down = {"te": r.getheader("transfer-encoding"), "len": len(data), "ok": hashlib.sha256(data).hexdigest() == r.getheader("x-body-sha256")}
            parts = [random.Random(i).randbytes(1000 * (i + 1)) for i in range(20)]
            c.request("POST", "/upload?chunked", body=iter(parts), encode_chunked=True)
            r = c.getresponse(); up = json.loads(r.read())
            whole = b"".join(parts)
            print(json.dumps({"down": down, "upBytes": up["bytes"], "upOK": up["sha256"] == hashlib.sha256(whole).hexdigest(), "sent": len(whole)}))
            """
        let r = try lab.python(lab.client, code, timeout: 60)
        XCTAssertEqual(r.status, 0, r.stderr)
        let result = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let down = result["down"] as? [String: Any]
        XCTAssertEqual(down?["te"] as? String, "chunked", "the chunked framing is forwarded as such")
        XCTAssertEqual(down?["len"] as? Int, 300_001)
        XCTAssertEqual(down?["ok"] as? Bool, true)
        XCTAssertEqual(result["upBytes"] as? Int, result["sent"] as? Int)
        XCTAssertEqual(result["upOK"] as? Bool, true)
        let seen = lab.appLog().filter { ($0["path"] as? String) == "/upload?chunked" }
        XCTAssertEqual((seen.first?["headers"] as? [String: String])?["transfer-encoding"], "chunked")
        if let e = entry(lab, method: "POST", target: "/upload?chunked") {
            XCTAssertEqual(e["requestBytes"] as? Int, result["sent"] as? Int)
        }
    }

    func testExpect100Continue() throws {
        let lab = try lab()
        guard let curl = Run.which("curl") else { throw XCTSkip("curl is missing (it drives Expect: 100-continue)") }
        let payload = Data(repeating: 0x61, count: 2 * 1024 * 1024)
        let r = try lab.exec(lab.client, [curl, "-sS", "-m", "20", "-i", "-H", "Expect: 100-continue", "--data-binary", "@-", "http://\(Lab.podIP)/upload?expect"], stdin: payload, timeout: 30)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.hasPrefix("HTTP/1.1 100 Continue"), String(r.stdout.prefix(200)))
        let response = Self.splitResponse(r.stdout)
        XCTAssertEqual(response.status, 200)
        XCTAssertTrue(response.body.contains("\"bytes\": \(payload.count)"), response.body)
    }

    // MARK: connections

    func testPipelinedRequestsAnsweredInOrder() throws {
        let lab = try lab()
        let code = """
            import socket, time
            s = socket.create_connection(("\(Lab.podIP)", 80), timeout=10)
            s.sendall(b"GET /slow?ms=300 HTTP/1.1\\r\\nHost: p\\r\\n\\r\\n"
                      b"GET /pipe-2 HTTP/1.1\\r\\nHost: p\\r\\n\\r\\n"
                      b"HEAD /pipe-3 HTTP/1.1\\r\\nHost: p\\r\\nConnection: close\\r\\n\\r\\n")
            data = b""; deadline = time.time() + 10
            while time.time() < deadline:
                d = s.recv(65536)
                if not d: break
                data += d
            print(data.decode("latin-1"))
            """
        let r = try lab.python(lab.client, code, timeout: 20)
        XCTAssertEqual(r.status, 0, r.stderr)
        let out = r.stdout
        let statuses = out.components(separatedBy: "HTTP/1.1 200 OK").count - 1
        XCTAssertEqual(statuses, 3, out)
        let slow = out.range(of: "slow\n"), second = out.range(of: "pod /pipe-2\n")
        XCTAssertNotNil(slow, out)
        XCTAssertNotNil(second, out)
        if let slow, let second { XCTAssertLessThan(slow.lowerBound, second.lowerBound, "responses in request order") }
        XCTAssertFalse(out.contains("pod /pipe-3"), "no body for HEAD")
        let entries = lab.waitForAccessLog(count: 3) { e in
            ["/slow?ms=300", "/pipe-2", "/pipe-3"].contains(e["target"] as? String ?? "")
        }
        XCTAssertEqual(entries.map { $0["target"] as? String ?? "" }, ["/slow?ms=300", "/pipe-2", "/pipe-3"])
        let clients = Set(entries.compactMap { ($0["downstream"] as? [String: Any])?["client"] as? String })
        XCTAssertEqual(clients.count, 1, "one downstream connection")
    }

    func testKeepAliveReusesBothConnections() throws {
        let lab = try lab()
        let code = """
            import http.client
            c = http.client.HTTPConnection("\(Lab.podIP)", 80, timeout=10)
            for p in ("/ka-1", "/ka-2"):
                c.request("GET", p); r = c.getresponse(); print(r.status, r.read().decode().strip())
            """
        let r = try lab.python(lab.client, code, timeout: 20)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, "200 pod /ka-1\n200 pod /ka-2\n")
        guard let first = entry(lab, method: "GET", target: "/ka-1"), let second = entry(lab, method: "GET", target: "/ka-2") else { return }
        let d1 = (first["downstream"] as? [String: Any])?["client"] as? String
        let d2 = (second["downstream"] as? [String: Any])?["client"] as? String
        XCTAssertNotNil(d1)
        XCTAssertEqual(d1, d2, "same downstream connection")
        XCTAssertEqual(first["upstreamReused"] as? Bool, false)
        XCTAssertEqual(second["upstreamReused"] as? Bool, true)
        XCTAssertEqual((first["upstream"] as? [String: Any])?["local"] as? String, (second["upstream"] as? [String: Any])?["local"] as? String, "same upstream connection")
    }

    func testUpstreamDownGives503NamingTheDestination() throws {
        let lab = try lab()
        let r = try fetch(lab, from: lab.pod, "http://\(Lab.remoteIP):81/down")
        XCTAssertEqual(r.status, 503, r.headers)
        XCTAssertEqual(r.body, "hoptrace proxy: upstream \(Lab.remoteIP):81 refused the connection (2 attempts)\n")
        if let e = entry(lab, method: "GET", target: "/down") {
            XCTAssertEqual(e["status"] as? Int, 503)
            XCTAssertEqual(e["attempts"] as? Int, 2, "--retries 1: one more try")
            XCTAssertEqual(e["error"] as? String, "upstream_refused")
            XCTAssertEqual(e["originalDestination"] as? String, "\(Lab.remoteIP):81")
        }
    }

    func testResetBeforeResponseIsRetriedOnce() throws {
        let lab = try lab()
        let r = try fetch(lab, from: lab.pod, "http://\(Lab.remoteIP):\(Lab.resetOncePort)/retry")
        XCTAssertEqual(r.status, 200, r.headers + r.body)
        XCTAssertEqual(r.body, "ok\n")
        if let e = entry(lab, method: "GET", target: "/retry") {
            XCTAssertEqual(e["attempts"] as? Int, 2)
            XCTAssertEqual(e["status"] as? Int, 200)
        }
    }

    func testConnectionToTheProxyItselfIsRefused() throws {
        let lab = try lab()
        let r = try fetch(lab, from: lab.client, "http://\(Lab.podIP):15001/loop")
        XCTAssertEqual(r.status, 502)
        XCTAssertTrue(r.body.contains("refusing to forward a connection to itself"), r.body)
        XCTAssertTrue(r.body.contains("\(Lab.podIP):15001"), r.body)
    }

    func testClientResetClosesTheUpstreamConnection() throws {
        let lab = try lab()
        let code = """
            import socket, struct, time
            s = socket.create_connection(("\(Lab.podIP)", 80), timeout=10)
            s.sendall(b"GET /slow?ms=3000&reset HTTP/1.1\\r\\nHost: r\\r\\n\\r\\n")
            time.sleep(0.5)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
            """
        let r = try lab.python(lab.client, code, timeout: 20)
        XCTAssertEqual(r.status, 0, r.stderr)
        guard let e = entry(lab, method: "GET", target: "/slow?ms=3000&reset") else { return }
        XCTAssertEqual(e["status"] as? Int, 0)
        XCTAssertEqual(e["error"] as? String, "downstream_reset")
        XCTAssertLessThan(e["durationMs"] as? Double ?? 9999, 2500, "logged when the client went, not when the app answered")
        // The proxy's end of the upstream connection is closed (no longer ESTABLISHED).
        let port = ((e["upstream"] as? [String: Any])?["local"] as? String)?.split(separator: ":").last.map(String.init) ?? "0"
        let ss = try lab.exec(lab.pod, ["ss", "-Htn", "state", "established", "( sport = :\(port) )"])
        XCTAssertEqual(ss.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "", "upstream connection from port \(port) still open")
    }

    func testSlowClientDoesNotStallOthers() throws {
        let lab = try lab()
        let n = 20 * 1024 * 1024 + 7
        let script = lab.dir.appendingPathComponent("slow.py")
        try """
            import socket, time, json, hashlib, http.client
            a = socket.create_connection(("\(Lab.podIP)", 80), timeout=30)
            a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            a.sendall(b"GET /bytes/\(n) HTTP/1.1\\r\\nHost: slow\\r\\n\\r\\n")
            start = time.time()
            time.sleep(0.3)
            t0 = time.time()
            b = http.client.HTTPConnection("\(Lab.podIP)", 80, timeout=10)
            b.request("GET", "/meanwhile"); r = b.getresponse(); body = r.read()
            other = time.time() - t0
            print("other-done", flush=True)
            time.sleep(max(0, 2.0 - (time.time() - start)))
            f = a.makefile("rb")
            head = b""
            while not head.endswith(b"\\r\\n\\r\\n"): head += f.read(1)
            sha = [l.split(b": ")[1].decode() for l in head.split(b"\\r\\n") if l.lower().startswith(b"x-body-sha256")][0]
            h = hashlib.sha256(); size = 0
            while size < \(n):
                d = f.read(min(65536, \(n) - size))
                if not d: break
                h.update(d); size += len(d)
            print(json.dumps({"otherSeconds": other, "otherStatus": r.status, "slowBytes": size, "slowOK": h.hexdigest() == sha}), flush=True)
            """.write(to: script, atomically: true, encoding: .utf8)
        let rssBefore = Self.rssKiB(lab.proxy?.processIdentifier)
        let (p, out, err) = try lab.start(in: lab.client, [lab.python, script.path], name: "slow-client")
        XCTAssertTrue(lab.waitFor("other-done", in: out, timeout: 10))
        // The slow client reads nothing for 2 s: the proxy holds at most a few socket buffers of it.
        let rssDuring = Self.rssKiB(lab.proxy?.processIdentifier)
        let deadline = Date().addingTimeInterval(60)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        lab.stop(p)
        let lines = (try String(contentsOf: out, encoding: .utf8)).split(separator: "\n")
        let last = try XCTUnwrap(lines.last, (try? String(contentsOf: err, encoding: .utf8)) ?? "")
        let result = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any], String(last))
        XCTAssertEqual(result["otherStatus"] as? Int, 200)
        let other = result["otherSeconds"] as? Double ?? 99
        XCTAssertLessThan(other, 1.0, "another client's request completed while the slow one stalled")
        XCTAssertEqual(result["slowBytes"] as? Int, n)
        XCTAssertEqual(result["slowOK"] as? Bool, true)
        if let before = rssBefore, let during = rssDuring {
            XCTAssertLessThan(during - before, 12 * 1024, "backpressure: the proxy must not buffer the 20 MB body (RSS \(before) → \(during) KiB)")
        }
    }

    static func rssKiB(_ pid: Int32?) -> Int? {
        guard let pid, let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        }
        return nil
    }

    // MARK: not HTTP

    func testNonHTTPBytesPassThroughRaw() throws {
        let lab = try lab()
        let code = """
            import socket, json, time
            payload = bytes(range(256)) * 400
            s = socket.create_connection(("\(Lab.remoteIP)", \(Lab.echoPort)), timeout=10)
            s.sendall(payload); s.shutdown(socket.SHUT_WR)
            got = b""
            while True:
                d = s.recv(65536)
                if not d: break
                got += d
            g = socket.create_connection(("\(Lab.remoteIP)", \(Lab.greetPort)), timeout=10)
            t0 = time.time(); greeting = g.recv(100); waited = time.time() - t0
            g.sendall(b"HELO x\\r\\n"); echo = g.recv(100); g.close()
            print(json.dumps({"same": got == payload, "len": len(got), "greeting": greeting.decode(), "echo": echo.decode(), "waited": waited}))
            """
        let r = try lab.python(lab.pod, code, timeout: 30)
        XCTAssertEqual(r.status, 0, r.stderr)
        let result = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
        XCTAssertEqual(result["same"] as? Bool, true, "echoed bytes: \(result)")
        XCTAssertEqual(result["len"] as? Int, 256 * 400)
        XCTAssertEqual(result["greeting"] as? String, "220 greet\r\n", "server-first protocol after the detection timeout")
        XCTAssertEqual(result["echo"] as? String, "HELO x\r\n")
        let raw = lab.waitForAccessLog { ($0["originalDestination"] as? String) == "\(Lab.remoteIP):\(Lab.echoPort)" }
        XCTAssertEqual(raw.count, 1)
        if let e = raw.first {
            XCTAssertEqual(e["protocol"] as? String, "tcp")
            XCTAssertEqual(e["requestBytes"] as? Int, 256 * 400)
            XCTAssertEqual(e["responseBytes"] as? Int, 256 * 400)
            XCTAssertEqual(e["direction"] as? String, "outbound")
            XCTAssertTrue(e["method"] is NSNull)
        }
    }

    func testUpgradeBecomesATunnel() throws {
        let lab = try lab()
        let code = """
            import socket
            s = socket.create_connection(("\(Lab.remoteIP)", 80), timeout=10)
            s.sendall(b"GET /upgrade HTTP/1.1\\r\\nHost: r\\r\\nConnection: Upgrade\\r\\nUpgrade: echo\\r\\n\\r\\n")
            head = b""
            while b"\\r\\n\\r\\n" not in head: head += s.recv(1)
            s.sendall(b"\\x00\\x01raw after upgrade")
            got = b""
            while len(got) < 19: got += s.recv(100)
            s.close()
            print(head.split(b"\\r\\n")[0].decode(), got == b"\\x00\\x01raw after upgrade")
            """
        let r = try lab.python(lab.pod, code, timeout: 20)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, "HTTP/1.1 101 Switching Protocols True\n")
        if let e = entry(lab, method: "GET", target: "/upgrade") {
            XCTAssertEqual(e["protocol"] as? String, "tunnel")
            XCTAssertEqual(e["status"] as? Int, 101)
            XCTAssertEqual(e["requestBytes"] as? Int, 19)
            XCTAssertEqual(e["responseBytes"] as? Int, 19)
        }
    }

    // MARK: process

    func testRefusesAUIDTheRulesWouldRedirect() throws {
        guard geteuid() == 0 else { throw XCTSkip("needs root to start the proxy as another uid") }
        guard let setpriv = Run.which("setpriv") else { throw XCTSkip("setpriv (util-linux) is missing") }
        guard FileManager.default.isExecutableFile(atPath: Run.hoptrace) else { throw XCTSkip("hoptrace is not built") }
        let r = try Run.run(setpriv, ["--reuid", "1000", "--regid", "1000", "--clear-groups", Run.hoptrace, "proxy", "--port", "15999"], timeout: 10)
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(
            r.stderr,
            "hoptrace: hoptrace proxy runs as uid 1000, which the interception rules redirect back to the proxy (only uid 1337 is exempt): start it as root (it drops to 1337) or as uid 1337\n")
    }

    func testDrainLetsInFlightRequestsFinish() throws {
        let lab = try Lab(tag: "drain")
        defer { lab.tearDown() }
        let script = lab.dir.appendingPathComponent("inflight.py")
        try """
            import http.client, time
            c = http.client.HTTPConnection("\(Lab.podIP)", 80, timeout=10)
            c.request("GET", "/slow?ms=1500"); print("sent", flush=True)
            r = c.getresponse(); print(r.status, r.getheader("connection"), r.read().decode().strip(), flush=True)
            """.write(to: script, atomically: true, encoding: .utf8)
        let (client, out, _) = try lab.start(in: lab.client, [lab.python, script.path], name: "inflight")
        XCTAssertTrue(lab.waitFor("sent", in: out))
        usleep(400_000)
        let proxy = try XCTUnwrap(lab.proxy)
        kill(proxy.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(10)
        while (proxy.isRunning || client.isRunning) && Date() < deadline { usleep(20_000) }
        XCTAssertFalse(proxy.isRunning, "the proxy exits after draining")
        if !proxy.isRunning { XCTAssertEqual(proxy.terminationStatus, 0) }
        let text = try String(contentsOf: out, encoding: .utf8)
        XCTAssertTrue(text.contains("200 close slow"), text)
        let err = try String(contentsOf: XCTUnwrap(lab.proxyStderr), encoding: .utf8)
        XCTAssertTrue(err.contains("draining 1 connection"), err)
        XCTAssertTrue(err.contains("stopped"), err)
    }
}
