import Foundation
import HopTestSupport
import XCTest

/// The capture options every packet-reading command shares (packets, flows, http, analyze,
/// watch), each option on each command: what it does, what a command it does not apply to
/// says, and what `--help` lists.
final class CaptureOptionsTests: XCTestCase {
    static let commands = ["packets", "flows", "http", "analyze", "watch"]
    /// The commands that print one line per item (analyze prints a report).
    static let streams = ["packets", "flows", "http", "watch"]

    var seed: String { TestEnv.captures.appendingPathComponent("lab-seed.pcap").path }

    func run(_ args: [String], environment: [String: String] = [:]) throws -> TestEnv.Result {
        try TestProcess.run(TestEnv.hoptrace, args, timeout: 60, environment: environment)
    }

    func ok(_ args: [String], environment: [String: String] = [:], file: StaticString = #filePath, line: UInt = #line) throws -> TestEnv.Result {
        let r = try run(args, environment: environment)
        XCTAssertEqual(r.status, 0, "\(args.joined(separator: " ")): \(r.stderr)", file: file, line: line)
        return r
    }

    func lines(_ s: String) -> [Substring] { s.split(separator: "\n") }

    /// `--utc`, so that times do not depend on the machine's time zone.
    func utc(_ args: [String]) -> [String] { args + ["--utc"] }

    func testFileAsArgumentOrWithDashR() throws {
        for c in Self.commands {
            let positional = try ok(utc([c, seed, "--format", c == "analyze" ? "json" : "jsonl"]))
            let dashR = try ok(utc([c, "-r", seed, "--format", c == "analyze" ? "json" : "jsonl"]))
            XCTAssertEqual(positional.stdout, dashR.stdout, c)
            XCTAssertFalse(positional.stdout.isEmpty, c)
        }
    }

    func testExpressionAfterFileOrAfterDashR() throws {
        // lab-seed.pcap: the client's connections (198.18.10.1 → :80) and the proxy's (lo).
        for c in Self.streams {
            let all = try ok(utc([c, seed]))
            let positional = try ok(utc([c, seed, "host", "198.18.10.1"]))
            let dashR = try ok(utc([c, "-r", seed, "host", "198.18.10.1"]))
            XCTAssertEqual(positional.stdout, dashR.stdout, c)
            XCTAssertFalse(positional.stdout.isEmpty, c)
            XCTAssertLessThan(lines(positional.stdout).count, lines(all.stdout).count, "\(c): the filter keeps the client's connections only")
        }
        let filtered = try ok(["analyze", seed, "host", "198.18.10.1", "--format", "json"])
        XCTAssertTrue(filtered.stdout.contains(#""requestsOnWire":3"#), "analyze: the filter reached the analysis")
    }

    func testCountStopsEachCommand() throws {
        for (c, n) in [("packets", 3), ("flows", 2), ("http", 2), ("watch", 2)] {
            let r = try ok(utc([c, seed, "-c", String(n)]))
            XCTAssertEqual(lines(r.stdout).count, n, "\(c) -c \(n): \(r.stdout)")
        }
        let a = try ok(["analyze", seed, "-c", "2", "--format", "json"])
        XCTAssertTrue(a.stdout.contains(#""requestsOnWire":2"#), a.stdout)
        for c in Self.commands {
            try refused([c, seed, "-c", "0"], saying: "-c 0: the count must be a positive number")
        }
    }

    func testWriteFileKeepsThePacketsRead() throws {
        for c in Self.commands {
            let out = TestEnv.temporaryFile("w-\(c).pcap")
            defer { try? FileManager.default.removeItem(at: out) }
            _ = try ok([c, seed, "-w", out.path, "tcp", "port", "80"])
            let again = try ok(utc(["packets", out.path]))
            let direct = try ok(utc(["packets", seed, "tcp", "port", "80"]))
            XCTAssertEqual(again.stdout, direct.stdout, "\(c) -w wrote what it read, as filtered")
        }
    }

    func testLineBufferedAndNumericLeaveTheOutputAlone() throws {
        for c in Self.commands {
            let plain = try ok(utc([c, seed]))
            XCTAssertEqual(try ok(utc([c, seed, "-l"])).stdout, plain.stdout, "\(c) -l")
            XCTAssertEqual(try ok(utc([c, seed, "-n"])).stdout, plain.stdout, "\(c) -n")
        }
    }

    /// Runs `args` and expects exit status 2 with `message` on standard error.
    func refused(_ args: [String], saying message: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try run(args)
        XCTAssertEqual(r.status, 2, args.joined(separator: " "), file: file, line: line)
        XCTAssertTrue(r.stderr.contains(message), "\(args.joined(separator: " ")): \(r.stderr)", file: file, line: line)
    }

    func testSnaplenAndBufferAreChecked() throws {
        for c in Self.commands {
            try refused([c, seed, "-s", "0"], saying: "-s 0: the snaplen must be a positive number of bytes")
            try refused([c, seed, "-B", "-1"], saying: "-B -1: the buffer size must be a positive number of KiB")
        }
    }

    func testNetnsOnEachCommand() throws {
        let absent = "hoptrace-test-absent-\(getpid())"
        for c in Self.commands {
            try refused([c, "-i", "any", "--netns", absent], saying: "network namespace \(absent) does not exist")
            try refused([c, seed, "--netns", "x"], saying: "--netns applies to live captures (-i), not to a capture file")
        }
    }

    func testListInterfaces() throws {
        for c in Self.commands {
            let r = try ok([c, "-D"])
            XCTAssertTrue(r.stdout.split(separator: "\n").contains { $0.hasSuffix(".lo [Up, Running, Loopback]") || $0.contains(".lo ") }, "\(c): \(r.stdout)")
        }
    }

    func testTimesAreLocalUnlessUTC() throws {
        // lab-seed.pcap starts at 15:02:16 UTC; Tokyo is UTC+9 all year.
        let tokyo = ["TZ": "Asia/Tokyo"]
        for c in Self.streams {
            let local = try ok([c, seed], environment: tokyo)
            let inUTC = try ok([c, seed, "--utc"], environment: tokyo)
            XCTAssertTrue(local.stdout.contains("00:02:16."), "\(c) local: \(local.stdout.prefix(200))")
            XCTAssertFalse(local.stdout.contains("15:02:16."), c)
            XCTAssertTrue(inUTC.stdout.contains("15:02:16."), "\(c) --utc: \(inUTC.stdout.prefix(200))")
        }
        let analyze = try ok(["analyze", seed, "--all"], environment: tokyo)
        XCTAssertTrue(analyze.stdout.contains("00:02:16."), analyze.stdout)
        let json = try ok(["analyze", seed, "--format", "json"], environment: tokyo)
        XCTAssertTrue(json.stdout.contains("T15:02:16."), "JSON times stay UTC")
    }

    func testTimestampStyles() throws {
        for c in Self.streams {
            let none = try ok([c, seed, "-t"])
            XCTAssertFalse(none.stdout.contains(":16."), "\(c) -t: \(none.stdout.prefix(200))")
            XCTAssertFalse(lines(none.stdout).first!.hasPrefix(" "), c)
            let epoch = try ok([c, seed, "-tt"])
            XCTAssertTrue(lines(epoch.stdout).contains { $0.contains("1795705336.") }, "\(c) -tt: \(epoch.stdout.prefix(200))")
            let date = try ok([c, seed, "-tttt", "--utc"])
            XCTAssertTrue(date.stdout.contains("2026-11-26 15:02:16."), "\(c) -tttt: \(date.stdout.prefix(200))")
            let sinceFirst = try ok([c, seed, "-ttttt"])
            XCTAssertTrue(sinceFirst.stdout.hasPrefix(c == "flows" ? "c" : "00:00:00.000000000"), "\(c) -ttttt: \(sinceFirst.stdout.prefix(200))")
        }
        let packets = try ok(["packets", seed, "-ttt", "-c", "2"])
        XCTAssertTrue(lines(packets.stdout)[1].hasPrefix("00:00:00.000039469 "), packets.stdout)
        try refused(["analyze", seed, "-t"], saying: "-t does not apply to this command")
    }

    func testAsciiShowsBytesOrHeads() throws {
        let packets = try ok(utc(["packets", seed, "-A", "-c", "4"]))
        XCTAssertTrue(packets.stdout.contains("\nHEAD / HTTP/1.1\nHost: 198.18.10.2\n"), packets.stdout)
        for c in ["http", "watch"] {
            let r = try ok(utc([c, seed, "-A", "-c", "1"]))
            XCTAssertTrue(r.stdout.contains("\n    > HEAD / HTTP/1.1\n    > Host: 198.18.10.2"), "\(c): \(r.stdout)")
            XCTAssertTrue(r.stdout.contains("\n    < HTTP/1.1 200 OK\n    < Server: nginx"), "\(c): \(r.stdout)")
        }
        // HEAD responses have no body: -A adds nothing to the heads there.
        XCTAssertEqual(try ok(utc(["http", seed, "--headers"])).stdout, try ok(utc(["http", seed, "-A"])).stdout)
        for c in ["flows", "analyze"] {
            try refused([c, seed, "-A"], saying: "-A does not apply to this command")
        }
    }

    func testAsciiShowsABodyPrefix() throws {
        let load = TestEnv.captures.appendingPathComponent("lab-load.pcap").path
        let text = try ok(utc(["http", load, "-A"])).stdout
        // GET /big: 100,000 bytes, the first 256 shown, '.' for what is not printable.
        XCTAssertTrue(text.contains("\n    < Accept-Ranges: bytes\n    <\n    < .....#*18?FMT[bipw~"), text)
        XCTAssertTrue(text.contains("\n    < [256 of 100000 body bytes shown]"), text)
        XCTAssertFalse(try ok(utc(["http", load, "--headers"])).stdout.contains("body bytes shown"))
        let json = try ok(["http", load, "-A", "--format", "jsonl"]).stdout
        let big = json.split(separator: "\n").first { $0.contains(#""responseBodyBytes":100000"#) }.map(String.init) ?? ""
        XCTAssertTrue(big.contains(#""responseBodyPrefix":""#), json)
        XCTAssertTrue(big.contains(#""requestBodyPrefix":"""#), big)
        XCTAssertFalse(try ok(["http", load, "--headers", "--format", "jsonl"]).stdout.contains("BodyPrefix"))
    }

    func testHeadersInJSON() throws {
        let plain = try ok(["http", seed, "--format", "jsonl", "-c", "1"])
        XCTAssertFalse(plain.stdout.contains("requestHeaders"))
        let heads = try ok(["http", seed, "--format", "jsonl", "-c", "1", "--headers"])
        XCTAssertTrue(heads.stdout.contains(#""requestHeaders":[{"name":"Host","value":"198.18.10.2"}"#), heads.stdout)
        XCTAssertTrue(heads.stdout.contains(#""responseHeaders":[{"name":"Server","value":"nginx"}"#), heads.stdout)
        let watch = try ok(["watch", seed, "--format", "jsonl", "-c", "1", "-A"])
        XCTAssertTrue(watch.stdout.contains(#""requestHeaders":[{"name":"Host","value":"198.18.10.2"}"#), watch.stdout)
    }

    func testVerboseAbsoluteSequenceAndNumbersOnPackets() throws {
        let v = try ok(utc(["packets", seed, "-v", "-c", "1"]))
        XCTAssertTrue(v.stdout.contains(" In IP (ttl 64, id 60709) 198.18.10.1.35550 > 198.18.10.2.80"), v.stdout)
        XCTAssertEqual(try ok(utc(["packets", seed, "-S"])).stdout, try ok(utc(["packets", seed])).stdout)
        let numbered = try ok(utc(["packets", seed, "-#", "-c", "2"]))
        XCTAssertEqual(lines(numbered.stdout).map { $0.prefix(3) }, ["1  ", "2  "], numbered.stdout)
        let counters = try ok(utc(["packets", seed, "--number"]))
        XCTAssertTrue(lines(counters.stdout)[59].hasPrefix("60  "), "numbered as the counters cite packets")
        for c in ["flows", "http", "analyze", "watch"] {
            for option in ["-v", "-S", "-#"] {
                try refused([c, seed, option], saying: "\(option) does not apply to this command")
            }
        }
    }

    func testHelpListsOnlyWhatWorks() throws {
        let expected: [String: (shown: [String], hidden: [String], formats: String)] = [
            "packets": (["  -A ", "  -v ", "  -S ", "  -#, --number", "  -t "], [], "(values: text, jsonl;"),
            "flows": (["  -t "], ["  -A ", "  -v ", "  -S ", "  -#"], "(values: text, jsonl;"),
            "http": (["  -A ", "  -t ", "--headers"], ["  -v ", "  -S ", "  -#"], "(values: text, jsonl;"),
            "analyze": ([], ["  -A ", "  -v ", "  -S ", "--number", "  -t "], "(values: text, json, jsonl, mermaid, html;"),
            "watch": (["  -A ", "  -t ", "  -Z "], ["  -v ", "  -S ", "  -#"], "(values: text, jsonl;"),
        ]
        for (c, e) in expected {
            let raw = try ok([c, "--help"]).stdout
            // Words as shown, whatever the line breaks.
            let help = raw.split(whereSeparator: { $0 == " " || $0 == "\n" }).joined(separator: " ")
            for common in ["  -r <file>", "  -i <interface>", "  --netns <name>", "  -c <count>", "  -w <file>", "  -l ", "  -s <snaplen>",
                           "  -B <KiB>", "  -n ", "  -D, --list-interfaces", "  --utc", "<file>", "<expression>"].map({ $0.trimmingCharacters(in: .whitespaces) + " " }) {
                XCTAssertTrue(help.contains(common), "\(c) --help lacks \(common)")
            }
            for s in e.shown.map({ " " + $0.trimmingCharacters(in: .whitespaces) + " " }) { XCTAssertTrue(help.contains(s), "\(c) --help lacks \(s)") }
            // An option's line begins with it.
            let optionLines = raw.split(separator: "\n").map { " " + $0.trimmingCharacters(in: .whitespaces) }
            for h in e.hidden.map({ " " + $0.trimmingCharacters(in: .whitespaces) }) {
                XCTAssertFalse(optionLines.contains { $0.hasPrefix(h + " ") || $0.hasPrefix(h + ",") || $0 == h }, "\(c) --help lists \(h), which does not apply")
            }
            XCTAssertTrue(help.contains(e.formats), "\(c) --help: \(help)")
        }
        for c in ["packets", "flows", "http", "watch"] {
            try refused([c, seed, "--format", "json"], saying: "The value 'json' is invalid for '--format <format>'")
        }
    }

    func testEveryJSONLStreamEndsWithASummary() throws {
        for c in Self.commands {
            let r = try ok([c, seed, "--format", "jsonl"])
            let last = lines(r.stdout).last ?? ""
            XCTAssertTrue(last.hasPrefix(#"{"summary":{"#), "\(c): \(last)")
            XCTAssertTrue(last.contains(#""warnings":["#), "\(c): \(last)")
        }
        let watch = try ok(["watch", seed, "--format", "jsonl"])
        XCTAssertTrue(lines(watch.stdout).last!.contains(#""chains":{"exchanges":6,"chains":3,"multiHop":3"#), watch.stdout)
    }

    func testWatchReadsAFileAndReplaysItAsLive() throws {
        let r = try ok(utc(["watch", "-r", seed]))
        let text = lines(r.stdout)
        XCTAssertEqual(text.count, 6, r.stdout)
        XCTAssertTrue(text.contains { $0.contains("inbound-intercepted HEAD / → 200") && $0.contains("hop 1 of chain") }, r.stdout)
        XCTAssertTrue(r.stderr.contains("6 exchanges, 3 chains (3 multi-hop)"), r.stderr)
    }

    func testNanosecondFieldsHaveStringForms() throws {
        let r = try ok(["analyze", seed, "--format", "json"])
        for key in ["requestStart", "requestEnd", "responseStart", "responseEnd"] {
            XCTAssertTrue(r.stdout.contains("\"\(key)\":\"2026-11-26T15:02:"), "\(key) as an ISO string: \(r.stdout.prefix(300))")
            XCTAssertTrue(r.stdout.contains("\"\(key)Ns\":"), key)
        }
    }

    func testLabHasNoVerifyAndInterceptSaysCIDRs() throws {
        try refused(["lab", "seed", "--verify"], saying: "Unknown option '--verify'")
        let help = try ok(["intercept", "render", "--help"]).stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).joined(separator: " ")
        XCTAssertTrue(help.contains("-i means CIDRs here, as in istio-iptables"), help)
    }
}
