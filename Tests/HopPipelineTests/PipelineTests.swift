import Foundation
import HopCapture
import HopCorrelation
import HopFlows
import HopPipeline
import HopReport
import XCTest

/// The pipeline library on the bundled captures: rule sources, the analysis's threads, the
/// flow pipeline's counters and summary, capture sources.
final class PipelineTests: XCTestCase {
    static let captures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Captures")

    func capture(_ name: String) -> String { Self.captures.appendingPathComponent(name).path }

    /// `hoptrace analyze` with no FILE reads the embedded seed capture: it must be the file's
    /// bytes (Captures/tools/embed-seed.py remakes it).
    func testTheBundledCaptureIsTheSeedFile() throws {
        let file = try Data(contentsOf: URL(fileURLWithPath: capture("seed-doubled-head.pcap")))
        XCTAssertEqual(BundledCapture.name, "Captures/seed-doubled-head.pcap")
        XCTAssertEqual(BundledCapture.bytes, [UInt8](file), "run Captures/tools/embed-seed.py")
    }

    func testRuleSourceReadsKeywordsPresetsAndPaths() {
        XCTAssertEqual(RuleSource("auto"), .auto)
        XCTAssertEqual(RuleSource("live"), .live)
        XCTAssertEqual(RuleSource("none"), .none)
        XCTAssertEqual(RuleSource("istio-2018"), .preset("istio-2018"))
        XCTAssertEqual(RuleSource("istio-current"), .preset("istio-current"))
        XCTAssertEqual(RuleSource("rules.txt"), .file("rules.txt"))
    }

    func testRuleSourceResolves() throws {
        let preset = try RuleSource("istio-2018").resolve(live: false)
        guard case .fixed(let oracle) = preset.selection else { return XCTFail("a preset is fixed rules") }
        XCTAssertEqual(oracle.name, "istio-2018")
        XCTAssertEqual(preset.origin, "given with --rules")
        XCTAssertEqual(try RuleSource("none").resolve(live: false).origin, "given: no interception rules")
        guard case .auto = try RuleSource("auto").resolve(live: false).selection else { return XCTFail("a file's auto looks at the capture") }

        let file = FileManager.default.temporaryDirectory.appendingPathComponent("hoptrace-pipeline-\(getpid()).rules")
        try Data("*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp -m frobnicate --x 1 -j REDIRECT --to-ports 15001\nCOMMIT\n".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let parsed = try RuleSource(file.path).resolve(live: false)
        guard case .fixed(let fromFile) = parsed.selection else { return XCTFail("a file is fixed rules") }
        XCTAssertEqual(fromFile.name, file.lastPathComponent)
        XCTAssertEqual(parsed.notes.count, 1, "the unknown match is noted: \(parsed.notes)")
        XCTAssertTrue(parsed.notes.first?.hasPrefix("--rules \(file.path): ") ?? false, "\(parsed.notes)")

        XCTAssertThrowsError(try RuleSource(Self.captures.path).resolve(live: false)) { error in
            XCTAssertTrue((error as? InputError)?.message.contains("is a directory") ?? false, "\(error)")
        }
        XCTAssertThrowsError(try RuleSource("/nonexistent/rules").resolve(live: false)) { error in
            XCTAssertEqual((error as? InputError)?.message, "--rules /nonexistent/rules: not a preset (istio-2018, istio-current, auto, live, none) and no such file")
        }
    }

    /// The document of `analyze --format json`, with the analysis on three threads (a file)
    /// or on one (an exchange limit that is never reached): the same bytes.
    func testThreadedAnalysisWritesWhatOneThreadWrites() throws {
        for name in ["lab-seed.pcap", "lab-load.pcap", "lab-outbound.pcap", "nat-split.pcap"] {
            let threaded = try document(name, limit: nil)
            let single = try document(name, limit: .max)
            XCTAssertFalse(threaded.isEmpty, name)
            XCTAssertEqual(threaded, single, name)
            XCTAssertEqual(threaded, try Analysis.document(capture: capture(name), rules: nil, podIPs: [], filter: nil), name)
        }
    }

    func document(_ name: String, limit: Int?) throws -> [UInt8] {
        let source = try CaptureSpec(file: capture(name)).open()
        var settings = AnalysisSettings(rules: try RuleSource.auto.resolve(live: false))
        settings.exchangeLimit = limit
        var bytes: [UInt8] = []
        let writer = JSONWriter(capacity: 4096, flushThreshold: 4096) { bytes.append(contentsOf: $0) }
        _ = Analysis.run(source: source, sourceName: capture(name), settings: settings, output: .jsonDocument(writer))
        return bytes
    }

    func testAnalysisOfTheSeedCapture() throws {
        let source = try CaptureSpec(file: capture("lab-seed.pcap")).open()
        let outcome = Analysis.run(source: source, sourceName: "seed", settings: AnalysisSettings(rules: try RuleSource.auto.resolve(live: false)),
                                   output: .keep(limit: .max, aggregateDirect: false))
        XCTAssertEqual(outcome.report.summary.multiHopChains, 3)
        XCTAssertEqual(outcome.report.chains.count, 3)
        XCTAssertEqual(outcome.report.rulesName, "istio-2018")
        XCTAssertTrue(outcome.report.rulesOrigin.hasPrefix("auto: "), outcome.report.rulesOrigin)
        XCTAssertEqual(outcome.result.decode.packets, 60)

        let limited = Analysis.run(source: try CaptureSpec(file: capture("lab-seed.pcap")).open(), sourceName: "seed",
                                   settings: { var s = AnalysisSettings(rules: try! RuleSource.none.resolve(live: false)); s.exchangeLimit = 2; return s }(),
                                   output: .keep(limit: .max, aggregateDirect: false))
        XCTAssertEqual(limited.report.summary.requestsOnWire, 2, "an exchange limit stops the analysis")
    }

    func testFlowPipelineCountsAndSummarises() throws {
        let source = try CaptureSpec(file: capture("nat-split.pcap"), filter: "tcp").open()
        var closed = 0
        let result = FlowPipeline.run(source: source, consumer: ClosedConnections { _ in closed += 1 })
        XCTAssertEqual(closed, result.connections)
        XCTAssertGreaterThan(closed, 0)
        let summary = result.summaryJSON(extra: [("extra", [("things", 2, "counted things")])])
        XCTAssertTrue(summary.hasPrefix(#"{"summary":{"linkType":"#), summary)
        XCTAssertTrue(summary.contains(#""flows":{"segments":"#), summary)
        XCTAssertTrue(summary.contains(#""extra":{"things":2}"#), summary)
        XCTAssertFalse(result.summaryJSON(flows: false).contains(#""flows""#))
        let lines = result.counterLines(extra: [("extra", [("things", 2, "counted things")])])
        XCTAssertTrue(lines[0].hasSuffix("\(result.decode.tcpSegments) TCP segments"), lines[0])
        XCTAssertTrue(lines.contains("extra:") && lines.contains("  2 things: counted things"), "\(lines)")
    }

    func testCaptureSpecErrors() {
        XCTAssertThrowsError(try CaptureSpec(file: "/nonexistent/x.pcap").open()) { error in
            XCTAssertEqual((error as? InputError)?.message, "/nonexistent/x.pcap: no such file")
        }
        XCTAssertThrowsError(try CaptureSpec(file: capture("lab-seed.pcap"), filter: "tcp port").open()) { error in
            XCTAssertTrue((error as? InputError)?.message.contains("tcp port") ?? false, "\(error)")
        }
        var spec = CaptureSpec(interface: "any")
        spec.netns = "hoptrace-pipeline-absent-\(getpid())"
        XCTAssertThrowsError(try spec.open()) { error in
            XCTAssertEqual((error as? InputError)?.message, "network namespace \(spec.netns!) does not exist (`ip netns list` shows them)")
        }
    }

    func testDirectCountsInFirstSeenOrder() {
        var counts = DirectCounts()
        for (m, t) in [("GET", "/a"), ("GET", "/b"), ("GET", "/a"), ("HEAD", "/a"), ("GET", "/c"), ("GET", "/d"), ("GET", "/e"), ("GET", "/b")] {
            counts.count(method: m, target: t)
        }
        XCTAssertEqual(counts.counts.map { "\($0.0)=\($0.1)" }, ["GET /a=2", "GET /b=2", "HEAD /a=1", "GET /c=1", "GET /d=1", "GET /e=1"])
    }

    func testLocalAddresses() {
        let local = LocalAddresses()
        for a in ["10.0.0.1", "10.0.0.1", "10.0.0.2", "10.0.0.1"] { local.insert(IPAddress(a)!) }
        XCTAssertEqual(Set(local.snapshot()), [IPAddress("10.0.0.1")!, IPAddress("10.0.0.2")!])
    }
}
