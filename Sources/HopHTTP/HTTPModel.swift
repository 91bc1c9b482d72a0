import HopCapture
import HopFlows
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The values HopHTTP hands to its consumers: one `HTTPExchange` per request/response pair
// (or per unanswered request, or per response whose request was never seen), in the order
// the requests were sent on their connection.

/// `HTTP/major.minor`.
public struct HTTPVersion: Sendable, Hashable, CustomStringConvertible {
    public var major: Int
    public var minor: Int
    public init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }
    public static let http10 = HTTPVersion(major: 1, minor: 0)
    public static let http11 = HTTPVersion(major: 1, minor: 1)
    public var description: String { "HTTP/\(major).\(minor)" }
}

/// One header field as it appeared (obs-fold continuation lines joined with a space).
public struct HTTPHeader: Sendable, Hashable {
    public var name: String
    public var value: String
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// Header fields in wire order, duplicates kept; lookups ignore ASCII case.
///
/// Stored compactly in one allocation: the raw bytes of the head followed by the byte ranges
/// of each name and value, so parsing allocates once per head whatever the number of fields.
/// Strings are made only when a field is read (`self[i]`, `self["name"]`, `fields`).
/// (`@unchecked Sendable`: the shared buffer is never written after it is filled.)
public struct HTTPHeaders: @unchecked Sendable, Hashable, RandomAccessCollection, ExpressibleByArrayLiteral {
    struct Span: Sendable, Hashable {
        var nameStart: Int32
        var nameEnd: Int32
        var valueStart: Int32
        var valueEnd: Int32
    }

    /// Field bytes, then `count` spans (4 × Int32 each) from `spanBase`; nil when empty.
    var buffer: HeadStorage?
    var spanBase: Int
    public private(set) var count: Int

    public init() {
        buffer = nil
        spanBase = 0
        count = 0
    }

    public init(_ fields: [HTTPHeader]) {
        if fields.isEmpty {
            self.init()
            return
        }
        var bytes: [UInt8] = []
        var spans: [Span] = []
        for f in fields {
            let ns = Int32(bytes.count)
            bytes.append(contentsOf: f.name.utf8)
            let vs = Int32(bytes.count)
            bytes.append(contentsOf: f.value.utf8)
            spans.append(Span(nameStart: ns, nameEnd: vs, valueStart: vs, valueEnd: Int32(bytes.count)))
        }
        self.init(bytes: bytes, spans: spans)
    }

    public init(arrayLiteral elements: (String, String)...) {
        if elements.isEmpty {
            self.init()
            return
        }
        self.init(elements.map { HTTPHeader(name: $0.0, value: $0.1) })
    }

    /// Packs `bytes + extra` and `spans` (ranges in them) into one buffer.
    init(bytes: UnsafeRawBufferPointer, extra: [UInt8], spans: UnsafeBufferPointer<Span>) {
        let n = bytes.count + extra.count
        let base = (n + 7) & ~7
        let total = base + spans.count * MemoryLayout<Span>.stride
        let storage = unsafeDowncast(HeadStorage.create(minimumCapacity: total) { _ in total }, to: HeadStorage.self)
        storage.withUnsafeMutablePointerToElements { p in
            let out = UnsafeMutableRawPointer(p)
            if bytes.count > 0 { out.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
            if !extra.isEmpty {
                extra.withUnsafeBytes { out.advanced(by: bytes.count).copyMemory(from: $0.baseAddress!, byteCount: extra.count) }
            }
            if spans.count > 0 {
                out.advanced(by: base).copyMemory(from: UnsafeRawPointer(spans.baseAddress!),
                                                  byteCount: spans.count * MemoryLayout<Span>.stride)
            }
        }
        buffer = storage
        spanBase = base
        count = spans.count
    }

    /// A storage already filled: field bytes, then `count` spans from `spanBase` (its header
    /// the bytes initialized, spans included).
    init(storage: HeadStorage, spanBase: Int, count: Int) {
        buffer = count > 0 ? storage : nil
        self.spanBase = spanBase
        self.count = count
    }

    init(bytes: [UInt8], spans: [Span]) {
        self = bytes.withUnsafeBytes { b in spans.withUnsafeBufferPointer { HTTPHeaders(bytes: b, extra: [], spans: $0) } }
    }

    /// The field bytes. Valid while `self` is alive (callers use `withExtendedLifetime`).
    @inline(__always)
    var raw: UnsafeRawBufferPointer {
        guard let buffer else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return buffer.withUnsafeMutablePointerToElements { UnsafeRawBufferPointer(start: $0, count: buffer.header) }
    }

    @inline(__always)
    func span(_ i: Int) -> Span {
        withExtendedLifetime(self) { raw.loadUnaligned(fromByteOffset: spanBase + i * MemoryLayout<Span>.stride, as: Span.self) }
    }

    var spans: [Span] { (0..<count).map(span) }

    /// Which fields of which storage these are: equal keys, while both storages live, are the
    /// same fields (a storage is never written once packed). Nil when empty.
    struct StorageKey: Equatable {
        let storage: ObjectIdentifier
        let spanBase: Int
        let count: Int
    }

    /// Whether another value holds the same storage (the decoder's repeats, another stream):
    /// false for empty fields and for a storage only these hold.
    @inline(__always)
    mutating func storageIsShared() -> Bool {
        buffer != nil && !isKnownUniquelyReferenced(&buffer)
    }

    @inline(__always)
    var storageKey: StorageKey? {
        guard let buffer else { return nil }
        return StorageKey(storage: ObjectIdentifier(buffer), spanBase: spanBase, count: count)
    }

    public mutating func append(name: String, value: String) {
        var bytes = withExtendedLifetime(self) { Array(raw[0..<spanBase]) }
        var spans = self.spans
        let ns = Int32(bytes.count)
        bytes.append(contentsOf: name.utf8)
        let vs = Int32(bytes.count)
        bytes.append(contentsOf: value.utf8)
        spans.append(Span(nameStart: ns, nameEnd: vs, valueStart: vs, valueEnd: Int32(bytes.count)))
        self = HTTPHeaders(bytes: bytes, spans: spans)
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }

    public subscript(position: Int) -> HTTPHeader {
        HTTPHeader(name: name(at: position), value: value(at: position))
    }

    public func name(at i: Int) -> String {
        let sp = span(i)
        return string(sp.nameStart, sp.nameEnd)
    }

    public func value(at i: Int) -> String {
        let sp = span(i)
        return string(sp.valueStart, sp.valueEnd)
    }

    private func string(_ s: Int32, _ e: Int32) -> String {
        withExtendedLifetime(self) { String(decoding: UnsafeRawBufferPointer(rebasing: raw[Int(s)..<Int(e)]), as: UTF8.self) }
    }

    /// Whether field `i` is called `name` (ASCII case ignored), without making a String.
    public func nameMatches(_ i: Int, _ name: String) -> Bool {
        let sp = span(i)
        let u = name.utf8
        guard Int(sp.nameEnd - sp.nameStart) == u.count else { return false }
        return withExtendedLifetime(self) {
            let r = raw
            var k = Int(sp.nameStart)
            for c in u {
                if lowerASCII(r[k]) != lowerASCII(c) { return false }
                k += 1
            }
            return true
        }
    }

    /// The first value of the field called `name` (any case), or nil.
    public subscript(name: String) -> String? {
        guard let i = firstIndex(named: name) else { return nil }
        return value(at: i)
    }

    /// The index of the first field called `name` (any case): one pass over the spans, lengths
    /// compared first.
    func firstIndex(named name: String) -> Int? {
        guard count > 0, let buffer else { return nil }
        var name = name
        return name.withUTF8 { q -> Int? in
            let len = Int32(q.count)
            return buffer.withUnsafeMutablePointerToElements { base -> Int? in
                let spans = UnsafeRawPointer(base + spanBase)
                for i in 0..<count {
                    let sp = spans.loadUnaligned(fromByteOffset: i * MemoryLayout<Span>.stride, as: Span.self)
                    guard sp.nameEnd - sp.nameStart == len else { continue }
                    let p = base + Int(sp.nameStart)
                    var k = 0
                    while k < q.count, lowerASCII(p[k]) == lowerASCII(q[k]) { k += 1 }
                    if k == q.count { return i }
                }
                return nil
            }
        }
    }

    /// Whether both carry the same fields in the same order (names without ASCII case, values
    /// byte for byte), leaving out on either side the fields whose name `ignored` picks (given
    /// the name's bytes). No String is made.
    public func sameFields(as other: HTTPHeaders, ignoring ignored: (UnsafeRawBufferPointer) -> Bool) -> Bool {
        withExtendedLifetime(self) {
            withExtendedLifetime(other) {
                let ra = raw, rb = other.raw
                func name(_ r: UnsafeRawBufferPointer, _ sp: Span) -> UnsafeRawBufferPointer {
                    UnsafeRawBufferPointer(rebasing: r[Int(sp.nameStart)..<Int(sp.nameEnd)])
                }
                var i = 0, j = 0
                while true {
                    while i < count, ignored(name(ra, span(i))) { i += 1 }
                    while j < other.count, ignored(name(rb, other.span(j))) { j += 1 }
                    if i == count || j == other.count { return i == count && j == other.count }
                    let x = span(i), y = other.span(j)
                    let nx = name(ra, x), ny = name(rb, y)
                    guard nx.count == ny.count, x.valueEnd - x.valueStart == y.valueEnd - y.valueStart else { return false }
                    for k in 0..<nx.count where lowerASCII(nx[k]) != lowerASCII(ny[k]) { return false }
                    let vx = UnsafeRawBufferPointer(rebasing: ra[Int(x.valueStart)..<Int(x.valueEnd)])
                    let vy = UnsafeRawBufferPointer(rebasing: rb[Int(y.valueStart)..<Int(y.valueEnd)])
                    if vx.count > 0 && memcmp(vx.baseAddress!, vy.baseAddress!, vx.count) != 0 { return false }
                    i += 1
                    j += 1
                }
            }
        }
    }

    /// Every value of the field called `name` (any case), in order.
    public func values(for name: String) -> [String] {
        (0..<count).filter { nameMatches($0, name) }.map { value(at: $0) }
    }

    public func contains(_ name: String) -> Bool {
        (0..<count).contains { nameMatches($0, name) }
    }

    /// The fields as values.
    public var fields: [HTTPHeader] { map { $0 } }

    /// The fields as (name, value) pairs, in order.
    public var pairs: [(name: String, value: String)] { map { ($0.name, $0.value) } }

    /// Bytes of a name or value.
    func bytes(_ s: Int32, _ e: Int32) -> [UInt8] { withExtendedLifetime(self) { Array(raw[Int(s)..<Int(e)]) } }

    public static func == (a: HTTPHeaders, b: HTTPHeaders) -> Bool {
        guard a.count == b.count else { return false }
        for i in 0..<a.count {
            let x = a.span(i), y = b.span(i)
            if a.bytes(x.nameStart, x.nameEnd) != b.bytes(y.nameStart, y.nameEnd) { return false }
            if a.bytes(x.valueStart, x.valueEnd) != b.bytes(y.valueStart, y.valueEnd) { return false }
        }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(count)
        for i in 0..<count {
            let x = span(i)
            for c in bytes(x.nameStart, x.nameEnd) { hasher.combine(c) }
            hasher.combine(0xff as UInt8)
            for c in bytes(x.valueStart, x.valueEnd) { hasher.combine(c) }
            hasher.combine(0xfe as UInt8)
        }
    }
}

/// One allocation holding a head's field bytes and spans; never mutated after creation.
/// The header counts the bytes initialized.
final class HeadStorage: ManagedBuffer<Int, UInt8> {}

func asciiCaseInsensitiveEquals(_ a: String, _ b: String) -> Bool {
    let x = a.utf8, y = b.utf8
    guard x.count == y.count else { return false }
    for (p, q) in zip(x, y) where p != q {
        guard p | 0x20 == q | 0x20, (p | 0x20) >= 0x61, (p | 0x20) <= 0x7a else { return false }
    }
    return true
}

/// How a message body was delimited.
public enum HTTPBodyFraming: Sendable, Hashable, CustomStringConvertible {
    /// No body (requests without length, HEAD responses, 1xx, 204, 304, tunnels).
    case none
    case contentLength(Int64)
    case chunked
    /// A response without length: the body runs to the connection's end.
    case untilClose

    public var description: String {
        switch self {
        case .none: "none"
        case .contentLength(let n): "content-length:\(n)"
        case .chunked: "chunked"
        case .untilClose: "until-close"
        }
    }
}

/// A request as parsed. Its fields live in one storage object shared by copies until one of
/// them is changed (copy on write, as SwiftNIO's `HTTPRequestHead`): an exchange, a hop, a
/// pairing candidate each carry a request, and copying one used to retain and release a
/// dozen references (method, target, headers, trailers, …) each time.
public struct HTTPRequest: Sendable, Hashable {
    @usableFromInline struct Fields: Hashable, Sendable {
        @usableFromInline var method: String
        @usableFromInline var target: String
        @usableFromInline var version: HTTPVersion
        @usableFromInline var headers: HTTPHeaders
        @usableFromInline var host: String?
        @usableFromInline var trailers: HTTPHeaders
        @usableFromInline var framing: HTTPBodyFraming = .none
        @usableFromInline var bodyLength: Int64
        @usableFromInline var bodyMissing: Int64 = 0
        @usableFromInline var bodyPrefix: [UInt8]
        @usableFromInline var firstTimestamp: Int64
        @usableFromInline var lastTimestamp: Int64
        @usableFromInline var complete: Bool
        @usableFromInline var malformedLine: String?
    }

    @usableFromInline var storage: CopyOnWrite<Fields>

    @inline(__always) private mutating func unique() -> CopyOnWrite<Fields> {
        if !isKnownUniquelyReferenced(&storage) { storage = CopyOnWrite(storage.fields) }
        return storage
    }

    public var method: String {
        @inlinable get { storage.fields.method }
        set { unique().fields.method = newValue; findHost() }
    }
    public var target: String {
        @inlinable get { storage.fields.target }
        set { unique().fields.target = newValue; findHost() }
    }
    public var version: HTTPVersion {
        @inlinable get { storage.fields.version }
        set { unique().fields.version = newValue }
    }
    public var headers: HTTPHeaders {
        @inlinable get { storage.fields.headers }
        set { unique().fields.headers = newValue; findHost() }
    }
    /// The Host header, or the authority of an absolute-form target (found once, when the
    /// request is made or changed: every report line and every pairing reads it).
    public var host: String? { @inlinable get { storage.fields.host } }
    /// Trailer fields of a chunked body.
    public var trailers: HTTPHeaders {
        @inlinable get { storage.fields.trailers }
        set { unique().fields.trailers = newValue }
    }
    public var framing: HTTPBodyFraming {
        @inlinable get { storage.fields.framing }
        set { unique().fields.framing = newValue }
    }
    /// Body bytes seen (for chunked bodies: the decoded payload, without chunk framing).
    public var bodyLength: Int64 {
        @inlinable get { storage.fields.bodyLength }
        set { unique().fields.bodyLength = newValue }
    }
    /// Body bytes known to be missing (lost in a capture gap) while the framing was kept.
    public var bodyMissing: Int64 {
        @inlinable get { storage.fields.bodyMissing }
        set { unique().fields.bodyMissing = newValue }
    }
    /// The body's first bytes, as captured (at most `HTTPConfiguration.bodyPrefixBytes`).
    public var bodyPrefix: [UInt8] {
        @inlinable get { storage.fields.bodyPrefix }
        set { unique().fields.bodyPrefix = newValue }
    }
    /// Capture time of the first byte of the request line.
    public var firstTimestamp: Int64 {
        @inlinable get { storage.fields.firstTimestamp }
        set { unique().fields.firstTimestamp = newValue }
    }
    /// Capture time of the last byte of the message (or of the last byte seen).
    public var lastTimestamp: Int64 {
        @inlinable get { storage.fields.lastTimestamp }
        set { unique().fields.lastTimestamp = newValue }
    }
    /// False when the message was cut by a gap, a parse error, a cap, or the connection's end.
    public var complete: Bool {
        @inlinable get { storage.fields.complete }
        set { unique().fields.complete = newValue }
    }
    /// A request whose request line could not be parsed, answered by a valid response: the
    /// line's first bytes (at most 64, escaped: `\\`, `\t`, `\xNN` outside printable ASCII).
    /// The method is then empty, the target is this text (so reports and groupings show the
    /// line) and the exchange is flagged `.requestMalformed`.
    public var malformedLine: String? {
        @inlinable get { storage.fields.malformedLine }
        set { unique().fields.malformedLine = newValue }
    }

    public init(method: String, target: String, version: HTTPVersion, headers: HTTPHeaders,
                firstTimestamp: Int64, lastTimestamp: Int64) {
        storage = CopyOnWrite(Fields(method: method, target: target, version: version, headers: headers,
                                     host: Self.host(method: method, target: target, headers: headers),
                                     trailers: HTTPHeaders(), bodyLength: 0, bodyPrefix: [],
                                     firstTimestamp: firstTimestamp, lastTimestamp: lastTimestamp, complete: false))
    }

    /// An HTTP/2 stream's request, every field given, its host already found (as
    /// `host(method:target:headers:)` finds it): built in one go.
    init(method: String, target: String, version: HTTPVersion, headers: HTTPHeaders, host: String?,
         trailers: HTTPHeaders, bodyLength: Int64, bodyPrefix: [UInt8], complete: Bool,
         firstTimestamp: Int64, lastTimestamp: Int64) {
        storage = CopyOnWrite(Fields(method: method, target: target, version: version, headers: headers, host: host,
                                     trailers: trailers, bodyLength: bodyLength, bodyPrefix: bodyPrefix,
                                     firstTimestamp: firstTimestamp, lastTimestamp: lastTimestamp, complete: complete))
    }

    public static func == (a: HTTPRequest, b: HTTPRequest) -> Bool {
        a.storage === b.storage || a.storage.fields == b.storage.fields
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(storage.fields) }

    private mutating func findHost() {
        let x = unique()
        x.fields.host = Self.host(method: x.fields.method, target: x.fields.target, headers: x.fields.headers)
    }

    static func host(method: String, target: String, headers: HTTPHeaders) -> String? {
        if let h = headers["host"] { return h }
        if let a = headers[":authority"] { return a }  // HTTP/2 (the field stays in the headers)
        if method == "CONNECT" { return target }
        if let r = target.range(of: "://") {
            let rest = target[r.upperBound...]
            let end = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
            return String(rest[..<end])
        }
        return nil
    }
}

/// A 1xx response other than 101 (100 Continue, 102 Processing, 103 Early Hints).
public struct HTTPInterimResponse: Sendable, Hashable {
    public var status: Int
    public var reason: String
    public var headers: HTTPHeaders
    public var firstTimestamp: Int64
    public var lastTimestamp: Int64
}

/// A response as parsed, its fields in storage shared by copies until one is changed (as
/// `HTTPRequest`'s).
public struct HTTPResponse: Sendable, Hashable {
    @usableFromInline struct Fields: Hashable, Sendable {
        @usableFromInline var status: Int
        @usableFromInline var reason: String
        @usableFromInline var version: HTTPVersion
        @usableFromInline var headers: HTTPHeaders
        @usableFromInline var trailers: HTTPHeaders
        @usableFromInline var framing: HTTPBodyFraming = .none
        @usableFromInline var bodyLength: Int64
        @usableFromInline var bodyMissing: Int64 = 0
        @usableFromInline var bodyPrefix: [UInt8]
        @usableFromInline var firstTimestamp: Int64
        @usableFromInline var lastTimestamp: Int64
        @usableFromInline var complete: Bool
        @usableFromInline var interim: [HTTPInterimResponse]
    }

    @usableFromInline var storage: CopyOnWrite<Fields>

    @inline(__always) private mutating func unique() -> CopyOnWrite<Fields> {
        if !isKnownUniquelyReferenced(&storage) { storage = CopyOnWrite(storage.fields) }
        return storage
    }

    public var status: Int {
        @inlinable get { storage.fields.status }
        set { unique().fields.status = newValue }
    }
    public var reason: String {
        @inlinable get { storage.fields.reason }
        set { unique().fields.reason = newValue }
    }
    public var version: HTTPVersion {
        @inlinable get { storage.fields.version }
        set { unique().fields.version = newValue }
    }
    public var headers: HTTPHeaders {
        @inlinable get { storage.fields.headers }
        set { unique().fields.headers = newValue }
    }
    public var trailers: HTTPHeaders {
        @inlinable get { storage.fields.trailers }
        set { unique().fields.trailers = newValue }
    }
    public var framing: HTTPBodyFraming {
        @inlinable get { storage.fields.framing }
        set { unique().fields.framing = newValue }
    }
    public var bodyLength: Int64 {
        @inlinable get { storage.fields.bodyLength }
        set { unique().fields.bodyLength = newValue }
    }
    public var bodyMissing: Int64 {
        @inlinable get { storage.fields.bodyMissing }
        set { unique().fields.bodyMissing = newValue }
    }
    /// The body's first bytes, as captured (at most `HTTPConfiguration.bodyPrefixBytes`).
    public var bodyPrefix: [UInt8] {
        @inlinable get { storage.fields.bodyPrefix }
        set { unique().fields.bodyPrefix = newValue }
    }
    public var firstTimestamp: Int64 {
        @inlinable get { storage.fields.firstTimestamp }
        set { unique().fields.firstTimestamp = newValue }
    }
    public var lastTimestamp: Int64 {
        @inlinable get { storage.fields.lastTimestamp }
        set { unique().fields.lastTimestamp = newValue }
    }
    public var complete: Bool {
        @inlinable get { storage.fields.complete }
        set { unique().fields.complete = newValue }
    }
    /// Interim (1xx) responses that preceded this one, in order.
    public var interim: [HTTPInterimResponse] {
        @inlinable get { storage.fields.interim }
        set { unique().fields.interim = newValue }
    }

    public init(status: Int, reason: String, version: HTTPVersion, headers: HTTPHeaders,
                firstTimestamp: Int64, lastTimestamp: Int64) {
        storage = CopyOnWrite(Fields(status: status, reason: reason, version: version, headers: headers,
                                     trailers: HTTPHeaders(), bodyLength: 0, bodyPrefix: [],
                                     firstTimestamp: firstTimestamp, lastTimestamp: lastTimestamp,
                                     complete: false, interim: []))
    }

    /// An HTTP/2 stream's response (no reason phrase), every field given.
    init(status: Int, version: HTTPVersion, headers: HTTPHeaders, trailers: HTTPHeaders, bodyLength: Int64,
         bodyPrefix: [UInt8], complete: Bool, interim: [HTTPInterimResponse], firstTimestamp: Int64, lastTimestamp: Int64) {
        storage = CopyOnWrite(Fields(status: status, reason: "", version: version, headers: headers, trailers: trailers,
                                     bodyLength: bodyLength, bodyPrefix: bodyPrefix,
                                     firstTimestamp: firstTimestamp, lastTimestamp: lastTimestamp,
                                     complete: complete, interim: interim))
    }

    public static func == (a: HTTPResponse, b: HTTPResponse) -> Bool {
        a.storage === b.storage || a.storage.fields == b.storage.fields
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(storage.fields) }
}

/// A value's fields behind one reference, shared by its copies until one of them changes them
/// (`HTTPRequest`, `HTTPResponse`: the owner makes a new box first when the box is shared). The
/// fields are written only while the box is its owner's alone, so they skip run-time
/// exclusivity checks.
@usableFromInline
final class CopyOnWrite<Fields: Sendable>: @unchecked Sendable {
    @usableFromInline @exclusivity(unchecked) var fields: Fields
    init(_ fields: Fields) { self.fields = fields }
}

/// What happened to an exchange besides the plain case.
public struct HTTPExchangeFlags: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// The request was cut (gap, parse error, header cap, connection end).
    public static let requestIncomplete = HTTPExchangeFlags(rawValue: 1 << 0)
    /// The response was cut.
    public static let responseIncomplete = HTTPExchangeFlags(rawValue: 1 << 1)
    /// The request was found by resynchronising after a gap, or bytes of it were lost in one.
    public static let requestAfterGap = HTTPExchangeFlags(rawValue: 1 << 2)
    /// The response was found by resynchronising after a gap, or bytes of it were lost in one.
    public static let responseAfterGap = HTTPExchangeFlags(rawValue: 1 << 3)
    /// No response was seen, and the response stream had a gap where it would have been.
    public static let lostInGap = HTTPExchangeFlags(rawValue: 1 << 4)
    /// CONNECT (2xx) or Upgrade (101): the rest of the connection is a tunnel.
    public static let tunnel = HTTPExchangeFlags(rawValue: 1 << 5)
    /// A tunnel whose client bytes start with a TLS ClientHello.
    public static let tls = HTTPExchangeFlags(rawValue: 1 << 6)
    /// The request had a parse error or hit the header-size cap.
    public static let requestMalformed = HTTPExchangeFlags(rawValue: 1 << 7)
    public static let responseMalformed = HTTPExchangeFlags(rawValue: 1 << 8)
    /// A header block was larger than `HTTPConfiguration.maxHeaderBytes`.
    public static let headerLimitExceeded = HTTPExchangeFlags(rawValue: 1 << 9)
    /// A response whose request was not seen (`request == nil`).
    public static let responseWithoutRequest = HTTPExchangeFlags(rawValue: 1 << 10)
    /// The connection was picked up mid-stream (no handshake captured).
    public static let midstream = HTTPExchangeFlags(rawValue: 1 << 11)
    /// Emitted early because too many requests were outstanding on the connection.
    public static let queueOverflow = HTTPExchangeFlags(rawValue: 1 << 12)
    /// The request carried both Transfer-Encoding and Content-Length (a smuggling indicator).
    public static let transferEncodingAndContentLength = HTTPExchangeFlags(rawValue: 1 << 13)

    static let names: [(HTTPExchangeFlags, String)] = [
        (.requestIncomplete, "request-incomplete"), (.responseIncomplete, "response-incomplete"),
        (.requestAfterGap, "request-after-gap"), (.responseAfterGap, "response-after-gap"),
        (.lostInGap, "lost-in-gap"), (.tunnel, "tunnel"), (.tls, "tls"),
        (.requestMalformed, "request-malformed"), (.responseMalformed, "response-malformed"),
        (.headerLimitExceeded, "header-limit"), (.responseWithoutRequest, "response-without-request"),
        (.midstream, "midstream"), (.queueOverflow, "queue-overflow"),
        (.transferEncodingAndContentLength, "te-and-cl"),
    ]

    public var names: [String] { Self.names.filter { contains($0.0) }.map(\.1) }
    public var description: String { "[" + names.joined(separator: ",") + "]" }
}

/// A connection's view, shared by the exchanges emitted while it did not change (an exchange
/// carries a reference, not a copy of the `Connection` and its arrays).
@usableFromInline
final class ConnectionBox: Sendable {
    @usableFromInline let value: Connection
    init(_ value: Connection) { self.value = value }
}

/// One request and its response, as seen on one connection.
public struct HTTPExchange: Sendable, Hashable {
    @usableFromInline var connectionBox: ConnectionBox
    /// The connection, as last known when the exchange was emitted.
    public var connection: Connection {
        get { connectionBox.value }
        set { connectionBox = ConnectionBox(newValue) }
    }
    /// 1, 2, 3… within the connection, in the order requests (or orphan responses) appeared.
    public var sequence: Int
    /// Nil only for a response whose request was never seen (`.responseWithoutRequest`).
    public var request: HTTPRequest?
    /// Nil when no response was seen.
    public var response: HTTPResponse?
    public var flags: HTTPExchangeFlags
    /// How many earlier requests on the connection were still unanswered when this one was
    /// sent: 0 for the usual one-at-a-time client, 1, 2… for pipelined requests.
    public var pipelinePosition: Int
    /// HTTP/2: the stream's protocol facts (HTTP2Model.swift); nil for HTTP/1.x. A reference
    /// (the facts are an immutable class): an HTTP/1 exchange carries one nil pointer through
    /// every copy instead of the stream's fields.
    public var http2: HTTP2StreamInfo?
    /// An encrypted turn (TLSModel.swift): `request` and `response` are then nil; nil for
    /// plaintext. Kept behind a reference: a plaintext exchange (nearly all) carries one nil
    /// pointer, not the turn's fields, through every copy.
    public var tls: TLSTurnInfo? {
        @inlinable get { tlsBox?.value }
        set { tlsBox = newValue.map(TLSTurnBox.init) }
    }
    @usableFromInline var tlsBox: TLSTurnBox?
    /// Whether the exchange is an HTTP/2 stream (without copying its facts).
    @inlinable public var isHTTP2: Bool { http2 != nil }
    /// Whether the exchange is an encrypted turn (without copying the turn).
    @inlinable public var isEncrypted: Bool { tlsBox != nil }

    /// `http2`: an HTTP/2 stream's facts.
    init(connection: ConnectionBox, sequence: Int, request: HTTPRequest?, response: HTTPResponse?,
         flags: HTTPExchangeFlags, pipelinePosition: Int, http2: HTTP2StreamInfo? = nil) {
        self.connectionBox = connection
        self.sequence = sequence
        self.request = request
        self.response = response
        self.flags = flags
        self.pipelinePosition = pipelinePosition
        self.http2 = http2
    }

    init(connection: Connection, sequence: Int, request: HTTPRequest?, response: HTTPResponse?,
         flags: HTTPExchangeFlags, pipelinePosition: Int) {
        self.init(connection: ConnectionBox(connection), sequence: sequence, request: request, response: response,
                  flags: flags, pipelinePosition: pipelinePosition)
    }

    public static func == (a: HTTPExchange, b: HTTPExchange) -> Bool {
        a.sequence == b.sequence && a.flags == b.flags && a.pipelinePosition == b.pipelinePosition
            && a.request == b.request && a.response == b.response && a.http2 == b.http2 && a.tls == b.tls
            && (a.connectionBox === b.connectionBox || a.connection == b.connection)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(connection)
        hasher.combine(sequence)
        hasher.combine(request)
        hasher.combine(response)
        hasher.combine(flags)
        hasher.combine(pipelinePosition)
        hasher.combine(http2)
        hasher.combine(tls)
    }

    // Inlinable: a report reads these for every hop, where a call would copy the exchange.
    @inlinable public var connectionID: ConnectionID { connectionBox.value.id }
    /// The connection's client and server (without copying the whole `connection`).
    public var client: Endpoint { connectionBox.value.client }
    public var server: Endpoint { connectionBox.value.server }
    /// The connection's original destination (a REDIRECTed connection), and when it was first seen.
    public var originalDestination: Endpoint? { connectionBox.value.originalDestination }
    public var connectionFirstTimestamp: Int64 { connectionBox.value.firstTimestamp }
    /// The source of the server's replies when it differs from `server` (without copying the
    /// whole `connection`).
    public var replySource: Endpoint? { connectionBox.value.replySource }
    /// The interface indexes the connection's packets were seen on.
    public var interfaceIndexes: [Int32] { connectionBox.value.interfaceIndexes }
    public var isAnswered: Bool { request != nil && response != nil }
    /// Response start minus request start (ns), when both are known.
    public var latency: Int64? {
        if let t = tls { return t.latency }
        guard let q = request, let r = response else { return nil }
        return r.firstTimestamp - q.firstTimestamp
    }
    /// Whether the connection stays open after this exchange under HTTP/1.0 and 1.1 rules.
    public var keepAlive: Bool {
        func wants(_ version: HTTPVersion, _ headers: HTTPHeaders) -> Bool {
            let tokens = headers.values(for: "connection").flatMap { $0.split(separator: ",") }
                .map { $0.trimmingASCIISpaces().lowercasedASCII() }
            if tokens.contains("close") { return false }
            if version.major == 1 && version.minor == 0 { return tokens.contains("keep-alive") }
            return true
        }
        if flags.contains(.tunnel) { return false }
        if let q = request, !wants(q.version, q.headers) { return false }
        if let r = response {
            if r.framing == .untilClose { return false }
            if !wants(r.version, r.headers) { return false }
        }
        return true
    }
}

extension Substring {
    func trimmingASCIISpaces() -> Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return s
    }
    func lowercasedASCII() -> String {
        String(decoding: utf8.map { ($0 >= 0x41 && $0 <= 0x5a) ? $0 | 0x20 : $0 }, as: UTF8.self)
    }
}

/// What hoptrace concluded about a connection's payload.
public enum HTTPConnectionKind: String, Sendable, Hashable {
    /// HTTP/1.x was parsed on it.
    case http
    /// HTTP/2 (h2c) was parsed on it.
    case http2
    /// TLS (ClientHello or ServerHello in the first bytes): encrypted, not parsed.
    case tls
    /// Bytes that are not HTTP/1.x (first bytes are not a request or status line).
    case nonHTTP = "non-http"
    /// Picked up mid-stream and no HTTP message boundary was ever found.
    case unknown
    /// No payload.
    case empty
}

/// A per-connection summary, reported when the connection closes (or at `finish()`).
public struct HTTPConnectionSummary: Sendable, Hashable {
    public var connection: Connection
    public var kind: HTTPConnectionKind
    /// True when the connection became a CONNECT/Upgrade tunnel.
    public var tunnel: Bool
    public var requests: Int
    public var responses: Int
    public var exchanges: Int
}

/// Limits and switches.
public struct HTTPConfiguration: Sendable {
    /// Largest start line + header block (and trailer block) accepted; larger is counted,
    /// the message is treated as malformed and the parser resynchronises.
    public var maxHeaderBytes: Int = 64 * 1024
    /// Largest chunk-size line (with extensions).
    public var maxChunkLineBytes: Int = 4 * 1024
    /// Longest line examined as a resynchronisation candidate.
    public var maxResyncLineBytes: Int = 8 * 1024
    /// Requests kept waiting for their response per connection; older ones are emitted unanswered.
    public var maxOutstandingRequests: Int = 1024
    /// Responses whose request was not (yet) seen, kept per connection to pair with late requests.
    public var maxHeldResponses: Int = 16
    /// Body bytes kept from the start of each message (the payload, without chunk framing),
    /// for views that show a body prefix (`http -A`); 0 keeps none.
    public var bodyPrefixBytes: Int = 0

    public init() {}
}

// Printed and dumped with their fields, as before they moved into storage (a fuzz target's
// message, a failed test's diff and `dump` show them, not a storage object's address).
extension HTTPRequest: CustomReflectable {
    public var customMirror: Mirror {
        Mirror(self, children: Mirror(reflecting: storage.fields).children, displayStyle: .struct)
    }
}

extension HTTPResponse: CustomReflectable {
    public var customMirror: Mirror {
        Mirror(self, children: Mirror(reflecting: storage.fields).children, displayStyle: .struct)
    }
}
