import Foundation
import HopCapture
import HopCorrelation
@testable import HopPipeline
import HopReport
import XCTest

/// What the commands ask of HopPipeline around the pipelines: the capture options' limits,
/// `-D`, `--rules` and `--pod-ip`, the streaming commands' printing (against the golden
/// files the command line is held to), `analyze`'s, and `check`'s lines and exit status.
final class CommandSupportTests: XCTestCase {
    func capture(_ name: String) -> String { PipelineTests.captures.appendingPathComponent(name).path }

    /// What `body` writes to an `Output` and to another for standard error (temporary files).
    func written(_ body: (Output, Output) throws -> Void) throws -> (out: String, err: String) {
        var texts: [String] = []
        var outputs: [(Output, Int32, String)] = []
        for name in ["out", "err"] {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("cmd-\(name)-\(getpid())-\(UUID().uuidString)").path
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            XCTAssertGreaterThanOrEqual(fd, 0)
            outputs.append((Output(fd: fd), fd, path))
        }
        defer { for (_, _, path) in outputs { try? FileManager.default.removeItem(atPath: path) } }
        try body(outputs[0].0, outputs[1].0)
        for (output, fd, path) in outputs {
            output.flush()
            close(fd)
            texts.append(try String(contentsOfFile: path, encoding: .utf8))
        }
        return (texts[0], texts[1])
    }

    func golden(_ capture: String, _ file: String) throws -> String {
        try String(contentsOf: PipelineTests.captures.appendingPathComponent("golden/\(capture)/\(file)"), encoding: .utf8)
    }

    func testCaptureSpecValidation() {
        func refusal(_ change: (inout CaptureSpec) -> Void, count: Int? = nil) -> String? {
            var spec = CaptureSpec(interface: "any")
            change(&spec)
            do { try spec.validate(count: count); return nil } catch { return error.description }
        }
        XCTAssertNil(refusal({ _ in }, count: 1))
        XCTAssertNil(refusal { $0.netns = "pod1" })
        XCTAssertEqual(refusal { $0.file = "x.pcap"; $0.netns = "pod1" }, "--netns applies to live captures (-i), not to a capture file")
        XCTAssertEqual(refusal({ _ in }, count: 0), "-c 0: the count must be a positive number")
        XCTAssertEqual(refusal { $0.snaplen = -1 }, "-s -1: the snaplen must be a positive number of bytes")
        XCTAssertEqual(refusal { $0.bufferKiB = 0 }, "-B 0: the buffer size must be a positive number of KiB")
        XCTAssertEqual(refusal({ $0.snaplen = 0 }, count: -5), "-c -5: the count must be a positive number", "in order")
    }

    func testInterfaceListingAndTheBundledCapture() throws {
        let lines = try CaptureSpec.interfaceListing(netns: nil)
        XCTAssertFalse(lines.isEmpty)
        for (i, line) in lines.enumerated() { XCTAssertTrue(line.hasPrefix("\(i + 1)."), line) }
        XCTAssertThrowsError(try CaptureSpec.interfaceListing(netns: "hoptrace-absent-\(getpid())")) { error in
            XCTAssertTrue("\(error)".hasSuffix("does not exist (`ip netns list` shows them)"), "\(error)")
        }
        let source = try BundledCapture.open(filter: "tcp port 80")
        XCTAssertEqual(source.name, BundledCapture.name)
        XCTAssertThrowsError(try BundledCapture.open(filter: "tcp port"))
    }

    func testRulesPodAddressesAndSlacks() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("hoptrace-cmd-\(getpid()).rules")
        try Data("*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp -m frobnicate --x 1 -j REDIRECT --to-ports 15001\nCOMMIT\n".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let (_, err) = try written { _, err in _ = try RuleSource.resolve(file.path, live: false, notesTo: err) }
        XCTAssertTrue(err.hasPrefix("hoptrace: --rules \(file.path): "), err)
        XCTAssertEqual(err.filter { $0 == "\n" }.count, 1)

        XCTAssertEqual(try AnalysisSettings.podAddresses(["10.0.0.7", "fd00::7"]), [IPAddress("10.0.0.7")!, IPAddress("fd00::7")!])
        XCTAssertThrowsError(try AnalysisSettings.podAddresses(["10.0.0.7", "pod"])) { error in
            XCTAssertEqual("\(error)", "--pod-ip pod is not an IPv4 or IPv6 address")
        }
        let settings = try AnalysisSettings(rules: RuleSource("none").resolve(live: false), podIPs: ["10.0.0.7"],
                                            toleranceMs: 0.5, duplicateWindowMs: 0)
        XCTAssertEqual(settings.tolerance, 500_000)
        XCTAssertEqual(settings.duplicateWindow, 0)
        XCTAssertEqual(settings.podAddresses, [IPAddress("10.0.0.7")!])
        XCTAssertThrowsError(try AnalysisSettings.checkMilliseconds(tolerance: 0.2, duplicateWindow: -1)) { error in
            XCTAssertEqual("\(error)", "--duplicate-window -1.0: must be a number of milliseconds from 0 to 86400000 (a day)")
        }
        XCTAssertThrowsError(try AnalysisSettings.checkMilliseconds(tolerance: .nan, duplicateWindow: 1e9)) { error in
            XCTAssertEqual("\(error)", "--tolerance nan: must be a number of milliseconds from 0 to 86400000 (a day)")
        }
        let watch = try WatchPipeline.settings(rules: "istio-2018", podIPs: [], live: false, filter: "tcp", bodies: true)
        XCTAssertEqual(watch.podAddresses, [], "a file's are inferred")
        XCTAssertEqual(watch.filter, "tcp")
        XCTAssertEqual(watch.bodyPrefixBytes, ExchangeText.bodyPrefixBytes)
    }

    /// The streaming commands' lines are the golden files' (`Captures/golden`, times in UTC).
    func testStreamsPrintWhatTheGoldenFilesHold() throws {
        let localTime = Timestamp.localTime
        Timestamp.localTime = false
        defer { Timestamp.localTime = localTime }
        for name in ["nat-split.pcap", "lab-seed.pcap", "ethernet.pcapng"] {
            for jsonl in [false, true] {
                let options = StreamOptions(jsonl: jsonl)
                let ext = jsonl ? "jsonl" : "txt"
                let packets = try written { out, err in
                    try PacketPipeline.print(source: try CaptureSpec(file: capture(name)).open(), writer: nil, options: options,
                                             style: .init(), out: out, err: err)
                }
                XCTAssertEqual(packets.out, try golden(name, "packets.\(ext)"), "packets \(name)")
                XCTAssertTrue(packets.err.contains(" TCP segments\n"), packets.err)
                let flows = try written { out, err in
                    try FlowPipeline.print(source: try CaptureSpec(file: capture(name)).open(), writer: nil, options: options, out: out, err: err)
                }
                XCTAssertEqual(flows.out, try golden(name, "flows.\(ext)"), "flows \(name)")
                XCTAssertTrue(flows.err.contains("connections:\n"), flows.err)
                let http = try written { out, err in
                    try ExchangePipeline.print(source: try CaptureSpec(file: capture(name)).open(), writer: nil, options: options,
                                               headers: false, bodies: false, out: out, err: err)
                }
                XCTAssertEqual(http.out, try golden(name, "http.\(ext)"), "http \(name)")
            }
        }
    }

    func testStreamLimitsQuietAndWatch() throws {
        let seed = capture("lab-seed.pcap")
        let two = try written { out, err in
            try PacketPipeline.print(source: try CaptureSpec(file: seed).open(), writer: nil, options: StreamOptions(limit: 2),
                                     style: .init(), out: out, err: err)
        }
        XCTAssertEqual(two.out.split(separator: "\n").count, 2)
        let quiet = try written { out, err in
            try ExchangePipeline.print(source: try CaptureSpec(file: seed).open(), writer: nil, options: StreamOptions(),
                                       headers: true, bodies: true, quiet: true, out: out, err: err)
        }
        XCTAssertEqual(quiet.out, "")
        XCTAssertTrue(quiet.err.contains("http:\n"), quiet.err)

        let settings = try WatchPipeline.settings(rules: "auto", podIPs: [], live: false, filter: nil, bodies: false)
        let watch = try written { out, err in
            try WatchPipeline.print(source: try CaptureSpec(file: seed).open(), writer: nil, settings: settings,
                                    options: StreamOptions(jsonl: true), heads: false, color: false, out: out, err: err)
        }
        let lines = watch.out.split(separator: "\n")
        XCTAssertGreaterThan(lines.count, 2)
        XCTAssertTrue(lines.last!.hasPrefix(#"{"summary":"#), String(lines.last!))
        XCTAssertTrue(watch.err.hasPrefix("\n"), "a blank line, then the counters")
        let one = try written { out, err in
            try WatchPipeline.print(source: try CaptureSpec(file: seed).open(), writer: nil, settings: settings,
                                    options: StreamOptions(limit: 1), heads: false, color: false, out: out, err: err)
        }
        XCTAssertEqual(one.out.split(separator: "\n").count, 1)
    }

    /// `analyze --format json` printed is the document `check` compares; text is the golden file's.
    func testAnalysisPrints() throws {
        let seed = capture("lab-seed.pcap")
        let settings = AnalysisSettings(rules: try RuleSource("auto").resolve(live: false))
        let json = try written { out, err in
            try Analysis.print(source: try CaptureSpec(file: seed).open(), sourceName: seed, settings: settings, format: .json,
                               writer: nil, out: out, err: err)
        }
        XCTAssertEqual(json.out, String(decoding: try Analysis.document(capture: seed, rules: nil, podIPs: [], filter: nil), as: UTF8.self))
        XCTAssertEqual(json.err, "")
        let localTime = Timestamp.localTime
        Timestamp.localTime = false
        defer { Timestamp.localTime = localTime }
        let text = try written { out, err in
            try Analysis.print(source: try CaptureSpec(file: seed).open(), sourceName: "Captures/lab-seed.pcap", settings: settings,
                               format: .text, writer: nil, out: out, err: err)
        }
        XCTAssertEqual(text.out, try golden("lab-seed.pcap", "analyze.txt"))
        XCTAssertEqual(ReportFormat.allCases.map(\.rawValue), ["text", "json", "jsonl", "mermaid", "html"])
    }

    func testReportAndWarnings() throws {
        let result = try FlowPipeline.run(source: CaptureSpec(file: capture("nat-split.pcap")).open(), consumer: ClosedConnections { _ in })
        let warning = AnalysisWarning(code: .singleInterface, message: "m", reason: "r", counts: [])
        let text = try written { out, err in result.report(jsonl: false, warnings: [warning], out: out, err: err) }
        XCTAssertEqual(text.out, "")
        XCTAssertEqual(text.err, (result.counterLines() + ["hoptrace: warning: " + TextReport.warningLine(warning)]).map { $0 + "\n" }.joined())
        let jsonl = try written { out, err in result.report(jsonl: true, warnings: [warning], out: out, err: err) }
        XCTAssertEqual(jsonl.out, result.summaryJSON(warnings: [warning]) + "\n")
        XCTAssertEqual(jsonl.err, result.counterLines().map { $0 + "\n" }.joined(), "the warnings are in the summary")
    }

    func testCheckLinesJSONAndExitStatus() throws {
        let ok = CheckRun.Result(capture: "a.pcap", expectation: "a.expect.json", chains: 1)
        var differs = CheckRun.Result(capture: "b.pcap", expectation: "b.expect.json")
        differs.differences = (1...41).map { "d\($0)" }
        var broken = CheckRun.Result(capture: "c.pcap", expectation: "c.expect.json")
        broken.error = "no capture file c.pcap"
        XCTAssertEqual(ok.textLines, ["capture a.pcap: ok (1 chain)"])
        XCTAssertEqual(differs.textLines.count, 1 + 40 + 1)
        XCTAssertEqual(differs.textLines.first, "capture b.pcap: 41 differences from b.expect.json")
        XCTAssertEqual(differs.textLines.last, "  … 1 more")
        XCTAssertEqual(broken.textLines, ["capture c.pcap: error: no capture file c.pcap"])
        XCTAssertEqual(CheckRun.summaryLine([ok]), "check: 1 capture as expected")
        XCTAssertEqual(CheckRun.summaryLine([ok, differs, broken]), "check: 2 of 3 captures differ from their expectations")
        XCTAssertEqual(CheckRun.exitStatus([ok]), 0)
        XCTAssertEqual(CheckRun.exitStatus([ok, differs, broken]), 1)
        XCTAssertEqual(CheckRun.exitStatus([ok, broken]), 2, "nothing compared differs: an input error")
        let json = try CheckRun.jsonReport([ok, broken])
        XCTAssertTrue(json.hasPrefix(#"{"captures":[{"capture":"a.pcap","#), json)
        XCTAssertTrue(json.contains(#""ok":true,"updated":false}"#) && json.hasSuffix(#"],"ok":false}"#), json)
        XCTAssertThrowsError(try CheckRun.run(paths: [FileManager.default.temporaryDirectory.path + "/hoptrace-none-\(getpid())"], update: false))
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("hoptrace-empty-\(getpid())")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: empty) }
        XCTAssertThrowsError(try CheckRun.run(paths: [empty.path], update: false)) { error in
            XCTAssertEqual("\(error)", "no expectation files (NAME.expect.json beside NAME.pcap) in \(empty.path)")
        }
        let seed = try CheckRun.run(paths: [capture("lab-seed.pcap")], update: false)
        XCTAssertEqual(seed.map(\.ok), [true])
    }
}
