#if canImport(Glibc)
import Glibc
#endif
import HopCapture

/// Buffered writes to a file descriptor; line-buffered on request (`-l`).
///
/// The buffer is one growable block of bytes owned here (a `LineBuilder`): lines are
/// formatted straight into it and a flush writes it and rewinds, so the steady state
/// allocates nothing (an `[UInt8]` emptied with `removeAll(keepingCapacity:)` was
/// reallocated — and page-faulted — on every flush).
public final class Output {
    // Touched only by the thread that writes this stream; no dynamic exclusivity checks.
    @exclusivity(unchecked) private var buffer = LineBuilder(capacity: Output.flushBytes + 4096)
    private let fd: Int32
    @exclusivity(unchecked) public var lineBuffered: Bool

    /// A flush happens once this many bytes are buffered.
    public static let flushBytes = 1 << 16

    public init(fd: Int32, lineBuffered: Bool = false) {
        self.fd = fd
        self.lineBuffered = lineBuffered
    }

    nonisolated(unsafe) public static let stdout = Output(fd: 1)
    nonisolated(unsafe) public static let stderr = Output(fd: 2, lineBuffered: true)

    public func write(_ s: String) {
        buffer.text(s)
        if buffer.count >= Output.flushBytes { flush() }
    }

    public func line(_ s: String) {
        buffer.text(s)
        buffer.byte(10)
        if lineBuffered || buffer.count >= Output.flushBytes { flush() }
    }

    /// Appends a line built with `LineBuilder` (no String on the way).
    @inline(__always)
    public func line(_ build: (inout LineBuilder) -> Void) {
        build(&buffer)
        buffer.byte(10)
        if lineBuffered || buffer.count >= Output.flushBytes { flush() }
    }

    public func flush() {
        if buffer.count == 0 { return }
        writeAll(UnsafeRawBufferPointer(start: buffer.base, count: buffer.count))
        buffer.count = 0
    }

    /// Writes bytes made elsewhere (a `JSONWriter`'s block) after what is buffered, without
    /// copying them into the buffer.
    public func write(bytes: UnsafeRawBufferPointer) {
        if buffer.count + bytes.count <= Output.flushBytes {
            buffer.append(bytes)
            if lineBuffered { flush() }
            return
        }
        flush()
        writeAll(bytes)
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress else { return }
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, base + offset, bytes.count - offset)
            if n <= 0 {
                if n < 0 && errno == EINTR { continue }
                break  // EPIPE or closed: drop the rest (e.g. `| head`).
            }
            offset += n
        }
    }

    deinit {
        flush()
        buffer.deallocate()
    }
}

/// Formats text straight into a growable block of bytes: numbers, addresses and times
/// without String interpolation (the per-exchange hot path of `http` and `analyze`).
///
/// It owns its memory manually (no array bounds or uniqueness checks per byte): whoever
/// makes one calls `deallocate()` (`Output` does in deinit; `LineBuilder.string` does itself).
public struct LineBuilder {
    public private(set) var base: UnsafeMutablePointer<UInt8>
    public var count = 0
    public private(set) var capacity: Int
    /// The second (since the epoch) last written by `timeOfDay`, and its text.
    private var cachedSecond: Int64 = .min
    private var cachedSecondText: UInt64 = 0

    public init(capacity: Int = 256) {
        self.capacity = max(capacity, 64)
        base = .allocate(capacity: self.capacity)
    }

    public func deallocate() { base.deallocate() }

    /// The text `build` makes, as a String.
    public static func string(_ build: (inout LineBuilder) -> Void) -> String {
        made(by: build) { String(decoding: $0, as: UTF8.self) }
    }

    /// The bytes `build` makes.
    public static func bytes(_ build: (inout LineBuilder) -> Void) -> [UInt8] {
        made(by: build) { Array($0) }
    }

    /// Runs `build` on a builder of its own and hands what it made to `take`.
    private static func made<T>(by build: (inout LineBuilder) -> Void, _ take: (UnsafeBufferPointer<UInt8>) -> T) -> T {
        var b = LineBuilder()
        build(&b)
        defer { b.deallocate() }
        return take(UnsafeBufferPointer(start: b.base, count: b.count))
    }

    /// Makes room for `n` more bytes.
    @inline(__always) public mutating func reserve(_ n: Int) {
        if count + n > capacity { grow(count + n) }
    }

    @inline(never) private mutating func grow(_ needed: Int) {
        var c = capacity * 2
        while c < needed { c *= 2 }
        let nb = UnsafeMutablePointer<UInt8>.allocate(capacity: c)
        nb.initialize(from: base, count: count)
        base.deallocate()
        base = nb
        capacity = c
    }

    @inline(__always) public mutating func append(_ p: UnsafeRawBufferPointer) {
        guard p.count > 0 else { return }
        reserve(p.count)
        UnsafeMutableRawPointer(base + count).copyMemory(from: p.baseAddress!, byteCount: p.count)
        count += p.count
    }

    @inline(__always) public mutating func ascii(_ s: StaticString) {
        s.withUTF8Buffer { append(UnsafeRawBufferPointer($0)) }
    }

    /// Removes the byte at `index` (the rest moves down by one).
    public mutating func remove(at index: Int) {
        guard index < count else { return }
        memmove(base + index, base + index + 1, count - index - 1)
        count -= 1
    }

    @inline(__always) public mutating func byte(_ b: UInt8) {
        reserve(1)
        base[count] = b
        count += 1
    }

    public mutating func text(_ s: String) {
        var s = s
        s.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    public mutating func int<I: BinaryInteger>(_ v: I) {
        reserve(21)
        count = writeDecimal(v, to: base, at: count)
    }

    /// `v` zero-padded to `width` digits (at most 20).
    public mutating func padded(_ v: Int64, _ width: Int) {
        reserve(width)
        var x = UInt64(v.magnitude)
        var i = count + width
        count = i
        while i > count - width {
            i -= 1
            base[i] = 0x30 &+ UInt8(truncatingIfNeeded: x % 10)
            x /= 10
        }
    }

    /// `HH:MM:SS.nnnnnnnnn` (UTC, or local time), like `Timestamp.timeOfDay`.
    public mutating func timeOfDay(_ ns: Int64) {
        var secs = ns / 1_000_000_000
        var nanos = ns % 1_000_000_000
        if nanos < 0 { nanos += 1_000_000_000; secs -= 1 }
        // `HH:MM:SS` changes once a second: lines in a row mostly share it (and its time zone).
        if secs != cachedSecond {
            cachedSecond = secs
            var sod = (Timestamp.localTime ? secs &+ Timestamp.localOffset(seconds: secs) : secs) % 86_400
            if sod < 0 { sod += 86_400 }
            let h = sod / 3600, m = sod / 60 % 60, sec = sod % 60
            let digits: [Int64] = [h / 10, h % 10, -1, m / 10, m % 10, -1, sec / 10, sec % 10]
            var t: UInt64 = 0
            for d in digits { t = t << 8 | UInt64(d < 0 ? 0x3a : 0x30 + d) }
            cachedSecondText = t
        }
        reserve(9)
        let t = cachedSecondText
        for i in 0..<8 { base[count + i] = UInt8(truncatingIfNeeded: t >> UInt64(8 * (7 - i))) }
        base[count + 8] = 0x2e
        count += 9
        padded(nanos, 9)
    }

    /// A duration as `Timestamp.duration` spells it (`840 ns`, `12.3 µs`, `4.56 ms`, `1.234 s`);
    /// any `Int64` (no multiplication, so no overflow).
    public mutating func duration(_ ns: Int64) {
        let (negative, q, decimals, unit) = Timestamp.durationParts(ns)
        if negative { byte(0x2d) }
        if decimals == 0 {
            int(q)
        } else {
            var scale: UInt64 = 1
            for _ in 0..<decimals { scale *= 10 }
            int(q / scale); byte(0x2e); padded(Int64(q % scale), decimals)
        }
        ascii(unit)
    }

    /// `ip:port`, IPv6 in brackets (as `Endpoint.description`).
    public mutating func endpoint(_ e: Endpoint) {
        if let v4 = e.address.ipv4Value {
            int(v4 >> 24); byte(0x2e); int((v4 >> 16) & 0xff); byte(0x2e); int((v4 >> 8) & 0xff); byte(0x2e); int(v4 & 0xff)
        } else {
            byte(0x5b); text(e.address.description); byte(0x5d)
        }
        byte(0x3a)
        int(e.port)
    }
}
