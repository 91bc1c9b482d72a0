import Foundation
import HopReport

/// Exact counts against a third-party sidecar's truth: every request the sidecar logged is one
/// logical request whose chain has the expected roles, and nothing else is there (no orphans,
/// no incomplete chains, no unexplained duplicates, no request the sidecar did not log).
/// Pairing accuracy is not checked here: that is `PairingMetrics` (reported, never failing).
public struct TruthVerifier {
    public var roles: [String]
    public var complete: Bool
    public var unexplainedDuplicates: Int

    public init(roles: [String], complete: Bool, unexplainedDuplicates: Int) {
        self.roles = roles; self.complete = complete; self.unexplainedDuplicates = unexplainedDuplicates
    }

    public struct Outcome: Sendable {
        public var differences: [String] = []
        /// Chains (by client tuple) on connections whose only log line is an excluded `<BADREQ>`.
        public var excludedConnections: [String] = []
    }

    public func check(_ truth: [TruthRecord], excluded: [SidecarLogRecord] = [], analysis a: ReportDocument) -> Outcome {
        var o = Outcome()
        let index = PairingMetrics.downstreamIndex(a)
        let logical = a.summary.logicalRequests
        if logical != truth.count {
            o.differences.append("logical requests: the sidecar logged \(truth.count), the analysis has \(logical)")
        }
        let byClient = Dictionary(grouping: truth, by: \.client)
        for client in byClient.keys.sorted() {
            let ts = byClient[client]!.sorted { $0.index < $1.index }
            let found = index[client] ?? []
            if found.count != ts.count {
                o.differences.append("client connection \(client): the sidecar logged \(ts.count) request\(ts.count == 1 ? "" : "s"), the analysis has \(found.count) downstream cop\(found.count == 1 ? "y" : "ies") there")
            }
            for t in ts where t.index < found.count {
                let ref = found[t.index]
                let c = a.chains[ref.chain]
                let h = c.hops[ref.hop]
                let label = "request \(t.method) \(t.target) #\(t.index + 1) on \(client) (id \(t.requestId ?? "-"))"
                // An encrypted turn: the request its chain's plaintext copy says it is.
                let r = c.request(ofHop: ref.hop)
                let copy = h.isEncrypted ? "the analysis pairs the encrypted turn there with" : "the analysis has"
                if r.method != t.method || r.target != t.target {
                    o.differences.append("\(label): \(copy) \(r.method ?? "-") \(r.target ?? "-") there")
                }
                if t.status > 0, let s = r.status, s != t.status {
                    o.differences.append("\(label): status \(t.status) in the sidecar's log, \(s) in the analysis")
                }
                if let turn = h.tls?.turn, turn != t.index + 1 {
                    o.differences.append("\(label): the analysis numbers the encrypted turn there \(turn)")
                }
                // A request the app never saw (the client gave up first) has only its downstream
                // copy: an incomplete chain.
                let never = PairingTruth(t).neverForwarded
                let expectedRoles = never ? Array(roles.prefix(1)) : roles
                let got = c.hops.map(\.role)
                if got != expectedRoles {
                    o.differences.append("\(label): hop roles expected \(expectedRoles.joined(separator: ", ")), got \(got.joined(separator: ", "))")
                }
                let expectedComplete = never ? false : complete
                if c.complete != expectedComplete {
                    o.differences.append("\(label): complete expected \(expectedComplete), got \(c.complete)")
                }
            }
        }
        let badClients = Set(excluded.map(\.client))
        for client in index.keys.sorted() where byClient[client] == nil {
            for ref in index[client]! {
                let c = a.chains[ref.chain]
                let h = c.hops[ref.hop]
                if badClients.contains(client) { o.excludedConnections.append(client) }
                let r = c.request(ofHop: ref.hop)
                o.differences.append("unexplained chain \(c.id): \(h.isEncrypted ? "encrypted turn of " : "")\(r.method ?? "-") \(r.target ?? "-") from \(client) [\(c.hops.map(\.role).joined(separator: ", "))]: the sidecar logged no request from there\(badClients.contains(client) ? " (only a <BADREQ>)" : "")")
            }
        }
        let d = a.summary.unexplainedDuplicates
        if d != unexplainedDuplicates {
            o.differences.append("unexplained duplicates: expected \(unexplainedDuplicates), got \(d)")
        }
        if case let n = a.summary.orphanUpstreams, n != 0 { o.differences.append("orphan upstream copies: expected 0, got \(n)") }
        let neverForwarded = truth.filter { PairingTruth($0).neverForwarded }.count
        if complete, case let n = a.summary.incompleteChains, n != neverForwarded {
            o.differences.append("incomplete chains: expected \(neverForwarded)\(neverForwarded > 0 ? " (requests the app never saw)" : ""), got \(n)")
        }
        return o
    }
}
