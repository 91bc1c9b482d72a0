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
    /// The link type of the packet's interface, when the capture has interfaces of several
    /// (a pcapng file); nil: the capture's one link type.
    public var linkType: LinkType?
    /// The pcapng interface the packet was captured on (`PcapSource.interfaces`' ordinal),
    /// when the file names its interface or has several; nil otherwise.
    public var interface: Int32?

    public init(timestamp: Int64, wireLength: Int, bytes: UnsafeRawBufferPointer, index: Int,
                linkType: LinkType? = nil, interface: Int32? = nil) {
        self.timestamp = timestamp
        self.wireLength = wireLength
        self.bytes = bytes
        self.index = index
        self.linkType = linkType
        self.interface = interface
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
    /// What happened to every packet so far (with the fragmented segments still open).
    public var counters: DecodeCounters {
        var c = tally
        if let r = reassembler { (c.pendingDatagrams, c.pendingFirstPacket) = r.pending }
        return c
    }
    private var tally = DecodeCounters()

    /// Counts the packets a reader left out because the filter could not apply to their link
    /// type (`PcapSource.filterUnmatched`).
    public mutating func countFilterNotApplicable(_ c: CountWithFirst) {
        tally.filterNotApplicable = c
    }
    /// Made at the first fragmented TCP segment.
    private var reassembler: FragmentReassembler?

    public init(linkType: LinkType) {
        self.linkType = linkType
    }

    /// Decodes one packet. Returns nil (and counts why) when it does not carry a TCP segment.
    public mutating func decode(_ packet: RawPacket) -> TCPSegment? {
        var segment = TCPSegment.empty
        return decode(packet, into: &segment) ? segment : nil
    }

    /// Decodes one packet into `segment`, overwriting every field (gopacket's
    /// DecodingLayerParser style: the caller keeps one segment value and no copy is made per
    /// packet). Returns false (and counts why) when the packet does not carry a TCP segment;
    /// `segment` is then unspecified.
    public mutating func decode(_ packet: RawPacket, into segment: inout TCPSegment) -> Bool {
        tally.packets += 1
        let b = packet.bytes
        var ctx = Context(timestamp: packet.timestamp, index: packet.index, cut: packet.wireLength > b.count,
                          interfaceIndex: packet.interface)
        // The link layer tells where the network header starts and which IP version it is.
        let (offset, version) = linkLayer(b, packet.linkType ?? linkType, &ctx)
        switch version {
        case 4: return decodeIPv4(b, offset, &ctx, &segment)
        case 6: return decodeIPv6(b, offset, &ctx, &segment)
        default: return false
        }
    }

    /// Returns the network header's offset and IP version (4 or 6), or version 0 when the
    /// packet was counted and is done with.
    @inline(__always)
    mutating func linkLayer(_ b: UnsafeRawBufferPointer, _ linkType: LinkType, _ ctx: inout Context) -> (Int, Int) {
        switch linkType {
        case .ethernet:
            guard b.count >= 14 else { linkTooShort(ctx); return (0, 0) }
            return etherType(be16(b, 12), b, 14, &ctx)
        case .linuxSLL:
            guard b.count >= 16 else { linkTooShort(ctx); return (0, 0) }
            ctx.direction = PacketDirection(rawValue: UInt8(truncatingIfNeeded: be16(b, 0)))
            return etherType(be16(b, 14), b, 16, &ctx)
        case .linuxSLL2:
            guard b.count >= 20 else { linkTooShort(ctx); return (0, 0) }
            ctx.interfaceIndex = Int32(bitPattern: be32(b, 4))
            ctx.direction = PacketDirection(rawValue: b[10])
            return etherType(be16(b, 0), b, 20, &ctx)
        case .null, .loop:
            guard b.count >= 4 else { linkTooShort(ctx); return (0, 0) }
            var family = b.loadUnaligned(fromByteOffset: 0, as: UInt32.self)
            if linkType == .loop { family = UInt32(bigEndian: family) }
            // NULL is in the capturing host's byte order: a value above 0xffff was written by the other order.
            if family > 0xffff { family = family.byteSwapped }
            switch family {
            case 2: return (4, 4)
            case 10, 24, 28, 30: return (4, 6)
            default:
                tally.nonIP.record(ctx.index)
                return (0, 0)
            }
        case .raw, .rawFileValue:
            guard b.count >= 1 else { linkTooShort(ctx); return (0, 0) }
            switch b[0] >> 4 {
            case 4: return (0, 4)
            case 6: return (0, 6)
            default: malformed(.rawBadVersion, ctx); return (0, 0)
            }
        case .ipv4:
            return (0, 4)
        case .ipv6:
            return (0, 6)
        default:
            tally.unsupportedLinkType.record(ctx.index)
            return (0, 0)
        }
    }

    /// Follows VLAN tags (802.1Q, 802.1ad QinQ, 0x9100; any depth, also inside cooked headers)
    /// to the IP header.
    @inline(__always)
    mutating func etherType(_ first: UInt16, _ b: UnsafeRawBufferPointer, _ start: Int, _ ctx: inout Context) -> (Int, Int) {
        var type = first
        var offset = start
        while type == 0x8100 || type == 0x88a8 || type == 0x9100 {
            guard b.count >= offset + 4 else { short(.vlanTagTooShort, ctx); return (0, 0) }
            type = be16(b, offset + 2)
            offset += 4
        }
        switch type {
        case 0x0800: return (offset, 4)
        case 0x86dd: return (offset, 6)
        default:
            tally.nonIP.record(ctx.index)
            return (0, 0)
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
    mutating func linkTooShort(_ ctx: Context) {
        short(.linkHeaderTooShort, ctx)
    }

    @inline(__always)
    mutating func malformed(_ reason: MalformedReason, _ ctx: Context) {
        tally.malformed[reason.rawValue].record(ctx.index)
    }

    /// Too few bytes for a header: truncation when the capture cut the packet, else malformed.
    @inline(__always)
    mutating func short(_ reason: MalformedReason, _ ctx: Context) {
        if ctx.cut { tally.truncatedHeaders.record(ctx.index) } else { malformed(reason, ctx) }
    }

    @inline(__always)
    mutating func decodeIPv4(_ b: UnsafeRawBufferPointer, _ o: Int, _ ctx: inout Context, _ segment: inout TCPSegment) -> Bool {
        guard b.count >= o + 20 else { short(.ipv4HeaderTooShort, ctx); return false }
        let vihl = b[o]
        guard vihl >> 4 == 4 else { malformed(.ipv4BadVersion, ctx); return false }
        let ihl = Int(vihl & 0x0f) * 4
        guard ihl >= 20 else { malformed(.ipv4BadHeaderLength, ctx); return false }
        var totalLength = Int(be16(b, o + 2))
        let frameIPBytes = ctx.cut ? Int.max : b.count - o
        if totalLength == 0 {
            // Segmentation offload: the kernel hands over a super-packet with length 0. Use what is there.
            totalLength = b.count - o
        }
        guard totalLength >= ihl else { malformed(.ipv4TotalLengthTooSmall, ctx); return false }
        var lengthBeyondFrame = false
        if totalLength > frameIPBytes {
            lengthBeyondFrame = true
        }
        guard b.count >= o + ihl else { short(.ipv4HeaderTooShort, ctx); return false }
        let fragField = be16(b, o + 6)
        let fragOffset = fragField & 0x1fff
        let moreFragments = fragField & 0x2000 != 0
        let proto = b[o + 9]
        let ipID = be16(b, o + 4)
        let ttl = b[o + 8]
        let src = IPAddress(ipv4: be32(b, o + 12))
        let dst = IPAddress(ipv4: be32(b, o + 16))
        let end = min(b.count, o + totalLength)
        if fragOffset != 0 || moreFragments {
            if proto == 6 {
                let key = FragmentReassembler.Key(source: src, destination: dst, id: UInt32(ipID) | UInt32(proto) << 16, ipv6: false)
                return reassemble(key, b, start: o + ihl, end: end, announcedEnd: o + totalLength, offset: Int(fragOffset) * 8,
                                  last: !moreFragments, ipVersion: 4, firstHeader: 6, src: src, dst: dst, ipID: ipID, ttl: ttl, &ctx, &segment)
            }
            if fragOffset != 0 {
                tally.fragmentsSkipped.record(ctx.index)
                return false
            }
        }
        switch proto {
        case 6:
            if lengthBeyondFrame { tally.malformed[MalformedReason.ipv4TotalLengthBeyondFrame.rawValue].record(ctx.index) }
            return decodeTCP(b, o + ihl, end: end, announcedEnd: o + totalLength, ipVersion: 4, src: src, dst: dst,
                             ipID: ipID, ttl: ttl, &ctx, &segment)
        case 17: tally.udp.record(ctx.index); return false
        case 1: tally.icmp.record(ctx.index); return false
        default: tally.otherIPProtocol.record(ctx.index); return false
        }
    }

    @inline(__always)
    mutating func decodeIPv6(_ b: UnsafeRawBufferPointer, _ o: Int, _ ctx: inout Context, _ segment: inout TCPSegment) -> Bool {
        guard b.count >= o + 40 else { short(.ipv6HeaderTooShort, ctx); return false }
        guard b[o] >> 4 == 6 else { malformed(.ipv6BadVersion, ctx); return false }
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
        var fragmentID: UInt32 = 0
        // The extension-header chain, with at most one fragment header in it.
        while true {
            guard skipIPv6Extensions(b, &p, &next, end: end, announcedEnd: announcedEnd, ctx) else { return false }
            guard next == 44 else { break }
            guard p + 8 <= announcedEnd else { malformed(.ipv6ExtensionHeaderTruncated, ctx); return false }
            guard p + 8 <= end else { short(.ipv6ExtensionHeaderTruncated, ctx); return false }
            let field = be16(b, p + 2)
            fragmentID = be32(b, p + 4)
            let fragOffset = Int(field >> 3) * 8, moreFragments = field & 1 != 0
            let first = b[p]
            if fragOffset != 0 || moreFragments {
                // Every fragment names the first header of the fragmentable part: TCP, or an
                // extension header (destination options, routing, ...) that may lead to TCP.
                if first == 6 || Self.isIPv6ExtensionHeader(first) {
                    let key = FragmentReassembler.Key(source: src, destination: dst, id: fragmentID, ipv6: true)
                    return reassemble(key, b, start: p + 8, end: end, announcedEnd: announcedEnd, offset: fragOffset,
                                      last: !moreFragments, ipVersion: 6, firstHeader: first, src: src, dst: dst,
                                      ipID: UInt16(truncatingIfNeeded: fragmentID), ttl: hopLimit, &ctx, &segment)
                }
                if fragOffset != 0 {
                    tally.fragmentsSkipped.record(ctx.index)
                    return false
                }
            }
            next = first
            p += 8
        }
        switch next {
        case 6:
            if lengthBeyondFrame { tally.malformed[MalformedReason.ipv6PayloadLengthBeyondFrame.rawValue].record(ctx.index) }
            return decodeTCP(b, p, end: end, announcedEnd: announcedEnd, ipVersion: 6, src: src, dst: dst,
                             ipID: UInt16(truncatingIfNeeded: fragmentID), ttl: hopLimit, &ctx, &segment)
        case 17: tally.udp.record(ctx.index); return false
        case 58: tally.icmp.record(ctx.index); return false
        default: tally.otherIPProtocol.record(ctx.index); return false
        }
    }

    /// Extension headers other than the fragment header (hop-by-hop, routing, destination
    /// options, authentication, mobility, HIP, shim6).
    @inline(__always)
    static func isIPv6ExtensionHeader(_ next: UInt8) -> Bool {
        switch next {
        case 0, 43, 51, 60, 135, 139, 140: return true
        default: return false
        }
    }

    /// Walks IPv6 extension headers from `p` (whose type is `next`) up to the first header that
    /// is not one of them (the upper layer, or a fragment header). A chain cut by snaplen or
    /// running past the payload is counted for the packet and gives false.
    @inline(__always)
    mutating func skipIPv6Extensions(
        _ b: UnsafeRawBufferPointer, _ p: inout Int, _ next: inout UInt8, end: Int, announcedEnd: Int, _ ctx: Context
    ) -> Bool {
        while Self.isIPv6ExtensionHeader(next) {
            guard p + 2 <= end else {
                if p + 2 > announcedEnd { malformed(.ipv6ExtensionHeaderTruncated, ctx) } else { short(.ipv6ExtensionHeaderTruncated, ctx) }
                return false
            }
            // The authentication header counts 4-byte words less 2; the others 8-byte units less 1.
            let len = next == 51 ? (Int(b[p + 1]) + 2) * 4 : (Int(b[p + 1]) + 1) * 8
            guard p + len <= announcedEnd else { malformed(.ipv6ExtensionHeaderTruncated, ctx); return false }
            guard p + len <= end else { short(.ipv6ExtensionHeaderTruncated, ctx); return false }
            next = b[p]
            p += len
        }
        return true
    }

    /// A fragment of a TCP segment: held, or (when it completes the segment) the whole segment
    /// decoded from the reassembled bytes.
    @inline(never)
    mutating func reassemble(
        _ key: FragmentReassembler.Key, _ b: UnsafeRawBufferPointer, start: Int, end: Int, announcedEnd: Int, offset: Int,
        last: Bool, ipVersion: UInt8, firstHeader: UInt8, src: IPAddress, dst: IPAddress, ipID: UInt16, ttl: UInt8,
        _ ctx: inout Context, _ segment: inout TCPSegment
    ) -> Bool {
        let r: FragmentReassembler
        if let existing = reassembler { r = existing } else { r = FragmentReassembler(); reassembler = r }
        let data = start < end ? UnsafeRawBufferPointer(rebasing: b[start..<end]) : UnsafeRawBufferPointer(start: nil, count: 0)
        let outcome = r.add(key, offset: offset, data: data, announced: max(0, announcedEnd - start), last: last,
                            timestamp: ctx.timestamp, packet: ctx.index) { tally.incompleteDatagrams.record($0) }
        switch outcome {
        case .held:
            tally.fragmentsHeld.record(ctx.index)
            return false
        case .invalid:
            malformed(.ipFragmentBadLength, ctx)
            return false
        case .complete(let whole):
            // Reassembled, the datagram is whole: no snaplen cut applies to it.
            ctx.cut = false
            // An IPv6 fragmentable part may start with extension headers before the upper layer.
            var t = 0, upper = firstHeader
            guard skipIPv6Extensions(whole, &t, &upper, end: whole.count, announcedEnd: whole.count, ctx) else { return false }
            switch upper {
            case 6: break
            case 17: tally.udp.record(ctx.index); return false
            case 1 where ipVersion == 4, 58 where ipVersion == 6: tally.icmp.record(ctx.index); return false
            default: tally.otherIPProtocol.record(ctx.index); return false
            }
            tally.reassembledSegments.record(ctx.index)
            guard decodeTCP(whole, t, end: whole.count, announcedEnd: whole.count, ipVersion: ipVersion, src: src, dst: dst,
                            ipID: ipID, ttl: ttl, &ctx, &segment) else { return false }
            segment.isReassembled = true
            return true
        }
    }

    @inline(__always)
    mutating func decodeTCP(
        _ b: UnsafeRawBufferPointer, _ t: Int, end: Int, announcedEnd: Int, ipVersion: UInt8,
        src: IPAddress, dst: IPAddress, ipID: UInt16, ttl: UInt8, _ ctx: inout Context,
        _ segment: inout TCPSegment
    ) -> Bool {
        guard t + 20 <= end else {
            if t + 20 > announcedEnd { malformed(.tcpHeaderTooShort, ctx); return false }
            short(.tcpHeaderTooShort, ctx); return false
        }
        let dataOffset = Int(b[t + 12] >> 4) * 4
        guard dataOffset >= 20, t + dataOffset <= announcedEnd else { malformed(.tcpBadDataOffset, ctx); return false }
        guard t + dataOffset <= end else { short(.tcpBadDataOffset, ctx); return false }
        var options = TCPOptions()
        if dataOffset > 20 {
            var i = t + 20
            let optEnd = t + dataOffset
            while i < optEnd {
                let kind = b[i]
                if kind == 0 { break }
                if kind == 1 { i += 1; continue }
                guard i + 1 < optEnd else { tally.malformed[MalformedReason.tcpBadOption.rawValue].record(ctx.index); break }
                let len = Int(b[i + 1])
                guard len >= 2, i + len <= optEnd else {
                    tally.malformed[MalformedReason.tcpBadOption.rawValue].record(ctx.index)
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
        if payload.count < payloadLength {
            tally.truncatedPayload.record(ctx.index)
        }
        tally.tcpSegments += 1
        segment.timestamp = ctx.timestamp
        segment.packetIndex = ctx.index
        segment.interfaceIndex = ctx.interfaceIndex
        segment.direction = ctx.direction
        segment.ipVersion = ipVersion
        segment.source = Endpoint(src, be16(b, t))
        segment.destination = Endpoint(dst, be16(b, t + 2))
        segment.sequenceNumber = be32(b, t + 4)
        segment.acknowledgementNumber = be32(b, t + 8)
        segment.flags = TCPFlags(rawValue: b[t + 13])
        segment.window = be16(b, t + 14)
        segment.options = options
        segment.ipIdentification = ipID
        segment.ttl = ttl
        segment.payload = payload
        segment.payloadLength = payloadLength
        segment.isReassembled = false
        return true
    }
}
