import XCTest
@testable import HopCapture
import HopTestSupport

final class DecoderTests: XCTestCase {
    let http = Array("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)

    func testEthernetIPv4TCPFieldsAndOptions() throws {
        let opts: [UInt8] = [2, 4, 0x05, 0xb4, 4, 2, 8, 10] + PB.u32(111) + PB.u32(222) + [1, 3, 3, 7]
        let pkt = PB.ethernet(payload: PB.ipv4(id: 0x1234, ttl: 63, payload: PB.tcp(sport: 45678, dport: 80, seq: 0xfffffff0, ack: 5, flags: 0x12, window: 29200, options: opts, payload: http)))
        let r = decodeOne(pkt, linkType: .ethernet)
        let s = try XCTUnwrap(r.segment)
        XCTAssertEqual(s.source.description, "198.18.0.1:45678")
        XCTAssertEqual(s.destination.description, "198.18.0.2:80")
        XCTAssertEqual(s.sequenceNumber, 0xfffffff0)
        XCTAssertEqual(s.acknowledgementNumber, 5)
        XCTAssertEqual(s.flags, [.syn, .ack])
        XCTAssertEqual(s.window, 29200)
        XCTAssertEqual(s.options.mss, 1460)
        XCTAssertTrue(s.options.sackPermitted)
        XCTAssertEqual(s.options.timestampValue, 111)
        XCTAssertEqual(s.options.timestampEcho, 222)
        XCTAssertEqual(s.options.windowScale, 7)
        XCTAssertEqual(s.ipIdentification, 0x1234)
        XCTAssertEqual(s.ttl, 63)
        XCTAssertEqual(s.ipVersion, 4)
        XCTAssertEqual(r.payload, http)
        XCTAssertFalse(s.isTruncated)
        XCTAssertEqual(s.timestamp, 1_700_000_000_123_456_789)
        XCTAssertEqual(r.counters.tcpSegments, 1)
        XCTAssertTrue(r.counters.isBalanced)
    }

    func testEthernetPaddingIsTrimmedByIPTotalLength() throws {
        // A bare ACK is 54 bytes; Ethernet pads it to 60. The padding must not become payload.
        let pkt = PB.ethernet(payload: PB.ipv4(payload: PB.tcp(flags: 0x10)), pad: 6)
        XCTAssertEqual(pkt.count, 60)
        let r = decodeOne(pkt, linkType: .ethernet)
        XCTAssertEqual(r.segment?.payloadLength, 0)
        XCTAssertEqual(r.payload, [])
        XCTAssertEqual(r.segment?.isTruncated, false)
    }

    func testIPv4OptionsAreSkipped() throws {
        let pkt = PB.ethernet(payload: PB.ipv4(options: [0x94, 0x04, 0, 0], payload: PB.tcp(payload: http)))  // router alert
        let r = decodeOne(pkt, linkType: .ethernet)
        XCTAssertEqual(r.segment?.destination.port, 80)
        XCTAssertEqual(r.payload, http)
    }

    func testVLANAndQinQ() throws {
        let inner = PB.ipv4(payload: PB.tcp(payload: http))
        let one = decodeOne(PB.ethernet(vlans: [(0x8100, 100)], payload: inner), linkType: .ethernet)
        XCTAssertEqual(one.payload, http)
        let two = decodeOne(PB.ethernet(vlans: [(0x88a8, 200), (0x8100, 100)], payload: inner), linkType: .ethernet)
        XCTAssertEqual(two.payload, http)
        let cut = decodeOne(Array(PB.ethernet(vlans: [(0x8100, 100)], payload: [])[0..<15]), linkType: .ethernet)
        XCTAssertNil(cut.segment)
        XCTAssertEqual(cut.counters[.vlanTagTooShort].count, 1)
    }

    func testLinuxCookedV1DirectionAndV2InterfaceIndex() throws {
        let ip = PB.ipv4(payload: PB.tcp(payload: http))
        let v1 = decodeOne(PB.sll(packetType: 4, payload: ip), linkType: .linuxSLL)
        XCTAssertEqual(v1.segment?.direction, .outgoing)
        XCTAssertNil(v1.segment?.interfaceIndex)
        XCTAssertEqual(v1.payload, http)
        let v2 = decodeOne(PB.sll2(ifindex: 7, packetType: 0, payload: ip), linkType: .linuxSLL2)
        XCTAssertEqual(v2.segment?.direction, .incoming)
        XCTAssertEqual(v2.segment?.interfaceIndex, 7)
        XCTAssertEqual(v2.payload, http)
        let v2v6 = decodeOne(PB.sll2(proto: 0x86dd, payload: PB.ipv6(payload: PB.tcp(payload: http))), linkType: .linuxSLL2)
        XCTAssertEqual(v2v6.segment?.ipVersion, 6)
        XCTAssertEqual(decodeOne(Array(PB.sll2(payload: [])[0..<19]), linkType: .linuxSLL2).counters[.linkHeaderTooShort].count, 1)
        XCTAssertEqual(decodeOne(Array(PB.sll(payload: [])[0..<10]), linkType: .linuxSLL).counters[.linkHeaderTooShort].count, 1)
    }

    func testNullAndLoopInBothByteOrders() throws {
        let ip4 = PB.ipv4(payload: PB.tcp(payload: http))
        let ip6 = PB.ipv6(payload: PB.tcp(payload: http))
        let le4: [UInt8] = [2, 0, 0, 0], be4: [UInt8] = [0, 0, 0, 2]
        let le6: [UInt8] = [30, 0, 0, 0], be6: [UInt8] = [0, 0, 0, 30], linux6: [UInt8] = [10, 0, 0, 0]
        XCTAssertEqual(decodeOne(le4 + ip4, linkType: .null).payload, http)
        XCTAssertEqual(decodeOne(be4 + ip4, linkType: .null).payload, http)
        XCTAssertEqual(decodeOne(le6 + ip6, linkType: .null).segment?.ipVersion, 6)
        XCTAssertEqual(decodeOne(be6 + ip6, linkType: .null).segment?.ipVersion, 6)
        XCTAssertEqual(decodeOne(linux6 + ip6, linkType: .null).segment?.ipVersion, 6)
        XCTAssertEqual(decodeOne(be4 + ip4, linkType: .loop).payload, http)
        XCTAssertEqual(decodeOne(be6 + ip6, linkType: .loop).segment?.ipVersion, 6)
        let other = decodeOne([0, 0, 0, 7] + ip4, linkType: .loop)
        XCTAssertNil(other.segment)
        XCTAssertEqual(other.counters.nonIP.count, 1)
    }

    func testRawIPv4AndIPv6LinkTypes() throws {
        let ip4 = PB.ipv4(payload: PB.tcp(payload: http))
        let ip6 = PB.ipv6(payload: PB.tcp(payload: http))
        XCTAssertEqual(decodeOne(ip4, linkType: .raw).segment?.ipVersion, 4)
        XCTAssertEqual(decodeOne(ip6, linkType: .raw).segment?.ipVersion, 6)
        XCTAssertEqual(decodeOne(ip4, linkType: .ipv4).payload, http)
        XCTAssertEqual(decodeOne(ip6, linkType: .ipv6).payload, http)
        let bad = decodeOne([0x50] + ip4.dropFirst(), linkType: .raw)
        XCTAssertEqual(bad.counters[.rawBadVersion].count, 1)
    }

    func testIPv6ExtensionHeaderChain() throws {
        // hop-by-hop (8) → routing (8) → destination options (16) → TCP
        let hbh: [UInt8] = [43, 0, 1, 4, 0, 0, 0, 0]
        let rt: [UInt8] = [60, 0, 0, 0, 0, 0, 0, 0]
        let dst: [UInt8] = [6, 1] + [UInt8](repeating: 1, count: 14)
        let pkt = PB.ipv6(next: 0, extensions: hbh + rt + dst, payload: PB.tcp(dport: 8080, payload: http))
        let r = decodeOne(pkt, linkType: .ipv6)
        let s = try XCTUnwrap(r.segment)
        XCTAssertEqual(s.destination.port, 8080)
        XCTAssertEqual(s.source.address.description, "2001:2::1")
        XCTAssertEqual(s.destination.description, "[2001:2::2]:8080")
        XCTAssertEqual(r.payload, http)
        // An extension header that claims more bytes than the payload has: malformed.
        let bad = PB.ipv6(next: 0, payloadLength: 8, extensions: [6, 3, 0, 0, 0, 0, 0, 0], payload: [])
        XCTAssertEqual(decodeOne(bad, linkType: .ipv6).counters[.ipv6ExtensionHeaderTruncated].count, 1)
    }

    /// Decodes packets with one decoder: (bytes, capture time in seconds) each, index 1, 2, …
    func decodeAll(_ packets: [([UInt8], Int64)], linkType: LinkType) -> (segments: [(index: Int, payload: [UInt8], segment: TCPSegment)], counters: DecodeCounters) {
        var d = PacketDecoder(linkType: linkType)
        var out: [(Int, [UInt8], TCPSegment)] = []
        for (i, (bytes, seconds)) in packets.enumerated() {
            bytes.withUnsafeBytes { buf in
                if let seg = d.decode(RawPacket(timestamp: seconds * 1_000_000_000, wireLength: bytes.count, bytes: buf, index: i + 1)) {
                    out.append((i + 1, Array(seg.payload), seg))
                }
            }
        }
        return (out, d.counters)
    }

    /// A body long enough to need several fragments.
    var longRequest: [UInt8] { Array("GET /convert?partner=29 HTTP/1.1\r\nHost: js.example\r\nUser-Agent: test\r\n\r\n".utf8) }

    /// The IP payload (TCP header and data) cut into 16-byte fragments: (offset, bytes, more).
    func pieces(_ ipPayload: [UInt8]) -> [(Int, [UInt8], Bool)] {
        stride(from: 0, to: ipPayload.count, by: 16).map { o in
            (o, Array(ipPayload[o..<min(o + 16, ipPayload.count)]), o + 16 < ipPayload.count)
        }
    }

    func testIPv4FragmentsReassembledOutOfOrderWithAnOverlap() throws {
        let whole = PB.tcp(seq: 77, payload: longRequest)
        let frags = pieces(whole).map { o, bytes, more in
            PB.ethernet(payload: PB.ipv4(id: 0x99, fragment: UInt16(o / 8) | (more ? 0x2000 : 0), payload: bytes))
        }
        XCTAssertGreaterThan(frags.count, 4)
        // The last fragment first, then the others backwards, one of them twice (an overlap).
        var order = Array(frags.reversed())
        order.insert(frags[1], at: 2)
        let (segments, counters) = decodeAll(order.map { ($0, 5) }, linkType: .ethernet)
        XCTAssertEqual(segments.count, 1)
        let s = try XCTUnwrap(segments.first)
        XCTAssertEqual(s.index, order.count, "delivered at the fragment that completed the segment")
        XCTAssertEqual(s.payload, longRequest)
        XCTAssertEqual(s.segment.payloadLength, longRequest.count)
        XCTAssertEqual(s.segment.sequenceNumber, 77)
        XCTAssertEqual(s.segment.ipIdentification, 0x99)
        XCTAssertTrue(s.segment.isReassembled)
        XCTAssertFalse(s.segment.isTruncated)
        XCTAssertEqual(counters.fragmentsHeld.count, order.count - 1)
        XCTAssertEqual(counters.reassembledSegments, CountWithFirst(count: 1, firstPacket: order.count))
        XCTAssertEqual(counters.pendingDatagrams, 0)
        XCTAssertTrue(counters.isBalanced)
        // Two datagrams interleaved (another identification) are kept apart.
        let other = pieces(whole).map { o, bytes, more in
            PB.ethernet(payload: PB.ipv4(id: 0x9a, fragment: UInt16(o / 8) | (more ? 0x2000 : 0), payload: bytes))
        }
        let mixed = zip(frags, other).flatMap { [$0.0, $0.1] }
        let two = decodeAll(mixed.map { ($0, 5) }, linkType: .ethernet)
        XCTAssertEqual(two.segments.map(\.payload), [longRequest, longRequest])
        XCTAssertEqual(two.segments.map(\.segment.ipIdentification), [0x99, 0x9a])
    }

    func testIPv6FragmentsReassembled() throws {
        let whole = PB.tcp(dport: 8080, payload: longRequest)
        let frags = pieces(whole).map { o, bytes, more in
            PB.ipv6(next: 44, extensions: [6, 0] + PB.u16(UInt16(o / 8) << 3 | (more ? 1 : 0)) + PB.u32(4242), payload: bytes)
        }
        let (segments, counters) = decodeAll(frags.map { ($0, 1) }, linkType: .ipv6)
        XCTAssertEqual(segments.count, 1)
        XCTAssertEqual(segments.first?.payload, longRequest)
        XCTAssertEqual(segments.first?.segment.destination.description, "[2001:2::2]:8080")
        XCTAssertEqual(counters.fragmentsHeld.count, frags.count - 1)
        XCTAssertTrue(counters.isBalanced)
    }

    func testIPv6FragmentsWithDestinationOptionsBeforeTCPReassembled() throws {
        // The fragmentable part starts with a destination-options header (16 bytes), then TCP:
        // every fragment's header names destination options (60), only the whole says TCP.
        let options: [UInt8] = [6, 1] + [UInt8](repeating: 1, count: 14)
        let whole = options + PB.tcp(dport: 8080, payload: longRequest)
        func fragments(_ part: [UInt8], id: UInt32) -> [[UInt8]] {
            pieces(part).map { o, bytes, more in
                PB.ipv6(next: 44, extensions: [60, 0] + PB.u16(UInt16(o / 8) << 3 | (more ? 1 : 0)) + PB.u32(id), payload: bytes)
            }
        }
        let frags = fragments(whole, id: 7)
        let (segments, counters) = decodeAll(frags.reversed().map { ($0, 1) }, linkType: .ipv6)
        XCTAssertEqual(segments.count, 1)
        let s = try XCTUnwrap(segments.first)
        XCTAssertEqual(s.payload, longRequest)
        XCTAssertEqual(s.index, frags.count)
        XCTAssertEqual(s.segment.destination.description, "[2001:2::2]:8080")
        XCTAssertTrue(s.segment.isReassembled)
        XCTAssertEqual(counters.fragmentsHeld.count, frags.count - 1)
        XCTAssertEqual(counters.reassembledSegments.count, 1)
        XCTAssertTrue(counters.isBalanced)
        // Destination options before UDP: reassembled, then counted as UDP, not delivered.
        let udp = [17, 1] + [UInt8](repeating: 1, count: 14) + [UInt8](repeating: 0, count: 40)
        let u = decodeAll(fragments(udp, id: 8).map { ($0, 1) }, linkType: .ipv6)
        XCTAssertTrue(u.segments.isEmpty)
        XCTAssertEqual(u.counters.udp.count, 1)
        XCTAssertEqual(u.counters.reassembledSegments.count, 0)
        XCTAssertTrue(u.counters.isBalanced)
        // Options claiming more bytes than the reassembled datagram: malformed at the last fragment.
        let lying: [UInt8] = [6, 9] + [UInt8](repeating: 1, count: 30)
        let m = decodeAll(fragments(lying, id: 9).map { ($0, 1) }, linkType: .ipv6)
        XCTAssertTrue(m.segments.isEmpty)
        XCTAssertEqual(m.counters[.ipv6ExtensionHeaderTruncated].count, 1)
        XCTAssertTrue(m.counters.isBalanced)
    }

    func testFragmentsThatNeverCompleteAreGivenUpAndReported() throws {
        let whole = PB.tcp(payload: longRequest)
        let ps = pieces(whole)
        func frag(_ i: Int, id: UInt16) -> [UInt8] {
            let (o, bytes, more) = ps[i]
            return PB.ethernet(payload: PB.ipv4(id: id, fragment: UInt16(o / 8) | (more ? 0x2000 : 0), payload: bytes))
        }
        // Datagram 1 loses its second fragment; 31 s later datagram 2 starts (and stays open).
        let packets: [([UInt8], Int64)] = [(frag(0, id: 1), 10), (frag(2, id: 1), 10), (frag(ps.count - 1, id: 1), 11),
                                          (frag(0, id: 2), 42)]
        let (segments, counters) = decodeAll(packets, linkType: .ethernet)
        XCTAssertTrue(segments.isEmpty)
        XCTAssertEqual(counters.incompleteDatagrams, CountWithFirst(count: 1, firstPacket: 1))
        XCTAssertEqual(counters.pendingDatagrams, 1)
        XCTAssertEqual(counters.pendingFirstPacket, 4)
        XCTAssertTrue(counters.isBalanced)
        let line = try XCTUnwrap(counters.report.first { $0.name == "ip-fragments-incomplete" })
        XCTAssertEqual(line.count, 2)
        XCTAssertEqual(line.firstPacket, 1)
        // A fragment cut by snaplen leaves a gap: the segment never completes.
        let cutFirst = frag(0, id: 3)
        var d = PacketDecoder(linkType: .ethernet)
        var delivered = 0
        for (i, (bytes, wire)) in [(Array(cutFirst[0..<(cutFirst.count - 6)]), cutFirst.count), (frag(1, id: 3), 0)].enumerated() {
            bytes.withUnsafeBytes { buf in
                if d.decode(RawPacket(timestamp: 1, wireLength: wire == 0 ? bytes.count : wire, bytes: buf, index: i + 1)) != nil { delivered += 1 }
            }
        }
        for i in 2..<ps.count {
            frag(i, id: 3).withUnsafeBytes { buf in
                if d.decode(RawPacket(timestamp: 1, wireLength: buf.count, bytes: buf, index: i + 1)) != nil { delivered += 1 }
            }
        }
        XCTAssertEqual(delivered, 0)
        XCTAssertEqual(d.counters.pendingDatagrams, 1)
    }

    func testFragmentsPast64KiBAreMalformedAndOtherProtocolsSkipped() throws {
        let past = PB.ethernet(payload: PB.ipv4(fragment: 8190, payload: [UInt8](repeating: 0x41, count: 24)))
        let r = decodeOne(past, linkType: .ethernet)
        XCTAssertNil(r.segment)
        XCTAssertEqual(r.counters[.ipFragmentBadLength].count, 1)
        XCTAssertTrue(r.counters.isBalanced)
        // UDP fragments are not reassembled: the first counts as UDP, the others are skipped.
        let udpFirst = decodeOne(PB.ethernet(payload: PB.ipv4(proto: 17, fragment: 0x2000, payload: [UInt8](repeating: 0, count: 16))), linkType: .ethernet)
        XCTAssertEqual(udpFirst.counters.udp.count, 1)
        let udpLater = decodeOne(PB.ethernet(payload: PB.ipv4(proto: 17, fragment: 0x0002, payload: http)), linkType: .ethernet, index: 9)
        XCTAssertEqual(udpLater.counters.fragmentsSkipped, CountWithFirst(count: 1, firstPacket: 9))
        let v6udp = decodeOne(PB.ipv6(next: 44, extensions: [17, 0, 0, 0x11] + PB.u32(5), payload: http), linkType: .ipv6)
        XCTAssertEqual(v6udp.counters.fragmentsSkipped.count, 1)
        // A later fragment alone is held, not delivered.
        let alone = decodeOne(PB.ethernet(payload: PB.ipv4(fragment: 0x0003, payload: http)), linkType: .ethernet)
        XCTAssertNil(alone.segment)
        XCTAssertEqual(alone.counters.fragmentsHeld.count, 1)
        XCTAssertEqual(alone.counters.pendingDatagrams, 1)
    }

    func testReassemblerBoundsAndReusedIdentifications() {
        let r = FragmentReassembler()
        let a = IPAddress(ipv4: 1), b = IPAddress(ipv4: 2)
        let bytes: [UInt8] = Array(repeating: 7, count: 8)
        var gaveUp: [Int] = []
        bytes.withUnsafeBytes { data in
            // More open datagrams than the cap: the oldest are given up, first in first out.
            for i in 0..<(FragmentReassembler.maxDatagrams + 3) {
                let key = FragmentReassembler.Key(source: a, destination: b, id: UInt32(i), ipv6: false)
                guard case .held = r.add(key, offset: 0, data: data, announced: 8, last: false, timestamp: 1, packet: i + 1, gaveUp: { gaveUp.append($0) }) else {
                    return XCTFail("fragment \(i) not held")
                }
            }
        }
        XCTAssertEqual(gaveUp, [1, 2, 3])
        XCTAssertEqual(r.pending.count, FragmentReassembler.maxDatagrams)
        XCTAssertEqual(r.pending.firstPacket, 4)
        // An identification used again after its datagram completed starts a new datagram,
        // which ages from its own first fragment.
        let r2 = FragmentReassembler()
        let key = FragmentReassembler.Key(source: a, destination: b, id: 9, ipv6: false)
        var lost: [Int] = []
        bytes.withUnsafeBytes { data in
            _ = r2.add(key, offset: 8, data: data, announced: 8, last: true, timestamp: 0, packet: 1) { lost.append($0) }
            guard case .complete(let whole) = r2.add(key, offset: 0, data: data, announced: 8, last: false, timestamp: 0, packet: 2, gaveUp: { lost.append($0) }) else {
                return XCTFail("not completed")
            }
            XCTAssertEqual(Array(whole), bytes + bytes)
            _ = r2.add(key, offset: 0, data: data, announced: 8, last: false, timestamp: 20_000_000_000, packet: 3) { lost.append($0) }
            _ = r2.add(key, offset: 16, data: data, announced: 8, last: false, timestamp: 45_000_000_000, packet: 4) { lost.append($0) }
        }
        XCTAssertEqual(lost, [], "25 s after its first fragment the new datagram is still waiting")
        XCTAssertEqual(r2.pending.count, 1)
        XCTAssertEqual(r2.pending.firstPacket, 3)
    }

    func testRangeMerging() {
        var r: [Range<Int>] = []
        FragmentReassembler.insert(16..<32, into: &r)
        FragmentReassembler.insert(48..<64, into: &r)
        XCTAssertEqual(r, [16..<32, 48..<64])
        FragmentReassembler.insert(0..<8, into: &r)
        XCTAssertEqual(r, [0..<8, 16..<32, 48..<64])
        FragmentReassembler.insert(8..<50, into: &r)
        XCTAssertEqual(r, [0..<64])
    }

    func testSnaplenTruncationKeepsKnownBytes() throws {
        let full = PB.ethernet(payload: PB.ipv4(payload: PB.tcp(payload: http)))
        let cut = Array(full[0..<(14 + 20 + 20 + 10)])
        let r = decodeOne(cut, linkType: .ethernet, wireLength: full.count)
        let s = try XCTUnwrap(r.segment)
        XCTAssertTrue(s.isTruncated)
        XCTAssertEqual(s.payloadLength, http.count)
        XCTAssertEqual(r.payload, Array(http[0..<10]))
        XCTAssertEqual(r.counters.truncatedPayload.count, 1)
        // Cut inside the TCP header: counted as truncated headers, not malformed.
        let cutHeader = Array(full[0..<(14 + 20 + 8)])
        let r2 = decodeOne(cutHeader, linkType: .ethernet, wireLength: full.count)
        XCTAssertNil(r2.segment)
        XCTAssertEqual(r2.counters.truncatedHeaders.count, 1)
        XCTAssertEqual(r2.counters.malformedTotal, 0)
    }

    func testNonIPAndOtherProtocolsAreCounted() throws {
        let arp = decodeOne(PB.ethernet(type: 0x0806, payload: [UInt8](repeating: 0, count: 28)), linkType: .ethernet)
        XCTAssertEqual(arp.counters.nonIP.count, 1)
        let udp = decodeOne(PB.ethernet(payload: PB.ipv4(proto: 17, payload: [0, 53, 0, 53, 0, 8, 0, 0])), linkType: .ethernet)
        XCTAssertEqual(udp.counters.udp.count, 1)
        let icmp = decodeOne(PB.ethernet(payload: PB.ipv4(proto: 1, payload: [8, 0, 0, 0])), linkType: .ethernet)
        XCTAssertEqual(icmp.counters.icmp.count, 1)
        let icmp6 = decodeOne(PB.ipv6(next: 58, payload: [128, 0, 0, 0]), linkType: .ipv6)
        XCTAssertEqual(icmp6.counters.icmp.count, 1)
        let gre = decodeOne(PB.ethernet(payload: PB.ipv4(proto: 47, payload: [0, 0, 8, 0])), linkType: .ethernet)
        XCTAssertEqual(gre.counters.otherIPProtocol.count, 1)
        for r in [arp, udp, icmp, icmp6, gre] { XCTAssertTrue(r.counters.isBalanced) }
    }

    func testEveryMalformedCaseIsCountedByReason() throws {
        let tcp = PB.tcp(payload: http)
        let cases: [(String, [UInt8], LinkType, MalformedReason)] = [
            ("ethernet too short", [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], .ethernet, .linkHeaderTooShort),
            ("null too short", [2, 0], .null, .linkHeaderTooShort),
            ("ipv4 header too short", PB.ethernet(payload: [0x45, 0, 0, 40, 0, 0]), .ethernet, .ipv4HeaderTooShort),
            ("ipv4 bad version", PB.ethernet(payload: PB.ipv4(version: 5, payload: tcp)), .ethernet, .ipv4BadVersion),
            ("ipv4 ihl < 5", PB.ethernet(payload: PB.ipv4(ihlWords: 4, payload: tcp)), .ethernet, .ipv4BadHeaderLength),
            ("ipv4 total length < header", PB.ethernet(payload: PB.ipv4(totalLength: 12, payload: tcp)), .ethernet, .ipv4TotalLengthTooSmall),
            ("ipv6 header too short", PB.ethernet(type: 0x86dd, payload: [0x60, 0, 0, 0]), .ethernet, .ipv6HeaderTooShort),
            ("ipv6 bad version", PB.ipv6(version: 4, payload: tcp), .ipv6, .ipv6BadVersion),
            ("tcp header too short", PB.ethernet(payload: PB.ipv4(payload: Array(tcp[0..<12]))), .ethernet, .tcpHeaderTooShort),
            ("tcp data offset < 5", PB.ethernet(payload: PB.ipv4(payload: PB.tcp(dataOffsetWords: 3, payload: http))), .ethernet, .tcpBadDataOffset),
            ("tcp data offset past segment", PB.ethernet(payload: PB.ipv4(payload: PB.tcp(dataOffsetWords: 15))), .ethernet, .tcpBadDataOffset),
        ]
        for (name, bytes, lt, reason) in cases {
            let r = decodeOne(bytes, linkType: lt, index: 5)
            XCTAssertNil(r.segment, name)
            XCTAssertEqual(r.counters[reason], CountWithFirst(count: 1, firstPacket: 5), name)
            XCTAssertEqual(r.counters.malformedTotal, 1, name)
            XCTAssertTrue(r.counters.isBalanced, name)
        }
    }

    func testKeptMalformedCases() throws {
        // A bad option length: the segment is kept, the options after it ignored.
        let badOpt = PB.ethernet(payload: PB.ipv4(payload: PB.tcp(options: [2, 4, 0x05, 0xb4, 8, 40, 0, 0], payload: http)))
        let r = decodeOne(badOpt, linkType: .ethernet)
        XCTAssertEqual(r.segment?.options.mss, 1460)
        XCTAssertEqual(r.counters[.tcpBadOption].count, 1)
        XCTAssertEqual(r.payload, http)
        XCTAssertTrue(r.counters.isBalanced)
        // IPv4 total length beyond a complete frame: known bytes used, counted.
        let long = PB.ethernet(payload: PB.ipv4(totalLength: 20 + 20 + http.count + 100, payload: PB.tcp(payload: http)))
        let r2 = decodeOne(long, linkType: .ethernet)
        XCTAssertEqual(r2.payload, http)
        XCTAssertEqual(r2.segment?.isTruncated, true)
        XCTAssertEqual(r2.counters[.ipv4TotalLengthBeyondFrame].count, 1)
    }

    func testUnsupportedLinkTypeIsCounted() {
        let r = decodeOne([1, 2, 3, 4], linkType: LinkType(rawValue: 105))  // IEEE802_11
        XCTAssertNil(r.segment)
        XCTAssertEqual(r.counters.unsupportedLinkType.count, 1)
        XCTAssertFalse(LinkType(rawValue: 105).isSupported)
        XCTAssertEqual(LinkType(rawValue: 105).name, "IEEE802_11")
        XCTAssertTrue(CaptureError.unsupportedLinkType(LinkType(rawValue: 105)).description.contains("IEEE802_11"))
    }

    func testTSOZeroTotalLengthUsesCapturedBytes() throws {
        let pkt = PB.ethernet(payload: PB.ipv4(totalLength: 0, payload: PB.tcp(payload: http)))
        let r = decodeOne(pkt, linkType: .ethernet)
        XCTAssertEqual(r.payload, http)
    }
}

final class AddressTests: XCTestCase {
    func testParseAndFormat() {
        XCTAssertEqual(IPAddress("198.18.0.1")?.description, "198.18.0.1")
        XCTAssertNil(IPAddress("198.18.0.256"))
        XCTAssertEqual(IPAddress("::1")?.description, "::1")
        XCTAssertEqual(IPAddress("2001:db8:0:0:1:0:0:1")?.description, "2001:db8::1:0:0:1")
        XCTAssertEqual(IPAddress("::ffff:127.0.0.1")?.description, "::ffff:127.0.0.1")
        XCTAssertEqual(IPAddress("fe80::")?.description, "fe80::")
        XCTAssertNil(IPAddress("1::2::3"))
        XCTAssertEqual(Endpoint("[::1]:80")?.description, "[::1]:80")
        XCTAssertEqual(Endpoint("127.0.0.1:15001")?.port, 15001)
        XCTAssertTrue(IPAddress("127.0.0.6")!.isLoopback)
    }

    func testTimestampFormatting() {
        XCTAssertEqual(Timestamp.iso8601(0), "1970-01-01T00:00:00.000000000Z")
        XCTAssertEqual(Timestamp.iso8601(1_700_000_000_123_456_789), "2023-11-14T22:13:20.123456789Z")
        XCTAssertEqual(Timestamp.timeOfDay(1_700_000_000_123_456_789), "22:13:20.123456789")
        XCTAssertEqual(Timestamp.iso8601(951_782_400_000_000_000), "2000-02-29T00:00:00.000000000Z")
        XCTAssertEqual(Timestamp.duration(1_500), "1.5 µs")
        XCTAssertEqual(Timestamp.duration(2_340_000), "2.34 ms")
    }
}
