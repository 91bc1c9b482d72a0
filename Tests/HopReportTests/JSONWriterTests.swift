import Foundation
import HopCapture
@testable import HopReport
import XCTest

/// The JSON writer's strings and times, against Foundation's reading of what it wrote.
final class JSONWriterTests: XCTestCase {
    /// Every length from 0 to 40, with a character JSON escapes at every position (and none):
    /// the word-at-a-time check must never let one through, whatever its place.
    func testEscapesAtEveryPositionOfEveryLength() throws {
        for special in ["\"", "\\", "\n", "\u{01}", "\t", "\u{1f}"] {
            for n in 0...40 {
                for k in -1..<n {
                    var chars = Array(repeating: Character("a"), count: n)
                    if k >= 0 { chars[k] = Character(special) }
                    let s = String(chars) + (n % 3 == 0 ? "→é" : "")
                    let w = JSONWriter()
                    w.beginArray()
                    w.string(s)
                    w.beginString(); w.piece(s); w.endString()
                    w.endArray()
                    let back = try JSONSerialization.jsonObject(with: Data(w.bytes)) as? [String]
                    XCTAssertEqual(back, [s, s], "length \(n), special at \(k)")
                }
            }
        }
    }

    /// Times through a second boundary, a day boundary and before 1970 read back as written,
    /// and the nanosecond integers keep every digit.
    func testTimesAcrossSecondsAndDays() throws {
        let ns: [Int64] = [1_796_590_540_920_859_000, 1_796_590_540_999_999_999, 1_796_590_541_000_000_001,
                           1_796_601_599_999_999_999, 1_796_601_600_000_000_000, 5, 999_999_999, 1_000_000_000, -1]
        let w = JSONWriter()
        w.beginArray()
        for t in ns { w.iso8601(t); w.epochNanos(t) }
        w.endArray()
        let back = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(w.bytes)) as? [Any])
        for (i, t) in ns.enumerated() {
            XCTAssertEqual(back[2 * i] as? String, Timestamp.iso8601(t), "\(t)")
            XCTAssertEqual((back[2 * i + 1] as? NSNumber)?.int64Value, t, "\(t)")
        }
        XCTAssertTrue(w.string.contains("1796590541000000001"))
    }
}
