import Foundation
import HopTestSupport
import XCTest

/// Each mistake gets one line that says what is wrong, and exit status 2.
final class ErrorMessageTests: XCTestCase {
    func capture(_ name: String) -> String { TestEnv.captures.appendingPathComponent(name).path }

    /// Runs hoptrace, expects exit 2 and returns its standard error.
    func failure(_ args: [String], stdin: Data? = nil, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let r = try TestProcess.run(TestEnv.hoptrace, args, stdin: stdin)
        XCTAssertEqual(r.status, 2, "\(args): \(r.stderr)", file: file, line: line)
        XCTAssertEqual(r.stdout, "", file: file, line: line)
        return r.stderr
    }

    func testNegativeNumbersSayWhatIsWrongWithTheValue() throws {
        let cases: [([String], String)] = [
            (["http", "-r", capture("ethernet.pcap"), "-c", "-5"], "Error: -c -5: the count must be a positive number"),
            (["packets", "-r", capture("ethernet.pcap"), "-c", "-5"], "Error: -c -5: the count must be a positive number"),
            (["packets", "-r", capture("ethernet.pcap"), "-s", "-1"], "Error: -s -1: the snaplen must be a positive number of bytes"),
            (["flows", "-r", capture("ethernet.pcap"), "-B", "-2"], "Error: -B -2: the buffer size must be a positive number of KiB"),
            (["analyze", "--tolerance", "-5"], "Error: --tolerance -5.0: must be a number of milliseconds from 0 to 86400000 (a day)"),
            (["analyze", "--duplicate-window", "-1"], "Error: --duplicate-window -1.0: must be a number"),
        ]
        for (args, message) in cases {
            let e = try failure(args)
            XCTAssertTrue(e.hasPrefix(message), "\(args): \(e)")
            XCTAssertFalse(e.contains("Missing value"), e)
        }
        // A value still has to be there.
        XCTAssertTrue(try failure(["http", "-r", capture("ethernet.pcap"), "-c"]).contains("Missing value for '-c <count>'"))
    }

    func testRulesThatAreADirectory() throws {
        let e = try failure(["analyze", capture("lab-seed.pcap"), "--rules", TestEnv.captures.path])
        XCTAssertEqual(e, "hoptrace: --rules \(TestEnv.captures.path): is a directory; give a file of iptables-save text (e.g. `iptables-save -t nat > rules.txt` in the pod's network namespace), or one of istio-2018, istio-current, auto, live, none\n")
        XCTAssertFalse(e.contains("NSCocoaErrorDomain"))
    }

    func testAnEmptyCaptureIsEmpty() throws {
        let f = TestEnv.temporaryFile("empty.pcap")
        try Data().write(to: f)
        defer { try? FileManager.default.removeItem(at: f) }
        XCTAssertEqual(try failure(["analyze", f.path]),
                       "hoptrace: \(f.path): the file is empty (0 bytes, not even a capture file header): the capture was stopped before it wrote anything, or it was written elsewhere\n")
        XCTAssertTrue(try failure(["http", "-r", "-"], stdin: Data()).hasPrefix("hoptrace: standard input is empty (0 bytes"))
    }

    func testACompressedCaptureSaysHowToDecompressIt() throws {
        guard let gzip = TestEnv.which("gzip") else { throw XCTSkip("gzip is not installed") }
        let f = TestEnv.temporaryFile("ethernet.pcap.gz")
        defer { try? FileManager.default.removeItem(at: f) }
        let zipped = try TestEnv.run(gzip, ["-c", capture("ethernet.pcap")])
        try zipped.stdoutData.write(to: f)
        XCTAssertEqual(try failure(["analyze", f.path]),
                       "hoptrace: \(f.path): a gzip-compressed file; hoptrace reads pcap and pcapng: decompress it first, e.g. `zcat \(f.path) | hoptrace analyze -r -`\n")
        // The way the message gives works.
        let unzipped = try TestProcess.run(TestEnv.hoptrace, ["analyze", "-r", "-"], stdin: try Data(contentsOf: URL(fileURLWithPath: capture("ethernet.pcap"))))
        XCTAssertEqual(unzipped.status, 0, unzipped.stderr)
    }

    func testAnUnknownPresetListsThePresetsWithTheSubcommandsUsage() throws {
        let e = try failure(["intercept", "render", "--preset", "foo"])
        XCTAssertTrue(e.hasPrefix("Error: --preset foo: unknown (istio-2018, istio-current)\nUsage: hoptrace intercept render "), e)
    }

    func testCheckOutsideTheRepositorySaysWhereItLooked() throws {
        let dir = TestEnv.temporaryFile("empty-dir")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try TestProcess.run("/bin/sh", ["-c", "cd \"$1\" && exec \"$2\" check", "sh", dir.path, TestEnv.hoptrace])
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.hasPrefix("hoptrace: no PATH given, and no Captures directory in \(dir.path)"), r.stderr)
        XCTAssertTrue(r.stderr.contains("`hoptrace check path/to/captures`"), r.stderr)
    }

    func testProxyRefusesToStayRoot() throws {
        let e = try failure(["proxy", "--uid", "0"])
        XCTAssertTrue(e.hasPrefix("hoptrace: --uid 0: the proxy would keep running as root"), e)
        let help = try TestEnv.hoptrace("proxy", "--help")
        XCTAssertTrue(help.stdout.contains("it refuses --uid 0 too"), help.stdout)
    }

    func testVersionAndATypoedSubcommand() throws {
        let v = try TestEnv.hoptrace("--version")
        XCTAssertEqual(v.status, 0)
        XCTAssertTrue(v.stdout.hasPrefix("hoptrace 0.1.0 (libpcap version "), v.stdout)
        XCTAssertEqual(try failure(["analyse", capture("lab-seed.pcap")]),
                       "hoptrace: unknown command 'analyse'; did you mean 'analyze'? (`hoptrace --help` lists the commands)\n")
        XCTAssertTrue(try failure(["flow"]).contains("did you mean 'flows'?"))
        XCTAssertTrue(try failure(["frobnicate"]).contains("the commands are analyze, watch, packets, flows, http, intercept, proxy, lab, check"))
    }
}
