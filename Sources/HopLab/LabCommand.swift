import Foundation
import HopReport
#if canImport(Glibc)
import Glibc
#endif

// What `hoptrace lab` asks of the lab around its scenarios: the options' limits, the
// preparations, and the lines and document it prints at the end.

extension LabOptions {
    /// An option the lab cannot run with; the message names `hoptrace lab`'s option.
    public struct Invalid: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    /// Refuses, in this order: `updateExpectations` without `writeDir`, requests outside
    /// 1…100000, a duration outside 1…30 s, connections outside 1…256, and a namespace prefix
    /// that does not start with `hoplab` (the stale-namespace sweep removes only those) or has a `/`.
    public func validate() throws(Invalid) {
        if updateExpectations && writeDir == nil { throw Invalid(description: "--update-expectations needs --write-dir DIR") }
        if !(1...100_000).contains(requests) { throw Invalid(description: "--requests must be between 1 and 100000") }
        if !(1...30).contains(duration) { throw Invalid(description: "--duration must be between 1 and 30 seconds") }
        if !(1...256).contains(connections) { throw Invalid(description: "--connections must be between 1 and 256") }
        if !namespacePrefix.hasPrefix("hoplab") || namespacePrefix.contains("/") {
            throw Invalid(description: "--namespace-prefix must start with hoplab")
        }
    }
}

extension LabScenario {
    /// The scenario as `lab --list` shows it: its name in 14 columns, then its summary.
    public var listLine: String { "\(name.padding(toLength: 14, withPad: " ", startingAt: 0)) \(summary)" }
}

extension LabRunner {
    /// Before the scenarios: SIGINT, SIGTERM and SIGHUP interrupt the run (`labInterruptSignal`:
    /// what the lab made is removed, then `run` throws `Stopped`), the namespaces and temp
    /// directories a crashed run left are removed, and the output directories are made.
    /// Returns the line to say when namespaces were removed.
    public func prepare() -> String? {
        signal(SIGINT) { labInterruptSignal = $0 }
        signal(SIGTERM) { labInterruptSignal = $0 }
        signal(SIGHUP) { labInterruptSignal = $0 }
        let stale = LabScene.removeStale(namespacePrefix: options.namespacePrefix, ip: ip)
        for d in [options.writeDir, options.truthDir].compactMap({ $0 }) {
            try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        }
        return LabVerdict.staleNote(stale)
    }
}

extension LabVerdict {
    /// What `lab` says after removing the namespaces a crashed run left (nil: none).
    public static func staleNote(_ removed: [String]) -> String? {
        guard !removed.isEmpty else { return nil }
        let n = removed.count
        return "hoptrace lab: removed \(n) namespace\(n == 1 ? "" : "s") left by an earlier run: \(removed.joined(separator: ", "))"
    }

    /// The closing line of a text run of several scenarios.
    public static func summaryLine(_ verdicts: [LabVerdict]) -> String {
        let failed = verdicts.filter { !$0.ok }
        return failed.isEmpty
            ? "lab: all \(verdicts.count) scenarios pass"
            : "lab: \(failed.count) of \(verdicts.count) scenarios fail: \(failed.map(\.scenario).joined(separator: ", "))"
    }

    /// `lab --format json`: `{"ok": …, "scenarios": [the verdicts]}`, keys sorted.
    public static func jsonReport(_ verdicts: [LabVerdict]) throws -> String {
        struct LabReport: Encodable { var ok: Bool; var scenarios: [LabVerdict] }
        return try ReportCoding.sortedJSON(LabReport(ok: verdicts.allSatisfy(\.ok), scenarios: verdicts))
    }
}

extension LabRunner {
    /// `lab`: runs the scenarios, printing on `out` each verdict's text as it is made and, of
    /// several, the summary line, or (`json`) the JSON report at the end. Returns whether every
    /// scenario passed; throws when a signal stopped the run (everything made was removed).
    public func runPrinting(_ scenarios: [LabScenario], json: Bool, out: Output = .stdout) throws -> Bool {
        let verdicts = try run(scenarios) { v in
            guard !json else { return }
            for l in v.textLines() { out.line(l) }
            out.flush()
        }
        if json {
            out.line(try LabVerdict.jsonReport(verdicts))
        } else if verdicts.count > 1 {
            out.line(LabVerdict.summaryLine(verdicts))
        }
        out.flush()
        return verdicts.allSatisfy(\.ok)
    }
}
