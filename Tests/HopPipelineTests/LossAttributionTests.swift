import HopCapture
@testable import HopPipeline
import XCTest

/// A lossy live capture's incomplete chains and unanswered requests are put down to the loss
/// when they lie in (or near) a window in which packets were lost.
final class LossAttributionTests: XCTestCase {
    let s: Int64 = 1_000_000_000

    func testSpansNearALossWindowAreAttributedToIt() {
        var a = LossAttribution()
        a.incompleteChain(from: 10 * s, to: 10 * s + 1_000_000)        // inside the first window
        a.incompleteChain(from: 20 * s, to: 20 * s + 1_000_000)        // far from every window
        a.incompleteChain(from: 12 * s + 100_000_000, to: 12 * s + 200_000_000)  // within the slack after it
        a.unansweredRequest(from: 29 * s, to: 29 * s + 500_000_000)   // its response was due in the second window
        a.unansweredRequest(from: 40 * s, to: 40 * s)                  // nothing lost then
        let windows = [LossWindow(start: 9 * s, end: 12 * s, packets: 500), LossWindow(start: 30 * s, end: 30 * s + 50_000_000, packets: 7)]
        let f = a.figures(windows: windows, lostPackets: 507)
        XCTAssertEqual(f.lostPackets, 507)
        XCTAssertEqual(f.windows, 2)
        XCTAssertEqual(f.first, 9 * s)
        XCTAssertEqual(f.last, 30 * s + 50_000_000)
        XCTAssertEqual(f.incompleteChains, 2)
        XCTAssertEqual(f.unansweredRequests, 1)
    }

    func testNoLossAttributesNothing() {
        var a = LossAttribution()
        a.incompleteChain(from: s, to: 2 * s)
        a.unansweredRequest(from: s, to: 2 * s)
        let f = a.figures(windows: [], lostPackets: 0)
        XCTAssertEqual(f, LossAttribution.Figures())
    }

    func testStatisticsJoinTheKernelsAndTheQueuesLosses() {
        var q = PacketQueue.Figures()
        q.shed = 3
        q.shedWindows = [LossWindow(start: 5, end: 6, packets: 3)]
        let st = CaptureStatistics(received: 100, dropped: 4, interfaceDropped: 0, queue: q,
                                   kernelLossWindows: [LossWindow(start: 1, end: 2, packets: 4)])
        XCTAssertEqual(st.lost, 7)
        XCTAssertEqual(st.lossWindows.map(\.start), [1, 5])
    }
}
