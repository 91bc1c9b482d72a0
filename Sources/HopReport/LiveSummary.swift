import HopCapture
import HopCorrelation

/// `watch --summary-interval SECONDS`: what the sidecar has cost since the watch began, on one
/// screen, between the per-exchange lines: every `interval` of capture time (the clock of the
/// packets, so a file replays as it was captured) and once more when the watch ends (Ctrl-C,
/// SIGTERM, -c, the end of a file). Fed the chains as `watch` completes them; the latency
/// table, the routes (worst first) and the count of each kind of problem, as `analyze`'s text
/// report says them.
public struct LiveSummary: Sendable {
    /// Capture time between two summaries, ns.
    public let interval: Int64
    public private(set) var latency = LatencyModel()
    public private(set) var problems = ProblemModel()
    public private(set) var chains = 0
    /// Capture time of the first chain and of the last one seen.
    public private(set) var first: Int64?
    public private(set) var last: Int64?
    private var nextDue: Int64?

    /// Routes in the table.
    public static let routeLimit = 5

    public init(intervalSeconds: Double) {
        interval = max(1_000_000, Int64(intervalSeconds * 1e9))
    }

    /// Counts a chain; true when a summary is due (an interval has passed since the last).
    public mutating func add(_ c: RequestChain) -> Bool {
        chains += 1
        latency.add(c)
        problems.add(c)
        guard let t = c.hops.indices.lazy.compactMap({ c.hops[$0].responseEnd ?? c.hops[$0].requestStart }).max() else { return false }
        if first == nil { first = t }
        last = max(last ?? t, t)
        if nextDue == nil { nextDue = t + interval }
        guard let due = nextDue, t >= due else { return false }
        // The next one an interval after this one (a quiet spell does not queue summaries up).
        nextDue = t + interval
        return true
    }

    /// The summary: a rule line saying how long it covers, the latency table, the worst routes,
    /// the problems counted; `final` for the one printed when the watch ends.
    public func render(style st: TextStyle = .plain, final: Bool = false) -> [String] {
        let span = first.flatMap { f in last.map { $0 - f } } ?? 0
        let title = " \(final ? "summary" : "so far"): \(TextReport.plural(chains, "chain")) in \(Timestamp.duration(span)) "
        let rule = String(repeating: "─", count: 2) + title + String(repeating: "─", count: max(2, st.width - title.count - 2))
        var out = [st.paint(rule, .cyan)]
        let lat = TextReport.latencyBlock(latency, style: st)
        out.append(contentsOf: lat.isEmpty ? ["latency  no complete chain yet"] : lat)
        out.append(contentsOf: TextReport.routeTable(latency, limit: Self.routeLimit, style: st))
        let sections = problems.sections(summary: AnalysisSummary(), duplicates: [], orphans: [], latency: latency)
        if sections.isEmpty {
            out.append(st.paint("problems", .bold) + " none so far")
        } else {
            let list = sections.map { "\($0.kind.title) \($0.countText)" + ($0.items.first.map { ": " + $0.text } ?? "") }
            var lines = st.wrap(list.joined(separator: "; "), first: "problems ", indent: 9)
            lines[0] = st.paint(lines[0], prefix: 8, .bold)
            out.append(contentsOf: lines)
        }
        out.append(st.paint(String(repeating: "─", count: st.width), .cyan))
        return out
    }
}
