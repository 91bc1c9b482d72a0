@testable import HopHTTP
import NIOCore
import NIOHPACK
import XCTest

/// The HTTP/2 parser's own containers against the standard ones they stand in for.
final class HTTP2PackingTests: XCTestCase {
    /// `StreamIDSet` answers as `Set<UInt32>` through inserts, removes (including ids absent or
    /// already there, and runs that collide and wrap) and growth.
    func testStreamIDSetMatchesSet() {
        var ours = StreamIDSet()
        var reference = Set<UInt32>()
        var seed: UInt64 = 0x2545_F491_4F6C_DD1D
        func next() -> UInt32 {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return UInt32(truncatingIfNeeded: seed >> 33)
        }
        for step in 0..<60_000 {
            // Small ids collide often; large ones spread; stream-like odd ids in between.
            let id: UInt32
            switch step % 3 {
            case 0: id = next() % 64 + 1
            case 1: id = next() | 1
            default: id = (next() % 5_000) * 2 + 1
            }
            if next() % 3 == 0 {
                ours.remove(id)
                reference.remove(id)
            } else {
                ours.insert(id)
                reference.insert(id)
            }
            XCTAssertEqual(ours.contains(id), reference.contains(id))
            if step % 1_000 == 0 {
                for probe in 1...200 as ClosedRange<UInt32> {
                    XCTAssertEqual(ours.contains(probe), reference.contains(probe), "id \(probe) at step \(step)")
                }
                for v in reference { XCTAssertTrue(ours.contains(v)) }
            }
            XCTAssertEqual(ours.count, reference.count)
        }
    }

    /// A block packed from NIOHPACK's decoded fields reads back the same fields; `intValue`
    /// reads a value as `Int(_:)` reads its String; exact-name lookup compares bytes.
    func testPackedBlockAndIntValue() throws {
        let values = ["200", "+7", "-0", "-", "+", "", " 1", "1 ", "12a", "9223372036854775807", "9223372036854775808",
                      "-9223372036854775808", "-9223372036854775809", "٣", "0x10", "007", "é1"]
        var encoder = HPACKEncoder(allocator: ByteBufferAllocator())
        var decoder = HPACKDecoder(allocator: ByteBufferAllocator())
        for v in values {
            var out = ByteBufferAllocator().buffer(capacity: 64)
            try encoder.encode(headers: HPACKHeaders([(":status", v), ("X-Trace-Id", "text/plain"), ("x-é", "ü")]), to: &out)
            let decoded = try decoder.decodeHeaders(from: &out)
            let packed = HTTPHeaders(packing: decoded)
            XCTAssertEqual(packed.map { [$0.name, $0.value] }, decoded.map { [$0.name, $0.value] })
            XCTAssertEqual(packed.intValue(exactly: ":status"), Int(v), "value \"\(v)\"")
            XCTAssertEqual(packed.value(exactly: ":status"), v)
            XCTAssertNil(packed.value(exactly: "x-trace-id"), "exact: no case folding")
            XCTAssertEqual(packed.value(exactly: "X-Trace-Id"), "text/plain")
            XCTAssertEqual(packed["x-trace-id"], "text/plain")
            XCTAssertEqual(packed.value(exactly: "x-é"), "ü")
        }
        XCTAssertEqual(HTTPHeaders(packing: HPACKHeaders()).count, 0)
    }
}
