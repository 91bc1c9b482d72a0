import Foundation
import HopReport

/// `hoptrace check`: the analysis of saved captures against their expectation files
/// (`NAME.expect.json` beside `NAME.pcap`), in this process.
public enum CheckRun {
    /// Where check looks when given no PATH (relative to the working directory).
    public static let defaultPaths = ["Captures"]

    /// One expectation's outcome.
    public struct Result: Encodable {
        public var capture: String
        public var expectation: String
        public var differences: [String] = []
        public var chains = 0
        public var error: String?
        public var updated = false
        public var ok: Bool { error == nil && differences.isEmpty }
    }


    /// The expectation files among `paths` (a capture stands for the expectation beside it).
    public static func collect(_ paths: [String], creating: Bool = false) throws -> [String] {
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

    public static func capturePath(for expectationPath: String, _ e: Expectation) -> String {
        let dir = (expectationPath as NSString).deletingLastPathComponent
        if let c = e.capture { return c.hasPrefix("/") ? c : (dir as NSString).appendingPathComponent(c) }
        let base = String(expectationPath.dropLast(".expect.json".count))
        for ext in [".pcap", ".pcapng"] where FileManager.default.fileExists(atPath: base + ext) { return base + ext }
        return base + ".pcap"
    }

    public static func check(expectationPath: String, update: Bool) -> Result {
        var expectation = Expectation(json: [:])
        if update && !FileManager.default.fileExists(atPath: expectationPath) {
            // A new expectation: the capture beside it, analyzed with the defaults (rules auto).
            let base = String(expectationPath.dropLast(".expect.json".count))
            let pcap = [".pcap", ".pcapng"].map { base + $0 }.first { FileManager.default.fileExists(atPath: $0) } ?? base + ".pcap"
            expectation.json["capture"] = .string((pcap as NSString).lastPathComponent)
        } else { do { expectation = try Expectation.load(expectationPath) } catch {
            return Result(capture: expectationPath, expectation: expectationPath, error: "cannot read the expectation: \(error)")
        } }
        let capture = capturePath(for: expectationPath, expectation)
        var result = Result(capture: capture, expectation: expectationPath)
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
    public static func analyzeJSON(capture: String, rules: String?, podIPs: [String], filter: String?) throws -> ReportDocument {
        let document = try analyzeDocument(capture: capture, rules: rules, podIPs: podIPs, filter: filter)
        do { return try ReportDocument.decode(document) } catch {
            throw ExpectationError("hoptrace analyze printed no report document: \(error)")
        }
    }

    /// The bytes of `hoptrace analyze FILE --format json` for this capture.
    public static func analyzeDocument(capture: String, rules: String?, podIPs: [String], filter: String?) throws -> Data {
        guard FileManager.default.fileExists(atPath: capture) else { throw ExpectationError("no capture file \(capture)") }
        do {
            return Data(try Analysis.document(capture: capture, rules: rules, podIPs: podIPs, filter: filter))
        } catch {
            throw ExpectationError("hoptrace analyze failed: \(error.message)")
        }
    }
}
