import Foundation
import HopCorrelation
import HopHTTP
import HopReport
import XCTest

/// The lines the commands print through HopReport: warnings, and `http`'s stream of exchanges.
final class CommandOutputTests: XCTestCase {
    /// What `body` writes to an `Output` on a temporary file.
    func written(lineBuffered: Bool = false, _ body: (Output) -> Void) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("output-\(getpid())-\(UUID().uuidString)").path
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let out = Output(fd: fd, lineBuffered: lineBuffered)
        body(out)
        out.flush()
        close(fd)
        return try String(contentsOfFile: path, encoding: .utf8)
    }

    func testWarningLines() throws {
        let w = AnalysisWarning(code: .singleInterface, message: "one interface captured", reason: "r", counts: [])
        XCTAssertEqual(try written { $0.warning("x.pcap: 1 packet not written") }, "hoptrace: warning: x.pcap: 1 packet not written\n")
        XCTAssertEqual(try written { $0.warnings([w, w]) }, String(repeating: "hoptrace: warning: \(TextReport.warningLine(w))\n", count: 2))
        XCTAssertEqual(try written { $0.warnings([]) }, "")
    }

    func testExchangeLinesAreExchangeTextsAndJSONObjects() throws {
        let exchanges = try analyze("nat-split.pcap").chains.flatMap { $0.hops.map(\.exchange) }
        XCTAssertFalse(exchanges.isEmpty)
        let text = try written { out in
            let lines = ExchangeLines(out: out, jsonl: false, headers: false, bodies: false, clock: LineClock(level: 0))
            exchanges.forEach(lines.write)
            lines.finish()
        }
        var connections = ConnectionTextCache()
        XCTAssertEqual(text, exchanges.map { x in LineBuilder.string { ExchangeText.text(x, into: &$0, connections: &connections) } + "\n" }.joined())

        let heads = try written { out in
            let lines = ExchangeLines(out: out, jsonl: false, headers: true, bodies: false, clock: LineClock(level: 1))
            exchanges.forEach(lines.write)
        }
        XCTAssertTrue(heads.split(separator: "\n").count > exchanges.count, "heads follow each line")

        for lineBuffered in [false, true] {
            let jsonl = try written(lineBuffered: lineBuffered) { out in
                let lines = ExchangeLines(out: out, jsonl: true, headers: false, bodies: false, clock: LineClock(level: 0))
                exchanges.forEach(lines.write)
                lines.finish()
            }
            let expected = exchanges.map { x in
                let w = JSONWriter()
                JSONReport.write(exchange: x, to: w)
                return w.string + "\n"
            }.joined()
            XCTAssertEqual(jsonl, expected)
        }
    }
}
