import HopCapture
import HopFlows
import HopHTTP
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How the correlator decides which rules were in force.
public enum RuleSelection: Sendable {
    /// These rules (a preset or a user's iptables-save).
    case fixed(any RuleOracle)
    /// Look at the capture: a sidecar's traces (NAT-split connections, the proxy's ports,
    /// 127.0.0.6, loopback copies of inbound requests) select a preset via `presets`; no
    /// traces means no rules.
    case auto(presets: @Sendable (String) -> (any RuleOracle)?)
}

public struct CorrelatorConfiguration: Sendable {
    public var rules: RuleSelection = .fixed(NoRules())
    /// The pod's own addresses; inferred from the capture when empty.
    public var podAddresses: Set<IPAddress> = []
    /// Slack for time nesting between capture points (ns): an upstream copy may start this much
    /// before its downstream copy ended, and its response end this much after the downstream
    /// response started, before it stops being a candidate. On one host's capture the
    /// proxy's copies come strictly after (and their responses strictly before) the client's.
    public var tolerance: Int64 = 200_000
    /// How long (capture time) an upstream copy waits for its downstream copy.
    public var holdTime: Int64 = 120_000_000_000
    /// Identical requests from one client to one server closer than this are duplicates
    /// when no proxy hop explains them (0 disables the report).
    public var duplicateWindow: Int64 = 1_000_000_000
    /// The proxy's uid and gid (the owner the rules exempt): the proxy's own hops are
    /// evaluated as that owner.
    public var proxyUID: UInt32 = 1337
    public var proxyGID: UInt32 = 1337
    /// Exchanges looked at before the pod addresses and the rules are decided.
    public var inferenceSample: Int = 64
    /// A run of identical direct requests with more copies than this is a client repeating
    /// a request (load), not a duplicate (a proxy makes 2 copies, 3–4 with retries).
    public var maxDuplicateCopies: Int = 4
    /// Ambiguous downstream copies paired together (see `solvePool`); the older half of a
    /// full pool is committed and the rest wait for the copies that follow.
    public var maxPool: Int = 32
    public init() {}
}

/// What auto-detection saw.
public struct SidecarEvidence: Sendable, Hashable {
    public var natJoinedConnections = 0
    public var proxyPortConnections = 0
    public var inboundSourceAddressConnections = 0
    public var loopbackCopies = 0
    public var port15006 = false
    public var detected: Bool { natJoinedConnections + proxyPortConnections + inboundSourceAddressConnections + loopbackCopies > 0 }
    /// `istio-current` when its traces (15006, 127.0.0.6) are there, else `istio-2018`.
    public var preset: String? {
        guard detected else { return nil }
        return port15006 || inboundSourceAddressConnections > 0 ? "istio-current" : "istio-2018"
    }
    public var description: String {
        var parts: [String] = []
        if natJoinedConnections > 0 { parts.append("\(natJoinedConnections) NAT-split connection(s) to the proxy") }
        if proxyPortConnections > 0 { parts.append("\(proxyPortConnections) connection(s) on the proxy's ports") }
        if inboundSourceAddressConnections > 0 { parts.append("\(inboundSourceAddressConnections) connection(s) from 127.0.0.6") }
        if loopbackCopies > 0 { parts.append("\(loopbackCopies) request(s) repeated on lo") }
        return parts.isEmpty ? "no sidecar traces" : parts.joined(separator: ", ")
    }
}

/// Pairs the copies of each request across proxy hops and explains them (a single pass:
/// upstream copies wait, bounded by `holdTime`, for the downstream copy that encloses them).
public final class Correlator {
    public let configuration: CorrelatorConfiguration
    public private(set) var summary = AnalysisSummary()
    public private(set) var duplicates: [DuplicateGroup] = []
    /// The pod addresses in use (given or inferred), once decided.
    public private(set) var podAddresses: Set<IPAddress> = []
    public private(set) var podAddressesInferred = false
    /// The rules in use, once decided.
    public private(set) var rules: any RuleOracle = NoRules()
    public private(set) var evidence = SidecarEvidence()
    /// Whether loopback traffic is in the capture (else an upstream hop on lo cannot be seen).
    public private(set) var sawLoopback = false
    /// What every classified connection showed, for the warnings (`AnalysisWarnings`).
    public private(set) var observations = CaptureObservations()

    private let onChain: (RequestChain) -> Void
    /// When set, a plain direct request (one hop, no proxy, nothing to note: the bulk of a
    /// capture without a sidecar) is handed here as its exchange instead of as a `RequestChain` to
    /// `onChain` (it still gets a chain id and counts in the summary). For reports that only
    /// count such requests: no hop or chain is built for each.
    public var onPlainDirect: ((HTTPExchange) -> Void)?
    private var decided = false
    private var sample: [HTTPExchange] = []
    private var localAddresses: [IPAddress: Int] = [:]
    private var nextChainID = 1
    private var now: Int64 = .min

    // Waiting upstream copies, by pairing key.
    /// A waiting upstream copy (a class: candidates are looked at many times, not copied).
    private final class Up {
        let hop: Hop
        let key: PairKey
        let facts: CopyFacts
        var taken = false
        init(hop: Hop, key: PairKey) {
            self.hop = hop
            self.key = key
            facts = CopyFacts(hop.exchange)
        }
    }

    /// What pairing reads of a copy, read once: its times, Host and exact keys.
    struct CopyFacts {
        var requestStart: Int64
        /// When the request head was complete: the last byte of a request without a body,
        /// else its first packet (a proxy forwards the head before the body has arrived).
        var headEnd: Int64
        var responseStart: Int64?
        var responseEnd: Int64?
        var status: Int?
        var host: String?
        var requestID: String?
        var trace: (header: String, value: String)?

        init(_ x: HTTPExchange) {
            requestStart = x.request?.firstTimestamp ?? 0
            headEnd = (x.request?.bodyLength ?? 0) == 0 ? x.request?.lastTimestamp ?? 0 : requestStart
            responseStart = x.response?.firstTimestamp
            responseEnd = x.response?.lastTimestamp
            status = x.response?.status
            host = x.request?.host
            if let q = x.request {
                requestID = Correlator.requestID(q)
                trace = Correlator.traceID(q)
            }
        }

        /// Whether exact keys tie two copies: true when they share a request id or a trace
        /// id, false when a key both carry differs, nil when no key is on both.
        func exactKeys(_ other: CopyFacts) -> Bool? {
            var verdict: Bool? = nil
            if let x = requestID, let y = other.requestID {
                if !Correlator.sameRequestID(x, y) { return false }
                verdict = true
            }
            if let x = trace, let y = other.trace, x.header == y.header {
                if x.value != y.value { return false }
                verdict = true
            }
            return verdict
        }
    }
    private var ups: [Int: Up] = [:]
    private var upsByKey: [PairKey: [Int]] = [:]
    private var upOrder: [Int] = []  // arrival order, for expiry
    private var upOrderHead = 0
    private var nextUpID = 0

    // Ambiguous downstream copies awaiting `solvePool`.
    private struct Pending {
        var hop: Hop
        var facts: CopyFacts
        var candidates: [Int]
    }
    /// How often the forward and return orders agree on a pairing among several candidates
    /// (a moving average; starts undecided).
    private var agreement: Double = 0.5
    private var pool: [Pending] = []
    /// When the newest copy in the pool ended.
    private var poolNewestEnd: Int64 = .min
    /// Capture time after the pool's newest copy when the pool is settled (ns).
    static let settleTime: Int64 = 100_000_000
    private var poolUps: Set<Int> = []

    /// The proxy's worker groups, learned from the pairings (see `WorkerGroups`).
    private var groups = WorkerGroups()
    /// The typical delay (µs, a moving average of √cost) of recent pairings: its square is
    /// the scale of the timing-only evidence for `groups`.
    private var typicalDelay: Double = 0
    private var typicalTimingCost: Double { max(1, typicalDelay * typicalDelay) }
    /// The proxy's typical forwarding and return delays (µs), learned from the certain
    /// pairings: timing costs are deviations from them, so that an assignment shifted by a
    /// few requests (which evens out the two delays) does not look cheaper than the true one.
    private var forwardDelay: Double = 0
    private var returnDelay: Double = 0
    private var learnedDelays = 0
    /// Responses whose request is not in the capture: orphans on their hop (the first 1000).
    public private(set) var orphanResponses: [Hop] = []
    /// Worker groups found in the proxy's pairings (0: none, pairing on timing alone).
    public var workerGroups: Int { groups.groupCount }
    /// Pairings that were certain (one candidate, or an exact key on both copies).
    public var certainPairings: Int { groups.certainPairings }
    // Role cache per connection.
    private var roleCache: [ConnectionID: (HopRole, HopDetails)] = [:]
    /// The last connection classified: exchanges of one connection come in runs.
    private var lastClassified: (id: ConnectionID, role: HopRole, details: HopDetails)?
    // Duplicate detection among direct single-hop requests.
    private struct DupKey: Hashable {
        var client: IPAddress
        var server: Endpoint
        var method: String
        var target: String
        var host: String?
        /// FNV-1a over the strings, so hashing feeds one word instead of SipHashing each string.
        var fingerprint: UInt64

        init(client: IPAddress, server: Endpoint, method: String, target: String, host: String?) {
            self.client = client
            self.server = server
            self.method = method
            self.target = target
            self.host = host
            var h: UInt64 = 0xcbf2_9ce4_8422_2325
            Self.mix(method, into: &h)
            Self.mix(target, into: &h)
            Self.mix(host ?? "", into: &h)
            h ^= client.low &* 0x9e37_79b9_7f4a_7c15 ^ client.high
            h ^= UInt64(server.port) << 48 ^ server.address.low
            fingerprint = h
        }

        /// FNV-1a over the string's bytes, then a separator.
        @inline(__always)
        static func mix(_ s: String, into h: inout UInt64) {
            var s = s
            s.withUTF8 { bytes in
                for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
            }
            h = (h ^ 0xff) &* 0x100_0000_01b3
        }

        func hash(into hasher: inout Hasher) { hasher.combine(fingerprint) }
        static func == (a: DupKey, b: DupKey) -> Bool {
            a.fingerprint == b.fingerprint && a.client == b.client && a.server == b.server && a.method == b.method
                && a.target == b.target && a.host == b.host
        }
    }
    private var lastDirect: [DupKey: (start: Int64, group: Int?, chain: Int)] = [:]

    public init(configuration: CorrelatorConfiguration = .init(), onChain: @escaping (RequestChain) -> Void) {
        self.configuration = configuration
        self.onChain = onChain
    }

    // MARK: Input

    /// Consulted when the pod addresses are decided: addresses another thread saw leave the
    /// host (the capture thread, when analysis runs on a second thread).
    public var localAddressSource: (() -> [IPAddress])?

    /// Tells the correlator that `address` sent a packet out of this host (LINUX_SLL/SLL2
    /// direction "Out"): it is one of the pod's own addresses.
    public func observeLocalAddress(_ address: IPAddress) {
        guard !decided, !address.isLoopback else { return }
        localAddresses[address, default: 0] += 1
    }

    /// One exchange, as HopHTTP emits it.
    public func add(_ x: HTTPExchange) {
        summary.exchanges += 1
        if x.request != nil { summary.requestsOnWire += 1 }
        if let t = x.response?.lastTimestamp ?? x.request?.lastTimestamp, t > now { now = t }
        if !decided {
            sample.append(x)
            if sample.count >= configuration.inferenceSample { decide() }
            return
        }
        process(x)
    }

    /// The capture ended: pairs what can be paired, reports the rest.
    public func finish() {
        if !decided { decide() }
        solvePool(all: true)
        // Upstream copies nobody claimed.
        for id in upOrder[upOrderHead...] { expireUp(id) }
        upOrder.removeAll()
        upOrderHead = 0
        duplicates.sort { ($0.starts.first ?? 0) < ($1.starts.first ?? 0) }
        for i in duplicates.indices {
            duplicates[i].isRepeatedStream = duplicates[i].copies > configuration.maxDuplicateCopies
            duplicates[i].explanation = Self.duplicateExplanation(duplicates[i], rules: rules)
        }
        let streams = duplicates.filter(\.isRepeatedStream)
        summary.repeatedStreams = streams.count
        summary.repeatedStreamRequests = streams.reduce(0) { $0 + $1.copies }
        let real = duplicates.filter { !$0.isRepeatedStream }
        summary.duplicateGroups = real.count
        summary.unexplainedDuplicates = real.reduce(0) { $0 + $1.extraCopies }
    }

    /// The role an exchange gets (deciding the pod addresses and rules now if not yet done):
    /// for live views that print each exchange as it completes.
    public func role(of x: HTTPExchange) -> (role: HopRole, reason: String) {
        if !decided { decide() }
        let (role, details) = classify(x)
        return (role, details.roleReason)
    }

    // MARK: Deciding pod addresses and rules

    private func decide() {
        decided = true
        // Pod addresses: given; else packets sent out of this host; else NAT-split clients;
        // else the address in the most connections (the capture point's host).
        if !configuration.podAddresses.isEmpty {
            podAddresses = configuration.podAddresses
        } else {
            podAddressesInferred = true
            for a in localAddressSource?() ?? [] where !a.isLoopback { localAddresses[a, default: 0] += 1 }
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
        for x in sample {
            let c = x.connection
            if let q = x.request, c.client.address.isLoopback, c.server.address.isLoopback, inboundKeys.contains(q.method + " " + q.target) {
                evidence.loopbackCopies += 1
            }
        }
        switch configuration.rules {
        case .fixed(let r): rules = r
        case .auto(let presets):
            if let name = evidence.preset, let r = presets(name) { rules = r } else { rules = NoRules() }
        }
        let buffered = sample
        sample = []
        for x in buffered { process(x) }
    }

    // MARK: Roles

    private func classify(_ x: HTTPExchange) -> (HopRole, HopDetails) {
        let id = x.connectionID
        if let l = lastClassified, l.id == id { return (l.role, l.details) }
        let r: (HopRole, HopDetails)
        if let cached = roleCache[id] {
            r = cached
        } else {
            let (role, verdict, reason) = classifyUncached(x.connection)
            r = (role, HopDetails(rule: verdict, roleReason: observe(x.connection, role: role, verdict: verdict, reason: reason)))
            if roleCache.count > 50_000 { roleCache.removeAll(keepingCapacity: true) }
            roleCache[id] = r
        }
        lastClassified = (id, r.0, r.1)
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

    // MARK: Pairing

    struct PairKey: Hashable {
        var outbound: Bool
        var method: String
        var target: String
    }

    private func process(_ x: HTTPExchange) {
        let (role, details) = classify(x)
        expireUps()
        if role == .direct {
            emitDirect(x, details: details)
            return
        }
        let hop = Hop(role: role, exchange: x, details: details, attempt: 0)
        switch role {
        case .inboundForwarded, .outboundForwarded:
            guard let q = x.request else {
                recordOrphanResponse(hop)
                return
            }
            let key = PairKey(outbound: role == .outboundForwarded, method: q.method, target: q.target)
            let id = nextUpID
            nextUpID += 1
            ups[id] = Up(hop: hop, key: key)
            upsByKey[key, default: []].append(id)
            upOrder.append(id)
        case .inboundIntercepted, .outboundRedirected:
            guard let q = x.request else {
                recordOrphanResponse(hop)
                return
            }
            let key = PairKey(outbound: role == .outboundRedirected, method: q.method, target: q.target)
            let facts = CopyFacts(x)
            let cands = candidates(for: hop, facts: facts, key: key)
            // An exact key (request id, trace id) on both copies settles it.
            let matching = cands.filter { facts.exactKeys(ups[$0]!.facts) == true }
            if matching.count == 1 {
                commit(hop, facts: facts, chosen: matching[0], candidates: cands, ambiguous: false, confidence: 1.0, certain: true)
                return
            }
            // Successful attempts: those whose status is what the client got.
            let finals = cands.filter { isFinalAttempt(ups[$0]!.facts, for: facts) }
            // One candidate that is causally possible without any slack: certain, whatever
            // else is in flight.
            let strict = finals.filter { strictlyCausal(facts, ups[$0]!.facts) }
            if strict.count == 1 {
                commit(hop, facts: facts, chosen: strict[0], candidates: cands, ambiguous: false, confidence: 0.99, certain: true)
                return
            }
            // Settled copies leave the pool: nothing that arrives later competes for
            // candidates that ended this long ago.
            if !pool.isEmpty, now &- poolNewestEnd > Self.settleTime { solvePool(all: true) }
            if pool.isEmpty && finals.count <= 1 && poolUps.isDisjoint(with: cands) {
                commit(hop, facts: facts, chosen: finals.first, candidates: cands, ambiguous: false,
                       confidence: finals.isEmpty ? nil : 0.99, certain: finals.count == 1)
            } else {
                pool.append(Pending(hop: hop, facts: facts, candidates: cands))
                poolUps.formUnion(cands)
                poolNewestEnd = max(poolNewestEnd, x.response?.lastTimestamp ?? now)
                if pool.count >= configuration.maxPool { solvePool(all: false) }
            }
        case .direct:
            break  // handled above
        }
    }

    /// Upstream copies that could belong to this downstream copy: same method and target,
    /// compatible Host, no exact key that differs, and causally possible — the proxy sent its
    /// copy after the client's request head arrived and before the client's response began,
    /// and the app's response began before the client's did and ended before it ended
    /// (`tolerance` of slack for capture points whose clocks differ).
    private func candidates(for d: Hop, facts df: CopyFacts, key: PairKey) -> [Int] {
        guard let ids = upsByKey[key] else { return [] }
        let tol = configuration.tolerance
        let dRespStart = df.responseStart ?? now
        let dRespEnd = df.responseEnd ?? now
        let original = key.outbound ? d.connection.originalDestination : nil
        var out: [Int] = []
        for id in ids {
            guard let u = ups[id], !u.taken else { continue }
            let uf = u.facts
            if uf.requestStart < df.headEnd - tol || uf.requestStart > dRespStart + tol { continue }
            if let urs = uf.responseStart, let ure = uf.responseEnd {
                if urs > dRespStart + tol || ure > dRespEnd + tol { continue }
            }
            if df.host != uf.host && !hostsCompatible(df.host, uf.host) { continue }
            if let o = original, u.hop.connection.server != o { continue }
            if df.exactKeys(uf) == false { continue }
            out.append(id)
        }
        return out
    }

    /// Whether the proxy's copy lies strictly inside the client's exchange: sent after the
    /// client's request head arrived, its response begun before the client's began and ended
    /// before the client's ended.
    private func strictlyCausal(_ d: CopyFacts, _ u: CopyFacts) -> Bool {
        guard u.requestStart >= d.headEnd else { return false }
        if let drs = d.responseStart, let dre = d.responseEnd {
            guard let urs = u.responseStart, let ure = u.responseEnd, urs <= drs, ure <= dre else { return false }
        }
        return true
    }

    private func isFinalAttempt(_ u: CopyFacts, for d: CopyFacts) -> Bool {
        guard let us = u.status else { return d.status == nil }
        guard let ds = d.status else { return true }
        return us == ds
    }

    /// The squares of the proxy's forwarding and return delays, each less the proxy's
    /// typical one, in µs²: convex, so that it is smallest when the proxy's delays are alike
    /// (the order a worker that forwards in arrival order produces). Timing-only evidence for
    /// `groups`.
    private func timingCost(_ d: CopyFacts, _ u: CopyFacts) -> Double {
        let (f, r) = delays(d, u)
        // Delays below zero are possible only within the capture points' slack: they cost more.
        let a = f < 0 ? 8 * f - forwardDelay : f - forwardDelay
        let b = r < 0 ? 8 * r - returnDelay : r - returnDelay
        return a * a + b * b
    }

    /// The proxy's forwarding and return delays for this pairing, in µs.
    private func delays(_ d: CopyFacts, _ u: CopyFacts) -> (forward: Double, return: Double) {
        let uRespStart = u.responseStart ?? u.requestStart
        let dRespStart = d.responseStart ?? now
        return (Double(u.requestStart &- d.headEnd) / 1_000, Double(dRespStart &- uRespStart) / 1_000)
    }

    /// Pairs the pool's copies the way a proxy's worker handles them: in arrival order. Each
    /// downstream copy, oldest request head first, takes the first upstream copy sent after
    /// its head arrived (forward order); independently, each upstream copy, earliest response
    /// first, goes to the first downstream response that began after it (return order). Both
    /// stay within the proxy's worker groups once those are known (see `WorkerGroups`): a
    /// worker forwards its own requests in order, workers interleave freely. `all`: commits
    /// every pending copy (the pool is settled, or the capture ended); otherwise the older
    /// half, and the rest wait for the copies that follow (a sliding window over a busy
    /// stream of identical requests: memory and time stay bounded).
    ///
    /// Return order decides. With r the capture's running rate of agreement between the two
    /// orders (a proxy whose workers are known and that forwards in order agrees on nearly
    /// every request), a pairing on which they agree states 1 − (1 − r)², one on which they
    /// differ 0.9·r (measured against HAProxy's and nginx's logs in the lab: where the orders
    /// differed, return order was right about 9 times in 10, forward order rarely).
    private func solvePool(all: Bool = true) {
        guard !pool.isEmpty else { return }
        // Oldest request head first.
        let pending = pool.sorted { $0.facts.headEnd < $1.facts.headEnd }
        // Columns: every untaken final-attempt candidate, in the order the proxy sent them.
        var columns: [Int] = []
        var seen = Set<Int>()
        for p in pending {
            for id in p.candidates where !seen.contains(id) {
                seen.insert(id)
                guard let u = ups[id], !u.taken, isFinalAttempt(u.facts, for: p.facts) else { continue }
                columns.append(id)
            }
        }
        // Sorted by keys read once (not through the table in the comparator).
        columns = columns.map { (id: $0, sent: ups[$0]!.facts.requestStart) }.sorted { $0.sent < $1.sent }.map(\.id)
        let responseStarts = columns.map { ups[$0]!.facts.responseStart ?? .max }
        var position: [Int: Int] = [:]
        for (k, id) in columns.enumerated() { position[id] = k }
        // Each row's feasible columns (positions, in send order): its worker group's, then the
        // others' (taken only when its own are gone: a worker may borrow another's connection).
        var feasible: [[Int]] = []
        var fallback: [[Int]] = []
        feasible.reserveCapacity(pending.count)
        for p in pending {
            var own: [Int] = [], other: [Int] = []
            for id in p.candidates {
                guard let k = position[id], let u = ups[id], isFinalAttempt(u.facts, for: p.facts) else { continue }
                if groups.differ(down: p.hop.connection.id, up: u.hop.connection.id) { other.append(k) } else { own.append(k) }
            }
            own.sort()
            other.sort()
            feasible.append(own.isEmpty ? other : own)
            fallback.append(own.isEmpty ? [] : other)
        }
        // Forward order.
        var forward = [Int?](repeating: nil, count: pending.count)
        var takenForward = [Bool](repeating: false, count: columns.count)
        for i in pending.indices {
            if let k = feasible[i].first(where: { !takenForward[$0] }) ?? fallback[i].first(where: { !takenForward[$0] }) {
                forward[i] = k
                takenForward[k] = true
            }
        }
        // A copy left without a candidate while others could give it one (forward order across
        // workers not yet known strands copies): augmenting paths (Kuhn) re-route the fewest
        // choices so that every copy that can be paired is.
        func maximize(_ matching: inout [Int?]) {
            var owner = [Int?](repeating: nil, count: columns.count)
            for (i, k) in matching.enumerated() { if let k { owner[k] = i } }
            func augment(_ i: Int, _ visited: inout [Bool]) -> Bool {
                for list in [feasible[i], fallback[i]] {
                    for k in list where !visited[k] {
                        visited[k] = true
                        if owner[k] == nil || augment(owner[k]!, &visited) {
                            owner[k] = i
                            matching[i] = k
                            return true
                        }
                    }
                }
                return false
            }
            for i in pending.indices where matching[i] == nil && !(feasible[i].isEmpty && fallback[i].isEmpty) {
                var visited = [Bool](repeating: false, count: columns.count)
                _ = augment(i, &visited)
            }
        }
        maximize(&forward)
        // Return order: upstream copies by response start, each to the row whose response
        // began first after it.
        var rowsOfColumn = [[Int]](repeating: [], count: columns.count)
        for (i, f) in feasible.enumerated() { for k in f { rowsOfColumn[k].append(i) } }
        let byResponse = columns.indices.sorted {
            responseStarts[$0] < responseStarts[$1]
        }
        var backward = [Int?](repeating: nil, count: pending.count)
        for k in byResponse {
            var best: Int? = nil
            for i in rowsOfColumn[k] where backward[i] == nil {
                if best == nil || (pending[i].facts.responseStart ?? .max) < (pending[best!].facts.responseStart ?? .max) { best = i }
            }
            if let best { backward[best] = k }
        }
        maximize(&backward)
        let commitCount = all ? pending.count : max(1, pending.count / 2)
        pool = []
        for (i, p) in pending.enumerated() {
            guard i < commitCount else {
                pool.append(p)  // waits for the next solve
                continue
            }
            // Return order decides: a proxy queues less on the way back.
            let chosen = backward[i].map { columns[$0] }
            let alternatives = max(0, feasible[i].count - 1)
            var confidence: Double? = nil
            if chosen != nil {
                if alternatives == 0 {
                    confidence = 0.99
                } else {
                    let agree = forward[i] == backward[i]
                    agreement += ((agree ? 1 : 0) - agreement) / 256
                    let rate = min(0.99, max(0.01, agreement))
                    confidence = agree ? 1 - (1 - rate) * (1 - rate) : 0.9 * rate
                }
            }
            commit(p.hop, facts: p.facts, chosen: chosen, candidates: p.candidates,
                   ambiguous: alternatives > 0 && (confidence ?? 0) < 0.9, confidence: confidence,
                   certain: false, alternatives: alternatives)
        }
        // The copies taken by the committed ones are no longer candidates of those waiting.
        for k in pool.indices { pool[k].candidates.removeAll { ups[$0]?.taken != false } }
        poolUps = Set(pool.flatMap(\.candidates))
    }

    private func commit(_ d: Hop, facts df: CopyFacts, chosen: Int?, candidates: [Int], ambiguous: Bool, confidence: Double?,
                        certain: Bool, alternatives: Int = 0) {
        var hops = [d]
        var evidence: [String] = []
        guard let chosen, let u = ups[chosen], !u.taken else {
            emitIncomplete(d)
            return
        }
        observeTiming(d, facts: df, candidates: candidates, chosen: chosen)
        let exact = df.exactKeys(u.facts) == true
        if certain {
            let (f, r) = delays(df, u.facts)
            learnedDelays += 1
            let rate = 1 / Double(min(learnedDelays, 128))
            forwardDelay += (f - forwardDelay) * rate
            returnDelay += (r - returnDelay) * rate
        }
        // Earlier failed attempts on the same request (retries), inside the downstream copy.
        let uStart = u.hop.exchange.request?.firstTimestamp ?? 0
        var attempts: [Int] = []
        for id in candidates where id != chosen {
            guard let f = ups[id], !f.taken, let fs = f.hop.exchange.request?.firstTimestamp, fs < uStart else { continue }
            let failed = f.hop.exchange.response == nil || (f.hop.exchange.response!.status >= 500 && f.hop.exchange.response!.status != d.exchange.response?.status)
            if failed { attempts.append(id) }
        }
        attempts.sort { (ups[$0]!.hop.exchange.request!.firstTimestamp) < (ups[$1]!.hop.exchange.request!.firstTimestamp) }
        var n = 1
        for id in attempts + [chosen] {
            ups[id]!.taken = true
            var h = ups[id]!.hop
            h.attempt = n
            n += 1
            hops.append(h)
            removeUp(id)
        }
        if ambiguous { summary.ambiguousPairings += 1 }
        let group = groups.group(down: d.connection.id)
        groups.record(down: d.connection.id, up: u.hop.connection.id, certain: certain)
        evidence = self.evidence(d, hops.last!, alternatives: alternatives, group: group)
        if attempts.count > 0 { evidence.append("\(attempts.count) failed upstream attempt\(attempts.count == 1 ? "" : "s") before the one that answered") }
        var conf = confidence ?? 0.99
        if exact {
            conf = 1.0
        }
        let chain = RequestChain(id: nextChainID, hops: hops, completeness: .complete, confidence: conf,
                                 evidence: evidence)
        emit(chain)
    }

    /// Feeds `groups` with timing-only evidence (independent of the groups themselves) and
    /// keeps the typical delay up to date.
    private func observeTiming(_ d: Hop, facts df: CopyFacts, candidates: [Int], chosen: Int) {
        guard let u = ups[chosen] else { return }
        let c1 = timingCost(df, u.facts)
        typicalDelay += (c1.squareRoot() - typicalDelay) / 64
        var weights: [(ConnectionID, Double)] = []
        var total = 0.0
        for id in candidates {
            guard let v = ups[id], strictlyCausal(df, v.facts) || id == chosen else { continue }
            let w = exp(-timingCost(df, v.facts) / typicalTimingCost)
            weights.append((v.hop.connection.id, w))
            total += w
        }
        guard total > 0 else { return }
        for (up, w) in weights where w > 0 { groups.observe(down: d.connection.id, up: up, weight: w / total) }
    }

    /// A response whose request is not in the capture: an orphan on its hop, counted and
    /// listed, never a logical request.
    private func recordOrphanResponse(_ hop: Hop) {
        summary.orphanResponses += 1
        if orphanResponses.count < 1000 { orphanResponses.append(hop) }
    }

    private func removeUp(_ id: Int) {
        guard let u = ups.removeValue(forKey: id) else { return }
        if var list = upsByKey[u.key] {
            if let i = list.firstIndex(of: id) { list.remove(at: i) }
            upsByKey[u.key] = list.isEmpty ? nil : list
        }
    }

    private func expireUps() {
        let limit = now &- configuration.holdTime
        while upOrderHead < upOrder.count {
            let id = upOrder[upOrderHead]
            guard let u = ups[id] else { upOrderHead += 1; continue }
            let t = u.hop.exchange.response?.lastTimestamp ?? u.hop.exchange.request?.lastTimestamp ?? 0
            if t > limit || poolUps.contains(id) { break }
            upOrderHead += 1
            expireUp(id)
        }
        if upOrderHead > 4096 && upOrderHead * 2 > upOrder.count {
            upOrder.removeFirst(upOrderHead)
            upOrderHead = 0
        }
    }

    private func expireUp(_ id: Int) {
        guard let u = ups[id], !u.taken else { return }
        removeUp(id)
        summary.orphanUpstreams += 1
        var h = u.hop
        h.attempt = 1
        let missing = u.hop.role.downstreamRole!
        let advice = missing == .inboundIntercepted
            ? "the client's copy (to the pod's port, on the pod's interface) is not in the capture: capture with -i any inside the pod, from before the request"
            : "the app's copy (to 127.0.0.1:15001 on lo) is not in the capture: capture with -i any (or -i lo) inside the pod"
        let chain = RequestChain(id: nextChainID, hops: [h], completeness: .incomplete(missing: missing, advice: advice),
                                 confidence: 1, evidence: [])
        emit(chain)
    }

    private func emitIncomplete(_ d: Hop) {
        let missing = d.role.upstreamRole!
        // A proxy that answered by itself (upstream down: 503) made no upstream copy to miss.
        if let s = d.exchange.response?.status, s == 503 || s == 502 || s == 504 {
            let chain = RequestChain(id: nextChainID, hops: [d], completeness: .complete, confidence: 0.9,
                                     evidence: ["status \(s) with no upstream copy: the proxy answered by itself"])
            emit(chain)
            return
        }
        let advice: String
        if missing == .inboundForwarded {
            advice = sawLoopback
                ? "no proxy → app copy was found on lo: the proxy may have failed to forward it, or forwarded it outside the capture window"
                : "the proxy → app hop runs on lo, which is not in this capture: capture with -i any inside the pod"
        } else {
            advice = "no proxy → \(d.connection.originalDestination?.description ?? "remote") copy was found: capture the pod's interface too (-i any inside the pod)"
        }
        let chain = RequestChain(id: nextChainID, hops: [d], completeness: .incomplete(missing: missing, advice: advice),
                                 confidence: 1, evidence: [])
        emit(chain)
    }

    /// A direct (not intercepted) exchange: a chain of one, unless it is a copy of a request
    /// the same client sent just before with no proxy hop to explain it (a duplicate).
    private func emitDirect(_ x: HTTPExchange, details: HopDetails) {
        guard x.request != nil else {
            recordOrphanResponse(Hop(role: .direct, exchange: x, details: details, attempt: 0))
            return
        }
        let id = nextChainID
        var evidence: [String] = []
        // Fields are read through `x.request?.…`: binding the request would copy it.
        if configuration.duplicateWindow > 0, let start = x.request?.firstTimestamp {
            let key = DupKey(client: x.client.address, server: x.server,
                             method: x.request!.method, target: x.request!.target, host: x.request!.host)
            var group: Int? = nil
            let previous = lastDirect[key]
            // Exchanges arrive as their responses complete, so a copy may have started before the last one seen.
            if let last = previous, abs(start - last.start) <= configuration.duplicateWindow {
                let g: Int
                if let existing = last.group {
                    g = existing
                } else {
                    g = duplicates.count
                    duplicates.append(DuplicateGroup(method: key.method, target: key.target, host: key.host, client: key.client,
                                                     server: key.server, chainIDs: [last.chain], starts: [last.start],
                                                     copies: 1, explanation: "", isRepeatedStream: false))
                }
                duplicates[g].copies += 1
                if duplicates[g].chainIDs.count < 1000 {
                    duplicates[g].chainIDs.append(id)
                    duplicates[g].starts.append(start)
                }
                if duplicates[g].copies <= configuration.maxDuplicateCopies {
                    evidence.append("copy \(duplicates[g].copies) of the same request from \(key.client) within \(configuration.duplicateWindow / 1_000_000) ms, with no proxy hop to explain it")
                }
                group = g
            }
            lastDirect[key] = (max(start, previous?.start ?? start), group, id)
            if lastDirect.count > 100_000 { lastDirect.removeAll(keepingCapacity: true) }
        }
        if evidence.isEmpty, let sink = onPlainDirect {
            nextChainID += 1
            summary.logicalRequests += 1
            summary.roleCounts[HopRole.direct.index] += 1
            sink(x)
            return
        }
        emit(RequestChain(id: id, hops: [Hop(role: .direct, exchange: x, details: details, attempt: 0)],
                          completeness: .complete, confidence: 1, evidence: evidence))
    }

    private func emit(_ c: RequestChain) {
        var chain = c
        chain.id = nextChainID
        nextChainID += 1
        summary.logicalRequests += 1
        if chain.isMultiHop { summary.multiHopChains += 1 }
        if chain.isIncomplete { summary.incompleteChains += 1 }
        summary.retries += chain.retries
        for i in chain.hops.indices { summary.roleCounts[chain.hops[i].role.index] += 1 }
        onChain(chain)
    }

    // MARK: Evidence

    private func evidence(_ d: Hop, _ u: Hop, alternatives: Int, group: Int?) -> [String] {
        var e: [String] = []
        guard let dq = d.exchange.request, let uq = u.exchange.request else { return e }
        e.append("same method and target (\(dq.method) \(dq.target))")
        if let dh = dq.host, let uh = uq.host {
            e.append(dh == uh ? "same Host (\(dh))" : "compatible Host (\(dh) / \(uh))")
        }
        if let a = Self.requestID(dq), let b = Self.requestID(uq) {
            e.append(a == b ? "same x-request-id \(a)" : "same x-request-id (\(a) / \(b), trace digit rewritten)")
        } else if Self.requestID(dq) == nil, let b = Self.requestID(uq) {
            e.append("x-request-id \(b) added by the proxy")
        }
        if let a = Self.traceID(dq), let b = Self.traceID(uq), a == b {
            e.append("same trace id \(a.value) (\(a.header))")
        }
        let dRespEnd = d.exchange.response?.lastTimestamp
        let uRespEnd = u.exchange.response?.lastTimestamp
        let lead = uq.firstTimestamp - dq.firstTimestamp
        var nest = "time nesting: upstream request \(Timestamp.duration(lead)) after the downstream one"
        if let a = dRespEnd, let b = uRespEnd { nest += ", upstream response ended \(Timestamp.duration(a - b)) before the downstream one" }
        e.append(nest)
        if let ds = d.exchange.response?.status, let us = u.exchange.response?.status {
            e.append(ds == us ? "same status \(ds)" : "status \(us) upstream, \(ds) downstream")
        }
        if d.role == .outboundRedirected, let o = d.connection.originalDestination {
            e.append("the proxy connected to the original destination \(o)")
        }
        let differing = Self.endToEndHeaderDifferences(dq.headers, uq.headers)
        if differing.isEmpty {
            e.append("end-to-end headers equal (proxy headers ignored)")
        } else {
            e.append("end-to-end headers differ: \(differing.joined(separator: ", "))")
        }
        if let group, groups.groupCount > 1 {
            e.append("both connections belong to worker group \(group + 1) of \(groups.groupCount) the proxy showed in this capture")
        }
        if alternatives > 0 {
            e.append("\(alternatives + 1) identical requests in flight could take this copy: assigned by optimal matching on timing")
        }
        return e
    }

    /// Headers a proxy adds or rewrites (allowed to differ between copies).
    static let proxyHeaders: Set<String> = [
        "x-request-id", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port",
        "x-forwarded-client-cert", "forwarded", "via", "traceparent", "tracestate", "connection", "keep-alive",
        "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "proxy-authorization",
        "proxy-authenticate", "x-envoy-attempt-count", "x-envoy-expected-rq-timeout-ms", "x-envoy-original-path",
        "x-envoy-decorator-operation", "x-envoy-peer-metadata", "x-envoy-peer-metadata-id", "x-real-ip", "content-length",
    ]

    static func isProxyHeader(_ lower: String) -> Bool {
        proxyHeaders.contains(lower) || lower.hasPrefix("x-envoy-") || lower.hasPrefix("x-b3-") || lower == "b3"
            || lower.hasPrefix("x-forwarded-") || lower.hasPrefix("x-ot-span") || lower.hasPrefix("x-datadog-")
    }

    static func endToEndHeaderDifferences(_ a: HTTPHeaders, _ b: HTTPHeaders) -> [String] {
        // Fast path: the same end-to-end fields in the same order (a proxy appends its own).
        if sameEndToEndFields(a, b) { return [] }
        func table(_ h: HTTPHeaders) -> [String: [String]] {
            var t: [String: [String]] = [:]
            for f in h {
                let n = f.name.lowercased()
                if isProxyHeader(n) { continue }
                t[n, default: []].append(f.value)
            }
            return t
        }
        let ta = table(a), tb = table(b)
        var out: [String] = []
        for name in Set(ta.keys).union(tb.keys).sorted() where ta[name] != tb[name] { out.append(name) }
        return out
    }

    /// Whether both carry the same end-to-end fields in the same order (names compared without
    /// case): then no field differs, and no table is built.
    static func sameEndToEndFields(_ a: HTTPHeaders, _ b: HTTPHeaders) -> Bool {
        var i = a.startIndex, j = b.startIndex
        func skipProxy(_ h: HTTPHeaders, _ k: inout Int) {
            while k < h.endIndex, isProxyHeader(h[k].name.lowercased()) { k += 1 }
        }
        while true {
            skipProxy(a, &i)
            skipProxy(b, &j)
            if i == a.endIndex || j == b.endIndex { return i == a.endIndex && j == b.endIndex }
            let x = a[i], y = b[j]
            guard x.value == y.value, x.name.utf8.count == y.name.utf8.count,
                  x.name == y.name || x.name.lowercased() == y.name.lowercased() else { return false }
            i += 1
            j += 1
        }
    }

    static func requestID(_ q: HTTPRequest) -> String? { q.headers["x-request-id"] }

    /// The trace id a request carries: W3C `traceparent` (proxies keep the trace id and
    /// change the span id), B3 (`x-b3-traceid` or the single `b3` header), or Google's
    /// `x-cloud-trace-context`.
    static func traceID(_ q: HTTPRequest) -> (header: String, value: String)? {
        if let t = q.headers["traceparent"] {
            let parts = t.split(separator: "-")
            if parts.count >= 4, parts[1].utf8.count == 32 { return ("traceparent", parts[1].lowercased()) }
        }
        if let t = q.headers["x-b3-traceid"], !t.isEmpty { return ("x-b3-traceid", t.lowercased()) }
        if let t = q.headers["b3"], let first = t.split(separator: "-").first, first.utf8.count >= 16 {
            return ("b3", first.lowercased())
        }
        if let t = q.headers["x-cloud-trace-context"], let first = t.split(separator: "/").first, !first.isEmpty {
            return ("x-cloud-trace-context", first.lowercased())
        }
        return nil
    }

    /// Equal, ignoring the UUID digit (index 14) that Envoy rewrites to record its trace decision.
    static func sameRequestID(_ a: String, _ b: String) -> Bool {
        if a == b { return true }
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == 36, y.count == 36 else { return false }
        for i in 0..<36 where i != 14 && x[i] != y[i] { return false }
        return true
    }

    func hostsCompatible(_ a: String?, _ b: String?) -> Bool {
        guard let a, let b else { return true }
        func strip(_ h: String) -> Substring {
            let l = h.lowercased()
            if l.hasPrefix("[") { return Substring(l) }
            if let c = l.lastIndex(of: ":") { return l[..<c] }
            return Substring(l)
        }
        let x = strip(a), y = strip(b)
        if x == y { return true }
        // A proxy may address the app by a local name.
        let local: Set<Substring> = ["localhost", "127.0.0.1", "[::1]", "::1"]
        if local.contains(x) || local.contains(y) { return true }
        if podAddresses.contains(where: { $0.description == String(x) || $0.description == String(y) }) { return true }
        return false
    }

    static func duplicateExplanation(_ g: DuplicateGroup, rules: any RuleOracle) -> String {
        let n = g.copies
        let span = (g.starts.last ?? 0) - (g.starts.first ?? 0)
        if g.isRepeatedStream {
            return "\(g.method) \(g.target) was sent \(n) times by \(g.client) to \(g.server), each within the duplicate window of the one before: a client repeating the request (load), more copies than a proxy makes; not counted as duplicates"
        }
        var s = "\(g.method) \(g.target) was sent \(n) times by \(g.client) to \(g.server) within \(Timestamp.duration(span))"
        if rules is NoRules {
            s += ", and no interception rules are in force: these are separate requests from the client (a genuine duplicate), not proxy copies"
        } else {
            s += ", and the rules (\(rules.name)) do not intercept that connection: no proxy hop explains the copies, the client sent them"
        }
        return s
    }
}
