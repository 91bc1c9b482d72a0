// Reference implementations the access log's byte writer (`ByteCursor`, `WallClock.appendRFC3339`)
// is tested against: plain string building, and the time through the C library's gmtime_r.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
@testable import HopProxy

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

extension WallClock {
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
