// The value model: a RuleSet holds tables, a table holds chains, a chain holds
// rules. Everything renders back to the text iptables-save prints.

/// A netfilter table name (`nat`, `mangle`, …). Unknown names are allowed.
public struct TableName: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible,
    ExpressibleByStringLiteral
{
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ name: String) { self.rawValue = name }
    public init(stringLiteral value: String) { self.rawValue = value }

    public static let nat = TableName("nat")
    public static let mangle = TableName("mangle")
    public static let filter = TableName("filter")
    public static let raw = TableName("raw")
    public static let security = TableName("security")

    /// The built-in chains of this table, in the order iptables-save prints them.
    public var builtinChains: [String] {
        switch rawValue {
        case "nat": ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"]
        case "mangle": ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"]
        case "filter", "security": ["INPUT", "FORWARD", "OUTPUT"]
        case "raw": ["PREROUTING", "OUTPUT"]
        default: []
        }
    }

    public var description: String { rawValue }
    public static func < (l: TableName, r: TableName) -> Bool { l.rawValue < r.rawValue }
}

/// Packet and byte counters (`[pkts:bytes]` in iptables-save, `-c pkts bytes` in `-S -v`).
public struct Counters: Hashable, Sendable {
    public var packets: UInt64
    public var bytes: UInt64
    public init(packets: UInt64 = 0, bytes: UInt64 = 0) {
        self.packets = packets
        self.bytes = bytes
    }
    public static let zero = Counters()
}

/// A built-in chain's policy.
public enum Policy: String, Hashable, Sendable, CustomStringConvertible {
    case accept = "ACCEPT"
    case drop = "DROP"
    public var description: String { rawValue }
}

/// A value with iptables' `!` in front of it.
public struct Negatable<Value: Hashable & Sendable>: Hashable, Sendable {
    public var value: Value
    public var negated: Bool
    public init(_ value: Value, negated: Bool = false) {
        self.value = value
        self.negated = negated
    }
    var bang: String { negated ? "! " : "" }
}

/// An IP protocol by number, printed by name like iptables-save (`tcp`, `udp`, `sctp`, …).
public struct IPProtocol: Hashable, Sendable, CustomStringConvertible {
    public var number: UInt8
    public init(number: UInt8) { self.number = number }

    public static let all = IPProtocol(number: 0)
    public static let icmp = IPProtocol(number: 1)
    public static let tcp = IPProtocol(number: 6)
    public static let udp = IPProtocol(number: 17)

    static let names: [(String, UInt8)] = [
        ("all", 0), ("icmp", 1), ("igmp", 2), ("ipencap", 4), ("tcp", 6), ("egp", 8), ("udp", 17),
        ("ipv6", 41), ("rsvp", 46), ("gre", 47), ("esp", 50), ("ah", 51), ("ipv6-icmp", 58),
        ("ospf", 89), ("pim", 103), ("vrrp", 112), ("l2tp", 115), ("sctp", 132), ("udplite", 136),
        ("dccp", 33), ("mh", 135),
    ]

    /// A name (`tcp`, `TCP`, `icmpv6`) or a number (`6`).
    public init?(_ text: some StringProtocol) {
        let s = text.lowercased()
        if let n = UInt8(s) { self.number = n; return }
        if s == "icmpv6" { self.number = 58; return }
        guard let e = IPProtocol.names.first(where: { $0.0 == s }) else { return nil }
        self.number = e.1
    }

    public var description: String {
        IPProtocol.names.first(where: { $0.1 == number })?.0 ?? String(number)
    }
}

/// A port or an inclusive port range (`80`, `1:1024`).
public struct PortRange: Hashable, Sendable, CustomStringConvertible {
    public var lower: UInt16
    public var upper: UInt16
    public init(_ port: UInt16) { lower = port; upper = port }
    public init(_ lower: UInt16, _ upper: UInt16) {
        self.lower = lower
        self.upper = upper
    }
    public func contains(_ p: UInt16) -> Bool { lower <= p && p <= upper }
    /// `:`-separated as in `--dport 1:1024`.
    public var description: String { lower == upper ? "\(lower)" : "\(lower):\(upper)" }
    /// `-`-separated as in `--to-ports 15001-15003`.
    var dashed: String { lower == upper ? "\(lower)" : "\(lower)-\(upper)" }
}

/// An inclusive uid/gid range (`1337`, `1000-2000`).
public struct IDRange: Hashable, Sendable, CustomStringConvertible {
    public var lower: UInt32
    public var upper: UInt32
    public init(_ id: UInt32) { lower = id; upper = id }
    public init(_ lower: UInt32, _ upper: UInt32) {
        self.lower = lower
        self.upper = upper
    }
    public var description: String { lower == upper ? "\(lower)" : "\(lower)-\(upper)" }
}

/// TCP flag bits as the tcp match knows them.
public struct TCPFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let fin = TCPFlags(rawValue: 0x01)
    public static let syn = TCPFlags(rawValue: 0x02)
    public static let rst = TCPFlags(rawValue: 0x04)
    public static let psh = TCPFlags(rawValue: 0x08)
    public static let ack = TCPFlags(rawValue: 0x10)
    public static let urg = TCPFlags(rawValue: 0x20)
    public static let all: TCPFlags = [.fin, .syn, .rst, .psh, .ack, .urg]

    static let names: [(String, UInt8)] = [
        ("FIN", 0x01), ("SYN", 0x02), ("RST", 0x04), ("PSH", 0x08), ("ACK", 0x10), ("URG", 0x20),
    ]

    /// `SYN,ACK`, `ALL`, `NONE`.
    init?(list: String) {
        var v: UInt8 = 0
        for name in list.uppercased().split(separator: ",", omittingEmptySubsequences: false) {
            if name == "ALL" { v |= 0x3f } else if name == "NONE" { continue } else if let e = TCPFlags.names.first(where: { $0.0 == name }) {
                v |= e.1
            } else {
                return nil
            }
        }
        rawValue = v
    }

    /// As the tcp match prints them: lowest bit first, `NONE` for none.
    public var description: String {
        let s = TCPFlags.names.filter { rawValue & $0.1 != 0 }.map(\.0).joined(separator: ",")
        return s.isEmpty ? "NONE" : s
    }
}

/// `--tcp-flags mask comp`: the bits in `mask`, compared with `comparison`.
public struct TCPFlagsTest: Hashable, Sendable {
    public var mask: TCPFlags
    public var comparison: TCPFlags
    public init(mask: TCPFlags, comparison: TCPFlags) {
        self.mask = mask
        self.comparison = comparison
    }
    /// `--syn`.
    public static let syn = TCPFlagsTest(mask: [.fin, .syn, .rst, .ack], comparison: .syn)
}

/// `-m tcp` / `-m udp` (also loaded implicitly by `-p tcp --dport …`).
public struct PortMatch: Hashable, Sendable {
    public var sourcePort: Negatable<PortRange>?
    public var destinationPort: Negatable<PortRange>?
    /// tcp only.
    public var flags: Negatable<TCPFlagsTest>?
    public init(sourcePort: Negatable<PortRange>? = nil, destinationPort: Negatable<PortRange>? = nil,
                flags: Negatable<TCPFlagsTest>? = nil)
    {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.flags = flags
    }
}

/// `-m multiport --sports|--dports|--ports a,b:c`.
public struct MultiportMatch: Hashable, Sendable {
    public enum Direction: String, Hashable, Sendable {
        case source = "--sports", destination = "--dports", either = "--ports"
    }
    public var direction: Direction
    public var ports: [PortRange]
    public var negated: Bool
    public init(_ direction: Direction, _ ports: [PortRange], negated: Bool = false) {
        self.direction = direction
        self.ports = ports
        self.negated = negated
    }
}

/// `-m owner`. Only valid where a local socket is known (OUTPUT, POSTROUTING).
public struct OwnerMatch: Hashable, Sendable {
    /// `--socket-exists` (negated: `! --socket-exists`).
    public var socketExists: Negatable<Bool>?
    public var uid: Negatable<IDRange>?
    public var gid: Negatable<IDRange>?
    /// `--suppl-groups`: gid also matches supplementary groups (not modelled:
    /// the evaluator only knows a connection's primary gid).
    public var supplementaryGroups: Bool
    public init(socketExists: Negatable<Bool>? = nil, uid: Negatable<IDRange>? = nil,
                gid: Negatable<IDRange>? = nil, supplementaryGroups: Bool = false)
    {
        self.socketExists = socketExists
        self.uid = uid
        self.gid = gid
        self.supplementaryGroups = supplementaryGroups
    }
}

/// `-m mark --mark value[/mask]`: `(mark & mask) == value`.
public struct MarkMatch: Hashable, Sendable {
    public var value: UInt32
    public var mask: UInt32
    public var negated: Bool
    public init(value: UInt32, mask: UInt32 = .max, negated: Bool = false) {
        self.value = value
        self.mask = mask
        self.negated = negated
    }
}

/// A `-m NAME …` clause.
public enum Match: Hashable, Sendable {
    case tcp(PortMatch)
    case udp(PortMatch)
    case multiport(MultiportMatch)
    case owner(OwnerMatch)
    case mark(MarkMatch)
    case comment(String)
    /// A match hoptrace does not model: its arguments exactly as written.
    case other(name: String, arguments: [String])

    public var name: String {
        switch self {
        case .tcp: "tcp"
        case .udp: "udp"
        case .multiport: "multiport"
        case .owner: "owner"
        case .mark: "mark"
        case .comment: "comment"
        case .other(let name, _): name
        }
    }
}

/// CONNMARK's actions (the forms iptables-save prints).
public enum ConnmarkAction: Hashable, Sendable {
    /// `--set-xmark value/mask`: ctmark = (ctmark & ~mask) ^ value.
    case setXmark(value: UInt32, mask: UInt32)
    /// `--save-mark --nfmask N --ctmask C`: ctmark = (ctmark & ~C) ^ (mark & N).
    case save(nfmask: UInt32, ctmask: UInt32)
    /// `--restore-mark --nfmask N --ctmask C`: mark = (mark & ~N) ^ (ctmark & C).
    case restore(nfmask: UInt32, ctmask: UInt32)
}

/// What `-j` (or `-g`) names.
public enum Target: Hashable, Sendable {
    /// `-j CHAIN`: a user-defined chain, returned from.
    case jump(String)
    /// `-g CHAIN`: a user-defined chain, not returned to.
    case goto(String)
    case accept
    case drop
    case `return`
    /// `REDIRECT [--to-ports N[-M]] [--random]`.
    case redirect(ports: PortRange?, random: Bool)
    /// `TPROXY --on-port N --on-ip IP --tproxy-mark V/M`.
    case tproxy(port: UInt16, ip: IPAddress, mark: UInt32, mask: UInt32)
    /// `MARK --set-xmark V/M` (`--set-mark`, `--and-mark`, `--or-mark`, `--xor-mark` are
    /// normalised to it, as iptables-save does): mark = (mark & ~M) ^ V.
    case mark(value: UInt32, mask: UInt32)
    case connmark(ConnmarkAction)
    /// A target hoptrace does not model: its arguments exactly as written.
    case other(name: String, arguments: [String])

    public var name: String {
        switch self {
        case .jump(let c), .goto(let c): c
        case .accept: "ACCEPT"
        case .drop: "DROP"
        case .return: "RETURN"
        case .redirect: "REDIRECT"
        case .tproxy: "TPROXY"
        case .mark: "MARK"
        case .connmark: "CONNMARK"
        case .other(let name, _): name
        }
    }
}

/// One rule: parameters (printed in iptables-save's order: `-s -d -i -o -p -f`),
/// match clauses in order, an optional target.
public struct Rule: Hashable, Sendable {
    public var source: Negatable<CIDR>?
    public var destination: Negatable<CIDR>?
    public var inInterface: Negatable<String>?
    public var outInterface: Negatable<String>?
    public var proto: Negatable<IPProtocol>?
    /// `-f` (true) / `! -f` (false).
    public var fragment: Bool?
    public var matches: [Match]
    public var target: Target?
    /// Per-rule counters when the text had them (`[p:b] -A …`, `-c p b`).
    public var counters: Counters?

    public init(source: Negatable<CIDR>? = nil, destination: Negatable<CIDR>? = nil,
                inInterface: Negatable<String>? = nil, outInterface: Negatable<String>? = nil,
                proto: Negatable<IPProtocol>? = nil, fragment: Bool? = nil,
                matches: [Match] = [], target: Target? = nil, counters: Counters? = nil)
    {
        self.source = source
        self.destination = destination
        self.inInterface = inInterface
        self.outInterface = outInterface
        self.proto = proto
        self.fragment = fragment
        self.matches = matches
        self.target = target
        self.counters = counters
    }
}

/// A chain: built-in ones have a policy, user-defined ones do not.
public struct Chain: Hashable, Sendable {
    public var name: String
    public var policy: Policy?
    public var counters: Counters
    public var rules: [Rule]
    public init(name: String, policy: Policy? = nil, counters: Counters = .zero, rules: [Rule] = []) {
        self.name = name
        self.policy = policy
        self.counters = counters
        self.rules = rules
    }
    public var isBuiltin: Bool { policy != nil }
}

/// One table: chains in the order they are printed (built-ins first).
public struct Table: Hashable, Sendable {
    public var name: TableName
    public var chains: [Chain]
    public init(name: TableName, chains: [Chain] = []) {
        self.name = name
        self.chains = chains
    }

    /// A table with its built-in chains, policy ACCEPT, no rules.
    public static func empty(_ name: TableName) -> Table {
        Table(name: name, chains: name.builtinChains.map { Chain(name: $0, policy: .accept) })
    }

    public func chain(_ name: String) -> Chain? { chains.first { $0.name == name } }

    public subscript(chain name: String) -> Chain? {
        get { chain(name) }
        set {
            if let i = chains.firstIndex(where: { $0.name == name }) {
                if let newValue { chains[i] = newValue } else { chains.remove(at: i) }
            } else if let newValue {
                chains.append(newValue)
            }
        }
    }
}

/// A set of tables: what `iptables-save` prints, or one table as `iptables -t T -S` prints it.
public struct RuleSet: Hashable, Sendable {
    public var tables: [Table]
    public init(tables: [Table] = []) { self.tables = tables }

    public func table(_ name: TableName) -> Table? { tables.first { $0.name == name } }

    /// The chain `name` of `table` (nat unless told).
    public func chain(_ name: String, table: TableName = .nat) -> Chain? {
        self.table(table)?.chain(name)
    }

    public subscript(table name: TableName) -> Table? {
        get { table(name) }
        set {
            if let i = tables.firstIndex(where: { $0.name == name }) {
                if let newValue { tables[i] = newValue } else { tables.remove(at: i) }
            } else if let newValue {
                tables.append(newValue)
            }
        }
    }
}
