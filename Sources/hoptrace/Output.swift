#if canImport(Glibc)
import Glibc
#endif

/// Buffered writes to a file descriptor; line-buffered on request (`-l`).
final class Output {
    private var buffer: [UInt8] = []
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

/// A small JSON object builder: keys in insertion order, strings escaped per RFC 8259.
struct JSONObject {
    private var text = "{"
    private var first = true

    private mutating func key(_ k: String) {
        if !first { text += "," }
        first = false
        JSONObject.appendString(k, to: &text)
        text += ":"
    }

    mutating func add(_ k: String, _ v: String?) {
        key(k)
        if let v { JSONObject.appendString(v, to: &text) } else { text += "null" }
    }

    mutating func add<I: BinaryInteger>(_ k: String, _ v: I?) {
        key(k)
        if let v { text += String(v) } else { text += "null" }
    }

    mutating func add(_ k: String, _ v: Bool?) {
        key(k)
        if let v { text += v ? "true" : "false" } else { text += "null" }
    }

    mutating func add(_ k: String, _ v: Double?) {
        key(k)
        if let v, v.isFinite { text += String(v) } else { text += "null" }
    }

    /// Adds an already-encoded JSON value (object or array).
    mutating func addRaw(_ k: String, _ json: String) {
        key(k)
        text += json
    }

    mutating func add(_ k: String, strings: [String]) {
        key(k)
        text += "["
        for (i, s) in strings.enumerated() {
            if i > 0 { text += "," }
            JSONObject.appendString(s, to: &text)
        }
        text += "]"
    }

    var json: String { text + "}" }

    static func appendString(_ s: String, to out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(u)
            }
        }
        out += "\""
    }

    static func array(_ items: [String]) -> String { "[" + items.joined(separator: ",") + "]" }
}
