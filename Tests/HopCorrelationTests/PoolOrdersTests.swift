@testable import HopCorrelation
import XCTest

/// The two arrival orders of a pool, on pools small enough to check by hand.
final class PoolOrdersTests: XCTestCase {
    private func rows(_ columns: Int, _ rows: [[(Int, Bool)]]) -> PoolOrders {
        var o = PoolOrders()
        o.reset(columns: columns)
        for r in rows { o.addRow(r.map { (column: $0.0, own: $0.1) }) }
        return o
    }

    func testForwardTakesTheFirstFreeColumnAndReturnFollowsResponses() {
        // Three identical requests, three upstream copies; the responses came back in the
        // order 2, 0, 1 upstream and rows 0, 1, 2 downstream.
        var o = rows(3, [[(0, true), (1, true), (2, true)], [(1, true), (2, true), (0, true)], [(2, true), (0, true), (1, true)]])
        o.solve(columnResponseStarts: [20, 30, 10], rowResponseStarts: [15, 25, 35])
        XCTAssertEqual(o.forward, [0, 1, 2])
        // Column 2 answered first: it goes to row 0; then column 0 to row 1, column 1 to row 2.
        XCTAssertEqual(o.backward, [2, 0, 1])
        XCTAssertEqual(o.backwardOwner, [1, 2, 0])
        XCTAssertEqual((0..<3).map(o.feasibleCount), [3, 3, 3])
    }

    func testOwnWorkerGroupFirstOthersAsFallback() {
        // Row 0's own group has column 1 only; column 0 is another group's (fallback).
        var o = rows(2, [[(0, false), (1, true)], [(0, true)]])
        XCTAssertEqual(o.feasibleCount(0), 1)
        o.solve(columnResponseStarts: [1, 2], rowResponseStarts: [3, 4])
        XCTAssertEqual(o.forward, [1, 0])
        XCTAssertEqual(o.backward, [1, 0])
    }

    func testAugmentingPathsLeaveNoRowWithoutAColumnItCouldHave() {
        // Forward order gives row 0 column 0, which row 1 needs: Kuhn moves row 0 to column 1.
        var o = rows(2, [[(0, true), (1, true)], [(0, true)]])
        o.solve(columnResponseStarts: [.max, .max], rowResponseStarts: [.max, .max])
        XCTAssertEqual(o.forward, [1, 0])
        XCTAssertTrue(o.backward.allSatisfy { $0 >= 0 })
        XCTAssertNotEqual(o.backward[0], o.backward[1])
    }

    func testRowsWithoutCandidatesStayUnpairedAndArraysAreReused() {
        var o = rows(1, [[], [(0, true)]])
        o.solve(columnResponseStarts: [5], rowResponseStarts: [6, 7])
        XCTAssertEqual(o.forward, [-1, 0])
        XCTAssertEqual(o.backward, [-1, 0])
        // The next pool starts from nothing.
        o.reset(columns: 0)
        o.addRow([(column: Int, own: Bool)]())
        o.solve(columnResponseStarts: [], rowResponseStarts: [1])
        XCTAssertEqual(o.rows, 1)
        XCTAssertEqual(o.forward, [-1])
        XCTAssertEqual(o.backwardOwner, [])
    }
}
