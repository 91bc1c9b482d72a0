import HopCapture
import HopFlows
import HopHTTP

/// The pod, its rules and the role of every connection under them: the first of the
/// correlator's jobs. `decide` infers what was not given (the pod's addresses, the rules from
/// the sidecar's traces) from the capture's first exchanges; `classify` then gives each
/// connection its role, the rules' verdict on it and the reason, once, and records what it saw
/// for the warnings (`observations`).
///
/// Used by one thread at a time (the correlator's), so its state is `@exclusivity(unchecked)`
/// as the correlator's is.
final class RoleClassifier {
    let configuration: CorrelatorConfiguration
    /// The pod addresses in use (given or inferred), once decided.
    @exclusivity(unchecked) private(set) var podAddresses: Set<IPAddress> = []
    @exclusivity(unchecked) private(set) var podAddressesInferred = false
    /// The rules in use, once decided.
    @exclusivity(unchecked) private(set) var rules: any RuleOracle = NoRules()
    @exclusivity(unchecked) private(set) var evidence = SidecarEvidence()
    /// Whether loopback traffic is in the capture (else an upstream hop on lo cannot be seen).
    @exclusivity(unchecked) private(set) var sawLoopback = false
    /// What every classified connection showed, for the warnings (`AnalysisWarnings`).
    @exclusivity(unchecked) private(set) var observations = CaptureObservations()

    init(configuration: CorrelatorConfiguration) {
        self.configuration = configuration
    }

    /// A connection's role, the rules' verdict on it and its slot: the number of its id, which
    /// names the connection in `WorkerGroups` (array reads instead of hashing connection ids
    /// for every candidate).
    struct Classified {
        var role: HopRole
        var details: HopDetails
        var slot: Int
    }
    @exclusivity(unchecked) private var cache: [ConnectionID: Classified] = [:]
    /// The last connection classified: exchanges of one connection come in runs.
    private var last: (id: ConnectionID, c: Classified)?

    // MARK: Deciding pod addresses and rules

    /// Decides the pod addresses and the rules from the capture's first exchanges (`sample`)
    /// and the addresses packets were seen leaving the host from (`localAddresses`, with how
    /// many packets).
    func decide(sample: [HTTPExchange], localAddresses: [IPAddress: Int]) {
        // Pod addresses: given; else packets sent out of this host; else NAT-split clients;
        // else the address in the most connections (the capture point's host).
        if !configuration.podAddresses.isEmpty {
            podAddresses = configuration.podAddresses
        } else {
            podAddressesInferred = true
            if !localAddresses.isEmpty {
                podAddresses = Set(localAddresses.keys)
            } else {
                let joined = sample.map(\.connection).filter(\.isNATJoined).map(\.client.address).filter { !$0.isLoopback }
                if !joined.isEmpty {
                    podAddresses = Set(joined)
                } else {
                    var count: [IPAddress: (conns: Set<ConnectionID>, served: Int)] = [:]
                    for x in sample {
                        let c = x.connection
                        for (a, isServer) in [(c.client.address, false), (c.server.address, true)] where !a.isLoopback {
                            var e = count[a] ?? ([], 0)
                            e.conns.insert(c.id)
                            if isServer { e.served += 1 }
                            count[a] = e
                        }
                    }
                    if let best = count.max(by: { ($0.value.conns.count, $0.value.served) < ($1.value.conns.count, $1.value.served) }) {
                        podAddresses = [best.key]
                    }
                }
            }
        }
        // Sidecar traces.
        var inboundKeys = Set<String>()
        for x in sample {
            let c = x.connection
            if c.client.address.isLoopback || c.server.address.isLoopback { sawLoopback = true }
            if c.isNATJoined { evidence.natJoinedConnections += 1 }
            let ports: Set<UInt16> = [15001, 15006, 15008, 15090, 15021, 15020]
            if ports.contains(c.server.port) && !c.isNATJoined { evidence.proxyPortConnections += 1 }
            if c.server.port == 15006 || c.client.port == 15006 { evidence.port15006 = true }
            if c.client.address == IPAddress(ipv4: 0x7f00_0006) { evidence.inboundSourceAddressConnections += 1 }
            if let q = x.request, podAddresses.contains(c.server.address), !c.client.address.isLoopback {
                inboundKeys.insert(q.method + " " + q.target)
            }
        }
        var loopbackStarts: [Int64] = []
        for x in sample {
            let c = x.connection
            if let q = x.request, c.client.address.isLoopback, c.server.address.isLoopback {
                loopbackStarts.append(q.firstTimestamp)
                if inboundKeys.contains(q.method + " " + q.target) { evidence.loopbackCopies += 1 }
            }
        }
        // Encrypted turns into the pod whose time holds a plaintext request on lo.
        for x in sample {
            let c = x.connection
            guard let t = x.tls, podAddresses.contains(c.server.address), !c.client.address.isLoopback else { continue }
            if t.multiplexed != nil {
                // A connection carrying HTTP/2: its requests are somewhere after its start.
                if loopbackStarts.contains(where: { $0 >= t.requestFirstTimestamp }) { evidence.encryptedHTTP2Connections += 1 }
                continue
            }
            guard let end = t.responseLastTimestamp else { continue }
            if loopbackStarts.contains(where: { $0 >= t.requestFirstTimestamp && $0 <= end }) {
                evidence.encryptedLoopbackCopies += 1
            }
        }
        switch configuration.rules {
        case .fixed(let r): rules = r
        case .auto(let presets):
            if let name = evidence.preset, let r = presets(name) { rules = r } else { rules = NoRules() }
        }
    }

    // MARK: Roles

    /// The exchange's connection's role, verdict and reason (worked out once per connection).
    func classify(_ x: HTTPExchange) -> Classified {
        let id = x.connectionID
        if let l = last, l.id == id { return l.c }
        let r: Classified
        if let cached = cache[id] {
            r = cached
        } else {
            let (role, verdict, reason) = classifyUncached(x.connection)
            r = Classified(role: role, details: HopDetails(rule: verdict, roleReason: observe(x.connection, role: role, verdict: verdict, reason: reason)),
                           slot: id.value)
            if cache.count > 50_000 { cache.removeAll(keepingCapacity: true) }
            cache[id] = r
        }
        last = (id, r)
        return r
    }

    /// Records a newly classified connection in `observations`; returns the role's reason,
    /// which says so when the role contradicts the rules.
    private func observe(_ c: Connection, role: HopRole, verdict: RuleVerdict, reason: String) -> String {
        observations.record(c, pod: podAddresses, given: configuration.podAddresses)
        switch verdict.outcome {
        case .redirected, .ownerDependent: observations.redirectedByRules += 1
        case .notRedirected, .noRules: break
        }
        // Seen redirected while the rules do not redirect it; the proxy's own hop to the app
        // while the rules would redirect it (back to the proxy).
        let contradicts: Bool
        switch (role, verdict.outcome) {
        case (.outboundRedirected, .notRedirected), (.outboundRedirected, .noRules), (.inboundIntercepted, .notRedirected),
             (.inboundForwarded, .redirected):
            contradicts = true
        default:
            contradicts = false
        }
        guard contradicts else { return reason }
        observations.contradictions[role, default: 0] += 1
        let why = "\(reason); but the rules (\(rules.name)) say \(verdict.sentence): they are not the rules in force"
        if observations.firstContradiction == nil {
            observations.firstContradiction = "\(role.rawValue) \(c.client) → \(c.server): \(why)"
        }
        return why
    }

    private func classifyUncached(_ c: Connection) -> (HopRole, RuleVerdict, String) {
        let cl = c.client, sv = c.server
        let pod = podAddresses
        if c.isNATJoined, let o = c.originalDestination {
            // Seen redirected: whoever owned it took the redirecting way through the rules.
            let v = rules.outbound(client: cl, server: o, viaLoopback: false).asRedirected
            return (.outboundRedirected, v,
                    "sent to \(o) but captured on lo as \(cl) → \(sv) with replies from \(c.replySource ?? o): REDIRECTed to the proxy")
        }
        if rules is NoRules {
            return (.direct, .none, "no interception rules are in force for this capture")
        }
        let proxyUID = configuration.proxyUID, proxyGID = configuration.proxyGID
        if cl.address == IPAddress(ipv4: 0x7f00_0006) && (pod.contains(sv.address) || sv.address.isLoopback) {
            let v = rules.outbound(client: cl, server: sv, viaLoopback: true, uid: proxyUID, gid: proxyGID)
            return (.inboundForwarded, v, "from 127.0.0.6, the address the proxy uses for inbound forwarding")
        }
        if sv.address.isLoopback && cl.address.isLoopback {
            if rules.proxyPorts.contains(sv.port) {
                let v = rules.outbound(client: cl, server: sv, viaLoopback: true)
                return (.direct, v, "a connection straight to the proxy's port \(sv.port)")
            }
            // The proxy's connection to the app: the rules as they apply to the proxy's owner.
            let v = rules.outbound(client: cl, server: sv, viaLoopback: true, uid: proxyUID, gid: proxyGID)
            return (.inboundForwarded, v, "on lo to \(sv), where the proxy forwards inbound requests")
        }
        if pod.contains(sv.address) && !pod.contains(cl.address) && !cl.address.isLoopback {
            let v = rules.inbound(client: cl, server: sv)
            if case .redirected = v.outcome {
                return (.inboundIntercepted, v, "arrived for \(sv) and the rules REDIRECT it to the proxy")
            }
            return (.direct, v, "arrived for \(sv) and the rules leave it alone")
        }
        if pod.contains(cl.address) && !pod.contains(sv.address) && !sv.address.isLoopback {
            let v = rules.outbound(client: cl, server: sv, viaLoopback: sv.address.isLoopback || pod.contains(sv.address))
            switch v.outcome {
            case .ownerDependent(_, let exempt):
                let asProxy = rules.outbound(client: cl, server: sv, viaLoopback: false, uid: proxyUID, gid: proxyGID)
                return (.outboundForwarded, asProxy,
                        "left the pod for \(sv) without being redirected, which the rules allow only for \(exempt.joined(separator: " or ")): the proxy's own connection")
            case .redirected(let port):
                return (.direct, v, "the rules would redirect it to \(port) for every owner, yet it was not: the rules in force differ from \(rules.name)")
            case .notRedirected, .noRules:
                return (.direct, v, "left the pod for \(sv); the rules leave it alone")
            }
        }
        return (.direct, .none, "neither end is a pod address (\(pod.map(\.description).sorted().joined(separator: ", ")))")
    }
}
