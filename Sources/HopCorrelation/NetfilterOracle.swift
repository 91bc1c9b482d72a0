import HopCapture
import HopNetfilter

/// Rule questions answered by HopNetfilter's evaluator over a rule set (a preset or a
/// user's iptables-save). The pod's interface is assumed to be `eth0` for PREROUTING and
/// for OUTPUT to non-local destinations (rules that name another interface can be told with
/// `podInterface`).
public struct NetfilterOracle: RuleOracle {
    public let ruleSet: RuleSet
    public let name: String
    public let proxyPorts: Set<UInt16>
    public var podInterface: String

    public init(ruleSet: RuleSet, name: String, podInterface: String = "eth0") {
        self.ruleSet = ruleSet
        self.name = name
        self.podInterface = podInterface
        var ports = Set<UInt16>()
        for table in ruleSet.tables {
            for chain in table.chains {
                for rule in chain.rules {
                    if case .redirect(let r, _) = rule.target, let p = r?.lower { ports.insert(p) }
                }
            }
        }
        proxyPorts = ports
    }

    /// A preset by name (`istio-2018`, `istio-current`).
    public static func preset(_ name: String) -> NetfilterOracle? {
        RuleSet.preset(name).map { NetfilterOracle(ruleSet: $0, name: name) }
    }

    static func convert(_ a: HopCapture.IPAddress) -> HopNetfilter.IPAddress {
        if let v4 = a.ipv4Value { return .v4(v4) }
        return .v6(a.high, a.low)
    }

    public func inbound(client: Endpoint, server: Endpoint) -> RuleVerdict {
        let p = PacketContext(hook: .prerouting, inInterface: podInterface, source: Self.convert(client.address),
                              sourcePort: client.port, destination: Self.convert(server.address), destinationPort: server.port)
        return verdict(ruleSet.evaluate(p))
    }

    public func outbound(client: Endpoint, server: Endpoint, viaLoopback: Bool, uid: UInt32?, gid: UInt32?) -> RuleVerdict {
        let p = PacketContext(hook: .output, outInterface: viaLoopback ? "lo" : podInterface, source: Self.convert(client.address),
                              sourcePort: client.port, destination: Self.convert(server.address), destinationPort: server.port,
                              uid: uid, gid: gid)
        var v = verdict(ruleSet.evaluate(p))
        if let uid { v.evaluatedAs = "uid \(uid)" + (gid.map { " gid \($0)" } ?? "") }
        return v
    }

    func verdict(_ e: Evaluation) -> RuleVerdict {
        let traversal = e.branches.count == 1
            ? e.steps.map(\.description)
            : e.branches.flatMap { b in ["[\(b.condition)]"] + b.steps.map(\.description) }
        func port(_ v: Verdict) -> UInt16? {
            switch v {
            case .redirected(let p), .tproxy(let p): p
            default: nil
            }
        }
        if e.dependsOnOwner {
            let redirecting = e.branches.filter { port($0.verdict) != nil }
            let exempt = e.branches.filter { port($0.verdict) == nil }
            if let first = redirecting.first, let p = port(first.verdict), !exempt.isEmpty {
                var v = RuleVerdict(outcome: .ownerDependent(toPort: p, exempt: exempt.map { $0.condition.description }),
                                    traversal: traversal, sentence: e.ownerSummary,
                                    decidingRule: exempt.first?.decidedBy?.description)
                v.redirecting = .init(sentence: first.sentence, decidingRule: first.decidedBy?.description)
                return v
            }
            if let first = redirecting.first, let p = port(first.verdict) {
                return RuleVerdict(outcome: .redirected(toPort: p), traversal: traversal, sentence: first.sentence,
                                   decidingRule: first.decidedBy?.description)
            }
            // Not redirected whoever owns the socket: name the rule that lets each owner through.
            let rulesText = e.branches.map { b in
                "\(b.decidedBy.map { "\($0)" } ?? "policy") for \(b.condition)"
            }.joined(separator: ", ")
            return RuleVerdict(outcome: .notRedirected, traversal: traversal,
                               sentence: "not redirected for any owner: \(rulesText)",
                               decidingRule: e.decidedBy?.description ?? e.branches.last?.decidedBy?.description)
        }
        let b = e.branches[0]
        if let p = port(b.verdict) {
            return RuleVerdict(outcome: .redirected(toPort: p), traversal: traversal, sentence: b.sentence,
                               decidingRule: b.decidedBy?.description)
        }
        return RuleVerdict(outcome: .notRedirected, traversal: traversal, sentence: b.sentence,
                           decidingRule: b.decidedBy?.description)
    }
}
