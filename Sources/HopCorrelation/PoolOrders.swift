/// The two arrival orders over a pool of identical requests in flight (see
/// `Correlator.solvePool`): the pool's downstream copies are the rows, the upstream copies
/// they could have become are the columns (numbered in the order the proxy sent them).
///
/// - Forward order: each row, oldest request head first, takes the first column not taken.
/// - Return order: each column, earliest response first, goes to the row whose response
///   began first among those it is feasible for.
///
/// Each order is then made maximal (augmenting paths, Kuhn): a row left without a column while
/// another choice would give it one re-routes the fewest choices.
///
/// A row's columns are its feasible ones (its worker group's, or every candidate when the
/// group has none), then its fallback ones (other groups', taken only when its own are gone).
/// All of it is kept in flat arrays reused from one pool to the next: a busy capture solves
/// a pool every few dozen requests, and arrays of arrays cost more to allocate and free than
/// the orders cost to compute.
struct PoolOrders {
    /// Row i's columns: `edges[rowStart[i]..<feasibleEnd[i]]` feasible, then
    /// `edges[feasibleEnd[i]..<rowStart[i + 1]]` its fallback; each part in column order.
    private var edges: [Int] = []
    private var rowStart: [Int] = [0]
    private var feasibleEnd: [Int] = []
    /// The column each row takes in forward and in return order (-1: none).
    private(set) var forward: [Int] = []
    private(set) var backward: [Int] = []
    /// The row each column goes to in return order (-1: none).
    private(set) var backwardOwner: [Int] = []
    private var columns = 0
    // Scratch.
    private var other: [Int] = []
    private var owner: [Int] = []
    private var visited: [Bool] = []
    private var columnRowStart: [Int] = []
    private var columnRows: [Int] = []

    var rows: Int { feasibleEnd.count }

    /// Starts a pool of `columns` columns and no rows.
    mutating func reset(columns: Int) {
        self.columns = columns
        edges.removeAll(keepingCapacity: true)
        rowStart.removeAll(keepingCapacity: true)
        rowStart.append(0)
        feasibleEnd.removeAll(keepingCapacity: true)
    }

    /// Adds the next row: its columns, each marked whether it is of the row's worker group.
    mutating func addRow<S: Sequence<(column: Int, own: Bool)>>(_ candidates: S) {
        beginRow()
        for c in candidates { addColumn(c.column, own: c.own) }
        endRow()
    }

    /// The same, a column at a time (`beginRow`, `addColumn`…, `endRow`): the correlator's
    /// loop feeds its candidates straight in, without a closure per candidate.
    mutating func beginRow() {
        other.removeAll(keepingCapacity: true)
    }

    @inline(__always)
    mutating func addColumn(_ column: Int, own: Bool) {
        if own { edges.append(column) } else { other.append(column) }
    }

    mutating func endRow() {
        let start = rowStart[rowStart.count - 1]
        edges[start...].sort()
        let mid = edges.count
        other.sort()
        edges.append(contentsOf: other)
        feasibleEnd.append(mid == start ? edges.count : mid)
        rowStart.append(edges.count)
    }

    /// How many columns are feasible for row `i`.
    func feasibleCount(_ i: Int) -> Int { feasibleEnd[i] - rowStart[i] }

    /// Computes both orders. `columnResponseStarts[k]` and `rowResponseStarts[i]`: when the
    /// column's and the row's responses began (`.max` when not seen).
    mutating func solve(columnResponseStarts: [Int64], rowResponseStarts: [Int64]) {
        let rows = self.rows
        // Forward order: the first column not yet taken.
        forward.removeAll(keepingCapacity: true)
        forward.append(contentsOf: repeatElement(-1, count: rows))
        visited.removeAll(keepingCapacity: true)
        visited.append(contentsOf: repeatElement(false, count: columns))
        for i in 0..<rows {
            for e in rowStart[i]..<rowStart[i + 1] where !visited[edges[e]] {
                forward[i] = edges[e]
                visited[edges[e]] = true
                break
            }
        }
        var matching: [Int] = []
        swap(&matching, &forward)  // out of self while `maximize` mutates self (no copy)
        maximize(&matching)
        swap(&matching, &forward)
        // Return order: columns by response start, each to the row (among those it is
        // feasible for) whose response began first.
        columnRowStart.removeAll(keepingCapacity: true)
        columnRowStart.append(contentsOf: repeatElement(0, count: columns + 1))
        for i in 0..<rows {
            for e in rowStart[i]..<feasibleEnd[i] { columnRowStart[edges[e] + 1] += 1 }
        }
        for k in 0..<columns { columnRowStart[k + 1] += columnRowStart[k] }
        columnRows.removeAll(keepingCapacity: true)
        columnRows.append(contentsOf: repeatElement(0, count: columnRowStart[columns]))
        owner.removeAll(keepingCapacity: true)
        owner.append(contentsOf: columnRowStart[0..<columns])  // next free place per column
        for i in 0..<rows {
            for e in rowStart[i]..<feasibleEnd[i] {
                let k = edges[e]
                columnRows[owner[k]] = i
                owner[k] += 1
            }
        }
        let byResponse = (0..<columns).sorted { (columnResponseStarts[$0], $0) < (columnResponseStarts[$1], $1) }
        backward.removeAll(keepingCapacity: true)
        backward.append(contentsOf: repeatElement(-1, count: rows))
        for k in byResponse {
            var best = -1
            for r in columnRowStart[k]..<columnRowStart[k + 1] {
                let i = columnRows[r]
                if backward[i] == -1 && (best == -1 || rowResponseStarts[i] < rowResponseStarts[best]) { best = i }
            }
            if best >= 0 { backward[best] = k }
        }
        swap(&matching, &backward)
        maximize(&matching)
        swap(&matching, &backward)
        backwardOwner.removeAll(keepingCapacity: true)
        backwardOwner.append(contentsOf: repeatElement(-1, count: columns))
        for i in 0..<rows where backward[i] >= 0 { backwardOwner[backward[i]] = i }
    }

    /// Gives a column to every row that can have one, re-routing the fewest choices.
    private mutating func maximize(_ matching: inout [Int]) {
        owner.removeAll(keepingCapacity: true)
        owner.append(contentsOf: repeatElement(-1, count: columns))
        for i in 0..<rows where matching[i] >= 0 { owner[matching[i]] = i }
        for i in 0..<rows where matching[i] == -1 && rowStart[i + 1] > rowStart[i] {
            for k in 0..<columns { visited[k] = false }
            _ = augment(i, &matching)
        }
    }

    /// An augmenting path from row `i` (its feasible columns first, then its fallback).
    private mutating func augment(_ i: Int, _ matching: inout [Int]) -> Bool {
        for e in rowStart[i]..<rowStart[i + 1] {
            let k = edges[e]
            if visited[k] { continue }
            visited[k] = true
            if owner[k] == -1 || augment(owner[k], &matching) {
                owner[k] = i
                matching[i] = k
                return true
            }
        }
        return false
    }
}
