import HopCorrelation
import HopHTTP

/// Requests and the time the proxy added over the capture's time: chains counted into buckets
/// by their first request's start (1 s wide, doubled whenever the capture outgrows
/// `maxBuckets`, so memory stays bounded whatever its length).
public struct Timeline: Sendable {
    public struct Bucket: Sendable, Equatable {
        /// Chains whose first request started in the bucket.
        public var requests = 0
        /// Of them, those whose proxy added a time (multi-hop, complete).
        public var proxied = 0
        /// The sum and the largest of the time the proxy added, ns.
        public var proxyAddedSum: Int64 = 0
        public var proxyAddedMax: Int64 = 0
        /// Chains whose client saw a 5xx.
        public var serverErrors = 0

        /// The mean time the proxy added (nil when none did).
        public var proxyAddedMean: Int64? { proxied > 0 ? proxyAddedSum / Int64(proxied) : nil }

        mutating func merge(_ o: Bucket) {
            requests += o.requests
            proxied += o.proxied
            proxyAddedSum &+= o.proxyAddedSum
            proxyAddedMax = max(proxyAddedMax, o.proxyAddedMax)
            serverErrors += o.serverErrors
        }
    }

    /// Buckets at most.
    public static let maxBuckets = 600
    /// The start of the first bucket (ns since the epoch); nil before the first chain.
    public private(set) var origin: Int64?
    /// A bucket's width, ns (1 s, doubled as needed).
    public private(set) var width: Int64 = 1_000_000_000
    public private(set) var buckets: [Bucket] = []

    public init() {}

    public mutating func add(_ c: RequestChain) {
        guard !c.hops.isEmpty, let t = TextReport.chainOrigin(c) else { return }
        let i = slot(t)
        buckets[i].requests += 1
        if let p = c.proxyAddedNs {
            buckets[i].proxied += 1
            buckets[i].proxyAddedSum &+= p
            buckets[i].proxyAddedMax = max(buckets[i].proxyAddedMax, p)
        }
        if let s = c.status, s >= 500, s <= 599 { buckets[i].serverErrors += 1 }
    }

    /// Counts a direct request handed over as its exchange (no chain made).
    public mutating func add(direct x: HTTPExchange) {
        guard let t = x.requestFirstTimestamp else { return }
        let i = slot(t)
        buckets[i].requests += 1
        if let s = x.response?.status, s >= 500, s <= 599 { buckets[i].serverErrors += 1 }
    }

    /// The bucket index of time `t`, made (and the buckets widened) as needed.
    private mutating func slot(_ t: Int64) -> Int {
        if origin == nil {
            origin = t - t % width
            buckets = [Bucket()]
        }
        while t < origin! {
            // Earlier than the first bucket: buckets in front (whole ones, widening if needed).
            let missing = Int((origin! - t + width - 1) / width)
            if buckets.count + missing <= Self.maxBuckets {
                buckets.insert(contentsOf: [Bucket](repeating: Bucket(), count: missing), at: 0)
                origin! -= Int64(missing) * width
            } else {
                widen()
            }
        }
        while (t - origin!) / width >= Int64(Self.maxBuckets) { widen() }
        let i = Int((t - origin!) / width)
        if i >= buckets.count { buckets.append(contentsOf: [Bucket](repeating: Bucket(), count: i - buckets.count + 1)) }
        return i
    }

    /// Twice the width: pairs of buckets merged.
    private mutating func widen() {
        // Aligned to the new width so that merged buckets stay whole.
        let newWidth = width * 2
        let newOrigin = origin! - ((origin! % newWidth) + newWidth) % newWidth
        var merged: [Bucket] = []
        for (i, b) in buckets.enumerated() {
            let j = Int((origin! + Int64(i) * width - newOrigin) / newWidth)
            while merged.count <= j { merged.append(Bucket()) }
            merged[j].merge(b)
        }
        origin = newOrigin
        width = newWidth
        buckets = merged
    }
}
