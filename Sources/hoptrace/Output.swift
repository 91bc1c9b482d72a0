#if canImport(Glibc)
import Glibc
#endif
import HopCapture

/// Buffered writes to a file descriptor; line-buffered on request (`-l`).
final class Output {
    // Touched only by the thread that writes this stream; no dynamic exclusivity checks.
    @exclusivity(unchecked) private var buffer: [UInt8] = []
    private let fd: Int32
    var lineBuffered: Bool

    init(fd: Int32, lineBuffered: Bool = false) {
        self.fd = fd
        self.lineBuffered = lineBuffered
        buffer.reserveCapacity(1 << 16)
    }

    nonisolated(unsafe) static let stdout = Output(fd: 1)
    nonisolated(unsafe) static let stderr = Output(fd: 2, lineBuffered: true)

    func write(_ s: String) {
        var s = s
        s.withUTF8 { buffer.append(contentsOf: $0) }
        if buffer.count >= 1 << 16 { flush() }
    }

    func line(_ s: String) {
        write(s)
        buffer.append(10)
        if lineBuffered || buffer.count >= 1 << 16 { flush() }
    }

    /// Appends bytes of a line built with `LineBuilder` (no String on the way).
    @inline(__always)
    func line(_ build: (inout LineBuilder) -> Void) {
        var b = LineBuilder(bytes: buffer)
        buffer = []
        build(&b)
        b.bytes.append(10)
        buffer = b.bytes
        if lineBuffered || buffer.count >= 1 << 16 { flush() }
    }

    func flush() {
        var offset = 0
        while offset < buffer.count {
            let n = buffer.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n <= 0 {
                if n < 0 && errno == EINTR { continue }
                break  // EPIPE or closed: drop the rest (e.g. `| head`).
            }
            offset += n
        }
        buffer.removeAll(keepingCapacity: true)
    }

    deinit { flush() }
}

/// Formats a line straight into bytes: numbers, addresses and times without String
/// interpolation (the per-exchange hot path of `http` and `analyze`).
struct LineBuilder {
    var bytes: [UInt8]

    @inline(__always) mutating func ascii(_ s: StaticString) {
        s.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    @inline(__always) mutating func byte(_ b: UInt8) { bytes.append(b) }

    mutating func text(_ s: String) {
        var s = s
        s.withUTF8 { bytes.append(contentsOf: $0) }
    }

    mutating func int<I: BinaryInteger>(_ v: I) {
        if v < 0 { bytes.append(0x2d) }
        var m = UInt64(v.magnitude)
        if m < 10 { bytes.append(0x30 + UInt8(m)); return }
        var tmp: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                  UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0
        withUnsafeMutableBytes(of: &tmp) { t in
            while m > 0 { t[n] = 0x30 + UInt8(m % 10); m /= 10; n += 1 }
            for i in stride(from: n - 1, through: 0, by: -1) { bytes.append(t[i]) }
        }
    }

    /// `v` zero-padded to `width` digits (at most 20).
    mutating func padded(_ v: Int64, _ width: Int) {
        var tmp: (UInt64, UInt64, UInt64) = (0, 0, 0)
        var x = UInt64(v.magnitude)
        withUnsafeMutableBytes(of: &tmp) { t in
            var i = width
            while i > 0 {
                i -= 1
                t[i] = 0x30 &+ UInt8(truncatingIfNeeded: x % 10)
                x /= 10
            }
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: t[0..<width]))
        }
    }

    /// `HH:MM:SS.nnnnnnnnn` (UTC), like `Timestamp.timeOfDay`.
    mutating func timeOfDay(_ ns: Int64) {
        var secs = ns / 1_000_000_000
        var nanos = ns % 1_000_000_000
        if nanos < 0 { nanos += 1_000_000_000; secs -= 1 }
        var sod = secs % 86_400
        if sod < 0 { sod += 86_400 }
        padded(sod / 3600, 2); byte(0x3a)
        padded(sod / 60 % 60, 2); byte(0x3a)
        padded(sod % 60, 2); byte(0x2e)
        padded(nanos, 9)
    }

    /// A duration as `Timestamp.duration` spells it (`840 ns`, `12.3 µs`, `4.56 ms`, `1.234 s`).
    mutating func duration(_ ns: Int64) {
        var a = ns
        if a < 0 { byte(0x2d); a = -a }
        func fixed(_ b: inout LineBuilder, _ unit: Int64, _ decimals: Int) {
            var scale: Int64 = 1
            for _ in 0..<decimals { scale *= 10 }
            let q = a * scale / unit
            b.int(q / scale); b.byte(0x2e); b.padded(q % scale, decimals)
        }
        if a < 1_000 { int(a); ascii(" ns") }
        else if a < 1_000_000 { fixed(&self, 1_000, 1); ascii(" µs") }
        else if a < 1_000_000_000 { fixed(&self, 1_000_000, 2); ascii(" ms") }
        else { fixed(&self, 1_000_000_000, 3); ascii(" s") }
    }

    /// `ip:port`, IPv6 in brackets (as `Endpoint.description`).
    mutating func endpoint(_ e: Endpoint) {
        if let v4 = e.address.ipv4Value {
            int(v4 >> 24); byte(0x2e); int((v4 >> 16) & 0xff); byte(0x2e); int((v4 >> 8) & 0xff); byte(0x2e); int(v4 & 0xff)
        } else {
            byte(0x5b); text(e.address.description); byte(0x5d)
        }
        byte(0x3a)
        int(e.port)
    }
}
