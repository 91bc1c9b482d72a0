import HopCapture

/// Builds packets byte by byte for the decoder tests.
public enum PB {
    public static func u16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xff)] }
    public static func u32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)] }

    public static func tcp(sport: UInt16 = 40000, dport: UInt16 = 80, seq: UInt32 = 1000, ack: UInt32 = 0,
                    flags: UInt8 = 0x18, window: UInt16 = 512, options: [UInt8] = [], dataOffsetWords: Int? = nil,
                    payload: [UInt8] = []) -> [UInt8] {
        var opts = options
        while opts.count % 4 != 0 { opts.append(0) }
        let doff = dataOffsetWords ?? (20 + opts.count) / 4
        var b = u16(sport) + u16(dport) + u32(seq) + u32(ack)
        b += [UInt8(doff << 4), flags] + u16(window) + [0, 0, 0, 0]
        return b + opts + payload
    }

    public static func ipv4(src: UInt32 = 0xC612_0001, dst: UInt32 = 0xC612_0002, proto: UInt8 = 6, id: UInt16 = 7,
                     ttl: UInt8 = 64, options: [UInt8] = [], fragment: UInt16 = 0x4000,
                     totalLength: Int? = nil, version: UInt8 = 4, ihlWords: Int? = nil, payload: [UInt8]) -> [UInt8] {
        let ihl = ihlWords ?? (20 + options.count) / 4
        let total = totalLength ?? (ihl * 4 + payload.count)
        var b: [UInt8] = [version << 4 | UInt8(ihl), 0] + u16(UInt16(total)) + u16(id) + u16(fragment)
        b += [ttl, proto, 0, 0] + u32(src) + u32(dst) + options
        return b + payload
    }

    public static let v6a: [UInt8] = [0x20, 0x01, 0x00, 0x02] + [UInt8](repeating: 0, count: 11) + [1]
    public static let v6b: [UInt8] = [0x20, 0x01, 0x00, 0x02] + [UInt8](repeating: 0, count: 11) + [2]

    public static func ipv6(next: UInt8 = 6, hopLimit: UInt8 = 64, payloadLength: Int? = nil, version: UInt8 = 6,
                     extensions: [UInt8] = [], payload: [UInt8]) -> [UInt8] {
        let plen = payloadLength ?? (extensions.count + payload.count)
        var b: [UInt8] = [version << 4, 0, 0, 0] + u16(UInt16(plen)) + [next, hopLimit]
        b += v6a + v6b
        return b + extensions + payload
    }

    public static func ethernet(type: UInt16 = 0x0800, vlans: [(tpid: UInt16, id: UInt16)] = [], payload: [UInt8], pad: Int = 0) -> [UInt8] {
        var b: [UInt8] = [0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1]
        for v in vlans { b += u16(v.tpid) + u16(v.id) }
        b += u16(type)
        return b + payload + [UInt8](repeating: 0, count: pad)
    }

    public static func sll(packetType: UInt16 = 4, proto: UInt16 = 0x0800, payload: [UInt8]) -> [UInt8] {
        u16(packetType) + u16(1) + u16(6) + [2, 0, 0, 0, 0, 1, 0, 0] + u16(proto) + payload
    }

    public static func sll2(proto: UInt16 = 0x0800, ifindex: UInt32 = 3, packetType: UInt8 = 0, payload: [UInt8]) -> [UInt8] {
        u16(proto) + [0, 0] + u32(ifindex) + u16(1) + [packetType, 6] + [2, 0, 0, 0, 0, 1, 0, 0] + payload
    }
}

/// Decodes one packet with a fresh decoder; returns the segment's fields (copied) and the counters.
public struct Decoded {
    public var segment: TCPSegment?
    public var payload: [UInt8] = []
    public var counters: DecodeCounters
}

public func decodeOne(_ bytes: [UInt8], linkType: LinkType, wireLength: Int? = nil, index: Int = 1) -> Decoded {
    var d = PacketDecoder(linkType: linkType)
    return bytes.withUnsafeBytes { buf in
        let seg = d.decode(RawPacket(timestamp: 1_700_000_000_123_456_789, wireLength: wireLength ?? bytes.count, bytes: buf, index: index))
        return Decoded(segment: seg, payload: seg.map { Array($0.payload) } ?? [], counters: d.counters)
    }
}
