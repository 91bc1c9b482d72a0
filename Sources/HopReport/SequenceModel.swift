import HopCapture
import HopCorrelation

/// The chains of a report as a sequence of messages between participants (client, pod, proxy,
/// app, remote): one model, drawn by both the Mermaid and the HTML renderer.
struct SequenceModel {
    enum Kind: Int, Comparable, Hashable {
        /// `caller` is the app sending an outbound request (left of the proxy); `app` receives inbound ones.
        case client = 0, pod, caller, proxy, app, remote, service
        static func < (a: Kind, b: Kind) -> Bool { a.rawValue < b.rawValue }
        var word: String {
            switch self {
            case .client: "client"
            case .pod: "pod"
            case .caller, .app: "app"
            case .proxy: "proxy"
            case .remote: "remote"
            case .service: "server"
            }
        }
        /// Distinct per kind, for diagram identifiers.
        var idPrefix: String { self == .caller ? "caller" : word }
    }

    struct Participant {
        var kind: Kind
        /// What it is on the wire: `198.18.1.40:80`, `sidecar :15001`.
        var address: String
        /// `pod 198.18.1.40:80`, `proxy (sidecar :15001)`.
        var label: String { kind == .proxy ? "proxy (\(address))" : "\(kind.word) \(address)" }
    }

    enum Style { case request, response, redirect, lost }

    enum Step {
        /// A message: `from` and `to` index `participants`; `detail` is the tuple and timing.
        case arrow(from: Int, to: Int, text: String, detail: String, style: Style)
        case note(first: Int, last: Int, text: String, warning: Bool)
    }

    struct Block {
        var chain: RequestChain
        var title: String
        var steps: [Step]
        var first: Int
        var last: Int
    }

    var participants: [Participant]
    var blocks: [Block]

    /// Chains worth drawing: every chain a proxy touched (multi-hop, incomplete, non-direct);
    /// when there are none, the direct ones.
    static func interesting(_ r: AnalysisReport) -> [RequestChain] {
        let touched = r.chains.filter { !$0.isDirect }
        return touched.isEmpty ? r.chains : touched
    }

    /// How many chains `interesting` stands for, those the command counted without keeping
    /// included.
    static func interestingCount(_ r: AnalysisReport) -> Int {
        let touched = r.chains.lazy.filter { !$0.isDirect }.count + r.omitted.touched
        return touched == 0 ? r.chainCount : touched
    }

    static func proxyPorts(_ chains: [RequestChain]) -> [UInt16] {
        var ports = Set<UInt16>()
        for c in chains {
            for h in c.hops {
                switch h.rule.outcome {
                case .redirected(let p) where h.role.isDownstream: ports.insert(p)
                case .ownerDependent(let p, _) where h.role.isDownstream: ports.insert(p)
                default: break
                }
                if h.role == .outboundRedirected { ports.insert(h.connection.server.port) }
            }
        }
        return ports.sorted()
    }

    init(chains: [RequestChain]) {
        let ports = SequenceModel.proxyPorts(chains)
        let proxyAddress = ports.isEmpty ? "sidecar" : "sidecar " + ports.map { ":\($0)" }.joined(separator: "/")
        var keys: [String: Int] = [:]
        var raw: [Participant] = []
        func participant(_ kind: Kind, _ address: String) -> Int {
            let key = "\(kind.rawValue) \(address)"
            if let i = keys[key] { return i }
            raw.append(Participant(kind: kind, address: address))
            keys[key] = raw.count - 1
            return raw.count - 1
        }
        var blocks: [Block] = []
        for c in chains {
            var steps: [Step] = []
            let t0 = c.hops.compactMap { $0.requestStart ?? $0.exchange.response?.firstTimestamp }.min() ?? 0
            func at(_ ns: Int64?) -> String { ns.map { "+" + Timestamp.duration(Timestamp.elapsed(from: t0, to: $0)) } ?? "" }
            func request(_ h: Hop) -> (text: String, detail: String) {
                let cn = h.connection
                var text = h.exchange.tls.map { TLSRendering.text($0, turn: h.exchange.sequence) }
                    ?? "\(h.exchange.request?.method ?? "?") \(h.exchange.request?.target ?? "(request not captured)")"
                if h.attempt > 0 && c.retries > 0 { text += " (attempt \(h.attempt))" }
                if let info = h.exchange.http2 { text += " [" + HTTP2Rendering.text(info) + "]" }
                var detail = "\(cn.client) → \(cn.server)"
                if let o = cn.originalDestination { detail += " for \(o)" }
                if let s = h.requestStart { detail += s == t0 ? " at " + Timestamp.timeOfDay(s) : " at " + at(s) }
                return (text, detail)
            }
            func response(_ h: Hop) -> (text: String, detail: String, style: Style) {
                if let t = h.exchange.tls, t.responseFirstTimestamp != nil {
                    return ("encrypted response, \(t.responseBytes) B", at(t.responseLastTimestamp), .response)
                }
                guard let r = h.exchange.response else { return ("no response captured", "", .lost) }
                var text = "\(r.status)"
                if !r.reason.isEmpty { text += " \(r.reason)" }
                var detail = ""
                if let rs = h.connection.replySource { detail = "from \(rs)" }
                detail += (detail.isEmpty ? "" : " ") + "at " + at(r.lastTimestamp)
                return (text, detail, .response)
            }
            func add(_ from: Int, _ to: Int, _ t: (text: String, detail: String), _ style: Style) {
                steps.append(.arrow(from: from, to: to, text: t.text, detail: t.detail, style: style))
            }
            let proxy = { participant(.proxy, proxyAddress) }
            // The downstream hop opens the chain and answers last; upstream hops (attempts) sit inside.
            var closing: [(Int, Int, (String, String), Style)] = []
            for h in c.hops {
                let cn = h.connection
                let q = request(h)
                let r = response(h)
                switch h.role {
                case .inboundIntercepted:
                    let client = participant(.client, cn.client.address.description)
                    let pod = participant(.pod, cn.server.description)
                    let p = proxy()
                    add(client, pod, q, .request)
                    steps.append(.note(first: pod, last: p, text: SequenceModel.ruleNote(h), warning: false))
                    add(pod, p, ("redirected to :\(SequenceModel.redirectPort(h) ?? 0)", ""), .redirect)
                    closing.append((p, client, (r.text, r.detail.isEmpty ? "as \(cn.server)" : "as \(cn.server), " + r.detail), r.style))
                case .outboundRedirected:
                    let app = participant(.caller, cn.client.address.description)
                    let p = proxy()
                    add(app, p, q, .request)
                    steps.append(.note(first: app, last: p, text: SequenceModel.ruleNote(h), warning: false))
                    closing.append((p, app, (r.text, r.detail), r.style))
                case .inboundForwarded:
                    let p = proxy()
                    let app = participant(.app, cn.server.description)
                    add(p, app, q, .request)
                    add(app, p, (r.text, r.detail), r.style)
                case .outboundForwarded:
                    let p = proxy()
                    let remote = participant(.remote, cn.server.description)
                    add(p, remote, q, .request)
                    switch h.rule.outcome {
                    case .ownerDependent, .notRedirected:
                        steps.append(.note(first: p, last: remote, text: SequenceModel.ruleNote(h), warning: false))
                    default: break
                    }
                    add(remote, p, (r.text, r.detail), r.style)
                case .direct:
                    let client = participant(.client, cn.client.address.description)
                    let server = participant(.service, cn.server.description)
                    add(client, server, q, .request)
                    add(server, client, (r.text, r.detail), r.style)
                }
            }
            if case .incomplete(let missing, let advice) = c.completeness {
                var used: [Int] = [proxy()]
                for s in steps {
                    if case .arrow(let f, let t, _, _, _) = s { used += [f, t] }
                }
                steps.append(.note(first: used.min()!, last: used.max()!,
                                   text: "missing \(missing.rawValue) copy: \(advice)", warning: true))
            }
            for (from, to, t, style) in closing.reversed() { add(from, to, t, style) }
            var title = "chain \(c.id): \(c.shownMethod) \(c.shownTarget) → \(c.status.map(String.init) ?? "-")"
            if let p = c.proxyAddedNs { title += ", proxy added \(Timestamp.duration(p))" }
            if c.retries > 0 { title += ", \(c.retries) retr\(c.retries == 1 ? "y" : "ies")" }
            if c.isIncomplete { title += " [incomplete]" }
            blocks.append(Block(chain: c, title: title, steps: steps, first: 0, last: 0))
        }
        // Order participants client, pod, proxy, app, remote, server; first appearance within a kind.
        let order = raw.indices.sorted { (raw[$0].kind, $0) < (raw[$1].kind, $1) }
        var remap = [Int](repeating: 0, count: raw.count)
        for (new, old) in order.enumerated() { remap[old] = new }
        participants = order.map { raw[$0] }
        self.blocks = blocks.map { b in
            var b = b
            b.steps = b.steps.map { s in
                switch s {
                case .arrow(let f, let t, let text, let detail, let style):
                    .arrow(from: remap[f], to: remap[t], text: text, detail: detail, style: style)
                case .note(let f, let l, let text, let w):
                    .note(first: min(remap[f], remap[l]), last: max(remap[f], remap[l]), text: text, warning: w)
                }
            }
            var used: [Int] = []
            for s in b.steps {
                switch s {
                case .arrow(let f, let t, _, _, _): used += [f, t]
                case .note(let f, let l, _, _): used += [f, l]
                }
            }
            b.first = used.min() ?? 0
            b.last = used.max() ?? 0
            return b
        }
    }

    /// The port the rules sent a downstream hop to.
    static func redirectPort(_ h: Hop) -> UInt16? {
        switch h.rule.outcome {
        case .redirected(let p), .ownerDependent(let p, _): p
        default: h.role == .outboundRedirected ? h.connection.server.port : nil
        }
    }

    /// The rule that REDIRECTed, from the traversal (`nat/ISTIO_REDIRECT rule 1 matched: … -j REDIRECT …`).
    static func redirectingRule(_ v: RuleVerdict) -> String? {
        for line in v.traversal where line.contains(" matched: ") && (line.contains("-j REDIRECT") || line.contains("-j TPROXY")) {
            if let r = line.range(of: " matched: ") { return String(line[..<r.lowerBound]) }
        }
        return nil
    }

    /// A short rule note: `REDIRECT 15001 by nat/ISTIO_REDIRECT rule 1`.
    static func ruleNote(_ h: Hop) -> String {
        let v = h.rule
        switch v.outcome {
        case .redirected(let p):
            return "REDIRECT \(p) by \(v.decidingRule ?? redirectingRule(v) ?? "the rules")"
        case .ownerDependent(let p, let exempt):
            if h.role.isDownstream {
                return "REDIRECT \(p) by \(redirectingRule(v) ?? "the rules")"
            }
            return "not redirected: \(exempt.first ?? "the proxy's owner") is exempt (\(v.decidingRule ?? "the rules"))"
        case .notRedirected:
            if h.role.isDownstream {
                return "seen at the proxy, but the rules do not redirect it (\(v.decidingRule ?? "policy"))"
            }
            if let owner = v.evaluatedAs, let uid = owner.split(separator: " ").dropFirst().first {
                return "not redirected: uid \(uid) is exempt (\(v.decidingRule ?? "policy"))"
            }
            return "not redirected (\(v.decidingRule ?? "policy"))"
        case .noRules:
            return "no interception rules known"
        }
    }

    /// Incomplete-chain advice with counts (`counted`: of chains not kept), most frequent
    /// first (ties by text).
    static func adviceCounts(_ chains: [RequestChain], plus counted: [String: Int] = [:]) -> [(text: String, count: Int)] {
        var advice = counted
        for c in chains {
            if case .incomplete(let m, let a) = c.completeness { advice["missing \(m.rawValue): \(a)", default: 0] += 1 }
        }
        return advice.map { ($0.key, $0.value) }.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
    }
}
