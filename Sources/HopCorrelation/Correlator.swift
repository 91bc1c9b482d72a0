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
    /// Encrypted requests into the pod with a plaintext request on lo inside their time (an
    /// mTLS sidecar: the copy between sidecars is TLS, the proxy's copy to the app is not).
    public var encryptedLoopbackCopies = 0
    /// Encrypted HTTP/2 connections into the pod (`TLSTurnInfo.multiplexed`) with plaintext
    /// requests on lo after they began: the same, between sidecars that speak HTTP/2.
    public var encryptedHTTP2Connections = 0
    public var port15006 = false
    public var detected: Bool {
        natJoinedConnections + proxyPortConnections + inboundSourceAddressConnections + loopbackCopies + encryptedLoopbackCopies
            + encryptedHTTP2Connections > 0
    }
    /// `istio-current` when its traces (15006, 127.0.0.6) are there, else `istio-2018`.
    public var preset: String? {
        guard detected else { return nil }
        return port15006 || inboundSourceAddressConnections > 0 ? "istio-current" : "istio-2018"
    }
    public var description: String {
        var parts: [String] = []
        func s(_ n: Int) -> String { AnalysisWarnings.plural(n) }
        if natJoinedConnections > 0 { parts.append("\(natJoinedConnections) NAT-split connection\(s(natJoinedConnections)) to the proxy") }
        if proxyPortConnections > 0 { parts.append("\(proxyPortConnections) connection\(s(proxyPortConnections)) on the proxy's ports") }
        if inboundSourceAddressConnections > 0 { parts.append("\(inboundSourceAddressConnections) connection\(s(inboundSourceAddressConnections)) from 127.0.0.6") }
        if loopbackCopies > 0 { parts.append("\(loopbackCopies) request\(s(loopbackCopies)) repeated on lo") }
        if encryptedLoopbackCopies > 0 {
            parts.append("\(encryptedLoopbackCopies) encrypted request\(s(encryptedLoopbackCopies)) repeated in plaintext on lo")
        }
        if encryptedHTTP2Connections > 0 {
            parts.append("\(encryptedHTTP2Connections) encrypted HTTP/2 connection\(s(encryptedHTTP2Connections)) into the pod with plaintext requests on lo after them")
        }
        return parts.isEmpty ? "no sidecar traces" : parts.joined(separator: ", ")
    }
}

/// Pairs the copies of each request across proxy hops and explains them (a single pass:
/// upstream copies wait, bounded by `holdTime`, for the downstream copy that encloses them).
///
/// One thread at a time uses a correlator (the pairing thread of a file's analysis, then the
/// thread that finishes it), so its state is declared `@exclusivity(unchecked)`: the dynamic
/// exclusivity checks of its properties cost 3.7% of the instructions of `analyze --format
/// json` on the identical-load capture (callgrind: 44M of 1,205M, most in the pool's loops).
public final class Correlator {
    public let configuration: CorrelatorConfiguration
    @exclusivity(unchecked) public private(set) var summary = AnalysisSummary()
    /// Groups of direct requests repeated within the duplicate window (final after `finish`).
    public var duplicates: [DuplicateGroup] { duplicateDetector.groups }
    /// The pod addresses in use (given or inferred), once decided.
    public var podAddresses: Set<IPAddress> { roles.podAddresses }
    public var podAddressesInferred: Bool { roles.podAddressesInferred }
    /// The rules in use, once decided.
    public var rules: any RuleOracle { roles.rules }
    public var evidence: SidecarEvidence { roles.evidence }
    /// Whether loopback traffic is in the capture (else an upstream hop on lo cannot be seen).
    public var sawLoopback: Bool { roles.sawLoopback }
    /// What every classified connection showed, for the warnings (`AnalysisWarnings`).
    public var observations: CaptureObservations { roles.observations }

    private let onChain: (RequestChain) -> Void
    /// When set, a plain direct request (one hop, no proxy, nothing to note: the bulk of a
    /// capture without a sidecar) is handed here as its exchange instead of as a `RequestChain` to
    /// `onChain` (it still gets a chain id and counts in the summary). For reports that only
    /// count such requests: no hop or chain is built for each.
    public var onPlainDirect: ((_ exchange: HTTPExchange, _ chainID: Int) -> Void)?
    @exclusivity(unchecked) private var decided = false
    @exclusivity(unchecked) private var sample: [HTTPExchange] = []
    @exclusivity(unchecked) private var localAddresses: [IPAddress: Int] = [:]
    @exclusivity(unchecked) private var nextChainID = 1
    @exclusivity(unchecked) private var now: Int64 = .min

    // Waiting upstream copies, by pairing key.
    /// A waiting upstream copy (a class: candidates are looked at many times, not copied; the
    /// pool refers to its candidates directly, without a table between).
    private final class Up {
        /// Nil once taken into a chain (`takeHop`: moved, not copied).
        @exclusivity(unchecked) private(set) var hop: Hop?
        let key: PairKey
        let facts: CopyFacts
        /// Its connection's slot (see `classify`).
        let slot: Int
        /// Paired to a downstream copy.
        @exclusivity(unchecked) var taken = false
        /// No longer waiting (taken or expired): out of `upsByKey`.
        @exclusivity(unchecked) var removed = false
        /// Pool rows that list it as a candidate.
        @exclusivity(unchecked) var inPool = 0
        /// Its column in the pool being solved (-1: none; scratch for `solvePool`).
        @exclusivity(unchecked) var column = -1
        init(hop: Hop, key: PairKey, slot: Int) {
            facts = CopyFacts(hop.exchange)
            self.hop = hop
            self.key = key
            self.slot = slot
        }
        /// Its request's and response's HTTP/1 sizes, worked out once, when an encrypted copy
        /// first asks (`sizesFit`).
        lazy var sizes: (request: Int?, response: Int?) = hop?.exchange.http1Sizes ?? (nil, nil)
        /// The hop, moved out: a copy would retain each of its strings and arrays, and the
        /// copy left here release them again.
        func takeHop() -> Hop { hop.take()! }
    }

    /// A copy's times and status: plain values, copied freely.
    struct CopyTimes {
        var requestStart: Int64
        /// When the request head was complete: the last byte of a request without a body,
        /// else its first packet (a proxy forwards the head before the body has arrived).
        var headEnd: Int64
        var responseStart: Int64?
        var responseEnd: Int64?
        /// The last byte seen of the exchange.
        var last: Int64
        var status: Int?
        /// An encrypted turn: no status can be read.
        var encrypted = false
        /// Its HTTP/2 stream (0: HTTP/1): orders copies that came in one packet.
        var stream: UInt32 = 0
    }

    /// A connection's packet, by its time: copies that share one came together.
    struct ConnectionInstant: Hashable {
        var slot: Int
        var down: Bool
        var at: Int64
    }

    /// What pairing reads of a copy, read once: its times, Host and exact keys.
    struct CopyFacts {
        var times: CopyTimes
        var host: String?
        var requestID: String?
        var trace: (header: String, value: String)?
        /// Reset before any response (the client gave up): the proxy's copy, if any, was sent
        /// soon after the request, not any time until now.
        var abandoned = false
        /// When the client reset it (its RST_STREAM), when known.
        var gaveUpAt: Int64?
        /// The latest a proxy's copy of it can have started, given `now`: before the client gave
        /// up on it.
        func latestUpstreamStart(now: Int64) -> Int64 {
            if let r = times.responseStart { return r }
            guard abandoned else { return now }
            return min(now, gaveUpAt ?? (times.last &+ Correlator.abandonedForwardWindow))
        }

        init(_ x: HTTPExchange) {
            if let t = x.tls {
                // An encrypted turn: its head is whole once its record is (one record), else the
                // proxy may forward from the first; no status, Host or keys can be read.
                // A first turn whose server's session tickets are known: the proxy read the
                // request no earlier than it completed the handshake.
                let arrived = t.requestRecords <= 1 ? t.requestLastTimestamp : t.requestFirstTimestamp
                times = CopyTimes(
                    requestStart: t.requestFirstTimestamp,
                    headEnd: max(arrived, t.sessionTicketsAt ?? arrived),
                    responseStart: t.responseSurelyBegun, responseEnd: t.responseLastTimestamp,
                    last: t.responseLastTimestamp ?? t.requestLastTimestamp, status: nil, encrypted: true)
                return
            }
            let requestStart = x.request?.firstTimestamp ?? 0
            times = CopyTimes(
                requestStart: requestStart,
                headEnd: (x.request?.bodyLength ?? 0) == 0 ? x.request?.lastTimestamp ?? 0 : requestStart,
                responseStart: x.response?.firstTimestamp, responseEnd: x.response?.lastTimestamp,
                last: x.response?.lastTimestamp ?? x.request?.lastTimestamp ?? 0, status: x.response?.status,
                stream: x.http2?.streamID ?? 0)
            host = x.request?.host
            if let q = x.request {
                requestID = Correlator.requestID(q)
                trace = Correlator.traceID(q)
            }
            abandoned = x.response == nil && x.request != nil && Correlator.endedByReset(x)
            if abandoned, let r = x.http2?.reset, r.byClient, r.at > 0 { gaveUpAt = r.at }
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
    /// The upstream copies waiting for their downstream copy, of one key, in arrival order.
    /// A copy taken or expired is only marked (`removed`) and skipped; the list is compacted
    /// once most of it is removed. `prefixMax[i]`: the latest request start among `ups[0...i]`
    /// (nondecreasing), so that `candidates` skips at once every copy sent before a
    /// downstream copy's head arrived: a capture that lost the downstream copies of many
    /// requests (kernel drops) keeps their upstream copies for `holdTime`, hundreds of
    /// thousands of identical `GET /`, and scanning them all for each request made the
    /// analysis slower the more it lost (issue 21).
    private final class UpList {
        @exclusivity(unchecked) var ups: [Up] = []
        @exclusivity(unchecked) var prefixMax: [Int64] = []
        @exclusivity(unchecked) var removedCount = 0
        var live: Int { ups.count - removedCount }

        func append(_ u: Up) {
            ups.append(u)
            prefixMax.append(max(prefixMax.last ?? .min, u.facts.times.requestStart))
        }

        func markRemoved() {
            removedCount += 1
            if ups.count > 64 && removedCount * 2 > ups.count {
                ups.removeAll { $0.removed }
                removedCount = 0
                prefixMax.removeAll(keepingCapacity: true)
                var m = Int64.min
                for u in ups {
                    m = max(m, u.facts.times.requestStart)
                    prefixMax.append(m)
                }
            }
        }

        /// The first index whose copy, or an earlier one, started at or after `start`: every
        /// copy before it started earlier.
        func firstIndex(startingFrom start: Int64) -> Int {
            var lo = 0, hi = prefixMax.count
            while lo < hi {
                let mid = (lo + hi) >> 1
                if prefixMax[mid] < start { lo = mid + 1 } else { hi = mid }
            }
            return lo
        }
    }
    @exclusivity(unchecked) private var upsByKey: [PairKey: UpList] = [:]
    /// Upstream copies looked at by `candidates`, all told (for tests: pairing's work).
    @exclusivity(unchecked) private(set) var candidateChecks = 0
    @exclusivity(unchecked) private var upOrder: [Up] = []  // arrival order, for expiry
    @exclusivity(unchecked) private var upOrderHead = 0

    /// An ambiguous downstream copy awaiting `solvePool` (a class: the pool is sorted and
    /// slid, and moving a reference is cheaper than moving a hop).
    private final class Pending {
        /// Nil once taken into a chain (`takeHop`).
        @exclusivity(unchecked) private(set) var hop: Hop?
        let facts: CopyFacts
        let slot: Int
        @exclusivity(unchecked) var candidates: [Up]
        init(hop: Hop, facts: CopyFacts, slot: Int, candidates: [Up]) {
            self.hop = hop
            self.facts = facts
            self.slot = slot
            self.candidates = candidates
        }
        func takeHop() -> Hop { hop.take()! }
    }
    /// How often the forward and return orders agree on a pairing among several candidates
    /// (a moving average; starts undecided).
    @exclusivity(unchecked) private var agreement: Double = 0.5
    /// How often, where the orders disagree, return order's choice is the right one: the prior
    /// of each disagreement's posterior, and the moving average of those posteriors (an online
    /// EM estimate of the mixture's weight, learned from this capture; kept within 5–95%).
    @exclusivity(unchecked) private var returnRight: Double = 0.5
    /// The proxy's forwarding and return delays among pairings both orders agree on.
    @exclusivity(unchecked) private var delayModel = DelayModel()
    @exclusivity(unchecked) private var pool: [Pending] = []
    /// The pool's two orders (its arrays reused from one pool to the next).
    @exclusivity(unchecked) private var orders = PoolOrders()
    /// When the newest copy in the pool ended.
    @exclusivity(unchecked) private var poolNewestEnd: Int64 = .min
    /// Capture time after the pool's newest copy when the pool is settled (ns).
    static let settleTime: Int64 = 100_000_000

    /// The proxy's worker groups, learned from the pairings (see `WorkerGroups`).
    @exclusivity(unchecked) private var groups = WorkerGroups()
    /// The typical delay (µs, a moving average of √cost) of recent pairings: its square is
    /// the scale of the timing-only evidence for `groups`.
    @exclusivity(unchecked) private var typicalDelay: Double = 0
    private var typicalTimingCost: Double { max(1, typicalDelay * typicalDelay) }
    /// The proxy's typical forwarding and return delays (µs), learned from the certain
    /// pairings: timing costs are deviations from them, so that an assignment shifted by a
    /// few requests (which evens out the two delays) does not look cheaper than the true one.
    @exclusivity(unchecked) private var forwardDelay: Double = 0
    @exclusivity(unchecked) private var returnDelay: Double = 0
    @exclusivity(unchecked) private var learnedDelays = 0
    /// Responses whose request is not in the capture: orphans on their hop (the first 1000).
    @exclusivity(unchecked) public private(set) var orphanResponses: [Hop] = []
    /// Worker groups found in the proxy's pairings (0: none, pairing on timing alone).
    public var workerGroups: Int { groups.groupCount }
    /// Pairings that were certain (one candidate, or an exact key on both copies).
    public var certainPairings: Int { groups.certainPairings }
    /// The pod, its rules and each connection's role (see `RoleClassifier`).
    private let roles: RoleClassifier
    /// Copies of direct requests with no proxy hop to explain them (see `DuplicateDetector`).
    private var duplicateDetector: DuplicateDetector

    public init(configuration: CorrelatorConfiguration = .init(), onChain: @escaping (RequestChain) -> Void) {
        self.configuration = configuration
        self.onChain = onChain
        roles = RoleClassifier(configuration: configuration)
        duplicateDetector = DuplicateDetector(window: configuration.duplicateWindow, maxCopies: configuration.maxDuplicateCopies)
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
        if x.request != nil || (x.isEncrypted && x.tls?.multiplexed == nil) { summary.requestsOnWire += 1 }
        if let t = x.responseLastTimestamp ?? x.requestLastTimestamp, t > now { now = t }
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
        expireLateDowns(all: true)
        // Upstream copies nobody claimed.
        for u in upOrder[upOrderHead...] { expireUp(u) }
        upOrder.removeAll()
        upOrderHead = 0
        duplicateDetector.finish(rules: rules)
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
        let c = roles.classify(x)
        return (c.role, c.details.roleReason)
    }

    // MARK: Deciding pod addresses and rules

    private func decide() {
        decided = true
        // Pod addresses: given; else packets sent out of this host (seen here, or by the
        // capture thread); else NAT-split clients; else the busiest address.
        var local = localAddresses
        if configuration.podAddresses.isEmpty {
            for a in localAddressSource?() ?? [] where !a.isLoopback { local[a, default: 0] += 1 }
        }
        roles.decide(sample: sample, localAddresses: local)
        let buffered = sample
        sample = []
        for x in buffered { process(x) }
        // Those that were carriers have taken their ends.
        endedBeforeDecided = [:]
    }

    // MARK: Pairing

    struct PairKey: Hashable {
        var outbound: Bool
        var method: String
        var target: String
    }

    private func process(_ x: HTTPExchange) {
        let c = roles.classify(x)
        let role = c.role
        expireUps()
        if role == .direct {
            emitDirect(x, details: c.details)
            return
        }
        if let why = x.tls?.multiplexed {
            emitCarrier(Hop(role: role, exchange: x, details: c.details, attempt: 0), why: why)
            return
        }
        let hop = Hop(role: role, exchange: x, details: c.details, attempt: 0)
        switch role {
        case .inboundForwarded, .outboundForwarded:
            let key: PairKey
            if x.isEncrypted {
                key = Self.encryptedKey(outbound: role == .outboundForwarded)
            } else if let q = x.request {
                key = PairKey(outbound: role == .outboundForwarded, method: q.method, target: q.target)
            } else {
                recordOrphanResponse(hop)
                return
            }
            let u = Up(hop: hop, key: key, slot: c.slot)
            if let all = key.outbound ? allUpsOut : allUpsIn { all.append(u) }
            if x.isEncrypted { encryptedUps[key.outbound ? 1 : 0] = true }
            if let list = upsByKey[key] {
                list.append(u)
            } else {
                let list = UpList()
                list.append(u)
                upsByKey[key] = list
            }
            upOrder.append(u)
            if !lateDowns.isEmpty { claimLateDown(u) }
        case .inboundIntercepted, .outboundRedirected:
            let outbound = role == .outboundRedirected
            let facts = CopyFacts(x)
            let cands: [Up]
            if x.isEncrypted {
                // Encrypted: any plaintext copy of its direction may be its own (by time and size).
                cands = encryptedCandidates(for: hop, facts: facts, outbound: outbound)
            } else if let q = x.request {
                let key = PairKey(outbound: outbound, method: q.method, target: q.target)
                var found = candidates(for: hop, facts: facts, key: key)
                if encryptedUps[outbound ? 1 : 0], upsByKey[Self.encryptedKey(outbound: outbound)] != nil {
                    found += candidates(for: hop, facts: facts, key: Self.encryptedKey(outbound: outbound))
                }
                cands = found
            } else {
                recordOrphanResponse(hop)
                return
            }
            // A copy the client gave up on (reset before any response) may be ended before the
            // proxy's copy is (the proxy cancels its own when the reset reaches it): with no
            // candidate yet, it waits for one (`lateDowns`).
            if cands.isEmpty, x.response == nil, x.request != nil, Self.endedByReset(x) {
                lateDowns.append(LateDown(hop: hop, facts: facts, slot: c.slot,
                                          key: PairKey(outbound: outbound, method: x.request!.method, target: x.request!.target)))
                return
            }
            // An exact key (request id, trace id) on both copies settles it.
            if facts.requestID != nil || facts.trace != nil {
                let matching = cands.filter { facts.exactKeys($0.facts) == true }
                if matching.count == 1 {
                    commit(hop, facts: facts, slot: c.slot, chosen: matching[0], candidates: cands, ambiguous: false,
                           confidence: 1.0, certain: true)
                    return
                }
            }
            // Successful attempts: those whose status is what the client got.
            let status = facts.times.status
            var finals = 0, strict = 0
            var lastFinal: Up? = nil, lastStrict: Up? = nil
            var anyInPool = false
            for u in cands {
                if u.inPool > 0 { anyInPool = true }
                guard Self.isFinalAttempt(u.facts.times, for: status) else { continue }
                finals += 1
                lastFinal = u
                if Self.strictlyCausal(facts.times, u.facts.times) {
                    strict += 1
                    lastStrict = u
                }
            }
            // One candidate that is causally possible without any slack: certain, whatever
            // else is in flight.
            if strict == 1 {
                commit(hop, facts: facts, slot: c.slot, chosen: lastStrict, candidates: cands, ambiguous: false,
                       confidence: 0.99, certain: true)
                return
            }
            // Settled copies leave the pool: nothing that arrives later competes for
            // candidates that ended this long ago.
            if !pool.isEmpty, now &- poolNewestEnd > Self.settleTime {
                solvePool(all: true)
                anyInPool = false
            }
            if pool.isEmpty && finals <= 1 && !anyInPool {
                commit(hop, facts: facts, slot: c.slot, chosen: lastFinal, candidates: cands, ambiguous: false,
                       confidence: finals == 0 ? nil : 0.99, certain: finals == 1)
            } else {
                for u in cands { u.inPool += 1 }
                pool.append(Pending(hop: hop, facts: facts, slot: c.slot, candidates: cands))
                poolNewestEnd = max(poolNewestEnd, x.responseLastTimestamp ?? now)
                if pool.count >= configuration.maxPool { solvePool(all: false) }
            }
        case .direct:
            break  // handled above
        }
    }

    /// A downstream copy the client reset before any response, still waiting for the proxy's
    /// copy (which the proxy ends later, when the reset reaches it).
    private struct LateDown {
        var hop: Hop
        var facts: CopyFacts
        var slot: Int
        var key: PairKey
    }
    @exclusivity(unchecked) private var lateDowns: [LateDown] = []
    /// How long (capture time) a reset downstream copy waits for its upstream copy.
    static let lateWait: Int64 = 2_000_000_000
    /// How long after a reset copy's last byte the proxy's copy of it may start (a proxy
    /// forwards a request when it arrives, not when the client gives up on it).
    static let abandonedForwardWindow: Int64 = 1_000_000_000

    /// Whether the exchange ended with a reset: its HTTP/2 stream was reset, or its connection.
    static func endedByReset(_ x: HTTPExchange) -> Bool {
        if x.http2?.reset != nil { return true }
        if case .reset? = x.connection.closeReason { return true }
        return false
    }

    /// A new upstream copy that began after a waiting reset downstream copy's head (and within
    /// the wait) completes it: the earliest such downstream copy takes it.
    private func claimLateDown(_ u: Up) {
        let tol = configuration.tolerance
        let ut = u.facts.times
        var matches: [Int] = []
        for (i, d) in lateDowns.enumerated() where d.key == u.key {
            let dt = d.facts.times
            // Sent after the client's head, and before the client gave up (its reset is not
            // kept apart from the request's end: within the wait).
            guard ut.requestStart >= dt.headEnd - tol, ut.requestStart <= d.facts.latestUpstreamStart(now: now) + tol else { continue }
            if d.facts.host != u.facts.host && !hostsCompatible(d.facts.host, u.facts.host) { continue }
            if d.facts.exactKeys(u.facts) == false { continue }
            matches.append(i)
        }
        guard let first = matches.min(by: { lateDowns[$0].facts.times.headEnd < lateDowns[$1].facts.times.headEnd }) else { return }
        let d = lateDowns.remove(at: first)
        let exact = d.facts.exactKeys(u.facts) == true
        // One reset copy in flight with this request: the proxy's copy is its own; with more,
        // the earliest takes it (an even guess among them).
        let confidence = exact ? 1.0 : matches.count == 1 ? 0.9 : 1 / Double(matches.count)
        commit(d.hop, facts: d.facts, slot: d.slot, chosen: u, candidates: [u], ambiguous: !exact && matches.count > 1,
               confidence: confidence, certain: exact, alternatives: matches.count - 1)
    }

    /// Reset downstream copies that waited long enough (or all, at the end): incomplete.
    private func expireLateDowns(all: Bool) {
        guard !lateDowns.isEmpty else { return }
        let limit = now &- Self.lateWait
        var kept: [LateDown] = []
        for d in lateDowns {
            if all || d.facts.times.last < limit { emitIncomplete(d.hop) } else { kept.append(d) }
        }
        lateDowns = kept
    }

    /// The key of encrypted upstream copies (an encrypted turn has no method or target: every
    /// plaintext downstream copy of its direction may be its own). No request line escapes to
    /// this target.
    static func encryptedKey(outbound: Bool) -> PairKey { PairKey(outbound: outbound, method: "", target: "\u{1}tls") }

    /// Every waiting upstream copy of each direction, whatever its key, in arrival order: kept
    /// once an encrypted downstream copy has been seen (its candidates are not one key's).
    @exclusivity(unchecked) private var allUpsIn: UpList?
    @exclusivity(unchecked) private var allUpsOut: UpList?
    /// Whether an encrypted upstream copy was seen, inbound and outbound (else plaintext
    /// downstream copies look no further than their own key).
    @exclusivity(unchecked) private var encryptedUps = [false, false]

    /// Upstream copies that could belong to an encrypted downstream copy: any key of its
    /// direction, causally possible as for `candidates`, and of a size that fits the turns'
    /// (`sizesFit`).
    private func encryptedCandidates(for d: Hop, facts df: CopyFacts, outbound: Bool) -> [Up] {
        let list: UpList
        if let l = outbound ? allUpsOut : allUpsIn {
            list = l
        } else {
            // The first encrypted copy of this direction: every copy still waiting joins.
            list = UpList()
            for u in upOrder[upOrderHead...] where !u.removed && u.key.outbound == outbound { list.append(u) }
            if outbound { allUpsOut = list } else { allUpsIn = list }
        }
        guard let turn = d.exchange.tls else { return [] }
        let tol = configuration.tolerance
        let dt = df.times
        let dRespStart = dt.responseStart ?? now
        let dRespEnd = dt.responseEnd ?? now
        let original = outbound ? d.connection.originalDestination : nil
        var out: [Up] = []
        let waiting = list.ups
        let first = list.firstIndex(startingFrom: dt.headEnd - tol)
        candidateChecks &+= waiting.count - first
        for i in first..<waiting.count {
            let u = waiting[i]
            guard !u.taken, !u.removed, !u.facts.times.encrypted else { continue }
            let ut = u.facts.times
            if ut.requestStart < dt.headEnd - tol || ut.requestStart > dRespStart + tol { continue }
            if let urs = ut.responseStart, let ure = ut.responseEnd {
                if urs > dRespStart + tol || ure > dRespEnd + tol { continue }
            }
            if let o = original, u.hop?.exchange.server != o { continue }
            if !Self.sizesFit(turn, u.sizes, answered: u.facts.times.responseStart != nil) { continue }
            out.append(u)
        }
        return out
    }

    /// Whether a plaintext copy's sizes fit an encrypted turn's: each within a quarter (at least
    /// 1 KiB) of the other, since a proxy adds and drops headers (X-Request-Id,
    /// X-Forwarded-For, its own Server…); a turn that carries handshake bytes, or was cut by a
    /// gap, only bounds them.
    static func sizesFit(_ t: TLSTurnInfo, _ x: HTTPExchange) -> Bool {
        sizesFit(t, x.http1Sizes, answered: x.response != nil)
    }

    static func sizesFit(_ t: TLSTurnInfo, _ sizes: (request: Int?, response: Int?), answered: Bool) -> Bool {
        func fits(_ encrypted: Int, _ plain: Int?, loose: Bool) -> Bool {
            guard let plain else { return true }
            let slack = max(1_024, max(encrypted, plain) / 4)
            if loose { return encrypted + slack >= plain || t.cutByGap }
            return abs(encrypted - plain) <= slack
        }
        guard fits(t.requestPlaintextBytes, sizes.request, loose: t.includesHandshake || t.cutByGap) else { return false }
        guard t.responseFirstTimestamp != nil, answered else { return true }
        return fits(t.responsePlaintextBytes, sizes.response, loose: t.includesHandshake || t.cutByGap)
    }

    /// Upstream copies that could belong to this downstream copy: same method and target,
    /// compatible Host, no exact key that differs, and causally possible — the proxy sent its
    /// copy after the client's request head arrived and before the client's response began,
    /// and the app's response began before the client's did and ended before it ended
    /// (`tolerance` of slack for capture points whose clocks differ).
    private func candidates(for d: Hop, facts df: CopyFacts, key: PairKey) -> [Up] {
        guard let list = upsByKey[key] else { return [] }
        let tol = configuration.tolerance
        let dt = df.times
        let dRespStart = df.latestUpstreamStart(now: now)
        let dRespEnd = dt.responseEnd ?? now
        let original = key.outbound ? d.connection.originalDestination : nil
        let encrypted = key.method.isEmpty && key == Self.encryptedKey(outbound: key.outbound)
        var out: [Up] = []
        let waiting = list.ups
        let first = list.firstIndex(startingFrom: dt.headEnd - tol)
        candidateChecks &+= waiting.count - first
        out.reserveCapacity(waiting.count - first)
        for i in first..<waiting.count {
            let u = waiting[i]
            guard !u.taken, !u.removed else { continue }
            let ut = u.facts.times
            if ut.requestStart < dt.headEnd - tol || ut.requestStart > dRespStart + tol { continue }
            if let urs = ut.responseStart, let ure = ut.responseEnd {
                if urs > dRespStart + tol || ure > dRespEnd + tol { continue }
            }
            if df.host != u.facts.host && !hostsCompatible(df.host, u.facts.host) { continue }
            if let o = original, u.hop?.exchange.server != o { continue }
            if df.exactKeys(u.facts) == false { continue }
            if encrypted, let t = u.hop?.exchange.tls, !Self.sizesFit(t, d.exchange) { continue }
            out.append(u)
        }
        return out
    }

    /// Whether the proxy's copy lies strictly inside the client's exchange: sent after the
    /// client's request head arrived, its response begun before the client's began and ended
    /// before the client's ended.
    private static func strictlyCausal(_ d: CopyTimes, _ u: CopyTimes) -> Bool {
        guard u.requestStart >= d.headEnd else { return false }
        if let drs = d.responseStart, let dre = d.responseEnd {
            guard let urs = u.responseStart, let ure = u.responseEnd, urs <= drs, ure <= dre else { return false }
        }
        return true
    }

    /// Whether an upstream attempt answered with `upstream` is the one that gave the client
    /// `downstream` (its final attempt).
    private static func isFinalAttempt(_ upstream: CopyTimes, for downstream: Int?) -> Bool {
        // An encrypted copy that was answered: its status cannot be read, any may be its own.
        if upstream.encrypted { return upstream.responseStart != nil || downstream == nil }
        return isFinalAttempt(upstream.status, for: downstream)
    }

    private static func isFinalAttempt(_ upstream: Int?, for downstream: Int?) -> Bool {
        guard let us = upstream else { return downstream == nil }
        guard let ds = downstream else { return true }
        return us == ds
    }

    /// The squares of the proxy's forwarding and return delays, each less the proxy's
    /// typical one, in µs²: convex, so that it is smallest when the proxy's delays are alike
    /// (the order a worker that forwards in arrival order produces). Timing-only evidence for
    /// `groups`.
    private func timingCost(_ d: CopyTimes, _ u: CopyTimes) -> Double {
        let (f, r) = delays(d, u)
        // Delays below zero are possible only within the capture points' slack: they cost more.
        let a = f < 0 ? 8 * f - forwardDelay : f - forwardDelay
        let b = r < 0 ? 8 * r - returnDelay : r - returnDelay
        return a * a + b * b
    }

    /// The proxy's forwarding and return delays for this pairing, in µs.
    private func delays(_ d: CopyTimes, _ u: CopyTimes) -> (forward: Double, return: Double) {
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
    /// every request) and w how often return order has won where they differed, a pairing on
    /// which they agree states 1 − (1 − p)² with p = 1 − (1 − r)(1 − w), or p alone while the
    /// delay model has not yet seen enough pairings; one on which they differ states the delay
    /// model's posterior for return order's choice against forward order's (w its prior).
    private func solvePool(all: Bool = true) {
        guard !pool.isEmpty else { return }
        // Oldest request head first (in place: the rows are moved, not copied).
        // Copies in one packet of one connection (HTTP/2 streams) in the order their frames came.
        pool.sort { ($0.facts.times.headEnd, $0.facts.times.stream) < ($1.facts.times.headEnd, $1.facts.times.stream) }
        let rows = pool.count
        // Columns: every untaken final-attempt candidate, in the order the proxy sent them
        // (-2 marks a copy already looked at).
        var columns: [Up] = []
        for i in 0..<rows {
            let status = pool[i].facts.times.status
            for u in pool[i].candidates where u.column == -1 {
                u.column = -2
                if !u.taken && Self.isFinalAttempt(u.facts.times, for: status) { columns.append(u) }
            }
        }
        columns.sort { ($0.facts.times.requestStart, $0.facts.times.stream) < ($1.facts.times.requestStart, $1.facts.times.stream) }
        for (k, u) in columns.enumerated() { u.column = k }
        // Each row's feasible columns (in send order): its worker group's, then the others'
        // (taken only when its own are gone: a worker may borrow another's connection).
        orders.reset(columns: columns.count)
        for i in 0..<rows {
            let status = pool[i].facts.times.status, slot = pool[i].slot
            let candidates = pool[i].candidates
            orders.beginRow()
            for k in candidates.indices {
                let u = candidates[k]
                guard u.column >= 0, Self.isFinalAttempt(u.facts.times, for: status) else { continue }
                orders.addColumn(u.column, own: !groups.differ(down: slot, up: u.slot))
            }
            orders.endRow()
        }
        // Forward order, and return order: upstream copies by response start, each to the row
        // whose response began first after it.
        orders.solve(columnResponseStarts: columns.map { $0.facts.times.responseStart ?? .max },
                     rowResponseStarts: pool.map { $0.facts.times.responseStart ?? .max })
        let forward = orders.forward, backward = orders.backward, backwardOwner = orders.backwardOwner
        // The pool lets go of its candidates (the rows that wait take theirs again below).
        for i in 0..<rows {
            for u in pool[i].candidates {
                u.inPool -= 1
                u.column = -1
            }
        }
        let commitCount = all ? rows : max(1, rows / 2)
        let pending = pool
        pool = []
        // The pairings both orders agree on teach the delay model first, so that the
        // disagreements of the same pool (all of a capture's first pool, when every connection
        // opens at once) are weighed by it.
        for i in 0..<commitCount where orders.feasibleCount(i) > 1 {
            let b = backward[i]
            if b >= 0, forward[i] == b {
                let (f, r) = delays(pending[i].facts.times, columns[b].facts.times)
                delayModel.observe(forward: f, return: r)
            }
        }
        // Return order decides: a proxy queues less on the way back. A copy the client gave up
        // on has no response to order by: forward order decides it.
        var decidedColumn = [Int](repeating: -1, count: commitCount)
        for i in 0..<commitCount { decidedColumn[i] = pending[i].facts.abandoned ? forward[i] : backward[i] }
        // Responses that came back in one packet of one connection (HTTP/2 streams answered
        // together) cannot be told apart by return order: among such copies the columns return
        // order gave them go out in forward order instead (copies in one packet in the order
        // their frames came; the proxy numbers the streams it opens upstream in that order).
        let tieCounts = responseTieGroups(pending: pending, columns: columns, decided: &decidedColumn)
        for i in 0..<commitCount {
            let decided = decidedColumn[i]
            let ties = tieCounts.isEmpty ? 0 : tieCounts[i]
            let chosen = decided >= 0 ? columns[decided] : nil
            let alternatives = max(0, orders.feasibleCount(i) - 1)
            var confidence: Double? = nil
            var agree: Bool? = nil
            if chosen != nil {
                if alternatives == 0 {
                    confidence = 0.99
                } else {
                    let agrees = forward[i] == backward[i]
                    agree = ties > 0 ? nil : agrees
                    // (Among tied responses return order's choice was arbitrary: no lesson there.)
                    if ties == 0 { agreement += ((agrees ? 1 : 0) - agreement) / 256 }
                    if ties > 0 {
                        // Forward order alone: right where the orders agree, and where they
                        // differ and forward order wins.
                        confidence = min(0.98, max(0.02, agreement + (1 - agreement) * (1 - returnRight)))
                    } else if !agrees, forward[i] >= 0, backward[i] >= 0 {
                        let f = forward[i], b = backward[i]
                        // Which order is right here: the choice whose delays are more typical of
                        // the pairings both orders agree on, weighed by how often return order
                        // has won so far (the prior, learned from this capture the same way). Where
                        // the two orders swap two copies, both rows' delays count.
                        let times = pending[i].facts.times
                        var chosenL = delayModel.likelihood(delays(times, columns[b].facts.times))
                        var otherL = delayModel.likelihood(delays(times, columns[f].facts.times))
                        if case let j = backwardOwner[f], j >= 0, j != i, forward[j] == b {
                            let other = pending[j].facts.times
                            chosenL *= delayModel.likelihood(delays(other, columns[f].facts.times))
                            otherL *= delayModel.likelihood(delays(other, columns[b].facts.times))
                        }
                        let q = DelayModel.posterior(chosen: chosenL, other: otherL, prior: returnRight)
                        returnRight = min(0.95, max(0.05, returnRight + (q - returnRight) / 64))
                        // `q` weighs the two orders' choices against each other; both can be
                        // wrong (`oneOfTwoRight`). An mTLS pod's start-up at 64 connections (TLS
                        // handshakes, the upstream pool opening for ~300 ms) agreed 20-40%, and
                        // there 50 of 58 disagreements stated >= 0.9 had been wrong. Where return
                        // order nearly always wins (nginx) the factor stays near 1 however
                        // rarely the orders agree: forward order is the one that errs.
                        confidence = min(0.98, max(0.02, q * Self.oneOfTwoRight(agreement: agreement, returnRight: returnRight)))
                    } else {
                        // Return order is wrong only where the orders disagree and it loses.
                        // Until the delay model has seen the proxy (a capture's first pool,
                        // every connection opening at once), the two orders are not yet two
                        // independent witnesses: a proxy opening its upstream connections in a
                        // burst garbles both alike (HAProxy's logs: at 32-64 connections a third
                        // of those first agreements were wrong, stated 0.90-0.94), so they count
                        // as one.
                        let p = min(0.999, max(0.01, 1 - (1 - agreement) * (1 - returnRight)))
                        confidence = delayModel.isReady ? 1 - (1 - p) * (1 - p) : p
                    }
                }
            }
            commit(pending[i].takeHop(), facts: pending[i].facts, slot: pending[i].slot, chosen: chosen,
                   candidates: pending[i].candidates, ambiguous: alternatives > 0 && (confidence ?? 0) < 0.9,
                   confidence: confidence, certain: false, alternatives: alternatives, ordersAgree: agree, responseTies: ties)
        }
        // The rest wait; the copies taken by the committed ones are no longer their candidates.
        for i in commitCount..<rows {
            let p = pending[i]
            p.candidates.removeAll { $0.taken || $0.removed }
            for u in p.candidates { u.inPool += 1 }
            pool.append(p)
        }
    }

    /// The chance that one of two disagreeing orders is right, were each right on its own with
    /// probabilities a (return) and b (forward): a·b = `agreement`, and of the disagreements with
    /// one of them right return order has a(1 − b) / (a(1 − b) + b(1 − a)) = `returnRight`.
    /// Solved for a by bisection (the share rises with a from b = 1 to a = 1); equal a and b give
    /// 2p/(1 + p), p = √agreement.
    static func oneOfTwoRight(agreement r: Double, returnRight pi: Double) -> Double {
        let r = min(0.999, max(0.001, r))
        var lo = r, hi = 1.0
        for _ in 0..<40 {
            let a = (lo + hi) / 2, b = r / a
            let ret = a * (1 - b), fwd = b * (1 - a)
            if ret / (ret + fwd) < pi { lo = a } else { hi = a }
        }
        let a = (lo + hi) / 2, b = r / a
        return min(1, (a * (1 - b) + b * (1 - a)) / (1 - r))
    }

    /// For each of the first `decided.count` rows, how many other rows' responses came back
    /// in one packet with its own (on its downstream connection, or on the upstream connection
    /// of the column it was given); within each such group the group's columns are handed out
    /// again in forward order (rows by head, columns by send order, both with the HTTP/2
    /// stream as the order within a packet). Only HTTP/2 copies' connections are looked at: an
    /// HTTP/1 connection carries one response at a time.
    /// Empty when no copy of the pool is an HTTP/2 stream (nothing allocated for HTTP/1 pools).
    private func responseTieGroups(pending: [Pending], columns: [Up], decided: inout [Int]) -> [Int] {
        let n = decided.count
        let anyStream = (0..<n).contains { i in
            pending[i].facts.times.stream > 0 || (decided[i] >= 0 && columns[decided[i]].facts.times.stream > 0)
        }
        guard anyStream else { return [] }
        var ties = [Int](repeating: 0, count: n)
        var first: [ConnectionInstant: Int] = [:]
        var parent = Array(0..<n)
        func root(_ x: Int) -> Int {
            var x = x
            while parent[x] != x { parent[x] = parent[parent[x]]; x = parent[x] }
            return x
        }
        func join(_ key: ConnectionInstant, _ i: Int) {
            if let j = first[key] { parent[root(i)] = root(j) } else { first[key] = i }
        }
        var multiplexed = [Bool](repeating: false, count: n)
        for i in 0..<n where !pending[i].facts.abandoned {
            let t = pending[i].facts.times
            if t.stream > 0, let r = t.responseStart {
                join(ConnectionInstant(slot: pending[i].slot, down: true, at: r), i)
                multiplexed[i] = true
            }
            let k = decided[i]
            if k >= 0, columns[k].facts.times.stream > 0, let r = columns[k].facts.times.responseStart {
                join(ConnectionInstant(slot: columns[k].slot, down: false, at: r), i)
                multiplexed[i] = true
            }
        }
        guard !first.isEmpty else { return ties }
        var groups: [Int: [Int]] = [:]
        for i in 0..<n where multiplexed[i] { groups[root(i), default: []].append(i) }
        for (_, rows) in groups where rows.count > 1 {
            // Rows are in forward order already (the pool is sorted); their columns, sorted, are too.
            let cols = rows.map { decided[$0] }.filter { $0 >= 0 }.sorted()
            guard cols.count == rows.count else { continue }
            for (r, k) in zip(rows, cols) {
                decided[r] = k
                ties[r] = rows.count - 1
            }
        }
        return ties
    }

    private func commit(_ d: consuming Hop, facts df: CopyFacts, slot: Int, chosen: Up?, candidates: [Up], ambiguous: Bool,
                        confidence: Double?, certain: Bool, alternatives: Int = 0, ordersAgree: Bool? = nil, responseTies: Int = 0) {
        guard let u = chosen, !u.taken, !u.removed else {
            emitIncomplete(d)
            return
        }
        observeTiming(facts: df, slot: slot, candidates: candidates, chosen: u)
        let exact = df.exactKeys(u.facts) == true
        let (f, r) = delays(df.times, u.facts.times)
        if certain {
            delayModel.observe(forward: f, return: r)
            learnedDelays += 1
            let rate = 1 / Double(min(learnedDelays, 128))
            forwardDelay += (f - forwardDelay) * rate
            returnDelay += (r - returnDelay) * rate
        }
        // Earlier failed attempts on the same request (retries), inside the downstream copy.
        let uStart = u.facts.times.requestStart
        let dStatus = df.times.status
        var attempts: [Up] = []
        // A proxy retries after an attempt failed: a failed attempt ended before the one that
        // answered began (two copies in flight at once are two requests, not a retry).
        let retryBound = uStart &+ configuration.tolerance
        for f in candidates where f !== u && !f.taken && !f.removed && f.facts.times.requestStart < uStart
            && f.facts.times.last <= retryBound {
            let s = f.facts.times.status
            // A copy the proxy itself reset (it passed on a client's cancel) was given up, not
            // failed: another request's, never a retry.
            if f.facts.abandoned, f.hop?.exchange.http2?.reset?.byClient == true { continue }
            // An encrypted copy that was answered is not a failed attempt one can tell.
            if f.facts.times.encrypted && f.facts.times.responseStart != nil { continue }
            if s == nil || (s! >= 500 && s != dStatus) { attempts.append(f) }
        }
        attempts.sort { $0.facts.times.requestStart < $1.facts.times.requestStart }
        var hops = [d]
        hops.reserveCapacity(attempts.count + 2)
        var n = 1
        for a in attempts + [u] {
            a.taken = true
            var h = a.takeHop()
            h.attempt = n
            n += 1
            hops.append(h)
            removeUp(a)
        }
        if ambiguous { summary.ambiguousPairings += 1 }
        let group = groups.group(down: slot)
        let groupCount = groups.groupCount
        groups.record(down: slot, up: u.slot, certain: certain)
        let note = PairingNote(alternatives: alternatives, workerGroup: groupCount > 1 ? group : nil,
                               workerGroups: groupCount, ordersAgree: ordersAgree, responseTies: responseTies,
                               downRequestID: df.requestID != nil, upRequestID: u.facts.requestID != nil,
                               traceIDs: df.trace != nil && u.facts.trace != nil)
        let chain = RequestChain(id: nextChainID, hops: hops, completeness: .complete, confidence: exact ? 1.0 : confidence ?? 0.99,
                                 evidence: [], pairing: note)
        emit(chain)
    }

    /// Feeds `groups` with timing-only evidence (independent of the groups themselves) and
    /// keeps the typical delay up to date.
    private func observeTiming(facts df: CopyFacts, slot: Int, candidates: [Up], chosen: Up) {
        let dt = df.times
        let c1 = timingCost(dt, chosen.facts.times)
        typicalDelay += (c1.squareRoot() - typicalDelay) / 64
        let scale = typicalTimingCost
        var total = 0.0
        weights.removeAll(keepingCapacity: true)
        for v in candidates {
            let vt = v.facts.times
            guard !v.removed, v === chosen || Self.strictlyCausal(dt, vt) else { continue }
            let w = exp(-timingCost(dt, vt) / scale)
            weights.append((v.slot, w))
            total += w
        }
        guard total > 0 else { return }
        for (up, w) in weights where w > 0 { groups.observe(down: slot, up: up, weight: w / total) }
    }
    /// Scratch for `observeTiming`.
    @exclusivity(unchecked) private var weights: [(Int, Double)] = []

    /// A response whose request is not in the capture: an orphan on its hop, counted and
    /// listed, never a logical request.
    private func recordOrphanResponse(_ hop: Hop) {
        summary.orphanResponses += 1
        if orphanResponses.count < 1000 { orphanResponses.append(hop) }
    }

    private func removeUp(_ u: Up) {
        guard !u.removed else { return }
        u.removed = true
        if let all = u.key.outbound ? allUpsOut : allUpsIn { all.markRemoved() }
        guard let list = upsByKey[u.key] else { return }
        list.markRemoved()
        if list.live == 0 { upsByKey[u.key] = nil }
    }

    private func expireUps() {
        if !lateDowns.isEmpty { expireLateDowns(all: false) }
        let limit = now &- configuration.holdTime
        while upOrderHead < upOrder.count {
            let u = upOrder[upOrderHead]
            if u.removed { upOrderHead += 1; continue }
            if u.facts.times.last > limit || u.inPool > 0 { break }
            upOrderHead += 1
            expireUp(u)
        }
        if upOrderHead > 4096 && upOrderHead * 2 > upOrder.count {
            upOrder.removeFirst(upOrderHead)
            upOrderHead = 0
        }
    }

    /// A TLS connection carrying HTTP/2: when its application data began and, once its
    /// connection closed (`connectionEnded`), when it ended.
    final class Carrier {
        let label: String
        let start: Int64
        var end: Int64?
        init(label: String, start: Int64) { self.label = label; self.start = start }
    }

    /// TLS connections carrying HTTP/2 seen so far, by their hop's role (`HopRole.index`), in
    /// order of start. Inbound, the client's sidecar's into the pod; outbound, the pod
    /// sidecar's to the remote (its copy of the app's plaintext requests).
    @exclusivity(unchecked) private var carriers: [[Carrier]] = Array(repeating: [], count: HopRole.allCases.count)
    /// The carriers still open, by connection.
    @exclusivity(unchecked) private var openCarriers: [ConnectionID: Carrier] = [:]
    /// How many carriers begun before a copy `carrierNote` looks through, latest first.
    static let carrierScan = 256

    /// Connection `id` closed at `end` (its last packet): if it carried HTTP/2 inside TLS, copies
    /// that come after that did not travel in it. Called in order with `add` (the analyzer's
    /// connection summaries); other connections are ignored.
    public func connectionEnded(_ id: ConnectionID, at end: Int64) {
        if let c = openCarriers.removeValue(forKey: id) {
            c.end = end
        } else if !decided && endedBeforeDecided.count < Self.endedBeforeDecidedLimit {
            // Its exchange may wait in the inference sample: kept for when it is processed.
            endedBeforeDecided[id] = end
        }
    }
    /// TLS connections that closed while the first exchanges were held to decide the roles.
    @exclusivity(unchecked) private var endedBeforeDecided: [ConnectionID: Int64] = [:]
    static let endedBeforeDecidedLimit = 4096

    /// A TLS connection carrying HTTP/2: a chain of its own, paired with nothing (one encrypted
    /// exchange stands for all the requests multiplexed inside it). The plaintext copies of
    /// those requests find no encrypted copy of their own and are told so (`expireUp`).
    private func emitCarrier(_ hop: Hop, why: String) {
        let x = hop.exchange
        summary.encryptedHTTP2Connections += 1
        let c = Carrier(label: "\(x.client) → \(x.server)", start: x.tls?.requestFirstTimestamp ?? 0)
        if let end = endedBeforeDecided.removeValue(forKey: x.connection.id) { c.end = end } else { openCarriers[x.connection.id] = c }
        let k = hop.role.index
        // Kept in order of start (they come nearly in it): `carrierNote` searches by time.
        var i = carriers[k].count
        while i > 0 && carriers[k][i - 1].start > c.start { i -= 1 }
        carriers[k].insert(c, at: i)
        let evidence = "an encrypted HTTP/2 connection (\(why)): the requests multiplexed inside it cannot be told apart without the keys, so none is paired with its plaintext copy; those copies are chains of their own"
        emit(RequestChain(id: nextChainID, hops: [hop], completeness: .complete, confidence: 1, evidence: [evidence]),
             isRequest: false)
    }

    /// Where a plaintext copy's other copy (of role `missing`) went when it is inside an
    /// encrypted HTTP/2 connection of that role open at `t` (begun before it, not ended before
    /// it); nil: none known.
    private func carrierNote(missing: HopRole, at t: Int64) -> String? {
        let all = carriers[missing.index]
        // How many began by `t` (binary search: `all` is in order of start).
        var lo = 0, hi = all.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if all[mid].start <= t { lo = mid + 1 } else { hi = mid }
        }
        // The open ones among them, latest first (the ones that ended before `t` are not).
        var open: [String] = []
        var count = 0
        var i = lo
        while i > 0 && lo - i < Self.carrierScan {
            i -= 1
            if let end = all[i].end, end < t { continue }
            count += 1
            if open.count < 3 { open.append(all[i].label) }
        }
        guard count > 0 else { return nil }
        let more = i > 0 ? "at least " : ""
        let which = count == 1 && i == 0
            ? "the encrypted HTTP/2 connection \(open[0])"
            : "one of \(more)\(count) encrypted HTTP/2 connections open then (\(count > 3 ? "latest " : "")\(open.joined(separator: ", ")))"
        return "\(missing.copyPhrase) travelled inside \(which), multiplexed with other requests: it cannot be told apart without the keys, so this chain shows the plaintext copy alone"
    }

    private func expireUp(_ u: Up) {
        guard !u.taken, !u.removed else { return }
        removeUp(u)
        var h = u.takeHop()
        h.attempt = 1
        let missing = h.role.downstreamRole!
        if let note = carrierNote(missing: missing, at: u.facts.times.requestStart) {
            summary.requestsInEncryptedHTTP2 += 1
            var chain = RequestChain(id: nextChainID, hops: [h], completeness: .complete, confidence: 1, evidence: [note])
            chain.otherCopyInEncryptedHTTP2 = missing
            emit(chain)
            return
        }
        summary.orphanUpstreams += 1
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
        if let start = d.exchange.requestFirstTimestamp, let note = carrierNote(missing: missing, at: start) {
            // The proxy's copy went out inside an encrypted HTTP/2 connection (outbound, to a
            // remote sidecar under mTLS): not told apart, not missing.
            summary.requestsInEncryptedHTTP2 += 1
            var chain = RequestChain(id: nextChainID, hops: [d], completeness: .complete, confidence: 1, evidence: [note])
            chain.otherCopyInEncryptedHTTP2 = missing
            emit(chain)
            return
        }
        let advice: String
        if d.exchange.tls?.answeredByAlert == true {
            advice = "the server answered this encrypted turn with a TLS alert and nothing else: it refused the connection (a client certificate it did not accept, under mTLS), so the proxy forwarded nothing"
        } else if d.exchange.isEncrypted && sawLoopback {
            advice = "no plaintext copy that fits this encrypted turn's time and size was found on the proxy's upstream hop: the proxy may have answered it itself, or the turn carries more than one request (HTTP/2 or pipelining inside TLS)"
        } else if missing == .inboundForwarded {
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
        if x.isEncrypted {
            // An encrypted exchange nobody intercepted: one copy, nothing to compare it with.
            emit(RequestChain(id: nextChainID, hops: [Hop(role: .direct, exchange: x, details: details, attempt: 0)],
                              completeness: .complete, confidence: 1, evidence: []))
            return
        }
        guard x.request != nil else {
            recordOrphanResponse(Hop(role: .direct, exchange: x, details: details, attempt: 0))
            return
        }
        let id = nextChainID
        var evidence: [String] = []
        if let start = x.request?.firstTimestamp, let note = duplicateDetector.observe(x, start: start, chain: id) {
            evidence.append(note)
        }
        if evidence.isEmpty, let sink = onPlainDirect {
            nextChainID += 1
            summary.logicalRequests += 1
            summary.roleCounts[HopRole.direct.index] += 1
            sink(x, id)
            return
        }
        emit(RequestChain(id: id, hops: [Hop(role: .direct, exchange: x, details: details, attempt: 0)],
                          completeness: .complete, confidence: 1, evidence: evidence))
    }

    /// `isRequest`: false for a chain that stands for a connection (`emitCarrier`).
    private func emit(_ c: RequestChain, isRequest: Bool = true) {
        var chain = c
        chain.id = nextChainID
        nextChainID += 1
        if isRequest { summary.logicalRequests += 1 }
        if chain.isMultiHop { summary.multiHopChains += 1 }
        if chain.isIncomplete { summary.incompleteChains += 1 }
        summary.retries += chain.retries
        for i in chain.hops.indices { summary.roleCounts[chain.hops[i].role.index] += 1 }
        onChain(chain)
    }

    // MARK: Evidence (see `Explain.evidence`)

    /// Headers a proxy adds or rewrites (allowed to differ between copies).
    static let proxyHeaders: Set<String> = [
        "x-request-id", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port",
        "x-forwarded-client-cert", "forwarded", "via", "traceparent", "tracestate", "connection", "keep-alive",
        "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "proxy-authorization",
        "proxy-authenticate", "x-envoy-attempt-count", "x-envoy-expected-rq-timeout-ms", "x-envoy-original-path",
        "x-envoy-decorator-operation", "x-envoy-peer-metadata", "x-envoy-peer-metadata-id", "x-real-ip", "content-length",
    ]

    /// Also HTTP/2's pseudo-header fields (`:method`, `:path`, `:authority`, `:scheme`): not
    /// end-to-end fields, their values are compared as the method, target and host.
    static func isProxyHeader(_ lower: String) -> Bool {
        lower.hasPrefix(":") || proxyHeaders.contains(lower) || proxyHeaderPrefixes.contains { lower.hasPrefix($0) } || lower == "b3"
    }

    static let proxyHeaderPrefixes = ["x-envoy-", "x-b3-", "x-forwarded-", "x-ot-span", "x-datadog-"]
    /// The names (exact: true) and prefixes (false) as one table of bytes: (start, length, exact).
    static let proxyHeaderTable: (bytes: [UInt8], entries: [(start: Int, count: Int, exact: Bool)]) = {
        var bytes: [UInt8] = []
        var entries: [(Int, Int, Bool)] = []
        for (names, exact) in [(proxyHeaders.sorted() + ["b3"], true), (proxyHeaderPrefixes, false)] {
            for n in names {
                entries.append((bytes.count, n.utf8.count, exact))
                bytes.append(contentsOf: n.utf8)
            }
        }
        return (bytes, entries)
    }()

    /// `isProxyHeader` for a name's bytes (any case), without making a String.
    static func isProxyHeader(bytes name: UnsafeRawBufferPointer) -> Bool {
        if name.first == 0x3a { return true }  // ":…", HTTP/2 pseudo-header fields
        let table = proxyHeaderTable
        return table.bytes.withUnsafeBufferPointer { b in
            for e in table.entries where e.exact ? name.count == e.count : name.count >= e.count {
                var k = 0
                while k < e.count {
                    let c = name[k]
                    if ((c >= 0x41 && c <= 0x5a) ? c | 0x20 : c) != b[e.start + k] { break }
                    k += 1
                }
                if k == e.count { return true }
            }
            return false
        }
    }

    static func endToEndHeaderDifferences(_ a: HTTPHeaders, _ b: HTTPHeaders) -> [String] {
        // Fast path: the same end-to-end fields in the same order (a proxy appends its own).
        if sameEndToEndFields(a, b) { return [] }
        // HTTP/1.1 on one hop, HTTP/2 on the other: Host is :authority there (both are compared
        // as the request's host, not as fields).
        let crossProtocol = a.contains(":authority") != b.contains(":authority")
        func table(_ h: HTTPHeaders) -> [String: [String]] {
            var t: [String: [String]] = [:]
            for f in h {
                let n = f.name.lowercased()
                if isProxyHeader(n) || (crossProtocol && n == "host") { continue }
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
        a.sameFields(as: b, ignoring: isProxyHeader(bytes:))
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

}
