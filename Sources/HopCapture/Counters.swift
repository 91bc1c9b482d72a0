/// Why a packet could not be decoded into a TCP segment although it claimed to carry one.
public enum MalformedReason: Int, CaseIterable, Sendable {
    case linkHeaderTooShort
    case vlanTagTooShort
    case ipv4HeaderTooShort
    case ipv4BadVersion
    case ipv4BadHeaderLength
    case ipv4TotalLengthTooSmall
    case ipv4TotalLengthBeyondFrame
    case ipv6HeaderTooShort
    case ipv6BadVersion
    case ipv6ExtensionHeaderTruncated
    case ipv6PayloadLengthBeyondFrame
    case tcpHeaderTooShort
    case tcpBadDataOffset
    case tcpBadOption
    case rawBadVersion
    case ipFragmentBadLength

    /// Whether a packet with this problem is still delivered as a segment (its known bytes used).
    public var segmentKept: Bool {
        switch self {
        case .tcpBadOption, .ipv4TotalLengthBeyondFrame, .ipv6PayloadLengthBeyondFrame: true
        default: false
        }
    }

    public var name: String {
        switch self {
        case .linkHeaderTooShort: "link-header-too-short"
        case .vlanTagTooShort: "vlan-tag-too-short"
        case .ipv4HeaderTooShort: "ipv4-header-too-short"
        case .ipv4BadVersion: "ipv4-bad-version"
        case .ipv4BadHeaderLength: "ipv4-bad-header-length"
        case .ipv4TotalLengthTooSmall: "ipv4-total-length-too-small"
        case .ipv4TotalLengthBeyondFrame: "ipv4-total-length-beyond-frame"
        case .ipv6HeaderTooShort: "ipv6-header-too-short"
        case .ipv6BadVersion: "ipv6-bad-version"
        case .ipv6ExtensionHeaderTruncated: "ipv6-extension-header-truncated"
        case .ipv6PayloadLengthBeyondFrame: "ipv6-payload-length-beyond-frame"
        case .tcpHeaderTooShort: "tcp-header-too-short"
        case .tcpBadDataOffset: "tcp-bad-data-offset"
        case .tcpBadOption: "tcp-bad-option"
        case .rawBadVersion: "raw-ip-bad-version"
        case .ipFragmentBadLength: "ip-fragment-bad-length"
        }
    }

    public var explanation: String {
        switch self {
        case .linkHeaderTooShort: "frame shorter than its link-layer header"
        case .vlanTagTooShort: "frame ends inside an 802.1Q tag"
        case .ipv4HeaderTooShort: "frame ends inside the IPv4 header"
        case .ipv4BadVersion: "IPv4 ethertype but the version field is not 4"
        case .ipv4BadHeaderLength: "IPv4 header length below 20 bytes"
        case .ipv4TotalLengthTooSmall: "IPv4 total length smaller than its header"
        case .ipv4TotalLengthBeyondFrame: "IPv4 total length beyond the frame's wire length (known bytes used)"
        case .ipv6HeaderTooShort: "frame ends inside the IPv6 header"
        case .ipv6BadVersion: "IPv6 ethertype but the version field is not 6"
        case .ipv6ExtensionHeaderTruncated: "IPv6 extension header runs past the payload"
        case .ipv6PayloadLengthBeyondFrame: "IPv6 payload length beyond the frame's wire length (known bytes used)"
        case .tcpHeaderTooShort: "IP payload shorter than a TCP header"
        case .tcpBadDataOffset: "TCP data offset below 5 or past the segment"
        case .tcpBadOption: "malformed TCP option (segment kept, options after it ignored)"
        case .rawBadVersion: "raw IP packet whose version is neither 4 nor 6"
        case .ipFragmentBadLength: "IP fragments of a TCP segment reaching past 65,535 bytes or disagreeing where it ends (the segment is dropped)"
        }
    }
}

/// One counted category: how many packets and the first one's index (1-based).
public struct CountWithFirst: Sendable, Equatable {
    public var count: Int = 0
    public var firstPacket: Int = 0

    public init(count: Int = 0, firstPacket: Int = 0) {
        self.count = count
        self.firstPacket = firstPacket
    }

    @inlinable
    public mutating func record(_ packet: Int) {
        if count == 0 { firstPacket = packet }
        count += 1
    }
}

/// What the decoder did with every packet. Every packet lands in exactly one of the
/// "outcome" buckets (`tcpSegments`, `nonIP`, `udp`, `icmp`, `otherIPProtocol`,
/// `fragmentsSkipped`, `fragmentsHeld`, `truncatedHeaders`, dropped malformed reasons,
/// `unsupportedLinkType`); `truncatedPayload`, `reassembledSegments` and kept malformed reasons
/// annotate delivered segments; `incompleteDatagrams` and `pendingDatagrams` count fragmented
/// segments that were not (or not yet) completed.
public struct DecodeCounters: Sendable, Equatable {
    public var packets = 0
    public var tcpSegments = 0
    public var nonIP = CountWithFirst()
    public var udp = CountWithFirst()
    public var icmp = CountWithFirst()
    public var otherIPProtocol = CountWithFirst()
    /// Non-first IPv4/IPv6 fragments of datagrams other than TCP: skipped.
    public var fragmentsSkipped = CountWithFirst()
    /// Fragments of a TCP segment held for reassembly (every one but the fragment that
    /// completes the segment). IPv6 fragments whose fragmentable part starts with an extension
    /// header are held too: only the reassembled bytes say whether TCP follows (when it does
    /// not, the completing fragment counts as UDP, ICMP or other).
    public var fragmentsHeld = CountWithFirst()
    /// TCP segments reassembled from IP fragments, delivered at the fragment that completed them.
    public var reassembledSegments = CountWithFirst()
    /// Fragmented TCP segments given up: not every fragment arrived within 30 s of capture
    /// time, or more than 64 MiB was held (first packet: the first fragment of the first one).
    public var incompleteDatagrams = CountWithFirst()
    /// Fragmented TCP segments still waiting for fragments (at the end of a capture: incomplete).
    public var pendingDatagrams = 0
    public var pendingFirstPacket = 0
    /// Segments cut by snaplen: delivered with their known bytes.
    public var truncatedPayload = CountWithFirst()
    /// Packets cut by snaplen before the TCP header ended: not delivered.
    public var truncatedHeaders = CountWithFirst()
    public var unsupportedLinkType = CountWithFirst()
    /// Packets of a pcapng file's interfaces whose link type the BPF filter cannot be compiled
    /// for (`ether host` on a RAW interface): left out by the reader, so not counted in
    /// `packets` (first packet: the number the next packet read got).
    public var filterNotApplicable = CountWithFirst()
    public var malformed = [CountWithFirst](repeating: CountWithFirst(), count: MalformedReason.allCases.count)

    public init() {}

    public subscript(reason: MalformedReason) -> CountWithFirst {
        get { malformed[reason.rawValue] }
        set { malformed[reason.rawValue] = newValue }
    }

    public var malformedTotal: Int { malformed.reduce(0) { $0 + $1.count } }
    public var malformedDropped: Int {
        MalformedReason.allCases.filter { !$0.segmentKept }.reduce(0) { $0 + self[$1].count }
    }

    /// Packets that did not become a segment.
    public var notDelivered: Int {
        nonIP.count + udp.count + icmp.count + otherIPProtocol.count + fragmentsSkipped.count + fragmentsHeld.count
            + truncatedHeaders.count + unsupportedLinkType.count + malformedDropped
    }

    /// True when every packet is accounted for (delivered or counted in one bucket).
    public var isBalanced: Bool { tcpSegments + notDelivered == packets }

    /// Named non-zero counters, for reports: (name, count, first packet, explanation).
    public var report: [(name: String, count: Int, firstPacket: Int, explanation: String)] {
        var out: [(String, Int, Int, String)] = []
        func add(_ name: String, _ c: CountWithFirst, _ why: String) {
            if c.count > 0 { out.append((name, c.count, c.firstPacket, why)) }
        }
        add("non-ip", nonIP, "not IPv4 or IPv6 (ARP, LLDP, …)")
        add("udp", udp, "UDP, not analyzed")
        add("icmp", icmp, "ICMP/ICMPv6, not analyzed")
        add("other-ip-protocol", otherIPProtocol, "IP protocol other than TCP/UDP/ICMP")
        add("ip-fragments-skipped", fragmentsSkipped, "non-first IP fragments of UDP, ICMP or other datagrams, skipped")
        add("ip-fragments-held", fragmentsHeld, "IP fragments of TCP segments, held until the segment's last fragment")
        add("ip-reassembled", reassembledSegments, "TCP segments reassembled from IP fragments, at the fragment that completed them")
        var incomplete = incompleteDatagrams
        if pendingDatagrams > 0 {
            incomplete.firstPacket = incomplete.count == 0 ? pendingFirstPacket : min(incomplete.firstPacket, pendingFirstPacket)
            incomplete.count += pendingDatagrams
        }
        add("ip-fragments-incomplete", incomplete, "fragmented TCP segments missing a fragment (given up after 30 s, past 64 MiB held, or at the end): not analyzed")
        add("truncated-payload", truncatedPayload, "cut by snaplen; the known payload bytes are used")
        add("truncated-headers", truncatedHeaders, "cut by snaplen inside the headers; not decoded")
        add("unsupported-link-type", unsupportedLinkType, "link type hoptrace does not decode")
        add("filter-not-applicable", filterNotApplicable, "packets of interfaces whose link type the BPF filter cannot be compiled for (e.g. `ether host` on a RAW interface): left out, not counted as read; use a filter every link type understands, such as 'tcp port 80'")
        for r in MalformedReason.allCases {
            add("malformed:\(r.name)", self[r], r.explanation)
        }
        return out
    }
}
