/// A small JSON object builder for the few objects written once per run (summaries, counters):
/// keys in insertion order, written by `JSONWriter` (the one escaper). Chains, hops and
/// exchanges go straight into a `JSONWriter` instead.
public struct JSONObject {
    private var writer: JSONWriter

    public init() {
        writer = JSONWriter(capacity: 256)
        writer.beginObject()
    }

    /// The writer, copied first if this value was copied (value semantics).
    private mutating func w() -> JSONWriter {
        if !isKnownUniquelyReferenced(&writer) {
            let copy = JSONWriter(capacity: writer.count + 64)
            copy.raw(writer.string)
            copy.needsComma = writer.needsComma
            writer = copy
        }
        return writer
    }

    public mutating func add(_ k: String, _ v: String?) {
        let w = w(); w.key(k); w.string(v)
    }

    public mutating func add<I: BinaryInteger>(_ k: String, _ v: I?) {
        let w = w(); w.key(k); w.int(v)
    }

    public mutating func add(_ k: String, _ v: Bool?) {
        let w = w(); w.key(k); w.bool(v)
    }

    public mutating func add(_ k: String, _ v: Double?) {
        let w = w(); w.key(k); w.double(v)
    }

    /// Adds an already-encoded JSON value (object or array).
    public mutating func addRaw(_ k: String, _ json: String) {
        let w = w(); w.key(k); w.rawValue(json)
    }

    public mutating func add(_ k: String, strings: [String]) {
        let w = w(); w.key(k); w.strings(strings)
    }

    public var json: String { writer.string + "}" }

    /// `s` as a JSON string (quoted and escaped), appended to `out`.
    public static func appendString(_ s: String, to out: inout String) {
        let w = JSONWriter(capacity: s.utf8.count + 16)
        w.escaped(s)
        out += w.string
    }

    public static func array(_ items: [String]) -> String { "[" + items.joined(separator: ",") + "]" }
}
