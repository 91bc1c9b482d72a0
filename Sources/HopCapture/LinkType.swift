import CPcap

/// A libpcap data-link type (DLT_ value as `pcap_datalink` reports it).
public struct LinkType: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let null = LinkType(rawValue: Int32(DLT_NULL))
    public static let ethernet = LinkType(rawValue: Int32(DLT_EN10MB))
    public static let raw = LinkType(rawValue: Int32(DLT_RAW))
    /// LINKTYPE_RAW's value in files (101); libpcap maps it to DLT_RAW, but crafted inputs may use either.
    public static let rawFileValue = LinkType(rawValue: 101)
    public static let loop = LinkType(rawValue: Int32(DLT_LOOP))
    public static let linuxSLL = LinkType(rawValue: Int32(DLT_LINUX_SLL))
    public static let linuxSLL2 = LinkType(rawValue: 276)
    public static let ipv4 = LinkType(rawValue: 228)
    public static let ipv6 = LinkType(rawValue: 229)

    /// The link types hoptrace decodes.
    public static let supported: [LinkType] = [.ethernet, .linuxSLL, .linuxSLL2, .null, .loop, .raw, .ipv4, .ipv6]

    public var isSupported: Bool { LinkType.supported.contains(self) || self == .rawFileValue }

    /// libpcap's name for it (`EN10MB`, `LINUX_SLL2`, …), or `DLT <n>` when libpcap has none.
    public var name: String {
        if let p = pcap_datalink_val_to_name(rawValue) { return String(cString: p) }
        if self == .rawFileValue { return "RAW" }
        return "DLT \(rawValue)"
    }

    /// libpcap's description of it (`Ethernet`, `Linux cooked v2`, …).
    public var longDescription: String {
        if let p = pcap_datalink_val_to_description(rawValue) { return String(cString: p) }
        return name
    }

    public var description: String { name }
}
