/// A packet as libpcap hands it over: a view into libpcap's buffer, valid until the next read.
public struct RawPacket {
    /// Nanoseconds since the Unix epoch.
    public var timestamp: Int64
    /// Bytes on the wire (may exceed `bytes.count` when cut by snaplen).
    public var wireLength: Int
    /// The captured bytes.
    public var bytes: UnsafeRawBufferPointer
    /// 1-based index of the packet in the capture.
    public var index: Int

    public init(timestamp: Int64, wireLength: Int, bytes: UnsafeRawBufferPointer, index: Int) {
        self.timestamp = timestamp
        self.wireLength = wireLength
        self.bytes = bytes
        self.index = index
    }
}

@inline(__always)
func be16(_ p: UnsafeRawBufferPointer, _ o: Int) -> UInt16 {
    UInt16(p[o]) << 8 | UInt16(p[o + 1])
}

@inline(__always)
func be32(_ p: UnsafeRawBufferPointer, _ o: Int) -> UInt32 {
    UInt32(bigEndian: p.loadUnaligned(fromByteOffset: o, as: UInt32.self))
}

@inline(__always)
func be64(_ p: UnsafeRawBufferPointer, _ o: Int) -> UInt64 {
    UInt64(bigEndian: p.loadUnaligned(fromByteOffset: o, as: UInt64.self))
}

/// Decodes link, IP and TCP headers without copying, and counts everything that is not a
/// clean TCP segment.
public struct PacketDecoder {
    public let linkType: LinkType
    public private(set) var counters = DecodeCounters()

    public init(linkType: LinkType) {
        self.linkType = linkType
    }

    /// Decodes one packet. Returns nil (and counts why) when it does not carry a TCP segment.
    public mutating func decode(_ packet: RawPacket) -> TCPSegment? {
        counters.packets += 1
        let b = packet.bytes
        let cut = packet.wireLength > b.count
        var ctx = Context(timestamp: packet.timestamp, index: packet.index, cut: cut)

        switch linkType {
        case .ethernet:
            return decodeEthernet(b, &ctx)
        case .linuxSLL:
            guard b.count >= 16 else { return linkTooShort(ctx) }
            ctx.direction = PacketDirection(rawValue: UInt8(truncatingIfNeeded: be16(b, 0)))
            return decodeEtherType(be16(b, 14), b, 16, &ctx)
        case .linuxSLL2:
            guard b.count >= 20 else { return linkTooShort(ctx) }
            ctx.interfaceIndex = Int32(bitPattern: be32(b, 4))
            ctx.direction = PacketDirection(rawValue: b[10])
            return decodeEtherType(be16(b, 0), b, 20, &ctx)
        case .null, .loop:
            guard b.count >= 4 else { return linkTooShort(ctx) }
            var family = b.loadUnaligned(fromByteOffset: 0, as: UInt32.self)
            if linkType == .loop { family = UInt32(bigEndian: family) }
            // NULL is in the capturing host's byte order: a value above 0xffff was written by the other order.
            if family > 0xffff { family = family.byteSwapped }
            switch family {
            case 2: return decodeIPv4(b, 4, &ctx)
            case 10, 24, 28, 30: return decodeIPv6(b, 4, &ctx)
            default:
                counters.nonIP.record(ctx.index)
                return nil
            }
        case .raw, .rawFileValue:
            guard b.count >= 1 else { return linkTooShort(ctx) }
            switch b[0] >> 4 {
            case 4: return decodeIPv4(b, 0, &ctx)
            case 6: return decodeIPv6(b, 0, &ctx)
            default: return malformed(.rawBadVersion, ctx)
            }
        case .ipv4:
            return decodeIPv4(b, 0, &ctx)
        case .ipv6:
            return decodeIPv6(b, 0, &ctx)
        default:
            counters.unsupportedLinkType.record(ctx.index)
            return nil
        }
    }

    struct Context {
        var timestamp: Int64
        var index: Int
        /// The capture holds fewer bytes than the wire carried.
        var cut: Bool
        var interfaceIndex: Int32? = nil
        var direction: PacketDirection? = nil
    }

    @inline(__always)
    mutating func linkTooShort(_ ctx: Context) -> TCPSegment? {
        if ctx.cut { counters.truncatedHeaders.record(ctx.index); return nil }
        return malformed(.linkHeaderTooShort, ctx)
    }

    @inline(__always)
    mutating func malformed(_ reason: MalformedReason, _ ctx: Context) -> TCPSegment? {
        counters.malformed[reason.rawValue].record(ctx.index)
        return nil
    }

    /// Too few bytes for a header: truncation when the capture cut the packet, else malformed.
    @inline(__always)
    mutating func short(_ reason: MalformedReason, _ ctx: Context) -> TCPSegment? {
        if ctx.cut { counters.truncatedHeaders.record(ctx.index); return nil }
        return malformed(reason, ctx)
    }

    mutating func decodeEthernet(_ b: UnsafeRawBufferPointer, _ ctx: inout Context) -> TCPSegment? {
        guard b.count >= 14 else { return linkTooShort(ctx) }
        var offset = 12
        var type = be16(b, offset)
        offset += 2
        // 802.1Q, 802.1ad (QinQ) and the old 0x9100 tag, any depth.
        while type == 0x8100 || type == 0x88a8 || type == 0x9100 {
            guard b.count >= offset + 4 else { return short(.vlanTagTooShort, ctx) }
            type = be16(b, offset + 2)
            offset += 4
        }
        return decodeEtherType(type, b, offset, &ctx)
    }

    @inline(__always)
    mutating func decodeEtherType(_ type: UInt16, _ b: UnsafeRawBufferPointer, _ offset: Int, _ ctx: inout Context) -> TCPSegment? {
        switch type {
        case 0x0800: return decodeIPv4(b, offset, &ctx)
        case 0x86dd: return decodeIPv6(b, offset, &ctx)
        case 0x8100, 0x88a8, 0x9100:
            // A VLAN tag inside a cooked header (SLL keeps the tag in the payload).
            guard b.count >= offset + 4 else { return short(.vlanTagTooShort, ctx) }
            return decodeEtherType(be16(b, offset + 2), b, offset + 4, &ctx)
        default:
            counters.nonIP.record(ctx.index)
            return nil
        }
    }

    mutating func decodeIPv4(_ b: UnsafeRawBufferPointer, _ o: Int, _ ctx: inout Context) -> TCPSegment? {
        guard b.count >= o + 20 else { return short(.ipv4HeaderTooShort, ctx) }
        let vihl = b[o]
        guard vihl >> 4 == 4 else { return malformed(.ipv4BadVersion, ctx) }
        let ihl = Int(vihl & 0x0f) * 4
        guard ihl >= 20 else { return malformed(.ipv4BadHeaderLength, ctx) }
        var totalLength = Int(be16(b, o + 2))
        let frameIPBytes = ctx.cut ? Int.max : b.count - o
        if totalLength == 0 {
            // Segmentation offload: the kernel hands over a super-packet with length 0. Use what is there.
            totalLength = b.count - o
        }
        guard totalLength >= ihl else { return malformed(.ipv4TotalLengthTooSmall, ctx) }
        var lengthBeyondFrame = false
        if totalLength > frameIPBytes {
            lengthBeyondFrame = true
        }
        guard b.count >= o + ihl else { return short(.ipv4HeaderTooShort, ctx) }
        let fragField = be16(b, o + 6)
        let fragOffset = fragField & 0x1fff
        let moreFragments = fragField & 0x2000 != 0
        let proto = b[o + 9]
        if fragOffset != 0 {
            counters.fragmentsSkipped.record(ctx.index)
            return nil
        }
        let ipID = be16(b, o + 4)
        let ttl = b[o + 8]
        let src = IPAddress(ipv4: be32(b, o + 12))
        let dst = IPAddress(ipv4: be32(b, o + 16))
        let end = min(b.count, o + totalLength)
        switch proto {
        case 6:
            if lengthBeyondFrame { counters.malformed[MalformedReason.ipv4TotalLengthBeyondFrame.rawValue].record(ctx.index) }
            return decodeTCP(b, o + ihl, end: end, announcedEnd: o + totalLength, ipVersion: 4, src: src, dst: dst,
                             ipID: ipID, ttl: ttl, firstFragment: moreFragments, &ctx)
        case 17: counters.udp.record(ctx.index); return nil
        case 1: counters.icmp.record(ctx.index); return nil
        default: counters.otherIPProtocol.record(ctx.index); return nil
        }
    }

    mutating func decodeIPv6(_ b: UnsafeRawBufferPointer, _ o: Int, _ ctx: inout Context) -> TCPSegment? {
        guard b.count >= o + 40 else { return short(.ipv6HeaderTooShort, ctx) }
        guard b[o] >> 4 == 6 else { return malformed(.ipv6BadVersion, ctx) }
        var payloadLength = Int(be16(b, o + 4))
        if payloadLength == 0 {
            // Jumbogram or segmentation offload: use what is there.
            payloadLength = b.count - o - 40
        }
        var next = b[o + 6]
        let hopLimit = b[o + 7]
        let src = IPAddress(ipv6High: be64(b, o + 8), low: be64(b, o + 16))
        let dst = IPAddress(ipv6High: be64(b, o + 24), low: be64(b, o + 32))
        let announcedEnd = o + 40 + payloadLength
        let lengthBeyondFrame = !ctx.cut && announcedEnd > b.count
        let end = min(b.count, announcedEnd)
        var p = o + 40
        var firstFragment = false
        var fragmentID: UInt32 = 0
        // The extension-header chain.
        loop: while true {
            switch next {
            case 0, 43, 60, 135, 139, 140:
                // Hop-by-hop, routing, destination options, mobility, HIP, shim6: (len+1)*8 bytes.
                guard p + 2 <= end else { return short(.ipv6ExtensionHeaderTruncated, ctx) }
                let len = (Int(b[p + 1]) + 1) * 8
                guard p + len <= announcedEnd else { return malformed(.ipv6ExtensionHeaderTruncated, ctx) }
                guard p + len <= end else { return short(.ipv6ExtensionHeaderTruncated, ctx) }
                next = b[p]
                p += len
            case 51:
                // Authentication header: (len+2)*4 bytes.
                guard p + 2 <= end else { return short(.ipv6ExtensionHeaderTruncated, ctx) }
                let len = (Int(b[p + 1]) + 2) * 4
                guard p + len <= announcedEnd else { return malformed(.ipv6ExtensionHeaderTruncated, ctx) }
                guard p + len <= end else { return short(.ipv6ExtensionHeaderTruncated, ctx) }
                next = b[p]
                p += len
            case 44:
                guard p + 8 <= announcedEnd else { return malformed(.ipv6ExtensionHeaderTruncated, ctx) }
                guard p + 8 <= end else { return short(.ipv6ExtensionHeaderTruncated, ctx) }
                let field = be16(b, p + 2)
                fragmentID = be32(b, p + 4)
                if field >> 3 != 0 {
                    counters.fragmentsSkipped.record(ctx.index)
                    return nil
                }
                firstFragment = field & 1 != 0
                next = b[p]
                p += 8
            default:
                break loop
            }
        }
        switch next {
        case 6:
            if lengthBeyondFrame { counters.malformed[MalformedReason.ipv6PayloadLengthBeyondFrame.rawValue].record(ctx.index) }
            return decodeTCP(b, p, end: end, announcedEnd: announcedEnd, ipVersion: 6, src: src, dst: dst,
                             ipID: UInt16(truncatingIfNeeded: fragmentID), ttl: hopLimit, firstFragment: firstFragment, &ctx)
        case 17: counters.udp.record(ctx.index); return nil
        case 58: counters.icmp.record(ctx.index); return nil
        default: counters.otherIPProtocol.record(ctx.index); return nil
        }
    }

    @inline(__always)
    mutating func decodeTCP(
        _ b: UnsafeRawBufferPointer, _ t: Int, end: Int, announcedEnd: Int, ipVersion: UInt8,
        src: IPAddress, dst: IPAddress, ipID: UInt16, ttl: UInt8, firstFragment: Bool, _ ctx: inout Context
    ) -> TCPSegment? {
        guard t + 20 <= end else {
            if t + 20 > announcedEnd { return malformed(.tcpHeaderTooShort, ctx) }
            return short(.tcpHeaderTooShort, ctx)
        }
        let dataOffset = Int(b[t + 12] >> 4) * 4
        guard dataOffset >= 20, t + dataOffset <= announcedEnd else { return malformed(.tcpBadDataOffset, ctx) }
        guard t + dataOffset <= end else { return short(.tcpBadDataOffset, ctx) }
        var options = TCPOptions()
        if dataOffset > 20 {
            var i = t + 20
            let optEnd = t + dataOffset
            while i < optEnd {
                let kind = b[i]
                if kind == 0 { break }
                if kind == 1 { i += 1; continue }
                guard i + 1 < optEnd else { counters.malformed[MalformedReason.tcpBadOption.rawValue].record(ctx.index); break }
                let len = Int(b[i + 1])
                guard len >= 2, i + len <= optEnd else {
                    counters.malformed[MalformedReason.tcpBadOption.rawValue].record(ctx.index)
                    break
                }
                switch (kind, len) {
                case (2, 4): options.mss = be16(b, i + 2)
                case (3, 3): options.windowScale = b[i + 2]
                case (4, 2): options.sackPermitted = true
                case (8, 10):
                    options.timestampValue = be32(b, i + 2)
                    options.timestampEcho = be32(b, i + 6)
                default: break
                }
                i += len
            }
        }
        let payloadStart = t + dataOffset
        let payloadLength = announcedEnd - payloadStart
        let payload = UnsafeRawBufferPointer(rebasing: b[payloadStart..<end])
        if firstFragment {
            counters.firstFragments.record(ctx.index)
        } else if payload.count < payloadLength {
            counters.truncatedPayload.record(ctx.index)
        }
        counters.tcpSegments += 1
        var segment = TCPSegment(
            timestamp: ctx.timestamp, packetIndex: ctx.index, interfaceIndex: ctx.interfaceIndex,
            direction: ctx.direction, ipVersion: ipVersion,
            source: Endpoint(src, be16(b, t)), destination: Endpoint(dst, be16(b, t + 2)),
            sequenceNumber: be32(b, t + 4), acknowledgementNumber: be32(b, t + 8),
            flags: TCPFlags(rawValue: b[t + 13]), window: be16(b, t + 14), options: options,
            ipIdentification: ipID, ttl: ttl, payload: payload, payloadLength: payloadLength)
        segment.isFirstFragment = firstFragment
        return segment
    }
}
