// A JSON tree for what has no fixed shape: expectation files (every key optional, the user's
// assertions) and the structural diff of an expectation against a typed report.
import Foundation

/// Any JSON value. Integers stay integers (`200`, not `200.0`); an integer and a double of the
/// same value are the same (`same`).
public enum JSONValue: Codable, Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? c.decode(Int64.self) {
            self = .int(i)
        } else if let d = try? c.decode(Double.self) {
            self = .double(d)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let a = try? c.decode([JSONValue].self) {
            self = .array(a)
        } else {
            self = .object(try c.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .int(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    /// The tree of a typed value (its `Encodable` form; a nil optional is an absent key).
    public init(encoding value: some Encodable) {
        do {
            self = try ReportCoding.decode(JSONValue.self, from: try JSONEncoder().encode(value))
        } catch {
            preconditionFailure("a report value that does not encode as JSON: \(error)")
        }
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] } else { return nil }
    }

    public var string: String? { if case .string(let s) = self { return s } else { return nil } }
    public var bool: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    public var array: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }
    public var object: [String: JSONValue]? { if case .object(let o) = self { return o } else { return nil } }

    public var number: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    public var isNull: Bool { self == .null }

    /// Equality of JSON values: absent and null are the same, so are `1` and `1.0`.
    public static func same(_ x: JSONValue?, _ y: JSONValue?) -> Bool {
        let xn = x == nil || x == .null, yn = y == nil || y == .null
        if xn || yn { return xn && yn }
        switch (x!, y!) {
        case (.array(let a), .array(let b)): return a.count == b.count && zip(a, b).allSatisfy { same($0, $1) }
        case (.object(let a), .object(let b)): return Set(a.keys).union(b.keys).allSatisfy { same(a[$0], b[$0]) }
        case (let a, let b):
            if let m = a.number, let n = b.number { return m == n }
            return a == b
        }
    }

    /// As a message shows it: strings as they are, the rest as compact JSON (keys sorted).
    public static func show(_ v: JSONValue?) -> String {
        guard let v else { return "null" }
        if case .string(let s) = v { return s }
        return v.text(separator: ",", colon: ":")
    }

    /// JSON text with keys sorted, items joined by `separator` and keys followed by `colon`.
    public func text(separator: String, colon: String) -> String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d):
            // As Foundation's NSNumber spells it: a whole number without `.0`.
            if d.rounded() == d, abs(d) < 1e15 { return String(Int64(d)) }
            return String(d)
        case .string(let s):
            let w = JSONWriter(capacity: s.utf8.count + 16)
            w.escaped(s)
            return w.string
        case .array(let a): return "[" + a.map { $0.text(separator: separator, colon: colon) }.joined(separator: separator) + "]"
        case .object(let o):
            return "{" + o.keys.sorted().map {
                JSONValue.string($0).text(separator: separator, colon: colon) + colon + o[$0]!.text(separator: separator, colon: colon)
            }.joined(separator: separator) + "}"
        }
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
    public init(nilLiteral: ()) { self = .null }
}

/// Reading the reports back: Foundation's decoder, off the hot path.
public enum ReportCoding {
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: some Collection<UInt8>) throws -> T {
        try JSONDecoder().decode(type, from: bytes as? Data ?? Data(bytes))
    }

    /// The one-line summaries of `check` and `lab` (`--format json`): keys sorted, `/` as it is.
    public static func sortedJSON(_ value: some Encodable) throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try e.encode(value), as: UTF8.self)
    }

    /// Each line of a jsonl text decoded as `T` (blank lines skipped; a line that is not a `T`
    /// is skipped when `skippingInvalid`, else an error).
    public static func lines<T: Decodable>(_ type: T.Type, from text: some StringProtocol, skippingInvalid: Bool = false) throws -> [T] {
        var out: [T] = []
        for line in text.split(separator: "\n") where !line.allSatisfy(\.isWhitespace) {
            do { out.append(try decode(type, from: Array(line.utf8))) } catch { if !skippingInvalid { throw error } }
        }
        return out
    }
}
