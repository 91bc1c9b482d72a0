import Foundation
import HopTestSupport
import XCTest

/// Every output of `analyze` (text, json, jsonl, mermaid, html) and of `packets`, `flows` and
/// `http` (text, json, jsonl) on every saved capture, third-party ones included: each run
/// exits 0, or 2 with a message (never a crash or a signal); json output is one JSON document,
/// jsonl output one JSON object per line.
final class EveryCaptureTests: XCTestCase {
    /// Every .pcap / .pcapng file under Captures/ (reference/ holds tshark's outputs, golden/
    /// the printers' outputs, not captures).
    static func captures() throws -> [String] {
        let root = TestEnv.captures
        guard let e = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) else { return [] }
        var out: [String] = []
        for case let url as URL in e {
            let rel = url.path.dropFirst(root.path.count + 1)
            if rel.hasPrefix("reference/") || rel.hasPrefix("golden/") { continue }
            if url.pathExtension == "pcap" || url.pathExtension == "pcapng" { out.append(url.path) }
        }
        return out.sorted()
    }

    enum Shape { case text, json, jsonl }

    struct Run {
        var arguments: [String]
        var shape: Shape
    }

    static func runs(for capture: String) -> [Run] {
        var runs: [Run] = []
        for f in ["text", "json", "jsonl", "mermaid", "html"] {
            runs.append(Run(arguments: ["analyze", capture, "--format", f], shape: f == "json" ? .json : f == "jsonl" ? .jsonl : .text))
        }
        runs.append(Run(arguments: ["analyze", capture, "--all"], shape: .text))
        for sub in ["packets", "flows", "http"] {
            for f in ["text", "json", "jsonl"] {
                runs.append(Run(arguments: [sub, "-r", capture, "--format", f], shape: f == "json" ? .json : f == "jsonl" ? .jsonl : .text))
            }
        }
        return runs
    }

    /// What is wrong with one run's result (empty when it is fine).
    static func problems(_ run: Run, _ r: TestEnv.Result) -> [String] {
        let what = "hoptrace " + run.arguments.joined(separator: " ")
        if let s = r.signal { return ["\(what): killed by signal \(s): \(r.stderr.suffix(400))"] }
        for crash in ["Fatal error", "runtime failure", "Crash", "Stack dump", "Segmentation"] where r.stderr.contains(crash) {
            return ["\(what): crashed: \(r.stderr.suffix(400))"]
        }
        switch r.status {
        case 0: break
        case 2:
            let message = r.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            if message.isEmpty || !(message.contains("hoptrace: ") || message.hasPrefix("Error: ")) {
                return ["\(what): exit 2 without a message: \(message.prefix(200))"]
            }
            // A usage error (json where a stream is printed) prints nothing on standard output.
            if message.hasPrefix("Error: ") { return r.stdout.isEmpty ? [] : ["\(what): usage error with output"] }
        default:
            return ["\(what): exit \(r.status): \(r.stderr.suffix(400))"]
        }
        switch run.shape {
        case .text:
            return []
        case .json:
            do {
                let o = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
                return o is [String: Any] ? [] : ["\(what): the document is not an object"]
            } catch {
                return ["\(what): not one JSON document: \(error): \(r.stdout.prefix(200))"]
            }
        case .jsonl:
            var out: [String] = []
            let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false)
            for (i, line) in lines.enumerated() {
                if line.isEmpty && i == lines.count - 1 { continue }
                let o = try? JSONSerialization.jsonObject(with: Data(line.utf8))
                if !(o is [String: Any]) { out.append("\(what): line \(i + 1) is not a JSON object: \(line.prefix(200))"); break }
            }
            if !r.stdout.isEmpty && !r.stdout.hasSuffix("\n") { out.append("\(what): the last line has no newline") }
            return out
        }
    }

    func testEveryFormatOnEveryCapture() throws {
        let captures = try Self.captures()
        XCTAssertGreaterThanOrEqual(captures.count, 30, "captures found: \(captures)")
        XCTAssertTrue(captures.contains { $0.contains("/third-party/") })
        let runs = captures.flatMap(Self.runs(for:))
        let hoptrace = TestEnv.hoptrace
        let lock = NSLock()
        nonisolated(unsafe) var problems: [String] = []
        nonisolated(unsafe) var next = 0
        // Two runs at a time (the machine's cores).
        DispatchQueue.concurrentPerform(iterations: 2) { _ in
            while true {
                lock.lock()
                let i = next
                next += 1
                lock.unlock()
                guard i < runs.count else { return }
                let found: [String]
                do {
                    found = Self.problems(runs[i], try TestEnv.run(hoptrace, runs[i].arguments, timeout: 60))
                } catch {
                    found = ["hoptrace \(runs[i].arguments.joined(separator: " ")): \(error)"]
                }
                lock.lock()
                problems += found
                lock.unlock()
            }
        }
        XCTAssertEqual(problems, [], "\(problems.count) of \(runs.count) runs")
    }

    /// The streamed document has every key readers know, with the types they expect.
    func testStreamedDocumentKeepsItsKeys() throws {
        let r = try TestEnv.run(TestEnv.hoptrace, ["analyze", TestEnv.captures.appendingPathComponent("lab-load.pcap").path, "--format", "json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let d = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(Set(d.keys), ["schemaVersion", "capture", "rules", "pod", "summary", "answer", "latency", "problems", "chains", "connections",
                                     "duplicates", "orphanResponses", "counters", "warnings"])
        XCTAssertEqual(d["schemaVersion"] as? Int, 2)
        XCTAssertEqual((d["warnings"] as? [Any])?.count, 0, "a full capture of a pod: nothing the analysis can't tell")
        let s = try XCTUnwrap(d["summary"] as? [String: Any])
        XCTAssertNotNil(s["medianProxyAddedNs"] as? Int)
        XCTAssertEqual((d["chains"] as? [Any])?.count, s["logicalRequests"] as? Int)
        XCTAssertTrue((d["answer"] as? String)?.contains("inbound request") == true, "\(d["answer"] ?? "")")
        let hop = try XCTUnwrap(((d["chains"] as? [[String: Any]])?.first?["hops"] as? [[String: Any]])?.first)
        for k in ["requestStartNs", "requestEndNs", "responseStartNs", "responseEndNs"] { XCTAssertNotNil(hop[k] as? Int, k) }
        let qs = hop["requestStartNs"] as! Int, qe = hop["requestEndNs"] as! Int
        let rs = hop["responseStartNs"] as! Int, re = hop["responseEndNs"] as! Int
        XCTAssertTrue(qs <= qe && qe <= rs && rs <= re, "\(qs) \(qe) \(rs) \(re)")
        // jsonl: the same chains, one a line, each connection's line before the first chain
        // that refers to it, and the summary (with the same answer) last.
        let l = try TestEnv.run(TestEnv.hoptrace, ["analyze", TestEnv.captures.appendingPathComponent("lab-load.pcap").path, "--format", "jsonl"])
        let lines = l.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, (d["chains"] as? [Any])!.count + (d["connections"] as? [Any])!.count + 1)
        XCTAssertEqual(lines.filter { $0.hasPrefix(#"{"connection":"#) }.count, (d["connections"] as? [Any])!.count)
        let last = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(lines.last!.utf8)) as? [String: Any])
        let summary = try XCTUnwrap(last["summary"] as? [String: Any])
        XCTAssertEqual(summary["answer"] as? String, d["answer"] as? String)
        XCTAssertEqual((summary["totals"] as? [String: Any])?["medianProxyAddedNs"] as? Int, s["medianProxyAddedNs"] as? Int)
    }

    /// `http --format jsonl` carries the four times of an exchange in ns.
    func testHTTPExchangeTimes() throws {
        let r = try TestEnv.run(TestEnv.hoptrace, ["http", "-r", TestEnv.captures.appendingPathComponent("lab-seed.pcap").path, "--format", "jsonl"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let first = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.split(separator: "\n")[0].utf8)) as? [String: Any])
        for k in ["requestStartNs", "requestEndNs", "responseStartNs", "responseEndNs", "durationNs"] { XCTAssertNotNil(first[k] as? Int, k) }
        XCTAssertEqual((first["responseEndNs"] as! Int) - (first["requestStartNs"] as! Int), first["durationNs"] as? Int)
    }

    /// A pcapng whose packets carry any 64-bit time (here: one ~2024, one 2^64 - 16 µs, past
    /// year 586,000): every command reads it without trapping (times clamp at 2^62 ns).
    func testHostilePcapngTimestampsInEveryFormat() throws {
        func le16(_ v: UInt16) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        func le32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        func block(_ type: UInt32, _ body: [UInt8]) -> [UInt8] {
            var body = body
            while body.count % 4 != 0 { body.append(0) }
            let len = UInt32(12 + body.count)
            return le32(type) + le32(len) + body + le32(len)
        }
        func epb(_ micros: UInt64, _ packet: [UInt8]) -> [UInt8] {
            block(6, le32(0) + le32(UInt32(micros >> 32)) + le32(UInt32(micros & 0xffff_ffff))
                + le32(UInt32(packet.count)) + le32(UInt32(packet.count)) + packet)
        }
        let request = Array("GET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8)
        let response = Array("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".utf8)
        let up = PB.ethernet(payload: PB.ipv4(src: 0xC612_0001, dst: 0xC612_0002,
                                              payload: PB.tcp(sport: 40000, dport: 80, seq: 1, ack: 1, payload: request)))
        let down = PB.ethernet(payload: PB.ipv4(src: 0xC612_0002, dst: 0xC612_0001,
                                                payload: PB.tcp(sport: 80, dport: 40000, seq: 1, ack: UInt32(1 + request.count), payload: response)))
        var file = block(0x0A0D_0D0A, le32(0x1A2B_3C4D) + le16(1) + le16(0) + le32(0xffff_ffff) + le32(0xffff_ffff))
        file += block(1, le16(1) + le16(0) + le32(262_144))
        file += epb(1_700_000_000_000_000, up)
        file += epb(UInt64.max - 15, down)
        file += epb(UInt64.max - 15, up)
        let url = TestEnv.temporaryFile("hostile-times.pcapng")
        try Data(file).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        var problems: [String] = []
        for run in Self.runs(for: url.path) {
            problems += Self.problems(run, try TestEnv.run(TestEnv.hoptrace, run.arguments))
        }
        XCTAssertEqual(problems, [])
        let r = try TestEnv.run(TestEnv.hoptrace, ["http", "-r", url.path, "--format", "jsonl"])
        // The response, centuries after its request, opens a connection of its own (the first
        // one timed out); its time is the clamp.
        XCTAssertTrue(r.stdout.contains("\"responseEndNs\":\((1 << 62) - 1)"), r.stdout)
    }
}
