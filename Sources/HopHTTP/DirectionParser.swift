/// The incremental HTTP/1.x parser for one direction of one connection.
///
/// Own parser or SwiftNIO's llhttp (NIOHTTP1)? Decided for our own, for what a capture needs
/// and a socket parser does not do:
/// - gaps: bytes that will never come. A gap inside a body of known length (Content-Length,
///   or inside one chunk's data) is subtracted and the framing kept; llhttp has no such input.
/// - resynchronisation: after a gap, an error, or a connection picked up mid-stream, scan for
///   the next plausible start line (known method + SP + target, or `HTTP/1.d SP d`) anywhere in
///   the bytes, including across chunk boundaries; llhttp stops at the first error for good.
/// - response framing decided by the request queue that sits beside both parsers (HEAD, 1xx,
///   204/304, CONNECT 2xx, 101), and pairing that survives lost responses
///   (`ConnectionState.pickSlot`).
/// - no copies: body bytes are only counted; header bytes are copied once per head into one
///   buffer (`HTTPHeaders`), strings are made lazily. NIOHTTP1 copies each body byte into a
///   `ByteBuffer` and makes a String per header name and value.
/// Measured (`HTTPPerformanceTests`, release, 200k keep-alive exchanges with 7 request and 6
/// response headers and 700-byte bodies, MSS-sized chunks, on a shared 2-core machine):
/// 2.0–3.2 µs per exchange, 350–550 MB/s; the same segments plus one ACK each read back from a
/// pcap by a bare libpcap loop take 130–190 ns per packet, i.e. this stage costs 2.6–4.6× the
/// read loop on this header-heavy traffic (far less with larger bodies, which cost O(1) per
/// chunk).
///
/// States: idle (between messages, leading CR/LF skipped) → head (start line + fields, parsed
/// in one go once the empty line is seen) → body (content-length | chunk-size/chunk-data/
/// chunk-end/trailers | until-close) → idle. Side states: resync (looking for a plausible
/// start line), held (after an Upgrade/CONNECT request, until its response decides), tunnel,
/// ignored (non-HTTP or TLS connection).
///
/// Every decision depends only on the bytes, never on where the chunks were cut (tests feed
/// every case at every split point, in 1-byte chunks and at random cuts).
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a `DirectionParser` is, with what only that place needs.
///
/// The message under way (its times, body counts and prefix, trailers) spans the head, body and
/// trailer states and stays in the parser's own fields; so do the counts that outlive a state
/// (gaps seen, the last resynchronisation's reason and gap).
///
/// Mutating a payload that holds an array (`HeadScan.bytes`, `chunkSize`'s line, `Resync.carry`,
/// `TunnelPeek.bytes`): take it out of `state` first (and leave a payload-free state behind)
/// so the array is uniquely referenced, then put it back; a copy bound by `case .x(var p)`
/// with the state still holding it would copy the array on the first append.
enum ParserState {
    /// Between messages (leading CR/LF skipped).
    case idle
    /// A start line and header fields.
    case head(HeadScan)
    /// A Content-Length body: its bytes still to come.
    case body(remaining: Int64)
    /// A chunk-size line; `line`: its bytes so far when a chunk ended inside it (else empty).
    case chunkSize(line: [UInt8])
    /// A chunk's data: its bytes still to come.
    case chunkData(remaining: Int64)
    /// The CRLF after a chunk's data; `sawCR`: its CR was read.
    case chunkDataEnd(sawCR: Bool)
    /// The trailer fields after the last chunk (`HeadScan` with no start line).
    case trailers(HeadScan)
    /// A body delimited by the connection's close.
    case untilClose
    /// Looking for a plausible start line.
    case resync(Resync)
    /// After an Upgrade/CONNECT request, until its response decides: bytes counted, not parsed.
    case held(bytes: Int64)
    /// The rest of the connection is a tunnel.
    case tunnel(TunnelPeek)
    /// A non-HTTP or TLS connection.
    case ignored
    /// The connection's first request line was malformed: the request side's bytes are counted,
    /// not parsed, until the response side shows whether the connection is HTTP.
    case awaitingVerdict(bytes: Int64)

    var isIdle: Bool { if case .idle = self { true } else { false } }
    var isResync: Bool { if case .resync = self { true } else { false } }
}

/// A head (or trailer block) being read.
struct HeadScan {
    /// The bytes so far, when a chunk ended inside the head (empty while it is read in place).
    var bytes: [UInt8] = []
    /// Lines ended so far (trailers start at 1: no start line).
    var lineIndex = 0
    var atLineStart = false
    var crAtLineStart = false
    /// The first bytes are not yet known to be able to begin a start line.
    var prefixPending = false
    /// The head began at a resync candidate: strict start line, small cap.
    var candidate = false
}

/// The search for a start line.
struct Resync {
    /// Undecided bytes at the end of the previous chunk that may start a start line.
    var carry: [UInt8] = []
    /// Skip to the end of the current line before looking for a start line again.
    var skipToLF = false
    /// The bytes skipped to the end of the line count as skipped by the resync.
    var skipCounts = true
}

/// The first bytes of a tunnel from the client (TLS detection), and the bytes counted.
struct TunnelPeek {
    var bytes: [UInt8] = []
    var count: Int64 = 0
}

enum ResyncReason { case gap, error, midstream }

/// What the connection decided once a head was parsed.
enum HeadDecision {
    case body(HTTPBodyFraming)
    /// A 1xx interim response: no body, the next response follows.
    case interim
    /// 101 or 2xx to CONNECT: the rest of the connection is a tunnel.
    case tunnel
    /// The head cannot be framed.
    case reject(HTTPParseError)
}

/// The end of a message, as the connection learns it.
struct MessageEnd {
    var bodyLength: Int64
    var bodyPrefix: [UInt8]
    var bodyMissing: Int64
    var lastTimestamp: Int64
    /// The framing reached the message's end (bytes may still be missing: see `bodyMissing`).
    var complete: Bool
    var malformed: Bool
    var headerLimit: Bool
    var trailers: HTTPHeaders
}


final class DirectionParser {
    let isRequestSide: Bool
    let config: HTTPConfiguration
    @exclusivity(unchecked) var state: ParserState = .idle

    let scratch = HeadScratch()
    /// A byte buffer's capacity kept between heads and chunk-size lines cut by a chunk's end
    /// (their bytes live in the state; emptied when taken).
    @exclusivity(unchecked) private var spareBytes: [UInt8] = []

    // Message being parsed: from its head to its end, across the head, body and trailer states.
    @exclusivity(unchecked) var inMessage = false
    @exclusivity(unchecked) var msgFirst: Int64 = 0
    @exclusivity(unchecked) var msgLast: Int64 = 0
    @exclusivity(unchecked) var bodyLength: Int64 = 0
    @exclusivity(unchecked) var bodyMissing: Int64 = 0
    /// The body's first bytes (`HTTPConfiguration.bodyPrefixBytes`).
    @exclusivity(unchecked) var bodyPrefix: [UInt8] = []
    @exclusivity(unchecked) var trailers = HTTPHeaders()
    /// The message was found by resynchronising after a gap (or mid-stream).
    @exclusivity(unchecked) var msgResyncedAfterGap = false

    // The last resynchronisation: set when it starts, read by its candidate heads and, for the
    // message it found, by the connection pairing that message (`ConnectionState.pickSlot`).
    @exclusivity(unchecked) var resyncReason: ResyncReason = .gap
    /// Time of the last data seen before the gap that started the current resync.
    @exclusivity(unchecked) var gapPrevTimestamp: Int64?
    /// Messages known to have started inside the gap of the current resync (0 or 1: a gap that
    /// began at a message boundary hides at least the message that started there).
    @exclusivity(unchecked) var lostMessageStarts = 0

    @exclusivity(unchecked) var lastDataTimestamp: Int64?
    @exclusivity(unchecked) var gapsSeen = 0
    /// A start line was validated in this direction.
    @exclusivity(unchecked) var sawStartLine = false

    init(isRequestSide: Bool, config: HTTPConfiguration) {
        self.isRequestSide = isRequestSide
        self.config = config
    }

    /// Bytes counted, not parsed, while `.held` or `.awaitingVerdict` (else 0).
    var heldBytes: Int64 {
        switch state {
        case .held(let n), .awaitingVerdict(let n): n
        default: 0
        }
    }

    // MARK: Data

    func consume(_ buf: UnsafeRawBufferPointer, first: Int64, last: Int64, conn: ConnectionState) {
        let n = buf.count
        guard n > 0 else { return }
        var i = 0
        while i < n {
            switch state {
            case .idle:
                while i < n, buf[i] == CR || buf[i] == LF { i += 1 }
                if i == n { break }
                beginHead(first, candidate: false)
            case .head, .trailers:
                i = scanHead(buf, i, first: first, last: last, conn: conn)
            case .body(let remaining):
                let take = min(Int64(n - i), remaining)
                if bodyPrefix.count < config.bodyPrefixBytes { keepBody(buf, i, Int(take)) }
                bodyLength += take
                i += Int(take)
                msgLast = last
                if take == remaining {
                    finishMessage(conn, complete: true)
                } else {
                    state = .body(remaining: remaining - take)
                }
            case .chunkSize:
                i = scanChunkLine(buf, i, last: last, conn: conn)
            case .chunkData(let remaining):
                let take = min(Int64(n - i), remaining)
                if bodyPrefix.count < config.bodyPrefixBytes { keepBody(buf, i, Int(take)) }
                bodyLength += take
                i += Int(take)
                msgLast = last
                state = take == remaining ? .chunkDataEnd(sawCR: false) : .chunkData(remaining: remaining - take)
            case .chunkDataEnd(let sawCR):
                let b = buf[i]
                if b == LF {
                    i += 1
                    state = .chunkSize(line: [])
                } else if b == CR && !sawCR {
                    state = .chunkDataEnd(sawCR: true)
                    i += 1
                } else {
                    fail(.badChunkTerminator, conn: conn)
                }
            case .untilClose:
                if bodyPrefix.count < config.bodyPrefixBytes { keepBody(buf, i, n - i) }
                bodyLength += Int64(n - i)
                msgLast = last
                i = n
            case .resync:
                i = scanResync(buf, i, first: first, conn: conn)
            case .held(let held):
                state = .held(bytes: held + Int64(n - i))
                i = n
            case .awaitingVerdict(let held):
                conn.pendingMalformedRequest?.extend(UnsafeRawBufferPointer(rebasing: buf[i..<n]), last: last)
                state = .awaitingVerdict(bytes: held + Int64(n - i))
                i = n
            case .tunnel where conn.http2 != nil:
                // An accepted `Upgrade: h2c`: the rest is HTTP/2's.
                conn.http2!.consume(isRequestSide ? 0 : 1, UnsafeRawBufferPointer(rebasing: buf[i..<n]), first: first, last: last)
                i = n
            case .tunnel(var peek):
                state = .ignored // `peek` alone holds its bytes while they grow
                if peek.bytes.count < 3 && isRequestSide && conn.tunnelPending != nil {
                    peek.bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[i..<min(n, i + 3 - peek.bytes.count)]))
                    if peek.bytes.count == 3 { conn.tunnelFirstBytes(peek.bytes) }
                }
                peek.count += Int64(n - i)
                state = .tunnel(peek)
                i = n
            case .ignored:
                i = n
            }
        }
        lastDataTimestamp = last
    }

    /// Keeps what the body prefix still lacks of `count` bytes at `i`.
    private func keepBody(_ buf: UnsafeRawBufferPointer, _ i: Int, _ count: Int) {
        // After a gap the bytes are no longer the body's start.
        guard bodyMissing == 0 else { return }
        let k = min(count, config.bodyPrefixBytes - bodyPrefix.count)
        bodyPrefix.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[i..<(i + k)]))
    }

    // MARK: Byte buffers

    /// `bytes` (empty, no capacity yet, or an accumulation in progress) with `more` appended;
    /// the first bytes go into the spare buffer's capacity.
    @inline(__always)
    private func accumulate(_ bytes: inout [UInt8], _ more: UnsafeRawBufferPointer) {
        if bytes.capacity == 0 && spareBytes.capacity > 0 {
            swap(&bytes, &spareBytes)
            bytes.removeAll(keepingCapacity: true)
        }
        bytes.append(contentsOf: more)
    }

    /// Keeps `bytes`' capacity for the next accumulation (not past 16 KiB: a rare huge head
    /// gives its memory back).
    private func recycle(_ bytes: inout [UInt8]) {
        guard bytes.capacity > spareBytes.capacity && bytes.capacity <= 16 * 1024 else {
            bytes = []
            return
        }
        swap(&bytes, &spareBytes)
        bytes = []
    }

    // MARK: Heads

    private func beginHead(_ first: Int64, candidate: Bool) {
        state = .head(HeadScan(prefixPending: !candidate, candidate: candidate))
        msgFirst = first
        msgLast = first
        bodyLength = 0
        bodyMissing = 0
        if !bodyPrefix.isEmpty { bodyPrefix = [] }
        trailers = HTTPHeaders()
        msgResyncedAfterGap = candidate && resyncReason == .gap
        inMessage = false
    }

    @inline(__always)
    private func findLF(_ buf: UnsafeRawBufferPointer, _ from: Int) -> Int? {
        let n = buf.count
        guard from < n, let base = buf.baseAddress else { return nil }
        guard let p = memchr(base + from, Int32(LF), n - from) else { return nil }
        return UnsafeRawPointer(p) - base
    }

    /// Runs `body` over the head so far, `bytes + buf[seg..<end]`, contiguous.
    private func withHead<R>(_ bytes: inout [UInt8], _ buf: UnsafeRawBufferPointer, _ seg: inout Int, _ end: Int,
                             _ body: (UnsafeRawBufferPointer) -> R) -> R {
        if bytes.isEmpty { return body(UnsafeRawBufferPointer(rebasing: buf[seg..<end])) }
        bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[seg..<end]))
        seg = end
        return bytes.withUnsafeBytes(body)
    }

    @inline(__always)
    private func headCap(candidate: Bool) -> Int { candidate ? config.maxResyncLineBytes : config.maxHeaderBytes }

    /// Scans a head (or trailer block) from `start`; returns the index after what it consumed.
    ///
    /// The scan's progress is taken out of `state` (which says `.idle` meanwhile) and put back
    /// when the chunk ends inside the head; every other way out sets the next state itself.
    private func scanHead(_ buf: UnsafeRawBufferPointer, _ start: Int, first: Int64, last: Int64,
                          conn: ConnectionState) -> Int {
        var h: HeadScan
        let isTrailers: Bool
        switch state {
        case .head(let x):
            h = x
            isTrailers = false
        case .trailers(let x):
            h = x
            isTrailers = true
        default:
            return start
        }
        state = .idle
        let n = buf.count
        var i = start
        var seg = start
        msgLast = last
        if !isTrailers && h.lineIndex == 0 && h.bytes.isEmpty, let end = fastHead(buf, start, &h, conn: conn) {
            return end
        }
        if h.prefixPending && !isTrailers {
            let have = h.bytes.count
            let verdict = prefixVerdict(isRequest: isRequestSide, count: have + (n - seg)) { k in
                k < have ? h.bytes[k] : buf[seg + k - have]
            }
            switch verdict {
            case .plausible: h.prefixPending = false
            case .undecided: break
            case .implausible, .tls:
                return rejectPrefix(buf, &h, conn, tls: verdict == .tls, resumeAt: start, end: n)
            }
        }
        while true {
            if h.atLineStart {
                if i == n { break }
                let b = buf[i]
                if h.crAtLineStart {
                    if b == LF { return completeHead(buf, &h, isTrailers: isTrailers, seg, i + 1, conn: conn) }
                    h.crAtLineStart = false
                    h.atLineStart = false
                } else if b == LF {
                    return completeHead(buf, &h, isTrailers: isTrailers, seg, i + 1, conn: conn)
                } else if b == CR {
                    h.crAtLineStart = true
                    i += 1
                    continue
                } else {
                    h.atLineStart = false
                }
            }
            guard let lf = findLF(buf, i) else {
                i = n
                break
            }
            i = lf + 1
            if h.bytes.count + (i - seg) > headCap(candidate: h.candidate) {
                return headLimit(buf, &h, isTrailers: isTrailers, seg, i, atLF: true, conn: conn)
            }
            if h.lineIndex == 0 && !isTrailers {
                let strict = h.candidate
                let isReq = isRequestSide
                let ok = withHead(&h.bytes, buf, &seg, i) { b -> Bool in
                    let e = trimCR(b, 0, b.count - 1)
                    return isReq ? parseRequestLine(b, 0, e, strict: strict) != nil
                        : parseStatusLine(b, 0, e) != nil
                }
                if !ok {
                    let skipped = h.bytes.count + (i - seg)
                    return rejectStartLine(buf, &h, seg, conn, skipped: skipped, end: i)
                }
                startLineAccepted(&h, conn)
            }
            h.lineIndex += 1
            h.atLineStart = true
            h.crAtLineStart = false
        }
        // The chunk ended inside the head.
        if h.bytes.count + (n - seg) > headCap(candidate: h.candidate) {
            return headLimit(buf, &h, isTrailers: isTrailers, seg, n, atLF: false, conn: conn)
        }
        accumulate(&h.bytes, UnsafeRawBufferPointer(rebasing: buf[seg..<n]))
        state = isTrailers ? .trailers(h) : .head(h)
        return n
    }

    /// The common case: a whole head at the start of this chunk. Parsed in one pass straight
    /// from the chunk's bytes; nil when the general path must decide (head cut by the chunk's
    /// end, over the cap, an undecided or rejected start, obs-fold).
    private func fastHead(_ buf: UnsafeRawBufferPointer, _ start: Int, _ h: inout HeadScan, conn: ConnectionState) -> Int? {
        let b = UnsafeRawBufferPointer(rebasing: buf[start...])
        if h.prefixPending {
            let verdict = prefixVerdict(isRequest: isRequestSide, count: b.count) { b[$0] }
            guard verdict == .plausible else { return nil }
        }
        let head = parseHead(b, isRequest: isRequestSide, hasStartLine: true, partial: false,
                             scan: true, strict: h.candidate, scratch: scratch)
        guard head.end > 0, head.end <= headCap(candidate: h.candidate) else { return nil }
        startLineAccepted(&h, conn)
        return headDone(head, isTrailers: false, end: start + head.end, conn: conn)
    }

    private func startLineAccepted(_ h: inout HeadScan, _ conn: ConnectionState) {
        h.prefixPending = false
        if h.candidate {
            h.candidate = false
            switch resyncReason {
            case .gap: conn.analyzer.counters.resyncsAfterGap += 1
            case .error: conn.analyzer.counters.resyncsAfterError += 1
            case .midstream: break
            }
        }
        sawStartLine = true
        conn.startLineSeen()
    }

    /// The first bytes of a message cannot start a start line (decided before its end).
    private func rejectPrefix(_ buf: UnsafeRawBufferPointer, _ h: inout HeadScan, _ conn: ConnectionState, tls: Bool,
                              resumeAt: Int, end: Int) -> Int {
        if conn.mayDeclareNonHTTP {
            if !tls && isRequestSide {
                let line = h.bytes + UnsafeRawBufferPointer(rebasing: buf[resumeAt..<min(end, resumeAt + malformedLinePrefix)])
                let consumed = h.bytes.count + end - resumeAt
                return awaitVerdict(line, &h, consumed: consumed, conn, end: end)
            }
            recycle(&h.bytes)
            conn.declare(tls ? .tls : .nonHTTP)
            return end
        }
        conn.analyzer.counters[isRequestSide ? .badRequestLine : .badStatusLine] += 1
        // Scan the rejected bytes too: a start line may begin inside them.
        let kept = h.bytes
        h.bytes = []
        enterResync(.error)
        state = .resync(Resync(carry: kept))
        return resumeAt
    }

    /// The complete first line of a message, `h.bytes` (when not empty) or `buf[seg..<end]`, is
    /// not a start line.
    private func rejectStartLine(_ buf: UnsafeRawBufferPointer, _ h: inout HeadScan, _ seg: Int, _ conn: ConnectionState,
                                 skipped: Int, end: Int) -> Int {
        if h.candidate {
            conn.analyzer.counters.resyncSkippedBytes += Int64(skipped)
            recycle(&h.bytes)
            state = .resync(Resync())
            return end
        }
        if conn.mayDeclareNonHTTP && isRequestSide {
            let line = h.bytes.isEmpty ? Array(UnsafeRawBufferPointer(rebasing: buf[seg..<min(end, seg + malformedLinePrefix)])) : h.bytes
            return awaitVerdict(line, &h, consumed: skipped, conn, end: end)
        }
        recycle(&h.bytes)
        if conn.mayDeclareNonHTTP {
            // Not skipped: the connection is not parsed (as when the first bytes decide it).
            conn.declare(.nonHTTP)
            return end
        }
        conn.analyzer.counters.resyncSkippedBytes += Int64(skipped)
        conn.analyzer.counters[isRequestSide ? .badRequestLine : .badStatusLine] += 1
        enterResync(.error)
        return end
    }

    /// The connection's first request line is malformed (`line`: its first bytes). Whether the
    /// connection is HTTP is for the response side to say: a status line there keeps it HTTP and
    /// makes this line a malformed request, answered (`ConnectionState.startLineSeen`); anything
    /// else makes the connection non-HTTP, as it would have been.
    /// `consumed`: the message's bytes read so far (all counted in `heldBytes`, whatever the cuts).
    private func awaitVerdict(_ line: [UInt8], _ h: inout HeadScan, consumed: Int, _ conn: ConnectionState, end: Int) -> Int {
        conn.pendingMalformedRequest = MalformedRequest(bytes: line, firstTimestamp: msgFirst, lastTimestamp: msgLast)
        h.bytes = []
        state = .awaitingVerdict(bytes: Int64(consumed))
        return end
    }

    /// The head grew past its cap. `atLF`: `end` is just after a line's LF (else a chunk's end).
    private func headLimit(_ buf: UnsafeRawBufferPointer, _ h: inout HeadScan, isTrailers: Bool, _ seg: Int, _ end: Int,
                           atLF: Bool, conn: ConnectionState) -> Int {
        if h.candidate && !isTrailers {
            // Not a start line after all (too long): skip the rest of the line.
            conn.analyzer.counters.resyncSkippedBytes += Int64(h.bytes.count + end - seg)
            recycle(&h.bytes)
            state = .resync(Resync(skipToLF: !atLF, skipCounts: true))
            return end
        }
        conn.analyzer.counters.headerLimitHits += 1
        var s = seg
        let cap = config.maxHeaderBytes
        let partial = withHead(&h.bytes, buf, &s, end) { b in
            parseHead(UnsafeRawBufferPointer(rebasing: b[0..<min(b.count, cap)]), isRequest: isRequestSide,
                      hasStartLine: !isTrailers, partial: true, scratch: scratch)
        }
        if !isTrailers {
            if h.lineIndex > 0 { deliverPartialHead(partial, conn: conn) }
        } else {
            trailers = scratch.takeHeaders()
        }
        finishMessage(conn, complete: false, malformed: true, headerLimit: true)
        recycle(&h.bytes)
        enterResync(.error)
        state = .resync(Resync(skipToLF: !atLF, skipCounts: false))
        return end
    }

    /// The empty line ending the head (or trailers) was found at `end - 1`.
    private func completeHead(_ buf: UnsafeRawBufferPointer, _ h: inout HeadScan, isTrailers: Bool, _ seg: Int, _ end: Int,
                              conn: ConnectionState) -> Int {
        var s = seg
        let head = withHead(&h.bytes, buf, &s, end) { b in
            parseHead(b, isRequest: isRequestSide, hasStartLine: !isTrailers, partial: false, scratch: scratch)
        }
        recycle(&h.bytes)
        return headDone(head, isTrailers: isTrailers, end: end, conn: conn)
    }

    private func headDone(_ head: ParsedHead, isTrailers: Bool, end: Int, conn: ConnectionState) -> Int {
        if head.badHeaderLines > 0 { conn.analyzer.counters[.badHeaderLine] += head.badHeaderLines }
        conn.analyzer.counters.obsFoldedHeaders += head.obsFolds
        if isTrailers {
            trailers = scratch.takeHeaders()
            finishMessage(conn, complete: true)
            return end
        }
        inMessage = true
        switch conn.headParsed(self, head) {
        case .interim:
            inMessage = false
            state = .idle
        case .tunnel:
            inMessage = false
            state = .tunnel(TunnelPeek())
        case .reject(let e):
            fail(e, conn: conn)
        case .body(let framing):
            switch framing {
            case .none, .contentLength(0):
                finishMessage(conn, complete: true)
            case .contentLength(let len):
                state = .body(remaining: len)
            case .chunked:
                state = .chunkSize(line: [])
            case .untilClose:
                state = .untilClose
            }
        }
        return end
    }

    private func deliverPartialHead(_ head: ParsedHead, conn: ConnectionState) {
        inMessage = true
        _ = conn.headParsed(self, head)
    }

    // MARK: Chunked

    /// Reads a chunk-size line from `start` (the line's bytes so far taken out of `state`, which
    /// says `.idle` meanwhile).
    private func scanChunkLine(_ buf: UnsafeRawBufferPointer, _ start: Int, last: Int64, conn: ConnectionState) -> Int {
        guard case .chunkSize(var line) = state else { return start }
        state = .idle
        let n = buf.count
        msgLast = last
        guard let lf = findLF(buf, start) else {
            if line.count + (n - start) > config.maxChunkLineBytes {
                recycle(&line)
                fail(.chunkLineTooLong, conn: conn)
            } else {
                accumulate(&line, UnsafeRawBufferPointer(rebasing: buf[start..<n]))
                state = .chunkSize(line: line)
            }
            return n
        }
        if line.count + (lf - start) > config.maxChunkLineBytes {
            recycle(&line)
            fail(.chunkLineTooLong, conn: conn)
            return lf + 1
        }
        let size: Int64?
        if line.isEmpty {
            size = parseChunkSize(UnsafeRawBufferPointer(rebasing: buf[start..<lf]))
        } else {
            line.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[start..<lf]))
            size = line.withUnsafeBytes { parseChunkSize($0) }
            recycle(&line)
        }
        guard let size else {
            fail(.badChunkSize, conn: conn)
            return lf + 1
        }
        if size == 0 {
            state = .trailers(HeadScan(lineIndex: 1, atLineStart: true))
        } else {
            state = .chunkData(remaining: size)
        }
        return lf + 1
    }

    /// `1*HEXDIG [ws] [; ext…] [CR]`.
    private func parseChunkSize(_ b: UnsafeRawBufferPointer) -> Int64? {
        let e = trimCR(b, 0, b.count)
        var i = 0
        var v: Int64 = 0
        while i < e {
            let c = b[i]
            let d: UInt8
            switch c {
            case 0x30...0x39: d = c - 0x30
            case 0x41...0x46: d = c - 0x41 + 10
            case 0x61...0x66: d = c - 0x61 + 10
            default: d = 0xff
            }
            if d == 0xff { break }
            guard i < 15 else { return nil }
            v = v << 4 | Int64(d)
            i += 1
        }
        guard i > 0 else { return nil }
        while i < e, b[i] == SP || b[i] == HT { i += 1 }
        guard i == e || b[i] == UInt8(ascii: ";") else { return nil }
        return v
    }

    // MARK: Resync

    /// Looks for a start line from `start` (the search's progress taken out of `state`, which
    /// says `.idle` meanwhile, and put back unless a candidate head begins).
    private func scanResync(_ buf: UnsafeRawBufferPointer, _ start: Int, first: Int64, conn: ConnectionState) -> Int {
        guard case .resync(var r) = state else { return start }
        state = .idle
        let n = buf.count
        var i = start
        var skipped: Int64 = 0
        defer { conn.analyzer.counters.resyncSkippedBytes += skipped }
        if r.skipToLF {
            guard let lf = findLF(buf, i) else {
                if r.skipCounts { skipped += Int64(n - i) }
                state = .resync(r)
                return n
            }
            if r.skipCounts { skipped += Int64(lf + 1 - i) }
            i = lf + 1
            r.skipToLF = false
        }
        if !r.carry.isEmpty {
            // Positions in the carried bytes, decided with the help of this chunk's first bytes.
            var view = r.carry
            r.carry = []
            let cc = view.count
            view.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[i..<min(n, i + 32)]))
            for k in 0..<cc where isCandidateFirst(view[k]) {
                switch view.withUnsafeBytes({ matchStartLine($0, k) }) {
                case .match:
                    skipped += Int64(k)
                    beginHead(first, candidate: true)
                    var h = HeadScan(prefixPending: false, candidate: true)
                    view.withUnsafeBytes { accumulate(&h.bytes, UnsafeRawBufferPointer(rebasing: $0[k..<cc])) }
                    state = .head(h)
                    return i
                case .needMore:
                    skipped += Int64(k)
                    r.carry = Array(view[k...])
                    state = .resync(r)
                    return n
                case .noMatch:
                    continue
                }
            }
            skipped += Int64(cc)
        }
        var k = i
        while k < n {
            if isRequestSide {
                while k < n, !isCandidateFirst(buf[k]) { k += 1 }
            } else {
                guard let base = buf.baseAddress, let p = memchr(base + k, Int32(UInt8(ascii: "H")), n - k) else {
                    k = n
                    break
                }
                k = UnsafeRawPointer(p) - base
            }
            if k == n { break }
            switch matchStartLine(buf, k) {
            case .match:
                skipped += Int64(k - i)
                beginHead(first, candidate: true)
                return k
            case .needMore:
                skipped += Int64(k - i)
                r.carry = Array(buf[k..<n])
                state = .resync(r)
                return n
            case .noMatch:
                k += 1
            }
        }
        skipped += Int64(n - i)
        state = .resync(r)
        return n
    }

    @inline(__always)
    private func isCandidateFirst(_ b: UInt8) -> Bool {
        isRequestSide ? methodFirstLetters[Int(b)] : b == UInt8(ascii: "H")
    }

    enum Match { case match, noMatch, needMore }

    /// Whether a start line plausibly begins at `k`: a known method, SP and a target's first
    /// character; or `HTTP/1.d SP d`.
    private func matchStartLine(_ v: UnsafeRawBufferPointer, _ k: Int) -> Match {
        let n = v.count
        if isRequestSide {
            var j = k
            while j < n, j - k <= 12, isMethodChar(v[j]) { j += 1 }
            if j - k > 12 { return .noMatch }
            if j == n { return .needMore }
            guard j > k, v[j] == SP, isKnownMethod(v, k, j) else { return .noMatch }
            if j + 1 == n { return .needMore }
            let t = v[j + 1]
            let ok = t == UInt8(ascii: "/") || t == UInt8(ascii: "*") || (t >= 0x30 && t <= 0x39)
                || (t >= 0x41 && t <= 0x5a) || (t >= 0x61 && t <= 0x7a)
            return ok ? .match : .noMatch
        } else {
            let proto: StaticString = "HTTP/1."
            for m in 0..<11 {
                if k + m == n { return .needMore }
                let c = v[k + m]
                let ok: Bool
                switch m {
                case 0..<7: ok = c == proto.utf8Start[m]
                case 7, 9, 10: ok = c >= 0x30 && c <= 0x39
                default: ok = c == SP
                }
                if !ok { return .noMatch }
            }
            return .match
        }
    }

    func enterResync(_ reason: ResyncReason) {
        let searching: Bool
        switch state {
        case .resync: searching = true
        case .head(let h): searching = h.candidate
        default: searching = false
        }
        if !searching {
            lostMessageStarts = 0
            resyncReason = reason
            if reason != .error { gapPrevTimestamp = lastDataTimestamp }
        } else if reason == .gap {
            // A further gap while still searching: the search is now after a gap.
            if resyncReason == .error { gapPrevTimestamp = lastDataTimestamp }
            resyncReason = .gap
        }
        inMessage = false
        state = .resync(Resync())
    }

    // MARK: Message end, errors, gaps

    func finishMessage(_ conn: ConnectionState, complete: Bool, malformed: Bool = false, headerLimit: Bool = false) {
        let end = MessageEnd(bodyLength: bodyLength, bodyPrefix: bodyPrefix, bodyMissing: bodyMissing, lastTimestamp: msgLast,
                             complete: complete, malformed: malformed, headerLimit: headerLimit, trailers: trailers)
        let had = inMessage
        inMessage = false
        state = .idle
        if had { conn.messageEnded(self, end) }
    }

    func fail(_ e: HTTPParseError, conn: ConnectionState) {
        conn.analyzer.counters[e] += 1
        if inMessage { finishMessage(conn, complete: false, malformed: true) }
        enterResync(.error)
    }

    func gap(length: Int, at: Int64, conn: ConnectionState) {
        gapsSeen += 1
        let len = Int64(length)
        switch state {
        case .idle:
            // A message began right where the bytes went missing.
            enterResync(.gap)
            lostMessageStarts = 1
        case .head(let h):
            if h.candidate {
                enterResync(.gap)
                return
            }
            conn.analyzer.counters.gapsInsideMessages += 1
            if h.lineIndex > 0 {
                let partial = h.bytes.withUnsafeBytes {
                    parseHead($0, isRequest: isRequestSide, hasStartLine: true, partial: true, scratch: scratch)
                }
                deliverPartialHead(partial, conn: conn)
            }
            finishMessage(conn, complete: false)
            enterResync(.gap)
            if h.lineIndex == 0 { lostMessageStarts = 1 }
        case .trailers:
            conn.analyzer.counters.gapsInsideMessages += 1
            finishMessage(conn, complete: false)
            enterResync(.gap)
        case .body(let remaining):
            conn.analyzer.counters.gapsInsideMessages += 1
            if bodyMissing == 0 { conn.analyzer.counters.bodiesTruncatedByGap += 1 }
            let lost = min(len, remaining)
            bodyMissing += lost
            if remaining > lost {
                state = .body(remaining: remaining - lost)
                return
            }
            finishMessage(conn, complete: true)
            if len > lost {
                enterResync(.gap)
                lostMessageStarts = 1
            }
        case .chunkData(let remaining):
            conn.analyzer.counters.gapsInsideMessages += 1
            if bodyMissing == 0 { conn.analyzer.counters.bodiesTruncatedByGap += 1 }
            let lost = min(len, remaining)
            bodyMissing += lost
            if remaining > lost {
                state = .chunkData(remaining: remaining - lost)
                return
            }
            if len == lost {
                state = .chunkDataEnd(sawCR: false)
                return
            }
            finishMessage(conn, complete: false)
            enterResync(.gap)
        case .chunkSize, .chunkDataEnd:
            conn.analyzer.counters.gapsInsideMessages += 1
            finishMessage(conn, complete: false)
            enterResync(.gap)
        case .untilClose:
            conn.analyzer.counters.gapsInsideMessages += 1
            if bodyMissing == 0 { conn.analyzer.counters.bodiesTruncatedByGap += 1 }
            bodyMissing += len
        case .resync:
            enterResync(.gap)
        case .held, .tunnel, .ignored, .awaitingVerdict:
            break
        }
    }

    /// The connection ended: whatever message is open ends here.
    func close(conn: ConnectionState, cleanly: Bool) {
        switch state {
        case .untilClose:
            finishMessage(conn, complete: cleanly)
        case .head(let h):
            if h.candidate { break }
            if h.lineIndex > 0 {
                let partial = h.bytes.withUnsafeBytes {
                    parseHead($0, isRequest: isRequestSide, hasStartLine: true, partial: true, scratch: scratch)
                }
                deliverPartialHead(partial, conn: conn)
            }
            finishMessage(conn, complete: false)
        case .body, .chunkSize, .chunkData, .chunkDataEnd, .trailers:
            finishMessage(conn, complete: false)
        default:
            break
        }
        spareBytes = []
    }
}
