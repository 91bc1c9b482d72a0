@testable import HopCorrelation
import HopTestSupport
import XCTest

/// Where the forward and return orders disagree, the chance that one of them is right
/// (`Correlator.oneOfTwoRight`), from how often they agree and how often return order wins.
final class DisagreementConfidenceTests: XCTestCase {
    /// Each order right with the same p on its own: one of two disagreeing is right 2p/(1+p).
    func testEqualOrdersGiveTwoPOverOnePlusP() {
        for r in [0.04, 0.25, 0.5, 0.81, 0.97] {
            let p = r.squareRoot()
            XCTAssertEqual(Correlator.oneOfTwoRight(agreement: r, returnRight: 0.5), 2 * p / (1 + p), accuracy: 1e-6)
        }
    }

    /// The factor against a simulation of two independent orders with those rates.
    func testMatchesIndependentOrders() {
        var rng = SplitMix(state: 20_261_207)
        for (a, b) in [(0.9, 0.5), (0.6, 0.6), (0.99, 0.3), (0.5, 0.8)] {
            var agree = 0, disagree = 0, returnWins = 0, oneRight = 0
            for _ in 0..<200_000 {
                let ra = Double.random(in: 0..<1, using: &rng) < a, rb = Double.random(in: 0..<1, using: &rng) < b
                if ra && rb { agree += 1; continue }
                disagree += 1
                if ra != rb { oneRight += 1; if ra { returnWins += 1 } }
            }
            let r = Double(agree) / 200_000, pi = Double(returnWins) / Double(oneRight)
            XCTAssertEqual(Correlator.oneOfTwoRight(agreement: r, returnRight: pi), Double(oneRight) / Double(disagree),
                           accuracy: 0.01, "a \(a) b \(b)")
        }
    }

    /// A return order that nearly always wins leaves its disagreements nearly as they were,
    /// however rarely the orders agree (nginx: the forward order is the one that errs).
    func testAReturnOrderThatWinsIsBarelyDiscounted() {
        XCTAssertGreaterThan(Correlator.oneOfTwoRight(agreement: 0.5, returnRight: 0.95), 0.95)
        XCTAssertLessThan(Correlator.oneOfTwoRight(agreement: 0.3, returnRight: 0.5), 0.75)
        XCTAssertLessThanOrEqual(Correlator.oneOfTwoRight(agreement: 0.999, returnRight: 0.05), 1)
    }
}
