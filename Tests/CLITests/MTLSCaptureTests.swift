import Foundation
import XCTest

/// mTLS between sidecars (Captures/make-mtls-capture.sh: curl with a client certificate →
/// the pod's HAProxy terminating TLS with `verify required` → nginx on lo): each encrypted turn
/// is paired with its plaintext copy, checked against HAProxy's own log (the n-th request on a
/// client connection and the unique id HAProxy sent upstream as X-Request-Id), and the
/// connection HAProxy refused is explained by its alert.
final class MTLSCaptureTests: XCTestCase {
    /// HAProxy's log: `ip:port id "METHOD /target HTTP/1.1" status TLSv1.x cn`, in order; the
    /// refused handshakes (`ip:port [date] sidecar/1: SSL handshake failure`) apart.
    static func haproxyTruth(_ log: String) -> (requests: [String: [String]], refused: Set<String>) {
        var requests: [String: [String]] = [:]
        var refused = Set<String>()
        for line in log.split(separator: "\n") {
            let f = line.split(separator: " ").map(String.init)
            guard f.count >= 2 else { continue }
            if line.contains("SSL handshake failure") { refused.insert(f[0]); continue }
            guard line.contains("\"") else { continue }
            requests[f[0], default: []].append(f[1])
        }
        return (requests, refused)
    }

    func check(capture: String, log: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let truth = Self.haproxyTruth(log)
        XCTAssertFalse(truth.requests.isEmpty, "HAProxy logged no request", file: file, line: line)
        let r = try TestEnv.run(TestEnv.hoptrace, ["analyze", capture, "--format", "json"])
        XCTAssertEqual(r.status, 0, r.stderr, file: file, line: line)
        let doc = try XCTUnwrap(JSONSerialization.jsonObject(with: r.stdoutData) as? [String: Any])
        let chains = try XCTUnwrap(doc["chains"] as? [[String: Any]])
        var paired: [String: [Int: String]] = [:]
        var refusedSeen = Set<String>()
        var confidences: [Double] = []
        for c in chains {
            let hops = c["hops"] as? [[String: Any]] ?? []
            guard let first = hops.first, let tls = first["tls"] as? [String: Any] else { continue }
            let client = first["client"] as? String ?? "?"
            let turn = tls["turn"] as? Int ?? 0
            XCTAssertEqual(tls["sni"] as? String, "orders.default.svc.cluster.local", file: file, line: line)
            XCTAssertNil(first["method"] as? String, "an encrypted hop has no method of its own", file: file, line: line)
            if tls["answeredByAlert"] as? Bool == true {
                refusedSeen.insert(client)
                XCTAssertEqual(hops.count, 1, file: file, line: line)
                XCTAssertTrue((c["explanation"] as? String ?? "").contains("TLS alert"), file: file, line: line)
                continue
            }
            XCTAssertEqual(hops.count, 2, "turn \(turn) on \(client): \(c["explanation"] ?? "")", file: file, line: line)
            guard hops.count == 2 else { continue }
            XCTAssertEqual(hops.map { $0["role"] as? String }, ["inbound-intercepted", "inbound-forwarded"], file: file, line: line)
            XCTAssertEqual(c["method"] as? String, hops[1]["method"] as? String, "the chain's method is the plaintext copy's", file: file, line: line)
            paired[client, default: [:]][turn] = hops[1]["requestId"] as? String
            confidences.append(c["confidence"] as? Double ?? 0)
        }
        var right = 0, total = 0
        for (client, ids) in truth.requests {
            for (i, id) in ids.enumerated() {
                total += 1
                if paired[client]?[i + 1] == id { right += 1 } else {
                    XCTFail("request \(i + 1) on \(client) (HAProxy id \(id)): paired with \(paired[client]?[i + 1] ?? "nothing")", file: file, line: line)
                }
            }
        }
        XCTAssertEqual(right, total, file: file, line: line)
        XCTAssertEqual(paired.values.reduce(0) { $0 + $1.count }, total, "no encrypted turn paired beyond HAProxy's requests", file: file, line: line)
        XCTAssertEqual(refusedSeen, truth.refused, "the refused connections", file: file, line: line)
        // One request at a time on these connections: every pairing is certain.
        XCTAssertTrue(confidences.allSatisfy { $0 >= 0.99 }, "\(confidences)", file: file, line: line)
    }

    func testBundledMTLSCapturePairsEveryEncryptedTurnAsHAProxyLogged() throws {
        let capture = TestEnv.captures.appendingPathComponent("mtls-haproxy.pcap").path
        let log = try String(contentsOfFile: capture + ".haproxy.log", encoding: .utf8)
        try check(capture: capture, log: log)
        // What the handshake says in clear, as tshark reads it: one SNI per TLS connection.
        guard let tshark = TestEnv.which("tshark") else { throw XCTSkip("no tshark (Debian: tshark)") }
        let t = try TestEnv.run(tshark, ["-r", capture, "-d", "tcp.port==80,tls", "-Y", "tls.handshake.type==1", "-T", "fields",
                                         "-e", "tcp.srcport", "-e", "tls.handshake.extensions_server_name"])
        XCTAssertEqual(t.status, 0, t.stderr)
        let sni = Set(t.stdout.split(separator: "\n").map { String($0.split(separator: "\t").last ?? "") })
        XCTAssertEqual(sni, ["orders.default.svc.cluster.local"])
        let h = try TestEnv.run(TestEnv.hoptrace, ["http", capture])
        XCTAssertEqual(h.stdout.components(separatedBy: "encrypted turn 1 (").count - 1, t.stdout.split(separator: "\n").count,
                       "a first turn for every ClientHello tshark sees")
    }

    /// HTTP/2 inside mTLS (`MTLS_HTTP2=1`): every TLS connection HAProxy took requests on is
    /// one encrypted HTTP/2 connection, paired with nothing, and every request HAProxy logged is
    /// one complete chain of its plaintext copy alone (the id HAProxy sent upstream), told where
    /// its encrypted copy went; the refused connection is still explained by its alert.
    func checkHTTP2(capture: String, log: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let truth = Self.haproxyTruth(log)
        let logged = truth.requests.values.flatMap { $0 }
        var clientOf: [String: String] = [:]
        for (client, ids) in truth.requests { for id in ids { clientOf[id] = client } }
        XCTAssertFalse(logged.isEmpty, "HAProxy logged no request", file: file, line: line)
        let r = try TestEnv.run(TestEnv.hoptrace, ["analyze", capture, "--format", "json"])
        XCTAssertEqual(r.status, 0, r.stderr, file: file, line: line)
        let doc = try XCTUnwrap(JSONSerialization.jsonObject(with: r.stdoutData) as? [String: Any])
        let chains = try XCTUnwrap(doc["chains"] as? [[String: Any]])
        var carriers = Set<String>(), refusedSeen = Set<String>(), plaintext: [String] = []
        for c in chains {
            let hops = c["hops"] as? [[String: Any]] ?? []
            XCTAssertEqual(hops.count, 1, "\(c["explanation"] ?? "")", file: file, line: line)
            guard let hop = hops.first else { continue }
            XCTAssertEqual(c["complete"] as? Bool, hop["tls"].map { ($0 as? [String: Any])?["answeredByAlert"] as? Bool != true } ?? true,
                           "\(c["explanation"] ?? "")", file: file, line: line)
            if let tls = hop["tls"] as? [String: Any] {
                let client = hop["client"] as? String ?? "?"
                if tls["answeredByAlert"] as? Bool == true { refusedSeen.insert(client); continue }
                XCTAssertNotNil(tls["multiplexed"] as? String, "\(client): read as turns", file: file, line: line)
                XCTAssertEqual(hop["role"] as? String, "inbound-intercepted", file: file, line: line)
                carriers.insert(client)
            } else {
                XCTAssertEqual(hop["role"] as? String, "inbound-forwarded", file: file, line: line)
                // It names the connection HAProxy logged the request on (the others had closed,
                // or were not open yet).
                let id = hop["requestId"] as? String ?? "?"
                XCTAssertTrue((c["evidence"] as? [String] ?? []).contains { $0.contains("travelled inside the encrypted HTTP/2 connection \(clientOf[id] ?? "?") → ") },
                              "\(id): \(c["evidence"] ?? [])", file: file, line: line)
                plaintext.append(id)
            }
        }
        XCTAssertEqual(carriers, Set(truth.requests.keys), "one encrypted HTTP/2 connection per client connection HAProxy logged", file: file, line: line)
        XCTAssertEqual(plaintext.sorted(), logged.sorted(), "each logged request once, as its plaintext copy", file: file, line: line)
        XCTAssertEqual(refusedSeen, truth.refused, "the refused connections", file: file, line: line)
        let summary = try XCTUnwrap(doc["summary"] as? [String: Any])
        XCTAssertEqual(summary["encryptedHTTP2Connections"] as? Int, carriers.count, file: file, line: line)
        XCTAssertEqual(summary["requestsInEncryptedHTTP2"] as? Int, logged.count, file: file, line: line)
    }

    func testBundledHTTP2InsideMTLSCaptureIsReadAsEncryptedHTTP2Connections() throws {
        let capture = TestEnv.captures.appendingPathComponent("mtls-h2-haproxy.pcap").path
        let log = try String(contentsOfFile: capture + ".haproxy.log", encoding: .utf8)
        XCTAssertTrue(log.contains("HTTP/2.0"), "curl spoke HTTP/2 to HAProxy")
        try checkHTTP2(capture: capture, log: log)
    }

    /// A fresh capture from the same peers, made now (root: namespaces and the pod's rules);
    /// with `http2`, the HTTP/2 variant.
    func fresh(http2: Bool) throws {
        guard TestEnv.isRoot else { throw XCTSkip("needs root for the capture's network namespaces") }
        for tool in ["haproxy", "nginx", "curl", "openssl", "tcpdump", "iptables"] where TestEnv.which(tool) == nil {
            throw XCTSkip("no \(tool) (scripts/setup.sh installs it)")
        }
        let file = TestEnv.temporaryFile(http2 ? "mtls-h2.pcap" : "mtls.pcap")
        defer {
            for suffix in ["", ".haproxy.log", ".nginx.log"] { try? FileManager.default.removeItem(atPath: file.path + suffix) }
        }
        let script = TestEnv.repoRoot.appendingPathComponent("Captures/make-mtls-capture.sh").path
        let made = try TestEnv.run("/usr/bin/env", ["HOPTRACE_BIN=\(TestEnv.hoptrace)", "MTLS_HTTP2=\(http2 ? 1 : 0)", "/bin/bash", script, file.path],
                                   timeout: 120)
        XCTAssertEqual(made.status, 0, made.stderr)
        let log = try String(contentsOfFile: file.path + ".haproxy.log", encoding: .utf8)
        if http2 { try checkHTTP2(capture: file.path, log: log) } else { try check(capture: file.path, log: log) }
    }

    func testFreshMTLSCaptureFromHAProxyAndCurl() throws { try fresh(http2: false) }
    func testFreshHTTP2InsideMTLSCaptureFromHAProxyAndCurl() throws { try fresh(http2: true) }
}
