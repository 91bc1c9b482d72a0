import Foundation

/// A typed subset of `hoptrace analyze --format json`: what the lab's truth joining and pairing
/// metrics read. Fields the other stages may add later (`requestEndNs`, `responseStartNs`) are
/// optional and used when present.
public struct LabAnalysis: Decodable, Sendable {
    public var summary: Summary
    public var chains: [Chain]

    public struct Summary: Decodable, Sendable {
        public var logicalRequests: Int?
        public var multiHopChains: Int?
        public var incompleteChains: Int?
        public var unexplainedDuplicates: Int?
        public var orphanUpstreams: Int?
        public var ambiguousPairings: Int?
    }

    public struct Chain: Decodable, Sendable {
        public var id: Int
        public var method: String?
        public var target: String?
        public var status: Int?
        public var confidence: Double
        public var complete: Bool
        public var missing: String?
        public var hops: [Hop]
    }

    public struct Hop: Decodable, Sendable, Equatable {
        public var role: String
        public var client: String
        public var server: String
        public var method: String?
        public var target: String?
        public var requestId: String?
        public var status: Int?
        public var requestStartNs: Int64?
        public var requestEndNs: Int64?
        public var responseStartNs: Int64?
        public var responseEndNs: Int64?

        public init(role: String, client: String, server: String = "", method: String?, target: String?, requestId: String? = nil,
                    status: Int? = 200, requestStartNs: Int64?, requestEndNs: Int64? = nil, responseStartNs: Int64? = nil,
                    responseEndNs: Int64?) {
            self.role = role; self.client = client; self.server = server; self.method = method; self.target = target
            self.requestId = requestId; self.status = status; self.requestStartNs = requestStartNs; self.requestEndNs = requestEndNs
            self.responseStartNs = responseStartNs; self.responseEndNs = responseEndNs
        }

        public var isDownstream: Bool { role == HopRoles.inboundIntercepted || role == HopRoles.outboundRedirected }
        public var isUpstream: Bool { role == HopRoles.inboundForwarded || role == HopRoles.outboundForwarded }
        /// inbound or outbound (the baseline pairs within one direction only).
        public var direction: String { role.hasPrefix("inbound") ? "inbound" : "outbound" }
    }

    public init(summary: Summary = Summary(logicalRequests: nil), chains: [Chain]) {
        self.summary = summary
        self.chains = chains
    }

    public static func decode(_ data: Data) throws -> LabAnalysis {
        try JSONDecoder().decode(LabAnalysis.self, from: data)
    }
}

extension LabAnalysis.Summary {
    public init(logicalRequests: Int? = nil, incompleteChains: Int? = nil) {
        self.logicalRequests = logicalRequests
        self.incompleteChains = incompleteChains
    }
}

extension LabAnalysis.Chain {
    public init(id: Int, confidence: Double, complete: Bool = true, hops: [LabAnalysis.Hop]) {
        self.id = id
        self.method = hops.first?.method
        self.target = hops.first?.target
        self.status = hops.first?.status
        self.confidence = confidence
        self.complete = complete
        self.missing = nil
        self.hops = hops
    }
}

public enum HopRoles {
    public static let inboundIntercepted = "inbound-intercepted"
    public static let inboundForwarded = "inbound-forwarded"
    public static let outboundRedirected = "outbound-redirected"
    public static let outboundForwarded = "outbound-forwarded"
}
