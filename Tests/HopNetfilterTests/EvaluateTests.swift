import HopNetfilter
import XCTest

let pod = IPAddress("198.18.0.2")!
let client = IPAddress("198.18.0.1")!
let remote = IPAddress("198.18.0.9")!
let localhost = IPAddress("127.0.0.1")!
let passthroughSource = IPAddress("127.0.0.6")!

/// A SYN from the client to the pod, arriving on `iface`.
func inbound(_ port: UInt16, proto: IPProtocol = .tcp, iface: String = "eth0") -> PacketContext {
    .arriving(on: iface, proto: proto, from: client, port: 40000, to: pod, port: port)
}

/// A SYN the pod sends (the pod's own address routes over lo).
func outbound(from src: IPAddress = pod, to dst: IPAddress, port: UInt16, uid: UInt32?, gid: UInt32?) -> PacketContext {
    .locallyGenerated(from: src, port: 40001, to: dst, port: port, uid: uid, gid: gid, hostAddresses: [pod])
}

/// `CHAIN#n` for a matched rule, `!CHAIN#n` for one that did not match, `CHAIN#P` for a policy.
func trace(_ steps: [Step]) -> [String] {
    steps.map { s in
        guard let n = s.ruleNumber else { return "\(s.chain)#P" }
        return (s.matched ? "" : "!") + "\(s.chain)#\(n)"
    }
}

func ref(_ chain: String, _ n: Int, _ set: RuleSet, table: TableName = .nat) -> RuleRef {
    let rule = set.chain(chain, table: table)!.rules[n - 1]
    return RuleRef(table: table, chain: chain, number: n, text: rule.text(chain: chain))
}

final class Istio2018EvaluationTests: XCTestCase {
    let rules = RuleSet.preset("istio-2018")!

    func testInboundToPort80IsRedirected() {
        let e = rules.evaluate(inbound(80))
        XCTAssertEqual(trace(e.steps), ["PREROUTING#1", "ISTIO_INBOUND#1", "ISTIO_REDIRECT#1"])
        XCTAssertEqual(e.verdict, .redirected(toPort: 15001))
        XCTAssertEqual(e.decidedBy, ref("ISTIO_REDIRECT", 1, rules))
        XCTAssertFalse(e.dependsOnOwner)
        XCTAssertEqual(e.sentence, "nat/PREROUTING rule 1 → ISTIO_INBOUND rule 1 (-p tcp --dport 80) → ISTIO_REDIRECT rule 1: REDIRECT --to-ports 15001")
        XCTAssertEqual(e.steps[1].text, "-A ISTIO_INBOUND -p tcp -m tcp --dport 80 -j ISTIO_REDIRECT")
        XCTAssertEqual(e.steps[1].table, .nat)
    }

    func testInboundToOtherPortsIsNotRedirected() {
        let e = rules.evaluate(inbound(8080))
        XCTAssertEqual(trace(e.steps), ["PREROUTING#1", "!ISTIO_INBOUND#1", "PREROUTING#P"])
        XCTAssertEqual(e.verdict, .policy(.accept))
        XCTAssertNil(e.decidedBy)
        XCTAssertEqual(e.steps.last?.text, "-P PREROUTING ACCEPT")
        XCTAssertEqual(e.sentence, "nat/PREROUTING: no rule decided → policy ACCEPT (not redirected)")
        let udp = rules.evaluate(inbound(80, proto: .udp))
        XCTAssertEqual(trace(udp.steps), ["!PREROUTING#1", "PREROUTING#P"])
        XCTAssertEqual(udp.verdict, .policy(.accept))
    }

    func testRule1AppCallingItsOwnPodOverLoopback() {
        let p = outbound(to: pod, port: 80, uid: 1000, gid: 1000)
        XCTAssertEqual(p.outInterface, "lo")
        let e = rules.evaluate(p)
        XCTAssertEqual(trace(e.steps), ["OUTPUT#1", "ISTIO_OUTPUT#1", "ISTIO_REDIRECT#1"])
        XCTAssertEqual(e.verdict, .redirected(toPort: 15001))
        // In 2018 the proxy itself was caught by rule 1 too (rule 1 precedes the owner RETURNs).
        XCTAssertEqual(rules.evaluate(outbound(to: pod, port: 80, uid: 1337, gid: 1337)).verdict, .redirected(toPort: 15001))
    }

    func testRule2ProxyTrafficReturns() {
        let e = rules.evaluate(outbound(to: remote, port: 80, uid: 1337, gid: 1337))
        XCTAssertEqual(e.packet.outInterface, "eth0")
        XCTAssertEqual(trace(e.steps), ["OUTPUT#1", "!ISTIO_OUTPUT#1", "ISTIO_OUTPUT#2", "OUTPUT#P"])
        XCTAssertEqual(e.verdict, .returned)
        XCTAssertEqual(e.decidedBy, ref("ISTIO_OUTPUT", 2, rules))
        XCTAssertEqual(e.sentence, "nat/OUTPUT rule 1 → ISTIO_OUTPUT rule 2 (-m owner --uid-owner 1337): RETURN (not redirected; OUTPUT policy ACCEPT)")
    }

    func testRule2ProxyToLocalhostDoesNotMatchRule1() {
        let e = rules.evaluate(outbound(from: localhost, to: localhost, port: 80, uid: 1337, gid: 1337))
        XCTAssertEqual(e.packet.outInterface, "lo")
        XCTAssertEqual(trace(e.steps), ["OUTPUT#1", "!ISTIO_OUTPUT#1", "ISTIO_OUTPUT#2", "OUTPUT#P"])
        XCTAssertEqual(e.verdict, .returned)
        XCTAssertEqual(e.decidedBy?.number, 2)
    }

    func testRule3ProxyGroupReturns() {
        let e = rules.evaluate(outbound(to: remote, port: 80, uid: 1000, gid: 1337))
        XCTAssertEqual(trace(e.steps), ["OUTPUT#1", "!ISTIO_OUTPUT#1", "!ISTIO_OUTPUT#2", "ISTIO_OUTPUT#3", "OUTPUT#P"])
        XCTAssertEqual(e.verdict, .returned)
        XCTAssertEqual(e.decidedBy, ref("ISTIO_OUTPUT", 3, rules))
    }

    func testRule4LocalhostReturns() {
        let e = rules.evaluate(outbound(from: localhost, to: localhost, port: 8080, uid: 1000, gid: 1000))
        XCTAssertEqual(trace(e.steps), ["OUTPUT#1", "!ISTIO_OUTPUT#1", "!ISTIO_OUTPUT#2", "!ISTIO_OUTPUT#3", "ISTIO_OUTPUT#4", "OUTPUT#P"])
        XCTAssertEqual(e.verdict, .returned)
        XCTAssertEqual(e.decidedBy, ref("ISTIO_OUTPUT", 4, rules))
    }

    func testRule5AppTrafficIsRedirected() {
        let e = rules.evaluate(outbound(to: remote, port: 80, uid: 1000, gid: 1000))
        XCTAssertEqual(trace(e.steps), ["OUTPUT#1", "!ISTIO_OUTPUT#1", "!ISTIO_OUTPUT#2", "!ISTIO_OUTPUT#3", "!ISTIO_OUTPUT#4",
                                        "ISTIO_OUTPUT#5", "ISTIO_REDIRECT#1"])
        XCTAssertEqual(e.verdict, .redirected(toPort: 15001))
        XCTAssertEqual(e.sentence, "nat/OUTPUT rule 1 → ISTIO_OUTPUT rule 5 → ISTIO_REDIRECT rule 1: REDIRECT --to-ports 15001")
        XCTAssertEqual(e.notes, [])
    }

    func testUnknownOwnerBranches() {
        let e = rules.evaluate(outbound(to: remote, port: 80, uid: nil, gid: nil))
        XCTAssertTrue(e.dependsOnOwner)
        XCTAssertNil(e.verdict)
        XCTAssertEqual(e.branches.map(\.condition.description), ["uid 1337", "uid not 1337 and gid 1337", "uid not 1337 and gid not 1337"])
        XCTAssertEqual(e.branches.map(\.verdict), [.returned, .returned, .redirected(toPort: 15001)])
        XCTAssertEqual(e.branches.map { $0.decidedBy?.description }, ["nat/ISTIO_OUTPUT rule 2", "nat/ISTIO_OUTPUT rule 3", "nat/ISTIO_REDIRECT rule 1"])
        XCTAssertEqual(e.ownerSummary, "uid 1337 → RETURN (not redirected) (nat/ISTIO_OUTPUT rule 2); uid not 1337 and gid 1337 → RETURN (not redirected) (nat/ISTIO_OUTPUT rule 3); uid not 1337 and gid not 1337 → REDIRECT 15001 (nat/ISTIO_REDIRECT rule 1)")
        XCTAssertEqual(e.branches[0].steps[2].note, "owner: assuming uid 1337")
        XCTAssertEqual(e.branches[2].condition.uids, IDSet.only(1337).complement)
        XCTAssertTrue(e.sentence.hasPrefix("uid 1337: nat/OUTPUT rule 1 → ISTIO_OUTPUT rule 2 (-m owner --uid-owner 1337): RETURN"))
        // Known uid, unknown gid: only the gid branches.
        let g = rules.evaluate(outbound(to: remote, port: 80, uid: 1000, gid: nil))
        XCTAssertEqual(g.branches.map(\.condition.description), ["gid 1337", "gid not 1337"])
        // Inbound packets have no owner: nothing to branch on.
        XCTAssertFalse(rules.evaluate(inbound(80)).dependsOnOwner)
    }

    func testOtherTablesAreEmpty() {
        let e = rules.evaluate(inbound(80), table: .mangle)
        XCTAssertEqual(e.steps, [])
        XCTAssertEqual(e.verdict, .policy(.accept))
    }
}

final class IstioCurrentEvaluationTests: XCTestCase {
    let rules = RuleSet.preset("istio-current")!

    func testInboundIsRedirectedTo15006() {
        let e = rules.evaluate(inbound(80))
        XCTAssertEqual(trace(e.steps), ["PREROUTING#1", "!ISTIO_INBOUND#1", "!ISTIO_INBOUND#2", "!ISTIO_INBOUND#3", "!ISTIO_INBOUND#4",
                                        "ISTIO_INBOUND#5", "ISTIO_IN_REDIRECT#1"])
        XCTAssertEqual(e.verdict, .redirected(toPort: 15006))
        XCTAssertEqual(e.sentence, "nat/PREROUTING rule 1 → ISTIO_INBOUND rule 5 → ISTIO_IN_REDIRECT rule 1: REDIRECT --to-ports 15006")
    }

    func testInboundExcludedPortsReturn() {
        for (n, port) in [15008, 15090, 15021, 15020].enumerated() {
            let e = rules.evaluate(inbound(UInt16(port)))
            XCTAssertEqual(trace(e.steps), ["PREROUTING#1"] + (0..<n).map { "!ISTIO_INBOUND#\($0 + 1)" } + ["ISTIO_INBOUND#\(n + 1)", "PREROUTING#P"], "\(port)")
            XCTAssertEqual(e.verdict, .returned)
            XCTAssertEqual(e.decidedBy, ref("ISTIO_INBOUND", n + 1, rules))
        }
    }

    func testRule1InboundPassthroughFrom127_0_0_6() {
        let e = rules.evaluate(outbound(from: passthroughSource, to: pod, port: 80, uid: 1337, gid: 1337))
        XCTAssertEqual(trace(e.steps), ["OUTPUT#1", "ISTIO_OUTPUT#1", "OUTPUT#P"])
        XCTAssertEqual(e.verdict, .returned)
        XCTAssertEqual(e.decidedBy, ref("ISTIO_OUTPUT", 1, rules))
    }

    func testRule2ProxyCallingItsOwnPodGoesInbound() {
        let e = rules.evaluate(outbound(to: pod, port: 80, uid: 1337, gid: 1337))
        XCTAssertEqual(trace(e.steps), ["OUTPUT#1", "!ISTIO_OUTPUT#1", "ISTIO_OUTPUT#2", "ISTIO_IN_REDIRECT#1"])
        XCTAssertEqual(e.verdict, .redirected(toPort: 15006))
        // Except to the tunnel port: rule 4 returns it.
        let t = rules.evaluate(outbound(to: pod, port: 15008, uid: 1337, gid: 1337))
        XCTAssertEqual(trace(t.steps), ["OUTPUT#1", "!ISTIO_OUTPUT#1", "!ISTIO_OUTPUT#2", "!ISTIO_OUTPUT#3", "ISTIO_OUTPUT#4", "OUTPUT#P"])
    }

    func testRule3OthersOverLoopbackReturn() {
        for dst in [pod, localhost] {
            let e = rules.evaluate(outbound(from: dst, to: dst, port: 80, uid: 1000, gid: 1000))
            XCTAssertEqual(trace(e.steps), ["OUTPUT#1", "!ISTIO_OUTPUT#1", "!ISTIO_OUTPUT#2", "ISTIO_OUTPUT#3", "OUTPUT#P"], "\(dst)")
            XCTAssertEqual(e.verdict, .returned)
            XCTAssertEqual(e.decidedBy?.number, 3)
        }
    }

    func testRule4ProxyOutboundReturns() {
        let e = rules.evaluate(outbound(to: remote, port: 80, uid: 1337, gid: 1337))
        XCTAssertEqual(trace(e.steps), ["OUTPUT#1", "!ISTIO_OUTPUT#1", "!ISTIO_OUTPUT#2", "!ISTIO_OUTPUT#3", "ISTIO_OUTPUT#4", "OUTPUT#P"])
        XCTAssertEqual(e.decidedBy, ref("ISTIO_OUTPUT", 4, rules))
    }

    func testRules5And6AreShadowedByTheUIDRules() {
        // With uid and gid both 1337, every lo packet is decided by rules 2-4 first:
        // no owner, destination or port reaches rule 5 or 6 (nor rule 8: 127.0.0.1 is lo).
        for dst in [pod, localhost, remote] {
            for port: UInt16 in [80, 15008] {
                let e = rules.evaluate(outbound(from: dst == remote ? pod : dst, to: dst, port: port, uid: nil, gid: nil))
                for b in e.branches {
                    let matched = Set(b.steps.filter { $0.matched && $0.chain == "ISTIO_OUTPUT" }.compactMap(\.ruleNumber))
                    XCTAssertTrue(matched.isDisjoint(with: [5, 6, 8]), "\(dst):\(port) \(b.condition)")
                }
            }
        }
    }

    func testRules5To8WhenTheyAreReachable() {
        // Without a uid rule, the gid rules do the same job at positions 2-4.
        var c = InterceptConfig.istioCurrent
        c.proxyUIDs = []
        let g = c.ruleSet()
        XCTAssertEqual(g.chain("ISTIO_OUTPUT")?.rules[1].text(chain: "ISTIO_OUTPUT"),
                       "-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m tcp ! --dport 15008 -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT")
        XCTAssertEqual(g.evaluate(outbound(to: pod, port: 80, uid: 1337, gid: 1337)).verdict, .redirected(toPort: 15006))
        let app = g.evaluate(outbound(to: pod, port: 80, uid: 1000, gid: 1000))
        XCTAssertEqual(app.decidedBy?.text, "-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN")
        XCTAssertEqual(g.evaluate(outbound(to: remote, port: 80, uid: 1000, gid: 1337)).decidedBy?.text,
                       "-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN")
        // Without any owner rule, rule 2 is the localhost RETURN.
        c.proxyGIDs = []
        let n = c.ruleSet()
        XCTAssertEqual(n.evaluate(outbound(from: localhost, to: localhost, port: 80, uid: 1000, gid: 1000)).decidedBy?.text,
                       "-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN")
        // Rule 8 of the full preset matches a (hypothetical) 127.0.0.1 packet not leaving on lo.
        let odd = PacketContext(hook: .output, outInterface: "eth0", source: pod, sourcePort: 1, destination: localhost,
                                destinationPort: 80, uid: 1000, gid: 1000)
        XCTAssertEqual(rules.evaluate(odd).decidedBy, ref("ISTIO_OUTPUT", 8, rules))
    }

    func testRule7ProxyGroupReturns() {
        let e = rules.evaluate(outbound(to: remote, port: 80, uid: 1000, gid: 1337))
        XCTAssertEqual(trace(e.steps), ["OUTPUT#1"] + (1...6).map { "!ISTIO_OUTPUT#\($0)" } + ["ISTIO_OUTPUT#7", "OUTPUT#P"])
        XCTAssertEqual(e.decidedBy, ref("ISTIO_OUTPUT", 7, rules))
    }

    func testRule9AppOutboundIsRedirectedTo15001() {
        let e = rules.evaluate(outbound(to: remote, port: 80, uid: 1000, gid: 1000))
        XCTAssertEqual(trace(e.steps), ["OUTPUT#1"] + (1...8).map { "!ISTIO_OUTPUT#\($0)" } + ["ISTIO_OUTPUT#9", "ISTIO_REDIRECT#1"])
        XCTAssertEqual(e.verdict, .redirected(toPort: 15001))
        XCTAssertEqual(e.decidedBy, ref("ISTIO_REDIRECT", 1, rules))
    }

    func testUnknownOwner() {
        let out = rules.evaluate(outbound(to: remote, port: 80, uid: nil, gid: nil))
        XCTAssertEqual(out.ownerSummary, "uid 1337 → RETURN (not redirected) (nat/ISTIO_OUTPUT rule 4); uid not 1337 and gid 1337 → RETURN (not redirected) (nat/ISTIO_OUTPUT rule 7); uid not 1337 and gid not 1337 → REDIRECT 15001 (nat/ISTIO_REDIRECT rule 1)")
        let self_ = rules.evaluate(outbound(to: pod, port: 80, uid: nil, gid: nil))
        XCTAssertEqual(self_.ownerSummary, "uid 1337 → REDIRECT 15006 (nat/ISTIO_IN_REDIRECT rule 1); uid not 1337 → RETURN (not redirected) (nat/ISTIO_OUTPUT rule 3)")
        XCTAssertEqual(self_.sentence, "uid 1337: nat/OUTPUT rule 1 → ISTIO_OUTPUT rule 2 (! -d 127.0.0.1/32 -o lo -p tcp ! --dport 15008 -m owner --uid-owner 1337) → ISTIO_IN_REDIRECT rule 1: REDIRECT --to-ports 15006; uid not 1337: nat/OUTPUT rule 1 → ISTIO_OUTPUT rule 3 (-o lo -m owner ! --uid-owner 1337): RETURN (not redirected; OUTPUT policy ACCEPT)")
    }
}

final class EvaluatorTests: XCTestCase {
    func testMangleThenNatWithUnknownMatches() throws {
        let r = try RuleSet.parse(savedUserRules)
        let e = r.evaluate(inbound(80), tables: [.mangle, .nat])
        XCTAssertEqual(trace(e.steps), ["PREROUTING#1", "!ISTIO_INBOUND#1", "ISTIO_INBOUND#2", "ISTIO_DIVERT#1", "ISTIO_DIVERT#2",
                                        "PREROUTING#1", "!ISTIO_INBOUND#1", "!ISTIO_INBOUND#2", "ISTIO_INBOUND#3", "ISTIO_IN_REDIRECT#1"])
        XCTAssertEqual(e.steps.map(\.table), Array(repeating: TableName.mangle, count: 5) + Array(repeating: .nat, count: 5))
        XCTAssertEqual(e.branches[0].outcomes.map(\.verdict), [.accepted, .redirected(toPort: 15006)])
        XCTAssertEqual(e.verdict, .redirected(toPort: 15006))
        XCTAssertEqual(e.branches[0].mark, 0x539)
        XCTAssertEqual(e.notes, ["match 'conntrack' not evaluated; assumed to match", "match 'addrtype' not evaluated; assumed to match"])
        XCTAssertEqual(e.steps[2].note, "match 'conntrack' not evaluated; assumed to match")

        let strict = r.evaluate(inbound(80), tables: [.mangle, .nat], options: EvaluationOptions(unknownMatches: .assumeNoMatch))
        XCTAssertEqual(strict.branches[0].outcomes.map(\.verdict), [.tproxy(port: 15006), .policy(.accept)])
        XCTAssertEqual(strict.verdict, .tproxy(port: 15006))
        XCTAssertEqual(strict.decidedBy, ref("ISTIO_TPROXY", 1, r, table: .mangle))
        XCTAssertEqual(strict.branches[0].mark, 0x539)
        XCTAssertEqual(strict.sentence, "mangle/PREROUTING rule 1 → ISTIO_INBOUND rule 3 → ISTIO_TPROXY rule 1 (! -d 127.0.0.1/32 -p tcp): TPROXY --on-port 15006 --on-ip 0.0.0.0 --tproxy-mark 0x539/0xffffffff; then nat/PREROUTING: no rule decided → policy ACCEPT (not redirected)")
    }

    func testUnevaluatedTargetsAndLog() throws {
        let r = try RuleSet.parse(savedUserRules)
        let db = r.evaluate(outbound(to: IPAddress("198.18.5.5")!, port: 5432, uid: 1000, gid: 1000))
        XCTAssertEqual(trace(db.steps), ["OUTPUT#1", "!ISTIO_OUTPUT#1", "!ISTIO_OUTPUT#2", "!ISTIO_OUTPUT#3", "ISTIO_OUTPUT#4", "KUBE-SEP#1"])
        XCTAssertEqual(db.verdict, .unevaluated(target: "DNAT"))
        XCTAssertEqual(db.sentence, "nat/OUTPUT rule 1 (-p tcp -m conntrack --ctstate NEW) → ISTIO_OUTPUT rule 4 (-d 198.18.0.0/16 -p tcp --dport 5432) → KUBE-SEP rule 1: DNAT --to-destination 198.18.1.5:5432 (not evaluated by hoptrace)")
        // A marked packet returns at rule 2; OUTPUT rule 2 (-o lo) does not match; the RETURN decided.
        var marked = outbound(to: IPAddress("198.18.5.5")!, port: 5432, uid: 1000, gid: 1000)
        marked.mark = 0x1539
        let m = r.evaluate(marked)
        XCTAssertEqual(trace(m.steps), ["OUTPUT#1", "!ISTIO_OUTPUT#1", "ISTIO_OUTPUT#2", "!OUTPUT#2", "OUTPUT#P"])
        XCTAssertEqual(m.verdict, .returned)
        XCTAssertEqual(m.decidedBy, ref("ISTIO_OUTPUT", 2, r))
        // LOG lets the packet continue.
        let web = r.evaluate(outbound(to: remote, port: 80, uid: 1000, gid: 1000))
        XCTAssertEqual(trace(web.steps).suffix(3), ["ISTIO_OUTPUT#6", "ISTIO_OUTPUT#7", "ISTIO_REDIRECT#1"])
        XCTAssertEqual(web.verdict, .redirected(toPort: 15001))
        XCTAssertTrue(web.notes.contains("target 'LOG' not evaluated; assumed to let the packet continue"))
    }

    func testGotoReturnsToTheCallersCaller() throws {
        let r = try RuleSet.parse("""
        -N A
        -N B
        -A OUTPUT -j A
        -A OUTPUT -p tcp -j REDIRECT --to-ports 9
        -A A -g B
        -A A -p tcp -j REDIRECT --to-ports 1
        -A B -j RETURN
        """)
        let e = r.evaluate(outbound(to: remote, port: 80, uid: 0, gid: 0))
        XCTAssertEqual(trace(e.steps), ["OUTPUT#1", "A#1", "B#1", "OUTPUT#2"])
        XCTAssertEqual(e.verdict, .redirected(toPort: 9))
    }

    func testLoopsStop() {
        let set = RuleSet(tables: [Table(name: .nat, chains: [
            Chain(name: "OUTPUT", policy: .accept, rules: [Rule(target: .jump("A"))]),
            Chain(name: "A", rules: [Rule(target: .jump("B"))]),
            Chain(name: "B", rules: [Rule(target: .jump("A"))]),
        ])])
        let e = set.evaluate(outbound(to: remote, port: 80, uid: 0, gid: 0))
        XCTAssertEqual(e.verdict, .loop(chain: "A"))
        XCTAssertEqual(trace(e.steps), ["OUTPUT#1", "A#1", "B#1"])
        XCTAssertEqual(set.render(.listing), "-P OUTPUT ACCEPT\n-N A\n-N B\n-A OUTPUT -j A\n-A A -j B\n-A B -j A\n")
        // A jump to a chain that is not there (only possible in a hand-built model).
        let missing = RuleSet(tables: [Table(name: .nat, chains: [
            Chain(name: "OUTPUT", policy: .accept, rules: [Rule(target: .jump("GONE"))]),
        ])])
        XCTAssertEqual(missing.evaluate(outbound(to: remote, port: 80, uid: 0, gid: 0)).verdict, .unevaluated(target: "GONE"))
        XCTAssertEqual(missing.warnings.map(\.description), ["rule 1 of OUTPUT jumps to chain 'GONE', which does not exist"])
    }

    func testMarksAndConnmarks() throws {
        let r = try RuleSet.parse("""
        -A OUTPUT -j MARK --set-mark 0x10
        -A OUTPUT -p tcp -m mark --mark 0x10/0xf0 -j REDIRECT --to-ports 7
        -A PREROUTING -j CONNMARK --restore-mark
        -A PREROUTING -p tcp -m mark --mark 0x5 -j REDIRECT --to-ports 5
        -A PREROUTING -j CONNMARK --save-mark --nfmask 0xff --ctmask 0xff
        """)
        let o = r.evaluate(outbound(to: remote, port: 80, uid: 0, gid: 0))
        XCTAssertEqual(o.verdict, .redirected(toPort: 7))
        XCTAssertEqual(o.branches[0].mark, 0x10)
        var p = inbound(80)
        p.connmark = 5
        XCTAssertEqual(r.evaluate(p).verdict, .redirected(toPort: 5))
        var q = inbound(80)
        q.mark = 0x1234
        let e = r.evaluate(q)
        XCTAssertEqual(e.verdict, .policy(.accept))
        XCTAssertEqual(e.branches[0].mark, 0)
        XCTAssertEqual(e.branches[0].connmark, 0)
    }

    func testOwnerMatchWithoutSocket() throws {
        let r = try RuleSet.parse("""
        -A PREROUTING -m owner --uid-owner 0 -j RETURN
        -A PREROUTING -p tcp -m owner ! --uid-owner 0 -j REDIRECT --to-ports 5
        """)
        let e = r.evaluate(inbound(80))
        XCTAssertEqual(trace(e.steps), ["!PREROUTING#1", "PREROUTING#2"])
        XCTAssertEqual(e.verdict, .redirected(toPort: 5))
        XCTAssertFalse(e.dependsOnOwner)
    }

    func testOwnerRangesAndCombinedCriteria() throws {
        let r = try RuleSet.parse("""
        -A OUTPUT -m owner --uid-owner 1000-2000 -j RETURN
        -A OUTPUT -m owner --uid-owner 1 --gid-owner 2 -j RETURN
        -A OUTPUT -p tcp -j REDIRECT --to-ports 3
        """)
        let e = r.evaluate(outbound(to: remote, port: 80, uid: nil, gid: nil))
        XCTAssertEqual(e.branches.map(\.condition.description), [
            "uid 1000-2000", "uid 1 and gid 2", "uid not in {1, 1000-2000}", "uid 1 and gid not 2",
        ])
        XCTAssertEqual(e.branches.map(\.verdict), [.returned, .returned, .redirected(toPort: 3), .redirected(toPort: 3)])
        XCTAssertEqual(r.evaluate(outbound(to: remote, port: 80, uid: 1500, gid: nil)).branches.count, 1)
    }

    func testBranchLimit() throws {
        let r = try RuleSet.parse((1...20).map { "-A OUTPUT -m owner --uid-owner \($0) -j MARK --set-mark \($0)" }.joined(separator: "\n"))
        let e = r.evaluate(outbound(to: remote, port: 80, uid: nil, gid: nil), options: EvaluationOptions(maxBranches: 5))
        XCTAssertLessThanOrEqual(e.branches.count, 6)
        XCTAssertTrue(e.branches.contains { $0.verdict == .limitExceeded })
        let all = r.evaluate(outbound(to: remote, port: 80, uid: nil, gid: nil))
        XCTAssertEqual(all.branches.count, 21)
        XCTAssertEqual(all.branches[0].mark, 1)
        XCTAssertEqual(all.branches[20].mark, 0)
    }

    func testInterfacesPortsAndFlags() throws {
        let r = try RuleSet.parse("""
        -A PREROUTING -i eth+ -p udp -m multiport ! --dports 53,80:90 -j REDIRECT --to-ports 1
        -A PREROUTING ! -i lo -p udp -j REDIRECT --to-ports 2
        -A PREROUTING -p tcp --syn -m multiport --ports 22 -j REDIRECT --to-ports 3
        -A PREROUTING -p tcp -m tcp --sport 40000 -j REDIRECT --to-ports 15001-15003
        """)
        XCTAssertEqual(r.evaluate(inbound(100, proto: .udp, iface: "eth1")).verdict, .redirected(toPort: 1))
        XCTAssertEqual(r.evaluate(inbound(85, proto: .udp, iface: "eth1")).verdict, .redirected(toPort: 2))
        XCTAssertEqual(r.evaluate(inbound(85, proto: .udp, iface: "lo")).verdict, .policy(.accept))
        XCTAssertEqual(r.evaluate(inbound(22)).verdict, .redirected(toPort: 3))
        var ack = inbound(22)
        ack.tcpFlags = [.syn, .ack]
        XCTAssertEqual(r.evaluate(ack).verdict, .redirected(toPort: 15001))
    }

    func testIPv6Rules() throws {
        let r = try RuleSet.parse(savedIPv6Rules)
        let v6pod = IPAddress("2001:db8::2")!
        func out(_ dst: String) -> Evaluation {
            r.evaluate(.locallyGenerated(from: v6pod, port: 1, to: IPAddress(dst)!, port: 80, uid: 1, gid: 1, hostAddresses: [v6pod]))
        }
        XCTAssertEqual(out("2001:db8::5").decidedBy?.number, 3)
        XCTAssertEqual(out("2001:db8:0:1::5").verdict, .redirected(toPort: 15001))
        XCTAssertEqual(out("::1").packet.outInterface, "lo")
        XCTAssertEqual(trace(out("::1").steps), ["OUTPUT#1", "!ISTIO_OUTPUT#1", "!ISTIO_OUTPUT#2", "!ISTIO_OUTPUT#3", "!ISTIO_OUTPUT#4", "!ISTIO_OUTPUT#5", "!ISTIO_OUTPUT#6", "OUTPUT#P"])
        XCTAssertEqual(out("2001:db8::2").decidedBy?.number, 2)  // own address over lo
        // An IPv4 packet never matches IPv6 networks.
        XCTAssertEqual(r.evaluate(outbound(to: remote, port: 80, uid: 1, gid: 1)).verdict, .policy(.accept))
    }

    func testIDSetDescriptions() {
        XCTAssertEqual(IDSet.all.description, "any")
        XCTAssertEqual(IDSet.only(5).description, "5")
        XCTAssertEqual(IDSet.only(5).complement.description, "not 5")
        XCTAssertEqual(IDSet([0...0, 7...9]).description, "in {0, 7-9}")
        XCTAssertEqual(IDSet.all.subtracting(0...0).subtracting(UInt32.max...UInt32.max).description, "1-4294967294")
        XCTAssertTrue(IDSet.all.subtracting(0...UInt32.max).isEmpty)
    }
}
