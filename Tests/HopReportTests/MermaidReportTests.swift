import HopCapture
import HopCorrelation
import HopReport
import XCTest

final class MermaidReportTests: XCTestCase {
    /// `client1->>pod1: text` and `Note over a,b: text`: the message part of every line that has one.
    func messages(_ m: String) -> [String] {
        m.split(separator: "\n").compactMap { line in
            let t = line.trimmingCharacters(in: .whitespaces)
            guard t.hasPrefix("Note over ") || t.contains(">>") || t.contains("--x") else { return nil }
            guard let r = t.range(of: ": ") else { return nil }
            return String(t[r.upperBound...])
        }
    }

    func assertEscaped(_ m: String, file: StaticString = #filePath, line: UInt = #line) {
        for msg in messages(m) {
            // Every `#` opens an entity code and every `;` closes one.
            let stripped = msg.replacingOccurrences(of: "#[0-9]+;", with: "", options: .regularExpression)
            XCTAssertFalse(stripped.contains("#"), "unescaped # in \(msg)", file: file, line: line)
            XCTAssertFalse(stripped.contains(";"), "unescaped ; in \(msg)", file: file, line: line)
            XCTAssertFalse(stripped.contains(":"), "unescaped : in \(msg)", file: file, line: line)
            XCTAssertFalse(stripped.contains("<") || stripped.contains(">") || stripped.contains("%"), "markup in \(msg)", file: file, line: line)
        }
        for l in m.split(separator: "\n") where l.contains("participant ") {
            let alias = l.components(separatedBy: " as ").dropFirst().joined(separator: " as ")
            let stripped = alias.replacingOccurrences(of: "#[0-9]+;", with: "", options: .regularExpression)
            XCTAssertFalse(stripped.contains("#") || stripped.contains(";") || stripped.contains(":"), "unescaped alias \(l)", file: file, line: line)
        }
    }

    func e(_ s: String) -> String { MermaidReport.escape(s) }

    func testSeedCaptureDrawsOneRectPerChainWithTheRedirectRule() throws {
        let r = try analyze("seed-doubled-head.pcap")
        XCTAssertEqual(r.chains.count, 3)
        let m = MermaidReport.render(r)
        XCTAssertTrue(m.hasPrefix("sequenceDiagram\n"), m)
        XCTAssertEqual(matches(#"^\s*rect rgb\("#, in: m).count, 3)
        XCTAssertEqual(matches(#"^\s*end$"#, in: m).count, 3)
        // Participants: client, the pod as seen on the wire, the proxy, the app.
        XCTAssertTrue(m.contains("participant client1 as client 198.18.1.30\n"), m)
        XCTAssertTrue(m.contains("participant pod1 as pod 198.18.1.40#58;80\n"), m)
        XCTAssertTrue(m.contains("participant proxy as proxy (sidecar #58;15001)\n"), m)
        XCTAssertTrue(m.contains("participant app1 as app 127.0.0.1#58;80\n"), m)
        XCTAssertTrue(m.contains("client1->>pod1: HEAD / (198.18.1.30#58;50932 → 198.18.1.40#58;80 at "), m)
        XCTAssertTrue(m.contains("proxy->>app1: HEAD / (127.0.0.1#58;47378 → 127.0.0.1#58;80 at +1.02 ms)"), m)
        XCTAssertTrue(m.contains("Note over client1,app1: chain 1#58; HEAD / → 200, proxy added 1.06 ms"), m)
        XCTAssertEqual(m.components(separatedBy: "Note over pod1,proxy: REDIRECT 15001 by nat/ISTIO_REDIRECT rule 1\n").count - 1, 3)
        // Every hop's request with its tuple, every response with its status, in chain order.
        for c in r.chains {
            let d = c.hops[0], u = c.hops[1]
            let method = c.method!
            let lines = m.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            let down = lines.firstIndex { $0.hasPrefix("client1->>pod1: \(method) / (\(e("\(d.connection.client) → \(d.connection.server)")) at ") }
            let up = lines.firstIndex { $0.hasPrefix("proxy->>app1: \(method) / (\(e("\(u.connection.client) → \(u.connection.server)")) at ") }
            XCTAssertNotNil(down, "chain \(c.id)")
            XCTAssertNotNil(up, "chain \(c.id)")
            if let down, let up {
                XCTAssertLessThan(down, up)
                XCTAssertTrue(lines[up + 1].hasPrefix("app1-->>proxy: 200 OK"), lines[up + 1])
                XCTAssertTrue(lines[up + 2].hasPrefix("proxy-->>client1: 200 OK (as 198.18.1.40#58;80"), lines[up + 2])
            }
        }
        assertEscaped(m)
    }

    func testNATSplitCaptureDrawsTheOutboundHops() throws {
        let r = try analyze("nat-split.pcap")
        XCTAssertEqual(r.chains.count, 4)
        let m = MermaidReport.render(r)
        XCTAssertTrue(m.hasPrefix("sequenceDiagram\n"))
        XCTAssertEqual(matches(#"^\s*rect rgb\("#, in: m).count, 4)
        XCTAssertTrue(m.contains("participant caller1 as app 198.18.1.10\n"), m)
        XCTAssertTrue(m.contains("participant remote1 as remote 198.18.1.20#58;80\n"), m)
        // The app sits left of the proxy, the remote right of it.
        let order = matches(#"^\s*participant (\w+) as"#, in: m).map { $0[1] }
        XCTAssertEqual(order, ["caller1", "proxy", "remote1"])
        XCTAssertTrue(m.contains("caller1->>proxy: GET / (198.18.1.10#58;56876 → 127.0.0.1#58;15001 for 198.18.1.20#58;80 at "), m)
        XCTAssertTrue(m.contains("proxy->>remote1: GET / (198.18.1.10#58;56878 → 198.18.1.20#58;80 at +802.0 µs)"), m)
        XCTAssertTrue(m.contains("remote1-->>proxy: 200 OK (at +939.0 µs)"), m)
        XCTAssertTrue(m.contains("proxy-->>caller1: 200 OK (from 198.18.1.20#58;80 at +1.05 ms)"), m)
        XCTAssertEqual(m.components(separatedBy: "Note over caller1,proxy: REDIRECT 15001 by nat/ISTIO_REDIRECT rule 1\n").count - 1, 4)
        XCTAssertEqual(m.components(separatedBy: "Note over proxy,remote1: not redirected#58; uid 1337 is exempt (nat/ISTIO_OUTPUT rule 2)\n").count - 1, 4)
        XCTAssertEqual(matches(#"\w->>\w"#, in: m).count, 8)
        XCTAssertEqual(matches(#"-->>"#, in: m).count, 8)
        assertEscaped(m)
    }

    func testTextFromTheCaptureIsEscaped() throws {
        let r = planted(try analyze("seed-doubled-head.pcap"), target: "/a;b#c:d%%{init}<script>alert(1)</script>\nend", method: "GE;T")
        let m = MermaidReport.render(r)
        XCTAssertFalse(m.contains("<"), m)
        XCTAssertTrue(m.contains("GE#59;T /a#59;b#35;c#58;d#37;#37;#123;init#125;#60;script#62;alert(1)#60;/script#62; end"), m)
        XCTAssertTrue(m.contains("200 OK#59;#35;#37;#37; #60;b#62;"), m)
        XCTAssertEqual(matches(#"^\s*end$"#, in: m).count, 3)
        XCTAssertTrue(m.hasPrefix("sequenceDiagram\n    %% hoptrace analyze — capture #60;script#62;.pcap\n"), m)
        assertEscaped(m)
    }

    func testChainsBeyondTheCapAreCounted() throws {
        let r0 = try analyze("seed-doubled-head.pcap")
        var r = r0
        r.chains = (0..<40).map { i in
            var c = r0.chains[i % 3]
            c.id = i + 1
            return c
        }
        let m = MermaidReport.render(r)
        XCTAssertEqual(matches(#"^\s*rect rgb\("#, in: m).count, 30)
        XCTAssertTrue(m.contains("… 10 more chains not drawn (--format json lists them)"), m)
        var o = MermaidReport.Options()
        o.chainLimit = 5
        XCTAssertEqual(matches(#"^\s*rect rgb\("#, in: MermaidReport.render(r, options: o)).count, 5)
        assertEscaped(m)
    }

    func testDirectRequestsAreSummarizedWhenMany() throws {
        let r0 = try analyze("seed-doubled-head.pcap")
        var r = r0
        var direct = r0.chains[0]
        direct.hops = [direct.hops[1]]
        direct.hops[0].role = .direct
        r.chains = [r0.chains[0]] + (0..<7).map { i in
            var c = direct
            c.id = i + 2
            return c
        }
        let m = MermaidReport.render(r)
        XCTAssertEqual(matches(#"^\s*rect rgb\("#, in: m).count, 1)
        XCTAssertTrue(m.contains("direct (not intercepted)#58; 7 requests — HEAD / ×7"), m)
        // A few direct requests are drawn.
        r.chains = Array(r.chains.prefix(3))
        let few = MermaidReport.render(r)
        XCTAssertEqual(matches(#"^\s*rect rgb\("#, in: few).count, 3)
        XCTAssertTrue(few.contains("participant server1 as server 127.0.0.1#58;80"), few)
        assertEscaped(few)
    }

    func testEmptyReportIsStillADiagram() throws {
        var r = try analyze("seed-doubled-head.pcap")
        r.chains = []
        r.summary = AnalysisSummary()
        let m = MermaidReport.render(r)
        XCTAssertTrue(m.hasPrefix("sequenceDiagram\n"))
        XCTAssertTrue(m.contains("Note over H: No HTTP requests were found in this capture."), m)
    }

    func testOutputIsDeterministic() throws {
        let a = MermaidReport.render(try analyze("nat-split.pcap"))
        let b = MermaidReport.render(try analyze("nat-split.pcap"))
        XCTAssertEqual(a, b)
        let r = try analyze("seed-doubled-head.pcap")
        XCTAssertEqual(MermaidReport.render(r), MermaidReport.render(r))
    }
}
