/// Minimum-cost assignment (Kuhn–Munkres with potentials, O(n²·m)) of `n` rows to distinct
/// columns among `m ≥ n`. `cost[i][j] == nil` means row i cannot take column j.
/// Returns for each row its column, or nil when the row could not be assigned.
func minimumCostAssignment(_ cost: [[Double?]]) -> [Int?] {
    let n = cost.count
    guard n > 0 else { return [] }
    let m = cost[0].count
    guard m > 0 else { return Array(repeating: nil, count: n) }
    // Infeasible pairs get a large finite cost, then are dropped; extra dummy columns let every
    // row be placed even when m < n or a row has no feasible column.
    let forbidden = 1e12
    let cols = max(m, n) + n
    func c(_ i: Int, _ j: Int) -> Double {
        if j < m, let v = cost[i][j] { return v }
        return j < m ? forbidden * 2 : forbidden
    }
    var u = [Double](repeating: 0, count: n + 1)
    var v = [Double](repeating: 0, count: cols + 1)
    var p = [Int](repeating: 0, count: cols + 1)  // p[j]: row (1-based) in column j
    var way = [Int](repeating: 0, count: cols + 1)
    for i in 1...n {
        p[0] = i
        var j0 = 0
        var minv = [Double](repeating: .infinity, count: cols + 1)
        var used = [Bool](repeating: false, count: cols + 1)
        repeat {
            used[j0] = true
            let i0 = p[j0]
            var delta = Double.infinity
            var j1 = 0
            for j in 1...cols where !used[j] {
                let cur = c(i0 - 1, j - 1) - u[i0] - v[j]
                if cur < minv[j] { minv[j] = cur; way[j] = j0 }
                if minv[j] < delta { delta = minv[j]; j1 = j }
            }
            for j in 0...cols {
                if used[j] { u[p[j]] += delta; v[j] -= delta } else { minv[j] -= delta }
            }
            j0 = j1
        } while p[j0] != 0
        repeat {
            let j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
        } while j0 != 0
    }
    var result = [Int?](repeating: nil, count: n)
    for j in 1...cols where p[j] != 0 {
        let row = p[j] - 1
        if j - 1 < m, cost[row][j - 1] != nil { result[row] = j - 1 }
    }
    return result
}
