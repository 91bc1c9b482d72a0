import HopCapture
import HopCorrelation
import HopFlows
import HopHTTP

/// `--format json` (one document) and `--format jsonl` (one chain per line), written by a
/// `JSONWriter` as chains are produced.
///
/// The document streams: `{"schemaVersion": 2, "chains": [ … each chain as it comes … ],
/// "connections": [ … ], "capture": …, "rules": …, "pod": …, "summary": …, "answer": …,
/// "duplicates": …, "counters": …, "warnings": […]}`. Each connection is described once (its
/// rule evaluation and role reason, in `connections` or a jsonl `{"connection": …}` line) and
/// hops refer to it by id (`ConnectionRecords`). What is only known at the end of the capture
/// (the counts, the pod's addresses, the rules auto-detection chose) follows the chains; the
/// keys and their types are those readers (`check`, the lab) know.
public enum JSONReport {
    public static func write(verdict v: RuleVerdict, to w: JSONWriter) {
        w.beginObject()
        switch v.outcome {
        case .redirected(let p): w.field("outcome", "redirected"); w.field("toPort", p)
        case .notRedirected: w.field("outcome", "not-redirected")
        case .ownerDependent(let p, let ex): w.field("outcome", "owner-dependent"); w.field("toPort", p); w.field("exempt", strings: ex)
        case .noRules: w.field("outcome", "no-rules")
        }
        w.field("decidingRule", v.decidingRule)
        w.field("sentence", v.sentence)
        w.field("traversal", strings: v.traversal)
        w.endObject()
    }

    public static func verdict(_ v: RuleVerdict) -> String {
        let w = JSONWriter()
        write(verdict: v, to: w)
        return w.string
    }

    /// The version of the report's schema (`schemaVersion` of the document and of jsonl's
    /// trailer). 2: connections are described once (`connections`, jsonl's `{"connection": …}`
    /// lines) and hops refer to them; 1 (unstated): every hop carried its connection's
    /// `ruleEvaluation` and `roleReason`.
    public static let schemaVersion = 2

    /// One hop. `requestStartNs`/`requestEndNs` are the first and last byte of the request,
    /// `responseStartNs`/`responseEndNs` those of the response (null when not captured).
    ///
    /// With `connections`, the hop's `ruleEvaluation` and `roleReason` are its connection's
    /// record's (written there, once) and the hop carries them only when its verdict differs
    /// from the record's; without, the hop carries them (`JSONReport.hop`, watch's lines).
    public static func write(hop h: Hop, report: AnalysisReport?, connections: ConnectionRecords? = nil,
                             names: InterfaceNameTable? = nil, to w: JSONWriter) {
        // Every field read where it is (`h.exchange.request?.…`): binding the exchange, its
        // request or its response would copy it, retaining each of its strings and arrays.
        w.beginObject()
        w.field("role", h.role.rawValue)
        w.field("attempt", h.attempt)
        w.field("connection", h.exchange.connectionID.value)
        writeEndpoints(of: h, report: report, names: names, to: w)
        w.field("method", h.exchange.request?.method)
        w.field("target", h.exchange.request?.target)
        w.field("host", h.exchange.request?.host)
        w.field("requestId", h.exchange.request?.headers["x-request-id"])
        w.field("status", h.exchange.response?.status)
        let requestStart = h.exchange.requestFirstTimestamp, requestEnd = h.exchange.requestLastTimestamp
        let responseStart = h.exchange.responseFirstTimestamp, responseEnd = h.exchange.responseLastTimestamp
        w.field("requestStart", iso8601: requestStart)
        w.field("responseEnd", iso8601: responseEnd)
        w.field("requestEnd", iso8601: requestEnd)
        w.field("responseStart", iso8601: responseStart)
        w.field("requestStartNs", epochNanos: requestStart)
        w.field("requestEndNs", epochNanos: requestEnd)
        w.field("responseStartNs", epochNanos: responseStart)
        w.field("responseEndNs", epochNanos: responseEnd)
        w.key("flags")
        if let connections { connections.flags(h.exchange.flags, to: w) } else { flags(h.exchange.flags, to: w) }
        HTTP2Rendering.write(h.exchange.http2, to: w)
        TLSRendering.write(h.exchange.tls, turn: h.exchange.sequence, to: w)
        // The same for every hop of a connection: encoded once.
        if let connections, let v = connections.verdict(referredBy: h) {
            w.members(v.perHop)
        } else {
            let v = verdictRendering(h)
            w.members(v.perHop)
            w.members(v.perConnection)
        }
        w.endObject()
    }

    /// The hop's interface names (`if2` without a report's names or `names`), or null.
    /// `names`: interface names known while the report is not (a pcapng file's, streamed).
    static func interface(of h: Hop, report: AnalysisReport?, names: InterfaceNameTable? = nil, to w: JSONWriter) {
        if let report {
            w.string(report.interface(of: h))
            return
        }
        let idx = h.exchange.interfaceIndexes
        if idx.isEmpty {
            w.null()
        } else if let names {
            w.string(idx.map { names.name($0) ?? "if\($0)" }.joined(separator: ","))
        } else {
            w.separator()
            w.byte(0x22)
            for i in idx.indices {
                if i > 0 { w.byte(0x2c) }
                w.ascii("if"); w.digits(idx[i])
            }
            w.byte(0x22)
            w.needsComma = true
        }
    }

    /// The hop's verdict encoded (once per connection): `"rule": …` for every hop,
    /// `"ruleEvaluation": …, "roleReason": …` for its connection's record.
    static func verdictRendering(_ h: Hop) -> VerdictRendering {
        h.verdictJSON {
            let rule = h.rule
            let m = JSONWriter(capacity: 1024)
            m.field("rule", rule.decidingRule ?? rule.sentence)
            let perHop = m.bytes
            m.reset()
            m.key("ruleEvaluation")
            write(verdict: rule, to: m)
            m.field("roleReason", h.roleReason)
            return VerdictRendering(perHop: perHop, perConnection: m.bytes)
        }
    }

    /// A connection's record: `{id, client, server, originalDestination, replySource, interface,
    /// rule, ruleEvaluation, roleReason}`, its facts as its first reported hop saw them.
    public static func write(connectionOf h: Hop, report: AnalysisReport?, names: InterfaceNameTable? = nil, to w: JSONWriter) {
        w.beginObject()
        writeFacts(of: h, report: report, names: names, to: w)
        let v = verdictRendering(h)
        w.members(v.perHop)
        w.members(v.perConnection)
        w.endObject()
    }

    /// The members of a connection's record before its verdict (inside an open object).
    static func writeFacts(of h: Hop, report: AnalysisReport?, names: InterfaceNameTable? = nil, to w: JSONWriter) {
        w.field("id", h.exchange.connectionID.value)
        writeEndpoints(of: h, report: report, names: names, to: w)
    }

    /// `client`, `server`, `originalDestination`, `replySource` and `interface` of a hop's
    /// connection (a hop's members and its connection's record's).
    @inline(__always)
    static func writeEndpoints(of h: Hop, report: AnalysisReport?, names: InterfaceNameTable?, to w: JSONWriter) {
        let x = h.exchange
        w.field("client", endpoint: x.client)
        w.field("server", endpoint: x.server)
        w.field("originalDestination", endpoint: x.originalDestination)
        w.field("replySource", endpoint: x.replySource)
        w.key("interface")
        interface(of: h, report: report, names: names, to: w)
    }

    /// An exchange's flags as an array of names.
    public static func flags(_ f: HTTPExchangeFlags, to w: JSONWriter) {
        if f.isEmpty {
            w.beginArray(); w.endArray()
        } else {
            w.strings(f.names)
        }
    }

    public static func hop(_ h: Hop, report: AnalysisReport?) -> String {
        let w = JSONWriter()
        write(hop: h, report: report, to: w)
        return w.string
    }

    public static func write(chain c: RequestChain, report: AnalysisReport?, connections: ConnectionRecords? = nil,
                             names: InterfaceNameTable? = nil, to w: JSONWriter) {
        w.beginObject()
        w.field("id", c.id)
        w.field("method", c.method)
        w.field("target", c.target)
        w.field("host", c.host)
        w.field("status", c.status)
        w.field("confidence", (c.confidence * 1000).rounded() / 1000)
        switch c.completeness {
        case .complete:
            w.field("complete", true)
            w.key("missing"); w.null()
            w.key("advice"); w.null()
            // Complete alone: its other copy is inside an encrypted HTTP/2 connection (only
            // then written, so other reports stay as they were).
            if let other = c.otherCopyInEncryptedHTTP2 { w.field("otherCopyInEncryptedHTTP2", other.rawValue) }
        case .incomplete(let missing, let advice):
            w.field("complete", false)
            w.field("missing", missing.rawValue)
            w.field("advice", advice)
        }
        w.field("retries", c.retries)
        w.field("proxyAddedNs", c.proxyAddedNs)
        // The sentences are written as they are made (no String per chain).
        w.key("explanation")
        if let text = c.explanationOverride {
            w.string(text)
        } else if let connections {
            connections.explain(c, to: w)
        } else {
            var sink = JSONStringSink(w)
            Explain.chain(c, into: &sink)
        }
        w.key("evidence")
        if let pairing = c.pairing, c.evidenceOverride == nil {
            w.beginArray()
            var sink = JSONStringSink(w)
            Explain.evidence(c, pairing, into: &sink)
            w.endArray()
        } else {
            w.strings(c.evidence)
        }
        w.key("hops")
        w.beginArray()
        // The hops lent in place (`c.hops[i]`, or a buffer's subscript, would copy each hop for
        // the call: a pointer's `pointee` is read where it is).
        c.hops.withUnsafeBufferPointer { hops in
            guard let base = hops.baseAddress else { return }
            for i in hops.indices { write(hop: (base + i).pointee, report: report, connections: connections, names: names, to: w) }
        }
        w.endArray()
        w.endObject()
    }

    public static func chain(_ c: RequestChain, report: AnalysisReport?) -> String {
        let w = JSONWriter(capacity: 4096)
        write(chain: c, report: report, to: w)
        return w.string
    }

    public static func write(summary r: AnalysisReport, to w: JSONWriter) {
        let s = r.summary
        w.beginObject()
        w.field("packets", r.packets)
        w.field("connections", r.connections)
        w.field("exchanges", s.exchanges)
        w.field("requestsOnWire", s.requestsOnWire)
        w.field("logicalRequests", s.logicalRequests)
        w.field("multiHopChains", s.multiHopChains)
        w.field("unexplainedDuplicates", s.unexplainedDuplicates)
        w.field("duplicateGroups", s.duplicateGroups)
        w.field("repeatedStreams", s.repeatedStreams)
        w.field("repeatedStreamRequests", s.repeatedStreamRequests)
        w.field("incompleteChains", s.incompleteChains)
        w.field("retries", s.retries)
        w.field("ambiguousPairings", s.ambiguousPairings)
        w.field("orphanUpstreams", s.orphanUpstreams)
        w.field("orphanResponses", s.orphanResponses)
        w.key("roles")
        w.beginObject()
        let roles = s.roles
        for role in HopRole.allCases { w.key(role.rawValue); w.int(roles[role] ?? 0) }
        w.endObject()
        w.field("medianProxyAddedNs", r.medianProxyAdded)
        // Written only where the capture has them (HTTP/2 inside TLS): reports of other
        // captures stay as they were.
        if s.encryptedHTTP2Connections > 0 {
            w.field("encryptedHTTP2Connections", s.encryptedHTTP2Connections)
            w.field("requestsInEncryptedHTTP2", s.requestsInEncryptedHTTP2)
        }
        w.endObject()
    }

    public static func summary(_ r: AnalysisReport) -> String {
        let w = JSONWriter()
        write(summary: r, to: w)
        return w.string
    }

    public static func write(duplicate g: DuplicateGroup, to w: JSONWriter) {
        w.beginObject()
        w.field("method", g.method)
        w.field("target", g.target)
        w.field("host", g.host)
        w.key("client"); w.string(g.client.description)
        w.field("server", endpoint: g.server)
        w.field("copies", g.copies)
        w.field("repeatedStream", g.isRepeatedStream)
        w.key("chains"); w.ints(g.chainIDs)
        w.field("explanation", g.explanation)
        w.endObject()
    }

    public static func duplicate(_ g: DuplicateGroup) -> String {
        let w = JSONWriter()
        write(duplicate: g, to: w)
        return w.string
    }

    /// `"capture": …, "rules": …, "pod": …` (keys and values, inside an open object).
    public static func writeHeader(_ r: AnalysisReport, to w: JSONWriter) {
        w.key("capture")
        w.beginObject()
        w.field("source", r.source)
        w.field("linkType", r.linkType)
        w.field("packets", r.packets)
        w.field("readError", r.readError)
        w.endObject()
        w.key("rules")
        w.beginObject()
        w.field("name", r.rulesName)
        w.field("origin", r.rulesOrigin)
        w.endObject()
        w.key("pod")
        w.beginObject()
        w.field("addresses", strings: r.podAddresses)
        w.field("inferred", r.podAddressesInferred)
        w.endObject()
    }

    public static func write(counters r: AnalysisReport, to w: JSONWriter) {
        w.beginObject()
        for section in r.counters {
            w.key(section.name)
            w.beginObject()
            for item in section.items { w.key(item.name); w.int(item.count) }
            w.endObject()
        }
        w.endObject()
    }

    public static func counters(_ r: AnalysisReport) -> String {
        let w = JSONWriter()
        write(counters: r, to: w)
        return w.string
    }

    /// The whole analysis as one JSON document (the chains of `r`, then the rest).
    public static func document(_ r: AnalysisReport) -> String {
        let w = JSONWriter(capacity: 1 << 16)
        let d = DocumentWriter(w)
        for c in r.chains { d.chain(c, report: r) }
        d.finish(r)
        return w.string
    }

    /// Writes `--format json` as the chains come: `chain` for each, then `finish` with the
    /// report (its `chains` are not written again). The writer is flushed to its sink as it fills.
    ///
    /// `{"schemaVersion": 2, "chains": [ … ], "connections": [ … ], "capture": …, …}`: the
    /// connections the hops refer to are kept (a few bytes each, their verdicts shared) and
    /// written after the chains.
    public final class DocumentWriter {
        public let writer: JSONWriter
        private var opened = false
        private let connections = ConnectionRecords()
        /// The interfaces' names, as the capture is read (a pcapng file's).
        public var names: InterfaceNameTable? { didSet { connections.names = names } }

        public init(_ writer: JSONWriter) { self.writer = writer }

        private func open() {
            guard !opened else { return }
            opened = true
            writer.beginObject()
            writer.field("schemaVersion", JSONReport.schemaVersion)
            writer.key("chains")
            writer.beginArray()
        }

        public func chain(_ c: RequestChain, report: AnalysisReport? = nil) {
            open()
            for i in c.hops.indices { connections.note(c.hops[i], report: report) }
            write(chain: c, report: report, connections: connections, names: names, to: writer)
            writer.flushIfNeeded()
        }

        /// Closes the chains, writes the connections and what is known at the end; a newline
        /// ends the document.
        public func finish(_ r: AnalysisReport) {
            open()
            writer.endArray()
            for h in r.orphanResponses { connections.note(h, report: r) }
            writer.key("connections")
            connections.writeKept(to: writer)
            JSONReport.write(ending: r, summaryKey: "summary", connections: connections, to: writer)
            writer.endObject()
            writer.newline()
        }
    }

    /// Writes `--format jsonl`: a `{"connection": …}` line before the first chain line that
    /// refers to a connection, one line per chain, and the `{"summary": …}` line at the end.
    public final class LinesWriter {
        public let writer: JSONWriter
        private let connections: ConnectionRecords
        /// The interfaces' names, as the capture is read (a pcapng file's).
        public var names: InterfaceNameTable? { didSet { connections.names = names } }

        public init(_ writer: JSONWriter) {
            self.writer = writer
            connections = ConnectionRecords(lines: writer)
        }

        /// The chain's line, after the lines of the connections it is the first to refer to.
        public func chain(_ c: RequestChain) {
            for i in c.hops.indices { connections.note(c.hops[i], report: nil) }
            write(chain: c, report: nil, connections: connections, names: names, to: writer)
            writer.newline()
            writer.flushIfNeeded()
        }

        /// The last line: `{"summary": …}` (after the lines of the orphan responses' connections).
        public func finish(_ r: AnalysisReport) {
            for h in r.orphanResponses { connections.note(h, report: r) }
            write(trailer: r, connections: connections, to: writer)
            writer.newline()
        }
    }

    /// One chain line of `--format jsonl` on its own: the chain (its hops carrying their
    /// verdicts) and a newline. `LinesWriter` writes the stream.
    public static func writeLine(chain c: RequestChain, to w: JSONWriter, names: InterfaceNameTable? = nil) {
        write(chain: c, report: nil, names: names, to: w)
        w.newline()
        w.flushIfNeeded()
    }

    /// The final line of `--format jsonl`: `{"summary": …}` with the header and the duplicates.
    public static func write(trailer r: AnalysisReport, connections: ConnectionRecords? = nil, to w: JSONWriter) {
        w.beginObject()
        w.key("summary")
        w.beginObject()
        w.field("schemaVersion", JSONReport.schemaVersion)
        write(ending: r, summaryKey: "totals", connections: connections, to: w)
        w.endObject()
        w.endObject()
    }

    /// What is only known at the end of a capture, the same in the document and in jsonl's
    /// last line: the header, the summary (under `summaryKey`), the answer, the latency
    /// distributions (`LatencyModel`), the problems (`ProblemModel`), the duplicates,
    /// the orphan responses, the counters and the warnings.
    static func write(ending r: AnalysisReport, summaryKey: String, connections: ConnectionRecords? = nil, to w: JSONWriter) {
        writeHeader(r, to: w)
        w.key(summaryKey)
        write(summary: r, to: w)
        w.field("answer", r.answer)
        w.key("latency")
        write(latency: r.latency, to: w)
        w.key("problems")
        write(problems: r.problemSections, to: w)
        w.key("duplicates")
        w.beginArray()
        for g in r.duplicates { write(duplicate: g, to: w) }
        w.endArray()
        w.key("orphanResponses")
        w.beginArray()
        for h in r.orphanResponses { write(hop: h, report: r, connections: connections, to: w) }
        w.endArray()
        w.key("counters")
        write(counters: r, to: w)
        w.key("warnings")
        write(warnings: r.warnings, to: w)
    }

    /// `[{"kind": "5xx", "count": n, "worst": [{"chains": [id, …], "text": …}, …]}, …]`: each
    /// kind of problem found (`ProblemModel.Kind`, in its order), how many, and the worst few.
    public static func write(problems: [ProblemModel.Section], to w: JSONWriter) {
        w.beginArray()
        for sec in problems {
            w.beginObject()
            w.field("kind", sec.kind.rawValue)
            w.field("count", sec.count)
            w.key("worst")
            w.beginArray()
            for item in sec.items {
                w.beginObject()
                w.key("chains")
                w.beginArray()
                for id in item.chainIDs { w.int(id) }
                w.endArray()
                w.field("text", item.text)
                w.endObject()
            }
            w.endArray()
            w.endObject()
        }
        w.endArray()
    }

    /// `[{"code": …, "message": …, "reason": …, "counts": {name: n, …}, "evidence": […]}, …]`.
    public static func write(warnings: [AnalysisWarning], to w: JSONWriter) {
        w.beginArray()
        for x in warnings {
            w.beginObject()
            w.field("code", x.code.rawValue)
            w.field("message", x.message)
            w.field("reason", x.reason)
            w.key("counts")
            w.beginObject()
            for c in x.counts { w.key(c.name); w.int(c.value) }
            w.endObject()
            w.field("evidence", strings: x.evidence)
            w.endObject()
        }
        w.endArray()
    }

    public static func trailer(_ r: AnalysisReport) -> String {
        let w = JSONWriter()
        write(trailer: r, to: w)
        return w.string
    }
}

extension JSONReport {
    /// One exchange of `http --format jsonl`. The `…Ns` fields are the same times as the
    /// ISO 8601 ones, in ns since the epoch: the first and last byte of the request
    /// (`requestStartNs`, `requestEndNs`) and of the response (`responseStartNs`,
    /// `responseEndNs`); null when not captured.
    /// One exchange of `http --format jsonl`; `headers`: with `requestHeaders` and
    /// `responseHeaders` (arrays of {name, value} in the order sent; null when not captured).
    /// `bodies`: with `requestBodyPrefix` and `responseBodyPrefix`, the bodies' kept first bytes
    /// (`HTTPConfiguration.bodyPrefixBytes`) decoded as UTF-8 (U+FFFD for invalid bytes).
    public static func write(exchange x: HTTPExchange, headers: Bool = false, bodies: Bool = false, to w: JSONWriter) {
        let q = x.request, r = x.response
        w.beginObject()
        w.field("connection", x.connectionID.value)
        w.field("sequence", x.sequence)
        w.field("method", q?.method)
        w.field("target", q?.target)
        if let line = q?.malformedLine { w.field("malformedRequestLine", line) }
        w.field("host", q?.host)
        w.key("version")
        if let v = q?.version ?? r?.version {
            w.separator(); w.ascii("\"HTTP/"); w.digits(v.major); w.byte(0x2e); w.digits(v.minor); w.byte(0x22); w.needsComma = true
        } else {
            w.null()
        }
        w.field("status", r?.status)
        w.field("reason", r?.reason)
        w.field("client", endpoint: x.client)
        w.field("server", endpoint: x.server)
        w.field("replySource", endpoint: x.connection.replySource)
        w.field("originalDestination", endpoint: x.originalDestination)
        let requestStart = x.requestFirstTimestamp, responseEnd = x.responseLastTimestamp
        w.field("requestStart", iso8601: requestStart)
        w.field("requestEnd", iso8601: x.requestLastTimestamp)
        w.field("responseStart", iso8601: x.responseFirstTimestamp)
        w.field("responseEnd", iso8601: responseEnd)
        w.field("requestStartNs", requestStart)
        w.field("requestEndNs", x.requestLastTimestamp)
        w.field("responseStartNs", x.responseFirstTimestamp)
        w.field("responseEndNs", responseEnd)
        if let qs = requestStart, let re = responseEnd {
            w.field("durationNs", Timestamp.elapsed(from: qs, to: re))
        } else {
            w.key("durationNs"); w.null()
        }
        w.field("requestBodyBytes", q?.bodyLength)
        w.field("responseBodyBytes", r?.bodyLength)
        w.key("interim")
        w.beginArray()
        if let r { for i in r.interim { w.int(i.status) } }
        w.endArray()
        w.field("pipelinePosition", x.pipelinePosition)
        w.key("flags")
        flags(x.flags, to: w)
        HTTP2Rendering.write(x.http2, to: w)
        TLSRendering.write(x.tls, turn: x.sequence, to: w)
        if headers {
            w.key("requestHeaders")
            fields(q?.headers, to: w)
            w.key("responseHeaders")
            fields(r?.headers, to: w)
        }
        if bodies {
            w.field("requestBodyPrefix", q.map { String(decoding: $0.bodyPrefix, as: UTF8.self) })
            w.field("responseBodyPrefix", r.map { String(decoding: $0.bodyPrefix, as: UTF8.self) })
        }
        w.endObject()
    }

    /// Header fields as a JSON array of {name, value}, in order; null for none captured.
    public static func headers(_ headers: HTTPHeaders?) -> String {
        let w = JSONWriter(capacity: 512)
        fields(headers, to: w)
        return w.string
    }

    /// Header fields as [{name, value}], in order; null for none captured.
    static func fields(_ headers: HTTPHeaders?, to w: JSONWriter) {
        guard let headers else { w.null(); return }
        w.beginArray()
        for h in headers {
            w.beginObject()
            w.field("name", h.name)
            w.field("value", h.value)
            w.endObject()
        }
        w.endArray()
    }

    public static func exchange(_ x: HTTPExchange) -> String {
        let w = JSONWriter()
        write(exchange: x, to: w)
        return w.string
    }
}

/// Writes a chain's sentences into a JSON writer as they are made: each item one JSON string.
struct JSONStringSink: ExplanationSink {
    let w: JSONWriter
    private var open = false
    init(_ w: JSONWriter) { self.w = w }
    /// Opens the item's string on its first piece.
    mutating func begin() {
        if !open { w.beginString(); open = true }
    }
    mutating func text(_ s: String) {
        begin()
        w.piece(s)
    }
    mutating func endpoint(_ e: Endpoint) {
        begin()
        w.endpointText(e)
    }
    mutating func duration(_ ns: Int64) {
        begin()
        w.durationText(ns)
    }
    mutating func int(_ v: Int) {
        begin()
        w.digits(v)
    }
    mutating func endItem() {
        begin()
        w.endString()
        open = false
    }
}

/// The connections a JSON stream has described, so each is described once: their records are
/// written as lines as they come (jsonl: `{"connection": …}` before the first chain line that
/// refers to one), or kept and written as the document's `connections` array.
///
/// Kept per connection: its id, the identity of its hops' shared verdict, and (for the
/// document) its facts encoded (about a hundred bytes) with the index of its verdict's
/// encoding, which connections with the same verdict share.
public final class ConnectionRecords {
    /// A connection described: the identity of the verdict its hops were last seen with (0:
    /// none) and the index of its record's verdict in `verdicts` (-1: not described).
    private struct Slot {
        var identity: UInt = 0
        var verdict: Int32 = -1
    }
    /// By connection id (ids are small and dense: the connection table numbers them); others
    /// (ids beyond `denseLimit` or negative) in `sparse`.
    // Used by one thread (the writer's): no dynamic exclusivity checks.
    @exclusivity(unchecked) private var slots: [Slot] = []
    @exclusivity(unchecked) private var sparse: [Int: Slot] = [:]
    private static let denseLimit = 1 << 24
    /// Distinct verdict encodings, and their index.
    @exclusivity(unchecked) private var verdicts: [VerdictRendering] = []
    private var verdictIndex: [[UInt8]: Int32] = [:]
    /// The document's records: facts encoded one after the other, and where each ends.
    private let facts = JSONWriter(capacity: 1024)
    private var kept: [(end: Int, verdict: Int32)] = []
    /// jsonl: where the `{"connection": …}` lines go (nil: kept for the document).
    private let lines: JSONWriter?
    /// Interface names known while the report is not (a pcapng file's, streamed).
    public var names: InterfaceNameTable?

    public init(lines: JSONWriter? = nil) { self.lines = lines }

    @inline(__always) private func slot(_ id: Int) -> Slot {
        if id >= 0 && id < slots.count { return slots[id] }
        if id >= 0 && id < Self.denseLimit { return Slot() }
        return sparse[id] ?? Slot()
    }

    private func set(_ id: Int, _ s: Slot) {
        if id >= 0 && id < Self.denseLimit {
            if id >= slots.count { slots.append(contentsOf: repeatElement(Slot(), count: id + 1 - slots.count)) }
            slots[id] = s
        } else {
            sparse[id] = s
        }
    }

    private func intern(_ v: VerdictRendering) -> Int32 {
        let key = v.perHop + v.perConnection
        if let i = verdictIndex[key] { return i }
        verdicts.append(v)
        let i = Int32(verdicts.count - 1)
        verdictIndex[key] = i
        return i
    }

    /// Describes the hop's connection if it has not been: writes its line (jsonl) or keeps its
    /// record (document).
    @inline(__always)
    public func note(_ h: Hop, report: AnalysisReport?) {
        let id = h.exchange.connectionID.value, identity = UInt(bitPattern: h.verdictIdentity)
        let s = slot(id)
        if s.verdict >= 0 && s.identity == identity { return }
        describe(h, id: id, identity: identity, report: report)
    }

    private func describe(_ h: Hop, id: Int, identity: UInt, report: AnalysisReport?) {
        var s = slot(id)
        if s.verdict >= 0 {
            // Described; a hop given another verdict carries it itself (`verdict(referredBy:)`).
            if s.identity != identity, s.verdict == intern(JSONReport.verdictRendering(h)) {
                s.identity = identity
                set(id, s)
            }
            return
        }
        let index = intern(JSONReport.verdictRendering(h))
        set(id, Slot(identity: identity, verdict: index))
        if let lines {
            lines.beginObject()
            lines.key("connection")
            JSONReport.write(connectionOf: h, report: report, names: names, to: lines)
            lines.endObject()
            lines.newline()
        } else {
            JSONReport.writeFacts(of: h, report: report, names: names, to: facts)
            facts.needsComma = false
            kept.append((facts.count, index))
        }
    }

    /// The verdict of the hop's connection's record when it is the hop's (the hop then refers
    /// to it); nil for a connection not described, or a hop given another verdict.
    public func verdict(referredBy h: Hop) -> VerdictRendering? {
        let id = h.exchange.connectionID.value
        let s = slot(id)
        guard s.verdict >= 0 else { return nil }
        if s.identity == UInt(bitPattern: h.verdictIdentity) || s.verdict == intern(JSONReport.verdictRendering(h)) {
            return verdicts[Int(s.verdict)]
        }
        return nil
    }

    /// A chain's explanation as a JSON string. The clause a pair of connections gives its
    /// chains (" appears 2 times because iptables REDIRECTed …", about 500 bytes) is encoded
    /// once and copied after: a capture of many requests repeats a few pairs.
    func explain(_ c: RequestChain, to w: JSONWriter) {
        var sink = JSONStringSink(w)
        guard let key = Explain.clauseKey(c) else {
            Explain.chain(c, into: &sink)
            return
        }
        Explain.chain(c, into: &sink) { s in
            s.begin()
            if let bytes = clauses[key] {
                bytes.withUnsafeBytes { w.append($0) }
                return
            }
            let start = w.count
            Explain.clause(c, into: &s)
            if clauses.count >= Self.clauseLimit { clauses.removeAll(keepingCapacity: true) }
            w.withBytes(start..<w.count) { clauses[key] = Array($0) }
        }
    }

    /// An exchange's flags as an array of names, each set of flags encoded once.
    func flags(_ f: HTTPExchangeFlags, to w: JSONWriter) {
        if f.isEmpty {
            w.beginArray(); w.endArray()
            return
        }
        if let i = flagSets.firstIndex(where: { $0.flags == f }) {
            w.separator()
            flagSets[i].json.withUnsafeBytes { w.append($0) }
            w.needsComma = true
            return
        }
        let start = w.count + (w.needsComma ? 1 : 0)
        JSONReport.flags(f, to: w)
        if flagSets.count < 64 { w.withBytes(start..<w.count) { flagSets.append((f, Array($0))) } }
    }
    @exclusivity(unchecked) private var flagSets: [(flags: HTTPExchangeFlags, json: [UInt8])] = []

    /// Clauses kept (each holds its connections' verdicts): beyond this many pairs, forgotten.
    private static let clauseLimit = 4096
    @exclusivity(unchecked) private var clauses: [ClauseKey: [UInt8]] = [:]

    /// True when the hop's verdict is its connection's record's.
    public func refers(_ h: Hop) -> Bool { verdict(referredBy: h) != nil }

    /// The document's `connections`: every record kept, in the order the connections were
    /// first referred to.
    func writeKept(to w: JSONWriter) {
        w.beginArray()
        var start = 0
        for k in kept {
            w.beginObject()
            facts.withBytes(start..<k.end) { w.append($0) }
            w.needsComma = true
            let v = verdicts[Int(k.verdict)]
            w.members(v.perHop)
            w.members(v.perConnection)
            w.endObject()
            w.flushIfNeeded()
            start = k.end
        }
        w.endArray()
    }
}

/// Interface names learnt as a capture is read (a pcapng file's `if_name`s), for chains written
/// on another thread before the report is made.
public final class InterfaceNameTable: @unchecked Sendable {
    // @unchecked Sendable: every access holds `lock`.
    private let lock = NSLockish()
    private var names: [Int32: String] = [:]

    public init() {}

    public func set(_ index: Int32, _ name: String) {
        lock.lock()
        names[index] = name
        lock.unlock()
    }

    public func name(_ index: Int32) -> String? {
        lock.lock()
        defer { lock.unlock() }
        return names[index]
    }
}
