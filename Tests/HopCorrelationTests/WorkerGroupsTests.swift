import XCTest
@testable import HopCorrelation

final class WorkerGroupsTests: XCTestCase {
    /// The timing evidence is summed in the order its connection pairs first appeared, never in
    /// a dictionary's order (which changes from process to process: the same capture numbered
    /// its worker groups differently from one run to the next).
    func testLinkCountsKeepFirstAppearanceOrderAndSumWeights() {
        var c = WorkerGroups.LinkCounts()
        let links = (0..<500).map { WorkerGroups.Link(down: ($0 * 37) % 101, up: ($0 * 53) % 97) }
        for (i, l) in links.enumerated() { c.add(l, Double(i % 7) + 0.5) }
        for (i, l) in links.enumerated().reversed() { c.add(l, Double(i % 3)) }
        var seen = Set<WorkerGroups.Link>(), order: [WorkerGroups.Link] = []
        for l in links where seen.insert(l).inserted { order.append(l) }
        XCTAssertEqual(c.links, order)
        var expected: [WorkerGroups.Link: Double] = [:]
        for (i, l) in links.enumerated() { expected[l, default: 0] += Double(i % 7) + 0.5 }
        for (i, l) in links.enumerated().reversed() { expected[l, default: 0] += Double(i % 3) }
        for (l, w) in zip(c.links, c.weights) { XCTAssertEqual(w, expected[l]!, accuracy: 1e-9) }
        c.removeAll()
        XCTAssertEqual(c.count, 0)
        c.add(links[3], 2)
        XCTAssertEqual(c.links, [links[3]])
        XCTAssertEqual(c.weights, [2])
    }

    /// Two workers, each with its own downstream and upstream connections: the blocks are
    /// found at the first regrouping (256 pairings) but used only from the second (512), once
    /// found again; a split seen by one regrouping alone is never used.
    func testASplitIsUsedOnceTwoRegroupingsInARowFindIt() {
        var g = WorkerGroups()
        func feed(_ n: Int) {
            for k in 0..<n {
                let worker = k % 2, d = worker * 4 + (k / 2) % 4, u = 10 + worker * 4 + (k / 8) % 4
                g.observe(down: d, up: u, weight: 1)
                g.record(down: d, up: u, certain: k % 3 == 0)
            }
        }
        feed(255)
        XCTAssertEqual(g.groupCount, 0)
        feed(1)
        XCTAssertEqual(g.groupCount, 0, "found once: not used yet")
        XCTAssertFalse(g.differ(down: 0, up: 14))
        feed(256)
        XCTAssertEqual(g.groupCount, 2, "found again at 512 pairings: used")
        XCTAssertTrue(g.differ(down: 0, up: 14))
        XCTAssertFalse(g.differ(down: 0, up: 10))
        XCTAssertEqual(g.group(down: 1), g.group(down: 2))
        XCTAssertNotEqual(g.group(down: 1), g.group(down: 5))
    }
}
