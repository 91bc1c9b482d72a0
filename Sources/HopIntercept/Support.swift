// Small helpers of the proxy: a lock, JSON text, wall-clock time, request ids.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A value behind a pthread mutex.
///
/// `@unchecked Sendable`: every access to `value` goes through `withLock`, which holds the
/// mutex, so the box may be shared between event-loop threads and the main thread.
final class LockedBox<Value>: @unchecked Sendable {
    private var value: Value
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    @discardableResult
    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}

/// Builds one JSON object as text, keys in insertion order.
struct JSONLine {
    private(set) var text = "{"
    private var first = true

    init() { text.reserveCapacity(512) }

    private mutating func key(_ k: String) {
        if !first { text += "," }
        first = false
        text += "\""
        text += k
        text += "\":"
    }

    mutating func add(_ k: String, _ v: String?) {
        key(k)
        if let v { JSONLine.appendQuoted(v, to: &text) } else { text += "null" }
    }

    mutating func add(_ k: String, _ v: Int?) {
        key(k)
        if let v { text += String(v) } else { text += "null" }
    }

    mutating func add(_ k: String, _ v: Bool) {
        key(k)
        text += v ? "true" : "false"
    }

    /// A duration in milliseconds with three decimals (microsecond resolution).
    mutating func add(_ k: String, milliseconds nanos: Int64?) {
        key(k)
        guard let nanos else { text += "null"; return }
        let micros = max(0, (nanos + 500) / 1000)
        let frac = micros % 1000
        text += String(micros / 1000)
        text += "."
        if frac < 100 { text += "0" }
        if frac < 10 { text += "0" }
        text += String(frac)
    }

    /// A nested object (its text as built by another `JSONLine`), or null.
    mutating func add(_ k: String, object: JSONLine?) {
        key(k)
        if let object { text += object.finished } else { text += "null" }
    }

    var finished: String { text + "}" }

    static func appendQuoted(_ s: String, to out: inout String) {
        out += "\""
        var needsEscape = false
        for u in s.utf8 where u < 0x20 || u == 0x22 || u == 0x5C {
            needsEscape = true
            break
        }
        if !needsEscape {
            out += s
        } else {
            for scalar in s.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                default:
                    if scalar.value < 0x20 {
                        let hex = String(scalar.value, radix: 16)
                        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                    } else {
                        out.unicodeScalars.append(scalar)
                    }
                }
            }
        }
        out += "\""
    }
}

enum WallClock {
    /// Nanoseconds since the Unix epoch.
    static func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    /// RFC 3339 in UTC with milliseconds: 2024-05-01T12:34:56.789Z.
    static func rfc3339(_ nanos: Int64) -> String {
        var seconds = time_t(nanos / 1_000_000_000)
        let millis = Int((nanos / 1_000_000) % 1000)
        var tm = tm()
        gmtime_r(&seconds, &tm)
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 24) { out in
            func put(_ v: Int, _ width: Int, at i: Int) {
                var v = v
                for k in stride(from: i + width - 1, through: i, by: -1) {
                    out[k] = UInt8(48 + v % 10)
                    v /= 10
                }
            }
            put(Int(tm.tm_year) + 1900, 4, at: 0); out[4] = 0x2D
            put(Int(tm.tm_mon) + 1, 2, at: 5); out[7] = 0x2D
            put(Int(tm.tm_mday), 2, at: 8); out[10] = 0x54
            put(Int(tm.tm_hour), 2, at: 11); out[13] = 0x3A
            put(Int(tm.tm_min), 2, at: 14); out[16] = 0x3A
            put(Int(tm.tm_sec), 2, at: 17); out[19] = 0x2E
            put(millis, 3, at: 20); out[23] = 0x5A
            return String(decoding: UnsafeBufferPointer(out), as: UTF8.self)
        }
    }
}

enum RequestID {
    /// A random (version 4) UUID in its lowercase text form.
    static func make() -> String {
        var rng = SystemRandomNumberGenerator()
        return make(using: &rng)
    }

    static func make<R: RandomNumberGenerator>(using rng: inout R) -> String {
        var hi = rng.next() as UInt64
        var lo = rng.next() as UInt64
        hi = (hi & ~0x0000_0000_0000_F000) | 0x0000_0000_0000_4000  // version 4
        lo = (lo & ~0xC000_0000_0000_0000) | 0x8000_0000_0000_0000  // variant 10
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(36)
        func emit(_ v: UInt64, _ nibbles: Int, _ shift: Int) {
            for i in 0..<nibbles {
                out.append(digits[Int((v >> UInt64(shift - 4 * (i + 1))) & 0xF)])
            }
        }
        emit(hi, 8, 64); out.append(0x2D)
        emit(hi, 4, 32); out.append(0x2D)
        emit(hi, 4, 16); out.append(0x2D)
        emit(lo, 4, 64); out.append(0x2D)
        emit(lo, 12, 48)
        return String(decoding: out, as: UTF8.self)
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
