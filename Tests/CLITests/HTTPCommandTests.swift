import Foundation
import XCTest

/// `hoptrace http` and `hoptrace flows` on the bundled captures, against tshark's counts
/// (written to Captures/reference/*.http.txt by Captures/make-captures.sh).
final class HTTPCommandTests: XCTestCase {
    struct Counts: Equatable, CustomStringConvertible {
        var requests = 0
        var responses = 0
        var interim = 0
        var description: String { "\(requests) requests / \(responses) responses (+\(interim) interim)" }
    }

    /// Runs `hoptrace http --format jsonl` and counts requests, final responses and interim ones.
    func hoptraceCounts(_ path: String) throws -> (Counts, [[String: Any]], [String: Any]) {
        let r = try TestEnv.hoptrace("http", "-r", path, "--format", "jsonl")
        XCTAssertEqual(r.status, 0, "\(path): \(r.stderr)")
        var c = Counts()
        var objects: [[String: Any]] = []
        var summary: [String: Any] = [:]
        for line in r.stdout.split(separator: "\n") {
            let o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], String(line))
            if let s = o["summary"] as? [String: Any] { summary = s; continue }
            objects.append(o)
            if o["method"] is String { c.requests += 1 }
            if o["status"] is Int { c.responses += 1 }
            c.interim += (o["interim"] as? [Any])?.count ?? 0
        }
        return (c, objects, summary)
    }

    func tsharkCounts(_ reference: URL) throws -> Counts {
        let text = try String(contentsOf: reference, encoding: .utf8)
        var c = Counts()
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count == 2, let n = Int(f[1]) else { continue }
            if f[0] == "requests" { c.requests = n }
            if f[0] == "responses" { c.responses = n }
        }
        return c
    }

    func testCountsMatchTsharkOnEveryBundledCaptureExceptWhereTsharkLosesResponses() throws {
        let refs = TestEnv.captures.appendingPathComponent("reference")
        let fm = FileManager.default
        var checked = 0
        let walker = try XCTUnwrap(fm.enumerator(atPath: refs.path))
        for case let rel as String in walker where rel.hasSuffix(".http.txt") {
            let capture = TestEnv.captures.appendingPathComponent(String(rel.dropLast(".http.txt".count)))
            guard fm.fileExists(atPath: capture.path) else { continue }
            let name = capture.lastPathComponent
            let tshark = try tsharkCounts(refs.appendingPathComponent(rel))
            let (ours, _, _) = try hoptraceCounts(capture.path)
            checked += 1
            switch name {
            case "nat-split.pcap":
                // tshark sees the REDIRECTed connections as unrelated halves and loses the
                // responses on them; hoptrace joins the halves and finds all of them.
                print("nat-split.pcap: tshark \(tshark), hoptrace \(ours)")
                XCTAssertEqual(tshark, Counts(requests: 8, responses: 6))
                XCTAssertEqual(ours, Counts(requests: 8, responses: 8))
            case "100-continue.pcap":
                // tshark counts the interim 100 Continue as a response; hoptrace records it on the exchange.
                XCTAssertEqual(ours.requests, tshark.requests, name)
                XCTAssertEqual(ours.responses + ours.interim, tshark.responses, name)
                XCTAssertEqual(ours.interim, 1, name)
            default:
                XCTAssertEqual(ours.requests, tshark.requests, "\(name): hoptrace \(ours), tshark \(tshark)")
                XCTAssertEqual(ours.responses, tshark.responses, "\(name): hoptrace \(ours), tshark \(tshark)")
            }
        }
        XCTAssertGreaterThanOrEqual(checked, 20)
    }

    /// The larger third-party captures stay in the shared folder (too big to bundle).
    func testSharedThirdPartyCaptures() throws {
        let shared = TestEnv.repoRoot.deletingLastPathComponent().appendingPathComponent("shared/captures/third-party")
        guard FileManager.default.fileExists(atPath: shared.path) else {
            throw XCTSkip("../shared/captures/third-party is not beside the checkout")
        }
        let expected: [(String, Counts)] = [
            // one response lost in a gap: pairing must resync
            ("zeek/1000-requests-one-dropped-response.pcap", Counts(requests: 1000, responses: 999)),
            // tshark says 4 / 6: it counts retransmitted responses twice
            ("arkime/wireshark-retrans.pcap", Counts(requests: 4, responses: 4)),
            // picked up mid-stream, gaps, 105 chunked responses
            ("pcapplusplus/http-packets.pcap", Counts(requests: 112, responses: 106)),
            ("pcapplusplus/sll.pcap", Counts(requests: 2, responses: 2)),
        ]
        for (rel, want) in expected {
            let path = shared.appendingPathComponent(rel).path
            guard FileManager.default.fileExists(atPath: path) else { XCTFail("\(rel) missing"); continue }
            let (ours, objects, summary) = try hoptraceCounts(path)
            XCTAssertEqual(ours, want, rel)
            if rel.hasPrefix("zeek/1000") {
                let http = try XCTUnwrap(summary["http"] as? [String: Any])
                XCTAssertEqual(http["lost-in-gap"] as? Int, 1)
                // Every answered exchange carries a response to its own request (the server echoes nothing,
                // but the sequence of targets and the pairing order must stay monotonic).
                let lost = objects.filter { ($0["flags"] as? [String])?.contains("lost-in-gap") == true }
                XCTAssertEqual(lost.count, 1)
            }
        }
    }

    func testJSONLFieldsOfARedirectedExchange() throws {
        let (_, objects, summary) = try hoptraceCounts(TestEnv.captures.appendingPathComponent("nat-split.pcap").path)
        let redirected = objects.filter { ($0["server"] as? String) == "127.0.0.1:15001" }
        XCTAssertEqual(redirected.count, 4)
        for o in redirected {
            XCTAssertEqual(o["originalDestination"] as? String, "198.18.1.20:80")
            XCTAssertEqual(o["replySource"] as? String, "198.18.1.20:80")
            XCTAssertEqual(o["host"] as? String, "198.18.1.20")
            XCTAssertEqual(o["status"] as? Int, 200)
            XCTAssertTrue((o["client"] as? String)?.hasPrefix("198.18.1.10:") == true)
            for key in ["requestStart", "responseEnd"] {
                let t = try XCTUnwrap(o[key] as? String)
                XCTAssertNotNil(t.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$"#, options: .regularExpression), t)
            }
        }
        XCTAssertEqual(Set(redirected.compactMap { $0["method"] as? String }), ["GET", "HEAD"])
        let direct = objects.filter { ($0["server"] as? String) == "198.18.1.20:80" }
        XCTAssertEqual(direct.count, 4)
        XCTAssertTrue(direct.allSatisfy { $0["originalDestination"] is NSNull })
        XCTAssertEqual(summary["packets"] as? Int, 82)
    }

    func testFlowsShowsBothTuplesOfJoinedHalves() throws {
        let r = try TestEnv.hoptrace("flows", "-r", TestEnv.captures.appendingPathComponent("nat-split.pcap").path)
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 8)
        let joined = lines.filter { $0.contains("> 127.0.0.1:15001 [replies from 198.18.1.20:80, original destination 198.18.1.20:80]") }
        XCTAssertEqual(joined.count, 4, r.stdout)
        XCTAssertTrue(lines.allSatisfy { $0.contains(" fin") }, r.stdout)
        XCTAssertTrue(r.stderr.contains("4 nat-joined-handshake"), r.stderr)
        let j = try TestEnv.hoptrace("flows", "-r", TestEnv.captures.appendingPathComponent("nat-split.pcap").path, "--format", "jsonl")
        let objs = try j.stdout.split(separator: "\n").map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        XCTAssertEqual(objs.filter { $0["natJoined"] as? Bool == true }.count, 4)
        XCTAssertNotNil(objs.last?["summary"])
    }

    func testHTTPTextLineAndUnansweredRequest() throws {
        let r = try TestEnv.hoptrace("http", "-r", TestEnv.captures.appendingPathComponent("third-party/pcapplusplus/frag_http_req.pcap").path)
        XCTAssertEqual(r.status, 0, r.stderr)
        // The GET is split into 11 IP fragments: reassembled, it is whole (as tshark shows it),
        // and unanswered (the capture has no response).
        XCTAssertTrue(r.stdout.contains(" GET /convert_data.js?partner_id=29 ") && r.stdout.contains("→ -"), r.stdout)
        XCTAssertFalse(r.stdout.contains("request-incomplete"), r.stdout)
        XCTAssertTrue(r.stderr.contains("10 ip-fragments-held") && r.stderr.contains("1 ip-reassembled (first: packet 11)"), r.stderr)
    }
}
