import HopCapture
import HopFlows
import HopHTTP

/// A reason the analysis cannot tell what a confident report would claim: a capture or an
/// input that leaves out what the answer depends on. Reports carry these (`warnings[]` in
/// JSON, lines on standard error and a block in text) instead of a confident wrong answer.
public struct AnalysisWarning: Sendable, Hashable {
    public enum Code: String, Sendable, Hashable, CaseIterable {
        /// Connections with packets one way only (a BPF filter that keeps one half of a
        /// sidecar's hops, a capture started mid-connection).
        case oneSidedConnections = "one-sided-connections"
        /// One interface captured and no loopback traffic: a sidecar's copies cannot be in it.
        case singleInterface = "single-interface"
        /// A `--pod-ip` that no connection of the capture has at either end.
        case podIPAbsent = "pod-ip-absent"
        /// Rules given that redirect nothing (an empty file), or nothing of a capture that
        /// shows a sidecar.
        case rulesRedirectNothing = "rules-redirect-nothing"
        /// A hop whose role (seen on the wire) contradicts what the rules say of it.
        case roleContradictsRules = "role-contradicts-rules"
    }

    /// A named count that backs the warning.
    public struct Count: Sendable, Hashable {
        public var name: String
        public var value: Int
        public init(_ name: String, _ value: Int) {
            self.name = name
            self.value = value
        }
    }

    public var code: Code
    /// One line: what is wrong and what to do about it.
    public var message: String
    /// Why the report can't tell, as a clause for its answer ("the filter left 2 connections one-sided").
    public var reason: String
    public var counts: [Count]
    /// Examples from the capture (a connection, a rule line), at most a few.
    public var evidence: [String]

    public init(code: Code, message: String, reason: String, counts: [Count], evidence: [String] = []) {
        self.code = code
        self.message = message
        self.reason = reason
        self.counts = counts
        self.evidence = evidence
    }
}

/// What the correlator saw of the capture as a whole (every connection it classified), for
/// the warnings. Bounded: the addresses are counted for the first few thousand only.
public struct CaptureObservations: Sendable {
    /// Connections classified (once each; again after the role cache is emptied).
    public var connections = 0
    /// Connections with a loopback end: the capture holds `lo`.
    public var loopbackConnections = 0
    /// Connections with one of the pod's addresses at an end (loopback not counted).
    public var podConnections = 0
    /// The pod addresses given with `--pod-ip` that some connection has at an end.
    public var givenPodAddressesSeen: Set<IPAddress> = []
    /// Connections by non-loopback address, for advice on the pod's address.
    public var connectionsByAddress: [IPAddress: Int] = [:]
    /// Connections the rules redirect (for some owner).
    public var redirectedByRules = 0
    /// Hops whose role contradicts the rule evaluation, by role, and the first of them.
    public var contradictions: [HopRole: Int] = [:]
    public var firstContradiction: String?

    static let addressLimit = 4096

    public init() {}

    mutating func record(_ c: Connection, pod: Set<IPAddress>, given: Set<IPAddress>) {
        connections += 1
        var loopback = false
        for a in [c.client.address, c.server.address] + [c.originalDestination?.address, c.replySource?.address].compactMap({ $0 }) {
            if a.isLoopback { loopback = true; continue }
            if given.contains(a) { givenPodAddressesSeen.insert(a) }
            if connectionsByAddress[a] != nil || connectionsByAddress.count < Self.addressLimit {
                connectionsByAddress[a, default: 0] += 1
            }
        }
        if loopback { loopbackConnections += 1 }
        if pod.contains(c.client.address) || pod.contains(c.server.address) { podConnections += 1 }
    }

    /// The busiest addresses, most connections first.
    func busiest(_ n: Int) -> [(IPAddress, Int)] {
        connectionsByAddress.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(n).map { ($0.key, $0.value) }
    }
}

/// Finds the warnings of an analysis from what its stages counted and saw.
public enum AnalysisWarnings {
    /// Every warning of an `analyze` run: the capture's (one-sided connections, one interface)
    /// and the inputs' (pod address, rules, roles against rules).
    /// `interfaces`: how many the capture holds (a pcapng file's; 1 otherwise).
    public static func detect(correlator: Correlator, flows: FlowCounters, http: HTTPCounters, linkType: LinkType,
                              filter: String?, interfaces: Int = 1) -> [AnalysisWarning] {
        var out: [AnalysisWarning] = []
        let seen = correlator.observations
        if let w = oneSided(flows: flows, http: http, filter: filter) { out.append(w) }
        if interfaces <= 1, let w = singleInterface(correlator: correlator, linkType: linkType) { out.append(w) }
        if let w = podAddressAbsent(correlator: correlator) { out.append(w) }
        if let w = rulesRedirectNothing(correlator: correlator) { out.append(w) }
        if !seen.contradictions.isEmpty {
            let n = seen.contradictions.values.reduce(0, +)
            let roles = HopRole.allCases.compactMap { r -> String? in
                guard let k = seen.contradictions[r] else { return nil }
                return r == .inboundForwarded
                    ? "\(k) \(r.rawValue) (the proxy's own hop to the app) that they would redirect back to the proxy"
                    : "\(k) \(r.rawValue) seen redirected on the wire that they do not redirect"
            }
            out.append(AnalysisWarning(
                code: .roleContradictsRules,
                message: "\(n) connection\(plural(n)) contradict\(n == 1 ? "s" : "") the rules (\(correlator.rules.name)): \(roles.joined(separator: "; ")); the rules in force differ from these: give the pod's own (iptables-save in its network namespace) with --rules, or auto",
                reason: "the rules given contradict what the capture shows",
                counts: HopRole.allCases.compactMap { r in seen.contradictions[r].map { .init(r.rawValue, $0) } },
                evidence: seen.firstContradiction.map { [$0] } ?? []))
        }
        return out
    }

    /// Connections with packets one way only. With a filter they are most likely its doing:
    /// a sidecar's hops run on 15001/15006 and on lo, and a NAT-split connection's two halves
    /// have different ports.
    public static func oneSided(flows: FlowCounters, http: HTTPCounters, filter: String?) -> AnalysisWarning? {
        let n = flows.oneSidedConnections
        guard n > 0 else { return nil }
        var counts: [AnalysisWarning.Count] = [.init("one-sided-connections", n)]
        if flows.unjoinedNATHalves > 0 { counts.append(.init("unjoined-nat-halves", flows.unjoinedNATHalves)) }
        if flows.gapsAckedUnseen > 0 { counts.append(.init("gaps-acked-unseen", flows.gapsAckedUnseen)) }
        if http.responsesWithoutRequest > 0 { counts.append(.init("responses-without-request", http.responsesWithoutRequest)) }
        let what = "\(n) connection\(n == 1 ? " has" : "s have") packets in one direction only"
        if let filter {
            return AnalysisWarning(
                code: .oneSidedConnections,
                message: "the filter '\(filter)' left \(n) connection\(plural(n)) one-sided: a sidecar's hops run on ports 15001/15006 and on lo, and a REDIRECTed connection's replies come from another port; include 15001/15006 and lo (e.g. 'tcp port 80 or tcp port 15001 or tcp port 15006'), or drop the filter",
                reason: "the filter '\(filter)' left \(n) connection\(plural(n)) one-sided",
                counts: counts)
        }
        return AnalysisWarning(
            code: .oneSidedConnections,
            message: "\(what) (a capture started mid-connection, or a direction not captured): their requests or responses are missing; capture with -i any from before the traffic starts",
            reason: what,
            counts: counts)
    }

    /// One interface and no loopback traffic, with traffic to or from the pod: a sidecar's
    /// copies (proxy → app and app → proxy run on lo) cannot be in the capture, so whether a
    /// proxy copied a request cannot be told. Not said when the user ruled out interception
    /// (`--rules none`) or the capture shows lo or several interfaces (`-i any`).
    static func singleInterface(correlator: Correlator, linkType: LinkType) -> AnalysisWarning? {
        let seen = correlator.observations
        if case .fixed(let r) = correlator.configuration.rules, r is NoRules { return nil }
        guard seen.loopbackConnections == 0, seen.podConnections > 0,
              linkType != .linuxSLL, linkType != .linuxSLL2 else { return nil }
        let requests = correlator.summary.requestsOnWire
        let sure = correlator.rules.proxyPorts.isEmpty
            ? "whether a sidecar copied \(requests == 1 ? "it" : "them") can't be told"
            : "the copies the rules (\(correlator.rules.name)) imply are missing"
        return AnalysisWarning(
            code: .singleInterface,
            message: "the capture holds one interface (\(linkType.name)) and no loopback traffic: a sidecar's copies run on lo (proxy → app, app → proxy on 15001), so \(sure); capture with -i any inside the pod",
            reason: "the capture holds one interface and no loopback traffic, where a sidecar's copies would be",
            counts: [.init("requests", requests), .init("pod-connections", seen.podConnections), .init("loopback-connections", 0)])
    }

    /// `--pod-ip` addresses no connection has at an end.
    static func podAddressAbsent(correlator: Correlator) -> AnalysisWarning? {
        let given = correlator.configuration.podAddresses
        let seen = correlator.observations
        let absent = given.subtracting(seen.givenPodAddressesSeen).sorted()
        guard !absent.isEmpty, seen.connections > 0 else { return nil }
        let busiest = seen.busiest(3)
        let list = absent.map(\.description).joined(separator: ", ")
        let advice = busiest.isEmpty ? "check the address" : "the busiest addresses are \(busiest.map { "\($0.0) (\($0.1) connection\(plural($0.1)))" }.joined(separator: ", ")); drop --pod-ip to infer it, or give the pod's own"
        return AnalysisWarning(
            code: .podIPAbsent,
            message: "--pod-ip \(list) appears in no connection of the capture, so roles, rules and chains that depend on the pod's address are guesses: \(advice)",
            reason: "the pod address given (\(list)) is not in the capture",
            counts: [.init("absent-addresses", absent.count), .init("connections", seen.connections)],
            evidence: busiest.map { "\($0.0): \($0.1) connection\(plural($0.1))" })
    }

    /// Rules given that redirect nothing: no REDIRECT/TPROXY at all (an empty file), or none
    /// of the connections of a capture that shows a sidecar's traces.
    static func rulesRedirectNothing(correlator: Correlator) -> AnalysisWarning? {
        guard case .fixed(let r) = correlator.configuration.rules, !(r is NoRules) else { return nil }
        let seen = correlator.observations
        if r.proxyPorts.isEmpty {
            return AnalysisWarning(
                code: .rulesRedirectNothing,
                message: "the rules \(r.name) redirect nothing (no REDIRECT or TPROXY rule): every hop they evaluate is 'not redirected'; give the pod's nat table (iptables-save -t nat in its network namespace), a preset (istio-2018, istio-current), or auto",
                reason: "the rules given (\(r.name)) redirect nothing",
                counts: [.init("redirect-rules", 0)])
        }
        guard seen.redirectedByRules == 0, correlator.evidence.detected else { return nil }
        return AnalysisWarning(
            code: .rulesRedirectNothing,
            message: "the rules \(r.name) redirect none of the capture's connections, yet it shows a sidecar (\(correlator.evidence.description)): they are not the rules in force; give the pod's own with --rules, or auto",
            reason: "the rules given (\(r.name)) redirect none of the connections",
            counts: [.init("redirected-connections", 0), .init("connections", seen.connections)])
    }

    static func plural(_ n: Int) -> String { n == 1 ? "" : "s" }
}
