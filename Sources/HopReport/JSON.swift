/// A small JSON object builder: keys in insertion order, strings escaped per RFC 8259.
public struct JSONObject {
    public init() {}
    private var text = "{"
    private var first = true

    private mutating func key(_ k: String) {
        if !first { text += "," }
        first = false
        JSONObject.appendString(k, to: &text)
        text += ":"
    }

    public mutating func add(_ k: String, _ v: String?) {
        key(k)
        if let v { JSONObject.appendString(v, to: &text) } else { text += "null" }
    }

    public mutating func add<I: BinaryInteger>(_ k: String, _ v: I?) {
        key(k)
        if let v { text += String(v) } else { text += "null" }
    }

    public mutating func add(_ k: String, _ v: Bool?) {
        key(k)
        if let v { text += v ? "true" : "false" } else { text += "null" }
    }

    public mutating func add(_ k: String, _ v: Double?) {
        key(k)
        if let v, v.isFinite { text += String(v) } else { text += "null" }
    }

    /// Adds an already-encoded JSON value (object or array).
    public mutating func addRaw(_ k: String, _ json: String) {
        key(k)
        text += json
    }

    public mutating func add(_ k: String, strings: [String]) {
        key(k)
        text += "["
        for (i, s) in strings.enumerated() {
            if i > 0 { text += "," }
            JSONObject.appendString(s, to: &text)
        }
        text += "]"
    }

    public var json: String { text + "}" }

    public static func appendString(_ s: String, to out: inout String) {
        out += "\""
        // Fast path: nothing to escape (the usual case) — append the whole string.
        var clean = true
        for b in s.utf8 where b < 0x20 || b == 0x22 || b == 0x5c { clean = false; break }
        if clean {
            out += s
        } else {
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
        }
        out += "\""
    }

    public static func array(_ items: [String]) -> String { "[" + items.joined(separator: ",") + "]" }
}

