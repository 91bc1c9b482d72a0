// HTTP/1.x on the wire, as far as a forwarding proxy needs it: where a request or response
// head ends, the few headers that decide framing and connection handling, and where a body
// ends (Content-Length counted, chunked framing walked). Nothing is decoded into header
// dictionaries and nothing is re-encoded: the proxy forwards the bytes it received.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How a message's body is delimited on the wire.
package enum BodyFraming: Equatable {
    /// No body bytes follow the head.
    case none
    /// Exactly this many bytes follow.
    case length(Int)
    /// Transfer-Encoding chunked: chunks, the last one of size 0, then trailers.
    case chunked
    /// A response read until the server closes the connection.
    case untilClose
}

/// The outcome of looking for a head at the start of some bytes.
package enum HeadParse<Head> {
    /// The bytes end before the head does.
    case incomplete
    /// Not HTTP/1.x; the reason names what was wrong.
    case invalid(String)
    case complete(Head)
}

/// Why a request is refused with 400: each shape a request-smuggling attempt takes (RFC 9112
/// §6.1, §6.3, §2.2, §5.2, §7.1), with the token its access-log line carries. The raw value is
/// the phrase the 400 names (and `HeadParse.invalid` carries).
package enum RequestRefusal: String, CaseIterable {
    case transferEncodingAndContentLength = "both Transfer-Encoding and Content-Length"
    case transferEncodingNotChunkedLast = "a Transfer-Encoding that does not end in chunked (or names it twice)"
    case transferEncodingInHTTP10 = "Transfer-Encoding in an HTTP/1.0 request"
    case conflictingContentLength = "conflicting Content-Length values"
    case invalidContentLength = "an invalid Content-Length"
    case obsoleteFolding = "obsolete header line folding"
    case bareLineFeed = "a line ended by a bare LF"

    /// The access log's `error` for a request refused this way.
    package var token: String {
        switch self {
        case .transferEncodingAndContentLength: return "te_and_content_length"
        case .transferEncodingNotChunkedLast: return "te_not_chunked_last"
        case .transferEncodingInHTTP10: return "te_in_http10"
        case .conflictingContentLength: return "conflicting_content_length"
        case .invalidContentLength: return "invalid_content_length"
        case .obsoleteFolding: return "obs_fold"
        case .bareLineFeed: return "bare_lf"
        }
    }

    /// The token for the phrase of a refused head: one of the shapes above, or `bad_request`.
    package static func token(for why: String) -> String { RequestRefusal(rawValue: why)?.token ?? "bad_request" }
}

/// What the proxy needs to know of a request head.
package struct WireRequestHead {
    /// Bytes of the head, including the empty line that ends it.
    package var length: Int
    /// Offset of the empty line that ends the head: where added header lines go.
    var headerEnd: Int
    var method: String
    var target: String
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    var versionMinor: Int
    package var framing: BodyFraming
    var keepAlive: Bool
    /// CONNECT, or Upgrade with `Connection: upgrade`: both sides become a tunnel if accepted.
    var isUpgrade: Bool
    var expectsContinue: Bool
    /// The first `x-request-id` value, when the request has one.
    var requestID: String?
    /// The first `Host` value.
    var host: String?
    /// `x-forwarded-proto` lines the client sent (whole lines, line ending included): the
    /// proxy replaces them with its own.
    var forwardedProtoLines: [Range<Int>]
    package var isHEAD: Bool
    package var isCONNECT: Bool
    var isIdempotent: Bool
}

/// What the proxy needs to know of a response head.
package struct WireResponseHead {
    package var length: Int
    var headerEnd: Int
    var versionMinor: Int
    package var status: Int
    /// The framing the headers announce (Content-Length, chunked, or until close); whether
    /// the response has a body at all depends on the request (HEAD) and the status.
    package var framing: BodyFraming
    var keepAlive: Bool
    /// `Connection` lines (whole lines), when asked for: dropped when the proxy rewrites the
    /// head to close.
    var connectionLines: [Range<Int>]
}

/// Header names the proxy looks at, matched without regard to case.
private enum Name {
    static let contentLength: StaticString = "content-length"
    static let transferEncoding: StaticString = "transfer-encoding"
    static let connection: StaticString = "connection"
    static let expect: StaticString = "expect"
    static let upgrade: StaticString = "upgrade"
    static let requestID: StaticString = "x-request-id"
    static let host: StaticString = "host"
    static let forwardedProto: StaticString = "x-forwarded-proto"
    static let continue100: StaticString = "100-continue"
    static let close: StaticString = "close"
    static let keepAlive: StaticString = "keep-alive"
    static let chunked: StaticString = "chunked"
}

private let CR: UInt8 = 0x0D
private let LF: UInt8 = 0x0A
private let SP: UInt8 = 0x20
private let HT: UInt8 = 0x09

/// RFC 9110 token characters: digits, letters and !#$%&'*+-.^_`|~, as a 128-bit set.
@inline(__always)
private func isToken(_ b: UInt8) -> Bool {
    let bits: UInt64
    switch b >> 6 {
    case 0: bits = 0x03FF_6CFA_0000_0000
    case 1: bits = 0x57FF_FFFF_C7FF_FFFE
    default: return false
    }
    return bits & (1 << UInt64(b & 63)) != 0
}

/// Reads lines out of a head: each ends at LF, a CR before the LF is dropped.
private struct Lines {
    let p: UnsafeRawBufferPointer
    var position = 0

    init(_ p: UnsafeRawBufferPointer) { self.p = p }

    /// The next line as (start, end of content, start of the following line); nil when the
    /// bytes end before its LF.
    mutating func next() -> (start: Int, end: Int, next: Int)? {
        guard position < p.count, let base = p.baseAddress,
            let hit = memchr(base + position, Int32(LF), p.count - position)
        else { return nil }
        let lf = base.distance(to: UnsafeRawPointer(hit))
        let start = position
        var end = lf
        if end > start && p[end - 1] == CR { end -= 1 }
        position = lf + 1
        return (start, end, lf + 1)
    }
}

/// Whether the bytes `start..<end` are exactly `s` (case counts: methods are case-sensitive).
private func bytesEqual(_ p: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ s: StaticString) -> Bool {
    let n = s.utf8CodeUnitCount
    guard end - start == n else { return false }
    return memcmp(p.baseAddress! + start, s.utf8Start, n) == 0
}

@inline(__always)
private func lower(_ b: UInt8) -> UInt8 { (b >= 0x41 && b <= 0x5A) ? b | 0x20 : b }

private func equalsIgnoringCase(_ p: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ lowercased: StaticString) -> Bool {
    let n = lowercased.utf8CodeUnitCount
    guard end - start == n else { return false }
    let name = lowercased.utf8Start
    var i = 0
    while i < n {
        if lower(p[start + i]) != name[i] { return false }
        i += 1
    }
    return true
}

private func string(_ p: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> String {
    String(decoding: UnsafeRawBufferPointer(rebasing: p[start..<end]), as: UTF8.self)
}

/// Calls `body` with each comma-separated element of a header value, trimmed (empty ones skipped).
private func forEachElement(_ p: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ body: (Int, Int) -> Void) {
    var i = start
    while i < end {
        var s = i
        while s < end && (p[s] == SP || p[s] == HT) { s += 1 }
        var e = s
        while e < end && p[e] != UInt8(ascii: ",") { e += 1 }
        i = e + 1
        var t = e
        while t > s && (p[t - 1] == SP || p[t - 1] == HT) { t -= 1 }
        if t > s { body(s, t) }
    }
}

/// A Content-Length value: digits; a list of equal values is accepted as one (RFC 9110 §8.6).
private func contentLength(_ p: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Int? {
    var result: Int?
    var ok = true
    var any = false
    forEachElement(p, start, end) { s, e in
        any = true
        guard e - s <= 18 else { ok = false; return }
        var v = 0
        for i in s..<e {
            let d = p[i] &- 0x30
            guard d <= 9 else { ok = false; return }
            v = v * 10 + Int(d)
        }
        if let r = result, r != v { ok = false }
        result = v
    }
    return ok && any ? result : nil
}

/// Everything the header lines say about framing and connection handling.
private struct HeaderFacts {
    var contentLength: Int?
    var hasTransferEncoding = false
    var chunkedLast = false
    /// `chunked` codings named before the last one (a request may name it once, last).
    var chunkedBeforeLast = false
    var connectionClose = false
    var connectionKeepAlive = false
    var connectionUpgrade = false
    var hasUpgrade = false
    var expectsContinue = false
    var requestID: String?
    var host: String?
    /// Whether `host` is wanted (the access log's only).
    var keepHost = true
    var forwardedProtoLines: [Range<Int>] = []
    var connectionLines: [Range<Int>] = []
    var headerEnd = 0
    var length = 0
}

private enum HeaderScan {
    case incomplete
    case invalid(String)
    case complete
}

/// Reads header lines up to the empty line that ends the head, into `facts` (filled in
/// place: the facts are not copied out).
private func scanHeaders(_ lines: inout Lines, into facts: inout HeaderFacts, request: Bool, connectionLines: Bool = false) -> HeaderScan {
    let p = lines.p
    while true {
        guard let line = lines.next() else { return .incomplete }
        // RFC 9112 §2.2 lets a recipient take a bare LF as a line's end; a proxy that forwards
        // the bytes as they came must not, since the server behind it may read them otherwise.
        if request && line.next - line.end != 2 { return .invalid(RequestRefusal.bareLineFeed.rawValue) }
        if line.end == line.start {
            facts.headerEnd = line.start
            facts.length = line.next
            return .complete
        }
        let first = p[line.start]
        if first == SP || first == HT {
            return .invalid(RequestRefusal.obsoleteFolding.rawValue)
        }
        var colon = line.start
        while colon < line.end && isToken(p[colon]) { colon += 1 }
        guard colon < line.end, p[colon] == UInt8(ascii: ":"), colon > line.start else {
            return .invalid("a header line without a valid name and colon")
        }
        var vs = colon + 1
        while vs < line.end && (p[vs] == SP || p[vs] == HT) { vs += 1 }
        var ve = line.end
        while ve > vs && (p[ve - 1] == SP || p[ve - 1] == HT) { ve -= 1 }
        var i = vs
        while i < ve {
            let b = p[i]
            if b == CR || b == 0 { return .invalid("a control character in a header value") }
            i += 1
        }
        let ns = line.start
        // Most headers are none of ours: their length alone rules them out.
        switch colon - ns {
        case 4:
            if request, facts.keepHost, facts.host == nil, equalsIgnoringCase(p, ns, colon, Name.host) {
                facts.host = string(p, vs, ve)
            }
        case 6:
            if request, equalsIgnoringCase(p, ns, colon, Name.expect) {
                forEachElement(p, vs, ve) { s, e in
                    if equalsIgnoringCase(p, s, e, Name.continue100) { facts.expectsContinue = true }
                }
            }
        case 7:
            if equalsIgnoringCase(p, ns, colon, Name.upgrade), ve > vs { facts.hasUpgrade = true }
        case 10:
            if equalsIgnoringCase(p, ns, colon, Name.connection) {
                if connectionLines { facts.connectionLines.append(line.start..<line.next) }
                forEachElement(p, vs, ve) { s, e in
                    if equalsIgnoringCase(p, s, e, Name.close) {
                        facts.connectionClose = true
                    } else if equalsIgnoringCase(p, s, e, Name.keepAlive) {
                        facts.connectionKeepAlive = true
                    } else if equalsIgnoringCase(p, s, e, Name.upgrade) {
                        facts.connectionUpgrade = true
                    }
                }
            }
        case 12:
            if request, facts.requestID == nil, equalsIgnoringCase(p, ns, colon, Name.requestID) {
                facts.requestID = string(p, vs, ve)
            }
        case 14:
            if equalsIgnoringCase(p, ns, colon, Name.contentLength) {
                guard let n = contentLength(p, vs, ve) else { return .invalid(RequestRefusal.invalidContentLength.rawValue) }
                if let old = facts.contentLength, old != n { return .invalid(RequestRefusal.conflictingContentLength.rawValue) }
                facts.contentLength = n
            }
        case 17:
            if equalsIgnoringCase(p, ns, colon, Name.transferEncoding) {
                // Only the last coding counts; a later header line's codings come after.
                if facts.chunkedLast { facts.chunkedBeforeLast = true }
                facts.hasTransferEncoding = true
                var last: (Int, Int)?
                forEachElement(p, vs, ve) { s, e in
                    if let (ls, le) = last, isChunked(p, ls, le) { facts.chunkedBeforeLast = true }
                    last = (s, e)
                }
                if let (s, e) = last { facts.chunkedLast = isChunked(p, s, e) }
            } else if request, equalsIgnoringCase(p, ns, colon, Name.forwardedProto) {
                facts.forwardedProtoLines.append(line.start..<line.next)
            }
        default:
            break
        }
    }
}

/// Whether the coding `start..<end` of a Transfer-Encoding is chunked (parameters aside:
/// "chunked;x=y" is not valid, but be exact).
private func isChunked(_ p: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Bool {
    var te = end
    if let semi = (start..<end).first(where: { p[$0] == UInt8(ascii: ";") }) { te = semi }
    while te > start && (p[te - 1] == SP || p[te - 1] == HT) { te -= 1 }
    return equalsIgnoringCase(p, start, te, Name.chunked)
}

/// Parses "HTTP/1.x" at `i`; returns the minor version.
private func httpVersion(_ p: UnsafeRawBufferPointer, _ i: Int, _ end: Int) -> Int? {
    guard end - i == 8 else { return nil }
    guard p[i] == 0x48, p[i + 1] == 0x54, p[i + 2] == 0x54, p[i + 3] == 0x50, p[i + 4] == 0x2F,
        p[i + 5] == 0x31, p[i + 6] == 0x2E
    else { return nil }  // "HTTP/1."
    let d = p[i + 7] &- 0x30
    return d <= 9 ? Int(d) : nil
}

/// Looks for a complete request head at the start of `p`. Without `strings`, the method,
/// target and host are left empty (they are made only for the access log); the flags read
/// from them are there either way.
package func parseRequestHead(_ p: UnsafeRawBufferPointer, strings: Bool = true) -> HeadParse<WireRequestHead> {
    var lines = Lines(p)
    guard let line = lines.next() else { return .incomplete }
    // method SP request-target SP HTTP-version
    var i = line.start
    while i < line.end && isToken(p[i]) { i += 1 }
    guard i > line.start, i < line.end, p[i] == SP else { return .invalid("the request line does not start with a method") }
    let methodEnd = i
    let targetStart = i + 1
    var t = targetStart
    while t < line.end && p[t] > SP && p[t] != 0x7F { t += 1 }
    guard t > targetStart, t < line.end, p[t] == SP else { return .invalid("the request line has no valid target") }
    guard let minor = httpVersion(p, t + 1, line.end) else { return .invalid("the request line does not end in HTTP/1.x") }
    for k in line.start..<line.end where p[k] == CR { return .invalid("a bare CR in the request line") }
    if line.next - line.end != 2 { return .invalid(RequestRefusal.bareLineFeed.rawValue) }

    var facts = HeaderFacts()
    facts.keepHost = strings
    switch scanHeaders(&lines, into: &facts, request: true) {
    case .incomplete: return .incomplete
    case .invalid(let why): return .invalid(why)
    case .complete: break
    }
    let framing: BodyFraming
    if facts.hasTransferEncoding {
        // RFC 9112 §6.3: with both, Transfer-Encoding would win, but the message "ought to be
        // handled as an error" (§6.1: a server MAY reject it, and closes either way): refused.
        guard facts.contentLength == nil else { return .invalid(RequestRefusal.transferEncodingAndContentLength.rawValue) }
        // §6.3: chunked not last in a request: 400 and close. §6.1: chunked at most once.
        guard facts.chunkedLast, !facts.chunkedBeforeLast else {
            return .invalid(RequestRefusal.transferEncodingNotChunkedLast.rawValue)
        }
        // §6.1: Transfer-Encoding in HTTP/1.0 means faulty framing.
        guard minor >= 1 else { return .invalid(RequestRefusal.transferEncodingInHTTP10.rawValue) }
        framing = .chunked
    } else if let n = facts.contentLength, n > 0 {
        framing = .length(n)
    } else {
        framing = .none
    }
    // The method's kind from its bytes (no string comparisons).
    let ms = line.start
    let isGET = bytesEqual(p, ms, methodEnd, "GET")
    let isHEAD = !isGET && bytesEqual(p, ms, methodEnd, "HEAD")
    let isCONNECT = !isGET && !isHEAD && bytesEqual(p, ms, methodEnd, "CONNECT")
    let idempotent = isGET || isHEAD
        || bytesEqual(p, ms, methodEnd, "OPTIONS") || bytesEqual(p, ms, methodEnd, "TRACE")
        || bytesEqual(p, ms, methodEnd, "PUT") || bytesEqual(p, ms, methodEnd, "DELETE")
    let keepAlive = minor >= 1 ? !facts.connectionClose : (facts.connectionKeepAlive && !facts.connectionClose)
    return .complete(
        WireRequestHead(
            length: facts.length, headerEnd: facts.headerEnd, method: strings ? string(p, ms, methodEnd) : "",
            target: strings ? string(p, targetStart, t) : "", versionMinor: minor, framing: framing, keepAlive: keepAlive,
            isUpgrade: isCONNECT || (facts.hasUpgrade && facts.connectionUpgrade),
            expectsContinue: facts.expectsContinue, requestID: facts.requestID, host: facts.host,
            forwardedProtoLines: facts.forwardedProtoLines, isHEAD: isHEAD, isCONNECT: isCONNECT,
            isIdempotent: idempotent))
}

/// Looks for a complete response head at the start of `p`. `connectionLines` asks for the
/// ranges of its `Connection` lines (to rewrite them).
package func parseResponseHead(_ p: UnsafeRawBufferPointer, connectionLines: Bool = false) -> HeadParse<WireResponseHead> {
    var lines = Lines(p)
    guard let line = lines.next() else { return .incomplete }
    // HTTP-version SP status-code [SP reason-phrase]
    guard line.end - line.start >= 12, let minor = httpVersion(p, line.start, line.start + 8),
        p[line.start + 8] == SP
    else { return .invalid("the status line does not start with HTTP/1.x") }
    var status = 0
    for k in (line.start + 9)..<(line.start + 12) {
        let d = p[k] &- 0x30
        guard d <= 9 else { return .invalid("the status line has no three-digit status code") }
        status = status * 10 + Int(d)
    }
    guard line.end == line.start + 12 || p[line.start + 12] == SP, status >= 100 else {
        return .invalid("the status line has no three-digit status code")
    }
    var facts = HeaderFacts()
    switch scanHeaders(&lines, into: &facts, request: false, connectionLines: connectionLines) {
    case .incomplete: return .incomplete
    case .invalid(let why): return .invalid(why)
    case .complete: break
    }
    let framing: BodyFraming
    if facts.hasTransferEncoding {
        // RFC 9112 §6.3: chunked last is chunked; any other coding is read until close.
        framing = facts.chunkedLast ? .chunked : .untilClose
    } else if let n = facts.contentLength {
        framing = n > 0 ? .length(n) : .none
    } else {
        framing = .untilClose
    }
    let keepAlive = minor >= 1 ? !facts.connectionClose : (facts.connectionKeepAlive && !facts.connectionClose)
    return .complete(
        WireResponseHead(
            length: facts.length, headerEnd: facts.headerEnd, versionMinor: minor, status: status,
            framing: framing, keepAlive: keepAlive, connectionLines: facts.connectionLines))
}

/// What follows a final response head, given the request it answers: no body after a
/// HEAD, 204 or 304 whatever the headers say; after 101 or a 2xx to CONNECT the connection
/// becomes a tunnel (no HTTP body either).
package func responseBody(status: Int, framing: BodyFraming, requestIsHEAD: Bool, requestIsCONNECT: Bool)
    -> (framing: BodyFraming, tunnel: Bool)
{
    let tunnel = status == 101 || (requestIsCONNECT && status >= 200 && status < 300)
    if tunnel || requestIsHEAD || status == 204 || status == 304 { return (.none, tunnel) }
    return (framing, false)
}

/// Walks chunked framing as the bytes arrive, in pieces of any size, without keeping any:
/// says how many of the bytes belong to the body (framing included), how many of those are
/// payload, and whether the body (the last chunk and its trailers) is complete. A request's
/// body (`requireCRLF`) must end its lines with CRLF, as its head must.
package struct ChunkedScanner {
    package struct Error: Swift.Error, CustomStringConvertible {
        package var description: String
        /// The access log's `error` for a request refused for it.
        package var token = "bad_chunked_body"
    }

    private enum State {
        case sizeStart, size, sizeExtension, sizeLF, data, dataCR, dataLF, trailerStart, trailerLine, trailerLF, finalLF, done
    }

    private var state = State.sizeStart
    private var remaining = 0
    private var digits = 0
    private let requireCRLF: Bool

    package init(requireCRLF: Bool = false) { self.requireCRLF = requireCRLF }

    private static let bareLF = Error(description: "a chunked body line ended by a bare LF", token: RequestRefusal.bareLineFeed.token)

    package var isDone: Bool { state == .done }

    /// Scans `p`; returns the bytes that belong to this body (all of them unless it ended
    /// inside `p`) and the payload bytes among them.
    package mutating func scan(_ p: UnsafeRawBufferPointer) throws(Error) -> (consumed: Int, payload: Int) {
        var i = 0
        var payload = 0
        let n = p.count
        while i < n {
            switch state {
            case .data:
                let take = min(remaining, n - i)
                i += take
                payload += take
                remaining -= take
                if remaining == 0 { state = .dataCR }
                continue
            case .done:
                return (i, payload)
            default:
                break
            }
            let b = p[i]
            i += 1
            switch state {
            case .sizeStart, .size:
                if let v = hexValue(b) {
                    digits += 1
                    // 15 hex digits fit in an Int: no overflow (RFC 9112 §7.1).
                    guard digits <= 15 else { throw Error(description: "a chunk size that is too large", token: "chunk_size_overflow") }
                    remaining = remaining << 4 | v
                    state = .size
                } else if state == .size && (b == UInt8(ascii: ";") || b == SP || b == HT) {
                    state = .sizeExtension
                } else if state == .size && b == CR {
                    state = .sizeLF
                } else if state == .size && b == LF {
                    if requireCRLF { throw Self.bareLF }
                    endOfSizeLine()
                } else {
                    throw Error(description: "an invalid chunk size")
                }
            case .sizeExtension:
                if b == CR {
                    state = .sizeLF
                } else if b == LF {
                    if requireCRLF { throw Self.bareLF }
                    endOfSizeLine()
                }
            case .sizeLF:
                guard b == LF else { throw Error(description: "a chunk size line not ended by CRLF") }
                endOfSizeLine()
            case .dataCR:
                if b == CR {
                    state = .dataLF
                } else if b == LF {
                    if requireCRLF { throw Self.bareLF }
                    state = .sizeStart
                } else {
                    throw Error(description: "chunk data not followed by CRLF")
                }
            case .dataLF:
                guard b == LF else { throw Error(description: "chunk data not followed by CRLF") }
                state = .sizeStart
            case .trailerStart:
                if b == CR {
                    state = .finalLF
                } else if b == LF {
                    if requireCRLF { throw Self.bareLF }
                    state = .done
                } else {
                    state = .trailerLine
                }
            case .trailerLine:
                if b == LF {
                    if requireCRLF { throw Self.bareLF }
                    state = .trailerStart
                } else if b == CR {
                    state = .trailerLF
                }
            case .trailerLF:
                if b == LF {
                    state = .trailerStart
                } else if requireCRLF {
                    throw Error(description: "a bare CR in a trailer line")
                } else {
                    state = .trailerLine
                }
            case .finalLF:
                guard b == LF else { throw Error(description: "the chunked body's end not ended by CRLF") }
                state = .done
            case .data, .done:
                break
            }
        }
        return (i, payload)
    }

    private mutating func endOfSizeLine() {
        digits = 0
        state = remaining == 0 ? .trailerStart : .data
    }

    @inline(__always)
    private func hexValue(_ b: UInt8) -> Int? {
        switch b {
        case 0x30...0x39: return Int(b - 0x30)
        case 0x41...0x46: return Int(b - 0x41 + 10)
        case 0x61...0x66: return Int(b - 0x61 + 10)
        default: return nil
        }
    }
}

/// Where a message body ends, whatever its framing, fed the bytes as they arrive.
package struct BodyReader {
    package let framing: BodyFraming
    private var remaining = 0
    private var chunks: ChunkedScanner

    /// `requireCRLF` for a request's body (see `ChunkedScanner`).
    package init(_ framing: BodyFraming, requireCRLF: Bool = false) {
        self.framing = framing
        chunks = ChunkedScanner(requireCRLF: requireCRLF)
        if case .length(let n) = framing { remaining = n }
    }

    /// The body has been read to its end (a body read until close never is).
    package var isDone: Bool {
        switch framing {
        case .none: return true
        case .length: return remaining == 0
        case .chunked: return chunks.isDone
        case .untilClose: return false
        }
    }

    /// Reads what belongs to the body from the start of `p`: returns how many bytes do
    /// (framing included) and how many of those are payload.
    package mutating func read(_ p: UnsafeRawBufferPointer) throws(ChunkedScanner.Error) -> (consumed: Int, payload: Int) {
        switch framing {
        case .none:
            return (0, 0)
        case .length:
            let n = min(remaining, p.count)
            remaining -= n
            return (n, n)
        case .chunked:
            return try chunks.scan(p)
        case .untilClose:
            return (p.count, p.count)
        }
    }
}
