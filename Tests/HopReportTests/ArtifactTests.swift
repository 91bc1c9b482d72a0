import Foundation
import HopCapture
@testable import HopCorrelation
import HopReport
import XCTest

/// Writes the reports to `$HOPREPORT_ARTIFACTS/` (when set) for looking at them in a browser or a
/// Mermaid renderer; does nothing otherwise.
final class ArtifactTests: XCTestCase {
    /// Inbound and outbound chains, an incomplete one, a retry, direct requests and a duplicate.
    static func mixed() throws -> AnalysisReport {
        let seed = try analyze("seed-doubled-head.pcap")
        let nat = try analyze("nat-split.pcap")
        var r = seed
        var chains = seed.chains + nat.chains
        var incomplete = seed.chains[0]
        incomplete.hops = [incomplete.hops[0]]
        incomplete.hops[0].exchange.response = nil
        incomplete.completeness = .incomplete(missing: .inboundForwarded, advice: "the proxy → app copy is not in the capture: capture with -i any inside the pod")
        incomplete.explanation = "HEAD / was captured only as the client → pod copy; the proxy → app copy is missing."
        chains.append(incomplete)
        var retried = seed.chains[1]
        var first = retried.hops[1]
        first.exchange.response?.status = 503
        first.exchange.response?.reason = "Service Unavailable"
        retried.hops = [retried.hops[0], first, retried.hops[1]]
        retried.hops[1].attempt = 1
        retried.hops[2].attempt = 2
        chains.append(retried)
        var direct = seed.chains[2]
        direct.hops = [direct.hops[1]]
        direct.hops[0].role = .direct
        direct.hops[0].exchange.request?.target = "/healthz?probe=<script>&x=1;#frag"
        chains.append(direct)
        chains.append(direct)
        for i in chains.indices { chains[i].id = i + 1 }
        r.chains = chains
        r.summary.requestsOnWire = chains.reduce(0) { $0 + $1.hops.count }
        r.summary.logicalRequests = chains.count
        r.summary.multiHopChains = chains.filter(\.isMultiHop).count
        r.summary.incompleteChains = 1
        r.summary.retries = 1
        r.summary.unexplainedDuplicates = 1
        r.summary.duplicateGroups = 1
        r.summary.roles = [.inboundIntercepted: 5, .inboundForwarded: 5, .outboundRedirected: 4, .outboundForwarded: 4, .direct: 2]
        let d = chains[chains.count - 1].hops[0].connection
        r.duplicates = [DuplicateGroup(method: "HEAD", target: "/healthz?probe=<script>&x=1;#frag", host: nil, client: d.client.address,
                                       server: d.server, chainIDs: [chains.count - 1, chains.count],
                                       starts: [0, 1], copies: 2, explanation: "the client sent the same request twice within 1 ms; no proxy hop explains it", isRepeatedStream: false)]
        r.podAddresses = ["198.18.1.10", "198.18.1.40"]
        r.source = "mixed <synthetic> capture"
        return r
    }

    func testWriteArtifacts() throws {
        guard let dir = ProcessInfo.processInfo.environment["HOPREPORT_ARTIFACTS"] else { return }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let reports = [("seed", try analyze("seed-doubled-head.pcap")), ("nat", try analyze("nat-split.pcap")), ("mixed", try Self.mixed())]
        for (name, r) in reports {
            try HTMLReport.render(r).write(toFile: "\(dir)/\(name).html", atomically: true, encoding: .utf8)
            try MermaidReport.render(r).write(toFile: "\(dir)/\(name).mmd", atomically: true, encoding: .utf8)
        }
    }

    func testMixedReportIsWellFormed() throws {
        let r = counted(try Self.mixed())
        let html = HTMLReport.render(r)
        let c = HTMLChecker(html)
        XCTAssertEqual(c.problems, [])
        // Direct requests are in the table, not in the diagrams (there may be thousands of probes).
        let drawnHops = r.chains.filter { $0.hops.first?.role != .direct }.reduce(0) { $0 + $1.hops.count }
        XCTAssertEqual(c.elements.filter { $0.name == "rect" && $0.classes.contains("bar") }.count, drawnHops)
        XCTAssertEqual((try chainData(html)["id"] as? [Int])?.count, r.chains.count)
        XCTAssertTrue(c.text.contains("the client sent the same request twice within 1 ms; no proxy hop explains it"))
        let m = MermaidReport.render(r)
        XCTAssertEqual(m.components(separatedBy: "\n    rect rgb(").count - 1, r.chains.count)
        // Inbound and outbound share the diagram: clients, pod, calling app, proxy, app, remote, server.
        let order = matches(#"^\s*participant (\w+) as"#, in: m).map { $0[1] }
        XCTAssertEqual(order, ["client1", "client2", "pod1", "caller1", "proxy", "app1", "remote1", "server1"])
    }
}
