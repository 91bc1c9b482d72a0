// Parsing iptables-save text and `iptables -S` listings into the model.

/// A line of rules text that could not be understood.
public struct ParseError: Error, Hashable, Sendable, CustomStringConvertible {
    /// 1-based line number.
    public var line: Int
    public var message: String
    /// The offending line as written.
    public var text: String

    public var description: String { "line \(line): \(message)" }
}

/// A shell-like word of a rules line: `value` without quotes, `raw` as written.
struct Token: Hashable {
    var value: String
    var raw: String
}

/// Splits a line as iptables-restore does: on blanks; double quotes group words,
/// and inside them a backslash escapes the next character. Like iptables-restore, which reads
/// bytes, it goes by Unicode scalars, not by characters: a quote or a blank next to a
/// combining mark is still a quote or a blank (as characters, `"` + U+0301 is one character
/// that is not a quote, and a word written after a blank could merge with it).
func tokenize(_ line: Substring) -> Result<[Token], ParseLineError> {
    var tokens: [Token] = []
    var value = String.UnicodeScalarView(), raw = String.UnicodeScalarView()
    var inWord = false, quoted = false, escaped = false
    for c in line.unicodeScalars {
        // iptables-save and `-S` print no control characters (comments are printable): a line
        // holding one is not rule text, and could not be written back as it was read.
        if (c.value < 0x20 && c != "\t") || c.value == 0x7f {
            return .failure(ParseLineError("control character 0x\(String(c.value, radix: 16)) in the line"))
        }
        if quoted {
            raw.append(c)
            if escaped { value.append(c); escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { quoted = false } else { value.append(c) }
            continue
        }
        if c == " " || c == "\t" {
            if inWord {
                tokens.append(Token(value: String(value), raw: String(raw)))
                value = String.UnicodeScalarView(); raw = String.UnicodeScalarView(); inWord = false
            }
            continue
        }
        inWord = true
        raw.append(c)
        if c == "\"" { quoted = true } else { value.append(c) }
    }
    if quoted { return .failure(ParseLineError("unterminated quote")) }
    if inWord { tokens.append(Token(value: String(value), raw: String(raw))) }
    return .success(tokens)
}

/// Resolves a long option as getopt_long does: the exact name, or a unique prefix of one.
func resolveOption(_ given: String, among names: [String]) -> String? {
    if names.contains(given) { return given }
    let hits = names.filter { $0.hasPrefix(given) }
    return hits.count == 1 ? hits[0] : nil
}

/// What is wrong with a chain name, nil when nothing: iptables takes at most 28 characters and
/// no leading `-` or `!`; hoptrace also wants printable ASCII without quotes or backslashes,
/// which every form it reads and writes (iptables-save, `-S`) can carry as they are.
func chainNameProblem(_ name: String) -> String? {
    // iptables refuses an empty name too; iptables-save's `:NAME POLICY [p:b]` could not carry it.
    if name.isEmpty { return "empty chain name" }
    if name.utf8.count > 28 { return "chain name '\(name)' is longer than iptables' 28 characters" }
    if name.hasPrefix("-") || name.hasPrefix("!") { return "chain name '\(name)' starts with '-' or '!', which iptables refuses" }
    if let bad = name.unicodeScalars.first(where: { $0.value < 0x21 || $0.value > 0x7e || $0 == "\"" || $0 == "'" || $0 == "\\" }) {
        return "chain name '\(name.debugDescription.dropFirst().dropLast())' holds \(bad.value < 0x80 ? "byte 0x" + String(bad.value, radix: 16) : "a non-ASCII character"): hoptrace reads chain names of printable ASCII without quotes or backslashes"
    }
    return nil
}

/// Numbers as strtoul(…, 0): `0x` hex, leading-0 octal, else decimal.
func parseNumber(_ s: String) -> UInt32? {
    if s.hasPrefix("0x") || s.hasPrefix("0X") { return UInt32(s.dropFirst(2), radix: 16) }
    if s.count > 1, s.hasPrefix("0") { return UInt32(s.dropFirst(), radix: 8) }
    return UInt32(s)
}

/// `value[/mask]`.
func parseMarkMask(_ s: String, defaultMask: UInt32 = .max) -> (UInt32, UInt32)? {
    let parts = s.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
    guard let v = parseNumber(String(parts[0])) else { return nil }
    if parts.count == 1 { return (v, defaultMask) }
    guard let m = parseNumber(String(parts[1])) else { return nil }
    return (v, m)
}

func parsePort(_ s: Substring) -> UInt16? {
    guard !s.isEmpty, s.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
    return UInt16(s)
}

/// `80`, `1:1024`, `1024:` (to 65535), `:80` (from 0). `separator` is `-` for `--to-ports`.
func parsePortRange(_ s: String, separators: Set<Character> = [":"]) -> PortRange? {
    if let i = s.firstIndex(where: { separators.contains($0) }) {
        let a = s[..<i], b = s[s.index(after: i)...]
        let lo = a.isEmpty ? 0 : parsePort(a)
        let hi = b.isEmpty ? UInt16.max : parsePort(b)
        guard let lo, let hi, lo <= hi else { return nil }
        return PortRange(lo, hi)
    }
    return parsePort(Substring(s)).map { PortRange($0) }
}

func parseIDRange(_ s: String) -> IDRange? {
    let parts = s.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
    guard let lo = UInt32(parts[0]) else { return nil }
    if parts.count == 1 { return IDRange(lo) }
    guard let hi = UInt32(parts[1]), lo <= hi else { return nil }
    return IDRange(lo, hi)
}

/// Top-level rule options: whatever follows them ends a match's or target's options.
let topLevelOptions: Set<String> = [
    "-s", "--source", "--src", "-d", "--destination", "--dst", "-i", "--in-interface",
    "-o", "--out-interface", "-p", "--protocol", "-f", "--fragment", "-m", "--match",
    "-j", "--jump", "-g", "--goto", "-c", "--set-counters",
]

/// Known match options: name → number of values.
let matchOptions: [String: [String: Int]] = [
    "tcp": ["--sport": 1, "--source-port": 1, "--dport": 1, "--destination-port": 1, "--tcp-flags": 2,
            "--syn": 0, "--tcp-option": 1],
    "udp": ["--sport": 1, "--source-port": 1, "--dport": 1, "--destination-port": 1],
    "multiport": ["--sports": 1, "--source-ports": 1, "--dports": 1, "--destination-ports": 1, "--ports": 1],
    "owner": ["--uid-owner": 1, "--gid-owner": 1, "--socket-exists": 0, "--suppl-groups": 0],
    "mark": ["--mark": 1],
    "comment": ["--comment": 1],
]

/// Known target options: name → number of values.
let targetOptions: [String: [String: Int]] = [
    "ACCEPT": [:], "DROP": [:], "RETURN": [:],
    "REDIRECT": ["--to-ports": 1, "--random": 0],
    "TPROXY": ["--on-port": 1, "--on-ip": 1, "--tproxy-mark": 1],
    "MARK": ["--set-xmark": 1, "--set-mark": 1, "--and-mark": 1, "--or-mark": 1, "--xor-mark": 1],
    "CONNMARK": ["--set-xmark": 1, "--set-mark": 1, "--save-mark": 0, "--restore-mark": 0, "--nfmask": 1,
                 "--ctmask": 1, "--mask": 1, "--and-mark": 1, "--or-mark": 1, "--xor-mark": 1],
]

/// One `[!] --option values…` inside a match or target.
struct OptionItem {
    var negated: Bool
    var name: String
    var values: [String]
}

/// A match or target while its options are being collected.
struct Clause {
    var name: String
    /// Known module/target: options resolved; nil once it turns out not to be modelled.
    var items: [OptionItem]? = []
    /// Everything after the name, as written.
    var raw: [String] = []
}

struct LineParser {
    let tokens: [Token]
    var i = 0
    init(_ tokens: [Token]) { self.tokens = tokens }

    var atEnd: Bool { i >= tokens.count }
    var peek: Token? { atEnd ? nil : tokens[i] }

    /// Whether the token at `j` (and a `!` before it) starts a new top-level part.
    func isTopLevel(at j: Int) -> Bool {
        guard j < tokens.count else { return true }
        if tokens[j].value == "!" { return isTopLevel(at: j + 1) && j + 1 < tokens.count }
        return topLevelOptions.contains(tokens[j].value)
    }

    mutating func next(_ what: String) throws(ParseLineError) -> Token {
        guard let t = peek else { throw ParseLineError("\(what) is missing") }
        i += 1
        return t
    }
}

struct ParseLineError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

extension RuleSet {
    /// Parses iptables-save text (`*table` … `COMMIT`) and/or `iptables -S` listing lines
    /// (`-P`, `-N`, `-A`, also `-I`; a leading `iptables`/`ip6tables` word and `-t TABLE`
    /// are accepted). Listing lines outside a `*table` section go to `defaultTable`
    /// (or the line's `-t`). Comment lines (`#`) and blank lines are skipped; comments
    /// are not part of the model. Built-in chains referenced before being declared are
    /// created with policy ACCEPT; user chains must be declared (`:X - [0:0]` / `-N X`).
    public static func parse(_ text: String, defaultTable: TableName = .nat) throws(ParseError) -> RuleSet {
        var set = RuleSet()
        var section: (name: TableName, line: Int)?
        var gotoLines: [TableName: [String: Int]] = [:]
        var lineNo = 0
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)

        func finish(_ name: TableName) throws(ParseError) {
            guard var t = set[table: name] else { return }
            let userChains = Set(t.chains.filter { !$0.isBuiltin }.map(\.name))
            for ci in t.chains.indices {
                for ri in t.chains[ci].rules.indices {
                    if case .other(let n, let args)? = t.chains[ci].rules[ri].target, args.isEmpty, userChains.contains(n) {
                        t.chains[ci].rules[ri].target = .jump(n)
                    }
                }
            }
            for (chain, line) in gotoLines[name] ?? [:] where !userChains.contains(chain) {
                throw ParseError(line: line, message: "goto target '\(chain)' is not a user-defined chain of table \(name)",
                                 text: line <= lines.count ? String(lines[line - 1]) : "")
            }
            gotoLines[name] = nil
            // A section that declares nothing holds nothing: kept, it would be a table that no
            // listing (`-S`) can show.
            set[table: name] = t.chains.isEmpty ? nil : t
        }

        for rawLine in lines {
            lineNo += 1
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
            let trimmed = line.drop(while: { $0 == " " || $0 == "\t" })
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            func fail(_ message: String) -> ParseError {
                ParseError(line: lineNo, message: message, text: String(line))
            }
            if trimmed.hasPrefix("*") {
                if let s = section {
                    throw fail("table '\(s.name)' opened at line \(s.line) has no COMMIT before '\(trimmed)'")
                }
                let name = String(trimmed.dropFirst()).trimmingBlanks()
                guard !name.isEmpty, !name.contains(" ") else { throw fail("expected '*TABLE'") }
                let t = TableName(name)
                section = (t, lineNo)
                if set[table: t] == nil { set[table: t] = Table(name: t) }
                continue
            }
            if trimmed.trimmingBlanks() == "COMMIT" {
                guard let s = section else { throw fail("COMMIT without a '*TABLE' line") }
                try finish(s.name)
                section = nil
                continue
            }
            if trimmed.hasPrefix(":") {
                guard let s = section else { throw fail("chain declaration outside a '*TABLE' section") }
                let parts = trimmed.dropFirst().split(whereSeparator: { $0 == " " || $0 == "\t" })
                guard parts.count == 2 || parts.count == 3 else {
                    throw fail("expected ':CHAIN POLICY [packets:bytes]'")
                }
                let name = String(parts[0])
                if let why = chainNameProblem(name) { throw fail(why) }
                var counters = Counters.zero
                if parts.count == 3 {
                    guard let c = parseBracketCounters(parts[2]) else { throw fail("bad counters '\(parts[2])', expected [packets:bytes]") }
                    counters = c
                }
                var t = set[table: s.name]!
                if t.chain(name) != nil { throw fail("chain '\(name)' declared twice") }
                let builtin = s.name.builtinChains.contains(name)
                let policy: Policy?
                switch parts[1] {
                case "-":
                    if builtin { throw fail("built-in chain '\(name)' needs a policy (ACCEPT or DROP)") }
                    policy = nil
                case "ACCEPT", "DROP":
                    if !builtin, !s.name.builtinChains.isEmpty {
                        throw fail("'\(name)' is not a built-in chain of table \(s.name); user chains take '-' as policy")
                    }
                    policy = Policy(rawValue: String(parts[1]))
                default:
                    throw fail("unknown policy '\(parts[1])' (expected ACCEPT, DROP or -)")
                }
                // A user chain has no counters of its own: iptables-save prints `- [0:0]` for
                // every one and iptables-restore ignores what stands there, so the model keeps
                // none either (a listing's `-N CHAIN` has no place for them).
                t.chains.append(Chain(name: name, policy: policy, counters: policy == nil ? .zero : counters))
                set[table: s.name] = t
                continue
            }

            // A command line: [p:b] -A CHAIN …, -N, -P, -I; or a listing line.
            var tokens: [Token]
            switch tokenize(trimmed) {
            case .success(let t): tokens = t
            case .failure(let e): throw fail(e.message)
            }
            var counters: Counters?
            if let first = tokens.first, first.value.hasPrefix("[") {
                guard let c = parseBracketCounters(Substring(first.value)) else { throw fail("bad counters '\(first.value)', expected [packets:bytes]") }
                counters = c
                tokens.removeFirst()
            }
            if let first = tokens.first, ["iptables", "ip6tables", "iptables-legacy", "iptables-nft",
                                          "ip6tables-legacy", "ip6tables-nft"].contains(first.value) {
                tokens.removeFirst()
            }
            // -t TABLE (listing lines only).
            var tableName = section?.name ?? defaultTable
            if let ti = tokens.firstIndex(where: { $0.value == "-t" || $0.value == "--table" }) {
                if section != nil { throw fail("-t is not allowed inside a '*TABLE' section") }
                guard ti + 1 < tokens.count else { throw fail("-t needs a table name") }
                let given = tokens[ti + 1].value
                // The save form's `*NAME` carries no empty name and none with a blank (as a
                // quoted word `-t` takes any); iptables knows no such table either.
                if given.isEmpty || given.unicodeScalars.contains(where: { $0 == " " || $0 == "\t" }) {
                    throw fail("'\(given)' is not a table name")
                }
                tableName = TableName(given)
                tokens.removeSubrange(ti...(ti + 1))
            }
            guard let command = tokens.first else { throw fail("empty command") }
            if set[table: tableName] == nil { set[table: tableName] = Table(name: tableName) }
            var table = set[table: tableName]!

            func ensureChain(_ name: String) throws(ParseError) -> Int {
                if let i = table.chains.firstIndex(where: { $0.name == name }) { return i }
                if tableName.builtinChains.contains(name) {
                    return insertBuiltin(Chain(name: name, policy: .accept), into: &table)
                }
                throw fail("chain '\(name)' does not exist in table \(tableName) (declare it with ':\(name) - [0:0]' or '-N \(name)')")
            }

            switch command.value {
            case "-N", "--new-chain", "--new":
                guard tokens.count == 2 else { throw fail("expected '-N CHAIN'") }
                let name = tokens[1].value
                if let why = chainNameProblem(name) { throw fail(why) }
                if table.chain(name) != nil { throw fail("chain '\(name)' declared twice") }
                if tableName.builtinChains.contains(name) { throw fail("'\(name)' is a built-in chain; it cannot be created with -N") }
                table.chains.append(Chain(name: name))
            case "-P", "--policy":
                guard tokens.count == 3 || (tokens.count == 6 && ["-c", "--set-counters"].contains(tokens[3].value)) else {
                    throw fail("expected '-P CHAIN POLICY [-c packets bytes]'")
                }
                guard let policy = Policy(rawValue: tokens[2].value) else { throw fail("unknown policy '\(tokens[2].value)' (expected ACCEPT or DROP)") }
                let name = tokens[1].value
                // A table without built-in chains (one hoptrace does not know) takes any name after
                // -P: it must still be one `:NAME POLICY [p:b]` can carry, as for -N and ':'.
                if let why = chainNameProblem(name) { throw fail(why) }
                if !tableName.builtinChains.isEmpty, !tableName.builtinChains.contains(name) {
                    throw fail("'\(name)' is not a built-in chain of table \(tableName); only built-in chains have a policy")
                }
                let ci: Int
                if let i = table.chains.firstIndex(where: { $0.name == name }) { ci = i } else {
                    ci = insertBuiltin(Chain(name: name, policy: policy), into: &table)
                }
                table.chains[ci].policy = policy
                if tokens.count == 6 {
                    guard let p = UInt64(tokens[4].value), let b = UInt64(tokens[5].value) else { throw fail("bad counters after -c") }
                    table.chains[ci].counters = Counters(packets: p, bytes: b)
                }
            case "-A", "--append", "-I", "--insert":
                guard tokens.count >= 2 else { throw fail("expected '\(command.value) CHAIN rule…'") }
                let ci = try ensureChain(tokens[1].value)
                var rest = Array(tokens.dropFirst(2))
                var position: Int?
                if command.value == "-I" || command.value == "--insert", let n = rest.first.flatMap({ Int($0.value) }) {
                    guard n >= 1, n <= table.chains[ci].rules.count + 1 else { throw fail("rule number \(n) is out of range for -I") }
                    position = n - 1
                    rest.removeFirst()
                } else if command.value.hasPrefix("-I") || command.value == "--insert" {
                    position = 0
                }
                var rule: Rule
                do {
                    rule = try parseRule(rest)
                } catch {
                    throw fail(error.message)
                }
                if counters != nil { rule.counters = counters }
                if case .goto(let target)? = rule.target { gotoLines[tableName, default: [:]][target] = gotoLines[tableName]?[target] ?? lineNo }
                if let position { table.chains[ci].rules.insert(rule, at: position) } else { table.chains[ci].rules.append(rule) }
            default:
                throw fail("unsupported command '\(command.value)' (expected -A, -I, -N, -P, ':CHAIN', '*TABLE' or COMMIT)")
            }
            set[table: tableName] = table
        }
        if let s = section {
            throw ParseError(line: s.line, message: "table '\(s.name)' has no COMMIT", text: "*\(s.name)")
        }
        for t in set.tables { try finish(t.name) }
        return set
    }
}

/// Puts a built-in chain created by `-P` or by a reference among the other built-ins,
/// in the table's canonical order (before any user chain).
func insertBuiltin(_ chain: Chain, into table: inout Table) -> Int {
    let order = table.name.builtinChains
    let rank = order.firstIndex(of: chain.name) ?? order.count
    let at = table.chains.firstIndex { c in
        guard c.isBuiltin, let r = order.firstIndex(of: c.name) else { return true }
        return r > rank
    } ?? table.chains.count
    table.chains.insert(chain, at: at)
    return at
}

func parseBracketCounters(_ s: Substring) -> Counters? {
    guard s.hasPrefix("["), s.hasSuffix("]") else { return nil }
    let inner = s.dropFirst().dropLast().split(separator: ":", omittingEmptySubsequences: false)
    guard inner.count == 2, let p = UInt64(inner[0]), let b = UInt64(inner[1]) else { return nil }
    return Counters(packets: p, bytes: b)
}

extension StringProtocol {
    func trimmingBlanks() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s.removeLast() }
        return String(s)
    }
}

/// Parses a rule specification (what follows `-A CHAIN`).
func parseRule(_ tokens: [Token]) throws(ParseLineError) -> Rule {
    var p = LineParser(tokens)
    var rule = Rule()
    var clauses: [Clause] = []
    var current: Int?  // index into clauses of the match taking options
    var targetClause: Clause?
    var targetKind: String?  // "-j" or "-g"

    func setOnce<T>(_ slot: inout T?, _ value: T, _ what: String) throws(ParseLineError) {
        if slot != nil { throw ParseLineError("\(what) given twice") }
        slot = value
    }

    while !p.atEnd {
        var negated = false
        if p.peek?.value == "!" {
            negated = true
            p.i += 1
            guard !p.atEnd else { throw ParseLineError("'!' at the end of the rule") }
        }
        let t = try p.next("option")
        let o = t.value
        switch o {
        case "-s", "--source", "--src", "-d", "--destination", "--dst":
            let v = try p.next("address after \(o)").value
            if v.contains(",") { throw ParseLineError("several addresses in '\(o) \(v)' (iptables makes one rule per address; write them as separate rules)") }
            guard let cidr = CIDR(v) else { throw ParseLineError("'\(v)' is not a numeric IPv4/IPv6 address or network (host names are not resolved)") }
            if o.hasPrefix("-s") || o == "--src" || o == "--source" {
                try setOnce(&rule.source, Negatable(cidr, negated: negated), "-s")
            } else {
                try setOnce(&rule.destination, Negatable(cidr, negated: negated), "-d")
            }
            current = nil
        case "-i", "--in-interface", "-o", "--out-interface":
            let v = try p.next("interface after \(o)").value
            guard !v.isEmpty, v.count <= 15, !v.contains("/"), v != ".", v != ".." else { throw ParseLineError("'\(v)' is not an interface name") }
            if o == "-i" || o == "--in-interface" {
                try setOnce(&rule.inInterface, Negatable(v, negated: negated), "-i")
            } else {
                try setOnce(&rule.outInterface, Negatable(v, negated: negated), "-o")
            }
            current = nil
        case "-p", "--protocol":
            let v = try p.next("protocol after -p").value
            guard let proto = IPProtocol(v) else { throw ParseLineError("unknown protocol '\(v)'") }
            if proto.number != 0 || negated { try setOnce(&rule.proto, Negatable(proto, negated: negated), "-p") }
            current = nil
        case "-f", "--fragment":
            try setOnce(&rule.fragment, !negated, "-f")
            current = nil
        case "-c", "--set-counters":
            if negated { throw ParseLineError("'!' before -c") }
            let a = try p.next("packet counter after -c").value, b = try p.next("byte counter after -c").value
            guard let pk = UInt64(a), let by = UInt64(b) else { throw ParseLineError("bad counters '-c \(a) \(b)'") }
            rule.counters = Counters(packets: pk, bytes: by)
            current = nil
        case "-m", "--match":
            if negated { throw ParseLineError("'!' before -m") }
            let name = try p.next("match name after -m").value
            // An extension's name is a word (letters, digits, '_', '-', '.'); anything else
            // could not be written back as it was read.
            let isWord = !name.isEmpty && name.utf8.allSatisfy { b in
                (b >= 0x30 && b <= 0x39) || (b | 0x20 >= 0x61 && b | 0x20 <= 0x7a) || b == 0x5f || b == 0x2d || b == 0x2e
            }
            if !isWord { throw ParseLineError("match name '\(name)' is not an iptables extension name (letters, digits, '_', '-', '.')") }
            clauses.append(Clause(name: name, items: matchOptions[name] == nil ? nil : []))
            current = clauses.count - 1
        case "-j", "--jump", "-g", "--goto":
            if negated { throw ParseLineError("'!' before \(o)") }
            if targetClause != nil { throw ParseLineError("more than one target") }
            let name = try p.next("target after \(o)").value
            targetKind = (o == "-g" || o == "--goto") ? "-g" : "-j"
            var clause = Clause(name: name, items: targetKind == "-j" && targetOptions[name] != nil ? [] : nil)
            // The target's options run to the next top-level option.
            while !p.isTopLevel(at: p.i) {
                var neg = false
                var rawNeg: String?
                if p.peek?.value == "!" { neg = true; rawNeg = p.peek!.raw; p.i += 1 }
                let opt = try p.next("target option")
                if let rawNeg { clause.raw.append(rawNeg) }
                clause.raw.append(opt.raw)
                if clause.items != nil, let spec = targetOptions[name], opt.value.hasPrefix("--"),
                   let full = resolveOption(opt.value, among: Array(spec.keys)), !neg
                {
                    var values: [String] = []
                    for _ in 0..<spec[full]! {
                        let v = try p.next("value for \(full)")
                        clause.raw.append(v.raw)
                        values.append(v.value)
                    }
                    clause.items!.append(OptionItem(negated: false, name: full, values: values))
                } else {
                    clause.items = nil
                }
            }
            targetClause = clause
            current = nil
        default:
            guard o.hasPrefix("-"), o.count > 1 else { throw ParseLineError("unexpected '\(t.raw)'") }
            // An option of the current match, or of the protocol's implicit match.
            let protoName: String? = {
                guard let pr = rule.proto, !pr.negated else { return nil }
                return pr.value == .tcp ? "tcp" : pr.value == .udp ? "udp" : nil
            }()
            func spec(_ clause: Clause) -> [String: Int]? { clause.items == nil ? nil : matchOptions[clause.name] }
            var target: Int?
            var full: String?
            let currentKnown = current.map { spec(clauses[$0]) != nil } ?? true
            if let c = current, let s = spec(clauses[c]), let f = resolveOption(o, among: Array(s.keys)) {
                target = c
                full = f
            } else if let c = clauses.indices.reversed().first(where: { spec(clauses[$0])?[o] != nil }) {
                // An option of an earlier match of this rule (iptables accepts them anywhere).
                target = c
                full = o
            } else if let pn = protoName, let s = matchOptions[pn],
                      let f = currentKnown ? resolveOption(o, among: Array(s.keys)) : (s[o] != nil ? o : nil)
            {
                // Implicit `-m tcp`/`-m udp`, as iptables loads it for `-p tcp --dport …`.
                clauses.append(Clause(name: pn))
                target = clauses.count - 1
                full = f
            } else if let c = current {
                // Not modelled: keep it, and what follows up to the next option, verbatim.
                clauses[c].items = nil
                if negated { clauses[c].raw.append("!") }
                clauses[c].raw.append(t.raw)
                while !p.isTopLevel(at: p.i), let nx = p.peek, !nx.value.hasPrefix("--"), nx.value != "!" {
                    clauses[c].raw.append(nx.raw)
                    p.i += 1
                }
                continue
            } else {
                throw ParseLineError("unknown option '\(o)'" + (protoName == nil ? " (no -m before it)" : " for -p \(protoName!)"))
            }
            let c = target!, name = full!
            let arity = matchOptions[clauses[c].name]![name]!
            if negated { clauses[c].raw.append("!") }
            clauses[c].raw.append(t.raw)
            var values: [String] = []
            for _ in 0..<arity {
                let v = try p.next("value for \(name)")
                clauses[c].raw.append(v.raw)
                values.append(v.value)
            }
            clauses[c].items?.append(OptionItem(negated: negated, name: name, values: values))
        }
    }

    for c in clauses { rule.matches.append(try buildMatch(c, rule: rule)) }
    if let tc = targetClause {
        rule.target = targetKind == "-g" ? .goto(tc.name) : try buildTarget(tc)
        if targetKind == "-g", !tc.raw.isEmpty { throw ParseLineError("-g \(tc.name) takes no options") }
    }
    return rule
}

func buildMatch(_ c: Clause, rule: Rule) throws(ParseLineError) -> Match {
    guard let items = c.items else { return .other(name: c.name, arguments: c.raw) }
    func once<T>(_ slot: inout T?, _ v: T, _ opt: String) throws(ParseLineError) {
        if slot != nil { throw ParseLineError("match '\(c.name)': \(opt) given twice") }
        slot = v
    }
    switch c.name {
    case "tcp", "udp":
        var m = PortMatch()
        for it in items {
            switch it.name {
            case "--sport", "--source-port", "--dport", "--destination-port":
                guard let r = parsePortRange(it.values[0]) else { throw ParseLineError("'\(it.values[0])' is not a port or port range (a:b) for \(it.name)") }
                if it.name == "--sport" || it.name == "--source-port" {
                    try once(&m.sourcePort, Negatable(r, negated: it.negated), "--sport")
                } else {
                    try once(&m.destinationPort, Negatable(r, negated: it.negated), "--dport")
                }
            case "--tcp-flags":
                guard let mask = TCPFlags(list: it.values[0]), let comp = TCPFlags(list: it.values[1]) else {
                    throw ParseLineError("bad --tcp-flags '\(it.values.joined(separator: " "))'")
                }
                try once(&m.flags, Negatable(TCPFlagsTest(mask: mask, comparison: comp), negated: it.negated), "--tcp-flags")
            case "--syn":
                try once(&m.flags, Negatable(TCPFlagsTest.syn, negated: it.negated), "--syn")
            default:
                return .other(name: c.name, arguments: c.raw)  // --tcp-option: kept verbatim
            }
        }
        if let pr = rule.proto?.value, !(rule.proto!.negated), pr.description != c.name {
            throw ParseLineError("match '\(c.name)' needs '-p \(c.name)' (rule has -p \(pr))")
        }
        return c.name == "tcp" ? .tcp(m) : .udp(m)
    case "multiport":
        guard items.count == 1, let it = items.first else {
            throw ParseLineError("match 'multiport' takes exactly one of --sports, --dports, --ports")
        }
        let dir: MultiportMatch.Direction = switch it.name {
        case "--sports", "--source-ports": .source
        case "--dports", "--destination-ports": .destination
        default: .either
        }
        var ports: [PortRange] = []
        for part in it.values[0].split(separator: ",", omittingEmptySubsequences: false) {
            guard let r = parsePortRange(String(part)) else { throw ParseLineError("'\(part)' is not a port or port range in \(it.name)") }
            ports.append(r)
        }
        return .multiport(MultiportMatch(dir, ports, negated: it.negated))
    case "owner":
        var o = OwnerMatch()
        for it in items {
            switch it.name {
            case "--uid-owner", "--gid-owner":
                guard let r = parseIDRange(it.values[0]) else {
                    throw ParseLineError("'\(it.values[0])' for \(it.name) is not a numeric id or id range (user and group names are not resolved)")
                }
                if it.name == "--uid-owner" { try once(&o.uid, Negatable(r, negated: it.negated), it.name) } else { try once(&o.gid, Negatable(r, negated: it.negated), it.name) }
            case "--socket-exists":
                try once(&o.socketExists, Negatable(true, negated: it.negated), it.name)
            default:
                o.supplementaryGroups = true
            }
        }
        return .owner(o)
    case "mark":
        guard items.count == 1, let it = items.first, let (v, m) = parseMarkMask(it.values[0]) else {
            throw ParseLineError("match 'mark' needs one '--mark value[/mask]'")
        }
        return .mark(MarkMatch(value: v, mask: m, negated: it.negated))
    case "comment":
        guard items.count == 1, let it = items.first, !it.negated else { throw ParseLineError("match 'comment' needs one '--comment text'") }
        guard it.values[0].utf8.count <= 255 else { throw ParseLineError("comment longer than 255 bytes") }
        return .comment(it.values[0])
    default:
        return .other(name: c.name, arguments: c.raw)
    }
}

func buildTarget(_ c: Clause) throws(ParseLineError) -> Target {
    guard let items = c.items else { return .other(name: c.name, arguments: c.raw) }
    var opts: [String: String] = [:]
    var order: [String] = []
    for it in items {
        if opts[it.name] != nil { throw ParseLineError("\(c.name): \(it.name) given twice") }
        opts[it.name] = it.values.first ?? ""
        order.append(it.name)
    }
    func mark(_ s: String, _ opt: String, defaultMask: UInt32 = .max) throws(ParseLineError) -> (UInt32, UInt32) {
        guard let r = parseMarkMask(s, defaultMask: defaultMask) else { throw ParseLineError("\(c.name): '\(s)' is not value[/mask] for \(opt)") }
        return r
    }
    switch c.name {
    case "ACCEPT": return .accept
    case "DROP": return .drop
    case "RETURN": return .return
    case "REDIRECT":
        var ports: PortRange?
        if let s = opts["--to-ports"] {
            guard let r = parsePortRange(s, separators: ["-", ":"]) else { throw ParseLineError("REDIRECT: '\(s)' is not a port or range N-M for --to-ports") }
            ports = r
        }
        return .redirect(ports: ports, random: opts["--random"] != nil)
    case "TPROXY":
        guard let ps = opts["--on-port"] else { throw ParseLineError("TPROXY needs --on-port") }
        guard let port = parsePort(Substring(ps)) else { throw ParseLineError("TPROXY: '\(ps)' is not a port") }
        var ip = IPAddress.v4(0)
        if let s = opts["--on-ip"] {
            guard let a = IPAddress(s) else { throw ParseLineError("TPROXY: '\(s)' is not an address for --on-ip") }
            ip = a
        }
        var (v, m): (UInt32, UInt32) = (0, 0)
        if let s = opts["--tproxy-mark"] { (v, m) = try mark(s, "--tproxy-mark") }
        return .tproxy(port: port, ip: ip, mark: v, mask: m)
    case "MARK", "CONNMARK":
        let markOpts = ["--set-xmark", "--set-mark", "--and-mark", "--or-mark", "--xor-mark"]
        let given = order.filter { markOpts.contains($0) }
        let isSave = opts["--save-mark"] != nil, isRestore = opts["--restore-mark"] != nil
        if c.name == "CONNMARK", isSave || isRestore {
            guard given.isEmpty, !(isSave && isRestore) else { throw ParseLineError("CONNMARK: one action only") }
            let all = try opts["--mask"].map { (s: String) throws(ParseLineError) in try mark(s, "--mask").0 } ?? .max
            let nf = try opts["--nfmask"].map { (s: String) throws(ParseLineError) in try mark(s, "--nfmask").0 } ?? all
            let ct = try opts["--ctmask"].map { (s: String) throws(ParseLineError) in try mark(s, "--ctmask").0 } ?? all
            return .connmark(isSave ? .save(nfmask: nf, ctmask: ct) : .restore(nfmask: nf, ctmask: ct))
        }
        guard given.count == 1, let opt = given.first, order.count == 1 else {
            throw ParseLineError("\(c.name) needs exactly one of \(markOpts.joined(separator: ", "))" + (c.name == "CONNMARK" ? ", --save-mark, --restore-mark" : ""))
        }
        let s = opts[opt]!
        let (v, m): (UInt32, UInt32)
        switch opt {
        case "--set-xmark": (v, m) = try mark(s, opt)
        case "--set-mark":
            let (a, b) = try mark(s, opt)
            (v, m) = (a, a | b)
        case "--and-mark": (v, m) = (0, ~(try mark(s, opt).0))
        case "--or-mark":
            let a = try mark(s, opt).0
            (v, m) = (a, a)
        default: (v, m) = (try mark(s, opt).0, 0)
        }
        return c.name == "MARK" ? .mark(value: v, mask: m) : .connmark(.setXmark(value: v, mask: m))
    default:
        return .other(name: c.name, arguments: c.raw)
    }
}
