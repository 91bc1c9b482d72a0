import HopCapture
import HopCorrelation
import HopFlows
import HopReport

// What the command line's commands share around the pipelines: the capture options' limits,
// `-D`'s listing, the bundled capture, `--rules` and `--pod-ip`, and the end of a run (the
// counters, the summary object, the warnings).

extension CaptureSpec {
    /// A capture option that cannot be honoured; the message names tcpdump's option.
    public struct Invalid: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    /// Refuses, in this order: a network namespace for a capture file, a `count` (the
    /// caller's `-c`: the items it stops after) that is not positive, a snaplen or a buffer
    /// size that is not positive.
    public func validate(count: Int? = nil) throws(Invalid) {
        if netns != nil && file != nil { throw Invalid(description: "--netns applies to live captures (-i), not to a capture file") }
        if let c = count, c <= 0 { throw Invalid(description: "-c \(c): the count must be a positive number") }
        if snaplen <= 0 { throw Invalid(description: "-s \(snaplen): the snaplen must be a positive number of bytes") }
        if let b = bufferKiB, b <= 0 { throw Invalid(description: "-B \(b): the buffer size must be a positive number of KiB") }
    }

    /// `open()` as the commands announce it on `err`: the warning libpcap gave when activating
    /// a live capture; a link type hoptrace cannot decode refused; tcpdump's "listening on" line
    /// for a live capture.
    public func openAnnounced(err: Output = .stderr) throws(InputError) -> PcapSource {
        let source = try open()
        if let w = source.activationWarning { err.warning(w) }
        try Self.requireSupported(source)
        if source.isLive { err.line(listeningLine(source, snaplen: snaplen)) }
        return source
    }

    /// `-D`: the interfaces a live capture can use, as tcpdump lists them (in `netns`, entered
    /// first, when given).
    public static func interfaceListing(netns: String?) throws(InputError) -> [String] {
        if let netns { try NetworkNamespace.enter(netns) }
        do {
            return try PcapSource.interfaces().enumerated().map { $0.element.listingLine(number: $0.offset + 1) }
        } catch {
            throw InputError(message: error.description)
        }
    }
}

extension BundledCapture {
    /// The bundled capture as a source, with `filter` (a BPF expression) applied.
    public static func open(filter: String?) throws(InputError) -> PcapSource {
        do {
            let source = try PcapSource.openMemory(bytes, name: name)
            if let filter { try source.setFilter(filter) }
            return source
        } catch {
            throw InputError(message: error.description)
        }
    }
}

extension RuleSource {
    /// `--rules TEXT` resolved (`resolve(live:)`), each note said on `err` (`hoptrace: NOTE`).
    public static func resolve(_ text: String, live: Bool, notesTo err: Output = .stderr) throws(InputError) -> Resolved {
        let resolved = try RuleSource(text).resolve(live: live)
        for note in resolved.notes { err.line("hoptrace: \(note)") }
        return resolved
    }
}

extension AnalysisSettings {
    /// `analyze`'s settings: the rules, the pod's addresses given (`podAddresses(_:)`), and the
    /// slack for time nesting and the duplicate window in milliseconds (`checkMilliseconds`).
    public init(rules: RuleSource.Resolved, podIPs: [String], toleranceMs: Double, duplicateWindowMs: Double) throws(InputError) {
        try Self.checkMilliseconds(tolerance: toleranceMs, duplicateWindow: duplicateWindowMs)
        self.init(rules: rules)
        podAddresses = try Self.podAddresses(podIPs)
        tolerance = Int64(toleranceMs * 1_000_000)
        duplicateWindow = Int64(duplicateWindowMs * 1_000_000)
    }

    /// Refuses a slack (`--tolerance`, `--duplicate-window`) that is not a number of
    /// milliseconds from 0 to a day.
    public static func checkMilliseconds(tolerance: Double, duplicateWindow: Double) throws(InputError) {
        for (name, ms) in [("--tolerance", tolerance), ("--duplicate-window", duplicateWindow)] where !(ms >= 0 && ms <= 86_400_000) {
            throw InputError(message: "\(name) \(ms): must be a number of milliseconds from 0 to 86400000 (a day)")
        }
    }

    /// The pod's addresses given with `--pod-ip`; an error names the first that is not an
    /// IPv4 or IPv6 address.
    public static func podAddresses(_ ips: [String]) throws(InputError) -> Set<IPAddress> {
        var out = Set<IPAddress>()
        for ip in ips {
            guard let a = IPAddress(ip) else { throw InputError(message: "--pod-ip \(ip) is not an IPv4 or IPv6 address") }
            out.insert(a)
        }
        return out
    }
}

/// capture → decode: every TCP segment handed to `onSegment` (`packets`) to the end of the
/// capture, Ctrl-C, or until `onSegment` returns false.
public enum PacketPipeline {
    /// Reads `source`; `raw` sees every packet read (`-w`). The result has the decoder's
    /// counters (no connections are rebuilt) and libpcap's statistics.
    public static func run(source: PcapSource, raw: ((RawPacket) -> Void)? = nil, onSegment: (TCPSegment) -> Bool) -> PipelineResult {
        var decoder = PacketDecoder(linkType: source.linkType)
        let readError = readSegments(from: source, decoder: &decoder, raw: raw, onSegment)
        source.countFilterUnmatched(into: &decoder)
        var result = PipelineResult(linkType: source.linkType, decode: decoder.counters, flows: FlowCounters(),
                                    statistics: source.statistics(), readError: readError, connections: 0)
        result.linkTypeName = source.linkTypeDescription
        return result
    }
}

extension PipelineResult {
    /// The end of a streaming command's run: with `jsonl`, the final summary object on `out`
    /// (flushed); the counters and libpcap's statistics on `err`; and in text the warnings.
    /// `extra`: the command's own counters; `flows`: whether connections were rebuilt.
    public func report(jsonl: Bool, extra: [Section] = [], warnings: [AnalysisWarning] = [], flows showFlows: Bool = true,
                       out: Output = .stdout, err: Output = .stderr) {
        if jsonl {
            out.line(summaryJSON(extra: extra, warnings: warnings, flows: showFlows))
            out.flush()
        }
        for l in counterLines(extra: extra) { err.line(l) }
        if !jsonl { err.warnings(warnings) }
    }
}

extension WatchPipeline {
    /// `run` for a printer of hops (`watch`): each upstream copy as it completes, without its
    /// chain; each chain's downstream copy when it completes, with its chain (whose links it
    /// shows); nothing once `shouldStop` says so. An orphan upstream copy is handed over once.
    public static func run(source: PcapSource, settings: AnalysisSettings, raw: ((RawPacket) -> Void)? = nil, threaded: Bool = false,
                           shouldStop: @escaping () -> Bool, onHop: @escaping (Hop, RequestChain?) -> Void) -> Outcome {
        run(source: source, settings: settings, raw: raw, threaded: threaded, onUpstream: { hop in if !shouldStop() { onHop(hop, nil) } },
            onChain: { chain in
                guard !shouldStop(), let first = chain.hops.first, !first.role.isUpstream else { return }
                onHop(first, chain)
            }, shouldStop: shouldStop)
    }
}

extension WatchPipeline.Outcome {
    /// What `watch` prints when it stops: with `jsonl` the summary object on `out` (flushed);
    /// a blank line, the counters and in text the warnings on `err`.
    public func report(jsonl: Bool, out: Output = .stdout, err: Output = .stderr) {
        if jsonl {
            out.line(summaryJSON())
            out.flush()
        }
        err.line("")
        for l in counterLines() { err.line(l) }
        if !jsonl { err.warnings(warnings) }
    }
}

extension CheckRun.Result {
    /// The result as `check` prints it: one line, then its differences (at most 40).
    public var textLines: [String] {
        if let e = error { return ["capture \(capture): error: \(e)"] }
        if differences.isEmpty {
            return ["capture \(capture): ok (\(chains) chain\(chains == 1 ? "" : "s"))\(updated ? ", expectation rewritten" : "")"]
        }
        var lines = ["capture \(capture): \(differences.count) difference\(differences.count == 1 ? "" : "s") from \(expectation)"]
        for d in differences.prefix(40) { lines.append("  capture \(capture): \(d)") }
        if differences.count > 40 { lines.append("  … \(differences.count - 40) more") }
        return lines
    }
}

extension CheckRun {
    /// The last line of `check`'s text.
    public static func summaryLine(_ results: [Result]) -> String {
        let failed = results.filter { !$0.ok }.count, s = results.count == 1 ? "" : "s"
        return failed == 0
            ? "check: \(results.count) capture\(s) as expected"
            : "check: \(failed) of \(results.count) capture\(s) differ from their expectations"
    }

    /// `check --format json`: `{"ok": …, "captures": [each result's fields and its ok]}`, keys sorted.
    public static func jsonReport(_ results: [Result]) throws -> String {
        try ReportCoding.sortedJSON(Report(ok: results.allSatisfy(\.ok), captures: results.map(Entry.init)))
    }

    /// `check`'s output on `out`: in text each result's lines and a summary line, or the
    /// JSON report.
    public static func print(_ results: [Result], json: Bool, color: Bool = false, out: Output = .stdout) throws {
        if json {
            out.line(try jsonReport(results))
        } else {
            let style = TextStyle(color: color)
            for line in results.flatMap(\.textLines) { out.line(style.checkLine(line)) }
            out.line(summaryLine(results))
        }
        out.flush()
    }

    /// `check`'s exit status: 0 when every capture is as expected, 2 when every one that is
    /// not failed with an error (an input error: nothing was compared), else 1.
    public static func exitStatus(_ results: [Result]) -> Int32 {
        let failed = results.filter { !$0.ok }
        if failed.isEmpty { return 0 }
        return failed.allSatisfy { $0.error != nil } ? 2 : 1
    }

    struct Report: Encodable {
        var ok: Bool
        var captures: [Entry]
    }

    /// A result as `--format json` prints it: its fields and `ok`.
    struct Entry: Encodable {
        var result: Result
        private enum CodingKeys: String, CodingKey { case ok }

        func encode(to encoder: Encoder) throws {
            try result.encode(to: encoder)
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(result.ok, forKey: .ok)
        }
    }
}

extension CheckRun {
    /// `check`: the expectation files among `paths` (none given: `defaultPaths`), each compared
    /// with the analysis of its capture (`update`: rewritten from it); an error when there are
    /// none.
    public static func run(paths: [String], update: Bool) throws -> [Result] {
        let paths = paths.isEmpty ? defaultPaths : paths
        let targets = try collect(paths, creating: update)
        guard !targets.isEmpty else {
            throw InputError(message: "no expectation files (NAME.expect.json beside NAME.pcap) in \(paths.joined(separator: ", "))")
        }
        return targets.map { check(expectationPath: $0, update: update) }
    }
}
