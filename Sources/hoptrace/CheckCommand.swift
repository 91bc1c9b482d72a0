import ArgumentParser
import HopPipeline
import HopReport

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "check",
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
        let results = try CheckRun.run(paths: paths, update: update)
        try CheckRun.print(results, json: format == .json, color: TextStyle.colorOn())
        let status = CheckRun.exitStatus(results)
        if status != ExitStatus.ok { throw ExitCode(status) }
    }
}
