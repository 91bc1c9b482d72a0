#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The distributions of a proxy's forwarding and return delays (µs), as histograms over
/// quarter-octaves (log scale: delays from microseconds to seconds), learned from pairings that
/// are certain or on which both orders agree; `posterior` weighs two choices for one copy.
struct DelayModel {
    static let bins = 96
    private var forward = [Double](repeating: 0, count: bins)
    private var back = [Double](repeating: 0, count: bins)
    private var total = 0.0

    @inline(__always)
    static func bin(_ us: Double) -> Int {
        guard us > 1 else { return 0 }
        return min(bins - 1, Int((log2(us) * 4).rounded(.down)) + 1)
    }

    mutating func observe(forward f: Double, return r: Double) {
        // Old observations fade (a proxy's delays change with its load).
        if total > 4096 {
            for i in 0..<Self.bins { forward[i] *= 0.5; back[i] *= 0.5 }
            total *= 0.5
        }
        forward[Self.bin(f)] += 1
        back[Self.bin(r)] += 1
        total += 1
    }

    /// Enough pairings seen for `likelihood` to say something.
    var isReady: Bool { total >= 64 }

    /// How typical a pairing's forward and return delays are (the two taken as independent;
    /// add-half smoothing); 1 until the model has seen enough pairings to say.
    func likelihood(_ d: (forward: Double, return: Double)) -> Double {
        guard isReady else { return 1 }
        return (forward[Self.bin(d.forward)] + 0.5) * (back[Self.bin(d.return)] + 0.5)
    }

    /// The probability that the choice with likelihood `chosen` rather than the one with
    /// `other` is the right pairing, where `prior` is how often such a choice has been right.
    static func posterior(chosen: Double, other: Double, prior: Double) -> Double {
        let a = prior * chosen, b = (1 - prior) * other
        return a + b > 0 ? a / (a + b) : prior
    }
}
