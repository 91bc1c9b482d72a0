// What the model keeps but does not evaluate.

/// A rule that uses something hoptrace keeps verbatim but does not evaluate.
public struct RuleWarning: Hashable, Sendable, CustomStringConvertible {
    public var table: TableName
    public var chain: String
    /// 1-based.
    public var ruleNumber: Int
    public var message: String

    /// `rule 3 of ISTIO_OUTPUT uses match 'conntrack' which hoptrace does not evaluate; assumed to match`
    /// (the chain is prefixed with its table outside nat: `mangle/ISTIO_DIVERT`).
    public var description: String {
        "rule \(ruleNumber) of \(table == .nat ? "" : "\(table)/")\(chain) \(message)"
    }
}

extension RuleSet {
    /// Warnings under the default unknown-match policy (`.assumeMatch`).
    public var warnings: [RuleWarning] { warnings(assuming: .assumeMatch) }

    /// Every rule part that is kept verbatim and not evaluated, and what the evaluator
    /// assumes about it.
    public func warnings(assuming policy: UnknownMatchPolicy) -> [RuleWarning] {
        var out: [RuleWarning] = []
        for t in tables {
            let chains = Set(t.chains.map(\.name))
            for c in t.chains {
                for (i, r) in c.rules.enumerated() {
                    func warn(_ m: String) { out.append(RuleWarning(table: t.name, chain: c.name, ruleNumber: i + 1, message: m)) }
                    for m in r.matches {
                        switch m {
                        case .other(let name, let args):
                            if matchOptions[name] != nil {
                                warn("uses match '\(name)' with options hoptrace does not model (\(args.joined(separator: " "))); assumed \(policy.word)")
                            } else {
                                warn("uses match '\(name)' which hoptrace does not evaluate; assumed \(policy.word)")
                            }
                        case .owner(let o) where o.supplementaryGroups:
                            warn("uses --suppl-groups; hoptrace compares only the primary gid")
                        default:
                            break
                        }
                    }
                    switch r.target {
                    case .other(let name, _)?:
                        let how = nonTerminatingTargets.contains(name)
                            ? "assumed to let the packet continue" : "assumed to end the table's traversal"
                        warn("uses target '\(name)' which hoptrace does not evaluate; \(how)")
                    case .jump(let name)?, .goto(let name)?:
                        if !chains.contains(name) { warn("jumps to chain '\(name)', which does not exist") }
                    default:
                        break
                    }
                }
            }
        }
        return out
    }
}
