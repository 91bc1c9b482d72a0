import ArgumentParser
import Foundation
import HopLab
import HopReport
#if canImport(Glibc)
import Glibc
#endif

struct Lab: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Build a sidecar scene in network namespaces, capture it, and check the analysis against ground truth.",
        discussion: """
        Each scenario builds namespaces for a client, the pod and (outbound) a remote service, \
        joined by veth pairs in 198.18.10.0/24 … 198.18.17.0/24; runs the app on :80 in the pod \
        (nginx when /usr/sbin/nginx is installed, else a built-in Python server), installs the \
        scenario's interception rules in the pod with hoptrace's rule installer, starts \
        `hoptrace proxy` (as uid 1337), captures with hoptrace's own capture engine inside the \
        pod (on `any`, or on one interface), drives known traffic, and analyzes the capture. \
        The analysis is compared with what the client sent (methods, targets, order, local \
        ports, statuses) and with the proxy's access log (downstream client ↔ upstream local \
        address, status, attempts). Exit 0 when every request is found with the right hops, \
        roles and pairing and nothing is unexplained that should not be; 1 with a list of the \
        differences otherwise; 2 without root or the tools it needs.

        Everything it makes (namespaces named hoplab-PID-…, processes, temp files) is removed on \
        exit, on error and on SIGINT/SIGTERM; namespaces left by a crashed run are removed by \
        the next one.

        Examples:
          hoptrace lab --list
          hoptrace lab seed
          hoptrace lab load --requests 1000 --connections 16
          hoptrace lab --all --format json
          hoptrace lab --all --write-dir Captures --update-expectations
        """)

    @Argument(help: ArgumentHelp("The scenario to run (see --list).", valueName: "scenario"))
    var scenario: String?

    @Flag(name: .long, help: "Run every scenario.")
    var all = false

    @Flag(name: .long, help: "Check the analysis against ground truth (what the lab always does; accepted for scripts that ask for it).")
    var verify = false

    @Flag(name: .long, help: "List the scenarios.")
    var list = false

    @Option(name: .long, help: "load: requests to send.")
    var requests: Int = 200

    @Option(name: .long, help: "load: concurrent keep-alive connections.")
    var connections: Int = 8

    @Flag(name: .customLong("identical-targets"), help: "load: send identical requests (HEAD /, GET /) instead of one target per request, so pairing must rely on timing alone.")
    var identicalTargets = false

    @Option(name: .long, help: "The sidecar: hoptrace (its own proxy), haproxy or nginx (third-party: truth from their logs joined with the app's by x-request-id; load is driven by wrk).")
    var sidecar: LabSidecar = .hoptrace

    @Option(name: .long, help: "Third-party sidecars under load: wrk's duration in seconds.")
    var duration: Int = 2

    @Option(name: .customLong("truth-dir"), help: ArgumentHelp("Keep each run's capture and truth as DIR/NAME.pcap and DIR/NAME.truth.jsonl (NAME: scenario-sidecar-cN[-identical]).", valueName: "dir"))
    var truthDir: String?

    @Option(name: .long, help: "Output: text or json (the verdict).")
    var format: Check.CheckFormat = .text

    @Option(name: .long, help: ArgumentHelp("Keep the capture of the (single) scenario in this file.", valueName: "file"))
    var write: String?

    @Option(name: .customLong("write-dir"), help: ArgumentHelp("Keep each passing scenario's capture as DIR/lab-NAME.pcap.", valueName: "dir"))
    var writeDir: String?

    @Flag(name: .customLong("update-expectations"), help: "With --write-dir: also write DIR/lab-NAME.expect.json from the (verified) analysis.")
    var updateExpectations = false

    @Flag(name: .customLong("strict-rules"), help: "Fail when a hop's deciding rule is not the rule the kernel used (by default a note).")
    var strictRules = false

    @Flag(name: [.short, .long], help: "Say what is being built and started.")
    var verbose = false

    @Flag(name: .long, help: "Keep the temp directory (logs, access log, capture) of each run.")
    var keep = false

    /// Tests: wait (at most 60 s) until this file exists before sending the traffic.
    @Option(name: .customLong("wait-for"), help: .hidden)
    var waitForFile: String?

    @Option(name: .customLong("namespace-prefix"), help: .hidden)
    var namespacePrefix: String = "hoplab-"

    func validate() throws {
        if list { return }
        if all && scenario != nil { throw ValidationError("give a SCENARIO or --all, not both") }
        if !all && scenario == nil { throw ValidationError("give a SCENARIO or --all (--list shows them)") }
        if let s = scenario, LabScenario.named(s) == nil {
            throw ValidationError("unknown scenario '\(s)' (one of: \(LabScenario.all.map(\.name).joined(separator: ", ")))")
        }
        if write != nil && all { throw ValidationError("--write keeps one capture: with --all use --write-dir DIR") }
        if updateExpectations && writeDir == nil { throw ValidationError("--update-expectations needs --write-dir DIR") }
        if !(1...100_000).contains(requests) { throw ValidationError("--requests must be between 1 and 100000") }
        if !(1...30).contains(duration) { throw ValidationError("--duration must be between 1 and 30 seconds") }
        if !(1...256).contains(connections) { throw ValidationError("--connections must be between 1 and 256") }
        if !namespacePrefix.hasPrefix("hoplab") || namespacePrefix.contains("/") {
            throw ValidationError("--namespace-prefix must start with hoplab")
        }
    }

    func run() throws {
        if list {
            for s in LabScenario.all { Output.stdout.line("\(s.name.padding(toLength: 14, withPad: " ", startingAt: 0)) \(s.summary)") }
            return
        }
        guard geteuid() == 0 else {
            throw InputError(message: "lab needs root: it creates network namespaces and veth pairs, installs iptables rules inside them and captures live (run it as root, e.g. sudo hoptrace lab …)")
        }
        guard let ip = Subprocess.which("ip") else { throw InputError(message: "lab needs `ip`: install the Debian package iproute2") }
        guard Subprocess.which("iptables-restore") != nil else { throw InputError(message: "lab needs iptables-restore: install the Debian package iptables") }
        guard let python = Subprocess.which("python3") else { throw InputError(message: "lab needs python3 (its client and built-in app): install the Debian package python3") }
        let probe = try Subprocess.run(ip, ["netns", "list"], timeout: 10)
        if probe.status != 0 { throw InputError(message: "lab cannot list network namespaces: \(probe.stderr.trimmingCharacters(in: .whitespacesAndNewlines))") }

        signal(SIGINT) { labInterruptSignal = $0 }
        signal(SIGTERM) { labInterruptSignal = $0 }
        signal(SIGHUP) { labInterruptSignal = $0 }

        let stale = LabScene.removeStale(namespacePrefix: namespacePrefix, ip: ip)
        if !stale.isEmpty { Output.stderr.line("hoptrace lab: removed \(stale.count) namespace\(stale.count == 1 ? "" : "s") left by an earlier run: \(stale.joined(separator: ", "))") }

        if let d = writeDir { try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        if let d = truthDir { try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        let chosen = all ? LabScenario.all : [LabScenario.named(scenario!)!]
        var verdicts: [LabVerdict] = []
        for s in chosen {
            let index = LabScenario.all.firstIndex { $0.name == s.name }!
            let started = Date()
            var v = LabVerdict(scenario: s.name)
            v.sidecar = sidecar.rawValue
            if let reason = LabScene.skipReason(scenario: s, sidecar: sidecar) {
                v.skipped = reason
                if format == .text { printVerdict(v) }
                verdicts.append(v)
                continue
            }
            do {
                try runScenario(s, index: index, ip: ip, python: python, verdict: &v)
            } catch let e as Interrupted {
                Output.stderr.line("hoptrace lab: \(s.name): \(e); everything the lab made was removed")
                throw ExitCode(130)
            } catch {
                v.error = "\(error)"
            }
            v.seconds = Date().timeIntervalSince(started)
            if format == .text { printVerdict(v) }
            verdicts.append(v)
        }
        let failed = verdicts.filter { !$0.ok }
        if format == .json {
            let doc: [String: Any] = ["ok": failed.isEmpty, "scenarios": verdicts.map(\.json)]
            let data = try JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys, .withoutEscapingSlashes])
            Output.stdout.line(String(decoding: data, as: UTF8.self))
        } else if verdicts.count > 1 {
            Output.stdout.line(failed.isEmpty
                ? "lab: all \(verdicts.count) scenarios pass"
                : "lab: \(failed.count) of \(verdicts.count) scenarios fail: \(failed.map(\.scenario).joined(separator: ", "))")
        }
        Output.stdout.flush()
        if !failed.isEmpty { throw ExitCode(ExitStatus.differences) }
    }

    /// Packets dropped by the kernel plus by the interface, from the capture's last line.
    static func drops(_ stats: String) -> Int? {
        let words = stats.split(separator: " ")
        var total: Int?
        for (i, w) in words.enumerated() where w == "dropped" && i > 0 {
            if let n = Int(words[i - 2]) { total = (total ?? 0) + n }
        }
        return total
    }

    func printVerdict(_ v: LabVerdict) {
        let t = String(format: "%.1f s", v.seconds)
        let name = v.sidecar == LabSidecar.hoptrace.rawValue ? v.scenario : "\(v.scenario) (\(v.sidecar))"
        if let reason = v.skipped {
            Output.stdout.line("lab \(name): skipped: \(reason)")
            Output.stdout.flush()
            return
        }
        if let e = v.error {
            Output.stdout.line("lab \(name): error: \(e) (\(t))")
        } else if v.differences.isEmpty {
            Output.stdout.line("lab \(name): ok — \(v.requests) request\(v.requests == 1 ? "" : "s"), \(v.chains) chain\(v.chains == 1 ? "" : "s"), \(v.note) (\(t))")
        } else {
            Output.stdout.line("lab \(name): \(v.differences.count) difference\(v.differences.count == 1 ? "" : "s") from ground truth (\(t))")
            for d in v.differences.prefix(30) { Output.stdout.line("  \(d)") }
            if v.differences.count > 30 { Output.stdout.line("  … \(v.differences.count - 30) more") }
        }
        if let p = v.pairing { for l in p.textLines() { Output.stdout.line("  " + l) } }
        for n in v.notes { Output.stdout.line("  note: \(n)") }
        for f in v.files { Output.stdout.line("  wrote \(f)") }
        Output.stdout.flush()
    }

    func runScenario(_ s: LabScenario, index: Int, ip: String, python: String, verdict v: inout LabVerdict) throws {
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
            if keepDir { Output.stderr.line("hoptrace lab: \(s.name): kept \(scene.dir.path)") }
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
        if let drops = Self.drops(scene.captureStats), drops > 0 { v.notes.append("the capture lost packets: \(scene.captureStats)") }
        let analysis = try Check.analyzeJSON(capture: scene.pcapPath, rules: rules, podIPs: scene.podIPs, filter: nil)
        let typed = try LabAnalysis.decode(JSONSerialization.data(withJSONObject: analysis))
        v.chains = typed.chains.count
        let summary = analysis["summary"] as? [String: Any] ?? [:]
        var truth: [TruthRecord] = []
        if sidecar.isThirdParty {
            let joined = JoinedTruth.join(sidecar: scene.sidecarLog(), app: scene.appLog())
            truth = joined.records
            v.requests = truth.count
            let outcome = TruthVerifier(roles: s.roles, complete: s.complete, unexplainedDuplicates: s.unexplainedDuplicates)
                .check(truth, excluded: joined.excluded, analysis: typed)
            v.differences = outcome.differences
            if truth.isEmpty { v.differences.append("the sidecar logged no request") }
            // Sequential traffic still comes from the lab's client: every request it sent must be in the sidecar's log.
            let logged = Set(truth.map { "\($0.client) \($0.index)" })
            for r in records where !logged.contains("\(r.local) \(r.index)") {
                v.differences.append("request \(r.method) \(r.target) #\(r.index + 1) on \(r.local): the client sent it, the sidecar did not log it")
            }
            v.notes += joined.problems
            // Lost bytes or unparsed streams explain missing copies better than the correlator does.
            var odd: [String] = []
            for (section, items) in (analysis["counters"] as? [String: [String: Any]] ?? [:]).sorted(by: { $0.key < $1.key }) {
                for (k, n) in items.sorted(by: { $0.key < $1.key }) where ["gap", "drop", "cap", "error", "lost", "without"].contains(where: k.contains) {
                    if let n = n as? Int, n > 0 { odd.append("\(section)/\(k) \(n)") }
                }
            }
            if !odd.isEmpty { v.notes.append("analysis counters: " + odd.joined(separator: ", ")) }
            if !joined.excluded.isEmpty {
                let clients = Set(joined.excluded.map(\.client))
                let inCapture = typed.chains.filter { c in c.hops.contains { clients.contains($0.client) } }
                v.notes.append("\(joined.excluded.count) sidecar log line\(joined.excluded.count == 1 ? "" : "s") without a request left out of the truth (\(joined.excluded.map { "\($0.client) \($0.method) \($0.status) \($0.termination ?? "")" }.prefix(3).joined(separator: "; "))); the analysis has \(inCapture.count) chain\(inCapture.count == 1 ? "" : "s") on those connections\(inCapture.isEmpty ? "" : ": " + inCapture.prefix(3).map { "#\($0.id) \($0.method ?? "no request") status \($0.status.map(String.init) ?? "-") [\($0.hops.map(\.role).joined(separator: ","))]" }.joined(separator: "; "))")
            }
            v.notes += LabVerifier(scenario: s, records: [], access: [], analysis: analysis).ruleNotes()
            v.note = "\(summary["multiHopChains"] ?? 0) multi-hop, \(summary["incompleteChains"] ?? 0) incomplete, \(summary["orphanUpstreams"] ?? 0) orphan(s), \(summary["unexplainedDuplicates"] ?? 0) unexplained duplicate(s), \(truth.count) request(s) in the \(sidecar.rawValue) log"
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
            v.note = "\(summary["multiHopChains"] ?? 0) multi-hop, \(summary["incompleteChains"] ?? 0) incomplete, \(summary["unexplainedDuplicates"] ?? 0) unexplained duplicate(s), \(access.count) access-log line(s)"
            truth = LabVerifier.truth(records: records, access: access)
        }
        v.counts = ["truth": truth.count, "chains": typed.chains.count,
                    "logicalRequests": typed.summary.logicalRequests ?? -1, "orphanUpstreams": typed.summary.orphanUpstreams ?? -1,
                    "incompleteChains": typed.summary.incompleteChains ?? -1, "unexplainedDuplicates": typed.summary.unexplainedDuplicates ?? -1]
        if s.hasSidecar && s.complete {
            v.pairing = PairingMetrics.measure(typed, truth: truth.map(PairingTruth.init))
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

struct LabVerdict {
    var scenario: String
    var sidecar = "hoptrace"
    var skipped: String?
    var pairing: PairingReport?
    var counts: [String: Int] = [:]
    /// The capture's statistics line.
    var capture = ""
    var requests = 0
    var chains = 0
    var differences: [String] = []
    var error: String?
    var seconds = 0.0
    var note = ""
    var files: [String] = []
    /// Differences from ground truth that do not fail the run (the deciding rules, unless --strict-rules).
    var notes: [String] = []
    var ok: Bool { skipped != nil || (error == nil && differences.isEmpty) }

    var json: [String: Any] {
        var o: [String: Any] = ["scenario": scenario, "ok": ok, "requests": requests, "chains": chains,
                                "differences": differences, "notes": notes, "seconds": (seconds * 1000).rounded() / 1000, "files": files]
        if let error { o["error"] = error }
        o["sidecar"] = sidecar
        if !capture.isEmpty { o["capture"] = capture }
        if let skipped { o["skipped"] = skipped }
        if !counts.isEmpty { o["counts"] = counts }
        if let pairing, let data = try? JSONEncoder().encode(pairing), let p = try? JSONSerialization.jsonObject(with: data) {
            o["pairing"] = p
        }
        return o
    }
}

/// Compares an analysis with the ground truth: the client's records and the proxy's access log.
final class LabVerifier {
    /// Pairings below this confidence were flagged by the analysis as ambiguous.
    static let ambiguousBelow = 0.9
    /// Pairings that differ from the proxy's but that the analysis flagged as ambiguous.
    var ambiguousMispairings: [String] = []

    init(scenario: LabScenario, records: [ClientRecord], access: [[String: Any]], analysis: [String: Any]) {
        self.scenario = scenario
        self.records = records
        self.access = access
        self.analysis = analysis
    }

    let scenario: LabScenario
    let records: [ClientRecord]
    let access: [[String: Any]]
    let analysis: [String: Any]

    static func str(_ v: Any?) -> String { (v as? String) ?? (v.map { "\($0)" } ?? "null") }

    /// hoptrace's proxy: the truth is the client's records (the downstream tuple and index) and
    /// the access log (the upstream local address of the same request, in order per client).
    static func truth(records: [ClientRecord], access: [[String: Any]]) -> [TruthRecord] {
        var accessByClient: [String: [[String: Any]]] = [:]
        for a in access where str(a["protocol"]) == "http" {
            accessByClient[str((a["downstream"] as? [String: Any])?["client"]), default: []].append(a)
        }
        return records.sorted { ($0.conn, $0.index) < ($1.conn, $1.index) }.map { r in
            let logged = accessByClient[r.local] ?? []
            let a = r.index < logged.count ? logged[r.index] : nil
            let up = (a?["upstream"] as? [String: Any])?["local"] as? String
            return TruthRecord(client: r.local, index: r.index, requestId: nil, upstream: up, method: r.method, target: r.target, status: r.status)
        }
    }

    /// The rule the kernel used for each hop role in this scenario, from what the lab knows (the
    /// owner of each socket: the client and app are not uid 1337, the proxy is).
    var groundTruthRules: [String: (rule: String, why: String)] {
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
    func ruleNotes() -> [String] {
        var counts: [String: (got: [String: Int], total: Int)] = [:]
        let truth = groundTruthRules
        for c in analysis["chains"] as? [[String: Any]] ?? [] {
            for h in c["hops"] as? [[String: Any]] ?? [] {
                let role = Self.str(h["role"])
                guard let t = truth[role] else { continue }
                let got = Self.str((h["ruleEvaluation"] as? [String: Any])?["decidingRule"])
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

    func differences() -> [String] {
        var diffs: [String] = []
        let chains = analysis["chains"] as? [[String: Any]] ?? []
        // Chains by the client endpoint of their first hop, in the order of their requests.
        var byClient: [String: [[String: Any]]] = [:]
        for c in chains {
            let first = (c["hops"] as? [[String: Any]])?.first ?? [:]
            byClient[Self.str(first["client"]), default: []].append(c)
        }
        for k in byClient.keys {
            byClient[k]!.sort {
                let a = (($0["hops"] as? [[String: Any]])?.first?["requestStartNs"] as? NSNumber)?.int64Value ?? 0
                let b = (($1["hops"] as? [[String: Any]])?.first?["requestStartNs"] as? NSNumber)?.int64Value ?? 0
                return a < b
            }
        }
        var accessByClient: [String: [[String: Any]]] = [:]
        for a in access where Self.str(a["protocol"]) == "http" {
            accessByClient[Self.str((a["downstream"] as? [String: Any])?["client"]), default: []].append(a)
        }
        var used = Set<String>()
        let conns = Dictionary(grouping: records, by: \.local)
        for local in conns.keys.sorted(by: { conns[$0]![0].conn < conns[$1]![0].conn }) {
            let sent = conns[local]!.sorted { $0.index < $1.index }
            used.insert(local)
            let found = byClient[local] ?? []
            let logged = accessByClient[local] ?? []
            let what = sent.map { "\($0.method) \($0.target)" }.joined(separator: ", ")
            if found.count != sent.count {
                diffs.append("client connection \(local): sent \(sent.count) request\(sent.count == 1 ? "" : "s") (\(what)), the analysis has \(found.count) chain\(found.count == 1 ? "" : "s") starting there\(found.isEmpty ? "" : " (\(found.map { "\(Self.str($0["method"])) \(Self.str($0["target"]))" }.joined(separator: ", ")))")")
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
                let roles = ((c["hops"] as? [[String: Any]]) ?? []).map { Self.str($0["role"]) }
                diffs.append("unexplained chain \(Self.str(c["id"])): \(Self.str(c["method"])) \(Self.str(c["target"])) from \(k) [\(roles.joined(separator: ", "))]: the client sent nothing from there")
            }
        }
        let s = analysis["summary"] as? [String: Any] ?? [:]
        let dup = (s["unexplainedDuplicates"] as? Int) ?? -1
        if dup != scenario.unexplainedDuplicates {
            diffs.append("unexplained duplicates: expected \(scenario.unexplainedDuplicates), got \(dup)")
        }
        if let o = s["orphanUpstreams"] as? Int, o != 0 { diffs.append("orphan upstream copies: expected 0, got \(o)") }
        return diffs
    }

    func chainDifferences(_ c: [String: Any], _ r: ClientRecord, access a: [String: Any]?, label: String) -> [String] {
        var d: [String] = []
        let hops = c["hops"] as? [[String: Any]] ?? []
        if Self.str(c["method"]) != r.method || Self.str(c["target"]) != r.target {
            d.append("\(label): the analysis says \(Self.str(c["method"])) \(Self.str(c["target"]))")
        }
        if (c["status"] as? Int) != r.status { d.append("\(label): status expected \(r.status) (client), got \(Self.str(c["status"]))") }
        let roles = hops.map { Self.str($0["role"]) }
        if roles != scenario.roles {
            d.append("\(label): hop roles expected \(scenario.roles.joined(separator: ", ")), got \(roles.joined(separator: ", "))")
        }
        if (c["complete"] as? Bool) != scenario.complete {
            d.append("\(label): complete expected \(scenario.complete), got \(Self.str(c["complete"]))")
        }
        if !scenario.complete {
            if Self.str(c["advice"]).isEmpty || c["advice"] is NSNull { d.append("\(label): an incomplete chain without advice") }
            if Self.str(c["missing"]) != "inbound-forwarded" { d.append("\(label): missing hop expected inbound-forwarded, got \(Self.str(c["missing"]))") }
        }
        for (j, h) in hops.enumerated() where (h["ruleEvaluation"] as? [String: Any])?["decidingRule"] == nil && scenario.hasSidecar {
            if !(h["rule"] is String) { d.append("\(label): hop \(j + 1) names no rule") }
        }
        guard scenario.hasSidecar else { return d }
        guard let a else {
            d.append("\(label): not in the proxy's access log")
            return d
        }
        if Self.str(a["method"]) != r.method || Self.str(a["target"]) != r.target {
            d.append("\(label): the access log says \(Self.str(a["method"])) \(Self.str(a["target"]))")
        }
        if (a["status"] as? Int) != r.status { d.append("\(label): the access log's status is \(Self.str(a["status"])), the client got \(r.status)") }
        let upstream = hops.filter { ["inbound-forwarded", "outbound-forwarded"].contains(Self.str($0["role"])) }
        let attempts = a["attempts"] as? Int ?? 0
        if scenario.complete {
            if upstream.count != attempts {
                d.append("\(label): \(upstream.count) upstream hop\(upstream.count == 1 ? "" : "s") in the chain, the proxy made \(attempts) attempt\(attempts == 1 ? "" : "s")")
            }
            let local = Self.str((a["upstream"] as? [String: Any])?["local"])
            if let last = upstream.last, Self.str(last["client"]) != local {
                let confidence = (c["confidence"] as? NSNumber)?.doubleValue ?? 1
                let line = "\(label): paired with the upstream copy from \(Self.str(last["client"])), the proxy sent it from \(local)"
                if confidence < Self.ambiguousBelow {
                    // Identical requests in flight at once: the analysis said it could not tell.
                    ambiguousMispairings.append(line + " (the analysis marked this pairing ambiguous: confidence \(String(format: "%.2f", confidence)))")
                } else {
                    d.append(line + " (confidence \(String(format: "%.2f", confidence)))")
                }
            }
            if scenario.resetOnce && attempts != 2 { d.append("\(label): the proxy made \(attempts) attempts, the scenario expects 2 (one retry)") }
            if (c["retries"] as? Int) != max(0, attempts - 1) {
                d.append("\(label): retries expected \(max(0, attempts - 1)), got \(Self.str(c["retries"]))")
            }
        }
        return d
    }
}

extension LabSidecar: ExpressibleByArgument {}
