// Sidecar interception rules generated from a small configuration, the way
// istio-iptables generates them. The installer exposes the fields as flags.

/// Which inbound connections the sidecar captures (`-b`).
public enum InboundCapture: Hashable, Sendable {
    /// `-b '*'`: every port except the excluded ones.
    case all
    /// `-b 80,8080`: only these destination ports.
    case ports([UInt16])
    /// `-b ''`: no inbound capture.
    case disabled
}

/// Which outbound destinations the sidecar captures (`-i`).
public enum OutboundCapture: Hashable, Sendable {
    /// `-i '*'`: every destination except the excluded ones.
    case all
    /// `-i 10.0.0.0/8,…`: only these networks.
    case networks([CIDR])
    /// `-i ''`: no outbound capture (localhost handling stays).
    case disabled
}

/// The configuration istio-iptables takes, and the nat rules it produces.
public struct InterceptConfig: Hashable, Sendable {
    /// Which generation of istio-iptables to imitate.
    public enum Style: Hashable, Sendable {
        /// istio.sh as of 2018 (the seed article): one redirect chain for both
        /// directions unless the inbound capture port differs, no tunnel port, no
        /// 127.0.0.6 exemption, owner RETURNs only.
        case istio2018
        /// istio-iptables of the 1.x sidecar era: ISTIO_IN_REDIRECT to the inbound
        /// port, the HBONE tunnel port 15008 exempt, 127.0.0.6 exempt, and the
        /// "proxy calling its own pod over lo goes inbound" rules per uid/gid.
        case current
    }

    public var style: Style
    /// `-p`: outbound capture port (ISTIO_REDIRECT).
    public var proxyPort: UInt16
    /// `-z`: inbound capture port (ISTIO_IN_REDIRECT). In the 2018 style, equal to
    /// `proxyPort` means inbound goes to ISTIO_REDIRECT as in the seed.
    public var inboundCapturePort: UInt16
    /// `-u`: uids whose traffic is not captured (the proxy's).
    public var proxyUIDs: [UInt32]
    /// `-g`: gids whose traffic is not captured.
    public var proxyGIDs: [UInt32]
    /// `-b`.
    public var inbound: InboundCapture
    /// `-d`: inbound ports never captured (with `inbound == .all`).
    public var excludedInboundPorts: [UInt16]
    /// `-i`.
    public var outbound: OutboundCapture
    /// `-x`: outbound networks never captured.
    public var excludedOutboundNetworks: [CIDR]
    /// `-o`: outbound destination ports never captured.
    public var excludedOutboundPorts: [UInt16]
    /// Inbound port always let through (current style): istio's HBONE tunnel, 15008.
    public var tunnelPort: UInt16
    /// Source address of the proxy's inbound passthrough connections (current style): 127.0.0.6.
    public var inboundPassthroughSource: IPAddress

    public init(style: Style = .current, proxyPort: UInt16 = 15001, inboundCapturePort: UInt16 = 15006,
                proxyUIDs: [UInt32] = [1337], proxyGIDs: [UInt32] = [1337], inbound: InboundCapture = .all,
                excludedInboundPorts: [UInt16] = [15090, 15021, 15020], outbound: OutboundCapture = .all,
                excludedOutboundNetworks: [CIDR] = [], excludedOutboundPorts: [UInt16] = [],
                tunnelPort: UInt16 = 15008, inboundPassthroughSource: IPAddress = .v4(0x7f00_0006))
    {
        self.style = style
        self.proxyPort = proxyPort
        self.inboundCapturePort = inboundCapturePort
        self.proxyUIDs = proxyUIDs
        self.proxyGIDs = proxyGIDs
        self.inbound = inbound
        self.excludedInboundPorts = excludedInboundPorts
        self.outbound = outbound
        self.excludedOutboundNetworks = excludedOutboundNetworks
        self.excludedOutboundPorts = excludedOutboundPorts
        self.tunnelPort = tunnelPort
        self.inboundPassthroughSource = inboundPassthroughSource
    }

    /// The seed article's pod: nginx on 80, envoy on 15001, uid/gid 1337.
    public static let istio2018 = InterceptConfig(
        style: .istio2018, proxyPort: 15001, inboundCapturePort: 15001, inbound: .ports([80]),
        excludedInboundPorts: [])

    /// A sidecar as today's injector configures it: `-p 15001 -z 15006 -u 1337 -g 1337
    /// -b '*' -d 15090,15021,15020 -i '*'`.
    public static let istioCurrent = InterceptConfig()

    /// `istio-2018`, `istio-current`.
    public static func preset(_ name: String) -> InterceptConfig? {
        switch name {
        case "istio-2018": istio2018
        case "istio-current": istioCurrent
        default: nil
        }
    }

    public static let presetNames = ["istio-2018", "istio-current"]

    /// The nat table these settings produce, as iptables-save would print it back
    /// (user chains sorted by name, options in iptables-save's order).
    public func ruleSet() -> RuleSet {
        let loopback = CIDR(.v4(0x7f00_0001))
        let inChain = style == .istio2018 && inboundCapturePort == proxyPort ? "ISTIO_REDIRECT" : "ISTIO_IN_REDIRECT"
        func tcp(dport: UInt16, negated: Bool = false) -> Match {
            .tcp(PortMatch(destinationPort: Negatable(PortRange(dport), negated: negated)))
        }
        let tcpProto = Negatable(IPProtocol.tcp)

        var inbound: [Rule] = []
        if style == .current {
            inbound.append(Rule(proto: tcpProto, matches: [tcp(dport: tunnelPort)], target: .return))
        }
        switch self.inbound {
        case .all:
            for p in excludedInboundPorts {
                inbound.append(Rule(proto: tcpProto, matches: [tcp(dport: p)], target: .return))
            }
            inbound.append(Rule(proto: tcpProto, target: .jump(inChain)))
        case .ports(let ports):
            for p in ports {
                inbound.append(Rule(proto: tcpProto, matches: [tcp(dport: p)], target: .jump(inChain)))
            }
        case .disabled:
            break
        }

        var output: [Rule] = []
        for p in excludedOutboundPorts {
            output.append(Rule(proto: tcpProto, matches: [tcp(dport: p)], target: .return))
        }
        switch style {
        case .istio2018:
            // An app calling its own pod (or a service VIP) over lo: through the proxy.
            output.append(Rule(destination: Negatable(loopback, negated: true), outInterface: Negatable("lo"),
                               target: .jump("ISTIO_REDIRECT")))
            for u in proxyUIDs {
                output.append(Rule(matches: [.owner(OwnerMatch(uid: Negatable(IDRange(u))))], target: .return))
            }
            for g in proxyGIDs {
                output.append(Rule(matches: [.owner(OwnerMatch(gid: Negatable(IDRange(g))))], target: .return))
            }
        case .current:
            // The proxy's inbound passthrough connections to the app.
            output.append(Rule(source: Negatable(CIDR(inboundPassthroughSource)), outInterface: Negatable("lo"),
                               target: .return))
            func ownerRules(_ owner: (Bool) -> OwnerMatch) {
                // The proxy calling its own pod's address over lo: captured as inbound.
                output.append(Rule(destination: Negatable(loopback, negated: true), outInterface: Negatable("lo"),
                                   proto: tcpProto, matches: [tcp(dport: tunnelPort, negated: true), .owner(owner(false))],
                                   target: .jump("ISTIO_IN_REDIRECT")))
                // Anyone else talking over lo: not captured.
                output.append(Rule(outInterface: Negatable("lo"), matches: [.owner(owner(true))], target: .return))
                // The proxy's own outbound connections: not captured.
                output.append(Rule(matches: [.owner(owner(false))], target: .return))
            }
            for u in proxyUIDs { ownerRules { OwnerMatch(uid: Negatable(IDRange(u), negated: $0)) } }
            for g in proxyGIDs { ownerRules { OwnerMatch(gid: Negatable(IDRange(g), negated: $0)) } }
        }
        // Explicit localhost: not captured.
        output.append(Rule(destination: Negatable(loopback), target: .return))
        switch outbound {
        case .all:
            for n in excludedOutboundNetworks { output.append(Rule(destination: Negatable(n), target: .return)) }
            output.append(Rule(target: .jump("ISTIO_REDIRECT")))
        case .networks(let nets):
            for n in excludedOutboundNetworks { output.append(Rule(destination: Negatable(n), target: .return)) }
            for n in nets { output.append(Rule(destination: Negatable(n), target: .jump("ISTIO_REDIRECT"))) }
            output.append(Rule(target: .return))
        case .disabled:
            break
        }

        var user: [Chain] = [
            Chain(name: "ISTIO_INBOUND", rules: inbound),
            Chain(name: "ISTIO_OUTPUT", rules: output),
            Chain(name: "ISTIO_REDIRECT", rules: [
                Rule(proto: tcpProto, target: .redirect(ports: PortRange(proxyPort), random: false)),
            ]),
        ]
        if inChain == "ISTIO_IN_REDIRECT" {
            user.append(Chain(name: "ISTIO_IN_REDIRECT", rules: [
                Rule(proto: tcpProto, target: .redirect(ports: PortRange(inboundCapturePort), random: false)),
            ]))
        }
        user.sort { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }

        var table = Table.empty(.nat)
        if self.inbound != .disabled {
            table[chain: "PREROUTING"]!.rules = [Rule(proto: tcpProto, target: .jump("ISTIO_INBOUND"))]
        }
        table[chain: "OUTPUT"]!.rules = [Rule(proto: tcpProto, target: .jump("ISTIO_OUTPUT"))]
        table.chains += user
        return RuleSet(tables: [table])
    }
}

extension RuleSet {
    /// A generated rule set by name: `istio-2018` (exactly the seed article's rules) or
    /// `istio-current`. See `InterceptConfig`.
    public static func preset(_ name: String) -> RuleSet? {
        InterceptConfig.preset(name)?.ruleSet()
    }
}
