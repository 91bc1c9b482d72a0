import HopCapture
import HopReport
import XCTest

/// The byte-level line writer must spell everything exactly as the String formatters do.
final class LineBuilderTests: XCTestCase {
    func build(_ f: (inout LineBuilder) -> Void) -> String {
        LineBuilder.string(f)
    }

    /// One builder writing many times in a row (its cached `HH:MM:SS` must follow the second).
    func testTimeOfDayInARowFollowsTheSecond() {
        let times: [Int64] = [1_700_000_000_123_456_789, 1_700_000_000_999_999_999, 1_700_000_001_000_000_000,
                              1_700_000_001_000_000_001, 1_699_999_999_000_000_000, 86_399_999_999_999, 0, 59_000_000_000]
        let s = LineBuilder.string { b in for t in times { b.timeOfDay(t); b.byte(0x20) } }
        XCTAssertEqual(s, times.map { Timestamp.timeOfDay($0) + " " }.joined())
    }

    func testGrowsPastItsFirstBlockAndWritesIntegersExactly() {
        let s = LineBuilder.string { b in
            for i in 0..<2_000 { b.int(i - 1_000); b.byte(0x20) }
            b.int(Int64.min + 1); b.byte(0x20); b.int(UInt64.max); b.byte(0x20); b.padded(42, 20)
        }
        let expected = (0..<2_000).map { String($0 - 1_000) + " " }.joined()
            + String(Int64.min + 1) + " " + String(UInt64.max) + " " + "00000000000000000042"
        XCTAssertEqual(s, expected)
    }

    func testAgreesWithTheStringFormatters() {
        for ns: Int64 in [0, 999, 1_000, 1_500, 999_999, 2_340_000, 999_999_999, 1_000_000_000, 61_234_567_890, -4_200] {
            XCTAssertEqual(build { $0.duration(ns) }, Timestamp.duration(ns), "\(ns)")
        }
        for ns: Int64 in [0, 1_700_000_000_123_456_789, 86_399_999_999_999, 1_795_701_328_089_603_251] {
            XCTAssertEqual(build { $0.timeOfDay(ns) }, Timestamp.timeOfDay(ns), "\(ns)")
        }
        for text in ["198.18.1.10:56878", "0.0.0.0:0", "255.255.255.255:65535", "[::1]:80", "[2001:2::1]:15001"] {
            let e = Endpoint(text)!
            XCTAssertEqual(build { $0.endpoint(e) }, e.description)
        }
        for v in [0, 7, 10, 12_345, Int.max, -1, Int.min + 1] {
            XCTAssertEqual(build { $0.int(v) }, String(v))
        }
    }
}
