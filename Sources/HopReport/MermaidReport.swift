import HopCapture
import HopCorrelation

/// `--format mermaid`: a sequence diagram of the chains.
///
/// Participants are the client(s), the pod as seen on the wire, the sidecar proxy, the app and the
/// remote services; every chain is a `rect` with its hops' requests and responses, a note naming
/// the rule that redirected it, and the time the proxy added. Text from the capture is escaped
/// with Mermaid's entity codes (`#58;` for `:`, `#59;` for `;`, `#35;` for `#`, …).
public enum MermaidReport {
    public struct Options: Sendable {
        /// Chains drawn (the rest are counted in a note).
        public var chainLimit: Int = 30
        /// Direct (not intercepted) chains are drawn when there are at most this many, else summarized.
        public var directLimit: Int = 5
        public init() {}
    }

    public static func render(_ r: AnalysisReport, options: Options = Options()) -> String {
        var out: [String] = ["sequenceDiagram"]
        out.append("    %% hoptrace analyze — \(escape(r.source))")
        out.append("    %% rules \(escape(r.rulesName)) (\(escape(r.rulesOrigin)))")
        let touched = r.chains.filter { !$0.isDirect }
        // Direct requests the command did not keep are counted in the report (`directRequests`).
        let direct = r.directRequests
        let drawDirect = direct.count <= options.directLimit
        let drawable = drawDirect ? r.chains : touched
        let drawn = Array(drawable.prefix(max(0, options.chainLimit)))
        let model = SequenceModel(chains: drawn)
        let ids = identifiers(model)
        func id(_ i: Int, _ m: SequenceModel) -> String { ids[i] }
        func over(_ f: Int, _ l: Int, _ m: SequenceModel) -> String { f == l ? ids[f] : "\(ids[f]),\(ids[l])" }

        if model.participants.isEmpty {
            out.append("    participant H as hoptrace")
            out.append("    Note over H: \(escape(r.answer))")
            if direct.count > 0 { out.append("    Note over H: direct (not intercepted)#58; \(escape(direct.summary))") }
            return out.joined(separator: "\n") + "\n"
        }
        for (i, p) in model.participants.enumerated() {
            out.append("    participant \(id(i, model)) as \(escape(p.label))")
        }
        let all = "\(id(0, model)),\(id(model.participants.count - 1, model))"
        let s = r.summary
        out.append("    Note over \(all): \(escape("\(s.requestsOnWire) requests on the wire → \(s.logicalRequests) logical requests: \(s.multiHopChains) multi-hop, \(s.incompleteChains) incomplete, \(s.unexplainedDuplicates) unexplained duplicates"))")

        for (n, b) in model.blocks.enumerated() {
            let colour = b.chain.isIncomplete ? "rgb(255, 240, 225)" : (n % 2 == 0 ? "rgb(232, 242, 255)" : "rgb(240, 240, 245)")
            out.append("    rect \(colour)")
            out.append("        Note over \(over(b.first, b.last, model)): \(escape(b.title))")
            for step in b.steps {
                switch step {
                case .arrow(let f, let t, let text, let detail, let style):
                    let arrow: String
                    switch style {
                    case .request: arrow = "->>"
                    case .response, .redirect: arrow = "-->>"
                    case .lost: arrow = "--x"
                    }
                    let label = detail.isEmpty ? text : "\(text) (\(detail))"
                    out.append("        \(id(f, model))\(arrow)\(id(t, model)): \(escape(label))")
                case .note(let f, let l, let text, _):
                    out.append("        Note over \(over(f, l, model)): \(escape(text))")
                }
            }
            out.append("    end")
        }
        var notes: [String] = []
        let drawableCount = drawDirect ? r.chainCount : touched.count + r.omitted.touched
        if drawableCount > drawn.count {
            let left = drawableCount - drawn.count
            notes.append("… \(left) more chain\(left == 1 ? "" : "s") not drawn (--format json lists them)")
        }
        if !drawDirect {
            notes.append("direct (not intercepted): \(direct.count) request\(direct.count == 1 ? "" : "s") — \(direct.summary)")
        }
        for g in r.duplicates.prefix(10) {
            notes.append("unexplained duplicate: \(g.method) \(g.target) ×\(g.starts.count) from \(g.client) to \(g.server) (chains \(g.chainIDs.prefix(6).map(String.init).joined(separator: ", "))\(g.chainIDs.count > 6 ? ", …" : ""))")
        }
        if r.duplicates.count > 10 { notes.append("… \(r.duplicates.count - 10) more duplicate groups") }
        for n in notes { out.append("    Note over \(all): \(escape(n))") }
        return out.joined(separator: "\n") + "\n"
    }

    /// Participant ids: `client1`, `pod1`, `proxy`, `app1`, `remote1`, `server1`.
    static func identifiers(_ m: SequenceModel) -> [String] {
        var seen: [SequenceModel.Kind: Int] = [:]
        let proxies = m.participants.filter { $0.kind == .proxy }.count
        return m.participants.map { p in
            seen[p.kind, default: 0] += 1
            return p.kind == .proxy && proxies == 1 ? "proxy" : "\(p.kind.idPrefix)\(seen[p.kind]!)"
        }
    }

    /// Message text Mermaid accepts as is: `;` `#` `:` and markup characters become entity
    /// codes (`#59;`), control characters become spaces.
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for u in s.unicodeScalars {
            switch u {
            case ";": out += "#59;"
            case "#": out += "#35;"
            case ":": out += "#58;"
            case "<": out += "#60;"
            case ">": out += "#62;"
            case "%": out += "#37;"
            case "&": out += "#38;"
            case "\"": out += "#34;"
            case "{": out += "#123;"
            case "}": out += "#125;"
            case "\\": out += "#92;"
            case _ where u.value < 0x20 || u.value == 0x7f || u.value == 0x2028 || u.value == 0x2029: out += " "
            default: out.unicodeScalars.append(u)
            }
        }
        return out
    }
}
