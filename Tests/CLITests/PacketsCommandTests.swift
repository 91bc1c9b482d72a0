import Foundation
import HopTestSupport
import XCTest

/// `hoptrace packets` end to end: real libpcap reads of crafted and real files, messages and exit codes.
final class PacketsCommandTests: XCTestCase {
    let payload = Array("GET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8)

    func packet(seq: UInt32) -> [UInt8] {
        PB.ethernet(payload: PB.ipv4(payload: PB.tcp(sport: 40001, dport: 80, seq: seq, ack: 9, payload: payload)))
    }

    func testMicroAndNanosecondFilesGiveNanosecondTimes() throws {
        var micro = PcapFileBuilder(linkType: 1)
        micro.add(packet(seq: 1), seconds: 1_700_000_000, fraction: 123_456)
        let m = TestEnv.temporaryFile("micro.pcap"); try micro.write(to: m)
        var nano = PcapFileBuilder(linkType: 1, nanosecond: true)
        nano.add(packet(seq: 1), seconds: 1_700_000_000, fraction: 123_456_789)
        let n = TestEnv.temporaryFile("nano.pcap"); try nano.write(to: n)
        defer { try? FileManager.default.removeItem(at: m); try? FileManager.default.removeItem(at: n) }

        let rm = try TestEnv.hoptrace("packets", "-r", m.path, "--format", "jsonl")
        XCTAssertEqual(rm.status, 0, rm.stderr)
        XCTAssertTrue(rm.stdout.contains(#""time":"2023-11-14T22:13:20.123456000Z""#), rm.stdout)
        let rn = try TestEnv.hoptrace("packets", "-r", n.path, "--format", "jsonl")
        XCTAssertTrue(rn.stdout.contains(#""time":"2023-11-14T22:13:20.123456789Z""#), rn.stdout)
        for key in ["\"interface\":null", "\"direction\":null", "\"src\":\"198.18.0.1:40001\"", "\"dst\":\"198.18.0.2:80\"", "\"flags\":\"P.\"", "\"seq\":1", "\"ack\":9", "\"len\":\(payload.count)"] {
            XCTAssertTrue(rn.stdout.contains(key), "\(key) missing in \(rn.stdout)")
        }
        let text = try TestEnv.hoptrace("packets", "-r", n.path)
        XCTAssertEqual(text.stdout, "22:13:20.123456789 IP 198.18.0.1.40001 > 198.18.0.2.80: Flags [P.], seq 1:\(1 + payload.count), ack 9, win 512, length \(payload.count)\n")
        XCTAssertTrue(text.stderr.contains("1 packet read (EN10MB), 1 TCP segment"), text.stderr)
    }

    func testTruncatedFileReportsPacketsReadAndStillProcessesThem() throws {
        var b = PcapFileBuilder(linkType: 1)
        for i in 0..<3 { b.add(packet(seq: UInt32(1 + 100 * i))) }
        b.bytes.removeLast(10)  // the third record is cut short
        let f = TestEnv.temporaryFile("trunc.pcap"); try b.write(to: f)
        defer { try? FileManager.default.removeItem(at: f) }
        let r = try TestEnv.hoptrace("packets", "-r", f.path)
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.stdout.split(separator: "\n").count, 2, "the two complete packets are still printed")
        XCTAssertTrue(r.stderr.contains("truncated or corrupt after packet 2 (2 packets read"), r.stderr)
    }

    func testMissingFileAndNotACaptureFile() throws {
        let r = try TestEnv.hoptrace("packets", "-r", "/nonexistent/capture.pcap")
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.stderr, "hoptrace: /nonexistent/capture.pcap: no such file\n")
        let f = TestEnv.temporaryFile("text.txt")
        try Data("hello, this is not a capture\n".utf8).write(to: f)
        defer { try? FileManager.default.removeItem(at: f) }
        let r2 = try TestEnv.hoptrace("packets", "-r", f.path)
        XCTAssertEqual(r2.status, 2)
        XCTAssertTrue(r2.stderr.contains("not a pcap or pcapng capture file (libpcap: unknown file format)"), r2.stderr)
        let r3 = try TestEnv.hoptrace("packets", "-r", FileManager.default.temporaryDirectory.path)
        XCTAssertEqual(r3.status, 2)
        XCTAssertTrue(r3.stderr.contains("it is a directory"), r3.stderr)
    }

    func testShortHeaderFileIsReportedAsTruncated() throws {
        let f = TestEnv.temporaryFile("short.pcap")
        try Data([0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0]).write(to: f)
        defer { try? FileManager.default.removeItem(at: f) }
        let r = try TestEnv.hoptrace("packets", "-r", f.path)
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("truncated"), r.stderr)
    }

    func testUnsupportedLinkTypeIsNamed() throws {
        var b = PcapFileBuilder(linkType: 105)  // IEEE 802.11
        b.add([0x08, 0x00, 0, 0, 1, 2, 3, 4])
        b.add([0x08, 0x00, 0, 0, 1, 2, 3, 4])
        let f = TestEnv.temporaryFile("wifi.pcap"); try b.write(to: f)
        defer { try? FileManager.default.removeItem(at: f) }
        let r = try TestEnv.hoptrace("packets", "-r", f.path)
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("unsupported link type IEEE802_11"), r.stderr)
        XCTAssertTrue(r.stderr.contains("2 packets not decoded"), r.stderr)
    }

    func testBadFilterQuotesExpressionAndLibpcapMessage() throws {
        var b = PcapFileBuilder(linkType: 1)
        b.add(packet(seq: 1))
        let f = TestEnv.temporaryFile("f.pcap"); try b.write(to: f)
        defer { try? FileManager.default.removeItem(at: f) }
        let r = try TestEnv.hoptrace("packets", "-r", f.path, "tcp", "port", "eighty")
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.hasPrefix("hoptrace: bad filter expression 'tcp port eighty': "), r.stderr)
        // A good filter applies: port 81 matches nothing.
        let r2 = try TestEnv.hoptrace("packets", "-r", f.path, "tcp", "port", "81")
        XCTAssertEqual(r2.status, 0)
        XCTAssertEqual(r2.stdout, "")
        XCTAssertTrue(r2.stderr.contains("0 packets read"), r2.stderr)
    }

    func testCountLimitAndMalformedCountersOnStderr() throws {
        var b = PcapFileBuilder(linkType: 1)
        b.add(PB.ethernet(payload: PB.ipv4(ihlWords: 3, payload: PB.tcp())))  // packet 1: malformed
        for i in 0..<5 { b.add(packet(seq: UInt32(i * 1000))) }
        b.add(PB.ethernet(type: 0x0806, payload: [UInt8](repeating: 0, count: 28)))
        let f = TestEnv.temporaryFile("count.pcap"); try b.write(to: f)
        defer { try? FileManager.default.removeItem(at: f) }
        let r = try TestEnv.hoptrace("packets", "-r", f.path, "-c", "3", "-n")
        XCTAssertEqual(r.status, 0)
        XCTAssertEqual(r.stdout.split(separator: "\n").count, 3)
        let all = try TestEnv.hoptrace("packets", "-r", f.path, "-q")
        XCTAssertEqual(all.stdout, "")
        XCTAssertTrue(all.stderr.contains("7 packets read (EN10MB), 5 TCP segments"), all.stderr)
        XCTAssertTrue(all.stderr.contains("1 malformed:ipv4-bad-header-length (first: packet 1)"), all.stderr)
        XCTAssertTrue(all.stderr.contains("1 non-ip (first: packet 7)"), all.stderr)
    }

    func testWriteFileRoundTrip() throws {
        var b = PcapFileBuilder(linkType: 1, nanosecond: true)
        for i in 0..<4 { b.add(packet(seq: UInt32(i * 1000)), fraction: UInt32(i)) }
        let f = TestEnv.temporaryFile("in.pcap"), w = TestEnv.temporaryFile("out.pcap")
        try b.write(to: f)
        defer { try? FileManager.default.removeItem(at: f); try? FileManager.default.removeItem(at: w) }
        let r = try TestEnv.hoptrace("packets", "-r", f.path, "-q", "-w", w.path)
        XCTAssertEqual(r.status, 0, r.stderr)
        let a = try TestEnv.hoptrace("packets", "-r", f.path)
        let c = try TestEnv.hoptrace("packets", "-r", w.path)
        XCTAssertEqual(a.stdout, c.stdout)
        XCTAssertEqual(c.stdout.split(separator: "\n").count, 4)
    }

    func testUsageErrorsExitTwoAndHelpReads() throws {
        let r = try TestEnv.hoptrace("packets")
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("give a capture FILE, -r FILE, or an interface with -i IFACE"), r.stderr)
        let h = try TestEnv.hoptrace("--help")
        XCTAssertEqual(h.status, 0)
        XCTAssertTrue(h.stdout.contains("packets"), h.stdout)
        let hp = try TestEnv.hoptrace("packets", "--help")
        XCTAssertEqual(hp.status, 0)
        XCTAssertTrue(hp.stdout.contains("BPF filter expression"), hp.stdout)
    }

    func testUnknownInterface() throws {
        let r = try TestEnv.hoptrace("packets", "-i", "nosuchif0", "-c", "1")
        XCTAssertEqual(r.status, 2)
        if TestEnv.isRoot {
            XCTAssertTrue(r.stderr.contains("nosuchif0: no such interface"), r.stderr)
        } else {
            XCTAssertTrue(r.stderr.contains("no such interface") || r.stderr.contains("CAP_NET_RAW"), r.stderr)
        }
    }

    func testLiveCaptureWithoutPrivilegeNamesTheCapability() throws {
        if TestEnv.isRoot {
            guard let setpriv = TestEnv.which("setpriv") else { throw XCTSkip("setpriv (util-linux) is missing: cannot drop root to test the no-permission message") }
            let r = try TestEnv.run(setpriv, ["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", TestEnv.hoptrace, "packets", "-i", "lo", "-c", "1"])
            XCTAssertEqual(r.status, 2, r.stderr)
            XCTAssertTrue(r.stderr.contains("needs CAP_NET_RAW"), r.stderr)
        } else {
            let r = try TestEnv.hoptrace("packets", "-i", "lo", "-c", "1")
            XCTAssertEqual(r.status, 2)
            XCTAssertTrue(r.stderr.contains("needs CAP_NET_RAW"), r.stderr)
        }
    }
}
