import HopLab
import XCTest

/// What `hoptrace lab` asks of HopLab besides the scenarios: its options' limits, the list,
/// and the closing lines (no namespace is made: no root needed).
final class LabCommandTests: XCTestCase {
    func refusal(_ change: (inout LabOptions) -> Void) -> String? {
        var o = LabOptions()
        change(&o)
        do { try o.validate(); return nil } catch { return error.description }
    }

    func testOptionLimits() {
        XCTAssertNil(refusal { _ in })
        XCTAssertNil(refusal { $0.requests = 100_000; $0.duration = 30; $0.connections = 256; $0.namespacePrefix = "hoplabtest-" })
        XCTAssertEqual(refusal { $0.updateExpectations = true }, "--update-expectations needs --write-dir DIR")
        XCTAssertNil(refusal { $0.updateExpectations = true; $0.writeDir = "/tmp/x" })
        XCTAssertEqual(refusal { $0.requests = 0 }, "--requests must be between 1 and 100000")
        XCTAssertEqual(refusal { $0.duration = 31 }, "--duration must be between 1 and 30 seconds")
        XCTAssertEqual(refusal { $0.connections = 257 }, "--connections must be between 1 and 256")
        XCTAssertEqual(refusal { $0.namespacePrefix = "pod-" }, "--namespace-prefix must start with hoplab")
        XCTAssertEqual(refusal { $0.namespacePrefix = "hoplab/x" }, "--namespace-prefix must start with hoplab")
        XCTAssertEqual(refusal { $0.requests = 0; $0.connections = 0 }, "--requests must be between 1 and 100000")
    }

    func testListAndClosingLines() throws {
        let seed = try XCTUnwrap(LabScenario.named("seed"))
        XCTAssertEqual(seed.listLine, "seed           " + seed.summary)
        XCTAssertNil(LabVerdict.staleNote([]))
        XCTAssertEqual(LabVerdict.staleNote(["hoplab-1-a"]), "hoptrace lab: removed 1 namespace left by an earlier run: hoplab-1-a")
        XCTAssertEqual(LabVerdict.staleNote(["hoplab-1-a", "hoplab-1-b"]),
                       "hoptrace lab: removed 2 namespaces left by an earlier run: hoplab-1-a, hoplab-1-b")
        var failing = LabVerdict(scenario: "load")
        failing.differences = ["one"]
        let passing = LabVerdict(scenario: "seed")
        XCTAssertEqual(LabVerdict.summaryLine([passing, passing]), "lab: all 2 scenarios pass")
        XCTAssertEqual(LabVerdict.summaryLine([passing, failing]), "lab: 1 of 2 scenarios fail: load")
        let json = try LabVerdict.jsonReport([passing, failing])
        XCTAssertTrue(json.hasPrefix("{\"ok\":false,\"scenarios\":[{"), json)
        XCTAssertTrue(try LabVerdict.jsonReport([passing]).hasPrefix("{\"ok\":true,"))
    }
}
