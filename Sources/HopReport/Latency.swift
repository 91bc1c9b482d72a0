import HopCorrelation
import HopHTTP
import Histogram

/// What the sidecar costs, as distributions: for every chain its client's time (request start
/// to response end on the downstream hop), the app's time (the same on the upstream hop that
/// answered), and the time the proxy added before the app (downstream request start to upstream
/// request start) and after it (upstream response end to downstream response end); overall and
/// per route (method and target with numbers and ids folded: `GET /users/{id}`).
///
/// Kept as HdrHistograms (3 significant digits overall, 2 per route; memory bounded whatever the
/// capture's length),
/// fed chain by chain as a report streams. A pairing stated below 0.9 is ambiguous: each
/// distribution says how many of its samples come from one.
public struct LatencyModel: Sendable {
    /// The measures of a chain, in ns.
    public enum Measure: String, CaseIterable, Sendable {
        /// Downstream request start to downstream response end: what the client waited.
        case client
        /// Upstream request start to upstream response end: what the app took.
        case app
        /// Downstream request start to upstream request start.
        case proxyBefore
        /// Upstream response end to downstream response end.
        case proxyAfter
        /// Both: the client's time less the app's.
        case proxyAdded
    }

    /// One group of chains (all, or a route): a histogram per measure.
    public struct Group: Sendable {
        /// A fixed range (1 ns to an hour: a value beyond is recorded as an hour), not
        /// auto-resized: the histogram resized itself at every new maximum, most of the cost of
        /// a report. Overall 3 significant digits (33,000 counts), per route 2 (3,800): a
        /// capture of 200 routes stays within 15 MB.
        var histograms: [Histogram<UInt32>]

        init(digits: SignificantDigits) {
            histograms = Measure.allCases.map { _ in
                Histogram(lowestDiscernibleValue: 1, highestTrackableValue: LatencyModel.highest, numberOfSignificantValueDigits: digits)
            }
        }
        /// Samples per measure that come from ambiguous pairings.
        public fileprivate(set) var ambiguous = [Int](repeating: 0, count: Measure.allCases.count)
        /// Values below zero (capture points whose clocks differ), recorded as 0.
        public fileprivate(set) var negative = 0
        /// Chains counted: each gives `client` (multi-hop ones every measure), so it is that count.
        public var chains: Int { count(.client) }

        mutating func record(_ m: Measure, _ ns: Int64, ambiguous isAmbiguous: Bool) {
            let i = m.index
            if ns < 0 { negative += 1 }
            histograms[i].record(UInt64(min(max(0, ns), Int64(LatencyModel.highest))))
            if isAmbiguous { ambiguous[i] += 1 }
        }

        /// How many samples `m` has.
        public func count(_ m: Measure) -> Int { Int(histograms[m.index].totalCount) }
        /// The value at percentile `p` (0…100) of `m`, in ns: the sample of rank ⌈p·n/100⌉ in
        /// sorted order, rounded up within the histogram's precision (at most the largest sample;
        /// `p` = 100: the largest sample); nil without samples.
        public func percentile(_ m: Measure, _ p: Double) -> Int64? {
            let h = histograms[m.index]
            guard h.totalCount > 0 else { return nil }
            return Int64(clamping: h.valueAtPercentile(p))  // 100: the largest value recorded, exactly
        }
        /// `percentiles`' values of `m` (p50, p90, p99, p99.9, max; nil without samples), each as
        /// `percentile(_:_:)` gives it, in one pass over the histogram's recorded values (a
        /// pass per percentile scanned up to 33,000 slots each: most of a small report's time).
        public func percentiles(_ m: Measure) -> [Int64?] {
            let h = histograms[m.index]
            let total = h.totalCount
            let ps = LatencyModel.percentiles.map(\.value)
            guard total > 0 else { return ps.map { _ in nil } }
            // The count each percentile reaches, as `valueAtPercentile` works it out.
            let targets = ps.map { p -> UInt64 in
                p >= 100 ? total : Swift.max(1, UInt64(((Swift.min(Swift.max(p.nextDown, 0), 100) * Double(total)) / 100).rounded(.up)))
            }
            var out = [Int64?](repeating: nil, count: ps.count)
            var next = 0
            for v in h.recordedValues() {
                while next < targets.count && targets[next] <= v.totalCountToThisValue {
                    out[next] = Int64(clamping: ps[next] >= 100 ? h.maxRecorded : Swift.min(v.value, h.maxRecorded))
                    next += 1
                }
                if next == targets.count { break }
            }
            return out
        }

        /// Samples of `m` from ambiguous pairings.
        public func ambiguousSamples(_ m: Measure) -> Int { ambiguous[m.index] }
    }

    /// The percentiles a report states.
    public static let percentiles: [(name: String, value: Double)] = [("p50", 50), ("p90", 90), ("p99", 99), ("p99.9", 99.9), ("max", 100)]
    /// Routes kept apart; the rest are counted together as `(other routes)`.
    public static let routeLimit = 200

    /// The largest value a histogram tells apart: an hour, in ns.
    static let highest: UInt64 = 3_600_000_000_000

    public private(set) var overall = Group(digits: .three)
    /// Per route, in the order first seen.
    public private(set) var routes: [(route: String, group: Group)] = []
    private var routeIndex: [String: Int] = [:]
    /// The route of each method and target seen (a cache: forgotten past 10,000 targets).
    private var rawIndex: [RawRoute: Int] = [:]
    private struct RawRoute: Hashable {
        var method: String?
        var target: String?
    }

    public init() {}

    /// Counts a chain: complete ones only (an incomplete chain has no client's time to state).
    public mutating func add(_ c: RequestChain) {
        guard !c.isIncomplete, !c.hops.isEmpty else { return }
        // An encrypted HTTP/2 connection stands for its requests, it is none of them.
        if c.isEncryptedHTTP2Connection { return }
        let last = c.hops.count - 1
        guard let ds = c.hops[0].exchange.requestFirstTimestamp, let de = c.hops[0].exchange.responseLastTimestamp else { return }
        if c.timedByTheAppOnly {
            // A plaintext copy whose client's copy is inside an encrypted HTTP/2 connection:
            // the app's time only.
            record(.app, de &- ds, route: routeSlot(method: c.method, target: c.target), ambiguous: false)
            return
        }
        // The chain's method and target: an encrypted downstream copy's are its plaintext copy's.
        let i = routeSlot(method: c.method, target: c.target)
        // Ambiguous as the reports state it: the confidence to three decimals, below 0.9.
        let ambiguous = c.pairing != nil && (c.confidence * 1000).rounded() / 1000 < 0.9
        record(.client, de &- ds, route: i, ambiguous: ambiguous)
        if last >= 1, let us = c.hops[last].exchange.requestFirstTimestamp, let ue = c.hops[last].exchange.responseLastTimestamp {
            record(.app, ue &- us, route: i, ambiguous: ambiguous)
            record(.proxyBefore, us &- ds, route: i, ambiguous: ambiguous)
            record(.proxyAfter, de &- ue, route: i, ambiguous: ambiguous)
            record(.proxyAdded, (de &- ds) &- (ue &- us), route: i, ambiguous: ambiguous)
        }
    }

    /// Counts a direct request handed over as its exchange (no chain made): its client's time.
    public mutating func add(direct x: HTTPExchange) {
        guard let ds = x.requestFirstTimestamp, let de = x.responseLastTimestamp else { return }
        let i = routeSlot(method: x.request?.method, target: x.request?.target)
        record(.client, de &- ds, route: i, ambiguous: false)
    }

    private mutating func record(_ m: Measure, _ ns: Int64, route i: Int, ambiguous: Bool) {
        overall.record(m, ns, ambiguous: ambiguous)
        routes[i].group.record(m, ns, ambiguous: ambiguous)
    }

    /// The index in `routes` of a method and target's route (made on first sight).
    private mutating func routeSlot(method: String?, target: String?) -> Int {
        // Requests come in runs of one route: the last one is compared before any hashing.
        if let l = lastRaw, l.raw.target == target, l.raw.method == method { return l.slot }
        let raw = RawRoute(method: method, target: target)
        if let i = rawIndex[raw] {
            lastRaw = (raw, i)
            return i
        }
        let route = Self.route(method: method, target: target)
        let i: Int
        if let known = routeIndex[route] {
            i = known
        } else {
            let name = routes.count < Self.routeLimit ? route : "(other routes)"
            if let other = routeIndex[name] {
                i = other
            } else {
                i = routes.count
                routes.append((name, Group(digits: .two)))
                routeIndex[name] = i
            }
        }
        if rawIndex.count >= 10_000 { rawIndex.removeAll(keepingCapacity: true) }
        rawIndex[raw] = i
        lastRaw = (raw, i)
        return i
    }
    private var lastRaw: (raw: RawRoute, slot: Int)?

    /// `METHOD /path` with the query left out and every path segment that is a number or an id
    /// (digits; a UUID; hex or letters-and-digits of 16 or more with a digit) folded to `{id}`.
    public static func route(method: String?, target: String?) -> String {
        let m = method ?? "?"
        guard let t = target else { return m + " ?" }
        let path = t.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? t
        let folded = path.split(separator: "/", omittingEmptySubsequences: false).map { seg -> Substring in
            isID(seg) ? "{id}" : seg
        }.joined(separator: "/")
        return m + " " + folded
    }

    static func isID(_ s: Substring) -> Bool {
        guard !s.isEmpty else { return false }
        let u = s.utf8
        let digits = u.filter { $0 >= 0x30 && $0 <= 0x39 }.count
        if digits == u.count { return true }
        guard digits > 0 else { return false }
        let hexOrDash = u.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x66) || $0 == 0x2d }
        if hexOrDash && u.count == 36 && u.filter({ $0 == 0x2d }).count == 4 { return true }  // a UUID
        let alnum = u.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7a) || $0 == 0x2d || $0 == 0x5f }
        return alnum && u.count >= 16
    }
}

extension LatencyModel.Measure {
    var index: Int {
        switch self {
        case .client: 0
        case .app: 1
        case .proxyBefore: 2
        case .proxyAfter: 3
        case .proxyAdded: 4
        }
    }
}

extension JSONReport {
    /// `"latency": {"overall": GROUP, "routes": [{"route": "GET /users/{id}", …GROUP}]}`, GROUP
    /// being `{"chains": n, "negative": n, "client": {"count", "ambiguous", "p50Ns", "p90Ns",
    /// "p99Ns", "p99.9Ns", "maxNs"}, "app": …, "proxyBefore": …, "proxyAfter": …, "proxyAdded": …}`
    /// (a measure without samples has count 0 and null percentiles).
    public static func write(latency l: LatencyModel, to w: JSONWriter) {
        w.beginObject()
        w.key("overall")
        write(group: l.overall, to: w)
        w.key("routes")
        w.beginArray()
        for r in l.routes {
            w.beginObject()
            w.field("route", r.route)
            writeMembers(group: r.group, to: w)
            w.endObject()
        }
        w.endArray()
        w.endObject()
    }

    static func write(group g: LatencyModel.Group, to w: JSONWriter) {
        w.beginObject()
        writeMembers(group: g, to: w)
        w.endObject()
    }

    static func writeMembers(group g: LatencyModel.Group, to w: JSONWriter) {
        w.field("chains", g.chains)
        w.field("negative", g.negative)
        for m in LatencyModel.Measure.allCases {
            w.key(m.rawValue)
            w.beginObject()
            w.field("count", g.count(m))
            w.field("ambiguous", g.ambiguousSamples(m))
            for (k, v) in g.percentiles(m).enumerated() {
                w.key(LatencyModel.percentiles[k].name + "Ns")
                w.int(v)
            }
            w.endObject()
        }
    }
}
