import Foundation
@testable import HopFuzz
import XCTest

/// Every input a fuzzer found a crash with (kept under Inputs/TARGET/) runs through its target
/// again: the fixed crash must stay fixed. Plus a few hand-made inputs per target, so each
/// target's checks run in every test run.
final class FuzzRegressionTests: XCTestCase {
    func inputs(_ target: FuzzTarget) throws -> [(String, [UInt8])] {
        let dir = try XCTUnwrap(Bundle.module.resourceURL).appendingPathComponent("Inputs/\(target.rawValue)")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { !$0.hasPrefix(".") }.sorted()
        return try names.map { ($0, Array(try Data(contentsOf: dir.appendingPathComponent($0)))) }
    }

    func testKeptInputsReplay() throws {
        for target in FuzzTarget.allCases {
            for (name, bytes) in try inputs(target) {
                // A regression stops the test process with the broken promise, after this line.
                print("replaying \(target.rawValue)/\(name)")
                target.run(bytes)
            }
        }
    }

    func testHTTPStreamTargetComparesCuts() {
        // Mode 0 (handshake, FIN), then a request and a response record, a gap, a second request.
        var input: [UInt8] = [0]
        func record(_ dir: UInt8, _ text: String) {
            var b = Array(text.utf8)
            while !b.isEmpty {
                let n = min(b.count, 125)
                let units = UInt8((n - 1) / 4)
                let take = Int(units) * 4 + 1
                input.append(units << 3 | dir)
                input += b.prefix(take)
                b = Array(b.dropFirst(take))
            }
        }
        record(0, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        record(1, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")
        input.append(3 << 3 | 3 << 1 | 1)
        record(0, "GET /b HTTP/1.1\r\n\r\n")
        let events = HTTPStreamFuzz.feed(input.withUnsafeBytes { HTTPStreamFuzz.events($0) }, handshake: true, close: .fin, cuts: nil)
        XCTAssertEqual(events.exchanges.count, 2)
        XCTAssertEqual(events.exchanges.first?.response?.status, 200)
        FuzzTarget.http.run(input)
    }

    /// The http2 target reads its records as frames after the preface: the hand-made input
    /// (scripts/h2-fuzz-seed.py) is two streams, one answered, one reset.
    func testHTTP2TargetReadsFrames() throws {
        let input = try XCTUnwrap(try inputs(.http2).first { $0.0 == "hand-made-get-rst" }).1
        var events = input.withUnsafeBytes { HTTPStreamFuzz.events($0) }
        events.insert(.data(.clientToServer, Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8), 1_000), at: 0)
        let r = HTTPStreamFuzz.feed(events, handshake: true, close: .fin, cuts: nil)
        XCTAssertEqual(r.exchanges.count, 2)
        let one = try XCTUnwrap(r.exchanges.first { $0.http2?.streamID == 1 })
        XCTAssertEqual(one.request?.host, "a")
        XCTAssertEqual(one.response?.status, 200)
        XCTAssertEqual(one.response?.bodyLength, 5)
        let three = try XCTUnwrap(r.exchanges.first { $0.http2?.streamID == 3 })
        XCTAssertEqual(three.request?.host, "a", "the dynamic table entry stream 1 inserted")
        XCTAssertEqual(three.http2?.reset?.codeName, "CANCEL")
        FuzzTarget.http2.run(input)
    }

    func testWireTargetWalksMessages() {
        let stream = Array("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n".utf8)
        let outcome = stream.withUnsafeBytes { WireFuzz.walk($0, isRequest: true, piece: { 2 }) }
        XCTAssertNil(outcome.error)
        XCTAssertEqual(outcome.messages.count, 2)
        XCTAssertEqual(outcome.messages.first?[2], 3, "payload bytes of the chunked body")
        FuzzTarget.wire.run([128] + stream)
    }

    func testNetfilterAndCaptureTargetsRunTheirInputs() {
        let rules = "*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A PREROUTING -p tcp --dport 80 -j REDIRECT --to-ports 15006\nCOMMIT\n"
        FuzzTarget.netfilter.run(Array(rules.utf8))
        FuzzTarget.capture.run(Array("not a capture".utf8))
    }

    /// The capture target reads pcapng with hoptrace's own reader: the bundled pcapng, cut at
    /// every length and with hostile block lengths written over every block length field,
    /// runs through every stage without a trap.
    func testCaptureTargetOnDamagedPcapng() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Captures/ethernet.pcapng")
        let whole = try [UInt8](Data(contentsOf: url))
        XCTAssertEqual(Array(whole.prefix(4)), [0x0A, 0x0D, 0x0D, 0x0A])
        FuzzTarget.capture.run(whole)
        for cut in stride(from: 0, to: whole.count, by: 7) { FuzzTarget.capture.run(Array(whole.prefix(cut))) }
        // Walk the blocks, overwriting each length (at its start, then at its end) with hostile values.
        var offsets: [Int] = []
        var o = 0
        while o + 8 <= whole.count {
            offsets.append(o)
            let len = Int(whole[o + 4]) | Int(whole[o + 5]) << 8 | Int(whole[o + 6]) << 16 | Int(whole[o + 7]) << 24
            guard len >= 12 else { break }
            o += len
        }
        XCTAssertGreaterThan(offsets.count, 40)
        let hostile: [UInt32] = [0, 4, 8, 12, 13, 0x7fff_fffc, 0x8000_0000, 0xffff_fffc, 0xffff_ffff, 16 << 20, (16 << 20) + 4]
        for start in offsets.prefix(8) + offsets.suffix(3) {
            for v in hostile {
                for field in [start + 4, start + 8, start + 20, start + 24] where field + 4 <= whole.count {
                    var b = whole
                    withUnsafeBytes(of: v.littleEndian) { for (k, x) in $0.enumerated() { b[field + k] = x } }
                    FuzzTarget.capture.run(b)
                }
            }
        }
    }
}
