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
/// same way. A proxy without workers (or one that hands connections across them) yields no
/// split, and pairing stays on timing alone.
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
        private var index: [Link: Int] = [:]
        private(set) var links: [Link] = []
        private(set) var weights: [Double] = []
        var count: Int { links.count }

        mutating func add(_ link: Link, _ weight: Double) {
            if let i = index[link] {
                weights[i] += weight
            } else {
                index[link] = links.count
                links.append(link)
                weights.append(weight)
            }
        }

        mutating func removeAll() {
            index.removeAll(keepingCapacity: true)
            links.removeAll(keepingCapacity: true)
            weights.removeAll(keepingCapacity: true)
        }
    }
    private var counts = LinkCounts()
    /// Certain pairings per connection pair (these validate a split).
    private var certain: [Link: Int] = [:]
    private(set) var certainPairings = 0
    /// Group by slot (-1: outside the blocks), as long as the highest slot grouped.
    private(set) var groupOfDown: [Int32] = []
    private(set) var groupOfUp: [Int32] = []
    /// Blocks found at the last regrouping (0: none, timing alone).
    private(set) var groupCount = 0
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
        guard down < groupOfDown.count, up < groupOfUp.count else { return false }
        let a = groupOfDown[down], b = groupOfUp[up]
        return a >= 0 && b >= 0 && a != b
    }

    func group(down: Slot) -> Int? {
        guard down < groupOfDown.count, groupOfDown[down] >= 0 else { return nil }
        return Int(groupOfDown[down])
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
        let rows = busiest(rowTotals), cols = busiest(colTotals)
        var blocks: [([Slot], [Slot])] = []
        split(rows, cols, depth: 0, into: &blocks)
        groupOfDown = []
        groupOfUp = []
        guard blocks.count > 1 else {
            groupCount = 0
            return
        }
        groupCount = blocks.count
        groupOfDown = [Int32](repeating: -1, count: (rows.max() ?? -1) + 1)
        groupOfUp = [Int32](repeating: -1, count: (cols.max() ?? -1) + 1)
        for (g, b) in blocks.enumerated() {
            for d in b.0 { groupOfDown[d] = Int32(g) }
            for u in b.1 { groupOfUp[u] = Int32(g) }
        }
    }

    private func split(_ rows: [Slot], _ cols: [Slot], depth: Int,
                       into blocks: inout [([Slot], [Slot])]) {
        guard depth < 8, rows.count >= 2, cols.count >= 2,
              let (downSide, upSide) = Self.bisect(rows: rows, cols: cols, counts: counts) else {
            blocks.append((rows, cols))
            return
        }
        // Validation by the certain pairings inside this block.
        let rowSet = Set(rows), colSet = Set(cols)
        var inside = 0, agree = 0
        for (l, n) in certain where rowSet.contains(l.down) && colSet.contains(l.up) {
            inside += n
            if downSide[l.down] == upSide[l.up] { agree += n }
        }
        let a = (rows.filter { downSide[$0] == true }, cols.filter { upSide[$0] == true })
        let b = (rows.filter { downSide[$0] != true }, cols.filter { upSide[$0] != true })
        guard inside >= Self.minimumCertain, Double(agree) >= Self.minimumAgreement * Double(inside),
              !a.0.isEmpty, !a.1.isEmpty, !b.0.isEmpty, !b.1.isEmpty else {
            blocks.append((rows, cols))
            return
        }
        split(a.0, a.1, depth: depth + 1, into: &blocks)
        split(b.0, b.1, depth: depth + 1, into: &blocks)
    }

    /// Spectral co-clustering (Dhillon 2001) of the count matrix into two: the second left and
    /// right singular vectors of D_r^-1/2 · W · D_c^-1/2, by power iteration with the first
    /// (known: √row totals, √column totals) projected out; sides by sign.
    static func bisect(rows: [Slot], cols: [Slot], counts: LinkCounts)
        -> ([Slot: Bool], [Slot: Bool])?
    {
        let n = rows.count, m = cols.count
        var rowIndex: [Slot: Int] = [:], colIndex: [Slot: Int] = [:]
        for (i, r) in rows.enumerated() { rowIndex[r] = i }
        for (j, c) in cols.enumerated() { colIndex[c] = j }
        var w = [Double](repeating: 0, count: n * m)
        for (l, k) in zip(counts.links, counts.weights) {
            if let i = rowIndex[l.down], let j = colIndex[l.up] { w[i * m + j] += k }
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
        var down: [Slot: Bool] = [:], up: [Slot: Bool] = [:]
        for i in 0..<n { down[rows[i]] = x[i] / r[i].squareRoot() > 0 }
        for j in 0..<m { up[cols[j]] = y[j] / c[j].squareRoot() > 0 }
        return (down, up)
    }
}
