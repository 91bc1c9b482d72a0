import Foundation
import HopReport
import XCTest

/// The expectation format's comparison and assertions, on synthetic analysis documents.
final class ExpectationTests: XCTestCase {
    func analysis(directToApp: Bool = false, duplicates: Int = 0, unanswered: Bool = false, proxyMs: [Double] = [1, 2]) -> [String: Any] {
        var chains: [[String: Any]] = proxyMs.enumerated().map { i, ms in
            [
                "id": i + 1, "method": "HEAD", "target": "/", "status": 200, "complete": true, "retries": 0,
                "proxyAddedNs": Int(ms * 1e6),
                "hops": [
                    ["role": "inbound-intercepted", "client": "198.18.10.1:4000\(i)", "server": "198.18.10.2:80", "status": 200,
                     "ruleEvaluation": ["decidingRule": "nat/ISTIO_REDIRECT rule 1"]],
                    ["role": "inbound-forwarded", "client": "127.0.0.1:5000\(i)", "server": "127.0.0.1:80", "status": 200,
                     "ruleEvaluation": ["decidingRule": NSNull()]],
                ],
            ]
        }
        if directToApp {
            chains.append(["id": 9, "method": "GET", "target": "/admin", "status": 200, "complete": true, "retries": 0,
                           "hops": [["role": "direct", "client": "198.18.10.1:41000", "server": "198.18.10.2:80", "status": 200]]])
        }
        if unanswered { chains[0]["status"] = NSNull() }
        return [
            "pod": ["addresses": ["198.18.10.2"]],
            "summary": ["requestsOnWire": 4, "logicalRequests": 2, "unexplainedDuplicates": duplicates,
                        "roles": ["inbound-intercepted": 2, "inbound-forwarded": 2, "direct": 0]],
            "chains": chains,
            "duplicates": duplicates > 0 ? [["method": "HEAD", "target": "/", "client": "198.18.10.1", "copies": 2, "repeatedStream": false]] : [],
        ]
    }

    func testRecordedExpectationMatchesItself() {
        let a = analysis()
        let e = Expectation.make(from: a, capture: "x.pcap", rules: "istio-2018", podIPs: ["198.18.10.2"], filter: nil, assertions: [:])
        XCTAssertEqual(e.differences(a), [])
        let round = try! JSONSerialization.jsonObject(with: Data(e.render().utf8)) as! [String: Any]
        XCTAssertEqual(Expectation(json: round).differences(a), [])
        XCTAssertEqual(Expectation(json: round).rules, "istio-2018")
    }

    func testHopDifferencesAreNamed() {
        let e = Expectation.make(from: analysis(), capture: "x.pcap", rules: nil, podIPs: [], filter: nil, assertions: [:])
        var other = analysis()
        var chains = other["chains"] as! [[String: Any]]
        var hops = chains[1]["hops"] as! [[String: Any]]
        hops[1]["role"] = "direct"
        hops[0]["ruleEvaluation"] = ["decidingRule": "nat/ISTIO_INBOUND rule 2"]
        chains[1]["hops"] = hops
        other["chains"] = chains
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
        a["warnings"] = [["code": "single-interface", "message": "…"]]
        let recorded = Expectation.make(from: a, capture: "x.pcap", rules: nil, podIPs: [], filter: nil, assertions: [:])
        XCTAssertEqual(recorded.json["warnings"] as? [String], ["single-interface"])
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
