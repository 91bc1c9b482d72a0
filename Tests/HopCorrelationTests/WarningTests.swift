import HopCapture
@testable import HopCorrelation
import HopNetfilter
import XCTest

/// The warnings the analysis gives on the common mistakes, from the saved captures.
final class WarningTests: XCTestCase {
    func config(rules: String? = nil, oracle: (any RuleOracle)? = nil, pod: [String] = []) -> CorrelatorConfiguration {
        var c = CorrelatorConfiguration()
        if let oracle {
            c.rules = .fixed(oracle)
        } else if let rules {
            c.rules = rules == "none" ? .fixed(NoRules()) : .fixed(NetfilterOracle.preset(rules)!)
        } else {
            c.rules = .auto(presets: { NetfilterOracle.preset($0) })
        }
        c.podAddresses = Set(pod.compactMap { IPAddress($0) })
        return c
    }

    func codes(_ run: PipelineRun) -> [AnalysisWarning.Code] { run.warnings.map(\.code) }

    func testFullCapturesOfAPodGiveNoWarnings() throws {
        for name in ["lab-seed.pcap", "lab-outbound.pcap", "seed-doubled-head.pcap", "nat-split.pcap", "lab-load.pcap"] {
            XCTAssertEqual(codes(try pipeline(name, configuration: config())), [], name)
        }
    }

    /// tcpdump's reflex filter keeps the app's replies (from remote:80) and the proxy's own
    /// connection, and drops the app's half to 15001.
    func testAFilterThatKeepsOneHalfOfEachConnectionWarns() throws {
        for rules in [nil, "istio-2018"] {
            let run = try pipeline("lab-outbound.pcap", configuration: config(rules: rules), filter: "tcp port 80")
            XCTAssertEqual(codes(run), [.oneSidedConnections], "rules \(rules ?? "auto")")
            let w = try XCTUnwrap(run.warnings.first)
            XCTAssertEqual(w.counts.first, .init("one-sided-connections", 2))
            XCTAssertTrue(w.counts.contains(.init("responses-without-request", 2)), "\(w.counts)")
            XCTAssertTrue(w.message.contains("the filter 'tcp port 80'") && w.message.contains("15001/15006 and lo"), w.message)
            // Never more logical requests than requests on the wire; no chain without a request.
            let s = run.correlator.summary
            XCTAssertLessThanOrEqual(s.logicalRequests, s.requestsOnWire)
            XCTAssertEqual(s.requestsOnWire, 2)
            XCTAssertEqual(s.orphanResponses, 2)
            XCTAssertTrue(run.chains.allSatisfy { $0.method != nil }, "\(run.chains.map(\.method))")
        }
    }

    func testOneInterfaceWithoutLoopbackWarnsWithoutRules() throws {
        let auto = try pipeline("lab-missing-hop.pcap", configuration: config())
        XCTAssertEqual(auto.correlator.rules.name, "none")
        XCTAssertEqual(codes(auto), [.singleInterface])
        XCTAssertTrue(auto.warnings[0].message.contains("can't be told") && auto.warnings[0].message.contains("-i any"), auto.warnings[0].message)
        let preset = try pipeline("lab-missing-hop.pcap", configuration: config(rules: "istio-2018"))
        XCTAssertEqual(codes(preset), [.singleInterface])
        XCTAssertTrue(preset.warnings[0].message.contains("the copies the rules (istio-2018) imply are missing"), preset.warnings[0].message)
        // `--rules none`: the user says nothing is intercepted.
        XCTAssertEqual(codes(try pipeline("lab-missing-hop.pcap", configuration: config(rules: "none"))), [])
        // `-i any` (SLL) without a sidecar: lo would be there if it carried anything.
        XCTAssertEqual(codes(try pipeline("lab-no-sidecar.pcap", configuration: config())), [])
    }

    func testAPodAddressAbsentFromTheCaptureWarns() throws {
        let run = try pipeline("lab-seed.pcap", configuration: config(pod: ["10.0.0.7"]))
        XCTAssertEqual(codes(run), [.podIPAbsent])
        let w = run.warnings[0]
        XCTAssertTrue(w.message.hasPrefix("--pod-ip 10.0.0.7 appears in no connection"), w.message)
        XCTAssertTrue(w.evidence.contains { $0.hasPrefix("198.18.10.2:") }, "\(w.evidence)")
        XCTAssertEqual(codes(try pipeline("lab-seed.pcap", configuration: config(pod: ["198.18.10.2"]))), [])
    }

    func testEmptyRulesRedirectNothingAndTheRolesContradictThem() throws {
        let empty = NetfilterOracle(ruleSet: try RuleSet.parse(""), name: "empty.rules")
        let run = try pipeline("lab-outbound.pcap", configuration: config(oracle: empty))
        XCTAssertEqual(codes(run), [.rulesRedirectNothing, .roleContradictsRules])
        let contradiction = run.warnings[1]
        XCTAssertEqual(contradiction.counts, [.init("outbound-redirected", 2)])
        XCTAssertTrue(contradiction.evidence.first?.contains("policy ACCEPT") == true, "\(contradiction.evidence)")
        // The hop itself says its rule line is not the rules in force.
        let redirected = run.chains.flatMap(\.hops).filter { $0.role == .outboundRedirected }
        XCTAssertEqual(redirected.count, 2)
        for h in redirected { XCTAssertTrue(h.roleReason.contains("they are not the rules in force"), h.roleReason) }
    }

    func testRulesThatRedirectNoneOfASidecarsConnectionsWarn() throws {
        let text = """
        *nat
        :PREROUTING ACCEPT [0:0]
        -A PREROUTING -p tcp -m tcp --dport 9999 -j REDIRECT --to-ports 15001
        COMMIT
        """
        let other = NetfilterOracle(ruleSet: try RuleSet.parse(text), name: "port-9999.rules")
        let run = try pipeline("lab-seed.pcap", configuration: config(oracle: other))
        XCTAssertEqual(codes(run), [.rulesRedirectNothing])
        XCTAssertTrue(run.warnings[0].message.contains("redirect none of the capture's connections, yet it shows a sidecar"), run.warnings[0].message)
    }
}
