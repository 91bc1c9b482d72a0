import Foundation
import HopReport
import XCTest

/// The expectation format's comparison and assertions, on synthetic analysis documents.
final class ExpectationTests: XCTestCase {
    /// A hop on a connection of its own, whose record (`connections`) has the deciding rule.
    func hop(_ role: String, _ client: String, _ server: String, rule: String?) -> ReportHop {
        var h = ReportHop(role: role, client: client, server: server, method: "HEAD", target: "/", requestStartNs: nil, responseEndNs: nil)
        h.connection = pendingConnections.count + 1
        h.rule = rule ?? ""
        pendingConnections.append(ReportConnection(id: h.connection, client: client, server: server, rule: h.rule,
                                                   ruleEvaluation: ReportRuleEvaluation(outcome: rule == nil ? "not-redirected" : "redirected",
                                                                                        decidingRule: rule, sentence: "", traversal: [])))
        return h
    }
    private var pendingConnections: [ReportConnection] = []

    func analysis(directToApp: Bool = false, duplicates: Int = 0, unanswered: Bool = false, proxyMs: [Double] = [1, 2]) -> ReportDocument {
        pendingConnections = []
        var chains: [ReportChain] = proxyMs.enumerated().map { i, ms in
            var c = ReportChain(id: i + 1, confidence: 1, hops: [
                hop("inbound-intercepted", "198.18.10.1:4000\(i)", "198.18.10.2:80", rule: "nat/ISTIO_REDIRECT rule 1"),
                hop("inbound-forwarded", "127.0.0.1:5000\(i)", "127.0.0.1:80", rule: nil),
            ])
            c.proxyAddedNs = Int64(ms * 1e6)
            return c
        }
        if directToApp {
            var h = hop("direct", "198.18.10.1:41000", "198.18.10.2:80", rule: nil)
            h.method = "GET"
            h.target = "/admin"
            chains.append(ReportChain(id: 9, confidence: 1, hops: [h]))
        }
        if unanswered { chains[0].status = nil }
        var summary = ReportSummary(logicalRequests: 2, unexplainedDuplicates: duplicates)
        summary.requestsOnWire = 4
        summary.roles = ["inbound-intercepted": 2, "inbound-forwarded": 2, "direct": 0]
        var d = ReportDocument(summary: summary, chains: chains)
        d.connections = pendingConnections
        d.ending.pod = ReportPod(addresses: ["198.18.10.2"], inferred: false)
        if duplicates > 0 {
            d.ending.duplicates = [ReportDuplicate(method: "HEAD", target: "/", client: "198.18.10.1", server: "198.18.10.2:80", copies: 2, repeatedStream: false)]
        }
        return d
    }

    func testRecordedExpectationMatchesItself() throws {
        let a = analysis()
        let e = Expectation.make(from: a, capture: "x.pcap", rules: "istio-2018", podIPs: ["198.18.10.2"], filter: nil, assertions: [:])
        XCTAssertEqual(e.differences(a), [])
        let round = try ReportCoding.decode(JSONValue.self, from: Data(e.render().utf8)).object ?? [:]
        XCTAssertEqual(Expectation(json: round).differences(a), [])
        XCTAssertEqual(Expectation(json: round).rules, "istio-2018")
        XCTAssertEqual(Expectation(json: round).render(), e.render())
    }

    func testHopDifferencesAreNamed() {
        let e = Expectation.make(from: analysis(), capture: "x.pcap", rules: nil, podIPs: [], filter: nil, assertions: [:])
        var other = analysis()
        other.chains[1].hops[1].role = "direct"
        let id = other.chains[1].hops[0].connection
        other.connections[other.connections.firstIndex { $0.id == id }!].ruleEvaluation.decidingRule = "nat/ISTIO_INBOUND rule 2"
        XCTAssertEqual(e.differences(other), [
            "chain 2 hop 1: decidingRule expected nat/ISTIO_REDIRECT rule 1, got nat/ISTIO_INBOUND rule 2",
            "chain 2 hop 2: role expected inbound-forwarded, got direct",
        ])
    }

    func testPartialExpectationsCheckOnlyWhatTheySay() {
        let e = Expectation(json: ["summary": ["logicalRequests": 2], "chains": [["method": "HEAD"], ["status": 200]]])
        XCTAssertEqual(e.differences(analysis()), [])
        XCTAssertEqual(e.differences(analysis(directToApp: true)), ["chains: expected 2, got 3", "chain 3: unexpected GET /admin → 200 [direct 198.18.10.1:41000 → 198.18.10.2:80]"])
    }

    func testAssertions() {
        let e = Expectation(json: ["assertions": ["noUnexplainedDuplicates": true, "everyRequestAnswered": true,
                                                  "noRequestBypassedSidecar": true, "maxProxyAddedMsP99": 5]])
        XCTAssertEqual(e.differences(analysis()), [])
        XCTAssertEqual(e.differences(analysis(duplicates: 1)), ["assertion noUnexplainedDuplicates: 1 unexplained duplicate (HEAD / ×2 from 198.18.10.1)"])
        XCTAssertEqual(e.differences(analysis(unanswered: true)), ["assertion everyRequestAnswered: chain 1 HEAD / has no response"])
        XCTAssertEqual(e.differences(analysis(directToApp: true)), ["assertion noRequestBypassedSidecar: chain 3 GET /admin went from 198.18.10.1:41000 to 198.18.10.2:80 directly, around the sidecar"])
        XCTAssertEqual(e.differences(analysis(proxyMs: [1, 2, 30])), ["assertion maxProxyAddedMsP99: p99 of the proxy's added time is 30.000 ms, more than 5.000 ms (3 chains)"])
        XCTAssertEqual(Expectation(json: ["assertions": ["noSuchThing": true]]).differences(analysis()).count, 1)
    }

    func testWarningsAreComparedWhenTheExpectationListsThem() {
        var a = analysis()
        a.ending.warnings = [ReportWarning(code: "single-interface", message: "…")]
        let recorded = Expectation.make(from: a, capture: "x.pcap", rules: nil, podIPs: [], filter: nil, assertions: [:])
        XCTAssertEqual(recorded.json["warnings"], ["single-interface"])
        XCTAssertEqual(recorded.differences(a), [])
        XCTAssertEqual(recorded.differences(analysis()), ["warnings: expected [single-interface], got []"])
        // An expectation without the key does not check them.
        XCTAssertEqual(Expectation(json: ["summary": ["logicalRequests": 2]]).differences(a), [])
    }

    func testTimingsOnlyWhereAsked() {
        let e = Expectation(json: ["chains": [["proxyAddedMsMax": 1.5], ["proxyAddedMsMax": 1.5]]])
        XCTAssertEqual(e.differences(analysis()), ["chain 2: proxy added 2.000 ms, more than the expected maximum 1.500 ms"])
    }
}
