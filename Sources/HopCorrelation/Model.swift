import HopCapture
import HopFlows
import HopHTTP

/// What a copy of a request is doing, seen from the pod.
public enum HopRole: String, Sendable, Hashable, CaseIterable, Codable {
    /// Position in `allCases` (for counting without hashing).
    public var index: Int {
        switch self {
        case .inboundIntercepted: 0
        case .inboundForwarded: 1
        case .outboundRedirected: 2
        case .outboundForwarded: 3
        case .direct: 4
        }
    }

    /// client → pod:port from outside, redirected by PREROUTING to the proxy (the client→:80 hop).
    case inboundIntercepted = "inbound-intercepted"
    /// proxy → app inside the pod (127.0.0.1:port in the 2018 layout; 127.0.0.6 → podIP:port now).
    case inboundForwarded = "inbound-forwarded"
    /// app → remote, redirected by OUTPUT on lo to the proxy (the NAT-split lo→:15001 hop).
    case outboundRedirected = "outbound-redirected"
    /// proxy → remote service (exempt from the redirect by its uid/gid).
    case outboundForwarded = "outbound-forwarded"
    /// Not intercepted: no rules, an excluded port, the proxy's own admin ports, local traffic.
    case direct = "direct"

    /// The hop a proxy receives (downstream side of a chain).
    public var isDownstream: Bool { self == .inboundIntercepted || self == .outboundRedirected }
    /// The hop a proxy sends (upstream side of a chain).
    public var isUpstream: Bool { self == .inboundForwarded || self == .outboundForwarded }

    /// The upstream role that pairs with a downstream one.
    public var upstreamRole: HopRole? {
        switch self {
        case .inboundIntercepted: .inboundForwarded
        case .outboundRedirected: .outboundForwarded
        default: nil
        }
    }

    public var downstreamRole: HopRole? {
        switch self {
        case .inboundForwarded: .inboundIntercepted
        case .outboundForwarded: .outboundRedirected
        default: nil
        }
    }

    /// The copy of this role as a sentence names it: "the client's copy (client → pod)".
    public var copyPhrase: String {
        switch self {
        case .inboundIntercepted: "the client's copy (client → pod)"
        case .inboundForwarded: "the proxy's copy to the app"
        case .outboundRedirected: "the app's copy (app → remote)"
        case .outboundForwarded: "the proxy's copy to the remote"
        case .direct: "the copy"
        }
    }

    /// A few words for people: "client → proxy (redirected)".
    public var phrase: String {
        switch self {
        case .inboundIntercepted: "client → pod, redirected to the proxy"
        case .inboundForwarded: "proxy → app"
        case .outboundRedirected: "app → remote, redirected to the proxy"
        case .outboundForwarded: "proxy → remote"
        case .direct: "direct (not intercepted)"
        }
    }
}

/// What the rules say about a connection's first packet.
public struct RuleVerdict: Sendable, Hashable {
    public enum Outcome: Sendable, Hashable {
        /// REDIRECTed (or TPROXYed) to this local port.
        case redirected(toPort: UInt16)
        /// Left alone (RETURN/ACCEPT/policy).
        case notRedirected
        /// Depends on the socket's owner, which a capture does not show: these owners are exempt,
        /// everyone else is redirected to `toPort`.
        case ownerDependent(toPort: UInt16, exempt: [String])
        /// No rules are known for this capture.
        case noRules
    }

    public var outcome: Outcome
    /// The traversal, one line per rule that was reached: `nat/OUTPUT rule 1 (-A OUTPUT -p tcp -j ISTIO_OUTPUT): jump`.
    public var traversal: [String]
    /// One sentence: "nat/PREROUTING rule 1 → ISTIO_INBOUND rule 1 (--dport 80) → REDIRECT --to-ports 15001".
    public var sentence: String
    /// The rule that decided, as `table/CHAIN rule N`.
    public var decidingRule: String?
    /// The socket owner the packet was evaluated as (`uid 1337`), when it was known.
    public var evaluatedAs: String?
    /// For an owner-dependent verdict: the way taken by the owners that are redirected
    /// (what happened to a connection seen redirected).
    public var redirecting: Branch?

    /// One way through the rules.
    public struct Branch: Sendable, Hashable {
        public var sentence: String
        public var decidingRule: String?
        public init(sentence: String, decidingRule: String?) {
            self.sentence = sentence
            self.decidingRule = decidingRule
        }
    }

    /// The verdict as it applied to a connection that was seen redirected.
    public var asRedirected: RuleVerdict {
        guard case .ownerDependent(let port, _) = outcome, let r = redirecting else { return self }
        return RuleVerdict(outcome: .redirected(toPort: port), traversal: traversal, sentence: r.sentence, decidingRule: r.decidingRule)
    }

    public init(outcome: Outcome, traversal: [String] = [], sentence: String, decidingRule: String? = nil) {
        self.outcome = outcome
        self.traversal = traversal
        self.sentence = sentence
        self.decidingRule = decidingRule
    }

    public static let none = RuleVerdict(outcome: .noRules, sentence: "no interception rules known for this capture")
}

/// Answers rule questions for the correlator (implemented over HopNetfilter's evaluator).
public protocol RuleOracle: Sendable {
    /// A name for reports: `istio-2018`, `istio-current`, `rules.txt`.
    var name: String { get }
    /// Ports the rules redirect to (the proxy's listeners).
    var proxyPorts: Set<UInt16> { get }
    /// A SYN arriving from outside (nat PREROUTING, from a non-loopback interface).
    func inbound(client: Endpoint, server: Endpoint) -> RuleVerdict
    /// A SYN generated inside the pod (nat OUTPUT); `viaLoopback` when the destination is
    /// local (127/8, ::1 or one of the pod's addresses), so it leaves on `lo`. `uid`/`gid`
    /// nil: the owner is unknown and every owner branch is followed.
    func outbound(client: Endpoint, server: Endpoint, viaLoopback: Bool, uid: UInt32?, gid: UInt32?) -> RuleVerdict
}

extension RuleOracle {
    /// Owner unknown.
    public func outbound(client: Endpoint, server: Endpoint, viaLoopback: Bool) -> RuleVerdict {
        outbound(client: client, server: server, viaLoopback: viaLoopback, uid: nil, gid: nil)
    }
}

/// No rules: nothing is intercepted.
public struct NoRules: RuleOracle {
    public init() {}
    public var name: String { "none" }
    public var proxyPorts: Set<UInt16> { [] }
    public func inbound(client: Endpoint, server: Endpoint) -> RuleVerdict { .none }
    public func outbound(client: Endpoint, server: Endpoint, viaLoopback: Bool, uid: UInt32?, gid: UInt32?) -> RuleVerdict { .none }
}

/// One copy of a request: an exchange on one connection, with its role.
public struct Hop: Sendable, Hashable {
    public var role: HopRole
    public var exchange: HTTPExchange
    /// What the rules say about this hop's connection.
    public var rule: RuleVerdict {
        get { details.rule }
        set { details = HopDetails(rule: newValue, roleReason: details.roleReason) }
    }
    /// 1 for the first upstream attempt, 2… for retries (0 on the downstream hop).
    public var attempt: Int
    /// Why the role was given (one line).
    public var roleReason: String {
        get { details.roleReason }
        set { details = HopDetails(rule: details.rule, roleReason: newValue) }
    }
    /// The verdict and the reason, shared by every hop of a connection (the correlator
    /// classifies a connection once): copying a hop copies one reference, not the
    /// verdict's strings and arrays.
    @usableFromInline var details: HopDetails

    public init(role: HopRole, exchange: HTTPExchange, rule: RuleVerdict, attempt: Int, roleReason: String) {
        self.init(role: role, exchange: exchange, details: HopDetails(rule: rule, roleReason: roleReason), attempt: attempt)
    }

    init(role: HopRole, exchange: HTTPExchange, details: HopDetails, attempt: Int) {
        self.role = role
        self.exchange = exchange
        self.details = details
        self.attempt = attempt
    }

    public var connection: Connection { exchange.connection }
    public var requestStart: Int64? { exchange.requestFirstTimestamp }

    /// A report's encodings of `rule` and `roleReason` (the JSON report's: the hop's `rule`
    /// member and its connection's record), made by `make` once for all the hops of a
    /// connection (they share the verdict) and reused: a large capture repeats a few
    /// connections' verdicts on every request.
    public func verdictJSON(_ make: () -> VerdictRendering) -> VerdictRendering { details.rendering(make) }
    /// Names the verdict this hop shares with the other hops of its connection: equal for hops
    /// the correlator classified together (a report writes the verdict once per connection).
    @inlinable public var verdictIdentity: ObjectIdentifier { ObjectIdentifier(details) }
    public var responseEnd: Int64? { exchange.responseLastTimestamp }

    public static func == (a: Hop, b: Hop) -> Bool {
        a.role == b.role && a.attempt == b.attempt && a.exchange == b.exchange
            && (a.details === b.details || (a.rule == b.rule && a.roleReason == b.roleReason))
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(role)
        hasher.combine(exchange)
        hasher.combine(rule)
        hasher.combine(attempt)
        hasher.combine(roleReason)
    }
}

/// A hop's verdict and role reason (immutable, shared by the hops of a connection), and a
/// report's rendering of them, made once.
@usableFromInline
final class HopDetails: @unchecked Sendable {
    // @unchecked Sendable: `rendered` is read and written under `lock`; the rest is immutable.
    let rule: RuleVerdict
    let roleReason: String
    private var rendered: VerdictRendering?
    private let lock = NSLockish()
    init(rule: RuleVerdict, roleReason: String) {
        self.rule = rule
        self.roleReason = roleReason
    }

    func rendering(_ make: () -> VerdictRendering) -> VerdictRendering {
        lock.lock()
        defer { lock.unlock() }
        if let rendered { return rendered }
        let r = make()
        rendered = r
        return r
    }
}

/// A report's encoding of a connection's verdict, cached with it (`Hop.verdictJSON`): what
/// each hop repeats (`perHop`) and what is written once per connection (`perConnection`).
public struct VerdictRendering: Sendable {
    public var perHop: [UInt8]
    public var perConnection: [UInt8]
    public init(perHop: [UInt8], perConnection: [UInt8]) {
        self.perHop = perHop
        self.perConnection = perConnection
    }
}

/// How complete a chain is.
public enum ChainCompleteness: Sendable, Hashable {
    /// Every hop the rules imply was found.
    case complete
    /// A hop the rules imply is not in the capture.
    case incomplete(missing: HopRole, advice: String)
}

/// The copies of one logical request across proxy hops, with the evidence that ties them.
public struct RequestChain: Sendable, Hashable {
    public var id: Int
    /// Downstream first, then upstream attempts in order.
    public var hops: [Hop]
    public var completeness: ChainCompleteness
    /// 0…1: how sure the pairing is (1 for a single hop or an unambiguous pair).
    public var confidence: Double
    /// The facts that tie the hops: "same method and target", "x-request-id equal", … (for a
    /// paired chain, made when asked: most chains of a large capture are never shown one by one).
    public var evidence: [String] {
        get {
            if let evidenceOverride { return evidenceOverride }
            guard let pairing else { return [] }
            var sink = StringSink()
            Explain.evidence(self, pairing, into: &sink)
            return sink.items
        }
        set { evidenceOverride = newValue }
    }
    /// Evidence given when the chain was made (unpaired chains) or set by a caller.
    public internal(set) var evidenceOverride: [String]?
    /// How the correlator paired the copies (nil: not paired).
    public var pairing: PairingNote?
    /// A chain of one plaintext copy, complete: its other copy (this role) is inside an
    /// encrypted HTTP/2 connection, multiplexed with other requests (`TLSTurnInfo.multiplexed`).
    public internal(set) var otherCopyInEncryptedHTTP2: HopRole?
    /// The chain of a TLS connection carrying HTTP/2 (`Correlator.emitCarrier`): not a request.
    public var isEncryptedHTTP2Connection: Bool { !hops.isEmpty && hops[0].exchange.tls?.multiplexed != nil }
    /// A plaintext copy alone whose client's copy is inside an encrypted HTTP/2 connection: its
    /// one hop is the proxy's copy to the app, so its time is the app's, not the client's.
    public var timedByTheAppOnly: Bool { hops.count == 1 && hops[0].role.isUpstream && otherCopyInEncryptedHTTP2 != nil }

    init(id: Int, hops: [Hop], completeness: ChainCompleteness, confidence: Double, evidence: [String],
         pairing: PairingNote? = nil) {
        self.id = id
        self.hops = hops
        self.completeness = completeness
        self.confidence = confidence
        self.evidenceOverride = evidence.isEmpty && pairing != nil ? nil : evidence
        self.pairing = pairing
    }
    /// A plain sentence answering "why do I see this request twice?" (made when asked: most
    /// chains of a large capture are never rendered one by one).
    public var explanation: String {
        get {
            if let explanationOverride { return explanationOverride }
            var sink = StringSink()
            Explain.chain(self, into: &sink)
            return sink.items.first ?? ""
        }
        set { explanationOverride = newValue }
    }
    /// Set when a caller wrote its own explanation (tests, other producers).
    public var explanationOverride: String? = nil

    // Read through the array's subscript: `hops.first?.…` would copy a whole hop (its
    // exchange, headers and verdict) to read one field, on every chain of a large capture.
    public var method: String? {
        hops.isEmpty ? nil : hops[0].exchange.request?.method ?? hops[hops.count - 1].exchange.request?.method
    }
    public var target: String? {
        hops.isEmpty ? nil : hops[0].exchange.request?.target ?? hops[hops.count - 1].exchange.request?.target
    }
    public var host: String? { hops.isEmpty ? nil : hops[0].exchange.request?.host ?? hops[hops.count - 1].exchange.request?.host }
    /// The method and target as reports show them: `?` when not captured, `encrypted request`
    /// for a chain of encrypted copies only (no plaintext copy to read them from).
    public var shownMethod: String {
        if let m = method { return m }
        return !hops.isEmpty && hops[0].exchange.isEncrypted ? "encrypted" : "?"
    }
    public var shownTarget: String {
        if let t = target { return t }
        guard !hops.isEmpty, hops[0].exchange.isEncrypted else { return "?" }
        return isEncryptedHTTP2Connection ? "HTTP/2 connection" : "request"
    }
    /// The status the client saw (downstream hop), else the last hop's.
    public var status: Int? {
        hops.isEmpty ? nil : hops[0].exchange.response?.status ?? hops[hops.count - 1].exchange.response?.status
    }
    /// The first hop's role (the downstream copy of a chain).
    public var firstRole: HopRole? { hops.isEmpty ? nil : hops[0].role }
    public var isMultiHop: Bool { hops.count > 1 }
    public var isIncomplete: Bool { if case .incomplete = completeness { true } else { false } }
    /// One complete copy sent directly: not intercepted.
    public var isDirect: Bool { !isMultiHop && !isIncomplete && firstRole == .direct }
    /// Retries: upstream attempts beyond the first.
    public var retries: Int {
        var n = 0
        for i in hops.indices where hops[i].role.isUpstream { n += 1 }
        return max(0, n - 1)
    }

    /// Time the proxy added: downstream duration minus the successful upstream's duration.
    public var proxyAddedNs: Int64? {
        // By index: `hops.first` would copy a whole hop (each of its strings retained).
        let last = hops.count - 1
        guard last >= 1, let ds = hops[0].exchange.requestFirstTimestamp, let de = hops[0].exchange.responseLastTimestamp,
              let us = hops[last].exchange.requestFirstTimestamp, let ue = hops[last].exchange.responseLastTimestamp else { return nil }
        return (de - ds) - (ue - us)
    }
}

/// How a chain's copies were paired: what its evidence says beyond the copies themselves.
public struct PairingNote: Sendable, Hashable {
    /// Other upstream copies that could have been this one (identical requests in flight).
    public var alternatives: Int
    /// The proxy worker group both connections belong to (nil: no groups known).
    public var workerGroup: Int?
    /// Worker groups known when the pairing was made.
    public var workerGroups: Int
    /// Among alternatives: whether the proxy's forwarding order and return order agreed.
    public var ordersAgree: Bool?
    /// Other copies whose responses came back in one packet with this one's (HTTP/2 streams
    /// answered together): return order cannot tell them apart, forward order decided.
    public var responseTies = 0
    /// Which copies carry an x-request-id.
    public var requestIDs: (down: Bool, up: Bool) { (downRequestID, upRequestID) }
    var downRequestID = false
    var upRequestID = false
    /// Whether both copies carry a trace id.
    public var traceIDs = false
}

/// The same request seen more than once with no proxy hop to explain it.
public struct DuplicateGroup: Sendable, Hashable {
    public var method: String
    public var target: String
    public var host: String?
    public var client: IPAddress
    public var server: Endpoint
    /// Chain ids of the copies, in time order.
    public var chainIDs: [Int]
    /// Start times of the copies (the first 1000).
    public var starts: [Int64]
    /// How many copies (may exceed the ids kept).
    public var copies: Int
    public var explanation: String
    /// Copies beyond the first.
    public var extraCopies: Int { max(0, copies - 1) }
    /// More copies than a proxy makes (a client repeating a request under load): reported as a
    /// repeated stream, not as unexplained duplicates.
    public var isRepeatedStream: Bool
}

/// The numbers a report opens with.
public struct AnalysisSummary: Sendable, Hashable {
    public var exchanges = 0
    /// Requests seen on the wire (every copy counts).
    public var requestsOnWire = 0
    /// Chains: what the requests amount to once copies are paired.
    public var logicalRequests = 0
    public var multiHopChains = 0
    public var incompleteChains = 0
    /// Copies beyond the first in all duplicate groups.
    public var unexplainedDuplicates = 0
    public var duplicateGroups = 0
    /// Identical requests repeated more often than proxy copies would be (load).
    public var repeatedStreams = 0
    public var repeatedStreamRequests = 0
    public var retries = 0
    /// Hops by role (counted in `roleCounts`, indexed like `HopRole.allCases`).
    public var roles: [HopRole: Int] {
        get { Dictionary(uniqueKeysWithValues: HopRole.allCases.enumerated().map { ($1, roleCounts[$0]) }.filter { $0.1 > 0 }) }
        set { for (i, r) in HopRole.allCases.enumerated() { roleCounts[i] = newValue[r] ?? 0 } }
    }
    public var roleCounts = [Int](repeating: 0, count: HopRole.allCases.count)
    /// Pairings made among several equally possible candidates (optimal matching on timing).
    public var ambiguousPairings = 0
    /// Upstream copies that matched no downstream one.
    public var orphanUpstreams = 0
    /// Responses whose request is not in the capture (orphans on their hop, not requests).
    public var orphanResponses = 0
    /// TLS connections carrying HTTP/2 (`TLSTurnInfo.multiplexed`): each a chain of its own,
    /// neither a request on the wire nor a logical request.
    public var encryptedHTTP2Connections = 0
    /// Plaintext copies whose other copy is inside such a connection (a chain of one, complete).
    public var requestsInEncryptedHTTP2 = 0
    public init() {}
}
