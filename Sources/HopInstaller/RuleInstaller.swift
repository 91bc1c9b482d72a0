import Foundation
import HopNetfilter

/// Something went wrong installing, removing or reading rules; worded for people.
public struct InterceptError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Runs iptables tools, in a named network namespace when asked (`ip netns exec NAME …`).
public struct IptablesRunner: Sendable {
    public var netns: String?

    public init(netns: String? = nil) { self.netns = netns }

    public struct Result: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    /// A tool on PATH or in the sbin folders (`ProcessRunner.which`).
    public static func which(_ tool: String) -> String? { ProcessRunner.which(tool) }

    /// Checks the tools are there, with the Debian package to install when they are not.
    public func checkTools() throws(InterceptError) {
        for tool in ["iptables-restore", "iptables-save"] where Self.which(tool) == nil {
            throw InterceptError("\(tool) is not installed: install the Debian package iptables (apt-get install -y iptables)")
        }
        if netns != nil && Self.which("ip") == nil {
            throw InterceptError("`ip` is not installed: install the Debian package iproute2 (needed for --netns)")
        }
        if let ns = netns, !FileManager.default.fileExists(atPath: "/run/netns/\(ns)") {
            throw InterceptError("network namespace \(ns) does not exist (`ip netns list` shows them; create one with `ip netns add \(ns)`)")
        }
    }

    public func run(_ tool: String, _ arguments: [String], input: String? = nil) throws(InterceptError) -> Result {
        let executable: String, argv0: String, argv: [String]
        if let ns = netns {
            executable = Self.which("ip") ?? "/usr/sbin/ip"
            argv0 = "ip"
            argv = ["netns", "exec", ns, Self.which(tool) ?? tool] + arguments
        } else {
            executable = Self.which(tool) ?? tool
            argv0 = tool
            argv = arguments
        }
        let r: ProcessRunner.Result
        do {
            r = try ProcessRunner.run(executable, argv, argv0: argv0, stdin: Array((input ?? "").utf8))
        } catch {
            throw InterceptError("cannot run \(tool): \(String(cString: strerror(error.errno)))")
        }
        return Result(status: r.status, stdout: r.stdoutText, stderr: r.stderrText)
    }
}

/// Installs, removes and shows the interception rules of an `InterceptConfig`, atomically
/// with `iptables-restore --noflush` (istio-iptables' way), touching nothing else.
///
/// - install: declares our chains (which creates or flushes them), fills them, and adds
///   the jumps from PREROUTING/OUTPUT only where they are missing, in one
///   `iptables-restore --noflush` transaction; installing twice leaves the same rules as once.
///   The nat table is saved first; if the transaction fails or the result is not what was
///   asked for, the saved table is restored.
/// - remove: deletes our jumps from the built-in chains, then flushes and deletes our
///   chains, in one transaction; other chains and rules stay as they were.
public struct RuleInstaller: Sendable {
    public let config: InterceptConfig
    public let runner: IptablesRunner
    /// Lines appended to the install transaction (tests use it to make it fail part-way).
    public var faultInjection: [String] = []

    public init(config: InterceptConfig, runner: IptablesRunner = IptablesRunner()) {
        self.config = config
        self.runner = runner
    }

    /// The rules this configuration produces.
    public var desired: RuleSet { config.ruleSet() }

    /// Our user chains (ISTIO_…).
    public var ourChains: [String] {
        desired.table(.nat)?.chains.filter { !$0.isBuiltin }.map(\.name) ?? []
    }

    /// The rules in built-in chains that jump into ours, as `-A CHAIN …` lines.
    public var jumpRules: [(chain: String, text: String)] {
        guard let nat = desired.table(.nat) else { return [] }
        return nat.chains.filter(\.isBuiltin).flatMap { c in c.rules.map { (c.name, $0.text(chain: c.name)) } }
    }

    /// The iptables-save text of the rules (as `iptables-save -t nat` shows them once installed
    /// in an empty table): what `render` prints.
    public func renderSave() -> String { desired.render(.save, counters: false) }

    /// What `install` would apply now (`intercept install --dry-run`): the transaction for the
    /// nat table as it is (as if empty when it cannot be read); nothing changes.
    public func dryRun() throws(InterceptError) -> String {
        try runner.checkTools()
        return installPlan(current: try? current())
    }

    /// The transaction `install` applies to a table currently holding `current`.
    public func installPlan(current: RuleSet?) -> String {
        var lines = ["*nat"]
        for name in ourChains { lines.append(":\(name) - [0:0]") }
        if let nat = desired.table(.nat) {
            for c in nat.chains where !c.isBuiltin {
                for r in c.rules { lines.append(r.text(chain: c.name)) }
            }
        }
        let present = Set(Self.builtinRuleTexts(current))
        for j in jumpRules where !present.contains(j.text) { lines.append(j.text) }
        lines += faultInjection
        lines.append("COMMIT")
        return lines.joined(separator: "\n") + "\n"
    }

    /// The transaction `remove` applies; nil when nothing of ours is installed.
    public func removePlan(current: RuleSet?) -> String? {
        guard let nat = current?.table(.nat) else { return nil }
        let ours = Set(ourChains)
        var lines = ["*nat"]
        for c in nat.chains where c.isBuiltin {
            for r in c.rules {
                if case .jump(let target)? = r.target, ours.contains(target) { lines.append(r.text(chain: c.name).replacingOccurrences(of: "-A ", with: "-D ", options: .anchored)) }
                if case .goto(let target)? = r.target, ours.contains(target) { lines.append(r.text(chain: c.name).replacingOccurrences(of: "-A ", with: "-D ", options: .anchored)) }
            }
        }
        let installed = nat.chains.filter { ours.contains($0.name) }.map(\.name)
        for name in installed { lines.append("-F \(name)") }
        // Chains may jump into each other: flush all before deleting any.
        for name in installed { lines.append("-X \(name)") }
        guard lines.count > 1 else { return nil }
        lines.append("COMMIT")
        return lines.joined(separator: "\n") + "\n"
    }

    static func builtinRuleTexts(_ set: RuleSet?) -> [String] {
        guard let nat = set?.table(.nat) else { return [] }
        return nat.chains.filter(\.isBuiltin).flatMap { c in c.rules.map { $0.text(chain: c.name) } }
    }

    /// The nat table as installed now.
    public func current() throws(InterceptError) -> RuleSet {
        let r = try runner.run("iptables-save", ["-t", "nat"])
        guard r.status == 0 else { throw Self.privilegeAware("iptables-save -t nat failed", r) }
        if r.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return RuleSet(tables: [Table.empty(.nat)]) }
        do { return try RuleSet.parse(r.stdout) } catch {
            throw InterceptError("cannot read the current nat table: \(error)")
        }
    }

    static func privilegeAware(_ what: String, _ r: IptablesRunner.Result) -> InterceptError {
        let err = r.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        if err.contains("Permission denied") || err.contains("Operation not permitted") || err.contains("you must be root") {
            return InterceptError("\(what): no permission (\(err)); changing iptables needs CAP_NET_ADMIN in the target network namespace: run as root")
        }
        return InterceptError("\(what): \(err)")
    }

    /// Installs the rules. Returns the transaction applied.
    @discardableResult
    public func install() throws(InterceptError) -> String {
        try runner.checkTools()
        let snapshot = try runner.run("iptables-save", ["-t", "nat"])
        guard snapshot.status == 0 else { throw Self.privilegeAware("iptables-save -t nat failed", snapshot) }
        let before = try current()
        let plan = installPlan(current: before)
        let r = try runner.run("iptables-restore", ["--noflush"], input: plan)
        if r.status != 0 {
            try rollback(snapshot.stdout)
            throw Self.privilegeAware("installing the rules failed and the nat table was restored as it was; iptables-restore said", r)
        }
        // Check: our chains hold exactly the desired rules and every jump is there once.
        let after = try current()
        if let problem = verify(after) {
            try rollback(snapshot.stdout)
            throw InterceptError("the installed rules differ from the plan (\(problem)); the nat table was restored as it was")
        }
        return plan
    }

    /// What differs between `installed` and the desired rules, or nil.
    public func verify(_ installed: RuleSet) -> String? {
        guard let nat = installed.table(.nat), let want = desired.table(.nat) else { return "no nat table" }
        for c in want.chains where !c.isBuiltin {
            guard let have = nat.chain(c.name) else { return "chain \(c.name) missing" }
            if have.rules.map({ $0.text(chain: c.name) }) != c.rules.map({ $0.text(chain: c.name) }) {
                return "chain \(c.name) holds other rules"
            }
        }
        let present = Self.builtinRuleTexts(installed)
        for j in jumpRules where present.filter({ $0 == j.text }).count != 1 {
            return "\(j.text) appears \(present.filter { $0 == j.text }.count) times"
        }
        return nil
    }

    private func rollback(_ saved: String) throws(InterceptError) {
        // Restoring only the nat table, as saved: the exact previous state.
        let text = saved.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? "*nat\nCOMMIT\n" : saved
        let r = try runner.run("iptables-restore", ["-T", "nat"], input: text)
        if r.status != 0 {
            throw InterceptError("rolling back failed too: \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines)); inspect with iptables-save -t nat")
        }
    }

    /// Removes our rules; returns the transaction applied, nil when nothing was installed.
    @discardableResult
    public func remove() throws(InterceptError) -> String? {
        try runner.checkTools()
        guard let plan = removePlan(current: try current()) else { return nil }
        let r = try runner.run("iptables-restore", ["--noflush"], input: plan)
        guard r.status == 0 else { throw Self.privilegeAware("removing the rules failed (nothing was changed); iptables-restore said", r) }
        return plan
    }

    /// Our part of the nat table as installed (`-S` form): jumps, then our chains.
    public func show() throws(InterceptError) -> String {
        try runner.checkTools()
        let cur = try current()
        guard let nat = cur.table(.nat) else { return "" }
        let ours = Set(ourChains)
        var lines: [String] = []
        for c in nat.chains where c.isBuiltin {
            for r in c.rules {
                switch r.target {
                case .jump(let t)?, .goto(let t)?: if ours.contains(t) { lines.append(r.text(chain: c.name)) }
                default: break
                }
            }
        }
        for c in nat.chains where ours.contains(c.name) {
            lines.append("-N \(c.name)")
            for r in c.rules { lines.append(r.text(chain: c.name)) }
        }
        return lines.joined(separator: "\n") + (lines.isEmpty ? "" : "\n")
    }

    /// Whether this process shares the host's (PID 1's) network namespace.
    public enum NamespaceCheck: Equatable, Sendable {
        case host
        case other
        /// /proc/1/ns/net cannot be read (a sandbox, no CAP_SYS_PTRACE): it cannot be told,
        /// so callers must treat it as the host's.
        case unknown(String)
    }

    /// Why rules must not be installed in this network namespace when none was named (nil when
    /// they may): it is the host's, or it cannot be told from the host's. The message names
    /// the way out (`--netns NAME`, `--allow-root-netns`).
    public static func hostNamespaceRefusal(_ check: NamespaceCheck = networkNamespaceCheck()) -> String? {
        let why = "these rules would redirect every TCP connection of the host to a proxy on the capture ports that may not be running. "
            + "Use --netns NAME for a pod/lab namespace, or --allow-root-netns if you really mean this namespace"
        switch check {
        case .host: return "refusing to change the host's network namespace: \(why)"
        case .unknown(let detail):
            return "refusing to change this network namespace: it may be the host's (cannot compare with PID 1's: \(detail)); \(why)"
        case .other: return nil
        }
    }

    public static func networkNamespaceCheck() -> NamespaceCheck {
        var mine = stat(), init1 = stat()
        guard stat("/proc/self/ns/net", &mine) == 0 else { return .unknown("/proc/self/ns/net: \(String(cString: strerror(errno)))") }
        guard stat("/proc/1/ns/net", &init1) == 0 else { return .unknown("/proc/1/ns/net: \(String(cString: strerror(errno)))") }
        return mine.st_ino == init1.st_ino && mine.st_dev == init1.st_dev ? .host : .other
    }
}
