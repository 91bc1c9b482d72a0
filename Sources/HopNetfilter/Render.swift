// Rendering: the text iptables-save (or `iptables -S`) prints for the model.

/// The two text forms of a rule set.
public enum RenderFormat: Hashable, Sendable {
    /// `iptables-save`: `*nat`, `:CHAIN POLICY [p:b]`, `[p:b] -A …`, `COMMIT`.
    case save
    /// `iptables -t TABLE -S`: `-P CHAIN POLICY`, `-N CHAIN`, `-A …`.
    case listing
}

func hex(_ v: UInt32) -> String { "0x" + String(v, radix: 16) }

/// Quotes a string the way iptables-save does (xtables_save_string): bare when it
/// consists of `[A-Za-z0-9_-]` only, else in double quotes with `"`, `\` and `'` escaped
/// (by Unicode scalars, as the tokenizer reads them).
func saveString(_ s: String) -> String {
    let bare = !s.isEmpty && s.unicodeScalars.allSatisfy {
        ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || $0 == "_" || $0 == "-"
    }
    return bare ? s : quoted(s, escaping: ["\"", "\\", "'"])
}

/// A word the model keeps as it was read (an interface name, the name after `-j` or `-g`),
/// written so that the tokenizer reads it back as it is: bare when it is not empty and holds no
/// blank, quote or backslash (every name iptables-save prints: `eth0`, `veth+`, `ISTIO_REDIRECT`),
/// else in double quotes with `"` and `\` escaped. The render → parse round trip rests on it:
/// written bare, `-i "a b"` would read back as `-i a` and a stray `b`.
func ruleWord(_ s: String) -> String {
    let bare = !s.isEmpty && !s.unicodeScalars.contains { $0 == " " || $0 == "\t" || $0 == "\"" || $0 == "\\" }
    return bare ? s : quoted(s, escaping: ["\"", "\\"])
}

/// `s` in double quotes, a backslash before each scalar of `escaping`.
private func quoted(_ s: String, escaping: Set<Unicode.Scalar>) -> String {
    var out = String.UnicodeScalarView()
    out.append("\"")
    for c in s.unicodeScalars {
        if escaping.contains(c) { out.append("\\") }
        out.append(c)
    }
    out.append("\"")
    return String(out)
}

extension Match {
    /// `-m NAME …` as iptables-save prints it.
    public var text: String {
        var parts = ["-m", name]
        func ports(_ m: PortMatch) {
            if let p = m.sourcePort { parts.append("\(p.bang)--sport \(p.value)") }
            if let p = m.destinationPort { parts.append("\(p.bang)--dport \(p.value)") }
            if let f = m.flags { parts.append("\(f.bang)--tcp-flags \(f.value.mask) \(f.value.comparison)") }
        }
        switch self {
        case .tcp(let m), .udp(let m):
            ports(m)
        case .multiport(let m):
            if m.negated { parts.append("!") }
            parts.append(m.direction.rawValue)
            parts.append(m.ports.map(\.description).joined(separator: ","))
        case .owner(let o):
            if let s = o.socketExists { parts.append("\(s.bang)--socket-exists") }
            if let u = o.uid { parts.append("\(u.bang)--uid-owner \(u.value)") }
            if let g = o.gid { parts.append("\(g.bang)--gid-owner \(g.value)") }
            if o.supplementaryGroups { parts.append("--suppl-groups") }
        case .mark(let m):
            if m.negated { parts.append("!") }
            parts.append("--mark")
            parts.append(m.mask == .max ? hex(m.value) : "\(hex(m.value))/\(hex(m.mask))")
        case .comment(let c):
            parts.append("--comment")
            parts.append(saveString(c))
        case .other(_, let args):
            parts.append(contentsOf: args)
        }
        return parts.joined(separator: " ")
    }
}

extension Target {
    /// `-j NAME …` (or `-g CHAIN`) as iptables-save prints it.
    public var text: String {
        switch self {
        case .jump(let c): return "-j \(ruleWord(c))"
        case .goto(let c): return "-g \(ruleWord(c))"
        case .accept, .drop, .return: return "-j \(name)"
        case .redirect(let ports, let random):
            var s = "-j REDIRECT"
            if let ports { s += " --to-ports \(ports.dashed)" }
            if random { s += " --random" }
            return s
        case .tproxy(let port, let ip, let mark, let mask):
            return "-j TPROXY --on-port \(port) --on-ip \(ip) --tproxy-mark \(hex(mark))/\(hex(mask))"
        case .mark(let value, let mask):
            return "-j MARK --set-xmark \(hex(value))/\(hex(mask))"
        case .connmark(.setXmark(let value, let mask)):
            return "-j CONNMARK --set-xmark \(hex(value))/\(hex(mask))"
        case .connmark(.save(let nf, let ct)):
            return "-j CONNMARK --save-mark --nfmask \(hex(nf)) --ctmask \(hex(ct))"
        case .connmark(.restore(let nf, let ct)):
            return "-j CONNMARK --restore-mark --nfmask \(hex(nf)) --ctmask \(hex(ct))"
        case .other(let name, let args):
            return (["-j", ruleWord(name)] + args).joined(separator: " ")
        }
    }
}

extension Rule {
    /// The parameters and matches (no chain, no target, no counters): `-p tcp -m tcp --dport 80`.
    public var conditionText: String {
        var parts: [String] = []
        if let s = source { parts.append("\(s.bang)-s \(s.value)") }
        if let d = destination { parts.append("\(d.bang)-d \(d.value)") }
        if let i = inInterface { parts.append("\(i.bang)-i \(ruleWord(i.value))") }
        if let o = outInterface { parts.append("\(o.bang)-o \(ruleWord(o.value))") }
        if let p = proto { parts.append("\(p.bang)-p \(p.value)") }
        if let f = fragment { parts.append(f ? "-f" : "! -f") }
        parts.append(contentsOf: matches.map(\.text))
        return parts.joined(separator: " ")
    }

    /// The rule's text after `-A CHAIN`, as iptables-save prints it (no counters).
    public var specText: String {
        [conditionText, target?.text ?? ""].filter { !$0.isEmpty }.joined(separator: " ")
    }

    /// `-A CHAIN …` without counters: the form used in traversals and messages.
    public func text(chain: String) -> String {
        let spec = specText
        return spec.isEmpty ? "-A \(chain)" : "-A \(chain) \(spec)"
    }
}

extension Table {
    /// This table in one of the two text forms. `counters` (default: yes for `.save`,
    /// no for `.listing`) adds rule counters (and, for the listing, `-c p b` on the
    /// policy lines as `iptables -S -v` does); iptables-save's chain counters `[p:b]`
    /// are always printed since its syntax requires them.
    public func render(_ format: RenderFormat = .save, counters: Bool? = nil) -> String {
        let counters = counters ?? (format == .save)
        var out = ""
        switch format {
        case .save:
            out += "*\(name.rawValue)\n"
            for c in chains {
                out += ":\(c.name) \(c.policy?.rawValue ?? "-") [\(c.counters.packets):\(c.counters.bytes)]\n"
            }
            for c in chains {
                for r in c.rules {
                    if counters, let k = r.counters { out += "[\(k.packets):\(k.bytes)] " }
                    out += r.text(chain: c.name) + "\n"
                }
            }
            out += "COMMIT\n"
        case .listing:
            for c in chains {
                if let p = c.policy {
                    out += "-P \(c.name) \(p.rawValue)"
                    if counters { out += " -c \(c.counters.packets) \(c.counters.bytes)" }
                    out += "\n"
                } else {
                    out += "-N \(c.name)\n"
                }
            }
            for c in chains {
                for r in c.rules {
                    var parts = ["-A", c.name]
                    let cond = r.conditionText
                    if !cond.isEmpty { parts.append(cond) }
                    if counters, let k = r.counters { parts.append("-c \(k.packets) \(k.bytes)") }
                    if let t = r.target { parts.append(t.text) }
                    out += parts.joined(separator: " ") + "\n"
                }
            }
        }
        return out
    }
}

extension RuleSet {
    /// The whole set as iptables-save text (all tables) or as `-S` listing (the
    /// tables' listings one after another; a listing names no table, so it parses
    /// back into one table).
    ///
    /// Round trip: `parse(render(.save)) == self`; for the listing,
    /// `parse(render(.listing, counters: true), defaultTable:) == self` when the set
    /// has one table. `.listing` defaults to no counters (like `iptables -S`).
    public func render(_ format: RenderFormat = .save, counters: Bool? = nil) -> String {
        let withCounters = counters ?? (format == .save)
        return tables.map { $0.render(format, counters: withCounters) }.joined()
    }
}

extension RuleSet {
    /// Same as `render(_:counters:)`.
    public func render(format: RenderFormat, counters: Bool? = nil) -> String {
        render(format, counters: counters)
    }
}
