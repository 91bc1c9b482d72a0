// The typed schema of the JSON reports: what `JSONReport` writes (`analyze --format json`, the
// lines of `--format jsonl` and `http --format jsonl`), as `Codable` values. The writer stays a
// streaming byte writer; these types are how the reports are read back (`check`, the lab) and
// what docs/schema/analyze.schema.json publishes. A key the writer writes as null is optional
// here; a key it writes only sometimes (`toPort`, `exempt`, `malformedRequestLine`) too.

/// `analyze --format json`: the chains, the connections their hops refer to, then what is only
/// known at the end of the capture.
public struct ReportDocument: Codable, Equatable, Sendable {
    /// The version of the schema (`JSONReport.schemaVersion`; 2 since connections are
    /// described once, in `connections`).
    public var schemaVersion: Int
    public var chains: [ReportChain]
    /// Every connection a hop (of a chain or an orphan response) refers to, once.
    public var connections: [ReportConnection]
    public var summary: ReportSummary
    /// Everything else known at the end (the same as in jsonl's trailer).
    public var ending: ReportEnding

    public init(chains: [ReportChain], connections: [ReportConnection] = [], summary: ReportSummary, ending: ReportEnding) {
        schemaVersion = JSONReport.schemaVersion
        self.chains = chains
        self.connections = connections
        self.summary = summary
        self.ending = ending
    }

    private enum CodingKeys: String, CodingKey { case schemaVersion, chains, connections, summary }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        schemaVersion = try c.decode(Int.self, forKey: .schemaVersion)
        chains = try c.decode([ReportChain].self, forKey: .chains)
        connections = try c.decode([ReportConnection].self, forKey: .connections)
        summary = try c.decode(ReportSummary.self, forKey: .summary)
        ending = try ReportEnding(from: decoder)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(schemaVersion, forKey: .schemaVersion)
        try c.encode(chains, forKey: .chains)
        try c.encode(connections, forKey: .connections)
        try c.encode(summary, forKey: .summary)
        try ending.encode(to: encoder)
    }
}

/// A connection, described once (`connections[]` of the document, a `{"connection": …}` line
/// of jsonl before the first chain line that refers to it): its facts as its first reported
/// hop saw them and what the rules say about it.
public struct ReportConnection: Codable, Equatable, Sendable {
    /// The id hops refer to (their `connection`).
    public var id: Int
    public var client: String
    public var server: String
    public var originalDestination: String?
    public var replySource: String?
    public var interface: String?
    /// The deciding rule, or the evaluation's sentence when no rule decided.
    public var rule: String
    public var ruleEvaluation: ReportRuleEvaluation
    /// Why its hops were given their role (one line).
    public var roleReason: String

    public init(id: Int, client: String, server: String, originalDestination: String? = nil, replySource: String? = nil,
                interface: String? = nil, rule: String = "", ruleEvaluation: ReportRuleEvaluation = ReportRuleEvaluation(outcome: "no-rules", sentence: "", traversal: []),
                roleReason: String = "") {
        self.id = id; self.client = client; self.server = server; self.originalDestination = originalDestination
        self.replySource = replySource; self.interface = interface; self.rule = rule; self.ruleEvaluation = ruleEvaluation
        self.roleReason = roleReason
    }
}

/// A connection line of `analyze --format jsonl`: `{"connection": {…}}`.
public struct ReportConnectionLine: Codable, Equatable, Sendable {
    public var connection: ReportConnection
}

/// The last line of `analyze --format jsonl`: `{"summary": {…, "totals": …}}`.
public struct ReportTrailer: Codable, Equatable, Sendable {
    public var summary: Body

    public struct Body: Codable, Equatable, Sendable {
        /// The version of the schema (`JSONReport.schemaVersion`).
        public var schemaVersion: Int
        public var totals: ReportSummary
        public var ending: ReportEnding

        private enum CodingKeys: String, CodingKey { case schemaVersion, totals }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            schemaVersion = try c.decode(Int.self, forKey: .schemaVersion)
            totals = try c.decode(ReportSummary.self, forKey: .totals)
            ending = try ReportEnding(from: decoder)
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(schemaVersion, forKey: .schemaVersion)
            try c.encode(totals, forKey: .totals)
            try ending.encode(to: encoder)
        }
    }
}

/// What the document and jsonl's trailer both end with (besides the summary, whose key differs).
public struct ReportEnding: Codable, Equatable, Sendable {
    public var capture: ReportCapture
    public var rules: ReportRules
    public var pod: ReportPod
    /// One paragraph: why the capture shows its requests more than once.
    public var answer: String
    /// What the sidecar costs, as distributions (`LatencyModel`); absent in reports written
    /// before it was added.
    public var latency: ReportLatency?
    /// Each kind of problem found, its count and the worst few (`ProblemModel`); absent in
    /// reports written before it was added.
    public var problems: [ReportProblem]?
    public var duplicates: [ReportDuplicate]
    public var orphanResponses: [ReportHop]
    /// Counter sections (decode, flows, http, correlation, …) of named counts.
    public var counters: [String: [String: Int]]
    public var warnings: [ReportWarning]

    public init(capture: ReportCapture = ReportCapture(source: "", linkType: "", packets: 0), rules: ReportRules = ReportRules(name: "none", origin: ""),
                pod: ReportPod = ReportPod(addresses: [], inferred: false), answer: String = "", duplicates: [ReportDuplicate] = [],
                orphanResponses: [ReportHop] = [], counters: [String: [String: Int]] = [:], warnings: [ReportWarning] = []) {
        self.capture = capture; self.rules = rules; self.pod = pod; self.answer = answer; self.duplicates = duplicates
        self.orphanResponses = orphanResponses; self.counters = counters; self.warnings = warnings
    }
}

public struct ReportCapture: Codable, Equatable, Sendable {
    public var source: String
    public var linkType: String
    public var packets: Int
    public var readError: String?

    public init(source: String, linkType: String, packets: Int, readError: String? = nil) {
        self.source = source; self.linkType = linkType; self.packets = packets; self.readError = readError
    }
}

public struct ReportRules: Codable, Equatable, Sendable {
    public var name: String
    public var origin: String

    public init(name: String, origin: String) { self.name = name; self.origin = origin }
}

public struct ReportPod: Codable, Equatable, Sendable {
    public var addresses: [String]
    public var inferred: Bool

    public init(addresses: [String], inferred: Bool) { self.addresses = addresses; self.inferred = inferred }
}

/// The counts of the analysis (`summary` of the document, `totals` of jsonl's trailer).
public struct ReportSummary: Codable, Equatable, Sendable {
    public var packets: Int
    public var connections: Int
    public var exchanges: Int
    public var requestsOnWire: Int
    public var logicalRequests: Int
    public var multiHopChains: Int
    public var unexplainedDuplicates: Int
    public var duplicateGroups: Int
    public var repeatedStreams: Int
    public var repeatedStreamRequests: Int
    public var incompleteChains: Int
    public var retries: Int
    public var ambiguousPairings: Int
    public var orphanUpstreams: Int
    public var orphanResponses: Int
    /// Hops by role (every role, zeros included).
    public var roles: [String: Int]
    public var medianProxyAddedNs: Int64?
    /// TLS connections known to carry HTTP/2 (each a chain of its own), and the plaintext
    /// copies whose other copy travelled inside one: absent when there are none.
    public var encryptedHTTP2Connections: Int?
    public var requestsInEncryptedHTTP2: Int?
}

/// One logical request and its copies (a line of `analyze --format jsonl`).
public struct ReportChain: Codable, Equatable, Sendable {
    public var id: Int
    public var method: String?
    public var target: String?
    public var host: String?
    public var status: Int?
    /// A probability, to three decimals.
    public var confidence: Double
    public var complete: Bool
    /// The role of the hop the rules imply but the capture lacks (incomplete chains).
    public var missing: String?
    public var advice: String?
    /// A complete chain of one plaintext copy whose other copy (this role) travelled inside an
    /// encrypted HTTP/2 connection; absent otherwise.
    public var otherCopyInEncryptedHTTP2: String?
    public var retries: Int
    public var proxyAddedNs: Int64?
    public var explanation: String
    public var evidence: [String]
    public var hops: [ReportHop]
}

/// One copy of a request on the wire.
public struct ReportHop: Codable, Equatable, Sendable {
    public var role: String
    public var attempt: Int
    public var connection: Int
    public var client: String
    public var server: String
    public var originalDestination: String?
    public var replySource: String?
    public var interface: String?
    public var method: String?
    public var target: String?
    public var host: String?
    public var requestId: String?
    public var status: Int?
    public var requestStart: String?
    public var requestEnd: String?
    public var responseStart: String?
    public var responseEnd: String?
    public var requestStartNs: Int64?
    public var requestEndNs: Int64?
    public var responseStartNs: Int64?
    public var responseEndNs: Int64?
    public var flags: [String]
    /// HTTP/2 streams only (absent for HTTP/1.x).
    public var http2: ReportHTTP2?
    /// Encrypted turns only (absent for plaintext): method, target, host and status are then
    /// null and the chain's plaintext hop has them.
    public var tls: ReportTLS?
    /// The deciding rule, or the evaluation's sentence when no rule decided.
    public var rule: String
    /// The connection's (`ReportConnection`), given here only when this hop's verdict differs
    /// from its connection's record, or the hop is written on its own (watch's lines); read
    /// it with `ReportDocument.ruleEvaluation(of:)`.
    public var ruleEvaluation: ReportRuleEvaluation?
    /// As `ruleEvaluation`: read it with `ReportDocument.roleReason(of:)`.
    public var roleReason: String?
}

/// How the netfilter rules treat a hop's SYN.
public struct ReportRuleEvaluation: Codable, Equatable, Sendable {
    /// redirected, not-redirected, owner-dependent or no-rules.
    public var outcome: String
    /// Where the SYN was redirected (redirected, owner-dependent).
    public var toPort: Int?
    /// The owners the rules exempt (owner-dependent).
    public var exempt: [String]?
    public var decidingRule: String?
    public var sentence: String
    public var traversal: [String]

    public init(outcome: String, toPort: Int? = nil, exempt: [String]? = nil, decidingRule: String? = nil, sentence: String, traversal: [String]) {
        self.outcome = outcome; self.toPort = toPort; self.exempt = exempt; self.decidingRule = decidingRule
        self.sentence = sentence; self.traversal = traversal
    }
}

/// Copies of one request that no proxy hop explains.
public struct ReportDuplicate: Codable, Equatable, Sendable {
    public var method: String
    public var target: String
    public var host: String?
    public var client: String
    public var server: String
    public var copies: Int
    public var repeatedStream: Bool
    public var chains: [Int]
    public var explanation: String

    public init(method: String, target: String, host: String? = nil, client: String, server: String, copies: Int,
                repeatedStream: Bool, chains: [Int] = [], explanation: String = "") {
        self.method = method; self.target = target; self.host = host; self.client = client; self.server = server
        self.copies = copies; self.repeatedStream = repeatedStream; self.chains = chains; self.explanation = explanation
    }
}

/// What the analysis can't tell, and why.
public struct ReportWarning: Codable, Equatable, Sendable {
    public var code: String
    public var message: String
    public var reason: String
    public var counts: [String: Int]
    public var evidence: [String]

    public init(code: String, message: String, reason: String = "", counts: [String: Int] = [:], evidence: [String] = []) {
        self.code = code; self.message = message; self.reason = reason; self.counts = counts; self.evidence = evidence
    }
}

/// One exchange of `http --format jsonl`.
public struct ReportExchange: Codable, Equatable, Sendable {
    public var connection: Int
    public var sequence: Int
    public var method: String?
    public var target: String?
    /// The request line as it was, when it could not be parsed.
    public var malformedRequestLine: String?
    public var host: String?
    public var version: String?
    public var status: Int?
    public var reason: String?
    public var client: String
    public var server: String
    public var replySource: String?
    public var originalDestination: String?
    public var requestStart: String?
    public var requestEnd: String?
    public var responseStart: String?
    public var responseEnd: String?
    public var requestStartNs: Int64?
    public var requestEndNs: Int64?
    public var responseStartNs: Int64?
    public var responseEndNs: Int64?
    public var durationNs: Int64?
    public var requestBodyBytes: Int?
    public var responseBodyBytes: Int?
    /// Statuses of the interim (1xx) responses.
    public var interim: [Int]
    public var pipelinePosition: Int
    public var flags: [String]
    /// HTTP/2 streams only (absent for HTTP/1.x).
    public var http2: ReportHTTP2?
    /// Encrypted turns only (absent for plaintext).
    public var tls: ReportTLS?
}

/// An encrypted turn's facts (`TLSTurnInfo`), on an exchange or a hop: what the handshake said
/// in clear and the turns' sizes (ciphertext: record payloads).
public struct ReportTLS: Codable, Equatable, Sendable {
    /// The turn's number on its connection (1, 2, …): the n-th request sent on it.
    public var turn: Int
    /// `TLS 1.3`, `TLS 1.2`…; null when the handshake was not captured.
    public var version: String?
    public var sni: String?
    public var alpnOffered: [String]
    /// The protocol the server chose, when in clear (TLS ≤ 1.2).
    public var alpn: String?
    /// True when the client sent a certificate in clear or the server asked for one; null
    /// when it cannot be told (TLS 1.3).
    public var clientCertificate: Bool?
    public var requestRecords: Int
    public var requestBytes: Int
    public var responseRecords: Int
    public var responseBytes: Int
    /// The first turn of a TLS 1.3 connection: handshake bytes ride along, sizes are looser.
    public var includesHandshake: Bool
    public var cutByGap: Bool
    /// No response turn: the server sent only an alert (it refused the connection).
    public var answeredByAlert: Bool
    /// A 100 Continue (a short server record) came between the request's head and its body.
    public var interimResponse: Bool
    /// Present when the connection carries HTTP/2 (why that is known): the exchange stands
    /// for the connection, whose multiplexed requests cannot be told apart; absent for a turn.
    public var multiplexed: String?
}

/// An HTTP/2 stream's protocol facts (`HTTP2StreamInfo`), on an exchange or a hop.
public struct ReportHTTP2: Codable, Equatable, Sendable {
    public var stream: Int
    /// decoded, unrecoverable (HPACK table lost), not-captured, none.
    public var requestHeaders: String
    public var responseHeaders: String
    public var note: String?
    public var reset: ReportHTTP2Reset?
    public var requestDataFrames: Int
    public var responseDataFrames: Int
    public var paddingBytes: Int
    public var pushed: Bool
    public var grpc: ReportGRPC?
}

public struct ReportHTTP2Reset: Codable, Equatable, Sendable {
    public var code: Int
    public var name: String
    /// client or server.
    public var by: String
}

public struct ReportGRPC: Codable, Equatable, Sendable {
    public var service: String?
    public var method: String?
    public var status: Int?
    public var statusName: String?
    public var message: String?
    public var requestMessages: Int
    public var responseMessages: Int
    public var framingLost: Bool
}

extension ReportDocument {
    /// Decodes `analyze --format json` (Foundation's decoder: reading is not the hot path).
    public static func decode(_ data: some Collection<UInt8>) throws -> ReportDocument {
        try ReportCoding.decode(ReportDocument.self, from: data)
    }

    public var capture: ReportCapture { ending.capture }
    public var pod: ReportPod { ending.pod }
    public var duplicates: [ReportDuplicate] { ending.duplicates }
    public var counters: [String: [String: Int]] { ending.counters }
    public var warnings: [ReportWarning] { ending.warnings }
}

extension ReportDocument {
    /// The connections by id.
    public var connectionsByID: [Int: ReportConnection] {
        Dictionary(connections.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// The hop's rule evaluation: its own, else its connection's.
    public func ruleEvaluation(of hop: ReportHop, in byID: [Int: ReportConnection]? = nil) -> ReportRuleEvaluation? {
        hop.ruleEvaluation ?? (byID ?? connectionsByID)[hop.connection]?.ruleEvaluation
    }

    /// Why the hop got its role: its own reason, else its connection's.
    public func roleReason(of hop: ReportHop, in byID: [Int: ReportConnection]? = nil) -> String? {
        hop.roleReason ?? (byID ?? connectionsByID)[hop.connection]?.roleReason
    }
}

extension ReportHop {
    /// The hop carries the request towards the proxy (inbound-intercepted, outbound-redirected).
    public var isDownstream: Bool { role == "inbound-intercepted" || role == "outbound-redirected" }
    /// The proxy's own copy (inbound-forwarded, outbound-forwarded).
    public var isUpstream: Bool { role == "inbound-forwarded" || role == "outbound-forwarded" }
    /// inbound or outbound.
    public var direction: String { role.hasPrefix("inbound") ? "inbound" : "outbound" }
}

// MARK: building values (tests, tools that write documents of their own)

extension ReportDocument {
    /// A document of `chains`; what is not given is empty.
    public init(summary: ReportSummary = ReportSummary(), chains: [ReportChain]) {
        self.init(chains: chains, summary: summary, ending: ReportEnding())
    }
}





extension ReportSummary {
    /// A summary with the given counts, the others zero.
    public init(logicalRequests: Int = 0, incompleteChains: Int = 0, unexplainedDuplicates: Int = 0, orphanUpstreams: Int = 0) {
        packets = 0; connections = 0; exchanges = 0; requestsOnWire = 0; multiHopChains = 0; duplicateGroups = 0
        repeatedStreams = 0; repeatedStreamRequests = 0; retries = 0; ambiguousPairings = 0; orphanResponses = 0; roles = [:]
        self.logicalRequests = logicalRequests; self.incompleteChains = incompleteChains
        self.unexplainedDuplicates = unexplainedDuplicates; self.orphanUpstreams = orphanUpstreams
    }
}

extension ReportChain {
    /// A chain of `hops` whose request and status are its first hop's.
    public init(id: Int, confidence: Double, complete: Bool = true, hops: [ReportHop]) {
        self.id = id; self.confidence = confidence; self.complete = complete; self.hops = hops
        method = hops.first?.method; target = hops.first?.target; host = hops.first?.host; status = hops.first?.status
        retries = max(0, hops.filter(\.isUpstream).count - 1); explanation = ""; evidence = []
    }
}

extension ReportHop {
    /// A hop with its request's times; the rest empty (no rule decided).
    public init(role: String, client: String, server: String = "", method: String?, target: String?, requestId: String? = nil,
                status: Int? = 200, requestStartNs: Int64?, requestEndNs: Int64? = nil, responseStartNs: Int64? = nil,
                responseEndNs: Int64?) {
        self.role = role; self.client = client; self.server = server; self.method = method; self.target = target
        self.requestId = requestId; self.status = status; self.requestStartNs = requestStartNs; self.requestEndNs = requestEndNs
        self.responseStartNs = responseStartNs; self.responseEndNs = responseEndNs
        attempt = 1; connection = 0; flags = []; rule = ""
    }
}


/// One kind of problem: `kind` (`ProblemModel.Kind`'s raw value: unexplained-duplicates,
/// incomplete, retries, 5xx, resets, orphans, slow, ambiguous), how many, and the worst few.
public struct ReportProblem: Codable, Equatable, Sendable {
    public var kind: String
    public var count: Int
    public var worst: [Item]

    public struct Item: Codable, Equatable, Sendable {
        /// The chains the problem names (none for an orphan response).
        public var chains: [Int]
        public var text: String
    }
}

/// `latency`: the distributions of a report's complete chains, overall and per route.
public struct ReportLatency: Codable, Equatable, Sendable {
    public var overall: ReportLatencyGroup
    public var routes: [ReportLatencyRoute]
}

/// One group of chains: how many, values below zero counted as 0, and each measure.
public struct ReportLatencyGroup: Codable, Equatable, Sendable {
    public var chains: Int
    public var negative: Int
    /// The client's time: downstream request start to response end.
    public var client: ReportLatencyMeasure
    /// The app's: the answering upstream hop's request start to response end.
    public var app: ReportLatencyMeasure
    public var proxyBefore: ReportLatencyMeasure
    public var proxyAfter: ReportLatencyMeasure
    public var proxyAdded: ReportLatencyMeasure
}

/// A route (`GET /users/{id}`) and its group's members beside it.
public struct ReportLatencyRoute: Codable, Equatable, Sendable {
    public var route: String
    public var group: ReportLatencyGroup

    private enum CodingKeys: String, CodingKey { case route }

    public init(from decoder: Decoder) throws {
        route = try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .route)
        group = try ReportLatencyGroup(from: decoder)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(route, forKey: .route)
        try group.encode(to: encoder)
    }
}

/// One measure: its samples, those from ambiguous pairings, and its percentiles in ns (null
/// without samples).
public struct ReportLatencyMeasure: Codable, Equatable, Sendable {
    public var count: Int
    public var ambiguous: Int
    public var p50Ns: Int64?
    public var p90Ns: Int64?
    public var p99Ns: Int64?
    public var p999Ns: Int64?
    public var maxNs: Int64?

    private enum CodingKeys: String, CodingKey {
        case count, ambiguous, p50Ns, p90Ns, p99Ns, p999Ns = "p99.9Ns", maxNs
    }
}
