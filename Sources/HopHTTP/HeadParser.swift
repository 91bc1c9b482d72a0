#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// Parsing of a complete (or cut) message head held in contiguous memory: start line, header
// lines, obs-fold, and the framing-relevant fields. Strings are made only for the start-line
// parts and the header names and values.

let LF: UInt8 = 0x0a
let CR: UInt8 = 0x0d
let SP: UInt8 = 0x20
let HT: UInt8 = 0x09

/// RFC 9110 tchar: bit c of (low, high) for c < 128.
@inline(__always)
func isTokenChar(_ c: UInt8) -> Bool {
    // ! # $ % & ' * + - . 0-9 A-Z ^ _ ` a-z | ~
    let low: UInt64 = 0x03FF_6CFA_0000_0000
    let high: UInt64 = 0x57FF_FFFF_C7FF_FFFE
    if c < 64 { return (low >> UInt64(c)) & 1 == 1 }
    if c < 128 { return (high >> UInt64(c - 64)) & 1 == 1 }
    return false
}

/// `tokenTable.utf8Start[c] == "1"` when `c` is a tchar (one load per byte, no branches).
let tokenTable: StaticString = "0000000000000000000000000000000001011111001101101111111111000000011111111111111111111111111000111111111111111111111111111110101000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"

@inline(__always)
func isTokenByte(_ table: UnsafePointer<UInt8>, _ c: UInt8) -> Bool { table[Int(c)] == 0x31 }

/// Characters accepted in a method when judging whether bytes start a request line.
@inline(__always)
func isMethodChar(_ c: UInt8) -> Bool {
    (c >= 0x41 && c <= 0x5a) || c == UInt8(ascii: "-") || c == UInt8(ascii: "_")
}

@inline(__always)
func lowerASCII(_ c: UInt8) -> UInt8 { (c >= 0x41 && c <= 0x5a) ? c | 0x20 : c }

/// Methods accepted when resynchronising (a known token makes a false match in body bytes unlikely).
let knownMethods: [[UInt8]] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    "PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "SEARCH", "REPORT",
    "MKACTIVITY", "CHECKOUT", "MERGE", "M-SEARCH", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE",
    "PURGE", "LINK", "UNLINK", "ACL", "BIND", "REBIND", "UNBIND", "MKCALENDAR", "QUERY",
].map { Array($0.utf8) }

/// First letters of the known methods.
let methodFirstLetters: [Bool] = {
    var t = [Bool](repeating: false, count: 256)
    for m in knownMethods { t[Int(m[0])] = true }
    return t
}()

func isKnownMethod(_ b: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Bool {
    let len = end - start
    outer: for m in knownMethods where m.count == len {
        for k in 0..<len where b[start + k] != m[k] { continue outer }
        return true
    }
    return false
}

/// What the first bytes of a message say about the stream.
enum PrefixVerdict { case plausible, undecided, implausible, tls }

/// Judges the first bytes of a would-be start line (or of a connection).
func prefixVerdict(isRequest: Bool, count: Int, _ byte: (Int) -> UInt8) -> PrefixVerdict {
    if count == 0 { return .undecided }
    let b0 = byte(0)
    if b0 == 0x16 {
        // TLS record: handshake, version 3.x (SSL 3.0 … TLS 1.3 all say 3.0–3.4 here).
        if count < 3 { return .undecided }
        return byte(1) == 3 && byte(2) <= 4 ? .tls : .implausible
    }
    if isRequest {
        let limit = min(count, 21)
        for k in 0..<limit {
            let c = byte(k)
            if c == SP { return k >= 1 ? .plausible : .implausible }
            if !isMethodChar(c) { return .implausible }
        }
        return count >= 21 ? .implausible : .undecided
    } else {
        let proto: StaticString = "HTTP/1."
        let limit = min(count, 7)
        for k in 0..<limit where byte(k) != proto.utf8Start[k] { return .implausible }
        return count >= 7 ? .plausible : .undecided
    }
}

/// Bytes of a malformed start line kept for the report.
let malformedLinePrefix = 64

/// The first line of `bytes` (up to its LF, without the CR before it) as printable text:
/// printable ASCII as is, `\\`, `\t`, `\r`, and `\xNN` for every other byte.
func escapedLine<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
    var line = Array(bytes.prefix { $0 != LF })
    if line.last == CR && line.count < bytes.count { line.removeLast() }
    var out = ""
    let hex: [Character] = Array("0123456789abcdef")
    for c in line {
        switch c {
        case UInt8(ascii: "\\"): out += "\\\\"
        case HT: out += "\\t"
        case CR: out += "\\r"
        case 0x20...0x7e: out.append(Character(Unicode.Scalar(c)))
        default:
            out += "\\x"
            out.append(hex[Int(c >> 4)])
            out.append(hex[Int(c & 15)])
        }
    }
    return out
}

/// Parses `HTTP/d.d` at `b[s..<s+8]`.
func parseVersion(_ b: UnsafeRawBufferPointer, _ s: Int, _ e: Int) -> HTTPVersion? {
    guard e - s == 8, b[s] == UInt8(ascii: "H"), b[s + 1] == UInt8(ascii: "T"), b[s + 2] == UInt8(ascii: "T"),
          b[s + 3] == UInt8(ascii: "P"), b[s + 4] == UInt8(ascii: "/"), b[s + 6] == UInt8(ascii: ".")
    else { return nil }
    let ma = b[s + 5], mi = b[s + 7]
    guard ma == UInt8(ascii: "1"), mi >= 0x30, mi <= 0x39 else { return nil }
    return HTTPVersion(major: 1, minor: Int(mi - 0x30))
}

/// The end of a line's content (drops one trailing CR).
@inline(__always)
func trimCR(_ b: UnsafeRawBufferPointer, _ s: Int, _ e: Int) -> Int {
    e > s && b[e - 1] == CR ? e - 1 : e
}

/// A validated start line: positions only (no strings, nothing to copy or release).
struct StartLine {
    var status = 0
    var version = HTTPVersion.http11
    /// Request: method `[r0, r1)`, target `[r2, r3)`. Status: reason `[r0, r1)`.
    var r0 = 0, r1 = 0, r2 = 0, r3 = 0
}

/// Validates (and parses) a request line `b[s..<e]` (no CR/LF). `strict` requires a known method.
func parseRequestLine(_ b: UnsafeRawBufferPointer, _ s: Int, _ e: Int, strict: Bool) -> StartLine? {
    var i = s
    while i < e, isTokenChar(b[i]) { i += 1 }
    let methodEnd = i
    guard methodEnd > s, methodEnd - s <= 20, i < e, b[i] == SP else { return nil }
    if strict && !isKnownMethod(b, s, methodEnd) { return nil }
    // The version is the last 8 bytes, preceded by one SP.
    guard e - methodEnd >= 11, b[e - 9] == SP, let version = parseVersion(b, e - 8, e) else { return nil }
    let ts = methodEnd + 1, te = e - 9
    guard te > ts else { return nil }
    for k in ts..<te {
        let c = b[k]
        if c <= SP || c == 0x7f { return nil }
    }
    var line = StartLine()
    line.version = version
    line.r0 = s
    line.r1 = methodEnd
    line.r2 = ts
    line.r3 = te
    return line
}

/// Validates (and parses) a status line `HTTP/1.x SP NNN [SP reason]`.
func parseStatusLine(_ b: UnsafeRawBufferPointer, _ s: Int, _ e: Int) -> StartLine? {
    guard e - s >= 12, let version = parseVersion(b, s, s + 8), b[s + 8] == SP else { return nil }
    var status = 0
    for k in (s + 9)..<(s + 12) {
        let c = b[k]
        guard c >= 0x30, c <= 0x39 else { return nil }
        status = status * 10 + Int(c - 0x30)
    }
    guard status >= 100 else { return nil }
    if e > s + 12 && b[s + 12] != SP { return nil }
    var line = StartLine()
    line.version = version
    line.status = status
    if e > s + 13 {
        line.r0 = s + 13
        line.r1 = e
    }
    return line
}

/// A parsed head with the fields that decide framing.
/// (Plain data, nothing to retain: the strings and the header fields it describes are in the
/// parser's `HeadScratch`, taken from there by whoever keeps them.)
struct ParsedHead {
    var start = StartLine()
    /// The start line was valid (always true for trailers).
    var startLineValid = false
    /// Fields parsed (in `HeadScratch.headers`).
    var fieldCount = 0
    var contentLength: Int64?
    var hasTransferEncoding = false
    var chunked = false
    var connectionClose = false
    var connectionKeepAlive = false
    var connectionUpgrade = false
    var hasUpgrade = false
    var obsFolds = 0
    var badHeaderLines = 0
    /// A framing error (bad or conflicting Content-Length).
    var error: HTTPParseError?
    /// False when the head was cut (gap, cap, connection end): only whole lines were used.
    var complete = true
    /// Index just after the empty line that ended the head; -1 when it was not reached.
    var end = -1
}

/// Strings recently made from bytes (methods, targets, reasons repeat): a hit costs a compare
/// instead of UTF-8 validation (and, for long strings, an allocation). Keys up to 16 bytes.
struct StringCache {
    private var k0 = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
    private var k1 = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
    private var lens = (-1, -1, -1, -1)
    private var values = ["", "", "", ""]
    private var next = 0

    /// The string for `p[0..<count]`; `limit` is the end of readable memory (loads of 8 bytes
    /// may start anywhere below `limit - 7`).
    mutating func string(_ p: UnsafePointer<UInt8>, _ count: Int, limit: UnsafePointer<UInt8>) -> String {
        if count == 0 { return "" }
        if count > 16 { return String(decoding: UnsafeBufferPointer(start: p, count: count), as: UTF8.self) }
        var a: UInt64 = 0, b: UInt64 = 0
        if count >= 8 {
            a = UnsafeRawPointer(p).loadUnaligned(as: UInt64.self)
            b = UnsafeRawPointer(p + count - 8).loadUnaligned(as: UInt64.self)
        } else if limit - p >= 8 {
            a = UnsafeRawPointer(p).loadUnaligned(as: UInt64.self) & (UInt64.max >> UInt64(64 - 8 * count))
        } else {
            for k in 0..<count { a |= UInt64(p[k]) << UInt64(k * 8) }
        }
        if lens.0 == count && k0.0 == a && k1.0 == b { return values[0] }
        if lens.1 == count && k0.1 == a && k1.1 == b { return values[1] }
        if lens.2 == count && k0.2 == a && k1.2 == b { return values[2] }
        if lens.3 == count && k0.3 == a && k1.3 == b { return values[3] }
        let s = String(decoding: UnsafeBufferPointer(start: p, count: count), as: UTF8.self)
        switch next {
        case 0: (k0.0, k1.0, lens.0) = (a, b, count)
        case 1: (k0.1, k1.1, lens.1) = (a, b, count)
        case 2: (k0.2, k1.2, lens.2) = (a, b, count)
        default: (k0.3, k1.3, lens.3) = (a, b, count)
        }
        values[next] = s
        next = (next + 1) & 3
        return s
    }
}

/// The field spans of a head being parsed or a block being decoded, in memory of its own that
/// grows and is reused from head to head (`HeadScratch`, `HPACKScratch`). Its owner deallocates it.
struct SpanList {
    private(set) var base: UnsafeMutablePointer<HTTPHeaders.Span>
    private(set) var count = 0
    private var capacity: Int

    init(capacity: Int = 32) {
        base = .allocate(capacity: capacity)
        self.capacity = capacity
    }

    func deallocate() { base.deallocate() }

    @inline(__always)
    mutating func removeAll() { count = 0 }

    @inline(__always)
    mutating func append(_ s: HTTPHeaders.Span) {
        if count == capacity { grow() }
        (base + count).initialize(to: s)
        count += 1
    }

    @inline(never)
    private mutating func grow() {
        let bigger = UnsafeMutablePointer<HTTPHeaders.Span>.allocate(capacity: capacity * 2)
        bigger.moveInitialize(from: base, count: count)
        base.deallocate()
        base = bigger
        capacity *= 2
    }

    var buffer: UnsafeBufferPointer<HTTPHeaders.Span> { UnsafeBufferPointer(start: base, count: count) }
}

/// Reusable buffers for `parseHead` (kept by each direction parser: no allocation per head).
final class HeadScratch {
    /// Field spans of the head being parsed.
    @exclusivity(unchecked) private var spanList = SpanList()
    var spans: UnsafeMutablePointer<HTTPHeaders.Span> { spanList.base }
    var spanCount: Int { spanList.count }
    @exclusivity(unchecked) var fold: [UInt8] = []
    @exclusivity(unchecked) var methods = StringCache()
    @exclusivity(unchecked) var targets = StringCache()
    @exclusivity(unchecked) var reasons = StringCache()
    /// The last head's method, target (requests), reason (responses) and fields.
    @exclusivity(unchecked) var method = ""
    @exclusivity(unchecked) var target = ""
    @exclusivity(unchecked) var reason = ""
    @exclusivity(unchecked) var headers = HTTPHeaders()

    func takeMethod() -> String { take(&method, leaving: "") }
    func takeTarget() -> String { take(&target, leaving: "") }
    func takeReason() -> String { take(&reason, leaving: "") }
    func takeHeaders() -> HTTPHeaders { take(&headers, leaving: HTTPHeaders()) }

    deinit { spanList.deallocate() }

    @inline(__always)
    func reset() {
        spanList.removeAll()
        if !fold.isEmpty { fold.removeAll(keepingCapacity: true) }
    }

    @inline(__always)
    func append(_ s: HTTPHeaders.Span) { spanList.append(s) }

    var spanBuffer: UnsafeBufferPointer<HTTPHeaders.Span> { spanList.buffer }
}

/// The index of the first LF in `p[from..<n]`, or `n`. Eight bytes at a time.
@inline(__always)
func findLF(_ p: UnsafePointer<UInt8>, _ from: Int, _ n: Int) -> Int {
    var i = from
    while i + 8 <= n {
        let x = UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self) ^ 0x0a0a_0a0a_0a0a_0a0a
        let t = (x &- 0x0101_0101_0101_0101) & ~x & 0x8080_8080_8080_8080
        if t != 0 { return i + (t.trailingZeroBitCount >> 3) }
        i += 8
    }
    while i < n {
        if p[i] == LF { return i }
        i += 1
    }
    return n
}

/// Parses a head. With `hasStartLine == false` it parses a trailer block.
/// With `partial`, a last line without LF is ignored and the head is marked incomplete.
/// With `scan`, `b` may run past the head: parsing stops at the empty line (`end` tells where)
/// and gives up (`end == -1`) when there is none, when the start line is invalid (`strict`
/// requires a known method) or at an obs-fold; the caller then takes the general path.
func parseHead(_ b: UnsafeRawBufferPointer, isRequest: Bool, hasStartLine: Bool, partial: Bool,
               scan: Bool = false, strict: Bool = false, scratch: HeadScratch) -> ParsedHead {
    var head = ParsedHead()
    head.complete = !partial
    head.startLineValid = !hasStartLine
    let n = b.count
    scratch.reset()
    scratch.method = ""
    scratch.target = ""
    scratch.reason = ""
    scratch.headers = HTTPHeaders()
    guard n > 0, let p = b.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
        return head
    }
    var pos = 0
    var headLen = n
    if hasStartLine {
        let lf = findLF(p, 0, n)
        if lf == n && (partial || scan) {
            if scan { return head }
            pos = n
        } else {
            let e = trimCR(b, 0, lf)
            pos = lf + 1
            if isRequest {
                if let line = parseRequestLine(b, 0, e, strict: strict) {
                    head.start = line
                    scratch.method = scratch.methods.string(p + line.r0, line.r1 - line.r0, limit: p + n)
                    scratch.target = scratch.targets.string(p + line.r2, line.r3 - line.r2, limit: p + n)
                    head.startLineValid = true
                }
            } else if let line = parseStatusLine(b, 0, e) {
                head.start = line
                scratch.reason = scratch.reasons.string(p + line.r0, line.r1 - line.r0, limit: p + n)
                head.startLineValid = true
            }
            if scan && !head.startLineValid { return head }
        }
    }
    var found = false
    let table = tokenTable.utf8Start
    while pos < n {
        let s = pos
        // The usual field line: token, colon, value.
        var k = s
        while k < n, isTokenByte(table, p[k]) { k += 1 }
        if k > s && k < n && p[k] == UInt8(ascii: ":") {
            let lf = findLF(p, k + 1, n)
            if lf == n && (partial || scan) { break }
            let e = trimCR(b, s, lf)
            pos = lf + 1
            var vs = k + 1
            while vs < e, p[vs] == SP || p[vs] == HT { vs += 1 }
            var ve = e
            while ve > vs, p[ve - 1] == SP || p[ve - 1] == HT { ve -= 1 }
            scratch.append(HTTPHeaders.Span(nameStart: Int32(s), nameEnd: Int32(k), valueStart: Int32(vs), valueEnd: Int32(ve)))
            continue
        }
        let lf = findLF(p, s, n)
        if lf == n && (partial || scan) { break }
        let e = trimCR(b, s, lf)
        pos = lf + 1
        if s == e {
            // The empty line ending the head.
            found = true
            break
        }
        let c0 = b[s]
        if c0 == SP || c0 == HT {
            if scan { return head }
            // obs-fold: a continuation of the previous field's value, joined with one space.
            var vs = s
            while vs < e, b[vs] == SP || b[vs] == HT { vs += 1 }
            var ve = e
            while ve > vs, b[ve - 1] == SP || b[ve - 1] == HT { ve -= 1 }
            if scratch.spanCount == 0 {
                head.badHeaderLines += 1
            } else {
                head.obsFolds += 1
                if ve > vs {
                    // The joined value goes to the fold area, which follows the head's bytes.
                    let k = scratch.spanCount - 1
                    let old = scratch.spans[k]
                    let ns = Int32(n + scratch.fold.count)
                    if old.valueEnd > old.valueStart {
                        for q in Int(old.valueStart)..<Int(old.valueEnd) {
                            scratch.fold.append(q < n ? b[q] : scratch.fold[q - n])
                        }
                        scratch.fold.append(SP)
                    }
                    scratch.fold.append(contentsOf: UnsafeRawBufferPointer(rebasing: b[vs..<ve]))
                    scratch.spans[k].valueStart = ns
                    scratch.spans[k].valueEnd = Int32(n + scratch.fold.count)
                }
            }
            continue
        }
        var colon = e
        if let q = memchr(p + s, Int32(UInt8(ascii: ":")), e - s) {
            colon = UnsafeRawPointer(q) - UnsafeRawPointer(p)
        }
        var ne = colon
        while ne > s, b[ne - 1] == SP || b[ne - 1] == HT { ne -= 1 }
        guard colon < e, ne > s else {
            head.badHeaderLines += 1
            continue
        }
        if ne != colon {
            head.badHeaderLines += 1
        } else {
            for k in s..<ne where !isTokenChar(b[k]) {
                head.badHeaderLines += 1
                break
            }
        }
        var vs = colon + 1
        while vs < e, b[vs] == SP || b[vs] == HT { vs += 1 }
        var ve = e
        while ve > vs, b[ve - 1] == SP || b[ve - 1] == HT { ve -= 1 }
        scratch.append(HTTPHeaders.Span(nameStart: Int32(s), nameEnd: Int32(ne), valueStart: Int32(vs), valueEnd: Int32(ve)))
    }
    if scan {
        guard found else { return head }
        headLen = pos
        head.end = pos
    } else if found {
        head.end = pos
    }
    scratch.headers = HTTPHeaders(bytes: UnsafeRawBufferPointer(start: p, count: headLen), extra: scratch.fold,
                                  spans: scratch.spanBuffer)
    head.fieldCount = scratch.spanCount
    if scratch.spanCount > 0 {
        if scratch.fold.isEmpty {
            // The spans are positions in `b` as well: read the bytes where they already are.
            classifyFraming(&head, p, scratch)
        } else if let buffer = scratch.headers.buffer {
            buffer.withUnsafeMutablePointerToElements { classifyFraming(&head, UnsafePointer($0), scratch) }
        }
    }
    return head
}

@inline(__always)
private func isOWS(_ c: UInt8) -> Bool { c == SP || c == HT }

/// Calls `body` with the bounds of each comma-separated, OWS-trimmed item of `p[s..<e]` (empty
/// items skipped).
@inline(__always)
private func forEachItem(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int, _ body: (Int, Int) -> Void) {
    var i = s
    while i < e {
        var j = i
        while j < e, p[j] != UInt8(ascii: ",") { j += 1 }
        var a = i, z = j
        while a < z, isOWS(p[a]) { a += 1 }
        while z > a, isOWS(p[z - 1]) { z -= 1 }
        if z > a { body(a, z) }
        i = j + 1
    }
}

/// Whether `p[s..<e]` is `lower` ignoring ASCII case (`lower` is lower case).
@inline(__always)
private func equalsLower(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int, _ lower: StaticString) -> Bool {
    guard e - s == lower.utf8CodeUnitCount else { return false }
    let l = lower.utf8Start
    for k in 0..<(e - s) where lowerASCII(p[s + k]) != l[k] { return false }
    return true
}

/// Eight bytes at `p`, ASCII upper case letters made lower case (other bytes unchanged).
@inline(__always)
private func lower8(_ p: UnsafePointer<UInt8>) -> UInt64 {
    let w = UnsafeRawPointer(p).loadUnaligned(as: UInt64.self)
    let ones: UInt64 = 0x0101_0101_0101_0101
    let heptets = w & (0x7f * ones)
    let aboveZ = heptets &+ ((0x7f - 0x5a) * ones)  // high bit set where > "Z"
    let atLeastA = heptets &+ ((0x80 - 0x41) * ones)  // high bit set where >= "A"
    let upper = ~w & (atLeastA ^ aboveZ) & (0x80 * ones)
    return w | (upper >> 2)
}

/// Whether `p[s..<e]` is 8 to 16 bytes spelling the words `a` (first 8 bytes) and `z` (last 8)
/// ignoring ASCII case.
@inline(__always)
private func equalsLower816(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int, _ a: UInt64, _ z: UInt64) -> Bool {
    lower8(p + s) == a && lower8(p + e - 8) == z
}

/// Reads the framing-relevant fields, in one pass over the names (dispatched on length, then on
/// the first eight bytes, compared eight at a time).
private func classifyFraming(_ head: inout ParsedHead, _ p: UnsafePointer<UInt8>, _ scratch: HeadScratch) {
    var lastCodingChunked = false
    do {
        for sp in scratch.spanBuffer {
            let ns = Int(sp.nameStart), ne = Int(sp.nameEnd)
            let len = ne - ns
            // Names are followed by at least their colon, so 8 bytes from a 7-byte name are in bounds.
            guard len == 14 || len == 10 || len == 17 || len == 7 else { continue }
            let vs = Int(sp.valueStart), ve = Int(sp.valueEnd)
            let first = lower8(p + ns)
            if len == 14 {
                guard first == 0x2D746E65746E6F63 && lower8(p + ne - 8) == 0x6874676E656C2D74 else { continue }
                var items = 0
                forEachItem(p, vs, ve) { a, z in
                    items += 1
                    var v: Int64 = 0
                    var ok = z - a <= 18
                    if ok {
                        for q in a..<z {
                            let c = p[q]
                            guard c >= 0x30, c <= 0x39 else { ok = false; break }
                            v = v * 10 + Int64(c - 0x30)
                        }
                    }
                    if !ok {
                        if head.error == nil { head.error = .badContentLength }
                    } else if let old = head.contentLength, old != v {
                        head.error = .conflictingContentLength
                    } else {
                        head.contentLength = v
                    }
                }
                if items == 0 && head.error == nil { head.error = .badContentLength }
            } else if len == 10 {
                guard first == 0x697463656E6E6F63 && lower8(p + ne - 8) == 0x6E6F697463656E6E else { continue }
                forEachItem(p, vs, ve) { a, z in
                    if z - a == 10 {
                        if equalsLower816(p, a, z, 0x696C612D7065656B, 0x6576696C612D7065) { head.connectionKeepAlive = true }
                    } else if equalsLower(p, a, z, "close") {
                        head.connectionClose = true
                    } else if equalsLower(p, a, z, "upgrade") {
                        head.connectionUpgrade = true
                    }
                }
            } else if len == 17 {
                guard first == 0x726566736E617274 && lower8(p + ne - 8) == 0x676E69646F636E65 && p[ns + 8] == UInt8(ascii: "-") else { continue }
                head.hasTransferEncoding = true
                forEachItem(p, vs, ve) { a, z in lastCodingChunked = equalsLower(p, a, z, "chunked") }
            } else if first & 0x00ff_ffff_ffff_ffff == 0x0065646172677075 {
                head.hasUpgrade = true
            }
        }
    }
    head.chunked = head.hasTransferEncoding && lastCodingChunked
}
