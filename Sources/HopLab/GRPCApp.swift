import Foundation
import HopReport
#if canImport(Glibc)
import Glibc
#endif

/// `--sidecar haproxy-grpc`: a gRPC app (grpcio's server, Scripts/grpc-peer.py) behind HAProxy
/// (h2c from the clients, `proto h2` upstream), called by grpcio's client. The app logs each
/// call's x-request-id and peer in the lab's app log format; the client's own outcome of each
/// call (grpcio's status code) is checked against the analysis' gRPC view of both copies.
extension LabScene {
    /// The first python3 that imports grpcio: the lab's, else Debian's (python3-grpcio).
    public static func grpcPython(_ python: String) -> String? {
        for p in [python, "/usr/bin/python3"] where FileManager.default.isExecutableFile(atPath: p) {
            if let r = try? Subprocess.run(p, ["-c", "import grpc"], timeout: 20, interruptible: false), r.status == 0 { return p }
        }
        return nil
    }

    /// Why `--sidecar haproxy-grpc` cannot run `scenario` here, or nil.
    static func grpcSkipReason(_ scenario: LabScenario, python: String) -> String? {
        guard case .load = scenario.traffic, !scenario.outbound else {
            return "the gRPC app answers gRPC calls only: --sidecar haproxy-grpc runs the load scenario"
        }
        if Subprocess.which("setpriv") == nil { return "setpriv is missing (Debian package util-linux): the sidecar runs as uid 1337" }
        if grpcPython(python) == nil { return "grpcio is missing (Debian package python3-grpcio, or pip install grpcio)" }
        return nil
    }

    var grpcClientOutput: URL { dir.appendingPathComponent("grpc-client.out") }

    /// The gRPC app on :80 in `ns`, its log at `appLogPath`.
    public func startGRPCApp(in ns: String, name: String) throws {
        guard let py = Self.grpcPython(python) else { throw LabError("grpcio is missing (Debian package python3-grpcio)") }
        let d = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        let script = dir.appendingPathComponent("grpc-peer.py")
        try LabScripts.grpcPeer.write(to: script, atomically: true, encoding: .utf8)
        chmod(script.path, 0o644)
        let b = try start(in: ns, [py, script.path, "server", "80", "0.0.0.0", appLogPath], name: name)
        guard try b.waitFor("ready", timeout: 20) else { throw LabError("the gRPC app did not start in \(ns): \(b.stderr)") }
        log("gRPC app (grpcio) on :80 in \(ns)")
    }

    /// Whether grpcio's client also cancels a call per round (`HOPLAB_GRPC_CANCEL=1`): the
    /// client's RST_STREAM ends its copy before HAProxy's reset ends the proxy's copy, and the
    /// correlator keeps such a copy waiting for its upstream copy (`Correlator.lateDowns`). Off by
    /// default: identical cancelled calls in flight at once on several channels are still paired
    /// wrong now and then (about one run in eight leaves a call without its copy), and the lab
    /// test must not be flaky.
    public static var grpcCancels: Bool { ProcessInfo.processInfo.environment["HOPLAB_GRPC_CANCEL"] == "1" }

    /// grpcio's client: the call set (11 calls, 12 with a cancel) in rounds on min(connections, 4)
    /// channels (a connection each), about `requests` calls in all. The truth is the sidecar's
    /// log; the client's lines are kept for `grpcDifferences`.
    public func driveGRPC() throws -> [ClientRecord] {
        guard let py = Self.grpcPython(python) else { throw LabError("grpcio is missing (Debian package python3-grpcio)") }
        let channels = min(connections, 4)
        let perRound = Self.grpcCancels ? 12 : 11
        let rounds = max(1, requests / (perRound * channels))
        let script = dir.appendingPathComponent("grpc-peer.py")
        let c = clientSide([py, script.path, "client", "\(targetHost):80", "\(rounds)", "\(channels)", Self.grpcCancels ? "1" : "0"])
        let r = try Subprocess.run(ip, ["netns", "exec", c.namespace] + c.arguments, timeout: 120)
        try r.stdout.write(to: grpcClientOutput, atomically: true, encoding: .utf8)
        let lines = r.stdout.split(separator: "\n").count
        log("grpc client: \(lines) calls on \(channels) channel\(channels == 1 ? "" : "s")")
        if r.status != 0 || lines == 0 {
            throw LabError("the gRPC client failed (exit \(r.status)): \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines).suffix(600))")
        }
        return []
    }

    /// gRPC calls by `Method CODE`, as grpcio's client told them (`NAME(args) CODE …` lines).
    static func grpcClientCalls(_ text: String) -> [String: Int] {
        var out: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count >= 2 else { continue }
            let method = f[0].split(separator: "(").first.map(String.init) ?? String(f[0])
            out["\(method) \(f[1])", default: 0] += 1
        }
        return out
    }

    /// The analysis' gRPC calls by `Method CODE` on the downstream and the upstream copies: the
    /// grpc-status' name, or CANCELLED for a stream the client reset without one.
    static func grpcAnalysisCalls(_ a: ReportDocument) -> (downstream: [String: Int], upstream: [String: Int]) {
        var down: [String: Int] = [:], up: [String: Int] = [:]
        for c in a.chains {
            for h in c.hops {
                guard let h2 = h.http2, let g = h2.grpc else { continue }
                let code = g.statusName ?? (h2.reset?.by == "client" ? "CANCELLED" : "no-status")
                let key = "\(g.method ?? "-") \(code)"
                if h.isDownstream { down[key, default: 0] += 1 }
                if h.isUpstream { up[key, default: 0] += 1 }
            }
        }
        return (down, up)
    }

    /// What the analysis' gRPC view says differently from grpcio's client, per copy; and a note
    /// with the client's calls.
    public func grpcDifferences(_ a: ReportDocument) -> (differences: [String], note: String) {
        let client = Self.grpcClientCalls((try? String(contentsOf: grpcClientOutput, encoding: .utf8)) ?? "")
        let seen = Self.grpcAnalysisCalls(a)
        func text(_ h: [String: Int]) -> String { h.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ") }
        var d: [String] = []
        if client.isEmpty { d.append("the gRPC client reported no call") }
        if seen.downstream != client {
            d.append("gRPC calls by method and code: grpcio's client says \(text(client)); the analysis' downstream copies say \(text(seen.downstream))")
        }
        if seen.upstream != client {
            d.append("gRPC calls by method and code: grpcio's client says \(text(client)); the analysis' upstream copies say \(text(seen.upstream))")
        }
        return (d, "gRPC calls (grpcio's client, and the analysis on both copies): \(text(client))")
    }
}
