import Foundation
import HopReport
import HopInstaller
import HopNetfilter
#if canImport(Glibc)
import Glibc
#endif

/// A lab scenario: the rules, the proxy's layout, where the capture is taken, the traffic,
/// and what the analysis must say about it.
public struct LabScenario: Sendable {
    public enum Capture: Sendable { case any, podInterface }
    public enum Traffic: Sendable {
        case sequential([(String, String)])
        case load
        /// load plus a few curl HEAD/GET in parallel, each on its own connection.
        case mixed
        case pipelined([(String, String)])
    }

    public let name: String
    public let summary: String
    /// The rules preset (nil: no rules, no proxy).
    public let preset: String?
    public let layout: String
    public let capture: Capture
    public let traffic: Traffic
    /// The client runs as an app inside the pod (outbound) instead of in the client namespace.
    public let outbound: Bool
    /// The app resets the first connection (the proxy retries).
    public let resetOnce: Bool
    /// Hop roles every request's chain must have, in order.
    public let roles: [String]
    public let complete: Bool
    public let unexplainedDuplicates: Int
    public let assertions: [String: JSONValue]

    public var hasSidecar: Bool { preset != nil }

    public static let sidecarAssertions: [String: JSONValue] = [
        "noUnexplainedDuplicates": true, "everyRequestAnswered": true, "noRequestBypassedSidecar": true,
    ]

    public static let all: [LabScenario] = [
        LabScenario(
            name: "seed", summary: "the seed's rules (istio-2018); the client sends HEAD / three times: the doubled HEAD",
            preset: "istio-2018", layout: "istio-2018", capture: .any,
            traffic: .sequential([("HEAD", "/"), ("HEAD", "/"), ("HEAD", "/")]), outbound: false, resetOnce: false,
            roles: ["inbound-intercepted", "inbound-forwarded"], complete: true, unexplainedDuplicates: 0,
            assertions: sidecarAssertions),
        LabScenario(
            name: "outbound", summary: "the app in the pod (uid 65534) calls the remote service with HEAD: the NAT-split lo→:15001 hop",
            preset: "istio-2018", layout: "istio-2018", capture: .any,
            traffic: .sequential([("HEAD", "/"), ("HEAD", "/")]), outbound: true, resetOnce: false,
            roles: ["outbound-redirected", "outbound-forwarded"], complete: true, unexplainedDuplicates: 0,
            assertions: ["noUnexplainedDuplicates": true, "everyRequestAnswered": true]),
        LabScenario(
            name: "current", summary: "today's Istio rules (istio-current): inbound via 15006, proxy → app from 127.0.0.6",
            preset: "istio-current", layout: "istio-current", capture: .any,
            traffic: .sequential([("HEAD", "/"), ("GET", "/"), ("HEAD", "/")]), outbound: false, resetOnce: false,
            roles: ["inbound-intercepted", "inbound-forwarded"], complete: true, unexplainedDuplicates: 0,
            assertions: sidecarAssertions),
        LabScenario(
            name: "load", summary: "N requests over C concurrent keep-alive connections, HEAD and GET mixed, some large bodies",
            preset: "istio-2018", layout: "istio-2018", capture: .any, traffic: .load, outbound: false, resetOnce: false,
            roles: ["inbound-intercepted", "inbound-forwarded"], complete: true, unexplainedDuplicates: 0,
            assertions: sidecarAssertions),
        LabScenario(
            name: "pipelined", summary: "three pipelined requests on one connection",
            preset: "istio-2018", layout: "istio-2018", capture: .any,
            traffic: .pipelined([("GET", "/?n=1"), ("HEAD", "/?n=2"), ("GET", "/?n=3")]), outbound: false, resetOnce: false,
            roles: ["inbound-intercepted", "inbound-forwarded"], complete: true, unexplainedDuplicates: 0,
            assertions: sidecarAssertions),
        LabScenario(
            name: "retry", summary: "the app resets the proxy's first upstream connection; the proxy retries: 2 upstream attempts",
            preset: "istio-2018", layout: "istio-2018", capture: .any,
            traffic: .sequential([("GET", "/")]), outbound: false, resetOnce: true,
            roles: ["inbound-intercepted", "inbound-forwarded", "inbound-forwarded"], complete: true, unexplainedDuplicates: 0,
            assertions: sidecarAssertions),
        LabScenario(
            name: "missing-hop", summary: "captured on the pod's interface only: the proxy → app hop on lo is invisible (incomplete chains, expected)",
            preset: "istio-2018", layout: "istio-2018", capture: .podInterface,
            traffic: .sequential([("HEAD", "/"), ("GET", "/")]), outbound: false, resetOnce: false,
            roles: ["inbound-intercepted"], complete: false, unexplainedDuplicates: 0,
            assertions: ["noUnexplainedDuplicates": true, "everyRequestAnswered": true]),
        LabScenario(
            name: "no-sidecar", summary: "no rules, no proxy; the client sends the same HEAD twice: 1 genuine (unexplained) duplicate",
            preset: nil, layout: "istio-2018", capture: .any,
            traffic: .sequential([("HEAD", "/"), ("HEAD", "/")]), outbound: false, resetOnce: false,
            roles: ["direct"], complete: true, unexplainedDuplicates: 1,
            assertions: ["everyRequestAnswered": true]),
        LabScenario(
            name: "mixed", summary: "load (wrk with a third-party sidecar) and, in parallel, curl HEAD/GET on connections of their own",
            preset: "istio-2018", layout: "istio-2018", capture: .any, traffic: .mixed, outbound: false, resetOnce: false,
            roles: ["inbound-intercepted", "inbound-forwarded"], complete: true, unexplainedDuplicates: 0,
            assertions: sidecarAssertions),
        LabScenario(
            name: "outbound-load", summary: "the app in the pod (uid 65534) loads the remote service over C keep-alive connections through the sidecar",
            preset: "istio-2018", layout: "istio-2018", capture: .any, traffic: .load, outbound: true, resetOnce: false,
            roles: ["outbound-redirected", "outbound-forwarded"], complete: true, unexplainedDuplicates: 0,
            assertions: ["noUnexplainedDuplicates": true, "everyRequestAnswered": true]),
    ]

    public static func named(_ n: String) -> LabScenario? { all.first { $0.name == n } }
}

public struct LabError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// One run of one scenario: namespaces, veths, app, rules, proxy, capture, traffic; cleaned up
/// by `tearDown` (also on error and on SIGINT/SIGTERM through the caller).
public final class LabScene {
    public static let bigSize = 100_000

    public let scenario: LabScenario
    public let prefix: String
    public let index: Int
    public let dir: URL
    public let ip: String
    public let python: String
    public var verbose = false
    public var requests = 200
    public var connections = 8
    public var identicalTargets = false
    public var sidecar: LabSidecar = .hoptrace
    /// wrk's duration in seconds (third-party sidecars under load).
    public var duration = 2

    private var namespaces: [String] = []
    private var background: [Subprocess.Background] = []

    public var client: String { prefix + "client" }
    public var pod: String { prefix + "pod" }
    public var remote: String { prefix + "remote" }
    public var net: String { "198.18.\(10 + index)" }
    public var clientIP: String { "\(net).1" }
    public var podIP: String { "\(net).2" }
    public var podRemoteSideIP: String { "\(net).17" }
    public var remoteIP: String { "\(net).18" }
    public var vethTag: String { "hl\(getpid() % 1_000_000)" }
    public var podInterface: String { vethTag + "p" }
    public var pcapPath: String { dir.appendingPathComponent("capture.pcap").path }
    public var accessLogPath: String { dir.appendingPathComponent("access.jsonl").path }

    public init(scenario: LabScenario, index: Int, namespacePrefix: String, ip: String, python: String) throws {
        self.scenario = scenario
        self.index = index
        self.ip = ip
        self.python = python
        prefix = "\(namespacePrefix)\(getpid())-"
        dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("\(namespacePrefix)\(getpid())-\(scenario.name)")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
    }

    public func log(_ s: String) { if verbose { Self.stderr("hoptrace lab: \(scenario.name): \(s)") } }

    /// One line to standard error (unbuffered: the lab's progress, interleaved with the verdicts).
    public static func stderr(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    // MARK: stale state

    /// Removes namespaces (and what runs in them) and temp directories with `namespacePrefix`
    /// whose lab process is gone: what a crashed (SIGKILLed) run left.
    public static func removeStale(namespacePrefix: String, ip: String) -> [String] {
        var removed: [String] = []
        func ownerGone(_ name: String) -> Bool {
            let rest = name.dropFirst(namespacePrefix.count)
            guard let pid = Int32(rest.split(separator: "-").first ?? "") else { return false }
            return pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH
        }
        if let list = try? Subprocess.run(ip, ["netns", "list"], timeout: 10, interruptible: false) {
            for line in list.stdout.split(separator: "\n") {
                let name = String(line.split(separator: " ").first ?? "")
                guard name.hasPrefix(namespacePrefix), ownerGone(name) else { continue }
                if let pids = try? Subprocess.run(ip, ["netns", "pids", name], timeout: 10, interruptible: false) {
                    for p in pids.stdout.split(separator: "\n").compactMap({ Int32($0) }) where p > 1 && p != getpid() { kill(p, SIGKILL) }
                }
                _ = try? Subprocess.run(ip, ["netns", "del", name], timeout: 10, interruptible: false)
                removed.append(name)
            }
        }
        let tmp = NSTemporaryDirectory()
        for name in (try? FileManager.default.contentsOfDirectory(atPath: tmp)) ?? [] where name.hasPrefix(namespacePrefix) && ownerGone(name) {
            try? FileManager.default.removeItem(atPath: (tmp as NSString).appendingPathComponent(name))
        }
        return removed
    }

    // MARK: building

    private func ipr(_ args: [String]) throws {
        let r = try Subprocess.run(ip, args, timeout: 10)
        if r.status != 0 {
            throw LabError("ip \(args.joined(separator: " ")): \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    public func build() throws {
        let needRemote = scenario.outbound
        for ns in [client, pod] + (needRemote ? [remote] : []) {
            try ipr(["netns", "add", ns])
            namespaces.append(ns)
            // Segments of at most 8 KiB (lo's MTU, GSO on every link): the capture's ring keeps
            // thousands of frames with a small snaplen, so nothing is dropped under load.
            try ipr(["-n", ns, "link", "set", "dev", "lo", "mtu", "8192", "gso_max_size", "8192", "up"])
        }
        let c = vethTag + "c", p = podInterface
        try ipr(["link", "add", c, "netns", client, "type", "veth", "peer", "name", p, "netns", pod])
        try ipr(["-n", client, "addr", "add", "\(clientIP)/28", "dev", c])
        try ipr(["-n", pod, "addr", "add", "\(podIP)/28", "dev", p])
        try ipr(["-n", client, "link", "set", "dev", c, "gso_max_size", "8192", "up"])
        try ipr(["-n", pod, "link", "set", "dev", p, "gso_max_size", "8192", "up"])
        if needRemote {
            let q = vethTag + "q", r = vethTag + "r"
            try ipr(["link", "add", q, "netns", pod, "type", "veth", "peer", "name", r, "netns", remote])
            try ipr(["-n", pod, "addr", "add", "\(podRemoteSideIP)/28", "dev", q])
            try ipr(["-n", remote, "addr", "add", "\(remoteIP)/28", "dev", r])
            try ipr(["-n", pod, "link", "set", "dev", q, "gso_max_size", "8192", "up"])
            try ipr(["-n", remote, "link", "set", "dev", r, "gso_max_size", "8192", "up"])
        }
        // No IPv6 duplicate-address detection or router solicitations: quiet captures.
        for ns in namespaces {
            _ = try? Subprocess.run(ip, ["netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"], timeout: 5)
        }
    }

    public func start(in ns: String, _ arguments: [String], name: String) throws -> Subprocess.Background {
        let b = try Subprocess.Background(ip, ["netns", "exec", ns] + arguments, name: name, directory: dir)
        background.append(b)
        return b
    }

    /// The app on :80 in `ns`: nginx when installed (not for the reset-once app), else Python.
    public func startApp(in ns: String, name: String, resetOnce: Bool) throws {
        if sidecar == .haproxyGRPC { return try startGRPCApp(in: ns, name: name) }
        let nginx = "/usr/sbin/nginx"
        if !resetOnce && FileManager.default.isExecutableFile(atPath: nginx) && ProcessInfo.processInfo.environment["HOPLAB_NO_NGINX"] == nil {
            let d = dir.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
            let big = d.appendingPathComponent("big.bin")
            try Data((0..<Self.bigSize).map { UInt8(truncatingIfNeeded: $0 &* 7) }).write(to: big)
            chmod(big.path, 0o644)
            let conf = LabScripts.nginx.replacingOccurrences(of: "BIGFILE", with: big.path).replacingOccurrences(of: "LOGFORMAT", with: LabLogFormats.app)
                .replacingOccurrences(of: "DIR", with: d.path)
                // The h2c app of `--sidecar haproxy-h2`: HTTP/2 with prior knowledge on :80.
                .replacingOccurrences(of: "listen 0.0.0.0:80;", with: sidecar.speaksHTTP2Upstream ? "listen 0.0.0.0:80 http2;" : "listen 0.0.0.0:80;")
            let confURL = d.appendingPathComponent("nginx.conf")
            try conf.write(to: confURL, atomically: true, encoding: .utf8)
            let b = try start(in: ns, [nginx, "-e", d.appendingPathComponent("nginx-error.log").path, "-p", d.path, "-c", confURL.path], name: name)
            let pidFile = d.appendingPathComponent("nginx.pid").path
            let deadline = Date().addingTimeInterval(10)
            while !FileManager.default.fileExists(atPath: pidFile) {
                if !b.process.isRunning || Date() > deadline {
                    let err = (try? String(contentsOfFile: d.appendingPathComponent("nginx-error.log").path, encoding: .utf8)) ?? ""
                    throw LabError("nginx did not start in \(ns): \(b.stderr) \(err)".trimmingCharacters(in: .whitespacesAndNewlines))
                }
                try Subprocess.checkInterrupt()
                usleep(10_000)
            }
            usleep(50_000)
            log("nginx on :80 in \(ns)\(sidecar.speaksHTTP2Upstream ? " (h2c)" : "")")
            return
        }
        let script = dir.appendingPathComponent("app.py")
        try LabScripts.app.replacingOccurrences(of: "BIGSIZE", with: "\(Self.bigSize)").write(to: script, atomically: true, encoding: .utf8)
        let b = try start(in: ns, [python, script.path, "80"] + (resetOnce ? ["--reset-once"] : []), name: name)
        guard try b.waitFor("ready") else { throw LabError("the built-in app did not start in \(ns): \(b.stderr)") }
        log("python app on :80 in \(ns)")
    }

    public func installRules() throws {
        guard let name = scenario.preset, let config = InterceptConfig.preset(name) else { return }
        let installer = RuleInstaller(config: config, runner: IptablesRunner(netns: pod))
        do { _ = try installer.install() } catch { throw LabError("installing the \(name) rules in \(pod): \(error)") }
        log("rules \(name) installed in \(pod)")
    }

    public var podIPs: [String] { scenario.outbound ? [podIP, podRemoteSideIP] : [podIP] }

    public func startProxy() throws {
        guard scenario.hasSidecar else { return }
        if sidecar.isThirdParty { return try startThirdPartySidecar() }
        var args = [Subprocess.selfPath, "proxy", "--access-log", accessLogPath, "--layout", scenario.layout,
                    "--protocol-detection-timeout", "0.5", "--connect-timeout", "2", "--drain-timeout", "2"]
        for a in podIPs { args += ["--pod-ip", a] }
        let b = try start(in: pod, args, name: "proxy")
        guard try b.waitFor("listening on") else { throw LabError("hoptrace proxy did not start: \(b.stderr)") }
        log("proxy listening (uid 1337)")
    }

    private var captureProcess: Subprocess.Background?
    /// The capture's last line: packets received, dropped by the kernel and by the interface.
    public var captureStats = ""

    public func startCapture() throws {
        let iface = scenario.capture == .any ? "any" : podInterface
        // Under load (wrk saturates both cores) the capture gets a 256 MiB ring and a higher
        // priority than the peers, so that it does not drop what the verifier counts.
        let load: Bool = {
            switch scenario.traffic {
            case .load, .mixed: return true
            default: return false
            }
        }()
        let buffer = load ? "262144" : "32768"
        let b = try start(in: pod, [Subprocess.selfPath, "packets", "-i", iface, "-s", "16384", "-B", buffer, "-q", "-w", pcapPath, "tcp"], name: "capture")
        guard try b.waitFor("listening on") else { throw LabError("the capture did not start: \(b.stderr)") }
        if load {
            // `ip netns exec` execs the capture: this PID is the capture's own (ours, started above).
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(b.pid), -10)
        }
        captureProcess = b
        log("capturing on \(iface) in \(pod)")
    }

    public func stopCapture() throws {
        guard let b = captureProcess else { return }
        usleep(150_000)  // the last FINs and ACKs
        b.stop(signal: SIGINT, timeout: 5)
        captureProcess = nil
        guard FileManager.default.fileExists(atPath: pcapPath) else { throw LabError("the capture wrote no file: \(b.stderr)") }
        captureStats = String(b.stderr.split(separator: "\n").last ?? "")
        log("capture stopped: \(captureStats)")
    }

    /// Runs the scenario's client; returns what it sent and received (the ground truth).
    public func drive() throws -> [ClientRecord] {
        if sidecar == .haproxyGRPC { return try driveGRPC() }
        if sidecar == .haproxyH2C, case .load = scenario.traffic { return try driveH2CClients(small: false) }
        if sidecar == .haproxyH2C, case .mixed = scenario.traffic { return try driveH2CClients(small: true) }
        if sidecar.isThirdParty, case .load = scenario.traffic { return try driveWrk(curl: false) }
        if sidecar.isThirdParty, case .mixed = scenario.traffic { return try driveWrk(curl: true) }
        var curl: Subprocess.Background?
        if case .mixed = scenario.traffic { curl = try startCurl() }
        let script = dir.appendingPathComponent("client.py")
        try LabScripts.client.write(to: script, atomically: true, encoding: .utf8)
        chmod(script.path, 0o644)
        var args: [String]
        switch scenario.traffic {
        case .sequential(let reqs): args = ["seq"] + reqs.flatMap { [$0.0, $0.1] }
        case .pipelined(let reqs): args = ["pipeline"] + reqs.flatMap { [$0.0, $0.1] }
        case .load, .mixed: args = ["load", "\(requests)", "\(connections)"] + (identicalTargets ? ["same"] : [])
        }
        let cmd: [String]
        if scenario.outbound {
            // The app: a process in the pod that is not the proxy, so OUTPUT redirects it. As
            // uid 65534 when a system python3 and setpriv are there; else as root (uid 0 is not
            // exempt either: only uid/gid 1337 are).
            if FileManager.default.isExecutableFile(atPath: "/usr/bin/python3"), let setpriv = Subprocess.which("setpriv") {
                cmd = ["netns", "exec", pod, setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", script.path, remoteIP, "80"] + args
            } else {
                cmd = ["netns", "exec", pod, python, script.path, remoteIP, "80"] + args
            }
        } else {
            cmd = ["netns", "exec", client, python, script.path, podIP, "80"] + args
        }
        let r = try Subprocess.run(ip, cmd, timeout: 90)
        var records: [ClientRecord] = []
        for o in try ReportCoding.lines(ClientLine.self, from: r.stdout, skippingInvalid: true) {
            records.append(ClientRecord(conn: o.conn ?? 0, index: o.index ?? 0, method: o.method ?? "", target: o.target ?? "",
                                        local: o.local ?? "", status: o.status ?? 0))
        }
        if r.status != 0 || records.isEmpty {
            throw LabError("the client failed (exit \(r.status)): \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        if let curl { records += try finishCurl(curl) }
        if !r.stderr.isEmpty { log("client: \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))") }
        log("client: \(records.count) requests")
        return records
    }

    public func stopProxy() {
        for b in background where b.name == "proxy" { b.stop(signal: SIGTERM, timeout: 4) }
    }

    public func accessLog() -> [ProxyAccessRecord] {
        guard let text = try? String(contentsOfFile: accessLogPath, encoding: .utf8) else { return [] }
        return (try? ReportCoding.lines(ProxyAccessRecord.self, from: text, skippingInvalid: true)) ?? []
    }

    /// Stops every process this run started (by PID) and deletes its namespaces and temp files.
    public func tearDown(keep: Bool = false) {
        for b in background.reversed() { b.stop(signal: b.name == "capture" ? SIGINT : SIGTERM, timeout: 2) }
        background = []
        for ns in namespaces.reversed() {
            // Only what this run started was stopped (by PID); anything else that entered a
            // namespace (a `hoptrace watch --netns`) keeps running, in a namespace that is gone.
            _ = try? Subprocess.run(ip, ["netns", "del", ns], timeout: 10, interruptible: false)
        }
        namespaces = []
        if !keep { try? FileManager.default.removeItem(at: dir) }
    }
}

/// A line of the lab client's output (every key read leniently, as the client wrote it).
struct ClientLine: Decodable {
    var conn: Int?
    var index: Int?
    var method: String?
    var target: String?
    var local: String?
    var status: Int?
}

/// What the lab reads of a line of the proxy's access log (`hoptrace proxy --access-log`).
public struct ProxyAccessRecord: Decodable, Sendable {
    public struct Side: Decodable, Sendable {
        public var client: String?
        public var local: String?
    }

    /// http, or what the sniffer saw (tcp, …).
    public var `protocol`: String?
    public var method: String?
    public var target: String?
    public var status: Int?
    /// Upstream attempts (more than one: retries).
    public var attempts: Int?
    public var downstream: Side?
    public var upstream: Side?
}

public struct ClientRecord {
    public var conn: Int
    public var index: Int
    public var method: String
    public var target: String
    public var local: String
    public var status: Int
}
