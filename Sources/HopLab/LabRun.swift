import Foundation
import HopReport
#if canImport(Glibc)
import Glibc
#endif

/// What a lab run is asked to do (the command line's flags).
public struct LabOptions: Sendable {
    public var requests = 200
    public var connections = 8
    public var identicalTargets = false
    public var sidecar: LabSidecar = .hoptrace
    public var duration = 2
    public var write: String?
    public var writeDir: String?
    public var updateExpectations = false
    public var truthDir: String?
    public var strictRules = false
    public var verbose = false
    public var keep = false
    public var waitForFile: String?
    public var namespacePrefix = "hoplab-"

    public init() {}
}

/// Runs one scenario end to end: scene, traffic, capture, analysis, truth, verdict, metrics.
public struct LabRunner {
    public var options: LabOptions
    public var ip: String
    public var python: String
    /// Analyzes a capture (capture path, rules preset, pod addresses) into the bytes of the
    /// JSON document of `hoptrace analyze --format json` (the command line passes its own).
    public var analyze: (String, String, [String]) throws -> Data

    public init(options: LabOptions, ip: String, python: String, analyze: @escaping (String, String, [String]) throws -> Data) {
        self.options = options
        self.ip = ip
        self.python = python
        self.analyze = analyze
    }

    /// Packets dropped by the kernel plus by the interface, from the capture's last line.
    public static func drops(_ stats: String) -> Int? {
        let words = stats.split(separator: " ")
        var total: Int?
        for (i, w) in words.enumerated() where w == "dropped" && i > 0 {
            if let n = Int(words[i - 2]) { total = (total ?? 0) + n }
        }
        return total
    }

    /// Builds the scene for `s`, drives it, analyzes the capture and fills `v`; tears the scene down.
    public func run(_ s: LabScenario, index: Int, verdict v: inout LabVerdict) throws {
        let o = options
        let namespacePrefix = o.namespacePrefix, verbose = o.verbose, requests = o.requests, connections = o.connections
        let identicalTargets = o.identicalTargets, sidecar = o.sidecar, duration = o.duration, keep = o.keep
        let waitForFile = o.waitForFile, strictRules = o.strictRules, truthDir = o.truthDir, write = o.write
        let writeDir = o.writeDir, updateExpectations = o.updateExpectations
        let scene = try LabScene(scenario: s, index: index, namespacePrefix: namespacePrefix, ip: ip, python: python)
        scene.verbose = verbose
        scene.requests = requests
        scene.connections = connections
        scene.identicalTargets = identicalTargets
        scene.sidecar = sidecar
        scene.duration = duration
        var keepDir = keep
        defer {
            scene.tearDown(keep: keepDir)
            if keepDir { LabScene.stderr("hoptrace lab: \(s.name): kept \(scene.dir.path)") }
        }
        try scene.build()
        try scene.startApp(in: s.outbound ? scene.remote : scene.pod, name: "app", resetOnce: s.resetOnce)
        try scene.installRules()
        try scene.startProxy()
        try scene.startCapture()
        if let f = waitForFile {
            let deadline = Date().addingTimeInterval(60)
            while !FileManager.default.fileExists(atPath: f) && Date() < deadline {
                try Subprocess.checkInterrupt()
                usleep(10_000)
            }
        }
        let records = try scene.drive()
        try scene.stopCapture()
        scene.stopProxy()
        if s.outbound && sidecar.isThirdParty { usleep(50_000) }
        let rules = s.preset ?? "none"
        v.capture = scene.captureStats
        let lost = Self.drops(scene.captureStats) ?? 0
        let document = try analyze(scene.pcapPath, rules, scene.podIPs)
        let analysis: ReportDocument
        do { analysis = try ReportDocument.decode(document) } catch {
            throw LabError("hoptrace analyze printed no report document: \(error)")
        }
        v.chains = analysis.chains.count
        let summary = analysis.summary
        var truth: [TruthRecord] = []
        if sidecar.isThirdParty {
            let joined = JoinedTruth.join(sidecar: scene.sidecarLog(), app: scene.appLog())
            truth = joined.records
            v.requests = truth.count
            if sidecar == .haproxyMTLSH2 {
                // No request has an encrypted copy of its own: no pairing to measure.
                v.differences = MTLSCheck.multiplexedDifferences(truth: truth, analysis: analysis)
                    + scene.mtlsDifferences(truth: truth, analysis: analysis)
                v.notes.append("pairing: none to measure (HTTP/2 between the sidecars: requests multiplexed inside TLS have no encrypted copy of their own); \(TextReport.plural(truth.count, "request")) logged on \(TextReport.plural(Set(truth.map(\.client)).count, "TLS connection"))")
            } else {
                let outcome = TruthVerifier(roles: s.roles, complete: s.complete, unexplainedDuplicates: s.unexplainedDuplicates)
                    .check(truth, excluded: joined.excluded, analysis: analysis)
                v.differences = outcome.differences + scene.mtlsDifferences(truth: truth, analysis: analysis)
            }
            if truth.isEmpty { v.differences.append("the sidecar logged no request") }
            // Sequential traffic still comes from the lab's client: every request it sent must be in the sidecar's log.
            let logged = Set(truth.map { "\($0.client) \($0.index)" })
            for r in records where !logged.contains("\(r.local) \(r.index)") {
                v.differences.append("request \(r.method) \(r.target) #\(r.index + 1) on \(r.local): the client sent it, the sidecar did not log it")
            }
            v.notes += joined.problems
            if sidecar == .haproxyGRPC {
                let g = scene.grpcDifferences(analysis)
                v.differences += g.differences
                v.notes.append(g.note)
            }
            // Lost bytes or unparsed streams explain missing copies better than the correlator does.
            var odd: [String] = []
            for (section, items) in analysis.counters.sorted(by: { $0.key < $1.key }) {
                for (k, n) in items.sorted(by: { $0.key < $1.key }) where ["gap", "drop", "cap", "error", "lost", "without"].contains(where: k.contains) {
                    if n > 0 { odd.append("\(section)/\(k) \(n)") }
                }
            }
            if !odd.isEmpty { v.notes.append("analysis counters: " + odd.joined(separator: ", ")) }
            if !joined.excluded.isEmpty {
                let clients = Set(joined.excluded.map(\.client))
                let inCapture = analysis.chains.filter { c in c.hops.contains { clients.contains($0.client) } }
                v.notes.append("\(joined.excluded.count) sidecar log line\(joined.excluded.count == 1 ? "" : "s") without a request left out of the truth (\(joined.excluded.map { "\($0.client) \($0.method) \($0.status) \($0.termination ?? "")" }.prefix(3).joined(separator: "; "))); the analysis has \(inCapture.count) chain\(inCapture.count == 1 ? "" : "s") on those connections\(inCapture.isEmpty ? "" : ": " + inCapture.prefix(3).map { "#\($0.id) \($0.method ?? "no request") status \($0.status.map(String.init) ?? "-") [\($0.hops.map(\.role).joined(separator: ","))]" }.joined(separator: "; "))")
            }
            v.notes += LabVerifier(scenario: s, records: [], access: [], analysis: analysis).ruleNotes()
            v.note = "\(summary.multiHopChains) multi-hop, \(summary.incompleteChains) incomplete, \(TextReport.plural(summary.orphanUpstreams, "orphan")), \(TextReport.plural(summary.unexplainedDuplicates, "unexplained duplicate")), \(TextReport.plural(truth.count, "request")) in the \(sidecar.rawValue) log"
        } else {
            let access = scene.accessLog()
            v.requests = records.count
            let verifier = LabVerifier(scenario: s, records: records, access: access, analysis: analysis)
            v.differences = verifier.differences()
            if strictRules { v.differences += verifier.ruleNotes() } else { v.notes += verifier.ruleNotes() }
            if !verifier.ambiguousMispairings.isEmpty {
                // Only identical requests in flight at once can be told apart by timing alone.
                let n = verifier.ambiguousMispairings.count
                v.notes.append("\(n) pairing\(n == 1 ? "" : "s") differ from the proxy's among identical requests in flight at once, each flagged ambiguous by the analysis; first: \(verifier.ambiguousMispairings[0])")
            }
            v.note = "\(summary.multiHopChains) multi-hop, \(summary.incompleteChains) incomplete, \(TextReport.plural(summary.unexplainedDuplicates, "unexplained duplicate")), \(TextReport.plural(access.count, "access-log line"))"
            truth = LabVerifier.truth(records: records, access: access)
        }
        v.counts = ["truth": truth.count, "chains": analysis.chains.count,
                    "logicalRequests": summary.logicalRequests, "orphanUpstreams": summary.orphanUpstreams,
                    "incompleteChains": summary.incompleteChains, "unexplainedDuplicates": summary.unexplainedDuplicates]
        if s.hasSidecar && s.complete && sidecar != .haproxyMTLSH2 {
            v.pairing = PairingMetrics.measure(analysis, truth: truth.map(PairingTruth.init))
        }
        if let d = truthDir {
            let name = "\(s.name)-\(sidecar.rawValue)-c\(connections)\(identicalTargets ? "-identical" : "")"
            let pcap = (d as NSString).appendingPathComponent("\(name).pcap")
            let jsonl = (d as NSString).appendingPathComponent("\(name).truth.jsonl")
            try? FileManager.default.removeItem(atPath: pcap)
            try FileManager.default.copyItem(atPath: scene.pcapPath, toPath: pcap)
            try JoinedTruth(records: truth).jsonl().write(toFile: jsonl, atomically: true, encoding: .utf8)
            v.files += [pcap, jsonl]
        }
        if lost > 0 {
            // Not the analyzer's fault: say so first, the counts below follow from it.
            v.differences.insert("the capture lost \(lost) packet\(lost == 1 ? "" : "s") (\(scene.captureStats)): the counts cannot be exact; run again on a less loaded machine or with fewer --connections / a shorter --duration", at: 0)
        }
        if !v.differences.isEmpty && verbose { keepDir = true }
        if let w = write {
            try? FileManager.default.removeItem(atPath: w)
            try FileManager.default.copyItem(atPath: scene.pcapPath, toPath: w)
            v.files.append(w)
        }
        if let d = writeDir {
            guard v.differences.isEmpty else {
                v.files.append("(nothing written to \(d): the scenario did not pass)")
                return
            }
            let pcap = (d as NSString).appendingPathComponent("lab-\(s.name).pcap")
            try? FileManager.default.removeItem(atPath: pcap)
            try FileManager.default.copyItem(atPath: scene.pcapPath, toPath: pcap)
            v.files.append(pcap)
            if updateExpectations {
                let e = Expectation.make(from: analysis, capture: "lab-\(s.name).pcap", rules: rules, podIPs: scene.podIPs,
                                         filter: nil, assertions: s.assertions)
                let path = (d as NSString).appendingPathComponent("lab-\(s.name).expect.json")
                try e.render().write(toFile: path, atomically: true, encoding: .utf8)
                v.files.append(path)
            }
        }
    }
}

public struct LabVerdict: Encodable {
    public init(scenario: String) { self.scenario = scenario }

    public var scenario: String
    public var sidecar = "hoptrace"
    public var skipped: String?
    public var pairing: PairingReport?
    public var counts: [String: Int] = [:]
    /// The capture's statistics line.
    public var capture = ""
    public var requests = 0
    public var chains = 0
    public var differences: [String] = []
    public var error: String?
    public var seconds = 0.0
    public var note = ""
    public var files: [String] = []
    /// Differences from ground truth that do not fail the run (the deciding rules, unless --strict-rules).
    public var notes: [String] = []
    public var ok: Bool { skipped != nil || (error == nil && differences.isEmpty) }

    private enum CodingKeys: String, CodingKey {
        case scenario, ok, requests, chains, differences, notes, seconds, files, error, sidecar, capture, skipped, counts, pairing
    }

    /// The verdict as `lab --format json` prints it (an empty capture or counts left out).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(scenario, forKey: .scenario)
        try c.encode(ok, forKey: .ok)
        try c.encode(requests, forKey: .requests)
        try c.encode(chains, forKey: .chains)
        try c.encode(differences, forKey: .differences)
        try c.encode(notes, forKey: .notes)
        try c.encode((seconds * 1000).rounded() / 1000, forKey: .seconds)
        try c.encode(files, forKey: .files)
        try c.encodeIfPresent(error, forKey: .error)
        try c.encode(sidecar, forKey: .sidecar)
        if !capture.isEmpty { try c.encode(capture, forKey: .capture) }
        try c.encodeIfPresent(skipped, forKey: .skipped)
        if !counts.isEmpty { try c.encode(counts, forKey: .counts) }
        try c.encodeIfPresent(pairing, forKey: .pairing)
    }
}

/// Compares an analysis with the ground truth: the client's records and the proxy's access log.
public final class LabVerifier {
    /// Pairings below this confidence were flagged by the analysis as ambiguous.
    public static let ambiguousBelow = 0.9
    /// Pairings that differ from the proxy's but that the analysis flagged as ambiguous.
    public var ambiguousMispairings: [String] = []

    public init(scenario: LabScenario, records: [ClientRecord], access: [ProxyAccessRecord], analysis: ReportDocument) {
        self.scenario = scenario
        self.records = records
        self.access = access
        self.analysis = analysis
    }

    public let scenario: LabScenario
    public let records: [ClientRecord]
    public let access: [ProxyAccessRecord]
    public let analysis: ReportDocument

    /// A value as the messages show it (null when absent).
    public static func str<T>(_ v: T?) -> String { v.map { "\($0)" } ?? "null" }

    /// The access log's HTTP lines by downstream client, in order.
    static func byClient(_ access: [ProxyAccessRecord]) -> [String: [ProxyAccessRecord]] {
        var out: [String: [ProxyAccessRecord]] = [:]
        for a in access where a.protocol == "http" { out[str(a.downstream?.client), default: []].append(a) }
        return out
    }

    /// hoptrace's proxy: the truth is the client's records (the downstream tuple and index) and
    /// the access log (the upstream local address of the same request, in order per client).
    public static func truth(records: [ClientRecord], access: [ProxyAccessRecord]) -> [TruthRecord] {
        let accessByClient = byClient(access)
        return records.sorted { ($0.conn, $0.index) < ($1.conn, $1.index) }.map { r in
            let logged = accessByClient[r.local] ?? []
            let a = r.index < logged.count ? logged[r.index] : nil
            let up = a?.upstream?.local
            return TruthRecord(client: r.local, index: r.index, requestId: nil, upstream: up, method: r.method, target: r.target, status: r.status)
        }
    }

    /// The rule the kernel used for each hop role in this scenario, from what the lab knows (the
    /// owner of each socket: the client and app are not uid 1337, the proxy is).
    public var groundTruthRules: [String: (rule: String, why: String)] {
        switch scenario.preset {
        case "istio-2018":
            return [
                "inbound-intercepted": ("nat/ISTIO_REDIRECT rule 1", "PREROUTING → ISTIO_INBOUND --dport 80 → ISTIO_REDIRECT"),
                "inbound-forwarded": ("nat/ISTIO_OUTPUT rule 2", "the proxy's socket is uid 1337: ISTIO_OUTPUT rule 2 RETURNs it"),
                "outbound-redirected": ("nat/ISTIO_REDIRECT rule 1", "the app is not uid/gid 1337: ISTIO_OUTPUT rule 5 → ISTIO_REDIRECT"),
                "outbound-forwarded": ("nat/ISTIO_OUTPUT rule 2", "the proxy's socket is uid 1337: ISTIO_OUTPUT rule 2 RETURNs it"),
            ]
        case "istio-current":
            return [
                "inbound-intercepted": ("nat/ISTIO_IN_REDIRECT rule 1", "PREROUTING → ISTIO_INBOUND → ISTIO_IN_REDIRECT"),
                "inbound-forwarded": ("nat/ISTIO_OUTPUT rule 1", "from 127.0.0.6 on lo: ISTIO_OUTPUT rule 1 RETURNs it"),
            ]
        default:
            return [:]
        }
    }

    /// Hops whose deciding rule is not the one the kernel used, one line per role.
    public func ruleNotes() -> [String] {
        var counts: [String: (got: [String: Int], total: Int)] = [:]
        let truth = groundTruthRules
        let connections = analysis.connectionsByID
        for c in analysis.chains {
            for h in c.hops {
                let role = h.role
                guard let t = truth[role] else { continue }
                let got = Self.str(analysis.ruleEvaluation(of: h, in: connections)?.decidingRule)
                var e = counts[role] ?? ([:], 0)
                e.total += 1
                if got != t.rule { e.got[got, default: 0] += 1 }
                counts[role] = e
            }
        }
        var notes: [String] = []
        for role in counts.keys.sorted() {
            let e = counts[role]!
            for (got, n) in e.got.sorted(by: { $0.key < $1.key }) {
                notes.append("deciding rule of \(n) of \(e.total) \(role) hop\(e.total == 1 ? "" : "s"): the kernel used \(truth[role]!.rule) (\(truth[role]!.why)), the analysis names \(got)")
            }
        }
        return notes
    }

    public func differences() -> [String] {
        var diffs: [String] = []
        // Chains by the client endpoint of their first hop, in the order of their requests.
        var byClient: [String: [ReportChain]] = [:]
        for c in analysis.chains {
            byClient[Self.str(c.hops.first?.client), default: []].append(c)
        }
        for k in byClient.keys {
            byClient[k]!.sort { ($0.hops.first?.requestStartNs ?? 0) < ($1.hops.first?.requestStartNs ?? 0) }
        }
        let accessByClient = Self.byClient(access)
        var used = Set<String>()
        let conns = Dictionary(grouping: records, by: \.local)
        for local in conns.keys.sorted(by: { conns[$0]![0].conn < conns[$1]![0].conn }) {
            let sent = conns[local]!.sorted { $0.index < $1.index }
            used.insert(local)
            let found = byClient[local] ?? []
            let logged = accessByClient[local] ?? []
            let what = sent.map { "\($0.method) \($0.target)" }.joined(separator: ", ")
            if found.count != sent.count {
                diffs.append("client connection \(local): sent \(sent.count) request\(sent.count == 1 ? "" : "s") (\(what)), the analysis has \(found.count) chain\(found.count == 1 ? "" : "s") starting there\(found.isEmpty ? "" : " (\(found.map { "\(Self.str($0.method)) \(Self.str($0.target))" }.joined(separator: ", ")))")")
            }
            if scenario.hasSidecar && logged.count != sent.count {
                diffs.append("client connection \(local): the proxy's access log has \(logged.count) request\(logged.count == 1 ? "" : "s") from it, the client sent \(sent.count)")
            }
            for (i, r) in sent.enumerated() where i < found.count {
                let label = "request \(r.method) \(r.target) #\(r.index + 1) on \(local)"
                diffs += chainDifferences(found[i], r, access: i < logged.count ? logged[i] : nil, label: label)
            }
        }
        for (k, cs) in byClient.sorted(by: { $0.key < $1.key }) where !used.contains(k) {
            for c in cs {
                let roles = c.hops.map(\.role)
                diffs.append("unexplained chain \(c.id): \(Self.str(c.method)) \(Self.str(c.target)) from \(k) [\(roles.joined(separator: ", "))]: the client sent nothing from there")
            }
        }
        let s = analysis.summary
        let dup = s.unexplainedDuplicates
        if dup != scenario.unexplainedDuplicates {
            diffs.append("unexplained duplicates: expected \(scenario.unexplainedDuplicates), got \(dup)")
        }
        if s.orphanUpstreams != 0 { diffs.append("orphan upstream copies: expected 0, got \(s.orphanUpstreams)") }
        return diffs
    }

    public func chainDifferences(_ c: ReportChain, _ r: ClientRecord, access a: ProxyAccessRecord?, label: String) -> [String] {
        var d: [String] = []
        let hops = c.hops
        if Self.str(c.method) != r.method || Self.str(c.target) != r.target {
            d.append("\(label): the analysis says \(Self.str(c.method)) \(Self.str(c.target))")
        }
        if c.status != r.status { d.append("\(label): status expected \(r.status) (client), got \(Self.str(c.status))") }
        let roles = hops.map(\.role)
        if roles != scenario.roles {
            d.append("\(label): hop roles expected \(scenario.roles.joined(separator: ", ")), got \(roles.joined(separator: ", "))")
        }
        if c.complete != scenario.complete {
            d.append("\(label): complete expected \(scenario.complete), got \(c.complete)")
        }
        if !scenario.complete {
            if (c.advice ?? "").isEmpty { d.append("\(label): an incomplete chain without advice") }
            if Self.str(c.missing) != "inbound-forwarded" { d.append("\(label): missing hop expected inbound-forwarded, got \(Self.str(c.missing))") }
        }
        for (j, h) in hops.enumerated() where analysis.ruleEvaluation(of: h)?.decidingRule == nil && h.rule.isEmpty && scenario.hasSidecar {
            d.append("\(label): hop \(j + 1) names no rule")
        }
        guard scenario.hasSidecar else { return d }
        guard let a else {
            d.append("\(label): not in the proxy's access log")
            return d
        }
        if Self.str(a.method) != r.method || Self.str(a.target) != r.target {
            d.append("\(label): the access log says \(Self.str(a.method)) \(Self.str(a.target))")
        }
        if a.status != r.status { d.append("\(label): the access log's status is \(Self.str(a.status)), the client got \(r.status)") }
        let upstream = hops.filter(\.isUpstream)
        let attempts = a.attempts ?? 0
        if scenario.complete {
            if upstream.count != attempts {
                d.append("\(label): \(upstream.count) upstream hop\(upstream.count == 1 ? "" : "s") in the chain, the proxy made \(attempts) attempt\(attempts == 1 ? "" : "s")")
            }
            let local = Self.str(a.upstream?.local)
            if let last = upstream.last, last.client != local {
                let confidence = c.confidence
                let line = "\(label): paired with the upstream copy from \(last.client), the proxy sent it from \(local)"
                if confidence < Self.ambiguousBelow {
                    // Identical requests in flight at once: the analysis said it could not tell.
                    ambiguousMispairings.append(line + " (the analysis marked this pairing ambiguous: confidence \(String(format: "%.2f", confidence)))")
                } else {
                    d.append(line + " (confidence \(String(format: "%.2f", confidence)))")
                }
            }
            if scenario.resetOnce && attempts != 2 { d.append("\(label): the proxy made \(attempts) attempts, the scenario expects 2 (one retry)") }
            if c.retries != max(0, attempts - 1) {
                d.append("\(label): retries expected \(max(0, attempts - 1)), got \(c.retries)")
            }
        }
        return d
    }
}


extension LabRunner {
    /// A reason the lab cannot run here (root, iproute2, iptables, python3, namespaces).
    public struct PreflightError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Checks what the lab needs and finds `ip` and `python3`.
    public static func preflight() throws(PreflightError) -> (ip: String, python: String) {
        guard geteuid() == 0 else {
            throw PreflightError(description: "lab needs root: it creates network namespaces and veth pairs, installs iptables rules inside them and captures live (run it as root, e.g. sudo hoptrace lab …)")
        }
        guard let ip = Subprocess.which("ip") else { throw PreflightError(description: "lab needs `ip`: install the Debian package iproute2") }
        guard Subprocess.which("iptables-restore") != nil else { throw PreflightError(description: "lab needs iptables-restore: install the Debian package iptables") }
        guard let python = Subprocess.which("python3") else { throw PreflightError(description: "lab needs python3 (its client and built-in app): install the Debian package python3") }
        guard let probe = try? Subprocess.run(ip, ["netns", "list"], timeout: 10) else {
            throw PreflightError(description: "lab cannot run `ip netns list`")
        }
        if probe.status != 0 { throw PreflightError(description: "lab cannot list network namespaces: \(probe.stderr.trimmingCharacters(in: .whitespacesAndNewlines))") }
        return (ip, python)
    }

    /// An interruption (SIGINT, SIGTERM, SIGHUP) during a scenario, after the lab removed what
    /// it made.
    public struct Stopped: Error, CustomStringConvertible {
        public var scenario: String
        public var interruption: Interrupted
        public var description: String { interruption.description }
    }

    /// Runs the scenarios in turn (each skipped with its reason when its sidecar is missing),
    /// handing each verdict to `onVerdict` as it is made.
    public func run(_ scenarios: [LabScenario], onVerdict: (LabVerdict) -> Void) throws(Stopped) -> [LabVerdict] {
        var verdicts: [LabVerdict] = []
        for s in scenarios {
            let index = LabScenario.all.firstIndex { $0.name == s.name }!
            let started = Date()
            var v = LabVerdict(scenario: s.name)
            v.sidecar = options.sidecar.rawValue
            if let reason = LabScene.skipReason(scenario: s, sidecar: options.sidecar) {
                v.skipped = reason
            } else {
                do {
                    try run(s, index: index, verdict: &v)
                } catch let e as Interrupted {
                    throw Stopped(scenario: s.name, interruption: e)
                } catch {
                    v.error = "\(error)"
                }
                v.seconds = Date().timeIntervalSince(started)
            }
            onVerdict(v)
            verdicts.append(v)
        }
        return verdicts
    }
}
