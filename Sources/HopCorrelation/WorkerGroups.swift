/// How the proxy in this capture spreads requests over its upstream connections, learned from
/// the capture itself.
///
/// Real sidecars pool upstream connections: Envoy, HAProxy and nginx each run a few workers
/// (threads or processes); a worker owns the client connections it accepted and its own pool
/// of idle upstream connections, and hands any idle one of them to its next request. So a
/// client connection's requests go out on many upstream connections, but only on those of
/// its worker: downstream and upstream connections fall into blocks, one per worker, and
/// within a worker requests go out in the order they arrived. hoptrace's own proxy is the
/// extreme case (one upstream connection per client connection at a time).
///
/// The blocks are found without assuming any of that, and without using the blocks
/// themselves (which would confirm whatever split came first): each downstream copy spreads
/// one unit over its candidates by timing alone (exp(-cost/T), the soft form of the
/// timing-only matching), summed per (downstream connection, upstream connection); that
/// matrix is split in two by its
/// second singular vectors (spectral co-clustering), and a split is kept only when the
/// certain pairings (one candidate, or an exact key on both copies), which do not depend on
/// the split, fall inside its blocks (≥ 95% of at least 32). Each block is split again the
/// same way. A split is used once two regroupings in a row find it. A proxy without workers
/// (or one that hands connections across them) yields no split, and pairing stays on timing
/// alone.
///
/// Connections are named by their slots (their ids' numbers: small integers, in the order the
/// capture opened them), so that the per-candidate question (`differ`) is an array read, not
/// a hash lookup.
struct WorkerGroups {
    /// A connection's slot (`Slot.value`).
    typealias Slot = Int
    struct Link: Hashable {
        var down: Slot
        var up: Slot
    }

    /// Timing-only evidence per connection pair (see `observe`), in the order the pairs first
    /// appeared: the sums below run in that order, so a capture groups the same way on every
    /// run (a dictionary's order changes from process to process, and with it the last bits of
    /// the floating-point sums: the same capture numbered its groups differently run to run).
    struct LinkCounts {
        /// Open addressing, linear probing: a link's place in `links` + 1 (0: empty). A
        /// `Dictionary<Link, Int>` hashed every candidate of every request with SipHash (about
        /// 320 instructions an update: 5% of `watch` at 64 identical requests in flight).
        private var table = [Int32](repeating: 0, count: 1024)
        private(set) var links: [Link] = []
        private(set) var weights: [Double] = []
        var count: Int { links.count }

        @inline(__always) private static func hash(_ l: Link) -> Int {
            let k = UInt64(truncatingIfNeeded: l.down) &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(truncatingIfNeeded: l.up) &* 0xC2B2_AE3D_27D4_EB4F
            return Int(truncatingIfNeeded: k ^ (k >> 29))
        }

        mutating func add(_ link: Link, _ weight: Double) {
            let mask = table.count - 1
            var h = Self.hash(link) & mask
            while table[h] != 0 {
                let i = Int(table[h]) - 1
                if links[i] == link {
                    weights[i] += weight
                    return
                }
                h = (h + 1) & mask
            }
            links.append(link)
            weights.append(weight)
            table[h] = Int32(links.count)
            if links.count * 2 > table.count { rehash(table.count * 2) }
        }

        private mutating func rehash(_ size: Int) {
            table = [Int32](repeating: 0, count: size)
            let mask = size - 1
            for (i, l) in links.enumerated() {
                var h = Self.hash(l) & mask
                while table[h] != 0 { h = (h + 1) & mask }
                table[h] = Int32(i + 1)
            }
        }

        mutating func removeAll() {
            for i in table.indices { table[i] = 0 }
            links.removeAll(keepingCapacity: true)
            weights.removeAll(keepingCapacity: true)
        }
    }
    private var counts = LinkCounts()
    /// Certain pairings per connection pair (these validate a split).
    private var certain: [Link: Int] = [:]
    private(set) var certainPairings = 0
    /// The split in use (count 0: none, timing alone).
    private var used = Split.none
    /// Blocks in use (0: none, timing alone).
    var groupCount: Int { used.count }
    private var pairings = 0
    private var nextRegroup = 256

    /// Connections with fewer pairings than this stay outside the blocks (their rows are noise).
    static let minimumPairings = 12
    /// Certain pairings a split needs inside the block it splits, and the share of them it
    /// must keep within its halves. 32, not fewer: in a HAProxy run at 64 connections (one
    /// block in the truth) 8 certain pairings, made by connections that were busy together,
    /// confirmed a 3-way split at 1.3 s and every pairing after it went wrong (76.6% right,
    /// ECE 0.17); with 32 the same capture is 99.6% right, ECE 0.002, and a worker's block in
    /// the two-worker test (about 30 certain pairings) is no longer cut along its noise.
    static let minimumCertain = 32
    static let minimumAgreement = 0.95
    /// Connections considered at most (the busiest), and pairs counted at most.
    static let maximumConnections = 400
    static let maximumLinks = 200_000

    /// Timing-only evidence that these connections carried one request's two copies.
    mutating func observe(down: Slot, up: Slot, weight: Double) {
        if counts.count >= Self.maximumLinks {
            counts.removeAll()
            certain.removeAll(keepingCapacity: true)
        }
        counts.add(Link(down: down, up: up), weight)
    }

    /// A pairing made (certain: one candidate, or an exact key on both copies).
    mutating func record(down: Slot, up: Slot, certain isCertain: Bool) {
        let link = Link(down: down, up: up)
        if isCertain {
            certain[link, default: 0] += 1
            certainPairings += 1
        }
        pairings += 1
        if pairings >= nextRegroup {
            nextRegroup = pairings < 1024 ? pairings * 2 : pairings + 1024
            regroup()
        }
    }

    /// Whether both connections belong to known, different worker groups.
    @inline(__always)
    func differ(down: Slot, up: Slot) -> Bool {
        guard down < used.down.count, up < used.up.count else { return false }
        let a = used.down[down], b = used.up[up]
        return a >= 0 && b >= 0 && a != b
    }

    func group(down: Slot) -> Int? {
        guard down < used.down.count, used.down[down] >= 0 else { return nil }
        return Int(used.down[down])
    }

    /// The evidence of one regrouping, over the connections it considers (`rows`, `cols`):
    /// each link as a pair of positions in them, found once (not once per split).
    private struct Evidence {
        var rows: [Slot], cols: [Slot]
        /// Timing evidence: row position, column position, weight (in `counts`' order).
        var ti: [Int32] = [], tj: [Int32] = [], tw: [Double] = []
        /// Certain pairings: row position, column position, count.
        var ci: [Int32] = [], cj: [Int32] = [], cn: [Int] = []
    }

    mutating func regroup() {
        var rowTotals: [Slot: Double] = [:]
        var colTotals: [Slot: Double] = [:]
        for (l, n) in zip(counts.links, counts.weights) {
            rowTotals[l.down, default: 0] += n
            colTotals[l.up, default: 0] += n
        }
        func busiest(_ t: [Slot: Double]) -> [Slot] {
            let kept = t.filter { $0.value >= Double(Self.minimumPairings) }
            return kept.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }
                .prefix(Self.maximumConnections).map(\.key)
        }
        var e = Evidence(rows: busiest(rowTotals), cols: busiest(colTotals))
        var rowPos: [Slot: Int32] = [:], colPos: [Slot: Int32] = [:]
        for (i, r) in e.rows.enumerated() { rowPos[r] = Int32(i) }
        for (j, c) in e.cols.enumerated() { colPos[c] = Int32(j) }
        for (l, n) in zip(counts.links, counts.weights) {
            if let i = rowPos[l.down], let j = colPos[l.up] { e.ti.append(i); e.tj.append(j); e.tw.append(n) }
        }
        for (l, n) in certain {
            if let i = rowPos[l.down], let j = colPos[l.up] { e.ci.append(i); e.cj.append(j); e.cn.append(n) }
        }
        var blocks: [([Int], [Int])] = []
        Self.split(Array(e.rows.indices), Array(e.cols.indices), depth: 0, evidence: e, into: &blocks)
        guard blocks.count > 1 else {
            proposal = nil
            used = .none
            return
        }
        var split = Split(count: blocks.count,
                          down: [Int32](repeating: -1, count: (e.rows.max() ?? -1) + 1),
                          up: [Int32](repeating: -1, count: (e.cols.max() ?? -1) + 1))
        for (g, b) in blocks.enumerated() {
            for d in b.0 { split.down[e.rows[d]] = Int32(g) }
            for u in b.1 { split.up[e.cols[u]] = Int32(g) }
        }
        // Used only once the regrouping before found the same blocks: one regrouping's split
        // can be the noise of a busy moment. In an mTLS run at 8 connections (one block in the
        // truth, encrypted copies with no key to make pairings certain) the regrouping at 2,048
        // pairings found 3 blocks, the next none; the ~100 ms between paired 543 requests
        // wrongly at confidence >= 0.99 (97.4% right in all, ECE 0.019).
        let confirmed = proposal.map { split.sameBlocks(as: $0) } ?? false
        proposal = split
        used = confirmed ? split : .none
    }

    /// Blocks found by one regrouping: their number and each slot's block (-1: outside), as
    /// long as the highest slot grouped.
    private struct Split {
        var count: Int
        var down: [Int32]
        var up: [Int32]
        static let none = Split(count: 0, down: [], up: [])

        /// Whether the connections both splits placed are placed alike (the same partition,
        /// whatever the blocks' numbers), with as many blocks.
        func sameBlocks(as other: Split) -> Bool {
            guard count == other.count else { return false }
            var forward = [Int32](repeating: -1, count: count), backward = [Int32](repeating: -1, count: count)
            var shared = 0
            func agree(_ a: [Int32], _ b: [Int32]) -> Bool {
                for i in 0..<min(a.count, b.count) where a[i] >= 0 && b[i] >= 0 {
                    let x = Int(a[i]), y = Int(b[i])
                    if forward[x] < 0 && backward[y] < 0 {
                        forward[x] = Int32(y); backward[y] = Int32(x)
                    } else if forward[x] != Int32(y) || backward[y] != Int32(x) {
                        return false
                    }
                    shared += 1
                }
                return true
            }
            return agree(down, other.down) && agree(up, other.up) && shared > 0
        }
    }
    /// The last regrouping's split, whether used or not.
    private var proposal: Split?

    /// Splits the block of `rows` and `cols` (positions in the evidence's) in two while the
    /// certain pairings inside it agree, recursively.
    private static func split(_ rows: [Int], _ cols: [Int], depth: Int, evidence e: Evidence,
                              into blocks: inout [([Int], [Int])]) {
        guard depth < 8, rows.count >= 2, cols.count >= 2,
              let (downSide, upSide) = bisect(rows: rows, cols: cols, evidence: e) else {
            blocks.append((rows, cols))
            return
        }
        // Validation by the certain pairings inside this block.
        var rowSide = [Int8](repeating: -1, count: e.rows.count), colSide = [Int8](repeating: -1, count: e.cols.count)
        for (k, r) in rows.enumerated() { rowSide[r] = downSide[k] ? 1 : 0 }
        for (k, c) in cols.enumerated() { colSide[c] = upSide[k] ? 1 : 0 }
        var inside = 0, agree = 0
        for k in e.ci.indices {
            let a = rowSide[Int(e.ci[k])], b = colSide[Int(e.cj[k])]
            guard a >= 0, b >= 0 else { continue }
            inside += e.cn[k]
            if a == b { agree += e.cn[k] }
        }
        let a = (rows.filter { rowSide[$0] == 1 }, cols.filter { colSide[$0] == 1 })
        let b = (rows.filter { rowSide[$0] != 1 }, cols.filter { colSide[$0] != 1 })
        guard inside >= Self.minimumCertain, Double(agree) >= Self.minimumAgreement * Double(inside),
              !a.0.isEmpty, !a.1.isEmpty, !b.0.isEmpty, !b.1.isEmpty else {
            blocks.append((rows, cols))
            return
        }
        split(a.0, a.1, depth: depth + 1, evidence: e, into: &blocks)
        split(b.0, b.1, depth: depth + 1, evidence: e, into: &blocks)
    }

    /// Spectral co-clustering (Dhillon 2001) of the count matrix into two: the second left and
    /// right singular vectors of D_r^-1/2 · W · D_c^-1/2, by power iteration with the first
    /// (known: √row totals, √column totals) projected out; sides by sign, in the order of
    /// `rows` and `cols`.
    private static func bisect(rows: [Int], cols: [Int], evidence e: Evidence) -> ([Bool], [Bool])? {
        let n = rows.count, m = cols.count
        var rowIndex = [Int32](repeating: -1, count: e.rows.count), colIndex = [Int32](repeating: -1, count: e.cols.count)
        for (i, r) in rows.enumerated() { rowIndex[r] = Int32(i) }
        for (j, c) in cols.enumerated() { colIndex[c] = Int32(j) }
        var w = [Double](repeating: 0, count: n * m)
        for k in e.ti.indices {
            let i = rowIndex[Int(e.ti[k])], j = colIndex[Int(e.tj[k])]
            if i >= 0, j >= 0 { w[Int(i) * m + Int(j)] += e.tw[k] }
        }
        var r = [Double](repeating: 0, count: n), c = [Double](repeating: 0, count: m)
        for i in 0..<n { for j in 0..<m { r[i] += w[i * m + j]; c[j] += w[i * m + j] } }
        guard r.allSatisfy({ $0 > 0 }), c.allSatisfy({ $0 > 0 }) else { return nil }
        for i in 0..<n { for j in 0..<m { w[i * m + j] /= (r[i] * c[j]).squareRoot() } }
        // The first left singular vector (σ = 1).
        var first = r.map { $0.squareRoot() }
        let norm = first.reduce(0) { $0 + $1 * $1 }.squareRoot()
        first = first.map { $0 / norm }
        // A deterministic start that is not parallel to the first vector.
        var x = (0..<n).map { Double(($0 * 7919) % 13) - 6 }
        var y = [Double](repeating: 0, count: m)
        var next = [Double](repeating: 0, count: n)
        // At most 300 rounds; stopped once the vector no longer moves (within 1e-13 per entry,
        // far below any sign decided from it): a regrouping took ~6.7M instructions with its
        // 300 rounds, 7% of `watch` at a pooling proxy's peak, and most had converged long before.
        for _ in 0..<300 {
            let dot = zip(x, first).reduce(0) { $0 + $1.0 * $1.1 }
            for i in 0..<n { x[i] -= dot * first[i] }
            for j in 0..<m { y[j] = 0 }
            for i in 0..<n where x[i] != 0 { for j in 0..<m { y[j] += w[i * m + j] * x[i] } }
            for i in 0..<n { var s = 0.0; for j in 0..<m { s += w[i * m + j] * y[j] }; next[i] = s }
            let len = next.reduce(0) { $0 + $1 * $1 }.squareRoot()
            guard len > 1e-12 else { return nil }
            var moved = 0.0
            for i in 0..<n {
                let v = next[i] / len
                moved = max(moved, abs(v - x[i]))
                x[i] = v
            }
            if moved < 1e-13 { break }
        }
        let dot = zip(x, first).reduce(0) { $0 + $1.0 * $1.1 }
        for i in 0..<n { x[i] -= dot * first[i] }
        for j in 0..<m { y[j] = 0; for i in 0..<n { y[j] += w[i * m + j] * x[i] } }
        return ((0..<n).map { x[$0] / r[$0].squareRoot() > 0 }, (0..<m).map { y[$0] / c[$0].squareRoot() > 0 })
    }
}
