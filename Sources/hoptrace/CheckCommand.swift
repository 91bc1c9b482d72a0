import ArgumentParser
import Foundation
import HopLab
import HopPipeline
import HopReport

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare the analysis of saved captures with their expectation files (a golden test for your CI).",
        discussion: """
        For every capture NAME.pcap (or .pcapng) that has NAME.expect.json beside it, runs the \
        analysis the expectation asks for (its rules, pod addresses and BPF filter) and compares \
        the structural result: the summary's counts, the chains in order (method, target, status, \
        completeness, retries) and each hop (role, attempt, client and server tuples, original \
        destination, status, the deciding netfilter rule). Timings only where the expectation \
        asks (a chain's proxyAddedMsMax). The expectation's assertions are checked too: \
        noUnexplainedDuplicates, everyRequestAnswered, noRequestBypassedSidecar, \
        maxProxyAddedMsP99; and, when it lists them, the codes of the analysis's warnings.

        PATHs are captures, expectation files or directories (default: Captures). Exit status \
        0 when everything matches, 1 on any difference, 2 on a usage or input error.

        Examples:
          hoptrace check
          hoptrace check Captures/lab-seed.pcap --format json
          hoptrace check my-captures --update     # record the current analysis as expected
        """)

    @Argument(help: ArgumentHelp("Captures, expectation files or directories (default: Captures).", valueName: "path"))
    var paths: [String] = []

    @Flag(name: .long, help: "Rewrite the expectations from the current analysis (assertions and analyze settings are kept).")
    var update = false

    @Option(name: .long, help: "Output: text or json.")
    var format: CheckFormat = .text

    enum CheckFormat: String, ExpressibleByArgument, CaseIterable { case text, json }

    func run() throws {
        let targets = try Self.collect(paths.isEmpty ? Self.defaultPaths : paths, creating: update)
        guard !targets.isEmpty else {
            throw InputError(message: "no expectation files (NAME.expect.json beside NAME.pcap) in \((paths.isEmpty ? Self.defaultPaths : paths).joined(separator: ", "))")
        }
        var results: [CheckResult] = []
        for t in targets {
            results.append(Self.check(expectationPath: t, update: update))
        }
        let failed = results.filter { !$0.ok }
        switch format {
        case .text:
            for r in results {
                if let e = r.error {
                    Output.stdout.line("capture \(r.capture): error: \(e)")
                } else if r.differences.isEmpty {
                    Output.stdout.line("capture \(r.capture): ok (\(r.chains) chain\(r.chains == 1 ? "" : "s"))\(r.updated ? ", expectation rewritten" : "")")
                } else {
                    Output.stdout.line("capture \(r.capture): \(r.differences.count) difference\(r.differences.count == 1 ? "" : "s") from \(r.expectation)")
                    for d in r.differences.prefix(40) { Output.stdout.line("  capture \(r.capture): \(d)") }
                    if r.differences.count > 40 { Output.stdout.line("  … \(r.differences.count - 40) more") }
                }
            }
            Output.stdout.line(failed.isEmpty
                ? "check: \(results.count) capture\(results.count == 1 ? "" : "s") as expected"
                : "check: \(failed.count) of \(results.count) capture\(results.count == 1 ? "" : "s") differ from their expectations")
        case .json:
            Output.stdout.line(try ReportCoding.sortedJSON(CheckReport(ok: failed.isEmpty, captures: results.map(CheckEntry.init))))
        }
        Output.stdout.flush()
        if results.contains(where: { $0.error != nil }) && failed.allSatisfy({ $0.error != nil }) && !failed.isEmpty {
            throw ExitCode(ExitStatus.inputError)
        }
        if !failed.isEmpty { throw ExitCode(ExitStatus.differences) }
    }

    /// Where check looks when given no PATH (relative to the working directory).
    static let defaultPaths = ["Captures"]

    /// `check --format json`.
    struct CheckReport: Encodable {
        var ok: Bool
        var captures: [CheckEntry]
    }

    struct CheckResult: Encodable {
        var capture: String
        var expectation: String
        var differences: [String] = []
        var chains = 0
        var error: String?
        var updated = false
        var ok: Bool { error == nil && differences.isEmpty }
    }

    /// A result as `--format json` prints it: its fields and `ok`.
    struct CheckEntry: Encodable {
        var result: CheckResult
        private enum CodingKeys: String, CodingKey { case ok }

        func encode(to encoder: Encoder) throws {
            try result.encode(to: encoder)
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(result.ok, forKey: .ok)
        }
    }

    /// The expectation files among `paths` (a capture stands for the expectation beside it).
    static func collect(_ paths: [String], creating: Bool = false) throws -> [String] {
        var out: [String] = []
        let fm = FileManager.default
        for p in paths {
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: p, isDirectory: &isDir) else {
                if paths == Self.defaultPaths {
                    throw InputError(message: "no PATH given, and no Captures directory in \(fm.currentDirectoryPath) (where check looks by default for NAME.expect.json beside NAME.pcap): give the captures, expectation files or directories to check, e.g. `hoptrace check path/to/captures`")
                }
                throw InputError(message: "\(p): no such file or directory")
            }
            if isDir.boolValue {
                let names = (try? fm.contentsOfDirectory(atPath: p)) ?? []
                for n in names.sorted() where n.hasSuffix(".expect.json") { out.append((p as NSString).appendingPathComponent(n)) }
            } else if p.hasSuffix(".expect.json") {
                out.append(p)
            } else {
                let base = (p as NSString).deletingPathExtension
                let e = base + ".expect.json"
                guard fm.fileExists(atPath: e) || creating else { throw InputError(message: "\(p): no expectation file \(e) (`hoptrace check \(p) --update` records the current analysis as one: read it before trusting it)") }
                out.append(e)
            }
        }
        return out
    }

    static func capturePath(for expectationPath: String, _ e: Expectation) -> String {
        let dir = (expectationPath as NSString).deletingLastPathComponent
        if let c = e.capture { return c.hasPrefix("/") ? c : (dir as NSString).appendingPathComponent(c) }
        let base = String(expectationPath.dropLast(".expect.json".count))
        for ext in [".pcap", ".pcapng"] where FileManager.default.fileExists(atPath: base + ext) { return base + ext }
        return base + ".pcap"
    }

    static func check(expectationPath: String, update: Bool) -> CheckResult {
        var expectation = Expectation(json: [:])
        if update && !FileManager.default.fileExists(atPath: expectationPath) {
            // A new expectation: the capture beside it, analyzed with the defaults (rules auto).
            let base = String(expectationPath.dropLast(".expect.json".count))
            let pcap = [".pcap", ".pcapng"].map { base + $0 }.first { FileManager.default.fileExists(atPath: $0) } ?? base + ".pcap"
            expectation.json["capture"] = .string((pcap as NSString).lastPathComponent)
        } else { do { expectation = try Expectation.load(expectationPath) } catch {
            return CheckResult(capture: expectationPath, expectation: expectationPath, error: "cannot read the expectation: \(error)")
        } }
        let capture = capturePath(for: expectationPath, expectation)
        var result = CheckResult(capture: capture, expectation: expectationPath)
        var rules = expectation.rules
        if let r = rules, case .file = RuleSource(r), !r.hasPrefix("/") {
            rules = ((expectationPath as NSString).deletingLastPathComponent as NSString).appendingPathComponent(r)
        }
        let analysis: ReportDocument
        do {
            analysis = try analyzeJSON(capture: capture, rules: rules, podIPs: expectation.podIPs, filter: expectation.filter)
        } catch {
            result.error = "\(error)"
            return result
        }
        result.chains = analysis.chains.count
        if update {
            let fresh = Expectation.make(from: analysis, capture: (capture as NSString).lastPathComponent, rules: expectation.rules,
                                         podIPs: expectation.podIPs, filter: expectation.filter, assertions: expectation.assertions)
            do {
                try fresh.render().write(toFile: expectationPath, atomically: true, encoding: .utf8)
                result.updated = true
            } catch { result.error = "cannot write \(expectationPath): \(error.localizedDescription)" }
            // Assertions are the user's: they still have to hold.
            result.differences = fresh.assertionFailures(analysis)
            return result
        }
        result.differences = expectation.differences(analysis)
        return result
    }

    /// The analysis of a capture as `analyze … --format json` makes it (in this process),
    /// read as the report schema.
    static func analyzeJSON(capture: String, rules: String?, podIPs: [String], filter: String?) throws -> ReportDocument {
        let document = try analyzeDocument(capture: capture, rules: rules, podIPs: podIPs, filter: filter)
        do { return try ReportDocument.decode(document) } catch {
            throw ExpectationError("hoptrace analyze printed no report document: \(error)")
        }
    }

    /// The bytes of `hoptrace analyze FILE --format json` for this capture.
    static func analyzeDocument(capture: String, rules: String?, podIPs: [String], filter: String?) throws -> Data {
        guard FileManager.default.fileExists(atPath: capture) else { throw ExpectationError("no capture file \(capture)") }
        do {
            return Data(try Analysis.document(capture: capture, rules: rules, podIPs: podIPs, filter: filter))
        } catch {
            throw ExpectationError("hoptrace analyze failed: \(error.message)")
        }
    }
}
