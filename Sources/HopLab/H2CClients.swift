import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `--sidecar haproxy-h2c`: h2c clients with prior knowledge (h2load, nghttp, curl) beside the
/// HTTP/1.1 ones (wrk, curl), all through HAProxy's one frontend to the h2c app.
extension LabScene {
    /// Why the h2c clients cannot run here (nil: nghttp, h2load and curl are installed).
    public static var h2cClientsMissing: String? {
        for tool in ["h2load", "nghttp"] where Subprocess.which(tool) == nil {
            return "\(tool) is missing (Debian package nghttp2-client): the h2c clients of --sidecar haproxy-h2c"
        }
        if Subprocess.which("curl") == nil { return "curl is missing (Debian package curl)" }
        return nil
    }

    /// h2load's connections: a quarter of wrk's (at least 2), 4 streams in flight on each; one
    /// h2load per connection, each with targets of its own.
    public var h2loadConnections: Int { max(2, connections / 4) }
    public static let h2loadStreams = 4

    /// The requests of h2load `k` of `h2loadConnections`: `requests` shared out, the first ones
    /// taking the remainder.
    public func h2loadRequests(_ k: Int) -> Int {
        requests / h2loadConnections + (k < requests % h2loadConnections ? 1 : 0)
    }

    /// The targets of h2load `k`, one line each (h2load sends them in order): unique ones, every
    /// 25th the large body, or `/` only with identical targets.
    public func h2loadTargets(_ k: Int) -> String {
        let base = "http://\(targetHost):80"
        if identicalTargets { return base + "/\n" }
        return (1...max(1, h2loadRequests(k))).map { i in base + (i % 25 == 7 ? "/big?h2load=\(k)-\(i)" : "/?h2load=\(k)-\(i)") + "\n" }.joined()
    }

    /// h2load (`requests` streams over `h2loadConnections` connections) beside wrk, and with
    /// `small` curl (HTTP/1.1 and h2c) and nghttp beside both. Returns curl's records (HTTP/1.1
    /// and h2c: one request per connection, so each names its downstream tuple); the truth is
    /// the sidecar's log.
    public func driveH2CClients(small: Bool) throws -> [ClientRecord] {
        guard let h2load = Subprocess.which("h2load"), let nghttp = Subprocess.which("nghttp"), let curl = Subprocess.which("curl") else {
            throw LabError(Self.h2cClientsMissing ?? "the h2c clients are missing")
        }
        var loads: [(run: Subprocess.Background, requests: Int)] = []
        for k in 0..<h2loadConnections where h2loadRequests(k) > 0 {
            let targets = dir.appendingPathComponent("h2load-targets-\(k).txt")
            try h2loadTargets(k).write(to: targets, atomically: true, encoding: .utf8)
            chmod(targets.path, 0o644)
            let n = h2loadRequests(k)
            let load = clientSide([h2load, "-n", "\(n)", "-c", "1", "-m", "\(Self.h2loadStreams)", "-i", targets.path])
            loads.append((try start(in: load.namespace, load.arguments, name: "h2load-\(k)"), n))
        }
        var h2c: Subprocess.Background?
        if small {
            let script = dir.appendingPathComponent("h2c-clients.sh"), body = dir.appendingPathComponent("h2c-body.txt")
            try LabScripts.h2cClients.write(to: script, atomically: true, encoding: .utf8)
            try Data("a request body sent by nghttp over h2c\n".utf8).write(to: body)
            chmod(script.path, 0o755)
            chmod(body.path, 0o644)
            let c = clientSide(["/bin/sh", script.path, curl, nghttp, "http://\(targetHost):80", "4", identicalTargets ? "same" : "unique", body.path])
            h2c = try start(in: c.namespace, c.arguments, name: "h2c-clients")
        }
        var records = try driveWrk(curl: small)
        for (run, n) in loads {
            try wait(for: run, seconds: 60)
            let summary = run.stdout.split(separator: "\n").first { $0.hasPrefix("requests:") }.map(String.init) ?? ""
            log("\(run.name): \(summary)")
            if run.process.terminationStatus != 0 || !summary.contains(" \(n) succeeded") {
                throw LabError("\(run.name) failed (exit \(run.process.terminationStatus)): \(summary) \(run.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
        }
        if let h2c {
            try wait(for: h2c, seconds: 60)
            let sent = Self.clientLines(h2c.stdout, firstConnection: 20_000)
            let failed = h2c.stderr.split(separator: "\n").filter { $0.contains("failed") }
            log("h2c clients: \(sent.count) curl requests\(failed.isEmpty ? "" : "; " + failed.joined(separator: "; "))")
            if !failed.isEmpty { throw LabError("h2c clients: \(failed.joined(separator: "; "))") }
            records += sent
        }
        return records
    }

    /// Waits (bounded, interruptible) until `b` exits; stops it (by its PID) after `seconds`.
    func wait(for b: Subprocess.Background, seconds: Double) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while b.process.isRunning && Date() < deadline { try Subprocess.checkInterrupt(); usleep(20_000) }
        if b.process.isRunning {
            b.stop()
            throw LabError("\(b.name) did not finish in \(Int(seconds)) s")
        }
    }

    /// `METHOD TARGET LOCAL STATUS` lines as records, one connection each from `firstConnection` on.
    static func clientLines(_ text: String, firstConnection: Int) -> [ClientRecord] {
        var out: [ClientRecord] = []
        for (i, line) in text.split(separator: "\n").enumerated() {
            let f = line.split(separator: " ").map(String.init)
            guard f.count == 4 else { continue }
            out.append(ClientRecord(conn: firstConnection + i, index: 0, method: f[0], target: f[1], local: f[2], status: Int(f[3]) ?? 0))
        }
        return out
    }
}
