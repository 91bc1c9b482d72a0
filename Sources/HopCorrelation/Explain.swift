import HopCapture

/// The sentences that answer "why do I see this request twice?".
enum Explain {
    static func chain(_ c: RequestChain) -> String {
        let what = [c.method, c.target].compactMap { $0 }.joined(separator: " ")
        let subject = what.isEmpty ? "This response" : what
        guard let first = c.hops.first else { return "" }
        if case .incomplete(let missing, let advice) = c.completeness {
            if first.role.isUpstream {
                return "\(subject) was captured only as the \(first.role.phrase) copy (\(tuple(first))); the \(missing.phrase) copy is missing: \(advice)."
            }
            return "\(subject) was captured only as the \(first.role.phrase) copy (\(tuple(first))); \(rulePhrase(first.rule)) The \(missing.phrase) copy is missing: \(advice)."
        }
        if c.hops.count == 1 {
            switch first.role {
            case .direct:
                return "\(subject) was captured once (\(tuple(first))): not intercepted — \(first.roleReason)."
            case .inboundIntercepted, .outboundRedirected:
                return "\(subject) was REDIRECTed to the proxy (\(tuple(first))), which answered \(c.status.map(String.init) ?? "-") by itself without an upstream copy. \(rulePhrase(first.rule))"
            default:
                return "\(subject) was captured once as the \(first.role.phrase) copy (\(tuple(first)))."
            }
        }
        let up = c.hops.last!
        let added = c.proxyAddedNs.map { " The proxy added \(Timestamp.duration($0))." } ?? ""
        let retries = c.retries > 0 ? " The proxy tried \(c.retries + 1) times; \(c.retries) attempt\(c.retries == 1 ? "" : "s") failed before \(tuple(up)) answered." : ""
        switch first.role {
        case .inboundIntercepted:
            return "\(subject) appears \(c.hops.count) times because iptables REDIRECTed the client's connection \(tuple(first)) to the sidecar proxy (\(rulePhrase(first.rule, bare: true))), and the proxy sent its own copy to the app as \(tuple(up)) (\(exemption(up.rule))).\(retries)\(added)"
        case .outboundRedirected:
            let orig = first.connection.originalDestination.map { "\($0)" } ?? "the remote"
            return "\(subject) to \(orig) appears \(c.hops.count) times because the app's connection was REDIRECTed on lo to the sidecar proxy (\(rulePhrase(first.rule, bare: true))) — captured as \(first.connection.client) → \(first.connection.server) with replies from \(first.connection.replySource.map { "\($0)" } ?? orig) — and the proxy opened its own connection to the original destination, \(tuple(up)) (\(exemption(up.rule))).\(retries)\(added)"
        default:
            return "\(subject) appears \(c.hops.count) times: \(c.hops.map { "\($0.role.rawValue) \(tuple($0))" }.joined(separator: ", "))."
        }
    }

    /// The facts that tie a paired chain's downstream copy to the upstream copy that answered
    /// (made when asked, like the explanation).
    static func evidence(_ c: RequestChain, _ note: PairingNote) -> [String] {
        var e: [String] = []
        guard c.hops.count >= 2, let dq = c.hops[0].exchange.request, let uq = c.hops[c.hops.count - 1].exchange.request else { return e }
        let d = c.hops[0], u = c.hops[c.hops.count - 1]
        e.append("same method and target (\(dq.method) \(dq.target))")
        if let dh = dq.host, let uh = uq.host {
            e.append(dh == uh ? "same Host (\(dh))" : "compatible Host (\(dh) / \(uh))")
        }
        if let a = Correlator.requestID(dq), let b = Correlator.requestID(uq) {
            e.append(a == b ? "same x-request-id \(a)" : "same x-request-id (\(a) / \(b), trace digit rewritten)")
        } else if Correlator.requestID(dq) == nil, let b = Correlator.requestID(uq) {
            e.append("x-request-id \(b) added by the proxy")
        }
        if let a = Correlator.traceID(dq), let b = Correlator.traceID(uq), a == b {
            e.append("same trace id \(a.value) (\(a.header))")
        }
        let lead = uq.firstTimestamp - dq.firstTimestamp
        var nest = "time nesting: upstream request \(Timestamp.duration(lead)) after the downstream one"
        if let a = d.exchange.response?.lastTimestamp, let b = u.exchange.response?.lastTimestamp {
            nest += ", upstream response ended \(Timestamp.duration(a - b)) before the downstream one"
        }
        e.append(nest)
        if let ds = d.exchange.response?.status, let us = u.exchange.response?.status {
            e.append(ds == us ? "same status \(ds)" : "status \(us) upstream, \(ds) downstream")
        }
        if d.role == .outboundRedirected, let o = d.connection.originalDestination {
            e.append("the proxy connected to the original destination \(o)")
        }
        let differing = Correlator.endToEndHeaderDifferences(dq.headers, uq.headers)
        if differing.isEmpty {
            e.append("end-to-end headers equal (proxy headers ignored)")
        } else {
            e.append("end-to-end headers differ: \(differing.joined(separator: ", "))")
        }
        if let g = note.workerGroup {
            e.append("both connections belong to worker group \(g + 1) of \(note.workerGroups) the proxy showed in this capture")
        }
        if note.alternatives > 0 {
            let how: String
            switch note.ordersAgree {
            case true?: how = "the proxy's forwarding order and its return order both give this copy"
            case false?: how = "assigned by the proxy's return order (its forwarding order gives another copy)"
            case nil: how = "assigned by the proxy's arrival order"
            }
            e.append("\(note.alternatives + 1) identical requests in flight could take this copy: \(how)")
        }
        let failed = c.hops.count - 2
        if failed > 0 { e.append("\(failed) failed upstream attempt\(failed == 1 ? "" : "s") before the one that answered") }
        return e
    }

    static func tuple(_ h: Hop) -> String { "\(h.connection.client) → \(h.connection.server)" }

    static func rulePhrase(_ v: RuleVerdict, bare: Bool = false) -> String {
        switch v.outcome {
        case .noRules: return bare ? "no rules known" : "No interception rules are known."
        case .redirected, .ownerDependent: return bare ? v.sentence : v.sentence + "."
        case .notRedirected: return bare ? v.sentence : v.sentence + "."
        }
    }

    static func exemption(_ v: RuleVerdict) -> String {
        switch v.outcome {
        case .ownerDependent(_, let exempt): "not redirected because it belongs to \(exempt.joined(separator: " or ")): \(v.sentence)"
        case .notRedirected: "the rules leave it alone: \(v.sentence)"
        case .redirected(let p): "the rules would redirect it to \(p): \(v.sentence)"
        case .noRules: "no rules known"
        }
    }
}
