// Small helpers of the proxy: a lock, JSON bytes, wall-clock time, request ids.
import NIOCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One object per thread (a pthread key): each thread sees the value it set. The values are
/// retained while set and released when the thread ends (or when the key's owner goes).
final class ThreadLocal<Value: AnyObject>: @unchecked Sendable {
    // @unchecked: the key is created once; each thread reads and writes only its own slot.
    private var key = pthread_key_t()

    init() {
        let rc = pthread_key_create(&key) { pointer in
            if let pointer { Unmanaged<AnyObject>.fromOpaque(pointer).release() }
        }
        precondition(rc == 0, "pthread_key_create failed: \(rc)")
    }

    deinit { pthread_key_delete(key) }

    var value: Value? {
        get {
            guard let p = pthread_getspecific(key) else { return nil }
            return Unmanaged<AnyObject>.fromOpaque(p).takeUnretainedValue() as? Value
        }
        set {
            if let old = pthread_getspecific(key) { Unmanaged<AnyObject>.fromOpaque(old).release() }
            let new = newValue.map { Unmanaged<AnyObject>.passRetained($0 as AnyObject).toOpaque() }
            pthread_setspecific(key, new)
        }
    }
}

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

/// JSON written straight into bytes (the access log's lines), without strings in between.
extension Array where Element == UInt8 {
    /// Literal JSON text.
    @inline(__always)
    mutating func raw(_ s: StaticString) {
        s.withUTF8Buffer { append(contentsOf: $0) }
    }

    mutating func jsonString(_ v: String?) {
        appendWritten(maxBytes: ByteCursor.maxStringBytes(v)) { $0.string(v) }
    }

    /// Appends what `write` puts through a `ByteCursor` (at most `maxBytes`).
    private mutating func appendWritten(maxBytes: Int, _ write: (inout ByteCursor) -> Void) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: maxBytes) { block in
            var c = ByteCursor(block.baseAddress!)
            write(&c)
            append(contentsOf: UnsafeBufferPointer(start: block.baseAddress, count: c.count))
        }
    }
}

/// Writes JSON text into a block of memory the caller has made big enough (the same text
/// the tests' reference `JSONLine` makes), without a capacity check per byte.
struct ByteCursor {
    private let p: UnsafeMutablePointer<UInt8>
    private(set) var count = 0

    init(_ p: UnsafeMutablePointer<UInt8>) { self.p = p }

    @inline(__always) mutating func byte(_ b: UInt8) {
        p[count] = b
        count += 1
    }

    @inline(__always) mutating func bytes(_ b: UnsafeBufferPointer<UInt8>) {
        guard let base = b.baseAddress, b.count > 0 else { return }
        (p + count).update(from: base, count: b.count)
        count += b.count
    }

    @inline(__always) mutating func raw(_ s: StaticString) {
        (p + count).update(from: s.utf8Start, count: s.utf8CodeUnitCount)
        count += s.utf8CodeUnitCount
    }

    /// The most bytes `string(v)` writes: quotes, and six bytes (`\u00XX`) for every byte
    /// that must be escaped.
    static func maxStringBytes(_ v: String?) -> Int {
        guard let v else { return 4 }
        return 2 + 6 * v.utf8.count
    }

    /// A quoted string, or `null`, escaped as the tests' reference `JSONLine.appendQuoted` escapes it. Strings are
    /// valid UTF-8, so bytes from 0x20 up are copied as they are.
    mutating func string(_ v: String?) {
        guard var v else { return raw("null") }
        v.withUTF8 { u in
            byte(UInt8(ascii: "\""))
            var plainFrom = 0
            for (i, b) in u.enumerated() where b < 0x20 || b == 0x22 || b == 0x5C {
                bytes(UnsafeBufferPointer(rebasing: u[plainFrom..<i]))
                plainFrom = i + 1
                byte(UInt8(ascii: "\\"))
                switch b {
                case 0x22, 0x5C: byte(b)
                case 0x0A: byte(UInt8(ascii: "n"))
                case 0x0D: byte(UInt8(ascii: "r"))
                case 0x09: byte(UInt8(ascii: "t"))
                default:
                    raw("u00")
                    byte(Self.hexDigit(b >> 4))
                    byte(Self.hexDigit(b & 0x0F))
                }
            }
            bytes(UnsafeBufferPointer(rebasing: u[plainFrom...]))
            byte(UInt8(ascii: "\""))
        }
    }

    /// The most bytes `requestID(v)` writes.
    static func maxRequestIDBytes(_ v: RequestIDValue?) -> Int {
        switch v {
        case .generated: return 2 + UUIDv4.textLength
        case .given(let s): return maxStringBytes(s)
        case nil: return 4
        }
    }

    /// A request id as a JSON string (a generated one needs no escaping).
    mutating func requestID(_ v: RequestIDValue?) {
        switch v {
        case .generated(let id):
            byte(UInt8(ascii: "\""))
            id.write(to: p + count)
            count += UUIDv4.textLength
            byte(UInt8(ascii: "\""))
        case .given(let s): string(s)
        case nil: raw("null")
        }
    }

    /// Lowercase, as `String(_:radix: 16)` writes it.
    private static func hexDigit(_ v: UInt8) -> UInt8 { v < 10 ? v + 0x30 : v - 10 + 0x61 }

    mutating func int(_ v: Int) {
        if v < 0 { byte(UInt8(ascii: "-")) }
        digits(v.magnitude)
    }

    mutating func digits(_ v: UInt) {
        var n = v
        var width = 1
        while n >= 10 {
            n /= 10
            width += 1
        }
        n = v
        var i = count + width
        count = i
        repeat {
            i -= 1
            p[i] = UInt8(truncatingIfNeeded: n % 10) + 0x30
            n /= 10
        } while n > 0
    }

    /// A duration in milliseconds with three decimals (`null` for nil), as
    /// the tests' reference `JSONLine.add(_:milliseconds:)` writes it.
    mutating func milliseconds(_ nanos: Int64?) {
        guard let nanos else { return raw("null") }
        let micros = Swift.max(0, (nanos + 500) / 1000)
        let frac = Int(micros % 1000)
        digits(UInt(micros / 1000))
        byte(UInt8(ascii: "."))
        threeDigits(frac)
    }

    /// `v` (0...999) as exactly three digits.
    @inline(__always) mutating func threeDigits(_ v: Int) {
        byte(UInt8(truncatingIfNeeded: v / 100) + 0x30)
        byte(UInt8(truncatingIfNeeded: v / 10 % 10) + 0x30)
        byte(UInt8(truncatingIfNeeded: v % 10) + 0x30)
    }
}

enum WallClock {
    /// RFC 3339 in UTC with milliseconds (`"2024-05-01T12:34:56.789Z"`, quoted), appended to
    /// `out`; the civil date computed without gmtime (the tests compare it with gmtime_r).
    static func appendRFC3339(_ nanos: Int64, to out: inout [UInt8]) {
        let seconds = nanos >= 0 ? nanos / 1_000_000_000 : (nanos - 999_999_999) / 1_000_000_000
        let millis = Int((nanos - seconds * 1_000_000_000) / 1_000_000)
        var days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let secOfDay = Int(seconds - days * 86400)
        // Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's civil_from_days).
        days += 719_468
        let era = (days >= 0 ? days : days - 146_096) / 146_097
        let doe = days - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = Int(doy - (153 * mp + 2) / 5 + 1)
        let month = Int(mp < 10 ? mp + 3 : mp - 9)
        let year = Int(yoe + era * 400) + (month <= 2 ? 1 : 0)
        func put(_ v: Int, _ width: Int) {
            var div = 1
            for _ in 1..<width { div *= 10 }
            var v = v
            while div > 0 {
                out.append(UInt8(truncatingIfNeeded: v / div % 10) + 0x30)
                v %= div
                div /= 10
            }
        }
        out.append(UInt8(ascii: "\""))
        put(year, 4); out.append(0x2D)
        put(month, 2); out.append(0x2D)
        put(day, 2); out.append(0x54)
        put(secOfDay / 3600, 2); out.append(0x3A)
        put(secOfDay / 60 % 60, 2); out.append(0x3A)
        put(secOfDay % 60, 2); out.append(0x2E)
        put(millis, 3); out.append(0x5A)
        out.append(UInt8(ascii: "\""))
    }

    /// Nanoseconds since the Unix epoch.
    static func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }
}

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
