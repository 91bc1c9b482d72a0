// The access log's JSON, written as bytes: a cursor over memory made big enough, and the
// array appends built on it.

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
