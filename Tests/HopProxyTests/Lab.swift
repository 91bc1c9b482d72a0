import Foundation
import HopInstaller
import HopProxy
import HopTestSupport
import XCTest

/// Runs programs and finds tools (HopTestSupport's, with this target's 30 s default).
enum Run {
    typealias Result = ProcessResult

    static var hoptrace: String { TestPaths.hoptrace }

    static func which(_ tool: String) -> String? { TestPaths.which(tool) }

    /// Runs to completion (stopped after `timeout`), capturing both outputs.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String], stdin: Data? = nil, timeout: TimeInterval = 30) throws -> Result {
        try TestProcess.run(executable, arguments, stdin: stdin, timeout: timeout)
    }
}

/// Three network namespaces made for a test: client — pod — remote, joined by veth pairs,
/// addresses in 198.18.3.0/24, the 2018 Istio rules in the pod, the test app in the pod
/// (port 80) and in the remote (port 80, plus raw TCP helpers), and `hoptrace proxy` in the pod.
final class Lab {
    static let clientIP = "198.18.3.1"
    static let podIP = "198.18.3.2"
    static let podRemoteSideIP = "198.18.3.17"
    static let remoteIP = "198.18.3.18"
    static let echoPort = 9000
    static let greetPort = 9001
    static let resetOncePort = 9002

    /// The seed article's rules as iptables-save text, from the rule model (RuleInstallerTests
    /// checks that text against the article's).
    static let rules2018 = RuleInstaller(config: .istio2018).renderSave()

    let ip: String
    let python: String
    let prefix: String
    let tag: String
    let dir: URL
    var client: String { prefix + "client" }
    var pod: String { prefix + "pod" }
    var remote: String { prefix + "remote" }
    var accessLogPath: String { dir.appendingPathComponent("access.jsonl").path }
    var appLogPath: String { dir.appendingPathComponent("app.jsonl").path }
    private(set) var processes: [Process] = []
    private(set) var proxy: Process?
    private(set) var proxyStderr: URL?
    private var namespaces: [String] = []

    /// Deletes namespaces left by an earlier, crashed run (and stops what ran in them).
    static func removeStale(ip: String) {
        let tmp = FileManager.default.temporaryDirectory
        for name in (try? FileManager.default.contentsOfDirectory(atPath: tmp.path)) ?? [] where name.hasPrefix("hitest-") {
            let parts = name.split(separator: "-")
            if parts.count > 1, let pid = Int32(parts[1]), kill(pid, 0) != 0 {
                try? FileManager.default.removeItem(at: tmp.appendingPathComponent(name))
            }
        }
        guard let list = try? Run.run(ip, ["netns", "list"]) else { return }
        for line in list.stdout.split(separator: "\n") {
            let name = String(line.split(separator: " ").first ?? "")
            guard name.hasPrefix("hitest-") else { continue }
            // Only namespaces of a test process that is gone (ours and live ones stay).
            let parts = name.split(separator: "-")
            if parts.count > 1, let pid = Int32(parts[1]), kill(pid, 0) == 0 { continue }
            if let pids = try? Run.run(ip, ["netns", "pids", name]) {
                for p in pids.stdout.split(separator: "\n").compactMap({ Int32($0) }) { kill(p, SIGKILL) }
            }
            _ = try? Run.run(ip, ["netns", "del", name])
        }
    }

    /// Builds the lab, or throws XCTSkip (one line) when this machine can't.
    /// The current Istio layout's nat rules (inbound to 15006, the proxy's own inbound
    /// connections from 127.0.0.6 pass), trimmed to what the lab exercises.
    static let rulesCurrent = """
        *nat
        :PREROUTING ACCEPT [0:0]
        :INPUT ACCEPT [0:0]
        :OUTPUT ACCEPT [0:0]
        :POSTROUTING ACCEPT [0:0]
        :ISTIO_INBOUND - [0:0]
        :ISTIO_IN_REDIRECT - [0:0]
        :ISTIO_OUTPUT - [0:0]
        :ISTIO_REDIRECT - [0:0]
        -A PREROUTING -p tcp -j ISTIO_INBOUND
        -A OUTPUT -p tcp -j ISTIO_OUTPUT
        -A ISTIO_INBOUND -p tcp -m tcp --dport 15008 -j RETURN
        -A ISTIO_INBOUND -p tcp -m tcp --dport 15090 -j RETURN
        -A ISTIO_INBOUND -p tcp -m tcp --dport 15021 -j RETURN
        -A ISTIO_INBOUND -p tcp -m tcp --dport 15020 -j RETURN
        -A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT
        -A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
        -A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN
        -A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT
        -A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN
        -A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN
        -A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT
        -A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN
        -A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN
        -A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN
        -A ISTIO_OUTPUT -j ISTIO_REDIRECT
        -A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001
        COMMIT

        """

    let rules: String

    init(tag: String, rules: String = Lab.rules2018, proxyArguments: [String] = [], startProxy: Bool = true) throws {
        guard geteuid() == 0 else { throw XCTSkip("proxy lab tests need root (network namespaces, iptables)") }
        guard let ip = Run.which("ip") else { throw XCTSkip("`ip` (iproute2) is missing") }
        guard let python = Run.which("python3") else { throw XCTSkip("python3 is missing (the test app)") }
        guard Run.which("iptables-restore") != nil else { throw XCTSkip("iptables-restore is missing") }
        guard FileManager.default.isExecutableFile(atPath: Run.hoptrace) else {
            throw XCTSkip("the hoptrace binary is not built at \(Run.hoptrace)")
        }
        self.ip = ip
        self.python = python
        self.tag = tag
        self.rules = rules
        prefix = "hitest-\(getpid())-\(tag)-"
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("hitest-\(getpid())-\(tag)")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        Lab.removeStale(ip: ip)
        do {
            try build()
            try startApps()
            if startProxy { try self.startProxy(proxyArguments) }
        } catch {
            tearDown()
            throw error
        }
    }

    private func sh(_ args: [String]) throws {
        let r = try Run.run(ip, args)
        if r.status != 0 {
            throw XCTSkip("cannot build the namespace lab: ip \(args.joined(separator: " ")): \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    private func build() throws {
        for ns in [client, pod, remote] {
            try sh(["netns", "add", ns])
            namespaces.append(ns)
            try sh(["-n", ns, "link", "set", "lo", "up"])
        }
        let tag = "h\(getpid() % 100000)\(self.tag.prefix(2))"
        let (c, p1, p2, r) = (tag + "c", tag + "p", tag + "q", tag + "r")
        try sh(["link", "add", c, "netns", client, "type", "veth", "peer", "name", p1, "netns", pod])
        try sh(["link", "add", p2, "netns", pod, "type", "veth", "peer", "name", r, "netns", remote])
        try sh(["-n", client, "addr", "add", "\(Lab.clientIP)/28", "dev", c])
        try sh(["-n", pod, "addr", "add", "\(Lab.podIP)/28", "dev", p1])
        try sh(["-n", pod, "addr", "add", "\(Lab.podRemoteSideIP)/28", "dev", p2])
        try sh(["-n", remote, "addr", "add", "\(Lab.remoteIP)/28", "dev", r])
        try sh(["-n", client, "link", "set", c, "up"])
        try sh(["-n", pod, "link", "set", p1, "up"])
        try sh(["-n", pod, "link", "set", p2, "up"])
        try sh(["-n", remote, "link", "set", r, "up"])
        let rules = try Run.run(ip, ["netns", "exec", pod, "iptables-restore"], stdin: Data(rules.utf8))
        if rules.status != 0 {
            throw XCTSkip("cannot install iptables rules in the namespace: \(rules.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    /// Starts a long-running program in a namespace; stdout/stderr go to files in `dir`.
    @discardableResult
    func start(in ns: String, _ arguments: [String], name: String) throws -> (Process, URL, URL) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: ip)
        p.arguments = ["netns", "exec", ns] + arguments
        let out = dir.appendingPathComponent("\(name).out"), err = dir.appendingPathComponent("\(name).err")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        p.standardOutput = try FileHandle(forWritingTo: out)
        p.standardError = try FileHandle(forWritingTo: err)
        p.standardInput = FileHandle.nullDevice
        try p.run()
        processes.append(p)
        return (p, out, err)
    }

    /// Waits (bounded) until `file` contains `text`.
    func waitFor(_ text: String, in file: URL, timeout: TimeInterval = 10) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let s = try? String(contentsOf: file, encoding: .utf8), s.contains(text) { return true }
            usleep(20_000)
        }
        return false
    }

    private func startApps() throws {
        let script = dir.appendingPathComponent("app.py")
        try AppServer.script.write(to: script, atomically: true, encoding: .utf8)
        let (_, podOut, _) = try start(in: pod, [python, script.path, "80", appLogPath, "pod"], name: "app-pod")
        let (_, remoteOut, _) = try start(
            in: remote,
            [python, script.path, "80", appLogPath, "remote", "--echo", "\(Lab.echoPort)",
             "--greet", "\(Lab.greetPort)", "--reset-once", "\(Lab.resetOncePort)"],
            name: "app-remote")
        guard waitFor("ready", in: podOut), waitFor("ready", in: remoteOut) else {
            throw LabError("the test apps did not start")
        }
    }

    func startProxy(_ extra: [String]) throws {
        let (p, _, err) = try start(
            in: pod,
            [Run.hoptrace, "proxy", "--access-log", accessLogPath, "--protocol-detection-timeout", "0.3",
             "--connect-timeout", "2"] + extra,
            name: "proxy")
        proxy = p
        proxyStderr = err
        guard waitFor("listening on", in: err) else {
            let text = (try? String(contentsOf: err, encoding: .utf8)) ?? ""
            throw LabError("the proxy did not start: \(text)")
        }
    }

    /// Runs a program in a namespace to completion.
    func exec(_ ns: String, _ arguments: [String], stdin: Data? = nil, timeout: TimeInterval = 30) throws -> Run.Result {
        try Run.run(ip, ["netns", "exec", ns] + arguments, stdin: stdin, timeout: timeout)
    }

    /// Runs a Python snippet in a namespace.
    func python(_ ns: String, _ code: String, timeout: TimeInterval = 30) throws -> Run.Result {
        try exec(ns, [python, "-c", code], timeout: timeout)
    }

    // MARK: logs

    func accessLog() -> [[String: Any]] { Lab.jsonLines(accessLogPath) }
    func appLog() -> [[String: Any]] { Lab.jsonLines(appLogPath) }

    static func jsonLines(_ path: String) -> [[String: Any]] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
        }
    }

    /// Waits (bounded) for access-log lines matching `predicate`.
    func waitForAccessLog(count: Int = 1, timeout: TimeInterval = 5, _ predicate: ([String: Any]) -> Bool) -> [[String: Any]] {
        let deadline = Date().addingTimeInterval(timeout)
        var found: [[String: Any]] = []
        repeat {
            found = accessLog().filter(predicate)
            if found.count >= count { return found }
            usleep(20_000)
        } while Date() < deadline
        return found
    }

    func appRequests(withRequestID id: String) -> [[String: Any]] {
        appLog().filter { (($0["headers"] as? [String: String])?["x-request-id"]) == id }
    }

    // MARK: teardown

    func stop(_ p: Process, signal sig: Int32 = SIGTERM, timeout: TimeInterval = 5) {
        guard p.isRunning else { return }
        kill(p.processIdentifier, sig)
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(10_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
    }

    func tearDown() {
        for p in processes { stop(p, timeout: 2) }
        processes = []
        for ns in namespaces { _ = try? Run.run(ip, ["netns", "del", ns]) }
        namespaces = []
        if ProcessInfo.processInfo.environment["HITEST_KEEP_LOGS"] == nil {
            try? FileManager.default.removeItem(at: dir)
        }
    }
}

struct LabError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
