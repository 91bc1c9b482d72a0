/// TCP header flags.
public struct TCPFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let fin = TCPFlags(rawValue: 0x01)
    public static let syn = TCPFlags(rawValue: 0x02)
    public static let rst = TCPFlags(rawValue: 0x04)
    public static let psh = TCPFlags(rawValue: 0x08)
    public static let ack = TCPFlags(rawValue: 0x10)
    public static let urg = TCPFlags(rawValue: 0x20)
    public static let ece = TCPFlags(rawValue: 0x40)
    public static let cwr = TCPFlags(rawValue: 0x80)

    /// tcpdump's notation: `S`, `F`, `R`, `P`, `U`, `E`, `W`, and `.` for ACK; `none` when empty.
    public var tcpdumpDescription: String {
        var s = ""
        if contains(.syn) { s += "S" }
        if contains(.fin) { s += "F" }
        if contains(.psh) { s += "P" }
        if contains(.rst) { s += "R" }
        if contains(.urg) { s += "U" }
        if contains(.ece) { s += "E" }
        if contains(.cwr) { s += "W" }
        if contains(.ack) { s += "." }
        return s.isEmpty ? "none" : s
    }
}

/// The TCP options hoptrace uses (others are skipped, malformed ones counted).
public struct TCPOptions: Hashable, Sendable {
    public var mss: UInt16?
    public var windowScale: UInt8?
    public var sackPermitted: Bool = false
    public var timestampValue: UInt32?
    public var timestampEcho: UInt32?

    public init() {}
    public var isEmpty: Bool {
        mss == nil && windowScale == nil && !sackPermitted && timestampValue == nil
    }
}

/// Where a packet went relative to the capturing host, as Linux cooked captures record it.
public enum PacketDirection: UInt8, Sendable {
    /// Addressed to this host (`In`).
    case incoming = 0
    /// Broadcast by another host.
    case broadcast = 1
    /// Multicast by another host.
    case multicast = 2
    /// Sent to another host (seen in promiscuous mode).
    case otherHost = 3
    /// Sent by this host (`Out`).
    case outgoing = 4

    /// tcpdump's word for it.
    public var tcpdumpDescription: String {
        switch self {
        case .incoming: "In"
        case .outgoing: "Out"
        case .broadcast: "B"
        case .multicast: "M"
        case .otherHost: "P"
        }
    }

    public var jsonName: String {
        switch self {
        case .incoming: "in"
        case .outgoing: "out"
        case .broadcast: "broadcast"
        case .multicast: "multicast"
        case .otherHost: "other-host"
        }
    }
}

/// One decoded TCP segment.
///
/// `payload` is a view into libpcap's buffer (zero-copy): it is valid only until the
/// next packet is read. Copy the bytes if they must be kept.
public struct TCPSegment {
    /// Capture timestamp in nanoseconds since the Unix epoch.
    public var timestamp: Int64
    /// 1-based index of the packet in the capture (or since a live capture started).
    public var packetIndex: Int
    /// Interface index where the link type records it (LINUX_SLL2), else nil.
    public var interfaceIndex: Int32?
    /// Direction where the link type records it (LINUX_SLL, LINUX_SLL2), else nil.
    public var direction: PacketDirection?
    /// 4 or 6.
    public var ipVersion: UInt8
    public var source: Endpoint
    public var destination: Endpoint
    public var sequenceNumber: UInt32
    public var acknowledgementNumber: UInt32
    public var flags: TCPFlags
    public var window: UInt16
    public var options: TCPOptions
    /// IPv4 identification (0 for IPv6); with the TTL it tells two captures of one packet apart
    /// from a retransmission.
    public var ipIdentification: UInt16
    /// IPv4 TTL or IPv6 hop limit.
    public var ttl: UInt8
    /// The payload bytes present in the capture.
    public var payload: UnsafeRawBufferPointer
    /// The payload length the IP header announces (may exceed `payload.count` when truncated).
    public var payloadLength: Int
    /// True when snaplen cut the packet: `payload` holds only the first `payload.count` of
    /// `payloadLength` bytes. (IP fragments are reassembled: a segment from fragments is whole.)
    public var isTruncated: Bool { payload.count < payloadLength }
    /// Reassembled from IP fragments (at the packet of the fragment that completed it).
    public var isReassembled: Bool = false

    /// A placeholder to decode into (`PacketDecoder.decode(_:into:)`).
    public static var empty: TCPSegment {
        TCPSegment(timestamp: 0, packetIndex: 0, ipVersion: 4, source: Endpoint(IPAddress(ipv4: 0), 0),
                   destination: Endpoint(IPAddress(ipv4: 0), 0), sequenceNumber: 0, acknowledgementNumber: 0,
                   flags: [], payload: UnsafeRawBufferPointer(start: nil, count: 0))
    }

    public init(
        timestamp: Int64, packetIndex: Int, interfaceIndex: Int32? = nil, direction: PacketDirection? = nil,
        ipVersion: UInt8, source: Endpoint, destination: Endpoint, sequenceNumber: UInt32,
        acknowledgementNumber: UInt32, flags: TCPFlags, window: UInt16 = 65535, options: TCPOptions = TCPOptions(),
        ipIdentification: UInt16 = 0, ttl: UInt8 = 64, payload: UnsafeRawBufferPointer, payloadLength: Int? = nil
    ) {
        self.timestamp = timestamp
        self.packetIndex = packetIndex
        self.interfaceIndex = interfaceIndex
        self.direction = direction
        self.ipVersion = ipVersion
        self.source = source
        self.destination = destination
        self.sequenceNumber = sequenceNumber
        self.acknowledgementNumber = acknowledgementNumber
        self.flags = flags
        self.window = window
        self.options = options
        self.ipIdentification = ipIdentification
        self.ttl = ttl
        self.payload = payload
        self.payloadLength = payloadLength ?? payload.count
    }
}
