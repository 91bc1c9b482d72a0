import HopCapture
@testable import HopCorrelation
import XCTest

/// The seed's rules written by hand (the HopNetfilter-backed oracle is tested separately).
struct HandWritten2018: RuleOracle {
    var name: String { "hand-written istio-2018" }
    var proxyPorts: Set<UInt16> { [15001] }
    func inbound(client: Endpoint, server: Endpoint) -> RuleVerdict {
        server.port == 80
            ? RuleVerdict(outcome: .redirected(toPort: 15001), sentence: "PREROUTING → ISTIO_INBOUND rule 1 → REDIRECT 15001")
            : RuleVerdict(outcome: .notRedirected, sentence: "PREROUTING policy ACCEPT")
    }
    func outbound(client: Endpoint, server: Endpoint, viaLoopback: Bool, uid: UInt32?, gid: UInt32?) -> RuleVerdict {
        server.address.isLoopback
            ? RuleVerdict(outcome: .notRedirected, sentence: "ISTIO_OUTPUT rule 4: -d 127.0.0.1/32 -j RETURN")
            : RuleVerdict(outcome: .ownerDependent(toPort: 15001, exempt: ["uid 1337", "gid 1337"]), sentence: "ISTIO_OUTPUT rule 5 → REDIRECT 15001 unless uid/gid 1337")
    }
}

final class HandWrittenRulesTests: XCTestCase {
    func testSeedCaptureDoubledHeadIsOneChainPerRequest() throws {
        var cfg = CorrelatorConfiguration()
        cfg.rules = .fixed(HandWritten2018())
        let (chains, corr) = try correlate("seed-doubled-head.pcap", configuration: cfg)
        XCTAssertEqual(corr.podAddresses.map(\.description), ["198.18.1.40"])
        XCTAssertEqual(chains.count, 3, chains.map(\.explanation).joined(separator: "\n"))
        for c in chains {
            XCTAssertEqual(c.hops.map(\.role), [.inboundIntercepted, .inboundForwarded], c.explanation)
            XCTAssertEqual(c.completeness, .complete)
            XCTAssertGreaterThanOrEqual(c.confidence, 0.9)
            XCTAssertEqual(c.hops[0].connection.server.description, "198.18.1.40:80")
            XCTAssertEqual(c.hops[1].connection.server.description, "127.0.0.1:80")
        }
        XCTAssertEqual(corr.summary.requestsOnWire, 6)
        XCTAssertEqual(corr.summary.logicalRequests, 3)
        XCTAssertEqual(corr.summary.multiHopChains, 3)
        XCTAssertEqual(corr.summary.unexplainedDuplicates, 0)
    }

    func testNATSplitOutboundChains() throws {
        var cfg = CorrelatorConfiguration()
        cfg.rules = .fixed(HandWritten2018())
        let (chains, corr) = try correlate("nat-split.pcap", configuration: cfg)
        XCTAssertEqual(chains.count, 4, chains.map(\.explanation).joined(separator: "\n"))
        for c in chains {
            XCTAssertEqual(c.hops.map(\.role), [.outboundRedirected, .outboundForwarded], c.explanation)
            XCTAssertEqual(c.hops[0].connection.originalDestination?.description, "198.18.1.20:80")
            XCTAssertEqual(c.hops[1].connection.server.description, "198.18.1.20:80")
        }
        XCTAssertEqual(corr.summary.multiHopChains, 4)
        print(chains[0].explanation)
    }

    func testWithoutRulesTheCopiesAreUnexplained() throws {
        let (chains, corr) = try correlate("seed-doubled-head.pcap", configuration: CorrelatorConfiguration())
        XCTAssertEqual(chains.count, 6)
        XCTAssertTrue(chains.allSatisfy { $0.hops.map(\.role) == [.direct] })
        XCTAssertEqual(corr.summary.multiHopChains, 0)
    }
}
