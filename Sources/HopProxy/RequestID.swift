// Request ids: random (version 4) UUIDs from a fast seeded generator, written without strings.
import NIOCore

/// A random (version 4) UUID, kept as two words and spelled out only where it is written.
struct UUIDv4: Equatable {
    var hi: UInt64
    var lo: UInt64

    init<R: RandomNumberGenerator>(using rng: inout R) {
        hi = (rng.next() & ~0x0000_0000_0000_F000) | 0x0000_0000_0000_4000  // version 4
        lo = (rng.next() & ~0xC000_0000_0000_0000) | 0x8000_0000_0000_0000  // variant 10
    }

    static let textLength = 36

    /// Writes the lowercase text form (36 bytes) at `out`.
    func write(to out: UnsafeMutablePointer<UInt8>) {
        var i = 0
        func emit(_ v: UInt64, _ nibbles: Int, _ shift: Int) {
            for k in 0..<nibbles {
                let d = UInt8(truncatingIfNeeded: (v >> UInt64(shift - 4 * (k + 1))) & 0xF)
                out[i] = d < 10 ? 0x30 + d : 0x57 + d
                i += 1
            }
        }
        emit(hi, 8, 64); out[i] = 0x2D; i += 1
        emit(hi, 4, 32); out[i] = 0x2D; i += 1
        emit(hi, 4, 16); out[i] = 0x2D; i += 1
        emit(lo, 4, 64); out[i] = 0x2D; i += 1
        emit(lo, 12, 48)
    }

    var text: String {
        String(unsafeUninitializedCapacity: Self.textLength) { out in
            write(to: out.baseAddress!)
            return Self.textLength
        }
    }
}

extension ByteBuffer {
    mutating func writeUUID(_ id: UUIDv4) {
        reserveCapacity(minimumWritableBytes: UUIDv4.textLength)
        _ = writeWithUnsafeMutableBytes(minimumWritableBytes: UUIDv4.textLength) { p in
            id.write(to: p.baseAddress!.assumingMemoryBound(to: UInt8.self))
            return UUIDv4.textLength
        }
    }
}

/// A request's id: made by the proxy (no string until one is needed) or the client's own.
enum RequestIDValue {
    case generated(UUIDv4)
    case given(String)
}

enum RequestID {
    /// A random (version 4) UUID in its lowercase text form.
    static func make() -> String {
        var rng = SystemRandomNumberGenerator()
        return make(using: &rng)
    }

    static func make<R: RandomNumberGenerator>(using rng: inout R) -> String {
        UUIDv4(using: &rng).text
    }
}

/// xoshiro256** (Blackman, Vigna): fast, good statistical quality; seeded from the system's
/// generator. Request ids need uniqueness, not secrecy.
struct Xoshiro256: RandomNumberGenerator {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    init<Seed: RandomNumberGenerator>(seed: Seed) {
        var g = seed
        s = (g.next(), g.next(), g.next(), g.next())
        if s == (0, 0, 0, 0) { s.0 = 0x9E37_79B9_7F4A_7C15 }
    }

    mutating func next() -> UInt64 {
        let result = rotl(s.1 &* 5, 7) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = rotl(s.3, 45)
        return result
    }

    private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}
