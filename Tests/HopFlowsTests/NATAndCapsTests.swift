import HopCapture
@testable import HopFlows
import HopTestSupport
import XCTest

let POD = "198.18.1.5:43210"
let PROXY = "127.0.0.1:15001"
let REMOTE = "198.18.0.9:80"

final class NATJoinTests: XCTestCase {
    func testJoinOnHandshake() {
        let h = Harness()
        h.seg(POD, PROXY, seq: 1000, SYN)
        h.seg(REMOTE, POD, seq: 5000, ack: 1001, SYNACK)
        h.seg(POD, PROXY, seq: 1001, ack: 5001, ACK)
        let req = "GET / HTTP/1.1\r\nHost: remote\r\n\r\n"  // 32
        h.seg(POD, PROXY, seq: 1001, ack: 5001, PSH, req)
        let resp = "HTTP/1.1 204 No Content\r\n\r\n"  // 27
        h.seg(REMOTE, POD, seq: 5001, ack: 1033, PSH, resp)
        h.seg(POD, PROXY, seq: 1033, ack: 5028, FIN)
        h.seg(REMOTE, POD, seq: 5028, ack: 1034, FIN)
        h.seg(POD, PROXY, seq: 1034, ack: 5029, ACK)
        XCTAssertEqual(h.events.map(\.description), [
            "opened c1",
            "data c1 > \(req.debugDescription) @\(h.time - 4_000_000)-\(h.time - 4_000_000)",
            "data c1 < \(resp.debugDescription) @\(h.time - 3_000_000)-\(h.time - 3_000_000)",
            "closed c1 fin",
        ])
        // Opened already carries the join.
        for c in [h.recorder.opened[1]!, h.recorder.closed[1]!] {
            XCTAssertEqual(c.client, ep(POD))
            XCTAssertEqual(c.server, ep(PROXY))
            XCTAssertEqual(c.replySource, ep(REMOTE))
            XCTAssertEqual(c.originalDestination, ep(REMOTE))
            XCTAssertTrue(c.isNATJoined)
            XCTAssertTrue(c.sawHandshake)
            XCTAssertEqual(c.clientISN, 1000)
            XCTAssertEqual(c.serverISN, 5000)
        }
        XCTAssertEqual(h.recorder.closed[1]![.serverToClient].segments, 3)
        XCTAssertEqual(h.counters.natJoinedHandshake, 1)
        XCTAssertEqual(h.counters.connections, 1)
        XCTAssertEqual(h.counters.oneSidedConnections, 0)
        XCTAssertEqual(h.counters.unjoinedNATHalves, 0)
        XCTAssertEqual(h.counters.segmentsAfterClose, 0)
        XCTAssertEqual(h.counters.gaps, 0)
    }

    func testJoinMidStreamOnSeqAckContinuity() {
        let h = Harness()
        h.seg(POD, PROXY, seq: 1000, ack: 7000, PSH, "GET /a")
        h.seg(REMOTE, POD, seq: 7000, ack: 1006, PSH, "HTTP/1.1 200 OK")
        h.seg(POD, PROXY, seq: 1006, ack: 7015, PSH, "GET /b")
        h.seg(REMOTE, POD, seq: 7015, ack: 1012, PSH, "HTTP/1.1 404 NF")
        h.table.finish()
        XCTAssertEqual(h.counters.connections, 1)
        XCTAssertEqual(h.counters.natJoinedMidStream, 1)
        XCTAssertEqual(h.recorder.stream(1, .clientToServer), "GET /aGET /b")
        XCTAssertEqual(h.recorder.stream(1, .serverToClient), "HTTP/1.1 200 OKHTTP/1.1 404 NF")
        let c = h.recorder.closed[1]!
        XCTAssertFalse(c.sawHandshake)
        XCTAssertEqual(c.client, ep(POD))
        XCTAssertEqual(c.server, ep(PROXY))
        XCTAssertEqual(c.replySource, ep(REMOTE))
        XCTAssertEqual(c.originalDestination, ep(REMOTE))
        XCTAssertEqual(h.counters.gaps, 0)
    }

    func testJoinMidStreamWhenClientOnlyAcks() {
        let h = Harness()
        h.seg(POD, PROXY, seq: 1000, ack: 7000, ACK)  // a download: the client only acknowledges
        h.seg(REMOTE, POD, seq: 7000, ack: 1000, PSH, "chunk1")
        h.seg(POD, PROXY, seq: 1000, ack: 7006, ACK)
        h.seg(REMOTE, POD, seq: 7006, ack: 1000, PSH, "chunk2")
        h.table.finish()
        XCTAssertEqual(h.counters.connections, 1)
        XCTAssertEqual(h.counters.natJoinedMidStream, 1)
        XCTAssertEqual(h.recorder.stream(1, .serverToClient), "chunk1chunk2")
        XCTAssertEqual(h.recorder.closed[1]!.replySource, ep(REMOTE))
        XCTAssertEqual(h.counters.gaps, 0)
    }

    func testJoinMidStreamWhenReplyHalfSeenFirst() {
        let h = Harness()
        h.seg(REMOTE, POD, seq: 7000, ack: 1000, PSH, "HTTP/1.1 200 OK")
        h.seg(POD, PROXY, seq: 1000, ack: 7015, ACK)
        h.seg(POD, PROXY, seq: 1000, ack: 7015, PSH, "GET /b")
        h.seg(REMOTE, POD, seq: 7015, ack: 1006, PSH, "HTTP/1.1 404 NF")
        h.table.finish()
        XCTAssertEqual(h.counters.connections, 1)
        XCTAssertEqual(h.counters.natJoinedMidStream, 1)
        let c = h.recorder.closed[1]!
        XCTAssertEqual(c.client, ep(POD))
        XCTAssertEqual(c.server, ep(PROXY))
        XCTAssertEqual(c.replySource, ep(REMOTE))
        XCTAssertEqual(c.originalDestination, ep(REMOTE))
        XCTAssertEqual(h.recorder.stream(1, .clientToServer), "GET /b")
        XCTAssertEqual(h.recorder.stream(1, .serverToClient), "HTTP/1.1 200 OKHTTP/1.1 404 NF")
    }

    func testSYNACKWithWrongAckIsNotJoined() {
        let h = Harness()
        h.seg(POD, PROXY, seq: 1000, SYN)
        h.seg(REMOTE, POD, seq: 5000, ack: 4242, SYNACK)
        h.table.finish()
        XCTAssertEqual(h.counters.connections, 2)
        XCTAssertEqual(h.counters.natJoinedHandshake + h.counters.natJoinedMidStream, 0)
        XCTAssertNil(h.recorder.closed[1]!.replySource)
        XCTAssertNil(h.recorder.closed[2]!.replySource)
        XCTAssertEqual(h.recorder.closed[2]!.client, ep(POD))  // a SYN-ACK names its destination the client
        XCTAssertEqual(h.recorder.closed[2]!.server, ep(REMOTE))
        XCTAssertEqual(h.counters.oneSidedConnections, 2)
        XCTAssertEqual(h.counters.unjoinedNATHalves, 1)  // POD → 127.0.0.1:15001 without replies
        XCTAssertTrue(h.counters.report.contains { $0.name == "unjoined-nat-halves" && $0.count == 1 })
    }

    func testPlainConnectionIsNeverJoined() {
        let h = Harness()
        let client = "198.18.1.5:43300"
        // A plain connection whose replies come from the expected tuple.
        h.seg(client, REMOTE, seq: 1000, SYN)
        h.seg(REMOTE, client, seq: 5000, ack: 1001, SYNACK)
        h.seg(client, REMOTE, seq: 1001, ack: 5001, PSH, "GET /")
        XCTAssertEqual(h.recorder.opened[1]!.replySource, nil)
        // Another source sends to the same client endpoint with matching seq/ack: not joined.
        h.seg("198.18.0.10:80", client, seq: 5001, ack: 1006, PSH, "HTTP/1.1 200 OK")
        // Nor is a second SYN-ACK with a matching ack from elsewhere.
        h.seg("198.18.0.11:80", client, seq: 9000, ack: 1001, SYNACK)
        h.table.finish()
        XCTAssertEqual(h.counters.connections, 3)
        XCTAssertEqual(h.counters.natJoinedHandshake + h.counters.natJoinedMidStream, 0)
        XCTAssertNil(h.recorder.closed[1]!.replySource)
        XCTAssertEqual(h.recorder.stream(1, .serverToClient), "")
        XCTAssertEqual(h.recorder.stream(2, .serverToClient), "HTTP/1.1 200 OK")
    }

    func testMidStreamReplyWithDiscontinuousAckIsNotJoined() {
        let h = Harness()
        h.seg(POD, PROXY, seq: 1000, ack: 7000, PSH, "GET /a")
        h.seg(REMOTE, POD, seq: 7000, ack: 999_999, PSH, "HTTP/1.1 200 OK")  // ack not in the client's range
        h.seg("198.18.0.12:80", POD, seq: 123_456_789, ack: 1006, PSH, "HTTP/1.1 200 OK")  // seq far from the client's ack
        h.table.finish()
        XCTAssertEqual(h.counters.connections, 3)
        XCTAssertEqual(h.counters.natJoinedMidStream, 0)
    }

    func testJoinDisabled() {
        var cfg = FlowConfiguration()
        cfg.joinNATHalves = false
        let h = Harness(cfg)
        h.seg(POD, PROXY, seq: 1000, SYN)
        h.seg(REMOTE, POD, seq: 5000, ack: 1001, SYNACK)
        h.table.finish()
        XCTAssertEqual(h.counters.connections, 2)
    }
}

final class CapsTests: XCTestCase {
    func handshake(_ h: Harness, client: String = C, server: String = S) {
        h.seg(client, server, seq: 1000, SYN)
        h.seg(server, client, seq: 5000, ack: 1001, SYNACK)
        h.seg(client, server, seq: 1001, ack: 5001, ACK)
    }

    func testPerDirectionBufferCap() {
        var cfg = FlowConfiguration()
        cfg.maxBufferedBytesPerDirection = 8
        let h = Harness(cfg)
        handshake(h)
        h.seg(C, S, seq: 1001, ack: 5001, PSH, "aa")
        h.seg(C, S, seq: 1005, ack: 5001, PSH, "cccc")
        h.seg(C, S, seq: 1011, ack: 5001, PSH, "eeee")
        XCTAssertEqual(h.table.bufferedBytes, 8)
        XCTAssertEqual(h.recorder.stream(1, .clientToServer), "aa")
        h.seg(C, S, seq: 1017, ack: 5001, PSH, "g")  // 9 > 8: give up on the holes
        XCTAssertEqual(h.recorder.stream(1, .clientToServer), "aa[gap 2]cccc[gap 2]eeee[gap 2]g")
        XCTAssertEqual(h.table.bufferedBytes, 0)
        h.seg(C, S, seq: 1018, ack: 5001, PSH, "h")
        // The missing bytes arrive late: already given up, counted as retransmission.
        h.seg(C, S, seq: 1003, ack: 5001, PSH, "bb")
        XCTAssertEqual(h.recorder.stream(1, .clientToServer), "aa[gap 2]cccc[gap 2]eeee[gap 2]gh")
        XCTAssertEqual(h.counters.bufferCapHitsPerDirection, 1)
        XCTAssertEqual(h.counters.gapsCapHit, 3)
        XCTAssertEqual(h.counters.retransmissions, 1)
    }

    func testTotalBufferCap() {
        var cfg = FlowConfiguration()
        cfg.maxBufferedBytesTotal = 10
        let h = Harness(cfg)
        let c2 = "198.18.1.2:40001"
        handshake(h)
        handshake(h, client: c2)
        h.seg(C, S, seq: 1005, ack: 5001, PSH, "111111")
        h.seg(c2, S, seq: 1005, ack: 5001, PSH, "222222")  // 12 > 10: c2 gives up on its hole
        XCTAssertEqual(h.counters.bufferCapHitsTotal, 1)
        XCTAssertEqual(h.table.bufferedBytes, 6)
        XCTAssertEqual(h.recorder.stream(2, .clientToServer), "[gap 4]222222")
        XCTAssertEqual(h.recorder.stream(1, .clientToServer), "")
        h.seg(C, S, seq: 1001, ack: 5001, PSH, "abcd")
        XCTAssertEqual(h.recorder.stream(1, .clientToServer), "abcd111111")
        XCTAssertEqual(h.table.bufferedBytes, 0)
    }

    func testEvictedConnectionFlushesItsBuffer() {
        var cfg = FlowConfiguration()
        cfg.maxConnections = 1
        let h = Harness(cfg)
        handshake(h)
        h.seg(C, S, seq: 1001, ack: 5001, PSH, "ab")
        h.seg(C, S, seq: 1005, ack: 5001, PSH, "ef")
        h.seg("198.18.1.2:40009", S, seq: 1, SYN)
        XCTAssertEqual(h.recorder.stream(1, .clientToServer), "ab[gap 2]ef")
        XCTAssertTrue(h.events.contains(.closed(1, .evicted)))
        XCTAssertEqual(h.table.bufferedBytes, 0)
        XCTAssertEqual(h.table.openConnections, 1)
    }

    func testConnectionTableCap() {
        var cfg = FlowConfiguration()
        cfg.maxConnections = 2
        let h = Harness(cfg)
        h.seg("198.18.1.2:40001", S, seq: 1, SYN)
        h.seg("198.18.1.2:40002", S, seq: 1, SYN)
        h.seg("198.18.1.2:40001", S, seq: 2, ack: 9, PSH, "keep")  // c1 becomes most recent
        h.seg("198.18.1.2:40003", S, seq: 1, SYN)  // evicts c2 (least recently active)
        XCTAssertTrue(h.events.contains(.closed(2, .evicted)))
        XCTAssertEqual(h.counters.tableEvictions, 1)
        XCTAssertEqual(h.table.trackedConnections, 2)
        // A closed connection lingering is dropped first, without an event.
        h.seg(S, "198.18.1.2:40003", seq: 0, ack: 2, RSTACK)
        XCTAssertEqual(h.events.last, .closed(3, .reset(by: .serverToClient)))
        let before = h.events.count
        h.seg("198.18.1.2:40004", S, seq: 1, SYN)
        XCTAssertEqual(h.counters.lingerEvictions, 1)
        XCTAssertEqual(h.counters.tableEvictions, 1)
        XCTAssertEqual(h.events.count, before)
        // Many more: never more than the cap.
        for i in 0..<50 { h.seg("198.18.2.\(i):50000", S, seq: 1, ack: 1, PSH, "x") }
        XCTAssertEqual(h.table.trackedConnections, 2)
        XCTAssertEqual(h.counters.tableEvictions, 51)
        h.table.finish()
        XCTAssertEqual(h.table.trackedConnections, 0)
    }
}

final class RandomizedReassemblyTests: XCTestCase {
    /// Random segmentation, reordering, duplication and re-segmented retransmissions of
    /// consistent bytes, with ISNs near the wrap: the stream comes out exactly once, in order.
    func testShuffledSegmentsReassembleExactly() {
        for round in 0..<40 {
            var rng = SplitMix(state: UInt64(round) &* 7919 &+ 1)
            let size = Int.random(in: 1...6000, using: &rng)
            let data = (0..<size).map { _ in UInt8.random(in: 32...126, using: &rng) }
            let isn = UInt32.max &- UInt32.random(in: 0...8000, using: &rng)
            var pieces: [(Int, Int)] = []
            var i = 0
            while i < size {
                let n = min(size - i, Int.random(in: 1...300, using: &rng))
                pieces.append((i, n))
                i += n
            }
            // Retransmissions with other boundaries.
            for _ in 0..<Int.random(in: 0...10, using: &rng) {
                let a = Int.random(in: 0..<size, using: &rng)
                pieces.append((a, min(size - a, Int.random(in: 1...500, using: &rng))))
            }
            pieces.shuffle(using: &rng)
            let h = Harness()
            h.seg(C, S, seq: isn, SYN)
            h.seg(S, C, seq: 77, ack: isn &+ 1, SYNACK)
            for (a, n) in pieces {
                h.seg(C, S, seq: isn &+ 1 &+ UInt32(a), ack: 78, PSH, bytes: Array(data[a..<(a + n)]))
            }
            let end = isn &+ 1 &+ UInt32(size)
            h.seg(C, S, seq: end, ack: 78, FIN)
            h.seg(S, C, seq: 78, ack: end &+ 1, FIN)
            XCTAssertEqual(h.recorder.stream(1, .clientToServer), String(decoding: data, as: UTF8.self), "round \(round)")
            XCTAssertEqual(h.events.last, .closed(1, .fin), "round \(round)")
            XCTAssertEqual(h.counters.gaps, 0, "round \(round)")
            XCTAssertEqual(h.counters.inconsistentRetransmissions, 0, "round \(round)")
            XCTAssertEqual(h.table.bufferedBytes, 0, "round \(round)")
        }
    }

    /// Many interleaved in-order connections: a rough throughput figure (printed) and no leaks
    /// of buffered bytes or table entries.
    func testManyConnectionsInOrderThroughput() {
        final class Sink: StreamEventConsumer {
            var bytes = 0
            func handle(_ event: StreamEvent) { if case .data(_, _, let b, _, _) = event { bytes += b.count } }
        }
        let sink = Sink()
        let table = ConnectionTable(consumer: sink)
        let payload = [UInt8](repeating: 0x41, count: 1400)
        let conns = 1000, rounds = 100
        var t: Int64 = 1_000_000_000_000
        var packet = 0
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            payload.withUnsafeBytes { p in
                for r in 0..<rounds {
                    for c in 0..<conns {
                        t += 1000
                        packet += 1
                        let client = Endpoint(IPAddress(ipv4: 0xC612_0100 | UInt32(c % 200)), UInt16(30000 + c))
                        let server = Endpoint(IPAddress(ipv4: 0xC612_0009), 80)
                        let seq = UInt32(1000 + r * 1400)
                        let s = TCPSegment(timestamp: t, packetIndex: packet, ipVersion: 4, source: client,
                                           destination: server, sequenceNumber: seq, acknowledgementNumber: 1,
                                           flags: [.ack, .psh], ipIdentification: UInt16(truncatingIfNeeded: packet),
                                           payload: p)
                        table.process(s)
                    }
                }
            }
        }
        table.finish()
        XCTAssertEqual(sink.bytes, conns * rounds * 1400)
        XCTAssertEqual(table.bufferedBytes, 0)
        XCTAssertEqual(table.trackedConnections, 0)
        print("HopFlows: \(conns * rounds) segments in \(elapsed)")
    }
}

final class FuzzTests: XCTestCase {
    /// Random segments (flags, seq/ack near a few bases or anywhere, truncation, duplicates,
    /// NAT-like tuples) must never crash, keep buffers within their caps, and leave nothing
    /// behind after `finish()`; the recorder checks event order (opened first, closed once).
    func testRandomSegmentsKeepInvariants() {
        var rng = SplitMix(state: 42)
        var cfg = FlowConfiguration()
        cfg.maxBufferedBytesPerDirection = 3000
        cfg.maxBufferedBytesTotal = 8000
        cfg.maxConnections = 6
        cfg.idleTimeout = 2_000_000_000
        cfg.closedLingerTimeout = 500_000_000
        let h = Harness(cfg)
        let endpoints = [POD, PROXY, REMOTE, C, S, "198.18.1.5:43211", "[2001:db8::1]:80", "[2001:db8::2]:5000"]
        let bases: [UInt32] = [0, 1000, 5000, 0xFFFF_FF00, 0x8000_0000]
        let flagChoices: [TCPFlags] = [SYN, SYNACK, ACK, PSH, FIN, RST, RSTACK, [.fin, .psh, .ack], [.syn, .fin], []]
        var last: (String, String, UInt32, UInt32, TCPFlags, [UInt8], UInt16)?
        for i in 0..<30_000 {
            if let l = last, Int.random(in: 0..<10, using: &rng) == 0 {
                // A copy at another capture point.
                h.seg(l.0, l.1, seq: l.2, ack: l.3, l.4, bytes: l.5, at: h.time + 1000, ipID: l.6, iface: 7)
                continue
            }
            var a = endpoints.randomElement(using: &rng)!
            var b = endpoints.randomElement(using: &rng)!
            if a == b { continue }
            if a.hasPrefix("[") != b.hasPrefix("[") { a = C; b = S }
            let seq = bases.randomElement(using: &rng)! &+ UInt32.random(in: 0...6000, using: &rng)
                &+ (Int.random(in: 0..<50, using: &rng) == 0 ? UInt32.random(in: 0...UInt32.max, using: &rng) : 0)
            let ack = bases.randomElement(using: &rng)! &+ UInt32.random(in: 0...6000, using: &rng)
            let flags = flagChoices.randomElement(using: &rng)!
            let n = Int.random(in: 0..<4, using: &rng) == 0 ? 0 : Int.random(in: 1...1400, using: &rng)
            let bytes = [UInt8](repeating: UInt8(65 + i % 26), count: n)
            let length: Int? = Int.random(in: 0..<20, using: &rng) == 0 ? n + Int.random(in: 1...500, using: &rng) : nil
            let step = Int64.random(in: 0...(i % 1000 == 0 ? 3_000_000_000 : 2_000_000), using: &rng)
            let id = UInt16.random(in: 0...UInt16.max, using: &rng)
            h.seg(a, b, seq: seq, ack: ack, flags, bytes: bytes, length: length, at: h.time + step, ipID: id,
                  iface: Int32.random(in: 1...3, using: &rng))
            last = (a, b, seq, ack, flags, bytes, id)
            XCTAssertGreaterThanOrEqual(h.table.bufferedBytes, 0)
            XCTAssertLessThanOrEqual(h.table.bufferedBytes, cfg.maxBufferedBytesTotal + 1400)
            XCTAssertLessThanOrEqual(h.table.trackedConnections, cfg.maxConnections)
        }
        h.table.finish()
        XCTAssertEqual(h.table.bufferedBytes, 0)
        XCTAssertEqual(h.table.trackedConnections, 0)
        XCTAssertEqual(Set(h.recorder.opened.keys), Set(h.recorder.closed.keys))
        // Stats agree with events: delivered bytes and gap bytes per connection direction.
        var delivered: [Int: Int] = [:], gaps: [Int: Int] = [:]
        for e in h.events {
            switch e {
            case .data(let c, let d, let s, _, _): delivered[c * 2 + d.rawValue, default: 0] += s.utf8.count
            case .gap(let c, let d, let n):
                gaps[c * 2 + d.rawValue, default: 0] += n
                XCTAssertLessThanOrEqual(n, 1 << 30)
            default: break
            }
        }
        for (id, c) in h.recorder.closed {
            for d in [FlowDirection.clientToServer, .serverToClient] {
                XCTAssertEqual(c[d].bytes, delivered[id * 2 + d.rawValue] ?? 0)
                XCTAssertEqual(c[d].gapBytes, gaps[id * 2 + d.rawValue] ?? 0)
            }
        }
        XCTAssertGreaterThan(h.counters.connections, 100)
        print("fuzz counters:", h.counters.report.map { "\($0.name)=\($0.count)" }.joined(separator: " "))
    }
}
