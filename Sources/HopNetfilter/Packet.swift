// What the evaluator is told about a connection's first packet.

/// A netfilter hook; its name is the built-in chain traversed there.
public enum Hook: String, Hashable, Sendable, CustomStringConvertible {
    case prerouting = "PREROUTING"
    case input = "INPUT"
    case forward = "FORWARD"
    case output = "OUTPUT"
    case postrouting = "POSTROUTING"
    public var description: String { rawValue }
}

/// The first packet (SYN) of a connection, as the rules see it.
///
/// - `PREROUTING`: a packet that arrived on `inInterface`; it has no local socket, so
///   owner matches behave as the kernel's do without one (only an all-negated
///   `-m owner` matches) and `-o` compares against an empty name.
/// - `OUTPUT`: a packet generated locally by a process with `uid`/`gid` (nil: unknown,
///   the evaluator then follows every owner branch); it leaves on `outInterface`,
///   which is `lo` when the destination is 127.0.0.0/8, ::1 or one of the host's own
///   addresses (see `locallyGenerated`), and `-i` compares against an empty name.
public struct PacketContext: Hashable, Sendable {
    public var hook: Hook
    public var inInterface: String?
    public var outInterface: String?
    public var proto: IPProtocol
    public var source: IPAddress
    public var sourcePort: UInt16
    public var destination: IPAddress
    public var destinationPort: UInt16
    /// Owner of the sending socket (OUTPUT); nil when unknown.
    public var uid: UInt32?
    public var gid: UInt32?
    /// skb mark before the first table is traversed.
    public var mark: UInt32
    /// Connection mark (0 for a new connection).
    public var connmark: UInt32
    public var tcpFlags: TCPFlags
    public var isFragment: Bool

    public init(hook: Hook, inInterface: String? = nil, outInterface: String? = nil, proto: IPProtocol = .tcp,
                source: IPAddress, sourcePort: UInt16, destination: IPAddress, destinationPort: UInt16,
                uid: UInt32? = nil, gid: UInt32? = nil, mark: UInt32 = 0, connmark: UInt32 = 0,
                tcpFlags: TCPFlags = .syn, isFragment: Bool = false)
    {
        self.hook = hook
        self.inInterface = inInterface
        self.outInterface = outInterface
        self.proto = proto
        self.source = source
        self.sourcePort = sourcePort
        self.destination = destination
        self.destinationPort = destinationPort
        self.uid = uid
        self.gid = gid
        self.mark = mark
        self.connmark = connmark
        self.tcpFlags = tcpFlags
        self.isFragment = isFragment
    }

    /// A SYN arriving from `interface` (nat/mangle PREROUTING).
    public static func arriving(on interface: String, proto: IPProtocol = .tcp,
                                from source: IPAddress, port sourcePort: UInt16,
                                to destination: IPAddress, port destinationPort: UInt16,
                                mark: UInt32 = 0) -> PacketContext
    {
        PacketContext(hook: .prerouting, inInterface: interface, proto: proto, source: source, sourcePort: sourcePort,
                      destination: destination, destinationPort: destinationPort, mark: mark)
    }

    /// A SYN generated locally (nat/mangle OUTPUT). Its out interface is `lo` when the
    /// destination is local (127/8, ::1, or in `hostAddresses`), else `defaultInterface`.
    public static func locallyGenerated(proto: IPProtocol = .tcp,
                                        from source: IPAddress, port sourcePort: UInt16,
                                        to destination: IPAddress, port destinationPort: UInt16,
                                        uid: UInt32?, gid: UInt32?,
                                        hostAddresses: [IPAddress] = [], defaultInterface: String = "eth0",
                                        mark: UInt32 = 0) -> PacketContext
    {
        PacketContext(hook: .output,
                      outInterface: outInterface(for: destination, hostAddresses: hostAddresses, defaultInterface: defaultInterface),
                      proto: proto, source: source, sourcePort: sourcePort,
                      destination: destination, destinationPort: destinationPort, uid: uid, gid: gid, mark: mark)
    }

    /// `lo` for a destination that is loopback or one of the host's own addresses
    /// (the kernel routes those through the local table onto `lo`), else `defaultInterface`.
    public static func outInterface(for destination: IPAddress, hostAddresses: [IPAddress],
                                    defaultInterface: String) -> String
    {
        destination.isLoopback || hostAddresses.contains(destination) ? "lo" : defaultInterface
    }

    /// Whether a local socket is attached (owner matches can see it): OUTPUT and POSTROUTING.
    public var hasLocalSocket: Bool { hook == .output || hook == .postrouting }
}
