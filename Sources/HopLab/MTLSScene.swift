import Foundation
import HopReport
#if canImport(Glibc)
import Glibc
#endif

// The mTLS scene (`--sidecar haproxy-mtls`, issue 20): the client → pod hop is TLS between two
// sidecars, as under Istio's mutual TLS, and only the pod sidecar → app hop is plaintext.
//
//   client namespace: wrk → 127.0.0.1:15001 → the client sidecar (HAProxy, uid 1337) → TLS with
//                     its client certificate, SNI and ALPN, pooled (`http-reuse always`) → podIP:80
//   pod namespace:    podIP:80 → REDIRECT (the scenario's rules) → the pod sidecar (HAProxy, uid
//                     1337) terminates TLS (`verify required`), adds X-Request-Id → its pool on
//                     lo → the app (nginx) on 127.0.0.1:80
//
// The pod's capture holds the encrypted client → pod copy and the plaintext sidecar → app copy of
// each request. The truth is the pod sidecar's log (the TLS connection's client tuple, the
// request's order on it, the unique id, the TLS facts) joined with the app's by request id.

/// A CA, the pod's server certificate and the client sidecar's certificate, made with `openssl`
/// in the scene's directory for one run (P-256 keys, valid for two days).
public struct MeshCertificates: Sendable {
    /// The SNI the client sidecar sends (Istio's form for a service's port 80).
    public static let sni = "outbound_.80_._.app.hoplab.svc.cluster.local"
    /// The name the client sidecar verifies in the pod's certificate (`verifyhost`).
    public static let serverName = "app.hoplab.svc.cluster.local"
    /// The client certificate's common name (the pod sidecar logs it).
    public static let clientName = "client.hoplab.svc.cluster.local"
    public static let serverIdentity = "spiffe://cluster.local/ns/hoplab/sa/app"
    public static let clientIdentity = "spiffe://cluster.local/ns/hoplab/sa/client"

    public var dir: URL

    /// The certificates `make` writes in `dir`.
    public init(dir: URL) { self.dir = dir }

    /// The CA's certificate: each side verifies the other's against it.
    public var caPath: String { dir.appendingPathComponent("ca.pem").path }
    /// The pod sidecar's certificate and key, one PEM (HAProxy's `crt`).
    public var serverPath: String { dir.appendingPathComponent("server.pem").path }
    /// The client sidecar's certificate and key, one PEM.
    public var clientPath: String { dir.appendingPathComponent("client.pem").path }

    /// Makes the three certificates in `dir`; the key files are readable by `owner` only (the
    /// sidecars run as uid 1337). Throws with openssl's own message when a step fails.
    public static func make(in dir: URL, podIP: String, openssl: String, owner: uid_t) throws -> MeshCertificates {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        let c = MeshCertificates(dir: dir)
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
        func run(_ arguments: [String]) throws {
            let r = try Subprocess.run(openssl, arguments, timeout: 30)
            if r.status != 0 {
                throw LabError("openssl \(arguments.prefix(2).joined(separator: " ")) failed: \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
        }
        let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        try run(["req", "-x509"] + key + ["-keyout", path("ca.key"), "-out", c.caPath, "-days", "2", "-subj", "/O=hoplab/CN=hoplab mesh CA"])
        let leaves: [(name: String, commonName: String, usage: String, names: String)] = [
            ("server", serverName, "serverAuth", "DNS:\(serverName),DNS:\(sni),IP:\(podIP),URI:\(serverIdentity)"),
            ("client", clientName, "clientAuth", "DNS:\(clientName),URI:\(clientIdentity)"),
        ]
        for (serial, leaf) in leaves.enumerated() {
            let ext = path("\(leaf.name).ext")
            try """
            basicConstraints=critical,CA:FALSE
            keyUsage=critical,digitalSignature
            extendedKeyUsage=\(leaf.usage)
            subjectAltName=\(leaf.names)

            """.write(toFile: ext, atomically: true, encoding: .utf8)
            try run(["req", "-new"] + key + ["-keyout", path("\(leaf.name).key"), "-out", path("\(leaf.name).csr"), "-subj", "/O=hoplab/CN=\(leaf.commonName)"])
            try run(["x509", "-req", "-in", path("\(leaf.name).csr"), "-CA", c.caPath, "-CAkey", path("ca.key"), "-set_serial", "\(serial + 2)",
                     "-days", "2", "-extfile", ext, "-out", path("\(leaf.name).crt")])
            let pem = try String(contentsOfFile: path("\(leaf.name).crt"), encoding: .utf8) + String(contentsOfFile: path("\(leaf.name).key"), encoding: .utf8)
            let bundle = path("\(leaf.name).pem")
            try pem.write(toFile: bundle, atomically: true, encoding: .utf8)
            chown(bundle, owner, gid_t(owner))
            chmod(bundle, 0o600)
        }
        for name in ["ca.key", "server.key", "client.key"] { chmod(path(name), 0o600) }
        chmod(c.caPath, 0o644)
        // Each leaf verifies against the CA before a sidecar is started on it.
        for leaf in leaves {
            try run(["verify", "-CAfile", c.caPath, "-purpose", leaf.usage == "serverAuth" ? "sslserver" : "sslclient", path("\(leaf.name).crt")])
        }
        return c
    }
}

/// The two HAProxy configurations of the mTLS scene.
public struct MTLSPlan: Sendable {
    /// Where the client sidecar listens in the client namespace (wrk's target).
    public static let clientPort = 15001
    /// ALPN: what the client sidecar offers (Istio's HTTP/1.1 between sidecars), and what the
    /// pod sidecar accepts, in its order of preference.
    public static let clientALPN = "istio-http/1.1"
    public static let serverALPN = "istio-http/1.1,http/1.1"
    /// The same with HTTP/2 between the sidecars (`haproxy-mtls-h2`): the client sidecar offers
    /// Istio's h2 and HTTP/1.1 tokens both (so the analysis cannot tell HTTP/2 from the offer and
    /// must see it in the records), the pod sidecar prefers and gets `istio-h2`. HAProxy picks
    /// its h2 multiplexer only for the token `h2`, so both ends also say `proto h2`.
    public static let clientALPNH2 = "istio-h2,istio-http/1.1"
    public static let serverALPNH2 = "istio-h2,h2"
    /// What the pod sidecar logs as negotiated.
    public static let negotiatedALPNH2 = "istio-h2"

    /// HTTP/2 between the sidecars.
    public var http2: Bool
    /// What the client sidecar offers.
    public var alpn: String { http2 ? Self.clientALPNH2 : Self.clientALPN }

    /// The pod sidecar: listen port, upstream (the app) and its directory.
    public var pod: SidecarPlan
    /// The pod's address and port as the client sidecar dials it (podIP:80: redirected in the pod).
    public var podTarget: String
    /// The client sidecar's directory (its pid file).
    public var clientDir: String
    public var certificates: MeshCertificates

    public init(pod: SidecarPlan, podTarget: String, clientDir: String, certificates: MeshCertificates, http2: Bool = false) {
        self.pod = pod; self.podTarget = podTarget; self.clientDir = clientDir; self.certificates = certificates
        self.http2 = http2
    }

    static func global(pidfile: String) -> String { SidecarPlan.haproxyGlobal(pidfile: pidfile) }

    /// The client sidecar: plain HTTP in on 127.0.0.1, TLS out to the pod with the client
    /// certificate, the server verified against the CA and `MeshCertificates.serverName`, SNI
    /// and ALPN set, one pool of TLS connections shared by every client connection. Its log
    /// (`hoplab-client …`, not truth) names the TLS connection each request went out on.
    public func clientConfig() -> String {
        let c = certificates
        return Self.global(pidfile: "\(clientDir)/haproxy.pid") + """
        frontend outbound
            bind 127.0.0.1:\(Self.clientPort)
            log-format "\(LabLogFormats.haproxyMeshClient)"
            default_backend mesh

        backend mesh
            http-reuse always
            server pod \(podTarget) ssl crt \(c.clientPath) ca-file \(c.caPath) verify required verifyhost \(MeshCertificates.serverName) sni str(\(MeshCertificates.sni)) alpn \(alpn)\(http2 ? " proto h2" : "")

        """
    }

    /// The pod sidecar: TLS terminated where the rules redirect to, the client's certificate
    /// required, a unique id per request sent upstream as X-Request-Id, plaintext to the app
    /// over its pool; its log in `LabLogFormats.haproxyTLS`.
    public func podConfig() -> String {
        let c = certificates
        return Self.global(pidfile: "\(pod.dir)/haproxy.pid") + """
        frontend sidecar
            bind 0.0.0.0:\(pod.listenPort) ssl crt \(c.serverPath) ca-file \(c.caPath) verify required alpn \(http2 ? Self.serverALPNH2 : Self.serverALPN)\(http2 ? " proto h2" : "")
            unique-id-format hl-%pid-%rt
            unique-id-header X-Request-Id
            log-format "\(LabLogFormats.haproxyTLS)"
            default_backend upstream

        backend upstream
            http-reuse always
            server s \(pod.upstream)\(pod.sourceAddress.map { " source \($0)" } ?? "")

        """
    }
}

/// What the pod sidecar logged about one TLS connection (the same on each of its requests).
public struct TLSLogFacts: Equatable, Sendable {
    public var client: String
    /// HAProxy's %sslv: "TLSv1.3", "TLSv1.2".
    public var version: String
    public var serverName: String?
    public var alpn: String?
    /// The client certificate's common name.
    public var peerName: String?

    public init(client: String, version: String, serverName: String?, alpn: String?, peerName: String?) {
        self.client = client; self.version = version; self.serverName = serverName; self.alpn = alpn; self.peerName = peerName
    }

    /// "TLS 1.3" for HAProxy's "TLSv1.3" (the analysis' spelling).
    public var versionName: String { version.hasPrefix("TLSv") ? "TLS " + version.dropFirst(4) : version }
}

extension LabLogFormats {
    /// The pod sidecar of the mTLS scene: `haproxy`'s fields, then the TLS connection's version,
    /// SNI, negotiated ALPN and the client certificate's CN (`-` when absent).
    public static let haproxyTLS = haproxy + #" %sslv %[ssl_fc_sni] %[ssl_fc_alpn] %[ssl_c_s_dn(CN)]"#
    /// The client sidecar of the mTLS scene: its client, the TLS connection's source, status,
    /// termination. Not truth (the first word is not `hoplab`): a diagnostic in client-proxy.out.
    public static let haproxyMeshClient = #"hoplab-client %ci:%cp %bi:%bp %ST %tsc"#

    /// The TLS facts per client connection of a log in `haproxyTLS` (the first line of each
    /// connection that has them).
    public static func parseHAProxyTLS(_ text: String) -> [String: TLSLogFacts] {
        // The TLS fields follow `haproxy`'s (no field of which holds a space).
        let n = haproxy.split(separator: " ").count
        var out: [String: TLSLogFacts] = [:]
        for line in text.split(separator: "\n") {
            guard let f = fields(line), f.count >= n + 4, out[f[1]] == nil, f[n] != "-" else { continue }
            func value(_ s: String) -> String? { s == "-" || s.isEmpty ? nil : s }
            out[f[1]] = TLSLogFacts(client: f[1], version: f[n], serverName: value(f[n + 1]), alpn: value(f[n + 2]), peerName: value(f[n + 3]))
        }
        return out
    }
}

extension LabScene {
    /// The client sidecar's directory (in the scene's directory, like the pod sidecar's).
    public var meshClientDir: URL { dir.appendingPathComponent("client-sidecar") }
    public var meshCertificatesDir: URL { dir.appendingPathComponent("tls") }

    /// Why the mTLS scene cannot run `scenario` here, or nil: it needs openssl, and load from
    /// the client namespace (wrk through the client sidecar).
    static func mtlsSkipReason(scenario: LabScenario) -> String? {
        if Subprocess.which("openssl") == nil { return "openssl is missing (Debian package openssl): the lab makes the mesh's certificates with it" }
        guard case .load = scenario.traffic, !scenario.outbound else {
            return "the mTLS scene sends wrk's load through the client sidecar: run it with `lab load`"
        }
        return nil
    }

    /// wrk's target: the client sidecar in the mTLS scene, else the pod (or the remote).
    public var loadURL: String {
        sidecar.isMTLS ? "http://127.0.0.1:\(MTLSPlan.clientPort)/" : "http://\(targetHost):80/"
    }

    /// Makes the certificates, starts the client sidecar in the client namespace (waiting until
    /// it listens) and the pod sidecar in the pod; returns the pod sidecar (the caller waits for
    /// its port).
    func startMTLSSidecars(asProxy: [String], haproxy: String) throws -> Subprocess.Background {
        guard let openssl = Subprocess.which("openssl") else { throw LabError("openssl is missing") }
        let certificates = try MeshCertificates.make(in: meshCertificatesDir, podIP: podIP, openssl: openssl, owner: 1337)
        try FileManager.default.createDirectory(at: meshClientDir, withIntermediateDirectories: true)
        chmod(meshClientDir.path, 0o777)
        let plan = MTLSPlan(pod: sidecarPlan, podTarget: "\(podIP):80", clientDir: meshClientDir.path, certificates: certificates,
                            http2: sidecar == .haproxyMTLSH2)
        let clientCfg = meshClientDir.appendingPathComponent("haproxy.cfg")
        try plan.clientConfig().write(to: clientCfg, atomically: true, encoding: .utf8)
        chmod(clientCfg.path, 0o644)
        let podCfg = sidecarDir.appendingPathComponent("haproxy.cfg")
        try plan.podConfig().write(to: podCfg, atomically: true, encoding: .utf8)
        chmod(podCfg.path, 0o644)
        let b = try start(in: client, asProxy + [haproxy, "-db", "-f", clientCfg.path], name: "client-proxy")
        let deadline = Date().addingTimeInterval(10)
        while true {
            let r = try Subprocess.run(ip, ["netns", "exec", client, "ss", "-Hltn", "sport = :\(MTLSPlan.clientPort)"], timeout: 5)
            if r.stdout.contains(":\(MTLSPlan.clientPort)") { break }
            if !b.process.isRunning || Date() > deadline {
                throw LabError("the client sidecar (haproxy) did not start in \(client): \(b.stderr) \(b.stdout)".trimmingCharacters(in: .whitespacesAndNewlines))
            }
            usleep(20_000)
        }
        log("client sidecar (haproxy, uid 1337) on 127.0.0.1:\(MTLSPlan.clientPort) in \(client): mTLS to \(plan.podTarget), SNI \(MeshCertificates.sni), ALPN \(plan.alpn)")
        return try start(in: pod, asProxy + [haproxy, "-db", "-f", podCfg.path], name: "proxy")
    }

    /// The pod sidecar's TLS facts per client connection.
    public func tlsLogFacts() -> [String: TLSLogFacts] {
        LabLogFormats.parseHAProxyTLS((try? String(contentsOf: dir.appendingPathComponent("proxy.out"), encoding: .utf8)) ?? "")
    }

    /// The mTLS scene's own differences (none for other sidecars): `MTLSCheck`.
    func mtlsDifferences(truth: [TruthRecord], analysis: ReportDocument) -> [String] {
        guard sidecar.isMTLS else { return [] }
        let facts = tlsLogFacts()
        let alpn = sidecar == .haproxyMTLSH2 ? MTLSPlan.negotiatedALPNH2 : MTLSPlan.clientALPN
        return MTLSCheck.sceneDifferences(truth: truth, facts: facts, alpn: alpn) + MTLSCheck.analysisDifferences(facts: facts, analysis: analysis)
    }
}

/// What the mTLS scene checks beyond the exact counts: that the scene was what it claims (each
/// client connection of the truth was TLS with the client certificate, the SNI and the ALPN the
/// client sidecar sends, as the pod sidecar logged them), and that the analysis' TLS facts are
/// the logged ones.
public enum MTLSCheck {
    public static func sceneDifferences(truth: [TruthRecord], facts: [String: TLSLogFacts], alpn: String = MTLSPlan.clientALPN) -> [String] {
        var d: [String] = []
        for client in Set(truth.map(\.client)).sorted() {
            guard let f = facts[client] else {
                d.append("client connection \(client): the pod sidecar logged no TLS there")
                continue
            }
            var wrong: [String] = []
            if f.serverName != MeshCertificates.sni { wrong.append("SNI \(f.serverName ?? "none")") }
            if f.alpn != alpn { wrong.append("ALPN \(f.alpn ?? "none")") }
            if f.peerName != MeshCertificates.clientName { wrong.append("client certificate \(f.peerName ?? "none")") }
            if !wrong.isEmpty { d.append("client connection \(client): the pod sidecar logged \(wrong.joined(separator: ", ")) (\(f.versionName))") }
        }
        return d
    }

    /// Differences between the TLS facts the analysis gives each encrypted downstream copy and
    /// what the pod sidecar logged for its connection (SNI, version, the negotiated ALPN among
    /// those offered); one line per connection.
    public static func analysisDifferences(facts: [String: TLSLogFacts], analysis a: ReportDocument) -> [String] {
        var found: [String: String] = [:]
        for c in a.chains {
            for h in c.hops where h.isDownstream {
                guard let f = facts[h.client], found[h.client] == nil else { continue }
                guard let tls = h.tls else {
                    found[h.client] = "the pod sidecar logged \(f.versionName), the analysis has a plaintext copy there (chain \(c.id))"
                    continue
                }
                var wrong: [String] = []
                if tls.sni != f.serverName { wrong.append("SNI \(tls.sni ?? "none") (logged \(f.serverName ?? "none"))") }
                if let v = tls.version, v != f.versionName { wrong.append("version \(v) (logged \(f.versionName))") }
                if let alpn = f.alpn, !tls.alpnOffered.contains(alpn) {
                    wrong.append("ALPN offered \(tls.alpnOffered.joined(separator: ",")) (negotiated \(alpn))")
                }
                if let chosen = tls.alpn, chosen != f.alpn { wrong.append("ALPN \(chosen) (logged \(f.alpn ?? "none"))") }
                if !wrong.isEmpty { found[h.client] = "turn \(tls.turn) (chain \(c.id)): " + wrong.joined(separator: ", ") }
            }
        }
        return found.keys.sorted().map { "client connection \($0): \(found[$0]!)" }
    }

    /// HTTP/2 between the sidecars (`haproxy-mtls-h2`): no request has an encrypted copy of its
    /// own, so instead of pairings the check is that each TLS connection the pod sidecar logged
    /// requests on is one chain, its one hop an encrypted HTTP/2 connection; that each logged
    /// request the app saw is one complete chain of its plaintext copy alone (its x-request-id,
    /// method, target and status as logged); and that nothing else is there.
    public static func multiplexedDifferences(truth: [TruthRecord], analysis a: ReportDocument) -> [String] {
        var d: [String] = []
        let forwarded = truth.filter { !PairingTruth($0).neverForwarded }
        if a.summary.logicalRequests != forwarded.count {
            d.append("logical requests: the sidecar logged \(forwarded.count) the app saw, the analysis has \(a.summary.logicalRequests)")
        }
        var carriers: [String: Int] = [:]
        var byID: [String: ReportChain] = [:]
        var others: [String] = []
        for c in a.chains {
            let h = c.hops.first
            if c.hops.count == 1, let h, h.role == HopRoles.inboundIntercepted, h.tls?.multiplexed != nil {
                carriers[h.client, default: 0] += 1
            } else if c.hops.count == 1, let h, h.role == HopRoles.inboundForwarded, c.complete, let id = h.requestId, byID[id] == nil {
                byID[id] = c
            } else {
                others.append("chain \(c.id) [\(c.hops.map(\.role).joined(separator: ", "))]\(c.complete ? "" : " incomplete")")
            }
        }
        let clients = Set(truth.map(\.client))
        for client in clients.sorted() where carriers[client] != 1 {
            d.append("client connection \(client): the pod sidecar logged requests there, the analysis has \(carriers[client] ?? 0) encrypted HTTP/2 connections there (expected 1)")
        }
        for client in carriers.keys.sorted() where !clients.contains(client) {
            d.append("encrypted HTTP/2 connection from \(client): the pod sidecar logged no request there")
        }
        var missing = 0
        for t in forwarded {
            guard let id = t.requestId, let c = byID[id] else {
                missing += 1
                if missing <= 5 { d.append("request \(t.method) \(t.target) (id \(t.requestId ?? "-")): no complete chain of its plaintext copy alone") }
                continue
            }
            let h = c.hops[0]
            if h.method != t.method || h.target != t.target {
                d.append("request id \(id): the sidecar logged \(t.method) \(t.target), the analysis has \(h.method ?? "-") \(h.target ?? "-") (chain \(c.id))")
            }
            if t.status > 0, let s = h.status, s != t.status {
                d.append("request id \(id): status \(t.status) in the sidecar's log, \(s) in the analysis")
            }
        }
        if missing > 5 { d.append("… \(missing - 5) more requests without such a chain") }
        if !others.isEmpty {
            d.append("\(others.count) other chain\(others.count == 1 ? "" : "s"): " + others.prefix(3).joined(separator: "; "))
        }
        if case let n = a.summary.orphanUpstreams, n != 0 { d.append("orphan upstream copies: expected 0, got \(n)") }
        if case let n = a.summary.incompleteChains, n != 0 { d.append("incomplete chains: expected 0, got \(n)") }
        if case let n = a.summary.unexplainedDuplicates, n != 0 { d.append("unexplained duplicates: expected 0, got \(n)") }
        return d
    }
}
