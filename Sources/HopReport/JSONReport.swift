import HopCapture
import HopCorrelation
import HopFlows

/// `--format json` (one document) and `--format jsonl` (one chain per line).
public enum JSONReport {
    public static func verdict(_ v: RuleVerdict) -> String {
        var o = JSONObject()
        switch v.outcome {
        case .redirected(let p): o.add("outcome", "redirected"); o.add("toPort", p)
        case .notRedirected: o.add("outcome", "not-redirected")
        case .ownerDependent(let p, let ex): o.add("outcome", "owner-dependent"); o.add("toPort", p); o.add("exempt", strings: ex)
        case .noRules: o.add("outcome", "no-rules")
        }
        o.add("decidingRule", v.decidingRule)
        o.add("sentence", v.sentence)
        o.add("traversal", strings: v.traversal)
        return o.json
    }

    public static func hop(_ h: Hop, report: AnalysisReport?) -> String {
        let c = h.connection
        let x = h.exchange
        var o = JSONObject()
        o.add("role", h.role.rawValue)
        o.add("attempt", h.attempt)
        o.add("connection", c.id.value)
        o.add("client", c.client.description)
        o.add("server", c.server.description)
        o.add("originalDestination", c.originalDestination?.description)
        o.add("replySource", c.replySource?.description)
        o.add("interface", report?.interface(of: h) ?? (c.interfaceIndexes.isEmpty ? nil : c.interfaceIndexes.map { "if\($0)" }.joined(separator: ",")))
        o.add("method", x.request?.method)
        o.add("target", x.request?.target)
        o.add("host", x.request?.host)
        o.add("requestId", x.request?.headers["x-request-id"])
        o.add("status", x.response.map { $0.status })
        o.add("requestStart", x.request.map { Timestamp.iso8601($0.firstTimestamp) })
        o.add("responseEnd", x.response.map { Timestamp.iso8601($0.lastTimestamp) })
        o.add("requestStartNs", x.request?.firstTimestamp)
        o.add("responseEndNs", x.response?.lastTimestamp)
        o.add("flags", strings: x.flags.names)
        o.add("rule", h.rule.decidingRule ?? h.rule.sentence)
        o.addRaw("ruleEvaluation", verdict(h.rule))
        o.add("roleReason", h.roleReason)
        return o.json
    }

    public static func chain(_ c: RequestChain, report: AnalysisReport?) -> String {
        var o = JSONObject()
        o.add("id", c.id)
        o.add("method", c.method)
        o.add("target", c.target)
        o.add("host", c.host)
        o.add("status", c.status)
        o.add("confidence", (c.confidence * 1000).rounded() / 1000)
        switch c.completeness {
        case .complete:
            o.add("complete", true)
            o.add("missing", nil as String?)
            o.add("advice", nil as String?)
        case .incomplete(let missing, let advice):
            o.add("complete", false)
            o.add("missing", missing.rawValue)
            o.add("advice", advice)
        }
        o.add("retries", c.retries)
        o.add("proxyAddedNs", c.proxyAddedNs)
        o.add("explanation", c.explanation)
        o.add("evidence", strings: c.evidence)
        o.addRaw("hops", JSONObject.array(c.hops.map { hop($0, report: report) }))
        return o.json
    }

    public static func summary(_ r: AnalysisReport) -> String {
        let s = r.summary
        var o = JSONObject()
        o.add("packets", r.packets)
        o.add("connections", r.connections)
        o.add("exchanges", s.exchanges)
        o.add("requestsOnWire", s.requestsOnWire)
        o.add("logicalRequests", s.logicalRequests)
        o.add("multiHopChains", s.multiHopChains)
        o.add("unexplainedDuplicates", s.unexplainedDuplicates)
        o.add("duplicateGroups", s.duplicateGroups)
        o.add("repeatedStreams", s.repeatedStreams)
        o.add("repeatedStreamRequests", s.repeatedStreamRequests)
        o.add("incompleteChains", s.incompleteChains)
        o.add("retries", s.retries)
        o.add("ambiguousPairings", s.ambiguousPairings)
        o.add("orphanUpstreams", s.orphanUpstreams)
        var roles = JSONObject()
        for role in HopRole.allCases { roles.add(role.rawValue, s.roles[role] ?? 0) }
        o.addRaw("roles", roles.json)
        o.add("medianProxyAddedNs", r.medianProxyAdded)
        return o.json
    }

    public static func duplicate(_ g: DuplicateGroup) -> String {
        var o = JSONObject()
        o.add("method", g.method)
        o.add("target", g.target)
        o.add("host", g.host)
        o.add("client", g.client.description)
        o.add("server", g.server.description)
        o.add("copies", g.copies)
        o.add("repeatedStream", g.isRepeatedStream)
        o.addRaw("chains", "[" + g.chainIDs.map(String.init).joined(separator: ",") + "]")
        o.add("explanation", g.explanation)
        return o.json
    }

    public static func header(_ r: AnalysisReport) -> [(String, String)] {
        var cap = JSONObject()
        cap.add("source", r.source)
        cap.add("linkType", r.linkType)
        cap.add("packets", r.packets)
        cap.add("readError", r.readError)
        var rules = JSONObject()
        rules.add("name", r.rulesName)
        rules.add("origin", r.rulesOrigin)
        var pod = JSONObject()
        pod.add("addresses", strings: r.podAddresses)
        pod.add("inferred", r.podAddressesInferred)
        return [("capture", cap.json), ("rules", rules.json), ("pod", pod.json)]
    }

    public static func counters(_ r: AnalysisReport) -> String {
        var o = JSONObject()
        for section in r.counters {
            var s = JSONObject()
            for item in section.items { s.add(item.name, item.count) }
            o.addRaw(section.name, s.json)
        }
        return o.json
    }

    /// The whole analysis as one JSON document.
    public static func document(_ r: AnalysisReport) -> String {
        var o = JSONObject()
        for (k, v) in header(r) { o.addRaw(k, v) }
        o.addRaw("summary", summary(r))
        o.add("answer", r.answer)
        o.addRaw("chains", JSONObject.array(r.chains.map { chain($0, report: r) }))
        o.addRaw("duplicates", JSONObject.array(r.duplicates.map(duplicate)))
        o.addRaw("counters", counters(r))
        return o.json
    }

    /// The final line of `--format jsonl`: `{"summary": …}` with the header and the duplicates.
    public static func trailer(_ r: AnalysisReport) -> String {
        var o = JSONObject()
        for (k, v) in header(r) { o.addRaw(k, v) }
        o.addRaw("totals", summary(r))
        o.add("answer", r.answer)
        o.addRaw("duplicates", JSONObject.array(r.duplicates.map(duplicate)))
        o.addRaw("counters", counters(r))
        var w = JSONObject()
        w.addRaw("summary", o.json)
        return w.json
    }
}
