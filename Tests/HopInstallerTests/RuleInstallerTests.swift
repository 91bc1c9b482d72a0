import Foundation
@testable import HopInstaller
import HopNetfilter
import XCTest

/// The rule installer, against real iptables inside network namespaces made for each test.
final class RuleInstallerTests: XCTestCase {
    static let seed = """
    -P PREROUTING ACCEPT
    -P INPUT ACCEPT
    -P OUTPUT ACCEPT
    -P POSTROUTING ACCEPT
    -N ISTIO_INBOUND
    -N ISTIO_OUTPUT
    -N ISTIO_REDIRECT
    -A PREROUTING -p tcp -j ISTIO_INBOUND
    -A OUTPUT -p tcp -j ISTIO_OUTPUT
    -A ISTIO_INBOUND -p tcp -m tcp --dport 80 -j ISTIO_REDIRECT
    -A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -j ISTIO_REDIRECT
    -A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN
    -A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN
    -A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN
    -A ISTIO_OUTPUT -j ISTIO_REDIRECT
    -A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001

    """

    var namespace: String?

    static var productsDirectory: URL { Bundle.main.bundleURL }
    static var hoptrace: String { productsDirectory.appendingPathComponent("hoptrace").path }

    func sh(_ args: [String], input: String? = nil) -> IptablesRunner.Result {
        do {
            let r = try ProcessRunner.run(IptablesRunner.which(args[0]) ?? args[0], Array(args.dropFirst()), stdin: Array((input ?? "").utf8))
            return .init(status: r.signal ?? r.status, stdout: r.stdoutText, stderr: r.stderrText)
        } catch {
            return .init(status: -1, stdout: "", stderr: "\(error)")
        }
    }

    /// A fresh network namespace (root only), removed in tearDown.
    func makeNamespace() throws -> String {
        guard geteuid() == 0 else { throw XCTSkip("needs root to create a network namespace and run iptables in it") }
        guard IptablesRunner.which("iptables-restore") != nil, IptablesRunner.which("ip") != nil else {
            throw XCTSkip("iptables or iproute2 is missing (Debian packages iptables, iproute2)")
        }
        // Stale namespaces of an earlier crashed run.
        for line in sh(["ip", "netns", "list"]).stdout.split(separator: "\n") {
            let name = String(line.split(separator: " ").first ?? "")
            if name.hasPrefix("hoptest-rules-"), !name.hasPrefix("hoptest-rules-\(getpid())-") { _ = sh(["ip", "netns", "del", name]) }
        }
        let name = "hoptest-rules-\(getpid())-\(Int.random(in: 0..<1_000_000))"
        let r = sh(["ip", "netns", "add", name])
        guard r.status == 0 else { throw XCTSkip("cannot create a network namespace here: \(r.stderr)") }
        namespace = name
        return name
    }

    override func tearDown() {
        if let ns = namespace { _ = sh(["ip", "netns", "del", ns]) }
        namespace = nil
    }

    func natRules(_ ns: String) -> String {
        sh(["ip", "netns", "exec", ns, "iptables", "-t", "nat", "-S"]).stdout
    }

    func testTheSeedPresetRendersExactlyTheArticlesRules() {
        let c = InterceptConfig.preset("istio-2018")!
        XCTAssertEqual(c.ruleSet().render(.listing), Self.seed)
        let save = RuleInstaller(config: c).renderSave()
        XCTAssertTrue(save.hasPrefix("*nat\n"), save)
        XCTAssertTrue(save.contains("-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001\nCOMMIT\n"), save)
    }

    func testInstallEqualsRenderingInstallTwiceRemoveLeavesOthersAlone() throws {
        let ns = try makeNamespace()
        // Someone else's rule and chain, which must survive.
        let foreign = "*nat\n:OTHER - [0:0]\n-A OTHER -p udp -j RETURN\n-A OUTPUT -p udp -j OTHER\nCOMMIT\n"
        XCTAssertEqual(sh(["ip", "netns", "exec", ns, "iptables-restore", "--noflush"], input: foreign).status, 0)
        let before = natRules(ns)
        for preset in ["istio-2018", "istio-current"] {
            let installer = RuleInstaller(config: InterceptConfig.preset(preset)!, runner: IptablesRunner(netns: ns))
            // A dry run plans for the table as it is and changes nothing.
            XCTAssertEqual(try installer.dryRun(), installer.installPlan(current: try installer.current()))
            XCTAssertEqual(natRules(ns), before)
            try installer.install()
            let once = natRules(ns)
            try installer.install()
            XCTAssertEqual(natRules(ns), once, "\(preset): install twice == once")
            // iptables-save there equals the rendering (plus the foreign rules).
            let installed = try installer.current()
            XCTAssertNil(installer.verify(installed))
            let ours = installer.desired.render(.listing).split(separator: "\n").filter { !$0.hasPrefix("-P") }
            let have = Set(once.split(separator: "\n"))
            for line in ours { XCTAssertTrue(have.contains(line), "\(preset): missing \(line)") }
            XCTAssertTrue(once.contains("-A OTHER -p udp -j RETURN"))
            XCTAssertEqual(try installer.show().split(separator: "\n").count, ours.count)
            try installer.remove()
            XCTAssertEqual(natRules(ns), before, "\(preset): remove leaves exactly what was there")
            XCTAssertNil(try installer.remove(), "nothing left to remove")
        }
    }

    func testAFailedInstallRollsBack() throws {
        let ns = try makeNamespace()
        var installer = RuleInstaller(config: InterceptConfig.preset("istio-current")!, runner: IptablesRunner(netns: ns))
        try RuleInstaller(config: InterceptConfig.preset("istio-2018")!, runner: IptablesRunner(netns: ns)).install()
        let before = natRules(ns)
        installer.faultInjection = ["-A NO_SUCH_CHAIN -j RETURN"]
        XCTAssertThrowsError(try installer.install()) { e in
            XCTAssertTrue("\(e)".contains("restored as it was"), "\(e)")
        }
        XCTAssertEqual(natRules(ns), before)
    }

    func testCommandLineRefusalsAndMessages() throws {
        // Without --netns, in a namespace that may be the host's: refused, nothing changed.
        let r = sh([Self.hoptrace, "intercept", "install"])
        if RuleInstaller.networkNamespaceCheck() != .other {
            XCTAssertEqual(r.status, 2)
            XCTAssertTrue(r.stderr.contains("refusing to change"), r.stderr)
            XCTAssertTrue(r.stderr.contains("--netns"), r.stderr)
        }
        let missing = sh([Self.hoptrace, "intercept", "install", "--netns", "hoptest-no-such-namespace"])
        XCTAssertEqual(missing.status, 2)
        XCTAssertTrue(missing.stderr.contains("network namespace hoptest-no-such-namespace does not exist"), missing.stderr)
        let render = sh([Self.hoptrace, "intercept", "render", "--listing"])
        XCTAssertEqual(render.stdout, Self.seed)
        let custom = sh([Self.hoptrace, "intercept", "render", "--listing", "--preset", "istio-current", "-b", "8080", "-o", "3306", "-x", "198.18.9.0/24"])
        XCTAssertTrue(custom.stdout.contains("--dport 8080"), custom.stdout)
        XCTAssertTrue(custom.stdout.contains("3306"), custom.stdout)
        XCTAssertTrue(custom.stdout.contains("198.18.9.0/24"), custom.stdout)
    }

    func testNoPrivilegeNamesTheCapability() throws {
        let ns = try makeNamespace()
        guard IptablesRunner.which("setpriv") != nil else { throw XCTSkip("setpriv (util-linux) is missing") }
        // Inside the test's namespace, as nobody: even if dropping privileges failed, only that namespace could change.
        let r = sh(["ip", "netns", "exec", ns, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
                    Self.hoptrace, "intercept", "install", "--allow-root-netns"])
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains("CAP_NET_ADMIN"), r.stderr)
        XCTAssertFalse(natRules(ns).contains("ISTIO"))
    }
}
