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
