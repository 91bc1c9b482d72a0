import Foundation
import HopLab
import HopReport
import XCTest

/// The mTLS scene's parts that need no root: its log's TLS facts, its certificates (openssl) and
/// its two HAProxy configurations (checked by HAProxy itself when it is installed).
final class MTLSSceneTests: XCTestCase {
    func testTLSFactsPerConnection() {
        let text = """
            [NOTICE]   (7160) : haproxy version is 2.6.12
            hoplab 198.18.13.1:56416 hl-7160-0 127.0.0.1:56842 200 GET "/" 0 1796638197.060 07/Dec/2026:10:09:57.060 ---- HTTP/1.1 TLSv1.3 outbound_.80_._.app.hoplab.svc.cluster.local istio-http/1.1 client.hoplab.svc.cluster.local
            hoplab 198.18.13.1:56416 hl-7160-1 127.0.0.1:56842 200 GET "/" 1 1796638197.069 07/Dec/2026:10:09:57.072 ---- HTTP/1.1 TLSv1.3 outbound_.80_._.app.hoplab.svc.cluster.local istio-http/1.1 client.hoplab.svc.cluster.local
            hoplab 198.18.13.1:56422 hl-7160-3 127.0.0.1:56842 200 GET "/" 3 1796638197.066 07/Dec/2026:10:09:57.072 ---- HTTP/1.1 TLSv1.2 - - -
            hoplab 198.18.13.1:56430 - -:- 400 <BADREQ> "<BADREQ>" 4 1796638197.070 07/Dec/2026:10:09:57.070 CR-- - - - - -
            """
        let facts = LabLogFormats.parseHAProxyTLS(text)
        XCTAssertEqual(facts.count, 2)
        XCTAssertEqual(facts["198.18.13.1:56416"], TLSLogFacts(client: "198.18.13.1:56416", version: "TLSv1.3", serverName: MeshCertificates.sni,
                                                               alpn: "istio-http/1.1", peerName: MeshCertificates.clientName))
        XCTAssertEqual(facts["198.18.13.1:56416"]?.versionName, "TLS 1.3")
        XCTAssertEqual(facts["198.18.13.1:56422"]?.serverName, nil)
        // The same lines are the truth's HAProxy lines: the TLS fields come after them.
        let records = LabLogFormats.parseHAProxy(text)
        XCTAssertEqual(records.map(\.requestId), ["hl-7160-0", "hl-7160-1", "hl-7160-3", "-"])
        XCTAssertEqual(records[2].termination, "----")
        let truth = JoinedTruth.join(sidecar: records, app: [
            AppLogRecord(requestId: "hl-7160-0", peer: "127.0.0.1:56842", method: "GET", target: "/", status: 200, time: 1),
            AppLogRecord(requestId: "hl-7160-1", peer: "127.0.0.1:56842", method: "GET", target: "/", status: 200, time: 2),
            AppLogRecord(requestId: "hl-7160-3", peer: "127.0.0.1:56842", method: "GET", target: "/", status: 200, time: 3),
        ]).records
        XCTAssertEqual(MTLSCheck.sceneDifferences(truth: truth, facts: facts),
                       ["client connection 198.18.13.1:56422: the pod sidecar logged SNI none, ALPN none, client certificate none (TLS 1.2)"])
        XCTAssertEqual(MTLSCheck.sceneDifferences(truth: truth, facts: [:]).count, 2)
    }

    func testCertificatesVerifyForTheirUse() throws {
        guard let openssl = LabEnv.which("openssl") else { throw XCTSkip("openssl is missing (Debian package openssl)") }
        let dir = try LabEnv.temporaryDirectory("mtls-certificates")
        defer { try? FileManager.default.removeItem(at: dir) }
        let c = try MeshCertificates.make(in: dir, podIP: "198.18.13.2", openssl: openssl, owner: getuid())
        for (pem, purpose) in [(c.serverPath, "sslserver"), (c.clientPath, "sslclient")] {
            let ok = try LabEnv.run(openssl, ["verify", "-CAfile", c.caPath, "-purpose", purpose, pem])
            XCTAssertEqual(ok.status, 0, ok.stdout + ok.stderr)
            // Each leaf is for its own side only.
            let other = try LabEnv.run(openssl, ["verify", "-CAfile", c.caPath, "-purpose", purpose == "sslserver" ? "sslclient" : "sslserver", pem])
            XCTAssertNotEqual(other.status, 0, "\(pem) verifies for the other side too")
            XCTAssertTrue(try String(contentsOfFile: pem, encoding: .utf8).contains("PRIVATE KEY"), "\(pem) lacks its key (HAProxy's crt)")
        }
        let text = try LabEnv.run(openssl, ["x509", "-in", c.serverPath, "-noout", "-ext", "subjectAltName"]).stdout
        for name in [MeshCertificates.serverName, MeshCertificates.sni, "198.18.13.2", MeshCertificates.serverIdentity] {
            XCTAssertTrue(text.contains(name), "the server certificate lacks \(name): \(text)")
        }
    }

    func testConfigurationsAreMutualTLSAndHAProxyAcceptsThem() throws {
        let dir = try LabEnv.temporaryDirectory("mtls-configs")
        defer { try? FileManager.default.removeItem(at: dir) }
        let certs = MeshCertificates(dir: dir)
        let plan = MTLSPlan(pod: SidecarPlan(listenPort: 15001, upstream: "127.0.0.1:80", sourceAddress: nil, dir: dir.path),
                            podTarget: "198.18.13.2:80", clientDir: dir.path, certificates: certs)
        let client = plan.clientConfig(), pod = plan.podConfig()
        XCTAssertTrue(client.contains("server pod 198.18.13.2:80 ssl crt \(certs.clientPath) ca-file \(certs.caPath) verify required"), client)
        XCTAssertTrue(client.contains("sni str(\(MeshCertificates.sni)) alpn istio-http/1.1"), client)
        XCTAssertTrue(client.contains("http-reuse always"), client)
        XCTAssertTrue(pod.contains("bind 0.0.0.0:15001 ssl crt \(certs.serverPath) ca-file \(certs.caPath) verify required"), pod)
        XCTAssertTrue(pod.contains("unique-id-header X-Request-Id"), pod)
        guard let haproxy = LabEnv.which("haproxy"), let openssl = LabEnv.which("openssl") else {
            throw XCTSkip("haproxy or openssl is missing (scripts/setup.sh installs them)")
        }
        _ = try MeshCertificates.make(in: dir, podIP: "198.18.13.2", openssl: openssl, owner: getuid())
        // HTTP/2 between the sidecars: both tokens offered, istio-h2 preferred, h2 on both ends.
        let h2 = MTLSPlan(pod: plan.pod, podTarget: plan.podTarget, clientDir: dir.path, certificates: certs, http2: true)
        let client2 = h2.clientConfig(), pod2 = h2.podConfig()
        XCTAssertTrue(client2.contains("alpn istio-h2,istio-http/1.1 proto h2"), client2)
        XCTAssertTrue(pod2.contains("verify required alpn istio-h2,h2 proto h2"), pod2)
        for (name, text) in [("client.cfg", client), ("pod.cfg", pod), ("client-h2.cfg", client2), ("pod-h2.cfg", pod2)] {
            let cfg = dir.appendingPathComponent(name)
            try text.write(to: cfg, atomically: true, encoding: .utf8)
            let r = try LabEnv.run(haproxy, ["-c", "-f", cfg.path])
            XCTAssertEqual(r.status, 0, "haproxy -c \(name): \(r.stdout)\(r.stderr)")
        }
    }
}

/// Encrypted downstream copies in the truth checks and the pairing metrics (no root needed).
final class EncryptedCopyTruthTests: XCTestCase {
    let d = HopRoles.inboundIntercepted, u = HopRoles.inboundForwarded

    /// The n-th turn of a TLS connection (times in µs), as the analysis reports it.
    func turn(_ client: String, _ n: Int, _ start: Int64, _ end: Int64, sni: String? = MeshCertificates.sni) throws -> ReportHop {
        var h = ReportHop(role: d, client: client, method: nil, target: nil, status: nil, requestStartNs: start * 1000, responseEndNs: end * 1000)
        let json = """
            {"turn": \(n), "version": "TLS 1.3", "sni": \(sni.map { "\"\($0)\"" } ?? "null"), "alpnOffered": ["istio-http/1.1"],
             "requestRecords": 1, "requestBytes": 58, "responseRecords": 1, "responseBytes": 139,
             "includesHandshake": \(n == 1), "cutByGap": false, "answeredByAlert": false, "interimResponse": false}
            """
        h.tls = try JSONDecoder().decode(ReportTLS.self, from: Data(json.utf8))
        return h
    }

    func plain(_ client: String, id: String, _ start: Int64, _ end: Int64, target: String = "/") -> ReportHop {
        ReportHop(role: u, client: client, method: "GET", target: target, requestId: id, requestStartNs: start * 1000, responseEndNs: end * 1000)
    }

    let truth = [
        TruthRecord(client: "c:1", index: 0, requestId: "A", upstream: "p:1", method: "GET", target: "/", status: 200),
        TruthRecord(client: "c:1", index: 1, requestId: "B", upstream: "p:2", method: "GET", target: "/", status: 200),
        TruthRecord(client: "c:2", index: 0, requestId: "C", upstream: "p:1", method: "GET", target: "/x", status: 200),
    ]

    func verify(_ chains: [ReportChain]) -> [String] {
        TruthVerifier(roles: [d, u], complete: true, unexplainedDuplicates: 0)
            .check(truth, analysis: ReportDocument(summary: .init(logicalRequests: chains.count), chains: chains)).differences
    }

    func testTheNthTurnIsTheNthLoggedRequestReadThroughItsPlaintextCopy() throws {
        // Listed out of order: the index is by turn number, not by the chains' order.
        let right: [ReportChain] = [
            .init(id: 2, confidence: 0.99, hops: [try turn("c:1", 2, 2000, 3000), plain("p:2", id: "B", 2100, 2900)]),
            .init(id: 1, confidence: 0.99, hops: [try turn("c:1", 1, 0, 1000), plain("p:1", id: "A", 100, 900)]),
            .init(id: 3, confidence: 0.6, hops: [try turn("c:2", 1, 500, 1500), plain("p:1", id: "C", 1000, 1400, target: "/x")]),
        ]
        XCTAssertEqual(verify(right), [])
        let m = PairingMetrics.measure(ReportDocument(chains: right), truth: truth.map(PairingTruth.init))
        XCTAssertEqual(m.right, 3)
        XCTAssertEqual(m.unpaired, 0)
        XCTAssertEqual(m.bands.reduce(0) { $0 + $1.count }, 3)
        // Timing alone: the encrypted copies have no method or target to group them by.
        XCTAssertEqual(m.baseline.right, 3)
    }

    func testSwappedTurnsAreWrongPairingsAndAWrongTargetADifference() throws {
        // c:1's two turns swapped: both GET /, so the counts hold; the pairing is wrong twice.
        let swapped: [ReportChain] = [
            .init(id: 1, confidence: 0.5, hops: [try turn("c:1", 1, 0, 1000), plain("p:2", id: "B", 2100, 2900)]),
            .init(id: 2, confidence: 0.5, hops: [try turn("c:1", 2, 2000, 3000), plain("p:1", id: "A", 100, 900)]),
            .init(id: 3, confidence: 0.6, hops: [try turn("c:2", 1, 500, 1500), plain("p:1", id: "C", 1000, 1400)]),
        ]
        let differences = verify(swapped)
        XCTAssertEqual(differences, ["request GET /x #1 on c:2 (id C): the analysis pairs the encrypted turn there with GET / there"])
        let m = PairingMetrics.measure(ReportDocument(chains: swapped), truth: truth.map(PairingTruth.init))
        XCTAssertEqual(m.right, 1)
        XCTAssertEqual(Set(m.wrong.compactMap(\.gotRequestId)), ["A", "B"])
    }

    func testATurnWithoutItsPlaintextCopyOrMisnumberedIsADifference() throws {
        let chains: [ReportChain] = [
            .init(id: 1, confidence: 0.99, hops: [try turn("c:1", 1, 0, 1000), plain("p:1", id: "A", 100, 900)]),
            .init(id: 2, confidence: 0, complete: false, hops: [try turn("c:1", 3, 2000, 3000)]),
            .init(id: 3, confidence: 0.6, hops: [try turn("c:2", 1, 500, 1500), plain("p:1", id: "C", 1000, 1400, target: "/x")]),
        ]
        let differences = verify(chains)
        XCTAssertTrue(differences.contains { $0.contains("#2 on c:1") && $0.contains("hop roles") }, "\(differences)")
        XCTAssertTrue(differences.contains { $0.contains("#2 on c:1") && $0.contains("numbers the encrypted turn there 3") }, "\(differences)")
        let m = PairingMetrics.measure(ReportDocument(chains: chains), truth: truth.map(PairingTruth.init))
        XCTAssertEqual(m.unpaired, 1)
        XCTAssertEqual(m.right, 2)
    }

    func testTheAnalysisTLSFactsAgainstThePodSidecarsLog() throws {
        let logged = TLSLogFacts(client: "c:1", version: "TLSv1.3", serverName: MeshCertificates.sni, alpn: "istio-http/1.1",
                                 peerName: MeshCertificates.clientName)
        let facts = ["c:1": logged, "c:2": TLSLogFacts(client: "c:2", version: "TLSv1.2", serverName: "other", alpn: "h2", peerName: nil)]
        let doc = ReportDocument(chains: [
            .init(id: 1, confidence: 1, hops: [try turn("c:1", 1, 0, 1000), plain("p:1", id: "A", 100, 900)]),
            .init(id: 2, confidence: 1, hops: [try turn("c:2", 1, 0, 1000), plain("p:1", id: "C", 100, 900)]),
            .init(id: 3, confidence: 1, hops: [plain("c:9", id: "Z", 100, 900)]),
        ])
        XCTAssertEqual(MTLSCheck.analysisDifferences(facts: facts, analysis: doc), [
            "client connection c:2: turn 1 (chain 2): SNI \(MeshCertificates.sni) (logged other), version TLS 1.3 (logged TLS 1.2), ALPN offered istio-http/1.1 (negotiated h2)",
        ])
    }
}

/// The check of `haproxy-mtls-h2` (no root needed): with HTTP/2 between the sidecars each TLS
/// connection is one encrypted HTTP/2 chain and each request its plaintext copy alone.
final class MultiplexedTruthTests: XCTestCase {
    let d = HopRoles.inboundIntercepted, u = HopRoles.inboundForwarded

    func carrier(_ client: String) throws -> ReportHop {
        var h = ReportHop(role: d, client: client, method: nil, target: nil, status: nil, requestStartNs: 0, responseEndNs: 1000)
        let json = """
            {"turn": 1, "version": "TLS 1.3", "sni": null, "alpnOffered": ["istio-h2", "istio-http/1.1"],
             "requestRecords": 2, "requestBytes": 94, "responseRecords": 1, "responseBytes": 47, "includesHandshake": true,
             "cutByGap": false, "answeredByAlert": false, "interimResponse": false, "multiplexed": "the client acknowledged HTTP/2 SETTINGS"}
            """
        h.tls = try JSONDecoder().decode(ReportTLS.self, from: Data(json.utf8))
        return h
    }

    func alone(_ id: String, target: String = "/", status: Int = 200) -> ReportHop {
        ReportHop(role: u, client: "p:1", method: "GET", target: target, requestId: id, status: status, requestStartNs: 100, responseEndNs: 900)
    }

    let truth = [
        TruthRecord(client: "c:1", index: 0, requestId: "A", upstream: "p:1", method: "GET", target: "/", status: 200),
        TruthRecord(client: "c:1", index: 1, requestId: "B", upstream: "p:1", method: "GET", target: "/b", status: 200),
        TruthRecord(client: "c:1", index: 2, requestId: "N", upstream: nil, method: "GET", target: "/n", status: 0),
    ]

    func testEachConnectionIsOneEncryptedHTTP2ChainAndEachRequestItsPlaintextCopy() throws {
        let right: [ReportChain] = [
            .init(id: 1, confidence: 1, hops: [try carrier("c:1")]),
            .init(id: 2, confidence: 1, hops: [alone("A")]),
            .init(id: 3, confidence: 1, hops: [alone("B", target: "/b")]),
        ]
        XCTAssertEqual(MTLSCheck.multiplexedDifferences(truth: truth, analysis: ReportDocument(summary: .init(logicalRequests: 2), chains: right)), [])
        let wrong: [ReportChain] = [
            .init(id: 2, confidence: 1, hops: [alone("A", status: 503)]),
            .init(id: 3, confidence: 0, complete: false, hops: [alone("B", target: "/b")]),
            .init(id: 4, confidence: 1, hops: [try carrier("c:9")]),
        ]
        XCTAssertEqual(MTLSCheck.multiplexedDifferences(truth: truth, analysis: ReportDocument(summary: .init(logicalRequests: 3), chains: wrong)), [
            "logical requests: the sidecar logged 2 the app saw, the analysis has 3",
            "client connection c:1: the pod sidecar logged requests there, the analysis has 0 encrypted HTTP/2 connections there (expected 1)",
            "encrypted HTTP/2 connection from c:9: the pod sidecar logged no request there",
            "request id A: status 200 in the sidecar's log, 503 in the analysis",
            "request GET /b (id B): no complete chain of its plaintext copy alone",
            "1 other chain: chain 3 [\(u)] incomplete",
        ])
    }
}

extension LabScenarioTests {
    /// `lab load` of an mTLS scene (8 connections, 1 s of wrk; root and its tools, else
    /// skipped): the run and its one scenario's JSON.
    func mtlsLoad(_ arguments: [String]) throws -> (LabEnv.Result, [String: Any]?) {
        try LabEnv.requireLab()
        for tool in ["haproxy", "wrk", "nginx", "setpriv", "openssl"] where LabEnv.which(tool) == nil {
            throw XCTSkip("\(tool) is missing (scripts/setup.sh installs it)")
        }
        let r = try LabEnv.hoptrace(["lab", "load"] + arguments + ["--connections", "8", "--duration", "1",
                                     "--namespace-prefix", LabEnv.prefix, "--format", "json"], timeout: 300)
        let doc = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any]
        return (r, (doc?["scenarios"] as? [[String: Any]])?.first)
    }

    /// The mTLS scene with HTTP/2 between the sidecars (`haproxy-mtls-h2`, issue 20): the client
    /// sidecar offers istio-h2 and istio-http/1.1, so the analysis must see HTTP/2 in the records
    /// (the client's SETTINGS acknowledgement). Each TLS connection is one encrypted HTTP/2
    /// chain, every request the pod sidecar logged is one complete chain of its plaintext copy,
    /// nothing is paired, and nothing is left incomplete or unexplained.
    func testLoadWithHTTP2InsideMutualTLSBetweenSidecars() throws {
        let (r, s) = try mtlsLoad(["--sidecar", "haproxy-mtls-h2"])
        XCTAssertEqual(s?["sidecar"] as? String, "haproxy-mtls-h2")
        XCTAssertNil(s?["skipped"], r.stdout)
        XCTAssertNil(s?["error"], r.stdout)
        XCTAssertGreaterThan(s?["requests"] as? Int ?? 0, 100, r.stdout.prefix(2000) + r.stderr)
        XCTAssertEqual((s?["differences"] as? [String]) ?? ["none decoded"], [], r.stdout.prefix(4000) + "")
        XCTAssertNil(s?["pairing"], "nothing to pair: \(r.stdout.prefix(2000))")
        XCTAssertEqual(r.status, 0, "lab load --sidecar haproxy-mtls-h2 failed:\n\(r.stdout.prefix(4000))\n\(r.stderr)")
    }
}

extension LabScenarioTests {
    /// The mTLS scene (issue 20): the client → pod copy of each request is TLS between two HAProxy
    /// sidecars (client certificates, verify required), the sidecar → app copy plaintext. The
    /// exact counts hold against the pod sidecar's log (every request one chain, with both
    /// roles: no encrypted turn left without its plaintext copy), and every encrypted turn of the
    /// truth is paired (right or wrong is the pairing report's figure, not a failure here).
    func testLoadWithMutualTLSBetweenSidecars() throws {
        let (r, s) = try mtlsLoad(["--sidecar", "haproxy-mtls", "--identical-targets"])
        XCTAssertEqual(s?["sidecar"] as? String, "haproxy-mtls")
        XCTAssertNil(s?["skipped"], r.stdout)
        XCTAssertNil(s?["error"], r.stdout)
        let requests = s?["requests"] as? Int ?? 0
        XCTAssertGreaterThan(requests, 100, r.stdout.prefix(2000) + r.stderr)
        XCTAssertEqual((s?["differences"] as? [String]) ?? ["none decoded"], [], r.stdout.prefix(4000) + "")
        let p = s?["pairing"] as? [String: Any]
        XCTAssertEqual(p?["total"] as? Int, requests)
        XCTAssertEqual(p?["notFound"] as? Int, 0, "encrypted turns the analysis does not have: \(p ?? [:])")
        XCTAssertEqual(p?["unpaired"] as? Int, 0, "encrypted turns without a plaintext copy: \(p ?? [:])")
        // A request the app never saw (the client gave up first) is right unpaired, outside the table.
        let neverForwarded = p?["neverForwarded"] as? Int ?? 0
        XCTAssertEqual((p?["bands"] as? [[String: Any]])?.reduce(0) { $0 + ($1["count"] as? Int ?? 0) }, requests - neverForwarded,
                       "every pairing has a stated confidence in the calibration table")
        XCTAssertEqual(r.status, 0, "lab load --sidecar haproxy-mtls failed:\n\(r.stdout.prefix(4000))\n\(r.stderr)")
    }
}
