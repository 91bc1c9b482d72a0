import HopCapture
import HopCorrelation

/// A live capture that lost packets (the kernel's ring or hoptrace's queue was full) reports
/// chains missing a hop and requests without a response that the pod never caused: their
/// other copy, or their response, was among the packets lost. This notes the time span of
/// each incomplete chain and each unanswered request as they are reported, and at the end
/// counts those that overlap a loss window (issue 21, item 3).
public struct LossAttribution {
    /// Spans (ns) of incomplete chains and of unanswered requests, the first `limit` of each.
    private var incompleteSpans: [(Int64, Int64)] = []
    private var unansweredSpans: [(Int64, Int64)] = []
    public static let limit = 1 << 20
    /// A loss window counts for what lies this close to it (ns): a hop's copies and a
    /// response lie within a few hundred µs of one another on a pod, and the kernel's drop
    /// counter is read every 50 ms.
    public static let slack: Int64 = 250_000_000
    /// How long after its request's last byte a lost response is looked for (ns).
    public static let responseWait: Int64 = 1_000_000_000

    public init() {}

    public mutating func incompleteChain(from start: Int64, to end: Int64) {
        if incompleteSpans.count < Self.limit { incompleteSpans.append((start, end)) }
    }

    /// An incomplete chain: the span of its copies.
    public mutating func incompleteChain(_ chain: RequestChain) {
        var start = Int64.max, end = Int64.min
        for i in chain.hops.indices {
            let x = chain.hops[i].exchange
            if let t = x.requestFirstTimestamp ?? x.response?.firstTimestamp { start = min(start, t) }
            if let t = x.responseLastTimestamp ?? x.requestLastTimestamp { end = max(end, t) }
        }
        if start <= end { incompleteChain(from: start, to: end) }
    }

    public mutating func unansweredRequest(from start: Int64, to end: Int64) {
        if unansweredSpans.count < Self.limit { unansweredSpans.append((start, end + Self.responseWait)) }
    }

    /// What the loss explains.
    public struct Figures: Sendable, Equatable {
        /// Packets lost before analysis: the kernel's drops and the queue's.
        public var lostPackets = 0
        /// Loss windows (merged when close).
        public var windows = 0
        /// The first loss's start and the last one's end (ns), when there were losses.
        public var first: Int64?
        public var last: Int64?
        /// Incomplete chains and unanswered requests that overlap a loss window.
        public var incompleteChains = 0
        public var unansweredRequests = 0
        public init() {}
    }

    /// The chains and requests noted that overlap `windows` (widened by `slack`).
    public func figures(windows raw: [LossWindow], lostPackets: Int) -> Figures {
        var f = Figures()
        f.lostPackets = lostPackets
        // Merge the windows widened by the slack.
        var merged: [(Int64, Int64)] = []
        for w in raw.sorted(by: { $0.start < $1.start }) {
            let s = w.start - Self.slack, e = w.end + Self.slack
            if let last = merged.last, s <= last.1 {
                merged[merged.count - 1].1 = max(last.1, e)
            } else {
                merged.append((s, e))
            }
        }
        f.windows = merged.count
        f.first = raw.map(\.start).min()
        f.last = raw.map(\.end).max()
        guard !merged.isEmpty else { return f }
        func overlaps(_ span: (Int64, Int64)) -> Bool {
            // The last window starting at or before the span's end.
            var lo = 0, hi = merged.count
            while lo < hi {
                let mid = (lo + hi) >> 1
                if merged[mid].0 <= span.1 { lo = mid + 1 } else { hi = mid }
            }
            return lo > 0 && merged[lo - 1].1 >= span.0
        }
        f.incompleteChains = incompleteSpans.reduce(0) { $0 + (overlaps($1) ? 1 : 0) }
        f.unansweredRequests = unansweredSpans.reduce(0) { $0 + (overlaps($1) ? 1 : 0) }
        return f
    }
}
