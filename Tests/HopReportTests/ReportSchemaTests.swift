import Foundation
import HopCapture
import HopCorrelation
import HopFlows
import HopHTTP
import HopReport
import XCTest

/// The typed schema (`ReportDocument` and its parts) against the streaming writer, on every
/// bundled capture: what `JSONReport` writes decodes, re-encodes to the same values, and says
/// what the in-memory report says.
final class ReportSchemaTests: XCTestCase {
    /// Every .pcap / .pcapng under Captures/, relative to it (reference/ holds tshark's outputs).
    static func captures() -> [String] {
        guard let e = FileManager.default.enumerator(at: capturesDir, includingPropertiesForKeys: nil) else { return [] }
        var out: [String] = []
        for case let url as URL in e where url.pathExtension == "pcap" || url.pathExtension == "pcapng" {
            let rel = String(url.path.dropFirst(capturesDir.path.count + 1))
            if !rel.hasPrefix("reference/") { out.append(rel) }
        }
        return out.sorted()
    }

    /// Decodes `bytes` as `T`, encodes the value again and decodes that: the same value.
    func roundTrip<T: Codable & Equatable>(_ type: T.Type, _ bytes: [UInt8], _ what: String) throws -> T {
        let value = try ReportCoding.decode(type, from: bytes)
        let again = try ReportCoding.decode(type, from: Array(try JSONEncoder().encode(value)))
        XCTAssertEqual(value, again, "\(what): re-encoding changed the value")
        return value
    }

    func testEveryCaptureDecodesRoundTripsAndAgreesWithTheReport() throws {
        let names = Self.captures()
        XCTAssertGreaterThan(names.count, 10, "the bundled captures are missing")
        var chainsSeen = 0, hopsSeen = 0
        for name in names {
            let report: AnalysisReport
            do { report = try analyze(name) } catch { continue }  // unreadable on purpose (EveryCaptureTests covers them)
            let w = JSONWriter(capacity: 1 << 16)
            let d = JSONReport.DocumentWriter(w)
            for c in report.chains { d.chain(c, report: report) }
            d.finish(report)
            let doc = try roundTrip(ReportDocument.self, w.bytes, "\(name) json")

            // The typed values say what the report says.
            XCTAssertEqual(doc.chains.count, report.chains.count, name)
            XCTAssertEqual(doc.capture.source, report.source, name)
            XCTAssertEqual(doc.capture.packets, report.packets, name)
            XCTAssertEqual(doc.pod.addresses, report.podAddresses, name)
            XCTAssertEqual(doc.ending.answer, report.answer, name)
            XCTAssertEqual(doc.summary.connections, report.connections, name)
            XCTAssertEqual(doc.summary.requestsOnWire, report.summary.requestsOnWire, name)
            XCTAssertEqual(doc.summary.logicalRequests, report.summary.logicalRequests, name)
            XCTAssertEqual(doc.summary.unexplainedDuplicates, report.summary.unexplainedDuplicates, name)
            XCTAssertEqual(doc.summary.medianProxyAddedNs, report.medianProxyAdded, name)
            for role in HopRole.allCases { XCTAssertEqual(doc.summary.roles[role.rawValue], report.summary.roles[role] ?? 0, "\(name) \(role)") }
            XCTAssertEqual(doc.duplicates.map(\.chains), report.duplicates.map(\.chainIDs), name)
            XCTAssertEqual(doc.warnings.map(\.code), report.warnings.map(\.code.rawValue), name)
            for section in report.counters {
                for item in section.items { XCTAssertEqual(doc.counters[section.name]?[item.name], item.count, "\(name) \(section.name)/\(item.name)") }
            }
            XCTAssertEqual(doc.schemaVersion, JSONReport.schemaVersion, name)
            // Every connection a hop refers to is described once.
            let byID = doc.connectionsByID
            XCTAssertEqual(byID.count, doc.connections.count, "\(name): a connection described twice")
            let referred = Set(report.chains.flatMap { $0.hops.map(\.connection.id.value) } + report.orphanResponses.map(\.connection.id.value))
            XCTAssertEqual(Set(byID.keys), referred, name)
            for (typed, chain) in zip(doc.chains, report.chains) {
                chainsSeen += 1
                XCTAssertEqual(typed.id, chain.id, name)
                XCTAssertEqual(typed.method, chain.method, name)
                XCTAssertEqual(typed.status, chain.status, name)
                XCTAssertEqual(typed.retries, chain.retries, name)
                XCTAssertEqual(typed.proxyAddedNs, chain.proxyAddedNs, name)
                XCTAssertEqual(typed.complete, !chain.isIncomplete, name)
                XCTAssertEqual(typed.explanation, chain.explanation, name)
                XCTAssertEqual(typed.hops.count, chain.hops.count, name)
                for (h, hop) in zip(typed.hops, chain.hops) {
                    hopsSeen += 1
                    XCTAssertEqual(h.role, hop.role.rawValue, name)
                    XCTAssertEqual(h.connection, hop.connection.id.value, name)
                    XCTAssertEqual(h.client, hop.connection.client.description, name)
                    XCTAssertEqual(h.server, hop.connection.server.description, name)
                    // An encrypted hop's times are its turns'.
                    XCTAssertEqual(h.requestStartNs, hop.exchange.requestFirstTimestamp, name)
                    XCTAssertEqual(h.responseEndNs, hop.exchange.responseLastTimestamp, name)
                    XCTAssertEqual(h.requestStart, hop.exchange.requestFirstTimestamp.map { Timestamp.iso8601($0) }, name)
                    XCTAssertEqual(h.tls?.turn, hop.exchange.tls.map { _ in hop.exchange.sequence }, name)
                    XCTAssertEqual(h.tls?.requestBytes, hop.exchange.tls?.requestBytes, name)
                    XCTAssertEqual(h.rule, hop.rule.decidingRule ?? hop.rule.sentence, name)
                    // The verdict is the connection's record's (the hop does not repeat it).
                    XCTAssertNil(h.ruleEvaluation, name)
                    XCTAssertNil(h.roleReason, name)
                    let record = try XCTUnwrap(byID[h.connection], name)
                    XCTAssertEqual(record.client, h.client, name)
                    XCTAssertEqual(record.server, h.server, name)
                    XCTAssertEqual(record.rule, h.rule, name)
                    XCTAssertEqual(record.ruleEvaluation.decidingRule, hop.rule.decidingRule, name)
                    XCTAssertEqual(record.ruleEvaluation.sentence, hop.rule.sentence, name)
                    XCTAssertEqual(record.ruleEvaluation.traversal, hop.rule.traversal, name)
                    XCTAssertEqual(record.roleReason, hop.roleReason, name)
                    XCTAssertEqual(doc.ruleEvaluation(of: h, in: byID)?.decidingRule, hop.rule.decidingRule, name)
                    XCTAssertEqual(doc.roleReason(of: h, in: byID), hop.roleReason, name)
                }
            }
            for (h, hop) in zip(doc.ending.orphanResponses, report.orphanResponses) {
                XCTAssertNil(h.ruleEvaluation, name)
                XCTAssertEqual(byID[h.connection]?.roleReason, hop.roleReason, name)
            }

            // jsonl: each connection's line before the first chain line that refers to it, the
            // same chains, one a line, and a trailer with the same ending.
            let lines = JSONWriter(capacity: 1 << 16)
            let stream = JSONReport.LinesWriter(lines)
            for c in report.chains { stream.chain(c) }
            stream.finish(report)
            let text = lines.string.split(separator: "\n")
            XCTAssertEqual(text.count, report.chains.count + doc.connections.count + 1, name)
            var jsonlChains: [ReportChain] = [], jsonlConnections: [ReportConnection] = []
            var described = Set<Int>()
            for (i, l) in text.dropLast().enumerated() {
                if l.hasPrefix(#"{"connection":"#) {
                    let c = try roundTrip(ReportConnectionLine.self, Array(l.utf8), "\(name) jsonl line \(i + 1)").connection
                    XCTAssertTrue(described.insert(c.id).inserted, "\(name) jsonl line \(i + 1): connection \(c.id) described twice")
                    jsonlConnections.append(c)
                } else {
                    let c = try roundTrip(ReportChain.self, Array(l.utf8), "\(name) jsonl line \(i + 1)")
                    for h in c.hops { XCTAssertTrue(described.contains(h.connection), "\(name) jsonl line \(i + 1): connection \(h.connection) not described before") }
                    jsonlChains.append(c)
                }
            }
            XCTAssertEqual(jsonlChains, doc.chains, name)
            XCTAssertEqual(jsonlConnections, doc.connections, name)
            let trailer = try roundTrip(ReportTrailer.self, Array(text.last!.utf8), "\(name) jsonl trailer")
            XCTAssertEqual(trailer.summary.schemaVersion, JSONReport.schemaVersion, name)
            XCTAssertEqual(trailer.summary.totals, doc.summary, name)
            XCTAssertEqual(trailer.summary.ending, doc.ending, name)

            // A chain written on its own carries its hops' verdicts.
            if let c = report.chains.first, let hop = c.hops.first {
                let alone = try ReportCoding.decode(ReportChain.self, from: Array(JSONReport.chain(c, report: nil).utf8))
                XCTAssertEqual(alone.hops.first?.ruleEvaluation?.decidingRule, hop.rule.decidingRule, name)
                XCTAssertEqual(alone.hops.first?.roleReason, hop.roleReason, name)
            }
        }
        XCTAssertGreaterThan(chainsSeen, 100)
        XCTAssertGreaterThan(hopsSeen, chainsSeen)
    }

    func testHTTPExchangesDecodeAndRoundTrip() throws {
        var seen = 0
        for name in Self.captures() {
            guard let source = try? PcapSource.openFile(capturesDir.appendingPathComponent(name).path) else { continue }
            var decoder = PacketDecoder(linkType: source.linkType)
            var lines: [(HTTPExchange, [UInt8])] = []
            let http = HTTPAnalyzer { x in lines.append((x, Array(JSONReport.exchange(x).utf8))) }
            let table = ConnectionTable(consumer: http)
            var seg = TCPSegment.empty
            while case .packet(let p)? = try? source.next() {
                if decoder.decode(p, into: &seg) { table.process(seg) }
            }
            table.finish()
            http.finish()
            for (x, bytes) in lines {
                seen += 1
                let e = try roundTrip(ReportExchange.self, bytes, "\(name) exchange \(x.connectionID) #\(x.sequence)")
                XCTAssertEqual(e.connection, x.connectionID.value, name)
                XCTAssertEqual(e.sequence, x.sequence, name)
                XCTAssertEqual(e.method, x.request?.method, name)
                XCTAssertEqual(e.target, x.request?.target, name)
                XCTAssertEqual(e.status, x.response?.status, name)
                XCTAssertEqual(e.client, x.client.description, name)
                XCTAssertEqual(e.responseEndNs, x.responseLastTimestamp, name)
                XCTAssertEqual(e.tls?.responseBytes, x.tls?.responseBytes, name)
                XCTAssertEqual(e.tls?.sni, x.tls?.serverName, name)
                XCTAssertEqual(e.flags, x.flags.isEmpty ? [] : x.flags.names, name)
                XCTAssertEqual(e.http2?.stream, x.http2.map { Int($0.streamID) }, name)
                XCTAssertEqual(e.http2?.requestHeaders, x.http2?.requestHeaders.rawValue, name)
                XCTAssertEqual(e.http2?.grpc?.status, x.http2?.grpc?.status, name)
            }
        }
        XCTAssertGreaterThan(seen, 100)
    }

    /// A value the writer never makes does not pass as one: the schema types are strict.
    func testDecodingRejectsAWrongShape() {
        XCTAssertThrowsError(try ReportDocument.decode(Array(#"{"chains": [], "summary": {}}"#.utf8)))
        XCTAssertThrowsError(try ReportCoding.decode(ReportChain.self, from: Array(#"{"id": "1"}"#.utf8)))
    }
}
