@testable import HopHTTP
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

    /// `StreamTable` answers as `[UInt32: HTTP2Stream]` through inserts, replacements, removes
    /// (ids absent or present, runs that collide and wrap) and growth.
    func testStreamTableMatchesDictionary() {
        var ours = StreamTable()
        var reference: [UInt32: HTTP2Stream] = [:]
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt32 {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return UInt32(truncatingIfNeeded: seed >> 33)
        }
        for step in 0..<40_000 {
            let id: UInt32 = step % 2 == 0 ? next() % 48 + 1 : (next() % 3_000) * 2 + 1
            switch next() % 4 {
            case 0:
                XCTAssertTrue(ours.removeValue(forKey: id) === reference.removeValue(forKey: id))
            case 1:
                ours[id] = nil
                reference[id] = nil
            default:
                let s = HTTP2Stream(id: id, sequence: step, position: 0)
                ours[id] = s
                reference[id] = s
            }
            XCTAssertTrue(ours[id] === reference[id])
            XCTAssertEqual(ours.count, reference.count)
            if step % 1_000 == 0 {
                for probe in 0...100 as ClosedRange<UInt32> { XCTAssertTrue(ours[probe] === reference[probe], "id \(probe) at step \(step)") }
                XCTAssertEqual(Set(ours.values.map(ObjectIdentifier.init)), Set(reference.values.map(ObjectIdentifier.init)))
            }
        }
    }

    /// A block decoded by nghttp2's inflater into the packed form reads back the fields encoded;
    /// `intValue` reads a value as `Int(_:)` reads its String; exact-name lookup compares bytes.
    func testPackedBlockAndIntValue() throws {
        let values = ["200", "+7", "-0", "-", "+", "", " 1", "1 ", "12a", "9223372036854775807", "9223372036854775808",
                      "-9223372036854775808", "-9223372036854775809", "٣", "0x10", "007", "é1"]
        let encoder = HPACKTestEncoder()
        let decoder = HPACKInflater(maxHeaderListSize: 1 << 16)
        let scratch = HPACKScratch()
        for v in values {
            let fields = [(":status", v), ("X-Trace-Id", "text/plain"), ("x-é", "ü")]
            let block = encoder.encode(fields)
            let packed = try XCTUnwrap(block.withUnsafeBytes { decoder.decode($0, scratch: scratch) })
            XCTAssertEqual(packed.map { [$0.name, $0.value] }, fields.map { [$0.0, $0.1] })
            XCTAssertEqual(packed.intValue(exactly: ":status"), Int(v), "value \"\(v)\"")
            XCTAssertEqual(packed.value(exactly: ":status"), v)
            XCTAssertNil(packed.value(exactly: "x-trace-id"), "exact: no case folding")
            XCTAssertEqual(packed.value(exactly: "X-Trace-Id"), "text/plain")
            XCTAssertEqual(packed["x-trace-id"], "text/plain")
            XCTAssertEqual(packed.value(exactly: "x-é"), "ü")
        }
        let empty: [UInt8] = []
        XCTAssertEqual(empty.withUnsafeBytes { decoder.decode($0, scratch: scratch) }?.count, 0)
    }

    /// What the inflater refuses is what NIOHPACK refused (the same blocks reported bad or
    /// unrecoverable), and what it repairs it repairs the same way.
    func testInflaterRejectsWhatNIOHPACKRejected() {
        let scratch = HPACKScratch()
        func decode(_ block: [UInt8], limit: Int = 1 << 16, tableSize: Int = 4096) -> HTTPHeaders? {
            let d = HPACKInflater(maxHeaderListSize: limit, tableSize: tableSize)
            return block.withUnsafeBytes { d.decode($0, scratch: scratch) }
        }
        // Static table entries: :method GET, :path /.
        XCTAssertEqual(decode([0x82, 0x84])?.map { [$0.name, $0.value] }, [[":method", "GET"], [":path", "/"]])
        XCTAssertNil(decode([0x80]), "index 0")
        XCTAssertNil(decode([0xbe]), "index 62: the dynamic table is empty")
        XCTAssertNil(decode([0x40, 0x00, 0x01, 0x61]), "an empty literal name")
        XCTAssertNil(decode([0x00, 0x01, 0x61, 0x05, 0x62]), "a value cut short")
        XCTAssertNil(decode([0x00, 0x81, 0xff, 0x00]), "a name in bad Huffman code")
        XCTAssertNil(decode([0x82, 0x20]), "a size update after a field")
        XCTAssertNil(decode([0x3f, 0xe2, 0x1f]), "a size update above the SETTINGS limit (4,096)")
        XCTAssertEqual(decode([0x3f, 0xe1, 0x1f, 0x82])?.count, 1, "a size update to the limit")
        XCTAssertEqual(decode([0x20, 0x3f, 0xe1, 0x1f, 0x82])?.count, 1, "two size updates")
        XCTAssertNil(decode([0x20, 0x20, 0x20, 0x82]), "three size updates")
        // A pickup decoder's table may be 64 KiB: an update to it is in bounds, one above not.
        XCTAssertEqual(decode([0x3f, 0xe1, 0xff, 0x03, 0x82], tableSize: 1 << 16)?.count, 1)
        XCTAssertNil(decode([0x3f, 0xe2, 0xff, 0x03, 0x82], tableSize: 1 << 16))
        // The header list: names, values and 32 bytes a field, within the cap.
        let field: [UInt8] = [0x00, 0x01, 0x61, 0x03, 0x62, 0x63, 0x64]   // a: bcd, 1 + 3 + 32 = 36
        XCTAssertEqual(decode(field + field, limit: 72)?.count, 2)
        XCTAssertNil(decode(field + field, limit: 71))
        // Bytes that are not UTF-8 read as NIOHPACK's Strings held them (U+FFFD).
        let bad = decode([0x00, 0x01, 0x61, 0x02, 0xff, 0x62])
        XCTAssertEqual(bad?.value(exactly: "a"), "\u{FFFD}b")
        XCTAssertEqual(bad.map { $0.bytes($0.span(0).valueStart, $0.span(0).valueEnd) }, [0xef, 0xbf, 0xbd, 0x62])
    }

    /// Entries a block inserts are found by the next block's indices; a raised SETTINGS limit
    /// lets the sender grow the table.
    func testInflaterKeepsTheTableAcrossBlocks() {
        let scratch = HPACKScratch()
        let encoder = HPACKTestEncoder()
        let decoder = HPACKInflater(maxHeaderListSize: 1 << 16)
        let fields = [(":method", "GET"), (":path", "/x"), ("x-request-id", "r-1"), ("user-agent", "t")]
        let first = encoder.encode(fields)
        let second = encoder.encode(fields)
        XCTAssertLessThan(second.count, first.count, "the second block refers to the table")
        for b in [first, second] {
            XCTAssertEqual(b.withUnsafeBytes { decoder.decode($0, scratch: scratch) }?.map { [$0.name, $0.value] },
                           fields.map { [$0.0, $0.1] })
        }
        decoder.raiseTableLimit(to: 8192)
        XCTAssertEqual(decoder.tableLimit, 8192)
        decoder.raiseTableLimit(to: 100)
        XCTAssertEqual(decoder.tableLimit, 8192, "the limit only grows")
        let update: [UInt8] = [0x3f, 0xe1, 0x3f, 0x82]   // 8,192
        XCTAssertEqual(update.withUnsafeBytes { decoder.decode($0, scratch: scratch) }?.count, 1)
    }

    /// Which blocks leave the table alone: indexed fields and literals without indexing or never
    /// indexed, walked to the block's last byte; anything else, or a length past the end, not.
    func testBlocksThatLeaveTheTableAlone() {
        func alone(_ b: [UInt8]) -> Bool { b.withUnsafeBytes { HPACKInflater.leavesTableAlone($0) } }
        XCTAssertTrue(alone([0x82, 0x84, 0xbe]))
        XCTAssertTrue(alone([0xff, 0x01]), "index 128, on two bytes")
        XCTAssertFalse(alone([0xff, 0x81]), "an index that runs past the block")
        XCTAssertTrue(alone([0x04, 0x02, 0x2f, 0x78]), "a literal without indexing, indexed name (:path /x)")
        XCTAssertTrue(alone([0x00, 0x01, 0x61, 0x01, 0x62, 0x82]), "a literal without indexing, new name")
        XCTAssertTrue(alone([0x10, 0x01, 0x61, 0x01, 0x62]), "never indexed")
        XCTAssertTrue(alone([0x0f, 0x01, 0x01, 0x62]), "an indexed name on two bytes (16)")
        XCTAssertFalse(alone([0x00, 0x01, 0x61, 0x05, 0x62]), "a value that runs past the block")
        XCTAssertFalse(alone([0x00, 0x01, 0x61]), "a value missing")
        XCTAssertFalse(alone([0x82, 0x41, 0x01, 0x62]), "a field added to the table")
        XCTAssertFalse(alone([0x20, 0x82]), "a size update")
        XCTAssertFalse(alone([]))
        XCTAssertFalse(alone([UInt8](repeating: 0x82, count: HPACKInflater.repeatMaxBytes + 1)), "longer than kept")
    }

    /// A repeated block that leaves the table alone is decoded once and shared, until a block
    /// changes the table: then the same bytes are decoded again, against the new table.
    func testRepeatedBlocksAreSharedOnlyWhileTheTableStays() {
        let scratch = HPACKScratch()
        let decoder = HPACKInflater(maxHeaderListSize: 1 << 16)
        func decode(_ b: [UInt8]) -> HTTPHeaders? { b.withUnsafeBytes { decoder.decode($0, scratch: scratch) } }
        func fields(_ h: HTTPHeaders?) -> [[String]]? { h?.map { [$0.name, $0.value] } }
        XCTAssertEqual(fields(decode([0x40, 0x01, 0x78, 0x01, 0x31])), [["x", "1"]])   // x: 1 added, index 62
        let indexed: [UInt8] = [0x82, 0xbe]
        let literal: [UInt8] = [0xbe, 0x00, 0x01, 0x61, 0x01, 0x62]                    // x, then a: b not indexed
        let a = decode(indexed), b = decode(indexed), c = decode(literal), d = decode(literal)
        XCTAssertEqual(fields(a), [[":method", "GET"], ["x", "1"]])
        XCTAssertEqual(fields(c), [["x", "1"], ["a", "b"]])
        XCTAssertTrue(a?.buffer != nil && a?.buffer === b?.buffer, "the second decode is the first one's fields")
        XCTAssertTrue(c?.buffer != nil && c?.buffer === d?.buffer)
        XCTAssertTrue(decode(indexed)?.buffer === a?.buffer, "a literal without indexing left the table as it was")
        XCTAssertEqual(fields(decode([0x40, 0x01, 0x79, 0x01, 0x32])), [["y", "2"]])   // y: 2 is now 62
        let e = decode(indexed)
        XCTAssertEqual(fields(e), [[":method", "GET"], ["y", "2"]], "decoded again against the new table")
        XCTAssertFalse(e?.buffer === a?.buffer)
        XCTAssertEqual(fields(decode(literal)), [["y", "2"], ["a", "b"]])
        // A raised SETTINGS limit drops what was kept as well.
        decoder.raiseTableLimit(to: 8192)
        XCTAssertFalse(decode(indexed)?.buffer === e?.buffer)
        // A block that fails is not kept: an index beyond the table fails every time.
        XCTAssertNil(decode([0xc0]))
        XCTAssertNil(decode([0xc0]))
    }

    /// Blocks from nghttp2's deflater (a small table, so entries are evicted and indices move;
    /// some names never indexed; values that change now and then, so blocks repeat and stop
    /// repeating) decode to the fields encoded, block after block, with repeats answered from
    /// what was kept.
    func testRepeatedBlocksDecodeAsEncodedWhileTheTableMoves() {
        let scratch = HPACKScratch()
        var seed: UInt64 = 20_261_207
        func next() -> UInt64 {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return seed >> 33
        }
        for tableSize in [256, 4096] {
            let encoder = HPACKTestEncoder(tableSize: tableSize)
            let decoder = HPACKInflater(maxHeaderListSize: 1 << 16)
            var shared = 0
            var last: [[UInt8]: HeadStorage] = [:]
            for _ in 0..<3000 {
                var fields: [(String, String)] = [(":method", ["GET", "POST"][Int(next() % 2)]),
                                                  (":path", "/p\(next() % 4)"), (":authority", "svc")]
                if next() % 2 == 0 { fields.append(("grpc-timeout", "\(next() % 3)m")) }
                if next() % 3 == 0 { fields.append(("x-id", "id-\(next() % 40)")) }
                if next() % 5 == 0 { fields.append(("authorization", "t\(next() % 2)")) }
                fields.append(("date", "d\(next() % 50 == 0 ? next() % 9 : 0)"))
                let block = encoder.encode(fields, neverIndexed: ["authorization"])
                let h = block.withUnsafeBytes { decoder.decode($0, scratch: scratch) }
                XCTAssertEqual(h?.map { [$0.name, $0.value] }, fields.map { [$0.0, $0.1] })
                if let s = h?.buffer, last[block] === s { shared += 1 }
                if let s = h?.buffer { last[block] = s }
            }
            XCTAssertGreaterThan(shared, 20, "table size \(tableSize): repeats were shared")
        }
    }

    /// `valueHasPrefix` answers as the String's `hasPrefix` does, a combining mark after the
    /// prefix included.
    func testValueHasPrefixAnswersAsTheString() {
        for v in ["application/grpc", "application/grpc+proto", "application/grp", "application/grpc\u{301}",
                  "application/grpc\u{301}+proto", "", "x", "Application/grpc", "application/grpcé"] {
            let h: HTTPHeaders = [("x", "1"), ("content-type", v), ("content-type", "application/grpc")]
            XCTAssertEqual(h.valueHasPrefix(exactly: "content-type", "application/grpc"),
                           h.value(exactly: "content-type")!.hasPrefix("application/grpc"), v)
        }
        let none: HTTPHeaders = [("x", "application/grpc")]
        XCTAssertFalse(none.valueHasPrefix(exactly: "content-type", "application/grpc"))
    }
}
