import HopCapture
import HopCorrelation
import HopFlows
import HopHTTP

/// Everything a report shows: the capture, the rules, the chains and the counters.
public struct AnalysisReport: Sendable {
    public struct CounterSection: Sendable {
        public var name: String
        public var items: [(name: String, count: Int, explanation: String)]
        public init(name: String, items: [(name: String, count: Int, explanation: String)]) {
            self.name = name
            self.items = items
        }
    }

    /// The capture's path, or a description of it.
    public var source: String
    public var linkType: String
    public var packets: Int
    public var connections: Int
    public var rulesName: String
    /// How the rules were chosen: "given", or what auto-detection saw.
    public var rulesOrigin: String
    public var podAddresses: [String]
    public var podAddressesInferred: Bool
    public var summary: AnalysisSummary
    public var chains: [RequestChain]
    public var duplicates: [DuplicateGroup]
    public var counters: [CounterSection]
    /// Interface names by index, where known (live captures).
    public var interfaceNames: [Int32: String]
    /// Problems that ended the read early (a truncated file).
    public var readError: String?
    /// Direct single-hop requests not kept in `chains` (text reports of large captures),
    /// counted by "METHOD target" in first-seen order.
    public var directCounts: [(key: String, count: Int)] = []
    /// Direct requests counted past the keys `directCounts` names (it names the first 64).
    public var directOthers = 0
    /// Chains already written out (a streamed JSON document) or left out of `chains` (text
    /// past its detail limit), counted for what the reports say about every chain.
    public var omitted = ChainTally()
    /// What the sidecar costs, over every chain (kept, omitted or streamed).
    public var latency = LatencyModel()
    /// What is wrong, over every chain (kept, omitted or streamed): see `problemSections`.
    public var problems = ProblemModel()
    /// Requests and the time the proxy added over the capture's time, over every chain.
    public var timeline = Timeline()
    /// Every chain in a few numbers (`--format html` only; empty otherwise).
    public var chainRows = ChainRows()
    /// Every chain: those kept in `chains` and those counted in `omitted`.
    public var chainCount: Int { chains.count + omitted.chains }

    /// Each kind of problem found, with its count and worst few (`ProblemModel`).
    public var problemSections: [ProblemModel.Section] {
        problems.sections(summary: summary, duplicates: duplicates, orphans: orphanResponses, latency: latency)
    }

    /// Direct requests, kept and counted: how many, and `GET / ×3, HEAD /x ×1, …` (the first
    /// eight `METHOD target` in first-seen order).
    public var directRequests: (count: Int, summary: String) {
        var groups: [(key: String, count: Int)] = []
        for c in chains where c.isDirect {
            let k = "\(c.shownMethod) \(c.shownTarget)"
            if let i = groups.firstIndex(where: { $0.key == k }) { groups[i].count += 1 } else { groups.append((k, 1)) }
        }
        for (k, n) in directCounts {
            if let i = groups.firstIndex(where: { $0.key == k }) { groups[i].count += n } else { groups.append((k, n)) }
        }
        let total = groups.reduce(directOthers) { $0 + $1.count }
        let list = groups.prefix(8).map { "\($0.key) ×\($0.count)" }.joined(separator: ", ")
        return (total, list + (groups.count > 8 || directOthers > 0 ? ", …" : ""))
    }

    /// Responses whose request is not in the capture (the first 1000): orphans on their hop,
    /// counted in `summary.orphanResponses`, never logical requests.
    public var orphanResponses: [Hop] = []
    /// What the analysis can't tell, and why (see `AnalysisWarnings`).
    public var warnings: [AnalysisWarning] = []

    public init(source: String, linkType: String, packets: Int, connections: Int, rulesName: String, rulesOrigin: String,
                podAddresses: [String], podAddressesInferred: Bool, summary: AnalysisSummary, chains: [RequestChain],
                duplicates: [DuplicateGroup], counters: [CounterSection], interfaceNames: [Int32: String] = [:],
                readError: String? = nil) {
        self.source = source
        self.linkType = linkType
        self.packets = packets
        self.connections = connections
        self.rulesName = rulesName
        self.rulesOrigin = rulesOrigin
        self.podAddresses = podAddresses
        self.podAddressesInferred = podAddressesInferred
        self.summary = summary
        self.chains = chains
        self.duplicates = duplicates
        self.counters = counters
        self.interfaceNames = interfaceNames
        self.readError = readError
    }

    /// The report of a finished analysis: what the correlator decided and found, and the
    /// counters of the stages before it.
    public init(source: String, linkType: LinkType, decode: DecodeCounters, flows: FlowCounters, http: HTTPCounters,
                correlator: Correlator, rulesOrigin: String, chains: [RequestChain], readError: String? = nil) {
        self.init(
            source: source, linkType: linkType.name, packets: decode.packets, connections: flows.connections,
            rulesName: correlator.rules.name, rulesOrigin: rulesOrigin,
            podAddresses: correlator.podAddresses.sorted().map(\.description),
            podAddressesInferred: correlator.podAddressesInferred, summary: correlator.summary, chains: chains,
            duplicates: correlator.duplicates,
            counters: [
                .init(name: "decode", items: decode.report.map { ($0.name, $0.count, $0.explanation) }),
                .init(name: "flows", items: flows.report),
                .init(name: "http", items: http.report),
            ],
            readError: readError)
    }

    /// The models that count every chain, whatever a report keeps of it: fed as chains come,
    /// then set on the report (`latency`, `problems`, `timeline`).
    public struct Counted: Sendable {
        public var latency = LatencyModel()
        public var problems = ProblemModel()
        public var timeline = Timeline()
        /// Every chain in a few numbers (the HTML report's table), when asked for.
        public var rows: ChainRows?

        public init(rows keepRows: Bool = false) {
            rows = keepRows ? ChainRows() : nil
        }

        public mutating func add(_ c: RequestChain) {
            latency.add(c)
            problems.add(c)
            timeline.add(c)
            rows?.add(c)
        }

        /// A direct request handed over as its exchange (`Correlator.onPlainDirect`).
        public mutating func add(direct x: HTTPExchange, chainID: Int) {
            latency.add(direct: x)
            problems.add(direct: x, chainID: chainID)
            timeline.add(direct: x)
            rows?.add(direct: x, chainID: chainID)
        }
    }

    /// The interface(s) a hop's packets were seen on: names where known, `ifN` otherwise.
    public func interface(of hop: Hop) -> String? {
        let idx = hop.connection.interfaceIndexes
        guard !idx.isEmpty else { return nil }
        return idx.map { interfaceNames[$0] ?? "if\($0)" }.joined(separator: ",")
    }

    /// One paragraph that answers "why does tcpdump show every request twice?" for this capture.
    public var answer: String {
        let s = summary
        var text: String
        if s.requestsOnWire == 0 {
            return "No HTTP requests were found in this capture."
        }
        let copies = s.requestsOnWire
        if s.multiHopChains == 0 && s.requestsInEncryptedHTTP2 > 0 {
            text = "The capture holds \(copies) request\(copies == 1 ? "" : "s") on the wire."
        } else if s.multiHopChains == 0 {
            let copied = warnings.isEmpty ? "no request was copied by a proxy" : "no request was seen copied by a proxy"
            text = "The capture holds \(copies) request\(copies == 1 ? "" : "s") on the wire and \(copied)"
            text += rulesName == "none" ? " (no sidecar traces were found, so no interception rules were assumed)." : " (rules: \(rulesName))."
        } else {
            let inbound = chains.filter { $0.isMultiHop && $0.firstRole == .inboundIntercepted }.count + omitted.inboundMultiHop
            let outbound = chains.filter { $0.isMultiHop && $0.firstRole == .outboundRedirected }.count + omitted.outboundMultiHop
            text = "You see \(copies) requests on the wire, but they are \(s.logicalRequests) request\(s.logicalRequests == 1 ? "" : "s"): "
            var parts: [String] = []
            if inbound > 0 {
                parts.append("\(inbound) inbound request\(inbound == 1 ? " was" : "s were") captured once on the way in (client → pod, before iptables REDIRECTed \(inbound == 1 ? "it" : "them") to the sidecar proxy) and again when the proxy forwarded \(inbound == 1 ? "it" : "them") to the app")
            }
            if outbound > 0 {
                parts.append("\(outbound) outbound request\(outbound == 1 ? " was" : "s were") captured on lo as the app's connection REDIRECTed to the proxy (its replies de-NATed, so tcpdump shows two half-connections) and again as the proxy's own connection to the original destination")
            }
            text += parts.joined(separator: "; ") + "."
            if let med = medianProxyAdded { text += " The proxy added \(Timestamp.duration(med)) per request (median)." }
        }
        if s.requestsInEncryptedHTTP2 > 0 {
            let n = s.requestsInEncryptedHTTP2, k = s.encryptedHTTP2Connections
            text += " \(n) request\(n == 1 ? "" : "s") came through \(k == 1 ? "an encrypted HTTP/2 connection" : "\(k) encrypted HTTP/2 connections")"
            text += " (TLS, as between sidecars under mTLS) and \(n == 1 ? "was" : "were") copied by the proxy in plaintext: the encrypted \(n == 1 ? "copy is" : "copies are") multiplexed inside TLS and cannot be told apart without the keys, so each shows as its plaintext copy alone."
        }
        if s.retries > 0 { text += " \(s.retries) upstream attempt\(s.retries == 1 ? " was a retry" : "s were retries")." }
        if s.incompleteChains > 0 {
            text += " \(s.incompleteChains) chain\(s.incompleteChains == 1 ? " is" : "s are") incomplete: a hop the rules imply is not in the capture."
        }
        let cantTell = warnings.map(\.reason).joined(separator: "; ")
        if s.unexplainedDuplicates > 0 {
            let n = s.unexplainedDuplicates
            text += " \(n) cop\(n == 1 ? "y is" : "ies are") not explained by any proxy hop"
            text += warnings.isEmpty
                ? ": the client sent the same request again."
                : " in this capture; can't tell whether the client sent the same request again, because \(cantTell) (see the warnings)."
        } else if warnings.isEmpty {
            text += " No copy is left unexplained."
        } else {
            text += " Can't tell whether that is all, because \(cantTell) (see the warnings)."
        }
        return text
    }

    public var medianProxyAdded: Int64? {
        let v = (chains.compactMap(\.proxyAddedNs) + omitted.proxyAdded).sorted()
        return v.isEmpty ? nil : v[v.count / 2]
    }
}

/// What the reports need to know of chains they do not keep: 8 bytes a chain (the time the
/// proxy added, for the exact median) and a few counts.
public struct ChainTally: Sendable {
    /// Chains counted.
    public var chains = 0
    /// Of them, those that are not direct requests (what the diagrams draw).
    public var touched = 0
    public var inboundMultiHop = 0
    public var outboundMultiHop = 0
    /// `proxyAddedNs` of every counted chain that has one.
    public var proxyAdded: [Int64] = []
    /// Incomplete chains counted by "missing ROLE: advice".
    public var incompleteAdvice: [String: Int] = [:]

    public init() {}

    /// Of them, the incomplete ones.
    public var incomplete: Int { incompleteAdvice.values.reduce(0, +) }

    public mutating func add(_ c: RequestChain) {
        chains += 1
        if !c.isDirect { touched += 1 }
        if c.isMultiHop {
            switch c.firstRole {
            case .inboundIntercepted: inboundMultiHop += 1
            case .outboundRedirected: outboundMultiHop += 1
            default: break
            }
        }
        if let p = c.proxyAddedNs { proxyAdded.append(p) }
        if case .incomplete(let m, let a) = c.completeness { incompleteAdvice["missing \(m.rawValue): \(a)", default: 0] += 1 }
    }
}
