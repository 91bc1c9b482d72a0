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

struct StartLine {
    var method = ""
    var target = ""
    var status = 0
    var reason = ""
    var version = HTTPVersion.http11
}

/// Validates (and parses) a request line `b[s..<e]` (no CR/LF). `strict` requires a known method.
func parseRequestLine(_ b: UnsafeRawBufferPointer, _ s: Int, _ e: Int, strict: Bool, materialize: Bool) -> StartLine? {
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
    if materialize {
        line.method = String(decoding: UnsafeRawBufferPointer(rebasing: b[s..<methodEnd]), as: UTF8.self)
        line.target = String(decoding: UnsafeRawBufferPointer(rebasing: b[ts..<te]), as: UTF8.self)
    }
    return line
}

/// Validates (and parses) a status line `HTTP/1.x SP NNN [SP reason]`.
func parseStatusLine(_ b: UnsafeRawBufferPointer, _ s: Int, _ e: Int, materialize: Bool) -> StartLine? {
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
    if materialize && e > s + 13 {
        line.reason = String(decoding: UnsafeRawBufferPointer(rebasing: b[(s + 13)..<e]), as: UTF8.self)
    }
    return line
}

/// A parsed head with the fields that decide framing.
struct ParsedHead {
    var start = StartLine()
    var headers = HTTPHeaders()
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
}

/// Reusable buffers for `parseHead` (kept by each direction parser: no allocation per head).
struct HeadScratch {
    var spans: [HTTPHeaders.Span] = []
    var fold: [UInt8] = []
}

/// Parses a head. With `hasStartLine == false` it parses a trailer block.
/// With `partial`, a last line without LF is ignored and the head is marked incomplete.
func parseHead(_ b: UnsafeRawBufferPointer, isRequest: Bool, hasStartLine: Bool, partial: Bool,
               scratch: inout HeadScratch) -> ParsedHead {
    var head = ParsedHead()
    head.complete = !partial
    let n = b.count
    var pos = 0
    var first = hasStartLine
    scratch.spans.removeAll(keepingCapacity: true)
    scratch.fold.removeAll(keepingCapacity: true)
    let base = b.baseAddress
    while pos < n {
        var lf = n
        if let base, let p = memchr(base + pos, Int32(LF), n - pos) { lf = UnsafeRawPointer(p) - base }
        if lf == n && partial { break }
        let s = pos
        let e = trimCR(b, s, lf)
        pos = lf + 1
        if first {
            first = false
            if isRequest {
                head.start = parseRequestLine(b, s, e, strict: false, materialize: true) ?? StartLine()
            } else {
                head.start = parseStatusLine(b, s, e, materialize: true) ?? StartLine()
            }
            continue
        }
        if s == e { break }  // the empty line ending the head
        let c0 = b[s]
        if c0 == SP || c0 == HT {
            // obs-fold: a continuation of the previous field's value, joined with one space.
            var vs = s
            while vs < e, b[vs] == SP || b[vs] == HT { vs += 1 }
            var ve = e
            while ve > vs, b[ve - 1] == SP || b[ve - 1] == HT { ve -= 1 }
            if scratch.spans.isEmpty {
                head.badHeaderLines += 1
            } else {
                head.obsFolds += 1
                if ve > vs {
                    // The joined value goes to the fold area, which follows the head's bytes.
                    let k = scratch.spans.count - 1
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
        if let base, let p = memchr(base + s, Int32(UInt8(ascii: ":")), e - s) { colon = UnsafeRawPointer(p) - base }
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
        scratch.spans.append(HTTPHeaders.Span(nameStart: Int32(s), nameEnd: Int32(ne), valueStart: Int32(vs), valueEnd: Int32(ve)))
    }
    head.headers = scratch.spans.withUnsafeBufferPointer { HTTPHeaders(bytes: b, extra: scratch.fold, spans: $0) }
    classifyFraming(&head)
    return head
}

/// Calls `body` with each comma-separated, OWS-trimmed item of a value (empty items skipped).
private func forEachItem(_ v: Slice<UnsafeRawBufferPointer>, _ body: (Slice<UnsafeRawBufferPointer>) -> Void) {
    var i = v.startIndex
    while i < v.endIndex {
        var j = i
        while j < v.endIndex, v[j] != UInt8(ascii: ",") { j += 1 }
        var s = i, e = j
        while s < e, v[s] == SP || v[s] == HT { s += 1 }
        while e > s, v[e - 1] == SP || v[e - 1] == HT { e -= 1 }
        if e > s { body(v[s..<e]) }
        i = j + 1
    }
}

private func equalsLower(_ v: Slice<UnsafeRawBufferPointer>, _ lower: StaticString) -> Bool {
    guard v.count == lower.utf8CodeUnitCount else { return false }
    var k = 0
    for c in v {
        if lowerASCII(c) != lower.utf8Start[k] { return false }
        k += 1
    }
    return true
}

private func classifyFraming(_ head: inout ParsedHead) {
    let h = head.headers
    var lastCodingChunked = false
    withExtendedLifetime(h) {
    let raw = h.raw
    for i in 0..<h.count {
        let sp = h.span(i)
        let name = raw[Int(sp.nameStart)..<Int(sp.nameEnd)]
        let value = raw[Int(sp.valueStart)..<Int(sp.valueEnd)]
        switch name.count {
        case 14 where equalsLower(name, "content-length"):
            var items = 0
            forEachItem(value) { t in
                items += 1
                var v: Int64 = 0
                var ok = t.count <= 18
                if ok {
                    for c in t {
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
        case 17 where equalsLower(name, "transfer-encoding"):
            head.hasTransferEncoding = true
            forEachItem(value) { lastCodingChunked = equalsLower($0, "chunked") }
        case 10 where equalsLower(name, "connection"):
            forEachItem(value) { t in
                if equalsLower(t, "close") { head.connectionClose = true }
                else if equalsLower(t, "keep-alive") { head.connectionKeepAlive = true }
                else if equalsLower(t, "upgrade") { head.connectionUpgrade = true }
            }
        case 7 where equalsLower(name, "upgrade"):
            head.hasUpgrade = true
        default:
            break
        }
    }
    }
    head.chunked = head.hasTransferEncoding && lastCodingChunked
}
