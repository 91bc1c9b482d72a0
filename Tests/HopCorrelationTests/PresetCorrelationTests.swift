import HopCapture
@testable import HopCorrelation
import HopNetfilter
import XCTest

/// The captures in Captures/ through the real rule model.
final class PresetCorrelationTests: XCTestCase {
    func config(_ preset: String?) -> CorrelatorConfiguration {
        var c = CorrelatorConfiguration()
        if let preset { c.rules = .fixed(NetfilterOracle.preset(preset)!) }
        else { c.rules = .auto(presets: { NetfilterOracle.preset($0) }) }
        return c
    }

    func testSeedDoubledHeadWithTheSeedRules() throws {
        let (chains, corr) = try correlate("seed-doubled-head.pcap", configuration: config("istio-2018"))
        XCTAssertEqual(chains.count, 3)
        for c in chains {
            XCTAssertEqual(c.hops.map(\.role), [.inboundIntercepted, .inboundForwarded])
            XCTAssertEqual(c.hops[0].rule.outcome, .redirected(toPort: 15001))
            XCTAssertEqual(c.hops[0].rule.decidingRule, "nat/ISTIO_REDIRECT rule 1")
            XCTAssertEqual(c.hops[0].rule.sentence, "nat/PREROUTING rule 1 → ISTIO_INBOUND rule 1 (-p tcp --dport 80) → ISTIO_REDIRECT rule 1: REDIRECT --to-ports 15001")
            // proxy → 127.0.0.1:80 over lo, as the proxy's uid 1337: RETURN by rule 2 (the kernel's choice).
            XCTAssertEqual(c.hops[1].rule.outcome, .notRedirected, c.hops[1].rule.sentence)
            XCTAssertEqual(c.hops[1].rule.decidingRule, "nat/ISTIO_OUTPUT rule 2")
            XCTAssertTrue(c.explanation.contains("REDIRECT"), c.explanation)
        }
        XCTAssertEqual(corr.summary.unexplainedDuplicates, 0)
    }

    func testNATSplitWithTheSeedRules() throws {
        let (chains, _) = try correlate("nat-split.pcap", configuration: config("istio-2018"))
        XCTAssertEqual(chains.count, 4)
        for c in chains {
            XCTAssertEqual(c.hops.map(\.role), [.outboundRedirected, .outboundForwarded])
            // The app's connection was seen redirected: the redirecting way through the rules.
            XCTAssertEqual(c.hops[0].rule.outcome, .redirected(toPort: 15001))
            XCTAssertEqual(c.hops[0].rule.decidingRule, "nat/ISTIO_REDIRECT rule 1")
            // The proxy's own connection, evaluated as uid/gid 1337: RETURN by rule 2.
            XCTAssertEqual(c.hops[1].rule.outcome, .notRedirected)
            XCTAssertEqual(c.hops[1].rule.decidingRule, "nat/ISTIO_OUTPUT rule 2")
            XCTAssertTrue(c.hops[1].roleReason.contains("1337"), c.hops[1].roleReason)
        }
    }

    func testAutoDetectionPicksTheSeedRulesAndNoRulesWithoutTraces() throws {
        let (_, seed) = try correlate("seed-doubled-head.pcap", configuration: config(nil))
        XCTAssertEqual(seed.rules.name, "istio-2018")
        XCTAssertEqual(seed.evidence.loopbackCopies, 3)
        let (_, nat) = try correlate("nat-split.pcap", configuration: config(nil))
        XCTAssertEqual(nat.rules.name, "istio-2018")
        XCTAssertEqual(nat.evidence.natJoinedConnections, 4)
        let (chains, plain) = try correlate("ethernet.pcap", configuration: config(nil))
        XCTAssertEqual(plain.rules.name, "none")
        XCTAssertTrue(chains.allSatisfy { $0.hops.map(\.role) == [.direct] })
    }
}
