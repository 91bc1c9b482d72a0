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
        let targets = try CheckRun.collect(paths.isEmpty ? CheckRun.defaultPaths : paths, creating: update)
        guard !targets.isEmpty else {
            throw InputError(message: "no expectation files (NAME.expect.json beside NAME.pcap) in \((paths.isEmpty ? CheckRun.defaultPaths : paths).joined(separator: ", "))")
        }
        var results: [CheckRun.Result] = []
        for t in targets {
            results.append(CheckRun.check(expectationPath: t, update: update))
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


    /// `check --format json`.
    struct CheckReport: Encodable {
        var ok: Bool
        var captures: [CheckEntry]
    }

    /// A result as `--format json` prints it: its fields and `ok`.
    struct CheckEntry: Encodable {
        var result: CheckRun.Result
        private enum CodingKeys: String, CodingKey { case ok }

        func encode(to encoder: Encoder) throws {
            try result.encode(to: encoder)
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(result.ok, forKey: .ok)
        }
    }
}
