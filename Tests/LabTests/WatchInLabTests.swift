import Foundation
import XCTest

/// `hoptrace watch` inside the lab's pod while the seed scenario runs: its lines, the links
/// between copies, and a clean shutdown with libpcap's statistics.
final class WatchInLabTests: XCTestCase {
    func waitFor(_ text: String, in url: URL, timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let s = try? String(contentsOf: url, encoding: .utf8), s.contains(text) { return true }
            usleep(20_000)
        }
        return false
    }

    /// Starts `hoptrace lab SCENARIO` held at its traffic (`--wait-for`), and waits until its
    /// capture runs. Returns the process, the pod's namespace and the file that releases it.
    func startLab(_ arguments: [String], scenario: String, in dir: URL) throws -> (lab: Process, pod: String, go: URL, out: URL) {
        let goFile = dir.appendingPathComponent("go")
        let outFile = dir.appendingPathComponent("lab.out")
        XCTAssertTrue(FileManager.default.createFile(atPath: outFile.path, contents: nil), "could not create \(outFile.path)")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: LabEnv.hoptrace)
        p.arguments = ["lab"] + arguments + ["--namespace-prefix", LabEnv.prefix, "--wait-for", goFile.path]
        p.standardOutput = try FileHandle(forWritingTo: outFile)
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let podName = "\(LabEnv.prefix)\(p.processIdentifier)-pod"
        let captureLog = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(LabEnv.prefix)\(p.processIdentifier)-\(scenario)/capture.err")
        XCTAssertTrue(waitFor("listening on", in: captureLog, timeout: 30), "the lab did not get to its traffic")
        return (p, podName, goFile, outFile)
    }

    /// Starts `hoptrace watch ARGS` and waits for its "listening on" line.
    func startWatch(_ arguments: [String], in dir: URL) throws -> (watch: Process, out: URL, err: URL) {
        let o = dir.appendingPathComponent("watch.out"), e = dir.appendingPathComponent("watch.err")
        XCTAssertTrue(FileManager.default.createFile(atPath: o.path, contents: nil), "could not create \(o.path)")
        XCTAssertTrue(FileManager.default.createFile(atPath: e.path, contents: nil), "could not create \(e.path)")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: LabEnv.hoptrace)
        p.arguments = ["watch"] + arguments
        p.standardOutput = try FileHandle(forWritingTo: o)
        p.standardError = try FileHandle(forWritingTo: e)
        p.standardInput = FileHandle.nullDevice
        try p.run()
        XCTAssertTrue(waitFor("listening on", in: e, timeout: 15), (try? String(contentsOf: e, encoding: .utf8)) ?? "")
        return (p, o, e)
    }

    /// Releases the lab's traffic and waits for the lab to pass.
    func runLab(_ p: Process, go goFile: URL, out outFile: URL, timeout: TimeInterval) {
        let (ok, output) = releaseLab(p, go: goFile, out: outFile, timeout: timeout)
        XCTAssertTrue(ok, output)
    }

    /// Releases the lab's traffic and waits for it; returns whether it passed and what it said.
    func releaseLab(_ p: Process, go goFile: URL, out outFile: URL, timeout: TimeInterval) -> (Bool, String) {
        guard FileManager.default.createFile(atPath: goFile.path, contents: Data()) else {
            // The lab would wait for a go file that never comes: stop it and say why.
            kill(p.processIdentifier, SIGTERM)
            p.waitUntilExit()
            return (false, "could not create the lab's go file \(goFile.path)")
        }
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning { kill(p.processIdentifier, SIGTERM) }
        p.waitUntilExit()
        return (p.terminationStatus == 0, (try? String(contentsOf: outFile, encoding: .utf8)) ?? "")
    }

    func testWatchDuringTheSeedScenario() throws {
        try LabEnv.requireLab()
        let dir = try LabEnv.temporaryDirectory("watch")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (lab, pod, go, labOut) = try startLab(["seed"], scenario: "seed", in: dir)
        defer { if lab.isRunning { kill(lab.processIdentifier, SIGTERM); lab.waitUntilExit() } }
        // -B: with a small kernel buffer and a 256 KiB snaplen the ring holds a handful of frames,
        // and a busy machine drops packets (see the README's lab notes).
        let (watch, watchOut, watchErr) = try startWatch(["-i", "any", "--netns", pod, "--rules", "istio-2018", "-c", "6", "--format", "jsonl", "-l", "-B", "32768"], in: dir)
        defer { if watch.isRunning { kill(watch.processIdentifier, SIGKILL); watch.waitUntilExit() } }
        runLab(lab, go: go, out: labOut, timeout: 60)

        // -c 6 ends it by itself; if a line is still due, SIGINT is the clean way out.
        let d2 = Date().addingTimeInterval(5)
        while watch.isRunning && Date() < d2 { usleep(20_000) }
        if watch.isRunning { kill(watch.processIdentifier, SIGINT) }
        let d3 = Date().addingTimeInterval(10)
        while watch.isRunning && Date() < d3 { usleep(20_000) }
        XCTAssertFalse(watch.isRunning, "watch did not stop")
        watch.waitUntilExit()
        XCTAssertEqual(watch.terminationStatus, 0)

        let err = try String(contentsOf: watchErr, encoding: .utf8)
        XCTAssertTrue(err.contains("packets received by filter"), err)
        XCTAssertTrue(err.contains("packets dropped by kernel"), err)
        XCTAssertTrue(err.contains("\n0 packets dropped by hoptrace's queue (analysis behind; high-water mark "), err)
        var lines = try String(contentsOf: watchOut, encoding: .utf8).split(separator: "\n")
            .compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
        // The stream ends with its summary object.
        let summary = lines.popLast()?["summary"] as? [String: Any]
        XCTAssertEqual((summary?["chains"] as? [String: Any])?["multiHop"] as? Int, 3, "\(summary ?? [:])")
        // Beside libpcap's figures, the capture queue's: nothing shed, a high-water mark.
        let capture = summary?["capture"] as? [String: Any]
        XCTAssertEqual(capture?["queueDropped"] as? Int, 0, "\(summary ?? [:])")
        XCTAssertGreaterThan(capture?["queueHighWaterPackets"] as? Int ?? 0, 0, "\(summary ?? [:])")
        XCTAssertEqual(capture?["queueCapacityBytes"] as? Int, 64 << 20, "\(summary ?? [:])")
        XCTAssertEqual(lines.count, 6, "\(lines)\n\(err)")
        let downstream = lines.filter { $0["role"] as? String == "inbound-intercepted" }
        let upstream = lines.filter { $0["role"] as? String == "inbound-forwarded" }
        XCTAssertEqual(downstream.count, 3, "\(lines)")
        XCTAssertEqual(upstream.count, 3, "\(lines)")
        let upstreamClients = Set(upstream.compactMap { $0["client"] as? String })
        for d in downstream {
            XCTAssertEqual(d["method"] as? String, "HEAD")
            XCTAssertEqual(d["status"] as? Int, 200)
            XCTAssertEqual(d["hops"] as? Int, 2)
            XCTAssertEqual((d["server"] as? String)?.hasSuffix(":80"), true)
            let linked = d["linked"] as? [[String: Any]] ?? []
            XCTAssertEqual(linked.count, 1, "\(d)")
            XCTAssertEqual(linked.first?["role"] as? String, "inbound-forwarded")
            XCTAssertEqual(linked.first?["server"] as? String, "127.0.0.1:80")
            // The link names the proxy → app copy that watch printed on its own line.
            XCTAssertTrue(upstreamClients.contains(linked.first?["client"] as? String ?? "-"), "\(d)")
        }
    }

    /// Peak and current resident memory of a process, in KiB (from /proc).
    static func memory(_ pid: Int32) -> (peak: Int, now: Int)? {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        func field(_ name: String) -> Int? {
            guard let line = s.split(separator: "\n").first(where: { $0.hasPrefix(name) }) else { return nil }
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        }
        guard let p = field("VmHWM:"), let n = field("VmRSS:") else { return nil }
        return (p, n)
    }

    /// A bounded soak: watch the pod through the load scenario (2000 requests over 8
    /// keep-alive connections): no kernel drops at that rate, every request seen, memory bounded.
    /// (`Benchmarks/watch-soak.sh` runs longer and reports the figures.) If the lab's own client
    /// fails (a reset from the scene, not from watch), the scene is built again once.
    func testWatchSoakUnderLoadHasNoDropsAndBoundedMemory() throws {
        try LabEnv.requireLab()
        var labReport = ""
        for attempt in 1...2 {
            let dir = try LabEnv.temporaryDirectory("soak\(attempt)")
            defer { try? FileManager.default.removeItem(at: dir) }
            let (lab, pod, go, labOut) = try startLab(["load", "--requests", "2000", "--connections", "8"], scenario: "load", in: dir)
            defer { if lab.isRunning { kill(lab.processIdentifier, SIGTERM); lab.waitUntilExit() } }
            let (watch, watchOut, watchErr) = try startWatch(["-i", "any", "--netns", pod, "--rules", "istio-2018", "--format", "jsonl", "-s", "1024", "-B", "65536"], in: dir)
            defer { if watch.isRunning { kill(watch.processIdentifier, SIGKILL); watch.waitUntilExit() } }
            let start = Self.memory(watch.processIdentifier)
            let (labPassed, output) = releaseLab(lab, go: go, out: labOut, timeout: 120)
            usleep(300_000)
            let end = Self.memory(watch.processIdentifier)
            kill(watch.processIdentifier, SIGINT)
            let d3 = Date().addingTimeInterval(15)
            while watch.isRunning && Date() < d3 { usleep(20_000) }
            XCTAssertFalse(watch.isRunning, "watch did not stop on SIGINT")
            watch.waitUntilExit()
            XCTAssertEqual(watch.terminationStatus, 0)
            guard labPassed else {
                labReport += "attempt \(attempt): \(output)\n"
                continue
            }

            let err = try String(contentsOf: watchErr, encoding: .utf8)
            XCTAssertTrue(err.contains("\n0 packets dropped by kernel"), "kernel drops during the soak:\n\(err)")
            XCTAssertTrue(err.contains("\n0 packets dropped by hoptrace's queue"), "queue drops during the soak:\n\(err)")
            let lines = try String(contentsOf: watchOut, encoding: .utf8).split(separator: "\n")
            let downstream = lines.filter { $0.contains(#""role":"inbound-intercepted""#) }
            XCTAssertEqual(downstream.count, 2000, err)
            // Under scripts/sanitize.sh the shadow memory and ASan's quarantine of freed blocks
            // are the sanitizer's, not watch's: the bounds are checked without a sanitizer.
            if let start, let end, ProcessInfo.processInfo.environment["HOPTRACE_SANITIZER"] == nil {
                print("watch soak: RSS \(start.now) KiB at start, \(end.now) KiB after 2000 requests, peak \(end.peak) KiB")
                XCTAssertLessThan(end.peak, (64 + 96) * 1024, "watch's memory is not bounded (64 MiB of it is the capture ring)")
                XCTAssertLessThan(end.now - start.now, 32 * 1024, "watch grew by more than 32 MiB over 2000 requests")
            }
            return
        }
        XCTFail("the lab's load scenario failed twice, so the soak could not run:\n\(labReport)")
    }
}
