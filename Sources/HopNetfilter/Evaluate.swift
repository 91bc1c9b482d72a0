// Evaluating a connection's first packet against the model: which chains and
// rules it traverses and what happens to it.

/// A set of uids or gids (disjoint, sorted ranges): what an unknown owner can still be
/// on one branch of an evaluation.
public struct IDSet: Hashable, Sendable, CustomStringConvertible {
    public private(set) var ranges: [ClosedRange<UInt32>]

    public init(_ ranges: [ClosedRange<UInt32>]) { self.ranges = IDSet.normalise(ranges) }
    public static let all = IDSet([0...UInt32.max])
    public static func only(_ id: UInt32) -> IDSet { IDSet([id...id]) }

    public var isEmpty: Bool { ranges.isEmpty }
    public func contains(_ id: UInt32) -> Bool { ranges.contains { $0.contains(id) } }

    public func intersecting(_ r: ClosedRange<UInt32>) -> IDSet {
        IDSet(ranges.compactMap { x in
            let lo = max(x.lowerBound, r.lowerBound), hi = min(x.upperBound, r.upperBound)
            return lo <= hi ? lo...hi : nil
        })
    }

    public func subtracting(_ r: ClosedRange<UInt32>) -> IDSet {
        var out: [ClosedRange<UInt32>] = []
        for x in ranges {
            if x.upperBound < r.lowerBound || x.lowerBound > r.upperBound { out.append(x); continue }
            if x.lowerBound < r.lowerBound { out.append(x.lowerBound...(r.lowerBound - 1)) }
            if x.upperBound > r.upperBound { out.append((r.upperBound + 1)...x.upperBound) }
        }
        return IDSet(out)
    }

    public var complement: IDSet {
        ranges.reduce(IDSet.all) { $0.subtracting($1) }
    }

    static func normalise(_ rs: [ClosedRange<UInt32>]) -> [ClosedRange<UInt32>] {
        var out: [ClosedRange<UInt32>] = []
        for r in rs.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = out.last, last.upperBound == .max || r.lowerBound <= last.upperBound + 1 {
                out[out.count - 1] = last.lowerBound...max(last.upperBound, r.upperBound)
            } else {
                out.append(r)
            }
        }
        return out
    }

    static func text(_ rs: [ClosedRange<UInt32>]) -> String {
        rs.map { $0.lowerBound == $0.upperBound ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }
            .joined(separator: ", ")
    }

    /// `1337`, `1000-2000`, `not 1337`, `not in {0, 1337}`, `in {…}`, `any`.
    public var description: String {
        if self == .all { return "any" }
        if isEmpty { return "none" }
        let comp = complement.ranges
        if comp.count < ranges.count || (comp.count == ranges.count && comp.count == 1 && ranges.count == 1
            && ranges[0].upperBound == .max)
        {
            return comp.count == 1 ? "not \(IDSet.text(comp))" : "not in {\(IDSet.text(comp))}"
        }
        return ranges.count == 1 ? IDSet.text(ranges) : "in {\(IDSet.text(ranges))}"
    }
}

/// The owner constraints one branch of an evaluation assumed (nil: not constrained).
public struct OwnerCondition: Hashable, Sendable, CustomStringConvertible {
    public var uids: IDSet?
    public var gids: IDSet?
    public init(uids: IDSet? = nil, gids: IDSet? = nil) {
        self.uids = uids
        self.gids = gids
    }
    public var isUnconstrained: Bool { uids == nil && gids == nil }
    /// `uid 1337`, `uid not 1337 and gid 1337`, `any owner`.
    public var description: String {
        var parts: [String] = []
        if let u = uids { parts.append("uid \(u)") }
        if let g = gids { parts.append("gid \(g)") }
        return parts.isEmpty ? "any owner" : parts.joined(separator: " and ")
    }
}

/// A rule by position: table, chain and 1-based number (as `iptables -L --line-numbers`).
public struct RuleRef: Hashable, Sendable, CustomStringConvertible {
    public var table: TableName
    public var chain: String
    public var number: Int
    /// The rule as rendered: `-A CHAIN …`.
    public var text: String
    public init(table: TableName, chain: String, number: Int, text: String) {
        self.table = table
        self.chain = chain
        self.number = number
        self.text = text
    }
    /// `nat/ISTIO_OUTPUT rule 2`.
    public var description: String { "\(table)/\(chain) rule \(number)" }
}

/// One thing the traversal looked at.
public struct Step: Hashable, Sendable, CustomStringConvertible {
    public var table: TableName
    public var chain: String
    /// 1-based rule number; nil when this step is the chain's policy.
    public var ruleNumber: Int?
    /// `-A CHAIN …`, or `-P CHAIN POLICY` for a policy step.
    public var text: String
    public var matched: Bool
    /// Assumptions made at this step (an unevaluated match, an owner branch taken).
    public var note: String?

    public var description: String {
        let head = ruleNumber.map { "\(table)/\(chain) rule \($0)" } ?? "\(table)/\(chain) policy"
        return "\(head) \(matched ? "matched" : "no match"): \(text)" + (note.map { " [\($0)]" } ?? "")
    }
}

/// What a table did to the packet.
public enum Verdict: Hashable, Sendable, CustomStringConvertible {
    /// `REDIRECT --to-ports N[-M]` (the first port), or the packet's own port without `--to-ports`.
    case redirected(toPort: UInt16)
    /// `TPROXY --on-port N`.
    case tproxy(port: UInt16)
    /// A RETURN took the packet out of the user chains and no later rule applied; the
    /// built-in chain's policy (ACCEPT) let it through untranslated.
    case returned
    /// `-j ACCEPT`: not translated.
    case accepted
    /// `-j DROP`, or a built-in chain with policy DROP.
    case dropped
    /// No rule decided: the built-in chain's policy applied.
    case policy(Policy)
    /// A target hoptrace does not model (DNAT, MASQUERADE, …): assumed to end the table.
    case unevaluated(target: String)
    /// A jump into a chain already on the call stack (or too deep): traversal stopped.
    case loop(chain: String)
    /// The evaluation's step or branch budget ran out.
    case limitExceeded

    /// Whether the connection ends up at a different local port (REDIRECT or TPROXY).
    public var isIntercepted: Bool {
        switch self {
        case .redirected, .tproxy: true
        default: false
        }
    }

    /// `REDIRECT 15001`, `RETURN (not redirected)`, `policy ACCEPT (not redirected)`.
    public var description: String {
        switch self {
        case .redirected(let p): "REDIRECT \(p)"
        case .tproxy(let p): "TPROXY \(p)"
        case .returned: "RETURN (not redirected)"
        case .accepted: "ACCEPT (not redirected)"
        case .dropped: "DROP"
        case .policy(let p): p == .drop ? "policy DROP" : "policy \(p) (not redirected)"
        case .unevaluated(let t): "\(t) (not evaluated)"
        case .loop(let c): "loop at \(c)"
        case .limitExceeded: "evaluation limit exceeded"
        }
    }

    var endsAllTables: Bool {
        switch self {
        case .dropped, .policy(.drop), .loop, .limitExceeded: true
        default: false
        }
    }

    var isDecisive: Bool {
        switch self {
        case .returned, .accepted, .policy(.accept): false
        default: true
        }
    }
}

/// What one table did on one branch.
public struct TableOutcome: Hashable, Sendable {
    public var table: TableName
    public var verdict: Verdict
    /// The rule whose target decided (the RETURN for `.returned`); nil for a policy.
    public var decidedBy: RuleRef?
    /// The jumps that led to `decidedBy` (each a matched rule), ending with it.
    public var path: [RuleRef]
    /// The built-in chain traversed (the hook's chain).
    public var chain: String
    public var policy: Policy
    /// The deciding rule's target text (`REDIRECT --to-ports 15001`), if any.
    public var targetText: String?

    /// `nat/PREROUTING rule 1 → ISTIO_INBOUND rule 1 (-p tcp --dport 80) → ISTIO_REDIRECT rule 1: REDIRECT --to-ports 15001`.
    public var sentence: String {
        var s = ""
        for (i, r) in path.enumerated() {
            s += i == 0 ? "\(table)/\(r.chain) rule \(r.number)" : " → \(r.chain) rule \(r.number)"
            if let c = briefConditions(r.text, chain: r.chain) { s += " (\(c))" }
        }
        let tgt = targetText ?? ""
        switch verdict {
        case .redirected, .tproxy, .dropped:
            s += ": \(tgt)"
        case .returned:
            s += ": RETURN (not redirected; \(chain) policy \(policy))"
        case .accepted:
            s += ": ACCEPT (not redirected)"
        case .unevaluated:
            s += ": \(tgt) (not evaluated by hoptrace)"
        case .loop(let c):
            s += (s.isEmpty ? "\(table)/\(chain)" : "") + ": jump into \(c) loops; traversal stopped"
        case .limitExceeded:
            s += (s.isEmpty ? "\(table)/\(chain)" : "") + ": evaluation limit exceeded"
        default:  // policy
            s = "\(table)/\(chain): no rule decided → policy \(policy)" + (policy == .accept ? " (not redirected)" : "")
        }
        return s
    }
}

/// `-p tcp -m tcp --dport 80` → `-p tcp --dport 80`; nil when there is nothing beyond `-p X`.
func briefConditions(_ ruleText: String, chain: String) -> String? {
    var words = ruleText.split(separator: " ").map(String.init)
    guard words.count >= 2 else { return nil }
    words.removeFirst(2)  // -A CHAIN
    if let j = words.firstIndex(where: { $0 == "-j" || $0 == "-g" }) { words.removeSubrange(j...) }
    var out: [String] = []
    var i = 0
    while i < words.count {
        if words[i] == "-m", i + 1 < words.count, words[i + 1] == "tcp" || words[i + 1] == "udp" { i += 2; continue }
        out.append(words[i])
        i += 1
    }
    if out.isEmpty || (out.count == 2 && out[0] == "-p") { return nil }
    return out.joined(separator: " ")
}

/// One way through the tables: all of it when the owner is known, one owner case otherwise.
public struct Branch: Hashable, Sendable {
    /// The owner constraints this branch assumed (unconstrained when nothing was unknown).
    public var condition: OwnerCondition
    public var steps: [Step]
    /// Per table, in traversal order.
    public var outcomes: [TableOutcome]
    /// The first decisive table verdict (a translation, a drop, …), else the last table's.
    public var verdict: Verdict { decisive?.verdict ?? .policy(.accept) }
    public var decidedBy: RuleRef? { decisive?.decidedBy }
    /// skb mark and connection mark after the traversal.
    public var mark: UInt32
    public var connmark: UInt32

    var decisive: TableOutcome? { outcomes.first { $0.verdict.isDecisive } ?? outcomes.last }

    /// The tables' sentences, joined with "; then ".
    public var sentence: String { outcomes.map(\.sentence).joined(separator: "; then ") }

    /// `REDIRECT 15001 (nat/ISTIO_REDIRECT rule 1)`.
    public var summary: String {
        verdict.description + (decidedBy.map { " (\($0))" } ?? "")
    }
}

/// How to treat matches hoptrace does not model (`-m conntrack …`, `-m socket`, …).
public enum UnknownMatchPolicy: Hashable, Sendable {
    /// Assume the match matches (the default: the rule's target is shown as taken, and
    /// the step says it was assumed). For a first packet the common unknown matches
    /// (`--ctstate NEW`, `-m addrtype`, …) are written to select it.
    case assumeMatch
    /// Assume the match does not match.
    case assumeNoMatch

    var word: String { self == .assumeMatch ? "to match" : "not to match" }
}

public struct EvaluationOptions: Hashable, Sendable {
    public var unknownMatches: UnknownMatchPolicy
    /// Rules looked at per evaluation, over all branches.
    public var maxSteps: Int
    public var maxBranches: Int
    /// Deepest chain call stack.
    public var maxDepth: Int
    public init(unknownMatches: UnknownMatchPolicy = .assumeMatch, maxSteps: Int = 100_000,
                maxBranches: Int = 256, maxDepth: Int = 64)
    {
        self.unknownMatches = unknownMatches
        self.maxSteps = maxSteps
        self.maxBranches = maxBranches
        self.maxDepth = maxDepth
    }
}

/// The result of evaluating a packet: one branch, or one per owner case when the
/// packet's owner was unknown and owner matches were reached.
public struct Evaluation: Hashable, Sendable {
    public var packet: PacketContext
    public var tables: [TableName]
    /// At least one. Ordered as the traversal found them (the matching side of a
    /// fork first).
    public var branches: [Branch]

    /// Whether the result depends on the (unknown) owner.
    public var dependsOnOwner: Bool { branches.count > 1 }
    /// The traversal (of the first branch: the only one when nothing was unknown).
    public var steps: [Step] { branches[0].steps }
    /// The verdict if all branches agree on it, else nil.
    public var verdict: Verdict? {
        let v = branches[0].verdict
        return branches.allSatisfy { $0.verdict == v } ? v : nil
    }
    /// The deciding rule if all branches agree on it.
    public var decidedBy: RuleRef? {
        let r = branches[0].decidedBy
        return branches.allSatisfy { $0.decidedBy == r } ? r : nil
    }

    /// One branch: its sentence. Several: `uid 1337: …; uid not 1337 and gid 1337: …`.
    public var sentence: String {
        if branches.count == 1 { return branches[0].sentence }
        return branches.map { "\($0.condition): \($0.sentence)" }.joined(separator: "; ")
    }

    /// `uid 1337 → RETURN (not redirected) (nat/ISTIO_OUTPUT rule 2); uid not 1337 and … → REDIRECT 15001 (…)`.
    public var ownerSummary: String {
        branches.map { ($0.condition.isUnconstrained ? "" : "\($0.condition) → ") + $0.summary }.joined(separator: "; ")
    }

    /// Every assumption the traversal made (unevaluated matches and targets).
    public var notes: [String] {
        var seen = Set<String>(), out: [String] = []
        for b in branches {
            for s in b.steps {
                if let n = s.note, !n.hasPrefix("owner:"), seen.insert(n).inserted { out.append(n) }
            }
        }
        return out
    }
}

/// Targets that do something and let the packet continue.
let nonTerminatingTargets: Set<String> = [
    "LOG", "NFLOG", "ULOG", "TRACE", "AUDIT", "CT", "NOTRACK", "TCPMSS", "DSCP", "TOS", "TTL", "HL",
    "CLASSIFY", "CHECKSUM", "CONNSECMARK", "SECMARK", "SET", "IDLETIMER", "LED", "NFQUEUE-BYPASS",
]

extension RuleSet {
    /// Evaluates the packet against one table (nat by default), from the built-in chain
    /// of `packet.hook`.
    public func evaluate(_ packet: PacketContext, table: TableName = .nat,
                         options: EvaluationOptions = EvaluationOptions()) -> Evaluation
    {
        evaluate(packet, tables: [table], options: options)
    }

    /// Evaluates the packet against several tables in the order given (the kernel's
    /// order is raw, mangle, nat, filter); marks set in one carry into the next, a DROP
    /// ends the evaluation, ACCEPT/REDIRECT/TPROXY end only their table.
    public func evaluate(_ packet: PacketContext, tables: [TableName],
                         options: EvaluationOptions = EvaluationOptions()) -> Evaluation
    {
        var engine = Engine(set: self, packet: packet, tables: tables, options: options)
        return Evaluation(packet: packet, tables: tables, branches: engine.run())
    }
}

private struct Frame {
    var chain: Int
    var next: Int
    /// The rules (jump, gotos) that led into this frame.
    var via: [RuleRef]
}

private struct State {
    var tableIndex = 0
    var frames: [Frame] = []
    var started = false
    var uids: IDSet
    var gids: IDSet
    var mark: UInt32
    var connmark: UInt32
    var steps: [Step] = []
    var lastReturn: (ref: RuleRef, path: [RuleRef])?
    var outcomes: [TableOutcome] = []
    var finished = false
}

private struct Engine {
    let set: RuleSet
    let packet: PacketContext
    let tables: [TableName]
    let options: EvaluationOptions
    var stepsTaken = 0

    init(set: RuleSet, packet: PacketContext, tables: [TableName], options: EvaluationOptions) {
        self.set = set
        self.packet = packet
        self.tables = tables
        self.options = options
    }

    var initialUIDs: IDSet { packet.uid.map { .only($0) } ?? .all }
    var initialGIDs: IDSet { packet.gid.map { .only($0) } ?? .all }

    mutating func run() -> [Branch] {
        var work = [State(uids: initialUIDs, gids: initialGIDs, mark: packet.mark, connmark: packet.connmark)]
        var done: [State] = []
        while var s = work.popLast() {
            if s.finished || s.tableIndex >= tables.count {
                done.append(s)
                continue
            }
            stepsTaken += 1
            if stepsTaken > options.maxSteps || done.count + work.count >= options.maxBranches {
                end(&s, .limitExceeded, ref: nil, path: [], target: nil)
                s.finished = true
                done.append(s)
                continue
            }
            let next = advance(s)
            work.append(contentsOf: next.reversed())
        }
        return done.map { s in
            Branch(condition: OwnerCondition(uids: s.uids == initialUIDs ? nil : s.uids,
                                             gids: s.gids == initialGIDs ? nil : s.gids),
                   steps: s.steps, outcomes: s.outcomes, mark: s.mark, connmark: s.connmark)
        }
    }

    func table(_ s: State) -> Table? { set.table(tables[s.tableIndex]) }

    func hookChain(_ t: Table?) -> Chain? { t?.chain(packet.hook.rawValue) }

    func end(_ s: inout State, _ v: Verdict, ref: RuleRef?, path: [RuleRef], target: String?) {
        let name = tables[min(s.tableIndex, tables.count - 1)]
        let builtin = hookChain(set.table(name))
        s.outcomes.append(TableOutcome(table: name, verdict: v, decidedBy: ref, path: path,
                                       chain: packet.hook.rawValue, policy: builtin?.policy ?? .accept,
                                       targetText: target))
        s.frames = []
        s.started = false
        s.lastReturn = nil
        s.tableIndex += 1
        if v.endsAllTables || s.tableIndex >= tables.count { s.finished = true }
    }

    /// The built-in chain ran out (or was returned from): its policy applies.
    func applyPolicy(_ s: inout State) {
        let name = tables[s.tableIndex]
        let policy = hookChain(set.table(name))?.policy ?? .accept
        s.steps.append(Step(table: name, chain: packet.hook.rawValue, ruleNumber: nil,
                            text: "-P \(packet.hook.rawValue) \(policy)", matched: true))
        if policy == .drop {
            end(&s, .policy(.drop), ref: nil, path: [], target: nil)
        } else if let r = s.lastReturn {
            end(&s, .returned, ref: r.ref, path: r.path, target: "RETURN")
        } else {
            end(&s, .policy(policy), ref: nil, path: [], target: nil)
        }
    }

    /// One rule (or a chain's end); returns the states that follow.
    mutating func advance(_ s0: State) -> [State] {
        var s = s0
        let tname = tables[s.tableIndex]
        guard let t = table(s), let hookIndex = t.chains.firstIndex(where: { $0.name == packet.hook.rawValue }) else {
            // No such table or chain here: nothing to traverse, accepted.
            end(&s, .policy(.accept), ref: nil, path: [], target: nil)
            return [s]
        }
        if !s.started {
            s.started = true
            s.frames = [Frame(chain: hookIndex, next: 0, via: [])]
        }
        guard let f = s.frames.last else {
            applyPolicy(&s)
            return [s]
        }
        let chain = t.chains[f.chain]
        if f.next >= chain.rules.count {
            // Fell off the end: a user chain returns to its caller, a built-in one applies its policy.
            s.frames.removeLast()
            if s.frames.isEmpty { applyPolicy(&s) }
            return [s]
        }
        let index = f.next
        s.frames[s.frames.count - 1].next += 1
        let rule = chain.rules[index]
        let ref = RuleRef(table: tname, chain: chain.name, number: index + 1, text: rule.text(chain: chain.name))
        let path = s.frames.flatMap(\.via) + [ref]

        var out: [State] = []
        for part in partitions(rule, s) {
            var n = s
            n.uids = part.uids
            n.gids = part.gids
            n.steps.append(Step(table: tname, chain: chain.name, ruleNumber: index + 1, text: ref.text,
                                matched: part.matched, note: part.note))
            if part.matched { apply(rule, ref: ref, path: path, table: t, &n) }
            out.append(n)
        }
        return out
    }

    mutating func apply(_ rule: Rule, ref: RuleRef, path: [RuleRef], table t: Table, _ s: inout State) {
        guard let target = rule.target else { return }
        let ttext = String(target.text.dropFirst(3))  // drop "-j " / "-g "
        switch target {
        case .jump(let name), .goto(let name):
            guard let ci = t.chains.firstIndex(where: { $0.name == name }) else {
                s.steps[s.steps.count - 1].note = "chain \(name) does not exist"
                end(&s, .unevaluated(target: name), ref: ref, path: path, target: ttext)
                return
            }
            if s.frames.contains(where: { $0.chain == ci }) || s.frames.count >= options.maxDepth {
                end(&s, .loop(chain: name), ref: ref, path: path, target: ttext)
                return
            }
            if case .goto = target {
                let via = s.frames[s.frames.count - 1].via + [ref]
                s.frames[s.frames.count - 1] = Frame(chain: ci, next: 0, via: via)
            } else {
                s.frames.append(Frame(chain: ci, next: 0, via: [ref]))
            }
        case .return:
            s.lastReturn = (ref, path)
            s.frames.removeLast()
            if s.frames.isEmpty { applyPolicy(&s) }
        case .accept:
            end(&s, .accepted, ref: ref, path: path, target: ttext)
        case .drop:
            end(&s, .dropped, ref: ref, path: path, target: ttext)
        case .redirect(let ports, _):
            end(&s, .redirected(toPort: ports?.lower ?? packet.destinationPort), ref: ref, path: path, target: ttext)
        case .tproxy(let port, _, let mark, let mask):
            s.mark = (s.mark & ~mask) ^ mark
            end(&s, .tproxy(port: port), ref: ref, path: path, target: ttext)
        case .mark(let value, let mask):
            s.mark = (s.mark & ~mask) ^ value
        case .connmark(.setXmark(let value, let mask)):
            s.connmark = (s.connmark & ~mask) ^ value
        case .connmark(.save(let nf, let ct)):
            s.connmark = (s.connmark & ~ct) ^ (s.mark & nf)
        case .connmark(.restore(let nf, let ct)):
            s.mark = (s.mark & ~nf) ^ (s.connmark & ct)
        case .other(let name, _):
            if nonTerminatingTargets.contains(name) {
                appendNote(&s, "target '\(name)' not evaluated; assumed to let the packet continue")
            } else {
                appendNote(&s, "target '\(name)' not evaluated; assumed to end the table's traversal")
                end(&s, .unevaluated(target: name), ref: ref, path: path, target: ttext)
            }
        }
    }

    func appendNote(_ s: inout State, _ note: String) {
        guard let i = s.steps.indices.last else { return }
        s.steps[i].note = [s.steps[i].note, note].compactMap { $0 }.joined(separator: "; ")
    }

    struct Partition {
        var uids: IDSet
        var gids: IDSet
        var matched: Bool
        var note: String?
    }

    /// Whether the rule matches; split by owner when the owner is (partly) unknown.
    func partitions(_ rule: Rule, _ s: State) -> [Partition] {
        var notes: [String] = []
        func no() -> [Partition] {
            [Partition(uids: s.uids, gids: s.gids, matched: false, note: notes.isEmpty ? nil : notes.joined(separator: "; "))]
        }
        let p = packet
        if let x = rule.source, x.value.contains(p.source) == x.negated { return no() }
        if let x = rule.destination, x.value.contains(p.destination) == x.negated { return no() }
        if let x = rule.inInterface, interfaceMatches(x.value, p.hook == .prerouting || p.hook == .input || p.hook == .forward ? p.inInterface ?? "" : "") == x.negated { return no() }
        if let x = rule.outInterface, interfaceMatches(x.value, p.hook == .prerouting || p.hook == .input ? "" : p.outInterface ?? "") == x.negated { return no() }
        if let x = rule.proto, (x.value.number == 0 || x.value == p.proto) == x.negated { return no() }
        if let f = rule.fragment, f != p.isFragment { return no() }
        var owners: [OwnerMatch] = []
        for m in rule.matches {
            switch m {
            case .tcp(let pm), .udp(let pm):
                guard p.proto == (m.name == "tcp" ? .tcp : .udp) else { return no() }
                if let x = pm.sourcePort, x.value.contains(p.sourcePort) == x.negated { return no() }
                if let x = pm.destinationPort, x.value.contains(p.destinationPort) == x.negated { return no() }
                if let x = pm.flags, (p.tcpFlags.intersection(x.value.mask) == x.value.comparison) == x.negated { return no() }
            case .multiport(let mp):
                guard p.proto == .tcp || p.proto == .udp else { return no() }
                let hit = mp.ports.contains { r in
                    switch mp.direction {
                    case .source: r.contains(p.sourcePort)
                    case .destination: r.contains(p.destinationPort)
                    case .either: r.contains(p.sourcePort) || r.contains(p.destinationPort)
                    }
                }
                if hit == mp.negated { return no() }
            case .mark(let mm):
                if ((s.mark & mm.mask) == mm.value) == mm.negated { return no() }
            case .comment:
                break
            case .owner(let om):
                owners.append(om)
            case .other(let name, _):
                notes.append("match '\(name)' not evaluated; assumed \(options.unknownMatches.word)")
                if options.unknownMatches == .assumeNoMatch { return no() }
            }
        }
        // Owner matches last: they may split the unknown owner into cases.
        var live = [Partition(uids: s.uids, gids: s.gids, matched: true)]
        var failed: [Partition] = []
        for om in owners {
            if !p.hasLocalSocket {
                // No socket (a packet from outside): the kernel's owner match then
                // matches only if every criterion it has is negated.
                let allNegated = (om.socketExists?.negated ?? true) && (om.uid?.negated ?? true) && (om.gid?.negated ?? true)
                if !allNegated {
                    notes.append("owner: no local socket at \(p.hook)")
                    return no()
                }
                continue
            }
            if let se = om.socketExists, se.negated { return no() }
            if om.supplementaryGroups { notes.append("--suppl-groups not evaluated; only the primary gid is compared") }
            for (crit, isUID) in [(om.uid, true), (om.gid, false)] {
                guard let crit else { continue }
                let r = crit.value.lower...crit.value.upper
                var next: [Partition] = []
                for var part in live {
                    let set = isUID ? part.uids : part.gids
                    let inside = set.intersecting(r), outside = set.subtracting(r)
                    let (yes, noSet) = crit.negated ? (outside, inside) : (inside, outside)
                    if !yes.isEmpty {
                        if isUID { part.uids = yes } else { part.gids = yes }
                        next.append(part)
                    }
                    if !noSet.isEmpty {
                        var f = part
                        if isUID { f.uids = noSet } else { f.gids = noSet }
                        f.matched = false
                        failed.append(f)
                    }
                }
                live = next
            }
        }
        let forked = live.count + failed.count > 1
        return (live + failed).map { part in
            var part = part
            var n = notes
            if forked {
                let c = OwnerCondition(uids: part.uids == s.uids ? nil : part.uids, gids: part.gids == s.gids ? nil : part.gids)
                n.append("owner: assuming \(c)")
            }
            part.note = n.isEmpty ? nil : n.joined(separator: "; ")
            return part
        }
    }
}

/// `-i eth+` matches any name starting with `eth`; otherwise names compare exactly.
func interfaceMatches(_ pattern: String, _ name: String) -> Bool {
    if pattern.hasSuffix("+") { return name.hasPrefix(pattern.dropLast()) }
    return pattern == name
}
