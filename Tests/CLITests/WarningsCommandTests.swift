import Foundation
import XCTest

/// The common mistakes get a warning on standard error and in the text report (exit 0 stays),
/// and `warnings[]` in every JSON output.
final class WarningsCommandTests: XCTestCase {
    func capture(_ name: String) -> String { TestEnv.captures.appendingPathComponent(name).path }

    /// `analyze … --format json`: the warnings' codes, and the document.
    func jsonWarnings(_ args: [String]) throws -> ([String], [[String: Any]], [String: Any]) {
        let r = try TestEnv.run(TestEnv.hoptrace, ["analyze"] + args + ["--format", "json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertFalse(r.stderr.contains("warning: ["), "JSON carries the warnings, not standard error: \(r.stderr)")
        let d = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
        let w = try XCTUnwrap(d["warnings"] as? [[String: Any]], "warnings[] in \(d.keys)")
        return (w.compactMap { $0["code"] as? String }, w, d)
    }

    /// `analyze …` as text: the warning lines on standard error, and the report.
    func text(_ args: [String]) throws -> (stderr: [String], stdout: String) {
        let r = try TestEnv.run(TestEnv.hoptrace, ["analyze"] + args)
        XCTAssertEqual(r.status, 0, r.stderr)
        return (r.stderr.split(separator: "\n").map(String.init).filter { $0.hasPrefix("hoptrace: warning: [") }, r.stdout)
    }

    func testNoWarningsOnAFullCapture() throws {
        let (codes, _, _) = try jsonWarnings([capture("lab-outbound.pcap")])
        XCTAssertEqual(codes, [])
        let t = try text([capture("lab-outbound.pcap")])
        XCTAssertEqual(t.stderr, [])
        XCTAssertFalse(t.stdout.contains("\nwarnings\n"), t.stdout)
    }

    func testTheReflexFilterWarnsAndNoCounterRepeats() throws {
        let t = try text([capture("lab-outbound.pcap"), "tcp", "port", "80"])
        XCTAssertEqual(t.stderr.count, 1, "\(t.stderr)")
        XCTAssertTrue(t.stderr[0].hasPrefix("hoptrace: warning: [one-sided-connections] the filter 'tcp port 80' left 2 connections one-sided"), t.stderr[0])
        XCTAssertTrue(t.stderr[0].contains("include 15001/15006 and lo"), t.stderr[0])
        XCTAssertTrue(t.stdout.contains("\nwarnings\n  [one-sided-connections] the filter 'tcp port 80'"), t.stdout)
        // Wrapped text: compared with its words one space apart.
        let flat = t.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        XCTAssertTrue(flat.contains("The capture holds 2 requests on the wire"), t.stdout)
        XCTAssertTrue(t.stdout.contains("capture notes: 4 gaps, 146 gap-bytes, 4 gaps-acked-unseen\n"), t.stdout)
        XCTAssertTrue(flat.contains("can't tell whether the client sent the same request again, because the filter 'tcp port 80' left 2 connections one-sided"), t.stdout)
        XCTAssertFalse(t.stdout.contains(": the client sent the same request again."), t.stdout)

        let (codes, w, d) = try jsonWarnings([capture("lab-outbound.pcap"), "tcp", "port", "80"])
        XCTAssertEqual(codes, ["one-sided-connections"])
        XCTAssertEqual((w[0]["counts"] as? [String: Int])?["one-sided-connections"], 2)
        let s = try XCTUnwrap(d["summary"] as? [String: Any])
        XCTAssertLessThanOrEqual(try XCTUnwrap(s["logicalRequests"] as? Int), try XCTUnwrap(s["requestsOnWire"] as? Int))
    }

    /// jsonl ends with the summary object; `http` and `flows` carry the warning too.
    func testJSONLSummariesCarryTheWarnings() throws {
        for command in [["analyze", capture("lab-outbound.pcap")], ["http", "-r", capture("lab-outbound.pcap")], ["flows", "-r", capture("lab-outbound.pcap")]] {
            let r = try TestEnv.run(TestEnv.hoptrace, command + ["--format", "jsonl", "tcp port 80"])
            XCTAssertEqual(r.status, 0, r.stderr)
            let last = try XCTUnwrap(r.stdout.split(separator: "\n").last)
            let o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
            let summary = try XCTUnwrap(o["summary"] as? [String: Any], "\(command[0]): \(last)")
            let codes = (summary["warnings"] as? [[String: Any]])?.compactMap { $0["code"] as? String }
            XCTAssertEqual(codes, ["one-sided-connections"], "\(command[0]): \(last)")
        }
        let flows = try TestEnv.run(TestEnv.hoptrace, ["flows", "-r", capture("lab-outbound.pcap"), "tcp port 80"])
        XCTAssertTrue(flows.stderr.contains("hoptrace: warning: [one-sided-connections]"), flows.stderr)
        let http = try TestEnv.run(TestEnv.hoptrace, ["http", "-r", capture("lab-outbound.pcap")])
        XCTAssertFalse(http.stderr.contains("warning"), http.stderr)
    }

    func testOneInterfaceWarnsWithoutRules() throws {
        let t = try text([capture("lab-missing-hop.pcap")])
        XCTAssertEqual(t.stderr.count, 1, "\(t.stderr)")
        XCTAssertTrue(t.stderr[0].contains("[single-interface] the capture holds one interface (EN10MB) and no loopback traffic"), t.stderr[0])
        XCTAssertTrue(t.stderr[0].contains("capture with -i any inside the pod"), t.stderr[0])
        XCTAssertFalse(t.stdout.contains("No copy is left unexplained"), t.stdout)
        let flat = t.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        XCTAssertTrue(flat.contains("Can't tell whether that is all, because the capture holds one interface"), t.stdout)
        XCTAssertEqual(try jsonWarnings([capture("lab-missing-hop.pcap")]).0, ["single-interface"])
    }

    func testAPodAddressNotInTheCaptureWarns() throws {
        let t = try text([capture("lab-seed.pcap"), "--pod-ip", "10.0.0.7"])
        XCTAssertEqual(t.stderr.count, 1, "\(t.stderr)")
        XCTAssertTrue(t.stderr[0].contains("[pod-ip-absent] --pod-ip 10.0.0.7 appears in no connection of the capture"), t.stderr[0])
        XCTAssertTrue(t.stderr[0].contains("198.18.10.2"), "names the busiest addresses: \(t.stderr[0])")
        let (codes, w, _) = try jsonWarnings([capture("lab-seed.pcap"), "--pod-ip", "10.0.0.7"])
        XCTAssertEqual(codes, ["pod-ip-absent"])
        XCTAssertEqual((w[0]["counts"] as? [String: Int])?["absent-addresses"], 1)
        XCTAssertEqual(try jsonWarnings([capture("lab-seed.pcap"), "--pod-ip", "198.18.10.2"]).0, [])
    }

    func testEmptyRulesWarnAndTheRoleContradictionIsSaid() throws {
        let f = TestEnv.temporaryFile("empty.rules")
        try Data().write(to: f)
        defer { try? FileManager.default.removeItem(at: f) }
        let t = try text([capture("lab-outbound.pcap"), "--rules", f.path])
        XCTAssertEqual(t.stderr.count, 2, "\(t.stderr)")
        XCTAssertTrue(t.stderr[0].contains("[rules-redirect-nothing] the rules hoptrace-test-"), t.stderr[0])
        XCTAssertTrue(t.stderr[1].contains("[role-contradicts-rules] 2 connections contradict the rules"), t.stderr[1])
        let (codes, w, d) = try jsonWarnings([capture("lab-outbound.pcap"), "--rules", f.path])
        XCTAssertEqual(codes, ["rules-redirect-nothing", "role-contradicts-rules"])
        XCTAssertEqual(w[1]["counts"] as? [String: Int], ["outbound-redirected": 2])
        let hops = (d["chains"] as? [[String: Any]] ?? []).flatMap { $0["hops"] as? [[String: Any]] ?? [] }
        let redirected = hops.filter { $0["role"] as? String == "outbound-redirected" }
        XCTAssertEqual(redirected.count, 2)
        // The reason is the connection's, in its record.
        let connections = Dictionary(uniqueKeysWithValues: (d["connections"] as? [[String: Any]] ?? []).map { ($0["id"] as? Int ?? -1, $0) })
        for h in redirected {
            let c = connections[h["connection"] as? Int ?? -2]
            XCTAssertTrue((c?["roleReason"] as? String)?.contains("not the rules in force") == true, "\(h) \(String(describing: c))")
        }
    }
}
