import Foundation
import HopTestSupport
import XCTest

/// The hostile captures of scripts/make-adversarial.py, made small (`--small`) in a temporary
/// folder, through every command and every format: each run exits 0 or 2 (2: an input error,
/// said on stderr), is never ended by a signal, and stays under the memory cap stated in
/// Benchmarks/README.md ("Adversarial captures"); formats a command does not print are refused
/// with exit 2. The full-size runs are `Benchmarks/adversarial.sh`.
final class AdversarialCaptureTests: XCTestCase {
    /// hoptrace's bound whatever the capture (Benchmarks/README.md).
    static let capMiB = 200
    static let commands = ["packets", "flows", "http", "analyze"]
    static let formats = ["text", "json", "jsonl", "mermaid", "html"]
    /// Set by scripts/sanitize.sh: the binary runs under ASan or TSan, whose memory is not capped.
    static let sanitized = ProcessInfo.processInfo.environment["HOPTRACE_SANITIZER"] != nil

    static func supports(_ command: String, _ format: String) -> Bool {
        command == "analyze" || format == "text" || format == "jsonl"
    }

    nonisolated(unsafe) static var made: URL?

    /// Makes the small captures once for the whole class.
    func captures() throws -> URL {
        if let dir = Self.made { return dir }
        guard let python = TestEnv.which("python3") else { throw XCTSkip("python3 makes the adversarial captures") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hoptrace-adversarial-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        let script = TestEnv.repoRoot.appendingPathComponent("scripts/make-adversarial.py").path
        let made = try TestEnv.run(python, [script, dir.path, "--small"], timeout: 300)
        XCTAssertEqual(made.status, 0, made.stderr)
        Self.made = dir
        return dir
    }

    override class func tearDown() {
        if let dir = made { try? FileManager.default.removeItem(at: dir) }
        super.tearDown()
    }

    func file(_ name: String) throws -> String {
        let dir = try captures()
        let pcapng = dir.appendingPathComponent("\(name).pcapng")
        return FileManager.default.fileExists(atPath: pcapng.path) ? pcapng.path : dir.appendingPathComponent("\(name).pcap").path
    }

    func testEveryCaptureThroughEveryCommandAndFormat() throws {
        let dir = try captures()
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path)
            .filter { $0.hasSuffix(".pcap") || $0.hasSuffix(".pcapng") }.sorted()
        XCTAssertEqual(files.count, 13, "every scenario of make-adversarial.py: \(files)")
        let out = dir.appendingPathComponent("out").path, err = dir.appendingPathComponent("err").path
        for name in files {
            let path = dir.appendingPathComponent(name).path
            for command in Self.commands {
                for format in Self.formats where Self.supports(command, format) || name == files[0] {
                    let run = TestProcess.runMeasured(TestEnv.hoptrace, [command, "-r", path, "--format", format],
                                                      stdout: out, stderr: err)
                    let what = "\(name) \(command) --format \(format)"
                    let stderr = (try? String(contentsOfFile: err, encoding: .utf8)) ?? ""
                    XCTAssertNil(run.signal, "\(what): ended by signal \(run.signal ?? 0): \(stderr.suffix(2000))")
                    XCTAssertFalse(run.timedOut, "\(what): still running after the timeout")
                    if Self.supports(command, format) {
                        XCTAssertTrue(run.status == 0 || run.status == 2, "\(what): exit \(run.status): \(stderr.suffix(2000))")
                        if run.status == 2 { XCTAssertTrue(stderr.contains("hoptrace:"), "\(what): exit 2 without a message") }
                    } else {
                        XCTAssertEqual(run.status, 2, "\(what): a format the command does not print must be refused")
                    }
                    // A sanitizer's shadow memory is not hoptrace's (scripts/sanitize.sh says which runs).
                    if !Self.sanitized {
                        XCTAssertLessThan(run.peakKiB, Self.capMiB * 1024, "\(what): peak \(run.peakKiB / 1024) MiB")
                    }
                }
            }
        }
    }

    /// What each capture's summary must say: what was dropped, capped or odd, and why.
    func testSummariesSayWhatWasDroppedOrCapped() throws {
        func jsonlSummary(_ command: String, _ name: String) throws -> (String, Int32, String) {
            let r = try TestEnv.hoptrace(command, "-r", try file(name), "--format", "jsonl")
            return (r.stdout.split(separator: "\n").last.map(String.init) ?? "", r.status, r.stderr)
        }
        // Conflicting overlaps: the first copy of every byte is kept (never the whole /FAKE/
        // one; the three-way shape's first copies spell /reKE/), and the conflicts are counted.
        let overlap = try TestEnv.hoptrace("http", "-r", try file("overlap"), "--format", "jsonl")
        XCTAssertEqual(overlap.status, 0, overlap.stderr)
        XCTAssertFalse(overlap.stdout.contains("/FAKE/"), "a later conflicting copy won")
        XCTAssertEqual(overlap.stdout.components(separatedBy: "\"/real/").count - 1, 18)
        XCTAssertEqual(overlap.stdout.components(separatedBy: "\"/reKE/").count - 1, 3)
        XCTAssertTrue(overlap.stdout.contains("\"inconsistent-retransmissions\""))

        // 2,000 pipelined requests, a queue of 1,024: the overflow is counted and no pair is wrong.
        let (pipelined, status, _) = try jsonlSummary("http", "pipelined")
        XCTAssertEqual(status, 0)
        XCTAssertTrue(pipelined.contains("\"queue-overflows\":976"), pipelined)
        XCTAssertTrue(pipelined.contains("\"queue-overflow-responses\":976"), pipelined)
        XCTAssertTrue(pipelined.contains("\"paired-exchanges\":1024"), pipelined)

        // mermaid and html keep whole only the chains they show (the first 500, the first drawn
        // and listed ones): the counts of the rest must still be there, and html's table has
        // every chain in its data.
        let html = try TestEnv.hoptrace("analyze", "-r", try file("pipelined"), "--format", "html")
        XCTAssertTrue(html.stdout.contains("2000 requests — GET /p/0 ×1"), "direct requests counted, kept or not")
        XCTAssertTrue(html.stdout.contains("2000 chains, 100 a page"), "every chain in the table")
        XCTAssertTrue(html.stdout.contains("1950 more chains not drawn"))
        let mermaid = try TestEnv.hoptrace("analyze", "-r", try file("pipelined"), "--format", "mermaid")
        XCTAssertTrue(mermaid.stdout.contains("GET /p/7 ×1, …"), mermaid.stdout.suffix(500).description)

        // The clock going backwards loses no pair.
        let (backwards, _, _) = try jsonlSummary("http", "time-backwards")
        XCTAssertTrue(backwards.contains("\"paired-exchanges\":50"), backwards)
        XCTAssertTrue(backwards.contains("\"timestamps-backwards\""), backwards)
        XCTAssertFalse(backwards.contains("responses-without-request"), backwards)

        // Wrapping sequence numbers lose nothing.
        let (wrap, _, _) = try jsonlSummary("http", "seq-wrap")
        XCTAssertTrue(wrap.contains("\"paired-exchanges\":50"), wrap)

        // A 1 MB (here 100 kB) header line: counted, the next request on the connection still parsed.
        let big = try TestEnv.hoptrace("http", "-r", try file("big-header"), "--format", "jsonl")
        XCTAssertTrue(big.stdout.contains("/after"), big.stdout.suffix(1000).description)
        XCTAssertTrue(big.stdout.contains("header-limit"), big.stdout.suffix(1000).description)

        // The body is counted, not kept; the exchange after it is parsed.
        let body = try TestEnv.hoptrace("http", "-r", try file("big-body"), "--format", "jsonl")
        XCTAssertTrue(body.stdout.contains("/after-big-body"))
        XCTAssertTrue(body.stdout.contains("1048576"), "the body's length")

        // snaplen 64: every payload cut, said as truncated gaps.
        let (snap, _, _) = try jsonlSummary("flows", "snaplen64")
        XCTAssertTrue(snap.contains("\"gaps-truncated\":20"), snap)

        // Holes with more than a direction's buffer behind them: the cap is hit, the hole
        // becomes a counted gap, the bytes behind it are delivered, the answers kept.
        let (holes, _, _) = try jsonlSummary("flows", "hole-flood")
        XCTAssertTrue(holes.contains("\"buffer-cap-per-direction\":2"), holes)
        XCTAssertTrue(holes.contains("\"gaps-cap-hit\":2"), holes)

        // The SYN flood: every connection one-sided, said in a warning.
        let (flood, _, _) = try jsonlSummary("flows", "syn-flood")
        XCTAssertTrue(flood.contains("\"one-sided-connections\":5000"), flood)

        // A file cut in a packet: exit 2, the packet named, everything before it analyzed.
        let cut = try TestEnv.hoptrace("http", "-r", try file("truncated"), "--format", "jsonl")
        XCTAssertEqual(cut.status, 2)
        XCTAssertTrue(cut.stderr.contains("truncated or corrupt after packet 95"), cut.stderr)
        XCTAssertEqual(cut.stdout.components(separatedBy: "\"/cut/").count - 1, 10)

        // Interfaces of several link types (Ethernet, Ethernet, LINUX_SLL, RAW): read whole,
        // every packet decoded with its interface's link type and named by its interface.
        let mixed = try TestEnv.hoptrace("http", "-r", try file("pcapng-interfaces"), "--format", "jsonl")
        XCTAssertEqual(mixed.status, 0, mixed.stderr)
        for (name, n) in [("eth0", 4), ("eth1", 3), ("any", 3), ("tun0", 3)] {
            XCTAssertEqual(mixed.stdout.components(separatedBy: "\"/if/\(name)/").count - 1, n, "the exchanges on \(name)")
        }
        XCTAssertEqual(mixed.stdout.components(separatedBy: "\"/if/eth0/last\"").count - 1, 1, "the exchange after the change of link type")
        let packets = try TestEnv.hoptrace("packets", "-r", try file("pcapng-interfaces"), "--format", "jsonl")
        XCTAssertEqual(packets.status, 0, packets.stderr)
        var perInterface: [String: Int] = [:]
        for line in packets.stdout.split(separator: "\n") where !line.hasPrefix("{\"summary\"") {
            guard let r = line.range(of: "\"interface\":\""), let e = line[r.upperBound...].firstIndex(of: "\"") else {
                XCTFail("no interface: \(line)"); continue
            }
            perInterface[String(line[r.upperBound..<e]), default: 0] += 1
        }
        // As tshark counts them (frame.interface_name).
        XCTAssertEqual(perInterface, ["eth0": 40, "eth1": 30, "any": 30, "tun0": 30])
        XCTAssertTrue(packets.stderr.contains("130 packets read"), packets.stderr)
        // analyze names each hop's interface (streamed jsonl and the text report), and does not
        // say the capture holds one interface.
        let analyzed = try TestEnv.hoptrace("analyze", "-r", try file("pcapng-interfaces"), "--format", "jsonl")
        XCTAssertEqual(analyzed.status, 0, analyzed.stderr)
        for name in ["eth0", "eth1", "any", "tun0"] {
            XCTAssertTrue(analyzed.stdout.contains("\"interface\":\"\(name)\""), "hops on \(name)")
        }
        XCTAssertFalse(analyzed.stdout.contains("single-interface"), analyzed.stdout)
        let text = try TestEnv.hoptrace("analyze", "-r", try file("pcapng-interfaces"), "--all")
        XCTAssertTrue(text.stdout.contains("130 packets (EN10MB, LINUX_SLL, RAW)"), text.stdout)
        XCTAssertTrue(text.stdout.contains("on tun0"), text.stdout)
        // A BPF filter applies to every interface, compiled for its link type.
        let filtered = try TestEnv.hoptrace("packets", "-r", try file("pcapng-interfaces"), "-q", "tcp[tcpflags] & tcp-syn != 0")
        XCTAssertEqual(filtered.status, 0, filtered.stderr)
        XCTAssertTrue(filtered.stderr.contains("26 packets read"), filtered.stderr)
        // A filter that cannot apply to the LINUX_SLL and RAW interfaces (ether host): their
        // 60 packets are left out, counted and said, in every command and format.
        let ether = "ether host 02:00:00:00:00:01"
        let etherPackets = try TestEnv.hoptrace("packets", "-r", try file("pcapng-interfaces"), "-q", ether)
        XCTAssertEqual(etherPackets.status, 0, etherPackets.stderr)
        XCTAssertTrue(etherPackets.stderr.contains("60 filter-not-applicable (first: packet 1): packets of interfaces whose link type"), etherPackets.stderr)
        let http = try TestEnv.hoptrace("http", "-r", try file("pcapng-interfaces"), "--format", "jsonl", ether)
        XCTAssertTrue(http.stdout.contains(#""filter-not-applicable":60"#), http.stdout)
        let etherAnalyzed = try TestEnv.hoptrace("analyze", "-r", try file("pcapng-interfaces"), ether)
        XCTAssertTrue(etherAnalyzed.stdout.contains("capture notes: 60 filter-not-applicable"), etherAnalyzed.stdout)
    }
}
