import Foundation
import HopReport

/// The timing-only baseline: an optimal assignment of downstream copies to upstream copies of
/// the same direction, method and target, minimizing Σ (forward delay)² + (return delay)² in µs².
///
/// forward = upstream request start − downstream request end (request start when the end is not
/// in the analysis); return = downstream response end − upstream response end. A pair is feasible
/// only when the upstream request starts after the downstream request start − 2 ms and the
/// upstream response ends before the downstream response end + 2 ms. A downstream copy may stay
/// unassigned (a fixed penalty larger than any feasible cost), so unequal counts are fine.
///
/// Scale: copies are grouped by (direction, method, target) and each group is cut into connected
/// components (downstream copies sorted by request start whose feasibility windows
/// [request start − 2 ms, response end + 2 ms] overlap, with the upstream copies that start in
/// them). A component of at most `window` downstream copies is solved exactly (Hungarian,
/// O(n²·m)). A larger one (identical requests under load form one component per run) is solved in
/// consecutive windows of `window` downstream copies in time order, each together with the next
/// `window / 2` as look-ahead rows (so that a window's last copies don't take upstream copies the
/// next ones fit better); only the window's own rows are committed and their upstream copies
/// leave the pool. An upstream copy that no later downstream copy could take (it starts more than
/// 2 ms before the next window's first one) gets a large bonus in the window, so it is used if any
/// row can: otherwise one locally cheaper choice near a window's end (a stall makes a shifted
/// pairing look better) would leave it stranded and shift every later pairing of an identical
/// run by one. 30–40k exchanges take 0.3–3 s in a release build.
public enum Baseline {
    public static let defaultWindow = 64
    static let slackNs: Int64 = 2_000_000
    static let unassignedCost = 1e16
    static let infeasibleCost = 1e22
    static let expiringBonus = 1e12

    public struct Result: Sendable {
        /// For each downstream copy, the index of its upstream copy (nil: unassigned).
        public var assignment: [Int?]
        public var components = 0
        public var windows = 0
        public var largestComponent = 0
    }

    struct Times {
        var start: Int64
        var end: Int64?
        var respEnd: Int64?
    }

    static func feasibleCost(down d: Times, up u: Times) -> Double? {
        guard u.start > d.start - slackNs else { return nil }
        if let de = d.respEnd, let ue = u.respEnd, ue >= de + slackNs { return nil }
        let fwd = Double(u.start - (d.end ?? d.start)) / 1000
        let ret: Double = {
            guard let de = d.respEnd, let ue = u.respEnd else { return 0 }
            return Double(de - ue) / 1000
        }()
        return fwd * fwd + ret * ret
    }

    public static func assign(downstream: [ReportHop], upstream: [ReportHop], window: Int = defaultWindow) -> Result {
        var result = Result(assignment: Array(repeating: nil, count: downstream.count))
        func key(_ h: ReportHop) -> String { "\(h.direction) \(h.method ?? "") \(h.target ?? "")" }
        func times(_ h: ReportHop, down: Bool) -> Times? {
            guard let s = h.requestStartNs else { return nil }
            return Times(start: s, end: down ? h.requestEndNs : nil, respEnd: h.responseEndNs)
        }
        var dGroups: [String: [Int]] = [:], uGroups: [String: [Int]] = [:]
        for (i, h) in downstream.enumerated() where h.requestStartNs != nil { dGroups[key(h), default: []].append(i) }
        for (i, h) in upstream.enumerated() where h.requestStartNs != nil { uGroups[key(h), default: []].append(i) }
        let dT = downstream.map { times($0, down: true) }, uT = upstream.map { times($0, down: false) }
        for (k, dIdx0) in dGroups {
            guard let uIdx0 = uGroups[k] else { continue }
            let dIdx = dIdx0.sorted { dT[$0]!.start < dT[$1]!.start }
            let uIdx = uIdx0.sorted { uT[$0]!.start < uT[$1]!.start }
            let uStarts = uIdx.map { uT[$0]!.start }
            var taken = Array(repeating: false, count: uIdx.count)
            // Components: runs of downstream copies whose windows overlap.
            var comps: [[Int]] = []
            var cur: [Int] = []
            var curEnd = Int64.min
            for d in dIdx {
                let t = dT[d]!
                let lo = t.start - slackNs
                let hi = (t.respEnd ?? Int64.max / 2) + slackNs
                if cur.isEmpty || lo <= curEnd {
                    cur.append(d); curEnd = max(curEnd, hi)
                } else {
                    comps.append(cur); cur = [d]; curEnd = hi
                }
            }
            if !cur.isEmpty { comps.append(cur) }
            result.components += comps.count
            for comp in comps {
                result.largestComponent = max(result.largestComponent, comp.count)
                var pos = 0
                while pos < comp.count {
                    let own = min(window, comp.count - pos)
                    let rows = Array(comp[pos..<min(comp.count, pos + own + (comp.count > window ? window / 2 : 0))])
                    result.windows += 1
                    // Candidate upstream copies: untaken, starting within the rows' span.
                    let lo = rows.map { dT[$0]!.start }.min()! - slackNs
                    let hi = rows.map { (dT[$0]!.respEnd ?? Int64.max / 4) }.max()! + slackNs
                    var first = lowerBound(uStarts, lo)
                    var cols: [Int] = []  // positions in uIdx
                    while first < uIdx.count && uStarts[first] <= hi {
                        if !taken[first] { cols.append(first) }
                        first += 1
                    }
                    let n = rows.count, m = cols.count + n
                    // Upstream copies no later downstream copy can take (they start more than
                    // 2 ms before the next window's first downstream copy) are used here if at
                    // all possible: left over, they would shift every later pairing by one.
                    let nextStart = pos + own < comp.count ? dT[comp[pos + own]]!.start : Int64.max
                    var cost = [Double](repeating: unassignedCost, count: n * m)
                    for (r, d) in rows.enumerated() {
                        for (c, up) in cols.enumerated() {
                            let ut = uT[uIdx[up]]!
                            guard let f = feasibleCost(down: dT[d]!, up: ut) else { cost[r * m + c] = infeasibleCost; continue }
                            cost[r * m + c] = ut.start + slackNs <= nextStart ? f - expiringBonus : f
                        }
                    }
                    let a = hungarian(cost, rows: n, cols: m)
                    for r in 0..<own {
                        let c = a[r]
                        guard c < cols.count, cost[r * m + c] < unassignedCost else { continue }
                        taken[cols[c]] = true
                        result.assignment[rows[r]] = uIdx[cols[c]]
                    }
                    pos += own
                }
            }
        }
        return result
    }

    static func lowerBound(_ a: [Int64], _ x: Int64) -> Int {
        var lo = 0, hi = a.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if a[mid] < x { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// Min-cost assignment of every row to a distinct column (rows ≤ cols), row-major `cost`.
    /// Returns the column of each row. The classic potentials (Kuhn–Munkres / Jonker) O(n²·m).
    public static func hungarian(_ cost: [Double], rows n: Int, cols m: Int) -> [Int] {
        precondition(n <= m)
        var u = [Double](repeating: 0, count: n + 1), v = [Double](repeating: 0, count: m + 1)
        var p = [Int](repeating: 0, count: m + 1), way = [Int](repeating: 0, count: m + 1)
        var minv = [Double](repeating: .infinity, count: m + 1)
        var used = [Bool](repeating: false, count: m + 1)
        for i in 1...max(n, 1) where n > 0 {
            p[0] = i
            var j0 = 0
            for j in 0...m { minv[j] = .infinity; used[j] = false }
            repeat {
                used[j0] = true
                let i0 = p[j0]
                var delta = Double.infinity
                var j1 = 0
                for j in 1...m where !used[j] {
                    let cur = cost[(i0 - 1) * m + (j - 1)] - u[i0] - v[j]
                    if cur < minv[j] { minv[j] = cur; way[j] = j0 }
                    if minv[j] < delta { delta = minv[j]; j1 = j }
                }
                for j in 0...m {
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
        var ans = [Int](repeating: -1, count: n)
        for j in 1...max(m, 1) where m > 0 && p[j] > 0 { ans[p[j] - 1] = j - 1 }
        return ans
    }
}
