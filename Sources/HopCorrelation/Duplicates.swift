import HopCapture
import HopHTTP

/// Copies of one direct (not intercepted) request: the same method, target and Host from one
/// client to one server, each within `window` of the one before, with no proxy hop to explain
/// them. A group of more than `maxCopies` copies is a client repeating a request (load), not a
/// duplicate. One job of the correlator's: it sees the direct requests as they come.
struct DuplicateDetector {
    let window: Int64
    let maxCopies: Int
    /// The groups found so far (sorted and explained by `finish`).
    private(set) var groups: [DuplicateGroup] = []
    /// The last copy of each request seen: its start, its group, its chain.
    private var last: [DupKey: (start: Int64, group: Int?, chain: Int)] = [:]

    init(window: Int64, maxCopies: Int) {
        self.window = window
        self.maxCopies = maxCopies
    }

    /// Notes a direct request (its exchange, when it started, its chain id): the evidence line
    /// when it is a copy of one seen just before (up to `maxCopies` copies), else nil.
    mutating func observe(_ x: HTTPExchange, start: Int64, chain id: Int) -> String? {
        guard window > 0, x.request != nil else { return nil }
        // Fields read in place (`x.request!.…`): binding the request would retain and release its
        // storage (it copied every field before requests kept them in shared storage).
        let key = DupKey(client: x.client.address, server: x.server,
                         method: x.request!.method, target: x.request!.target, host: x.request!.host)
        var group: Int? = nil
        var note: String? = nil
        let previous = last[key]
        // Exchanges arrive as their responses complete, so a copy may have started before the last one seen.
        if let previous, abs(start - previous.start) <= window {
            let g: Int
            if let existing = previous.group {
                g = existing
            } else {
                g = groups.count
                groups.append(DuplicateGroup(method: key.method, target: key.target, host: key.host, client: key.client,
                                             server: key.server, chainIDs: [previous.chain], starts: [previous.start],
                                             copies: 1, explanation: "", isRepeatedStream: false))
            }
            groups[g].copies += 1
            if groups[g].chainIDs.count < 1000 {
                groups[g].chainIDs.append(id)
                groups[g].starts.append(start)
            }
            if groups[g].copies <= maxCopies {
                note = "copy \(groups[g].copies) of the same request from \(key.client) within \(window / 1_000_000) ms, with no proxy hop to explain it"
            }
            group = g
        }
        last[key] = (max(start, previous?.start ?? start), group, id)
        if last.count > 100_000 { last.removeAll(keepingCapacity: true) }
        return note
    }

    /// The capture ended: the groups in order of their first copy, each told apart (a
    /// duplicate, or a client's repeated stream) and explained under `rules`.
    mutating func finish(rules: any RuleOracle) {
        groups.sort { ($0.starts.first ?? 0) < ($1.starts.first ?? 0) }
        for i in groups.indices {
            groups[i].isRepeatedStream = groups[i].copies > maxCopies
            groups[i].explanation = Self.explanation(groups[i], rules: rules)
        }
    }

    static func explanation(_ g: DuplicateGroup, rules: any RuleOracle) -> String {
        let n = g.copies
        let span = (g.starts.last ?? 0) - (g.starts.first ?? 0)
        if g.isRepeatedStream {
            return "\(g.method) \(g.target) was sent \(n) times by \(g.client) to \(g.server), each within the duplicate window of the one before: a client repeating the request (load), more copies than a proxy makes; not counted as duplicates"
        }
        var s = "\(g.method) \(g.target) was sent \(n) times by \(g.client) to \(g.server) within \(Timestamp.duration(span))"
        if rules is NoRules {
            s += ", and no interception rules are in force: these are separate requests from the client (a genuine duplicate), not proxy copies"
        } else {
            s += ", and the rules (\(rules.name)) do not intercept that connection: no proxy hop explains the copies, the client sent them"
        }
        return s
    }

    private struct DupKey: Hashable {
        var client: IPAddress
        var server: Endpoint
        var method: String
        var target: String
        var host: String?
        /// FNV-1a over the strings, so hashing feeds one word instead of SipHashing each string.
        var fingerprint: UInt64

        init(client: IPAddress, server: Endpoint, method: String, target: String, host: String?) {
            self.client = client
            self.server = server
            self.method = method
            self.target = target
            self.host = host
            var h: UInt64 = 0xcbf2_9ce4_8422_2325
            Self.mix(method, into: &h)
            Self.mix(target, into: &h)
            Self.mix(host ?? "", into: &h)
            h ^= client.low &* 0x9e37_79b9_7f4a_7c15 ^ client.high
            h ^= UInt64(server.port) << 48 ^ server.address.low
            fingerprint = h
        }

        /// FNV-1a over the string's bytes, then a separator.
        @inline(__always)
        static func mix(_ s: String, into h: inout UInt64) {
            var s = s
            s.withUTF8 { bytes in
                for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
            }
            h = (h ^ 0xff) &* 0x100_0000_01b3
        }

        func hash(into hasher: inout Hasher) { hasher.combine(fingerprint) }
        static func == (a: DupKey, b: DupKey) -> Bool {
            a.fingerprint == b.fingerprint && a.client == b.client && a.server == b.server && a.method == b.method
                && a.target == b.target && a.host == b.host
        }
    }
}
