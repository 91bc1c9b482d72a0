import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Third-party sidecars (HAProxy, nginx), wrk and curl in the lab's scene.
extension LabScene {
    public var sidecarDir: URL { dir.appendingPathComponent("sidecar") }
    public var appLogPath: String { dir.appendingPathComponent("app/access.log").path }

    /// Why this scene cannot run with `sidecar` here (a missing tool, a scenario it does not fit), or nil.
    public static func skipReason(scenario: LabScenario, sidecar: LabSidecar) -> String? {
        let wantsLoad: Bool = {
            switch scenario.traffic {
            case .load, .mixed: return true
            default: return false
            }
        }()
        if !sidecar.isThirdParty {
            if case .mixed = scenario.traffic, Subprocess.which("curl") == nil { return "curl is missing (Debian package curl)" }
            return nil
        }
        if !scenario.hasSidecar { return "no sidecar in this scenario (it is the same with every --sidecar)" }
        if scenario.resetOnce { return "the retry scenario needs the built-in app that resets a connection (hoptrace sidecar only)" }
        if let exe = sidecar.executable, Subprocess.which(exe) == nil { return "\(exe) is missing (Debian package \(exe))" }
        if sidecar == .haproxyGRPC { return grpcSkipReason(scenario, python: Subprocess.which("python3") ?? "python3") }
        if !FileManager.default.isExecutableFile(atPath: "/usr/sbin/nginx") {
            return "the app's request-id log needs nginx as the app (Debian package nginx)"
        }
        if Subprocess.which("setpriv") == nil { return "setpriv is missing (Debian package util-linux): the sidecar runs as uid 1337" }
        if wantsLoad && Subprocess.which("wrk") == nil { return "wrk is missing (Debian package wrk)" }
        if case .mixed = scenario.traffic, Subprocess.which("curl") == nil { return "curl is missing (Debian package curl)" }
        if ProcessInfo.processInfo.environment["HOPLAB_NO_NGINX"] != nil { return "HOPLAB_NO_NGINX is set: the app's log needs nginx" }
        if sidecar == .haproxyH2C, wantsLoad, let missing = h2cClientsMissing { return missing }
        if sidecar.isMTLS { return mtlsSkipReason(scenario: scenario) }
        return nil
    }

    public var sidecarPlan: SidecarPlan {
        let current = scenario.layout == "istio-current"
        return SidecarPlan(
            listenPort: current && !scenario.outbound ? 15006 : 15001,
            upstream: scenario.outbound ? "\(remoteIP):80" : "127.0.0.1:80",
            sourceAddress: current && !scenario.outbound ? "127.0.0.6" : nil,
            dir: sidecarDir.path)
    }

    /// HAProxy or nginx in the pod as uid/gid 1337 (setpriv: never root), listening where the
    /// rules redirect to.
    public func startThirdPartySidecar() throws {
        try FileManager.default.createDirectory(at: sidecarDir, withIntermediateDirectories: true)
        chmod(sidecarDir.path, 0o777)
        let plan = sidecarPlan
        guard let setpriv = Subprocess.which("setpriv"), let exe = sidecar.executable.flatMap(Subprocess.which) else {
            throw LabError("\(sidecar.rawValue) or setpriv is missing")
        }
        let asProxy = [setpriv, "--reuid=1337", "--regid=1337", "--clear-groups"]
        let b: Subprocess.Background
        switch sidecar {
        case .haproxy, .haproxyH2, .haproxyH2C, .haproxyGRPC:
            let cfg = sidecarDir.appendingPathComponent("haproxy.cfg")
            try plan.haproxyConfig(h2: sidecar.speaksHTTP2Upstream).write(to: cfg, atomically: true, encoding: .utf8)
            chmod(cfg.path, 0o644)
            b = try start(in: pod, asProxy + [exe, "-db", "-f", cfg.path], name: "proxy")
        case .haproxyMTLS, .haproxyMTLSH2:
            b = try startMTLSSidecars(asProxy: asProxy, haproxy: exe)
        case .nginx:
            let cfg = sidecarDir.appendingPathComponent("nginx.conf")
            try plan.nginxConfig().write(to: cfg, atomically: true, encoding: .utf8)
            chmod(cfg.path, 0o644)
            b = try start(in: pod, asProxy + [exe, "-p", sidecarDir.path, "-e", sidecarDir.appendingPathComponent("error.log").path, "-c", cfg.path], name: "proxy")
        case .hoptrace:
            return
        }
        let deadline = Date().addingTimeInterval(10)
        while true {
            let r = try Subprocess.run(ip, ["netns", "exec", pod, "ss", "-Hltn", "sport = :\(plan.listenPort)"], timeout: 5)
            if r.stdout.contains(":\(plan.listenPort)") { break }
            if !b.process.isRunning || Date() > deadline {
                let err = (try? String(contentsOf: sidecarDir.appendingPathComponent("error.log"), encoding: .utf8)) ?? ""
                throw LabError("\(sidecar.rawValue) did not start in \(pod): \(b.stderr) \(b.stdout) \(err)".trimmingCharacters(in: .whitespacesAndNewlines))
            }
            usleep(20_000)
        }
        log("\(sidecar.rawValue) listening on :\(plan.listenPort) (uid 1337), upstream \(plan.upstream)")
    }

    /// The traffic's source: the client namespace (inbound) or the app in the pod as uid 65534
    /// (outbound): the namespace and the command line to run there.
    public func clientSide(_ arguments: [String]) -> (namespace: String, arguments: [String]) {
        if scenario.outbound, let setpriv = Subprocess.which("setpriv") {
            return (pod, [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"] + arguments)
        }
        return (scenario.outbound ? pod : client, arguments)
    }

    /// `ip` arguments that run `arguments` on the traffic's source.
    public func clientCommand(_ arguments: [String]) -> [String] {
        let c = clientSide(arguments)
        return ["netns", "exec", c.namespace] + c.arguments
    }

    public var targetHost: String { scenario.outbound ? remoteIP : podIP }

    /// wrk (keep-alive, -c N, bounded in time), and with `curl` a few curl HEAD/GET beside it.
    /// The truth then comes from the sidecar's log; returns curl's records only.
    public func driveWrk(curl: Bool) throws -> [ClientRecord] {
        guard let wrk = Subprocess.which("wrk") else { throw LabError("wrk is missing") }
        let script = dir.appendingPathComponent("wrk.lua")
        try LabScripts.wrk(identical: identicalTargets).write(to: script, atomically: true, encoding: .utf8)
        chmod(script.path, 0o644)
        let threads = min(2, connections)
        let c = curl ? try startCurl() : nil
        let r = try Subprocess.run(ip, clientCommand([wrk, "-t", "\(threads)", "-c", "\(connections)", "-d", "\(duration)s", "--timeout", "5s",
                                                      "-s", script.path, loadURL]), timeout: Double(duration) + 30)
        log("wrk: " + r.stdout.split(separator: "\n").filter { $0.contains("requests in") || $0.contains("Non-2xx") || $0.contains("Socket errors") }.joined(separator: "; "))
        if r.status != 0 { throw LabError("wrk failed (exit \(r.status)): \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))") }
        return try c.map(finishCurl) ?? []
    }

    /// curl HEAD and GET, alternately, each on a new connection, in the background.
    public func startCurl(pairs: Int = 8) throws -> Subprocess.Background {
        guard let curl = Subprocess.which("curl") else { throw LabError("curl is missing") }
        let script = dir.appendingPathComponent("curl.sh")
        try LabScripts.curlLoop.write(to: script, atomically: true, encoding: .utf8)
        chmod(script.path, 0o755)
        let c = clientSide(["/bin/sh", script.path, curl, "http://\(targetHost):80", "\(pairs)", identicalTargets ? "same" : "unique"])
        return try start(in: c.namespace, c.arguments, name: "curl")
    }

    public func finishCurl(_ b: Subprocess.Background) throws -> [ClientRecord] {
        let deadline = Date().addingTimeInterval(30)
        while b.process.isRunning && Date() < deadline { try Subprocess.checkInterrupt(); usleep(20_000) }
        b.stop()
        var out: [ClientRecord] = []
        for (i, line) in b.stdout.split(separator: "\n").enumerated() {
            let f = line.split(separator: " ").map(String.init)
            guard f.count == 4 else { continue }
            out.append(ClientRecord(conn: 10_000 + i, index: 0, method: f[0], target: f[1], local: f[2], status: Int(f[3]) ?? 0))
        }
        log("curl: \(out.count) requests")
        return out
    }

    /// The sidecar's own log, parsed.
    public func sidecarLog() -> [SidecarLogRecord] {
        switch sidecar {
        case .haproxy, .haproxyH2, .haproxyH2C, .haproxyGRPC, .haproxyMTLS, .haproxyMTLSH2:
            return LabLogFormats.parseHAProxy((try? String(contentsOf: dir.appendingPathComponent("proxy.out"), encoding: .utf8)) ?? "")
        case .nginx:
            return LabLogFormats.parseNginxSidecar((try? String(contentsOf: sidecarDir.appendingPathComponent("access.log"), encoding: .utf8)) ?? "")
        case .hoptrace:
            return []
        }
    }

    public func appLog() -> [AppLogRecord] {
        LabLogFormats.parseApp((try? String(contentsOfFile: appLogPath, encoding: .utf8)) ?? "")
    }
}
