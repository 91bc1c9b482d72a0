import Foundation
import HopReport

/// How well the analysis paired downstream and upstream copies, measured against the truth.
public struct PairingReport: Codable, Sendable, Equatable {
    public struct Band: Codable, Sendable, Equatable {
        public var lower: Double
        public var upper: Double
        public var count: Int
        /// Mean stated confidence of the pairings in this band (0 when empty).
        public var meanConfidence: Double
        /// Share of them that was right (0 when empty).
        public var right: Double
    }

    public struct Wrong: Codable, Sendable, Equatable {
        public var client: String
        public var index: Int
        public var method: String
        public var target: String
        public var requestId: String?
        /// The upstream exchange the truth names (its client tuple) and the one the analysis chose.
        public var expected: String?
        public var got: String?
        public var gotRequestId: String?
        public var confidence: Double
        public var chain: Int?
    }

    public struct Baseline: Codable, Sendable, Equatable {
        public var right: Int
        public var total: Int
        public var seconds: Double
        public var components: Int
        public var windows: Int
        public var largestComponent: Int
    }

    public var right: Int
    public var total: Int
    /// Truth requests whose downstream exchange the analysis does not have (counted in total, wrong).
    public var notFound: Int
    /// Truth requests whose chain has no upstream copy (wrong, and outside the calibration table).
    public var unpaired: Int
    /// Truth requests the app never saw (`PairingTruth.neverForwarded`) left unpaired: right,
    /// outside the calibration table.
    public var neverForwarded: Int = 0
    public var wrong: [Wrong]
    public var bands: [Band]
    public var ece: Double
    public var highConfidenceCount: Int
    /// Share right among pairings stated >= 0.9 (nil when there are none).
    public var highConfidenceRight: Double?
    public var baseline: Baseline
    /// right > baseline.right: the correlator beats timing alone; equal: ties.
    public var beatsBaseline: Bool
    /// Pairings right by request id whose upstream tuple differs from the app's (cross-check).
    public var tupleMismatches: Int
    /// The delays of the true pairs (third-party sidecars: found by request id), in µs:
    /// what the baseline's cost assumes is small.
    public var truthDelays: Delays?

    public struct Delays: Codable, Sendable, Equatable {
        public var pairs: Int
        public var forwardP50Us: Double
        public var forwardP99Us: Double
        public var returnP50Us: Double
        public var returnP99Us: Double
    }

    public var accuracy: Double { total == 0 ? 1 : Double(right) / Double(total) }
    public var baselineAccuracy: Double { baseline.total == 0 ? 1 : Double(baseline.right) / Double(baseline.total) }

    public func textLines(maxWrong: Int = 3) -> [String] {
        func pct(_ x: Double) -> String { String(format: "%.1f%%", x * 100) }
        var l: [String] = []
        let verdict = right > baseline.right ? "beats" : right == baseline.right ? "ties" : "LOSES TO"
        l.append("pairing: \(right)/\(total) right (\(pct(accuracy))); timing-only baseline \(baseline.right)/\(baseline.total) (\(pct(baselineAccuracy)), \(String(format: "%.2f", baseline.seconds)) s, \(baseline.components) component\(baseline.components == 1 ? "" : "s"), \(baseline.windows) window\(baseline.windows == 1 ? "" : "s")): the correlator \(verdict) the baseline")
        let hc = highConfidenceRight.map(pct) ?? "n/a"
        l.append("  ECE \(String(format: "%.3f", ece)); stated >= 0.9: \(highConfidenceCount), right \(hc)\(notFound > 0 ? "; \(notFound) not found" : "")\(unpaired > 0 ? "; \(unpaired) without an upstream copy" : "")\(neverForwarded > 0 ? "; \(neverForwarded) never forwarded (the app did not see them), left unpaired" : "")\(tupleMismatches > 0 ? "; \(tupleMismatches) tuple mismatch(es)" : "")")
        let cells = bands.filter { $0.count > 0 }.map {
            "[\(String(format: "%.2f", $0.lower)),\(String(format: "%.2f", $0.upper))\($0.upper >= 1 ? "]" : ")") n=\($0.count) stated \(String(format: "%.3f", $0.meanConfidence)) right \(pct($0.right))"
        }
        if !cells.isEmpty { l.append("  calibration: " + cells.joined(separator: "; ")) }
        if let d = truthDelays {
            l.append("  true pairs' delays (µs): forward p50 \(Int(d.forwardP50Us)) p99 \(Int(d.forwardP99Us)), return p50 \(Int(d.returnP50Us)) p99 \(Int(d.returnP99Us))")
        }
        for w in wrong.prefix(maxWrong) {
            l.append("  wrong: \(w.method) \(w.target) #\(w.index + 1) on \(w.client) (id \(w.requestId ?? "-")): expected upstream \(w.expected ?? "?"), got \(w.got ?? "none")\(w.gotRequestId.map { " (id \($0))" } ?? "") at confidence \(String(format: "%.3f", w.confidence))")
        }
        if wrong.count > maxWrong { l.append("  … \(wrong.count - maxWrong) more wrong") }
        return l
    }
}

/// The truth for one pairing: which upstream exchange a downstream exchange must be paired with.
public struct PairingTruth: Sendable {
    public var client: String
    public var index: Int
    public var method: String
    public var target: String
    /// Third-party sidecars: the x-request-id the upstream copy carries.
    public var requestId: String?
    /// The upstream connection's client tuple (hoptrace's proxy: the whole truth; else a cross-check).
    public var upstream: String?

    public init(client: String, index: Int, method: String, target: String, requestId: String?, upstream: String?) {
        self.client = client; self.index = index; self.method = method; self.target = target
        self.requestId = requestId; self.upstream = upstream
    }

    public init(_ t: TruthRecord) {
        self.init(client: t.client, index: t.index, method: t.method, target: t.target, requestId: t.requestId, upstream: t.upstream)
    }

    /// A third-party sidecar logged it and the app never saw it (the client gave up first:
    /// nginx's 499): there is no upstream copy to pair it with.
    public var neverForwarded: Bool { requestId != nil && upstream == nil }

    /// Does `hop` (an upstream copy) carry this request?
    public func matches(_ hop: ReportHop) -> Bool {
        if let id = requestId { return hop.requestId == id }
        return hop.client == upstream
    }
}

public enum PairingMetrics {
    /// The confidence bands of the calibration table.
    public static let bandEdges: [Double] = [0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0]

    public struct HopRef: Hashable, Sendable {
        public var chain: Int
        public var hop: Int
    }

    /// The downstream copies of the analysis indexed like the truth: (client tuple, k-th request
    /// on that connection by request start; HTTP/2 streams whose HEADERS came in one segment by
    /// stream id, the order the sidecar opened them in).
    public static func downstreamIndex(_ a: ReportDocument) -> [String: [HopRef]] {
        var by: [String: [HopRef]] = [:]
        for (ci, c) in a.chains.enumerated() {
            for (hi, h) in c.hops.enumerated() where h.isIndexedDownstream {
                by[h.client, default: []].append(HopRef(chain: ci, hop: hi))
            }
        }
        // An encrypted connection's copies in turn order (its turns' numbers), a plaintext one's
        // by request start.
        for k in by.keys {
            by[k]!.sort {
                let x = a.chains[$0.chain].hops[$0.hop], y = a.chains[$1.chain].hops[$1.hop]
                return (x.tls?.turn ?? 0, x.requestStartNs ?? x.responseEndNs ?? 0, x.http2?.stream ?? 0, $0.chain)
                    < (y.tls?.turn ?? 0, y.requestStartNs ?? y.responseEndNs ?? 0, y.http2?.stream ?? 0, $1.chain)
            }
        }
        return by
    }

    /// The calibration table and ECE of (stated confidence, right) pairs.
    public static func calibration(_ items: [(confidence: Double, right: Bool)]) -> (bands: [PairingReport.Band], ece: Double) {
        var bands: [PairingReport.Band] = []
        let n = Double(items.count)
        var ece = 0.0
        for i in 0..<(bandEdges.count - 1) {
            let lo = bandEdges[i], hi = bandEdges[i + 1]
            let last = i == bandEdges.count - 2
            let inBand = items.filter { $0.confidence >= lo && ($0.confidence < hi || (last && $0.confidence <= hi)) }
            let count = inBand.count
            let mean = count == 0 ? 0 : inBand.map(\.confidence).reduce(0, +) / Double(count)
            let right = count == 0 ? 0 : Double(inBand.filter(\.right).count) / Double(count)
            if count > 0 { ece += Double(count) / n * abs(right - mean) }
            bands.append(.init(lower: lo, upper: hi, count: count, meanConfidence: mean, right: right))
        }
        return (bands, ece)
    }

    /// Measures the analysis' pairings (and the timing-only baseline's) against `truth`.
    public static func measure(_ a: ReportDocument, truth: [PairingTruth], baselineWindow: Int = Baseline.defaultWindow) -> PairingReport {
        let index = downstreamIndex(a)
        var items: [(confidence: Double, right: Bool)] = []
        var wrong: [PairingReport.Wrong] = []
        var right = 0, notFound = 0, tupleMismatches = 0, unpaired = 0, neverForwarded = 0
        var truthByHop: [HopRef: PairingTruth] = [:]
        for t in truth {
            guard let refs = index[t.client], t.index < refs.count else {
                notFound += 1
                wrong.append(.init(client: t.client, index: t.index, method: t.method, target: t.target, requestId: t.requestId,
                                   expected: t.upstream, got: nil, gotRequestId: nil, confidence: 0, chain: nil))
                continue
            }
            let ref = refs[t.index]
            truthByHop[ref] = t
            let c = a.chains[ref.chain]
            let up = c.hops.last { $0.isUpstream }
            // Nothing to pair: right when the analysis pairs nothing either (not in the calibration).
            if t.neverForwarded {
                if up == nil { right += 1; neverForwarded += 1; continue }
                items.append((c.confidence, false))
                wrong.append(.init(client: t.client, index: t.index, method: t.method, target: t.target, requestId: t.requestId,
                                   expected: nil, got: up?.client, gotRequestId: up?.requestId, confidence: c.confidence, chain: c.id))
                continue
            }
            let ok = up.map(t.matches) ?? false
            if ok, t.requestId != nil, let u = t.upstream, up?.client != u { tupleMismatches += 1 }
            // A chain without an upstream copy states no pairing: wrong, but not in the calibration.
            if up != nil { items.append((c.confidence, ok)) } else { unpaired += 1 }
            if ok { right += 1 } else {
                wrong.append(.init(client: t.client, index: t.index, method: t.method, target: t.target, requestId: t.requestId,
                                   expected: t.upstream, got: up?.client, gotRequestId: up?.requestId, confidence: c.confidence, chain: c.id))
            }
        }
        let (bands, ece) = calibration(items)
        let high = items.filter { $0.confidence >= 0.9 }
        // The baseline over every downstream and upstream copy in the analysis. Encrypted
        // downstream copies have no method or target: timing alone pairs them, with every
        // upstream copy of their direction the plaintext ones left.
        let started = Date()
        var downs: [(ref: HopRef, hop: ReportHop)] = []
        var encryptedDowns: [(ref: HopRef, hop: ReportHop)] = []
        var ups: [(ref: HopRef, hop: ReportHop)] = []
        for (ci, c) in a.chains.enumerated() {
            for (hi, h) in c.hops.enumerated() {
                if h.isDownstream && h.isEncrypted { encryptedDowns.append((HopRef(chain: ci, hop: hi), h)) }
                guard h.method != nil else { continue }
                if h.isDownstream { downs.append((HopRef(chain: ci, hop: hi), h)) }
                if h.isUpstream { ups.append((HopRef(chain: ci, hop: hi), h)) }
            }
        }
        let solved = Baseline.assign(downstream: downs.map(\.hop), upstream: ups.map(\.hop), window: baselineWindow)
        var bRight = 0
        for (di, d) in downs.enumerated() {
            guard let t = truthByHop[d.ref], let u = solved.assignment[di] else { continue }
            if t.matches(ups[u].hop) { bRight += 1 }
        }
        var stats = (components: solved.components, windows: solved.windows, largest: solved.largestComponent)
        if !encryptedDowns.isEmpty {
            let used = Set(solved.assignment.compactMap { $0 })
            let left = ups.indices.filter { !used.contains($0) }
            func timingOnly(_ h: ReportHop) -> ReportHop { var h = h; h.method = nil; h.target = nil; return h }
            let blind = Baseline.assign(downstream: encryptedDowns.map { timingOnly($0.hop) }, upstream: left.map { timingOnly(ups[$0].hop) },
                                        window: baselineWindow)
            for (di, d) in encryptedDowns.enumerated() {
                guard let t = truthByHop[d.ref], let u = blind.assignment[di] else { continue }
                if t.matches(ups[left[u]].hop) { bRight += 1 }
            }
            stats = (stats.components + blind.components, stats.windows + blind.windows, max(stats.largest, blind.largestComponent))
        }
        let baseline = PairingReport.Baseline(right: bRight, total: truth.count, seconds: Date().timeIntervalSince(started),
                                              components: stats.components, windows: stats.windows,
                                              largestComponent: stats.largest)
        // The true pairs' delays, for third-party truth (the upstream copy found by its request id).
        var upByID: [String: ReportHop] = [:]
        for u in ups where u.hop.requestId != nil { upByID[u.hop.requestId!] = u.hop }
        var fwd: [Double] = [], ret: [Double] = []
        for (ref, t) in truthByHop {
            guard let id = t.requestId, let u = upByID[id], let us = u.requestStartNs else { continue }
            let d = a.chains[ref.chain].hops[ref.hop]
            guard let ds = d.requestEndNs ?? d.requestStartNs else { continue }
            fwd.append(Double(us - ds) / 1000)
            if let de = d.responseEndNs, let ue = u.responseEndNs { ret.append(Double(de - ue) / 1000) }
        }
        func q(_ v: [Double], _ p: Double) -> Double { v.isEmpty ? 0 : v.sorted()[Int(p * Double(v.count - 1))] }
        let delays = fwd.isEmpty ? nil : PairingReport.Delays(pairs: fwd.count, forwardP50Us: q(fwd, 0.5), forwardP99Us: q(fwd, 0.99),
                                                              returnP50Us: q(ret, 0.5), returnP99Us: q(ret, 0.99))
        // Wrong pairings first, most confident first; then chains without an upstream copy.
        wrong.sort { ($0.got != nil ? 1 : 0, $0.confidence, $1.client, $1.index) > ($1.got != nil ? 1 : 0, $1.confidence, $0.client, $0.index) }
        return PairingReport(right: right, total: truth.count, notFound: notFound, unpaired: unpaired,
                             neverForwarded: neverForwarded, wrong: wrong, bands: bands, ece: ece,
                             highConfidenceCount: high.count,
                             highConfidenceRight: high.isEmpty ? nil : Double(high.filter(\.right).count) / Double(high.count),
                             baseline: baseline, beatsBaseline: right > bRight, tupleMismatches: tupleMismatches,
                             truthDelays: delays)
    }
}
