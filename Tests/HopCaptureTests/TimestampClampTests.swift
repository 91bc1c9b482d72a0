@testable import HopCapture
import XCTest

/// A packet's time is clamped to [0, 2^62) ns: a pcapng block may hold any 64-bit time, and the
/// time a proxy added (a difference of differences of timestamps) must still fit in an Int64.
final class TimestampClampTests: XCTestCase {
    func testPacketTimesAreClamped() {
        XCTAssertEqual(PcapSource.nanoseconds(seconds: 1_795_705_336, fraction: 720_396_214), 1_795_705_336_720_396_214)
        XCTAssertEqual(PcapSource.nanoseconds(seconds: 0, fraction: 5), 5)
        XCTAssertEqual(PcapSource.nanoseconds(seconds: -1, fraction: 5), 0)
        XCTAssertEqual(PcapSource.nanoseconds(seconds: .max, fraction: 999_999_999), PcapSource.timestampLimit - 1)
        XCTAssertEqual(PcapSource.nanoseconds(seconds: 18_446_744_073, fraction: 0), PcapSource.timestampLimit - 1)
        // The latest time a classic pcap holds (UInt32 seconds) is kept as it is.
        XCTAssertEqual(PcapSource.nanoseconds(seconds: Int64(UInt32.max), fraction: 999_999_999), Int64(UInt32.max) * 1_000_000_000 + 999_999_999)
        // Differences of differences of clamped times fit.
        let t = PcapSource.timestampLimit - 1
        XCTAssertEqual((t - 0) - (0 - t), 2 * t)
    }
}
