import Foundation
import HopCorrelation
import HopInstaller
import HopNetfilter

/// Where the interception rules of an analysis come from (`--rules`): one of the presets, a
/// file of iptables-save (or `iptables -t nat -S`) text, the live network namespace's own nat
/// table, none, or auto.
public enum RuleSource: Equatable, Sendable {
    case preset(String)
    case file(String)
    /// `iptables-save` in this network namespace (after `--netns`).
    case live
    /// A live capture: the namespace's own nat rules when it has any; otherwise (and for
    /// files) the capture's sidecar traces pick a preset, and no traces means no rules.
    case auto
    case none

    /// The keywords `--rules` takes besides the presets and a path.
    public static let keywords = ["auto", "live", "none"]

    /// What `--rules` says: a keyword, a preset's name, or else a path.
    public init(_ text: String) {
        switch text {
        case "auto": self = .auto
        case "live": self = .live
        case "none": self = .none
        default: self = InterceptConfig.presetNames.contains(text) ? .preset(text) : .file(text)
        }
    }

    /// The rules chosen, where they came from (for the report), and what was noted on the way
    /// (lines of the rules file that were kept but not understood).
    public struct Resolved {
        public var selection: RuleSelection
        public var origin: String
        public var notes: [String] = []
        /// The namespace's rules were read (`live`, or `auto` on a live capture).
        public var readFromNamespace = false
    }

    /// Resolves the source. `live`: the capture is live (so `auto` may read the namespace's
    /// rules).
    public func resolve(live: Bool) throws(InputError) -> Resolved {
        switch self {
        case .none:
            return Resolved(selection: .fixed(NoRules()), origin: "given: no interception rules")
        case .preset(let name):
            guard let p = NetfilterOracle.preset(name) else { throw InputError(message: "--rules \(name): unknown preset") }
            return Resolved(selection: .fixed(p), origin: "given with --rules")
        case .file(let path):
            let text = try Self.readRulesFile(path)
            do {
                let set = try RuleSet.parse(text)
                return Resolved(selection: .fixed(NetfilterOracle(ruleSet: set, name: (path as NSString).lastPathComponent)),
                                origin: "given with --rules", notes: set.warnings.map { "--rules \(path): \($0)" })
            } catch {
                throw InputError(message: "--rules \(path): \(error)")
            }
        case .live:
            if let oracle = Self.namespaceRules() {
                return Resolved(selection: .fixed(oracle), origin: "read from this namespace with iptables-save", readFromNamespace: true)
            }
            return Resolved(selection: .fixed(NoRules()), origin: "no nat rules in this namespace (or iptables-save is unavailable)")
        case .auto:
            if live, let oracle = Self.namespaceRules() {
                return Resolved(selection: .fixed(oracle), origin: "auto: read from this namespace with iptables-save; --rules to choose",
                                readFromNamespace: true)
            }
            return Resolved(selection: .auto(presets: { NetfilterOracle.preset($0) }), origin: "auto")
        }
    }

    /// The origin line of a report once the analysis has run (auto says what it detected).
    public static func origin(_ resolved: Resolved, evidence: SidecarEvidence) -> String {
        guard case .auto = resolved.selection else { return resolved.origin }
        return evidence.detected
            ? "auto: \(evidence.description); --rules to choose"
            : "auto: no sidecar traces in the capture; --rules to evaluate a rule set"
    }

    /// This network namespace's nat table (`iptables-save`), when it has any rule.
    static func namespaceRules() -> NetfilterOracle? {
        let installer = RuleInstaller(config: .istio2018, runner: IptablesRunner())
        guard IptablesRunner.which("iptables-save") != nil, let set = try? installer.current(),
              let nat = set.table(.nat), nat.chains.contains(where: { !$0.rules.isEmpty }) else { return nil }
        return NetfilterOracle(ruleSet: set, name: "live nat table")
    }

    /// The text of a `--rules FILE` (iptables-save or `iptables -S` text), or an error that says
    /// what is wrong with the path: missing, a directory, unreadable, not text.
    public static func readRulesFile(_ path: String) throws(InputError) -> String {
        let choices = "\(InterceptConfig.presetNames.joined(separator: ", ")), \(keywords.joined(separator: ", "))"
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw InputError(message: "--rules \(path): not a preset (\(choices)) and no such file")
        }
        if isDirectory.boolValue {
            throw InputError(message: "--rules \(path): is a directory; give a file of iptables-save text (e.g. `iptables-save -t nat > rules.txt` in the pod's network namespace), or one of \(choices)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw InputError(message: "--rules \(path): cannot be read (\(String(cString: strerror(access(path, R_OK) == 0 ? EIO : errno))))")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw InputError(message: "--rules \(path): not text (iptables-save output is UTF-8 text)")
        }
        return text
    }
}
