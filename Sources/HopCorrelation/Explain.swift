import HopHTTP
import HopCapture

/// Where the sentences of a chain go, piece by piece: into Strings (`RequestChain.explanation`
/// and `evidence`), or into a writer that encodes them as they come (a JSON report writes
/// every chain's sentences without making a String for each).
public protocol ExplanationSink {
    /// Text of the current item.
    mutating func text(_ s: String)
    /// `ip:port`, as `Endpoint.description` spells it.
    mutating func endpoint(_ e: Endpoint)
    /// A duration as `Timestamp.duration` spells it.
    mutating func duration(_ ns: Int64)
    /// An integer's digits.
    mutating func int(_ v: Int)
    /// Ends the current item (one sentence of the explanation, one fact of the evidence).
    mutating func endItem()
}

/// Collects the items as Strings.
public struct StringSink: ExplanationSink {
    public private(set) var items: [String] = []
    private var current = ""
    public init() {}
    public mutating func text(_ s: String) { current += s }
    public mutating func endpoint(_ e: Endpoint) { current += e.description }
    public mutating func endItem() {
        items.append(current)
        current = ""
    }
}

extension ExplanationSink {
    public mutating func duration(_ ns: Int64) { text(Timestamp.duration(ns)) }
    public mutating func int(_ v: Int) { text(String(v)) }
    /// `client → server` of a hop.
    mutating func tuple(_ h: Hop) {
        // The exchange's accessors: `h.connection` would copy the connection.
        endpoint(h.exchange.client)
        text(" → ")
        endpoint(h.exchange.server)
    }
    mutating func plural(_ n: Int, _ one: String, _ many: String) { text(n == 1 ? one : many) }

    mutating func rulePhrase(_ v: RuleVerdict, bare: Bool = false) {
        switch v.outcome {
        case .noRules: text(bare ? "no rules known" : "No interception rules are known.")
        case .redirected, .ownerDependent, .notRedirected:
            text(v.sentence)
            if !bare { text(".") }
        }
    }

    mutating func exemption(_ v: RuleVerdict) {
        switch v.outcome {
        case .ownerDependent(_, let exempt):
            text("not redirected because it belongs to ")
            for (i, e) in exempt.enumerated() {
                if i > 0 { text(" or ") }
                text(e)
            }
            text(": ")
            text(v.sentence)
        case .notRedirected:
            text("the rules leave it alone: ")
            text(v.sentence)
        case .redirected(let p):
            text("the rules would redirect it to ")
            int(Int(p))
            text(": ")
            text(v.sentence)
        case .noRules: text("no rules known")
        }
    }
}

/// The sentences that answer "why do I see this request twice?".
public enum Explain {
    /// A chain's explanation: one item.
    public static func chain<S: ExplanationSink>(_ c: RequestChain, into s: inout S) {
        chain(c, into: &s) { s in clause(c, into: &s) }
    }

    /// A chain's explanation, its clause (see `clause(_:into:)`) written by `writeClause`: a
    /// report that writes many chains through the same connections writes the clause of each
    /// pair once and copies it after (`ClauseKey` says when two chains share it).
    public static func chain<S: ExplanationSink>(_ c: RequestChain, into s: inout S, clause writeClause: (inout S) -> Void) {
        defer { s.endItem() }
        guard !c.hops.isEmpty else { return }
        // `c.hops[0]` read in place: a `first` copy would retain every field of the hop.
        func subject() {
            let method = c.method, target = c.target
            switch (method, target) {
            case (nil, nil) where c.hops[0].exchange.isEncrypted:
                s.text("This encrypted request (TLS turn ")
                s.int(c.hops[0].exchange.sequence)
                s.text(")")
            case (nil, nil): s.text("This response")
            case (let m?, nil): s.text(m)
            case (nil, let t?): s.text(t)
            case (let m?, let t?): s.text(m); s.text(" "); s.text(t)
            }
        }
        if case .incomplete(let missing, let advice) = c.completeness {
            subject()
            s.text(" was captured only as the ")
            s.text(c.hops[0].role.phrase)
            s.text(" copy (")
            s.tuple(c.hops[0])
            if c.hops[0].role.isUpstream {
                s.text("); the ")
                s.text(missing.phrase)
                s.text(" copy is missing: ")
            } else {
                s.text("); ")
                s.rulePhrase(c.hops[0].rule)
                s.text(" The ")
                s.text(missing.phrase)
                s.text(" copy is missing: ")
            }
            s.text(advice)
            s.text(".")
            return
        }
        if c.hops.count == 1, c.isEncryptedHTTP2Connection {
            // A connection carrying HTTP/2 (`Correlator.emitCarrier`), not a request.
            s.text("This encrypted HTTP/2 connection (")
            s.tuple(c.hops[0])
            s.text(") carries requests multiplexed inside TLS: they cannot be told apart without the keys, so each shows as its plaintext copy alone, a chain of its own.")
            if c.hops[0].role == .inboundIntercepted || c.hops[0].role == .outboundRedirected {
                s.text(" ")
                s.rulePhrase(c.hops[0].rule)
            }
            return
        }
        if c.hops.count == 1, let other = c.otherCopyInEncryptedHTTP2 {
            // Complete alone (`Correlator.carrierNote`).
            subject()
            s.text(" was captured as the ")
            s.text(c.hops[0].role.phrase)
            s.text(" copy (")
            s.tuple(c.hops[0])
            s.text("); ")
            s.text(other.copyPhrase)
            s.text(" travelled inside an encrypted HTTP/2 connection, multiplexed with other requests, and cannot be told apart without the keys.")
            return
        }
        if c.hops.count == 1 {
            subject()
            switch c.hops[0].role {
            case .direct:
                s.text(" was captured once (")
                s.tuple(c.hops[0])
                s.text("): not intercepted — ")
                s.text(c.hops[0].roleReason)
                s.text(".")
            case .inboundIntercepted, .outboundRedirected:
                s.text(" was REDIRECTed to the proxy (")
                s.tuple(c.hops[0])
                s.text("), which answered ")
                if let st = c.status { s.int(st) } else { s.text("-") }
                s.text(" by itself without an upstream copy. ")
                s.rulePhrase(c.hops[0].rule)
            default:
                s.text(" was captured once as the ")
                s.text(c.hops[0].role.phrase)
                s.text(" copy (")
                s.tuple(c.hops[0])
                s.text(").")
            }
            return
        }
        let last = c.hops.count - 1
        func retriesAndAdded() {
            let retries = c.retries
            if retries > 0 {
                s.text(" The proxy tried ")
                s.int(retries + 1)
                s.text(" times; ")
                s.int(retries)
                s.plural(retries, " attempt failed before ", " attempts failed before ")
                s.tuple(c.hops[last])
                s.text(" answered.")
            }
            if let added = c.proxyAddedNs {
                s.text(" The proxy added ")
                s.duration(added)
                s.text(".")
            }
        }
        subject()
        writeClause(&s)
        switch c.hops[0].role {
        case .inboundIntercepted, .outboundRedirected: retriesAndAdded()
        default: break
        }
    }

    /// The part of a multi-hop chain's explanation between its subject ("GET /") and its
    /// retries and the time the proxy added: what its hops' count, roles, connections and
    /// verdicts say (" appears 2 times because iptables REDIRECTed …").
    public static func clause<S: ExplanationSink>(_ c: RequestChain, into s: inout S) {
        guard c.hops.count > 1 else { return }
        let last = c.hops.count - 1
        switch c.hops[0].role {
        case .inboundIntercepted:
            s.text(" appears ")
            s.int(c.hops.count)
            s.text(" times because iptables REDIRECTed the client's connection ")
            s.tuple(c.hops[0])
            s.text(" to the sidecar proxy (")
            s.rulePhrase(c.hops[0].rule, bare: true)
            s.text("), and the proxy sent its own copy to the app as ")
            s.tuple(c.hops[last])
            s.text(" (")
            s.exemption(c.hops[last].rule)
            s.text(").")
        case .outboundRedirected:
            let conn = c.hops[0].connection
            s.text(" to ")
            if let o = conn.originalDestination { s.endpoint(o) } else { s.text("the remote") }
            s.text(" appears ")
            s.int(c.hops.count)
            s.text(" times because the app's connection was REDIRECTed on lo to the sidecar proxy (")
            s.rulePhrase(c.hops[0].rule, bare: true)
            s.text(") — captured as ")
            s.endpoint(conn.client)
            s.text(" → ")
            s.endpoint(conn.server)
            s.text(" with replies from ")
            if let r = conn.replySource ?? conn.originalDestination { s.endpoint(r) } else { s.text("the remote") }
            s.text(" — and the proxy opened its own connection to the original destination, ")
            s.tuple(c.hops[last])
            s.text(" (")
            s.exemption(c.hops[last].rule)
            s.text(").")
        default:
            s.text(" appears ")
            s.int(c.hops.count)
            s.text(" times: ")
            for (i, h) in c.hops.enumerated() {
                if i > 0 { s.text(", ") }
                s.text(h.role.rawValue)
                s.text(" ")
                s.tuple(h)
            }
            s.text(".")
        }
    }

    /// What a complete chain's clause depends on, when it is an intercepted request and its
    /// forwarded copy: two chains with equal keys have the same clause. Nil for the chains
    /// whose clause is written each time (one hop, incomplete, other roles).
    public static func clauseKey(_ c: RequestChain) -> ClauseKey? {
        guard c.hops.count > 1, !c.isIncomplete else { return nil }
        let role = c.hops[0].role
        guard role == .inboundIntercepted || role == .outboundRedirected else { return nil }
        let first = c.hops[0].exchange, last = c.hops[c.hops.count - 1].exchange
        return ClauseKey(count: c.hops.count, role: role,
                         firstClient: first.client, firstServer: first.server,
                         originalDestination: first.originalDestination, replySource: first.replySource,
                         lastClient: last.client, lastServer: last.server,
                         firstVerdict: c.hops[0].details, lastVerdict: c.hops[c.hops.count - 1].details)
    }

    /// The facts that tie a paired chain's downstream copy to the upstream copy that answered:
    /// one item each.
    public static func evidence<S: ExplanationSink>(_ c: RequestChain, _ note: PairingNote, into s: inout S) {
        if c.hops.count >= 2, c.hops[0].exchange.isEncrypted || c.hops[c.hops.count - 1].exchange.isEncrypted {
            encryptedEvidence(c, note, into: &s)
            return
        }
        guard c.hops.count >= 2, let dq = c.hops[0].exchange.request, let uq = c.hops[c.hops.count - 1].exchange.request else { return }
        // The exchanges read in place (copying the hops would retain every field of both).
        let last = c.hops.count - 1
        s.text("same method and target (")
        s.text(dq.method)
        s.text(" ")
        s.text(dq.target)
        s.text(")")
        s.endItem()
        if let dh = dq.host, let uh = uq.host {
            if dh == uh {
                s.text("same Host (")
                s.text(dh)
            } else {
                s.text("compatible Host (")
                s.text(dh)
                s.text(" / ")
                s.text(uh)
            }
            s.text(")")
            s.endItem()
        }
        // Header lookups only where the correlator saw the keys.
        let dID = note.requestIDs.down ? Correlator.requestID(dq) : nil
        let uID = note.requestIDs.up ? Correlator.requestID(uq) : nil
        if let a = dID, let b = uID {
            if a == b {
                s.text("same x-request-id ")
                s.text(a)
            } else {
                s.text("same x-request-id (")
                s.text(a)
                s.text(" / ")
                s.text(b)
                s.text(", trace digit rewritten)")
            }
            s.endItem()
        } else if dID == nil, let b = uID {
            s.text("x-request-id ")
            s.text(b)
            s.text(" added by the proxy")
            s.endItem()
        }
        if note.traceIDs, let a = Correlator.traceID(dq), let b = Correlator.traceID(uq), a == b {
            s.text("same trace id ")
            s.text(a.value)
            s.text(" (")
            s.text(a.header)
            s.text(")")
            s.endItem()
        }
        s.text("time nesting: upstream request ")
        s.duration(uq.firstTimestamp &- dq.firstTimestamp)
        s.text(" after the downstream one")
        if let a = c.hops[0].exchange.responseLastTimestamp, let b = c.hops[last].exchange.responseLastTimestamp {
            s.text(", upstream response ended ")
            s.duration(a &- b)
            s.text(" before the downstream one")
        }
        s.endItem()
        if let ds = c.hops[0].exchange.response?.status, let us = c.hops[last].exchange.response?.status {
            if ds == us {
                s.text("same status ")
                s.int(ds)
            } else {
                s.text("status ")
                s.int(us)
                s.text(" upstream, ")
                s.int(ds)
                s.text(" downstream")
            }
            s.endItem()
        }
        if c.hops[0].role == .outboundRedirected, let o = c.hops[0].exchange.originalDestination {
            s.text("the proxy connected to the original destination ")
            s.endpoint(o)
            s.endItem()
        }
        let differing = Correlator.endToEndHeaderDifferences(dq.headers, uq.headers)
        if differing.isEmpty {
            s.text("end-to-end headers equal (proxy headers ignored)")
        } else {
            s.text("end-to-end headers differ: ")
            s.text(differing.joined(separator: ", "))
        }
        s.endItem()
        poolEvidence(note, alternatives: " identical requests in flight could take this copy: ", into: &s)
        let failed = c.hops.count - 2
        if failed > 0 {
            s.int(failed)
            s.plural(failed, " failed upstream attempt before the one that answered", " failed upstream attempts before the one that answered")
            s.endItem()
        }
    }
}

extension Explain {
    /// The pool's part of the evidence: the worker group both connections belong to, and how
    /// the copy was chosen among the alternatives (`alternatives`: what they are, after their
    /// count).
    static func poolEvidence<S: ExplanationSink>(_ note: PairingNote, alternatives: String, into s: inout S) {
        if let g = note.workerGroup {
            s.text("both connections belong to worker group ")
            s.int(g + 1)
            s.text(" of ")
            s.int(note.workerGroups)
            s.text(" the proxy showed in this capture")
            s.endItem()
        }
        guard note.alternatives > 0 else { return }
        s.int(note.alternatives + 1)
        s.text(alternatives)
        switch note.ordersAgree {
        case true?: s.text("the proxy's forwarding order and its return order both give this copy")
        case false?: s.text("assigned by the proxy's return order (its forwarding order gives another copy)")
        case nil where note.responseTies > 0:
            s.text("assigned by the proxy's forwarding order (streams in the order their frames came): ")
            s.int(note.responseTies)
            s.plural(note.responseTies, " other response", " other responses")
            s.text(" came back in the same packet, so return order cannot tell them apart")
        case nil: s.text("assigned by the proxy's arrival order")
        }
        s.endItem()
    }

    /// The evidence of a chain with an encrypted copy: what its TLS says in clear, the sizes
    /// and the time nesting that tie the turn to its plaintext copy.
    static func encryptedEvidence<S: ExplanationSink>(_ c: RequestChain, _ note: PairingNote, into s: inout S) {
        let last = c.hops.count - 1
        let down = c.hops[0].exchange, up = c.hops[last].exchange
        let encrypted = down.isEncrypted ? down : up
        let plain = down.isEncrypted ? up : down
        guard let t = encrypted.tls else { return }
        s.text(down.isEncrypted ? "the client's copy is encrypted (" : "the proxy's copy is encrypted (")
        s.text(t.summary)
        s.text("): its method, target, headers and status are the plaintext copy's")
        s.endItem()
        let sizes = plain.http1Sizes
        s.text("sizes fit: request turn ")
        s.int(t.requestBytes)
        s.text(" bytes in ")
        s.int(t.requestRecords)
        s.text(t.requestRecords == 1 ? " record" : " records")
        if let q = sizes.request {
            s.text(", plaintext copy ")
            s.int(q)
        }
        if t.responseFirstTimestamp != nil {
            s.text("; response turn ")
            s.int(t.responseBytes)
            if let r = sizes.response {
                s.text(", plaintext ")
                s.int(r)
            }
        }
        if t.includesHandshake { s.text(" (the first turn also carries handshake bytes)") }
        s.endItem()
        if let ds = down.requestFirstTimestamp, let us = up.requestFirstTimestamp {
            s.text("time nesting: upstream request ")
            s.duration(us &- ds)
            s.text(" after the downstream one")
            if let a = down.responseLastTimestamp, let b = up.responseLastTimestamp {
                s.text(", upstream response ended ")
                s.duration(a &- b)
                s.text(" before the downstream one")
            }
            if down.isEncrypted, let k = t.sessionTicketsAt, k > t.requestLastTimestamp {
                // The wait a proxy busy with handshakes adds, and why the pairing counts from it.
                s.text("; the server's session tickets came ")
                s.duration(k &- t.requestLastTimestamp)
                s.text(" after the request turn: it completed the handshake, and read the request, no earlier")
            }
            s.endItem()
        }
        poolEvidence(note, alternatives: " copies in flight fit this turn's time and size: ", into: &s)
        if note.alternatives == 0 {
            s.text("the only plaintext copy in flight that fits this turn's time and size")
            s.endItem()
        }
    }
}

/// What a chain's explanation clause depends on (`Explain.clauseKey`): its hop count, first
/// role, the endpoints it names, and its first and last hops' verdicts (held, so that their
/// identities stay theirs while the key lives).
public struct ClauseKey: Hashable, @unchecked Sendable {
    let count: Int
    let role: HopRole
    let firstClient: Endpoint, firstServer: Endpoint
    let originalDestination: Endpoint?, replySource: Endpoint?
    let lastClient: Endpoint, lastServer: Endpoint
    let firstVerdict: HopDetails
    let lastVerdict: HopDetails

    public static func == (a: ClauseKey, b: ClauseKey) -> Bool {
        a.count == b.count && a.role == b.role && a.firstVerdict === b.firstVerdict && a.lastVerdict === b.lastVerdict
            && a.firstClient == b.firstClient && a.firstServer == b.firstServer && a.lastClient == b.lastClient
            && a.lastServer == b.lastServer && a.originalDestination == b.originalDestination && a.replySource == b.replySource
    }

    public func hash(into h: inout Hasher) {
        h.combine(count)
        h.combine(ObjectIdentifier(firstVerdict))
        h.combine(ObjectIdentifier(lastVerdict))
        h.combine(firstClient)
        h.combine(lastClient)
    }
}
