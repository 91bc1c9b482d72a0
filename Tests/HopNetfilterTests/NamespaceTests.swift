import Foundation
import HopNetfilter
import XCTest

/// Installs rules with the real iptables-restore inside a network namespace this test
/// creates (`hnftest-<pid>-<n>`), reads them back with iptables-save, and compares.
/// Never touches the root namespace's tables. Needs root (or CAP_SYS_ADMIN + CAP_NET_ADMIN).
final class NamespaceTests: XCTestCase {
    static let prefix = "hnftest-"

    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    @discardableResult
    func run(_ args: [String], stdin: String? = nil) throws -> Run {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        let out = Pipe(), err = Pipe(), inp = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = inp
        try p.run()
        if let stdin { inp.fileHandleForWriting.write(Data(stdin.utf8)) }
        try inp.fileHandleForWriting.close()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    func which(_ tool: String) -> Bool {
        ["/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"].contains { FileManager.default.isExecutableFile(atPath: $0 + tool) }
    }

    /// Deletes namespaces with our prefix whose creating process is gone (an earlier crash).
    func removeStaleNamespaces() throws {
        let list = try run(["ip", "netns", "list"]).stdout
        for line in list.split(separator: "\n") {
            let name = String(line.split(separator: " ").first ?? "")
            guard name.hasPrefix(Self.prefix) else { continue }
            // hnftest-<pid>-<n>: delete it unless <pid> is another live process.
            guard let pid = name.dropFirst(Self.prefix.count).split(separator: "-").first.flatMap({ Int32($0) }) else { continue }
            if pid != getpid(), kill(pid, 0) == 0 { continue }
            try run(["ip", "netns", "del", name])
        }
    }

    func withNamespace(_ n: Int, _ body: (String) throws -> Void) throws {
        let name = "\(Self.prefix)\(getpid())-\(n)"
        let add = try run(["ip", "netns", "add", name])
        guard add.status == 0 else { throw XCTSkip("cannot create a network namespace: \(add.stderr.trimmingCharacters(in: .whitespacesAndNewlines))") }
        defer { _ = try? run(["ip", "netns", "del", name]) }
        try body(name)
    }

    func save(_ ns: String, table: TableName) throws -> String {
        let r = try run(["ip", "netns", "exec", ns, "iptables-save", "-t", table.rawValue])
        XCTAssertEqual(r.status, 0, r.stderr)
        return withoutComments(r.stdout)
    }

    func testPresetsAndFixturesSurviveIptablesRestore() throws {
        guard geteuid() == 0 else { throw XCTSkip("needs root to create a network namespace and run iptables-restore in it") }
        guard which("ip"), which("iptables-restore"), which("iptables-save") else {
            throw XCTSkip("needs ip, iptables-restore and iptables-save")
        }
        try removeStaleNamespaces()
        let inputs: [(String, RuleSet)] = [
            ("istio-2018", RuleSet.preset("istio-2018")!),
            ("istio-current", RuleSet.preset("istio-current")!),
            ("istio-current variant", {
                var c = InterceptConfig.istioCurrent
                c.inbound = .ports([8080, 9090])
                c.excludedOutboundPorts = [5432, 6379]
                c.excludedOutboundNetworks = [CIDR("198.19.0.0/16")!]
                c.outbound = .networks([CIDR("198.18.0.0/16")!])
                c.proxyUIDs = [1337, 1338]
                return c.ruleSet()
            }()),
            ("non-canonical input", try RuleSet.parse(nonCanonicalMiscRules)),
        ]
        for (n, (name, rules)) in inputs.enumerated() {
            try withNamespace(n) { ns in
                let text = rules.render(.save)
                let restore = try run(["ip", "netns", "exec", ns, "iptables-restore"], stdin: text)
                XCTAssertEqual(restore.status, 0, "\(name): \(restore.stderr)")
                let saved = try save(ns, table: .nat)
                let back = try RuleSet.parse(saved)
                // iptables-save prints user chains sorted; compare chain by chain.
                let ours = rules.table(.nat)!, theirs = back.table(.nat)!
                XCTAssertEqual(Set(ours.chains.map(\.name)), Set(theirs.chains.map(\.name)), name)
                for c in ours.chains { XCTAssertEqual(theirs.chain(c.name), c, "\(name) \(c.name)") }
                XCTAssertEqual(back.render(.save), saved, "\(name): model round trip of iptables-save output")
                if name.hasPrefix("istio") {
                    // Generated sets are already in iptables-save's order: text equality.
                    XCTAssertEqual(saved, text, name)
                }
            }
        }
        // The fixture with a mangle table and counters: restore with -c, save with -c.
        try withNamespace(inputs.count) { ns in
            let rules = try RuleSet.parse(savedUserRules)
            let restore = try run(["ip", "netns", "exec", ns, "iptables-restore", "-c"], stdin: rules.render(.save))
            XCTAssertEqual(restore.status, 0, restore.stderr)
            let r = try run(["ip", "netns", "exec", ns, "iptables-save", "-c"])
            let saved = withoutComments(r.stdout)
            XCTAssertEqual(try RuleSet.parse(saved), rules)
            XCTAssertEqual(saved, withoutComments(savedUserRules))
        }
    }
}
