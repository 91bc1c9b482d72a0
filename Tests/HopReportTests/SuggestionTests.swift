import HopReport
import XCTest

/// "Did you mean …?" for a mistyped subcommand.
final class SuggestionTests: XCTestCase {
    let names = ["analyze", "watch", "packets", "flows", "http", "intercept", "proxy", "lab", "check"]

    func testEditDistance() {
        XCTAssertEqual(Suggestion.editDistance("analyse", "analyze"), 1)
        XCTAssertEqual(Suggestion.editDistance("", "lab"), 3)
        XCTAssertEqual(Suggestion.editDistance("lab", ""), 3)
        XCTAssertEqual(Suggestion.editDistance("kitten", "sitting"), 3)
        XCTAssertEqual(Suggestion.editDistance("flows", "flows"), 0)
    }

    func testClosestName() {
        XCTAssertEqual(Suggestion.closest(to: "analyse", among: names), "analyze")
        XCTAssertEqual(Suggestion.closest(to: "FLOW", among: names), "flows", "case aside")
        XCTAssertEqual(Suggestion.closest(to: "che", among: names), "check", "a prefix")
        XCTAssertEqual(Suggestion.closest(to: "htp", among: names), "http")
        XCTAssertNil(Suggestion.closest(to: "frobnicate", among: names))
        XCTAssertNil(Suggestion.closest(to: "x", among: []))
    }
}
