/// One direction of an HTTP/2 connection: where its reader is in the frame sequence, and the
/// HPACK decoder of the header blocks it carries.
struct HTTP2Direction {
    enum ReadState {
        /// The client preface: bytes still to check (client side of a preface connection).
        case preface(matched: Int)
        /// Between frames: a frame header (9 bytes, maybe split across segments) comes next.
        case header
        /// A non-DATA frame's payload, gathered in `payload`.
        case payload
        /// A DATA frame's payload, streamed: data bytes left, then padding bytes left; the
        /// pad-length byte first when `needPadLength`.
        case data(dataLeft: Int, padLeft: Int, needPadLength: Bool)
        /// Payload bytes skipped (an extension frame, a bad or too large one).
        case skip(Int)
        /// The boundary is lost: bytes gathered in `resyncBuffer` until a frame chain is trusted.
        case resync
    }

    var state: ReadState
    var headerBytes: [UInt8] = []
    var frame = HTTP2FrameHeader(length: 0, type: 0, flags: 0, streamID: 0)
    var frameFirst: Int64 = 0
    var payload: [UInt8] = []
    var resyncBuffer: [UInt8] = []
    /// Largest frame this direction may send: the receiver's SETTINGS_MAX_FRAME_SIZE.
    var maxFrameSize: Int
    var hpack: HPACKInflater
    /// Why the dynamic table is not the sender's (nil: in step since the preface).
    var tableLost: String?
    /// A header block being gathered (HEADERS or PUSH_PROMISE, then CONTINUATIONs); its
    /// bytes are in the connection's `blocks[d]` (a block whole in its HEADERS frame is decoded
    /// from the frame, not gathered).
    var openBlock: (stream: UInt32, endStream: Bool, promised: UInt32?, first: Int64)?
    var gaps = 0

    static func decoder(maxHeaderBytes: Int, tableSize: Int = 4096) -> HPACKInflater {
        HPACKInflater(maxHeaderListSize: maxHeaderBytes, tableSize: tableSize)
    }
}

/// The HTTP/2 parser of one connection: both directions' frames, the streams, their exchanges.
/// Driven by `ConnectionState` once the connection is known to be HTTP/2 (client preface, or
/// frames recognised mid-way); emits through the analyzer like HTTP/1.
final class HTTP2Connection {
    unowned(unsafe) let conn: ConnectionState
    // Single-thread state (the analyzer's thread), read and written for every frame: without
    // exclusivity checks (measured below, beside `HTTP2Stream.request`).
    /// The two directions (client 0, server 1), in memory of the connection's own: every frame
    /// reads and writes them in place (`dirs[d].x`), where an array of them was checked for
    /// uniqueness on every write (1M checks on the h2c benchmark capture).
    let dirs: UnsafeMutablePointer<HTTP2Direction>
    @exclusivity(unchecked) var streams = StreamTable()
    /// Each direction's open header block's bytes when it spans frames (HEADERS or PUSH_PROMISE
    /// without END_HEADERS, then CONTINUATIONs), in a buffer kept for the connection.
    @exclusivity(unchecked) var blocks: [[UInt8]] = [[], []]
    /// Streams emitted lately (frames for them — WINDOW_UPDATE, a late RST_STREAM — are not new
    /// streams), bounded.
    @exclusivity(unchecked) var closed = StreamIDSet()
    /// The last `closedMemory` emitted ids, oldest replaced first (a ring).
    @exclusivity(unchecked) var closedRing: [UInt32] = []
    @exclusivity(unchecked) var closedNext = 0
    static let closedMemory = 4096
    @exclusivity(unchecked) var nextSequence: Int
    @exclusivity(unchecked) var streamCount = 0
    @exclusivity(unchecked) var requestCount = 0
    @exclusivity(unchecked) var responseCount = 0
    @exclusivity(unchecked) var exchangeCount = 0
    /// The stream last looked up: a DATA frame's header, payload and end look up the same
    /// stream, and so do a block's frames and its decoding (hashing the id was 3% of `http`
    /// on the h2c benchmark capture, callgrind). Forgotten when the stream is emitted.
    @exclusivity(unchecked) private var recent: HTTP2Stream?
    /// The method, target, host and gRPC content-type of the last few request heads, and the
    /// status of the last response heads, by their packed fields: a head shared from the
    /// decoder's repeats (the same immutable `HeadStorage`, see `HPACKInflater.decode`) has the
    /// same ones, so the fields are not searched and no String is made again (both were 6% of
    /// `http` on the h2c benchmark capture, callgrind).
    /// (Keys compared as plain values: iterating the entries themselves copied each, with its
    /// Strings, for every request.)
    @exclusivity(unchecked) private var requestHeadKeys: [HTTPHeaders.StorageKey] = []
    @exclusivity(unchecked) private var requestHeads: [(fields: HTTPHeaders, method: String, target: String, host: String?,
                                                        grpc: Bool)] = []
    @exclusivity(unchecked) private var requestHeadsNext = 0
    @exclusivity(unchecked) private var responseHeadKey: HTTPHeaders.StorageKey?
    @exclusivity(unchecked) private var responseHead: (fields: HTTPHeaders, status: Int?)?
    static let requestHeadMemory = 4
    let midstream: Bool
    /// Largest table size a pickup decoder accepts (the sender's is unknown).
    static let pickupTableSize = 1 << 16

    var analyzer: HTTPAnalyzer { conn.analyzer }
    var configuration: HTTPConfiguration { conn.analyzer.configuration }

    /// `preface`: the connection began with the client preface (the client direction starts
    /// by checking it); else it was recognised mid-way and both decoders start without a table.
    init(conn: ConnectionState, preface: Bool, firstSequence: Int) {
        self.conn = conn
        midstream = !preface
        nextSequence = firstSequence
        let maxHeader = conn.analyzer.configuration.maxHeaderBytes
        if preface {
            let d = HTTP2Direction(state: .preface(matched: 0), maxFrameSize: HTTP2BoundaryScan.defaultMaxFrameSize,
                                   hpack: HTTP2Direction.decoder(maxHeaderBytes: maxHeader))
            // Each direction its own decoder (a class: a copied direction would share it).
            let s = HTTP2Direction(state: .header, maxFrameSize: HTTP2BoundaryScan.defaultMaxFrameSize,
                                   hpack: HTTP2Direction.decoder(maxHeaderBytes: maxHeader))
            dirs = .allocate(capacity: 2)
            dirs.initialize(to: d)
            (dirs + 1).initialize(to: s)
        } else {
            var pair: [HTTP2Direction] = []
            for _ in 0..<2 {
                var d = HTTP2Direction(state: .header, maxFrameSize: (1 << 24) - 1,
                                       hpack: HTTP2Direction.decoder(maxHeaderBytes: maxHeader, tableSize: Self.pickupTableSize))
                d.tableLost = "the connection was picked up mid-way (HPACK dynamic table not captured)"
                pair.append(d)
            }
            dirs = .allocate(capacity: 2)
            dirs.initialize(to: pair[0])
            (dirs + 1).initialize(to: pair[1])
        }
        conn.analyzer.counters.http2.connections += 1
        if preface { conn.analyzer.counters.http2.prefaceConnections += 1 } else { conn.analyzer.counters.http2.midstreamConnections += 1 }
    }

    deinit {
        dirs.deinitialize(count: 2)
        dirs.deallocate()
    }

    /// Stream 1 of an `Upgrade: h2c` connection answers the HTTP/1.1 request that asked for
    /// it (sent whole before the switch: its side of the stream is closed).
    func adoptUpgradedRequest(_ q: HTTPRequest) {
        let s = HTTP2Stream(id: 1, sequence: nextSequence, position: 0)
        nextSequence += 1
        streamCount += 1
        analyzer.counters.http2.streams += 1
        s.upgradedRequest = q
        s.upgradedRequestComplete = q.complete
        s.request.state = .decoded
        s.request.ended = true
        streams[1] = s
    }

    // MARK: Bytes

    /// `d`: 0 client → server, 1 server → client.
    /// How long (capture time) a stream the client reset waits for the server's frames in flight.
    static let resetGrace: Int64 = 20_000_000
    /// Streams reset by the client, waiting out their grace (`resetGraceEnd`).
    @exclusivity(unchecked) var pendingResets: [HTTP2Stream] = []

    /// Emits the reset streams whose grace ended before `now` (or that finished meanwhile).
    private func settleResets(now: Int64) {
        pendingResets.removeAll { s in
            guard streams[s.id] === s else { return true }  // emitted since (the server ended its side)
            guard let end = s.resetGraceEnd, end < now else { return false }
            s.resetGraceEnd = nil
            emit(s)
            return true
        }
    }

    func consume(_ d: Int, _ buf: UnsafeRawBufferPointer, first: Int64, last: Int64) {
        if !pendingResets.isEmpty { settleResets(now: first) }
        let n = buf.count
        var i = 0
        while i < n {
            switch dirs[d].state {
            case .preface(let matched):
                let take = min(http2Preface.count - matched, n - i)
                for k in 0..<take where buf[i + k] != http2Preface[matched + k] {
                    // Not the preface after all (the detection saw its first bytes): lose the boundary.
                    analyzer.counters.http2[.badFrameForType] += 1
                    i += k
                    enterResync(d, reason: nil)
                    break
                }
                if case .resync = dirs[d].state { continue }
                i += take
                dirs[d].state = matched + take == http2Preface.count ? .header : .preface(matched: matched + take)
            case .header:
                if dirs[d].headerBytes.isEmpty && n - i >= HTTP2FrameHeader.size {
                    let h = HTTP2FrameHeader(buf, at: i)
                    dirs[d].frameFirst = i == 0 ? first : last
                    i += HTTP2FrameHeader.size
                    begin(d, h, last: last)
                } else {
                    if dirs[d].headerBytes.isEmpty { dirs[d].frameFirst = i == 0 ? first : last }
                    let take = min(HTTP2FrameHeader.size - dirs[d].headerBytes.count, n - i)
                    dirs[d].headerBytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[i..<(i + take)]))
                    i += take
                    if dirs[d].headerBytes.count == HTTP2FrameHeader.size {
                        let h = dirs[d].headerBytes.withUnsafeBytes { HTTP2FrameHeader($0, at: 0) }
                        dirs[d].headerBytes.removeAll(keepingCapacity: true)
                        begin(d, h, last: last)
                    }
                }
            case .payload:
                let length = dirs[d].frame.length
                if dirs[d].payload.isEmpty && n - i >= length {
                    // The whole payload is in this segment: read in place, no copy.
                    dirs[d].state = .header
                    let h = dirs[d].frame
                    frameEnded(d, h, UnsafeRawBufferPointer(rebasing: buf[i..<(i + length)]), last: last)
                    i += length
                    continue
                }
                let take = min(length - dirs[d].payload.count, n - i)
                dirs[d].payload.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[i..<(i + take)]))
                i += take
                if dirs[d].payload.count == dirs[d].frame.length {
                    dirs[d].state = .header
                    let p = dirs[d].payload
                    dirs[d].payload.removeAll(keepingCapacity: true)
                    p.withUnsafeBytes { frameEnded(d, dirs[d].frame, $0, last: last) }
                }
            case .data(var dataLeft, var padLeft, let needPadLength):
                if needPadLength {
                    let pad = Int(buf[i])
                    i += 1
                    dataLeft -= 1
                    if pad > dataLeft {
                        analyzer.counters.http2[.badPadding] += 1
                        dirs[d].state = .skip(dataLeft)
                        if dataLeft == 0 { dataFrameEnded(d, last: last) }
                        continue
                    }
                    dataLeft -= pad
                    padLeft = pad
                    if let s = lookup(dirs[d].frame.streamID) { s.padding += Int64(pad + 1) }
                } else if dataLeft > 0 {
                    let take = min(dataLeft, n - i)
                    dataBytes(d, UnsafeRawBufferPointer(rebasing: buf[i..<(i + take)]))
                    i += take
                    dataLeft -= take
                } else {
                    let take = min(padLeft, n - i)
                    i += take
                    padLeft -= take
                }
                if dataLeft == 0 && padLeft == 0 {
                    dirs[d].state = .header
                    dataFrameEnded(d, last: last)
                } else {
                    dirs[d].state = .data(dataLeft: dataLeft, padLeft: padLeft, needPadLength: false)
                }
            case .skip(let left):
                let take = min(left, n - i)
                i += take
                dirs[d].state = left == take ? .header : .skip(left - take)
            case .resync:
                dirs[d].resyncBuffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[i..<n]))
                i = n
                tryResync(d, first: first, last: last)
            }
        }
    }

    /// A frame header was read.
    private func begin(_ d: Int, _ h: HTTP2FrameHeader, last: Int64) {
        dirs[d].frame = h
        guard h.length <= dirs[d].maxFrameSize else {
            analyzer.counters.http2[.frameTooLarge] += 1
            enterResync(d, reason: nil)
            return
        }
        guard let type = h.known else {
            analyzer.counters.http2.unknownTypeFrames += 1
            dirs[d].state = h.length == 0 ? .header : .skip(h.length)
            return
        }
        analyzer.counters.http2[type] += 1
        if let block = dirs[d].openBlock, type != .continuation || h.streamID != block.stream {
            // RFC 9113 §6.10: nothing may come between a header block's frames.
            analyzer.counters.http2[.badContinuation] += 1
            dirs[d].openBlock = nil
            blockLost(d, stream: block.stream, promised: block.promised,
                      why: "its header block was interrupted by another frame")
        }
        guard h.obeysTypeRules else {
            analyzer.counters.http2[.badFrameForType] += 1
            dirs[d].state = h.length == 0 ? .header : .skip(h.length)
            return
        }
        switch type {
        case .data:
            dirs[d].state = .data(dataLeft: h.length, padLeft: 0, needPadLength: h.flags & HTTP2Flags.padded != 0)
            if h.flags & HTTP2Flags.padded != 0 && h.length == 0 {
                analyzer.counters.http2[.badPadding] += 1
                dirs[d].state = .header
            }
            _ = stream(h.streamID, from: d, opening: false, at: dirs[d].frameFirst)
            if h.length == 0 {
                dirs[d].state = .header
                dataFrameEnded(d, last: last)
            }
        case .headers, .continuation, .pushPromise:
            let gathered = dirs[d].openBlock == nil ? 0 : blocks[d].count
            if gathered + h.length > configuration.maxHeaderBytes {
                analyzer.counters.http2[.headerBlockTooLarge] += 1
                analyzer.counters.headerLimitHits += 1
                let block = dirs[d].openBlock
                dirs[d].openBlock = nil
                let sid = block?.stream ?? h.streamID
                if let s = streams[sid] ?? (type == .headers ? stream(sid, from: d, opening: d == 0, at: dirs[d].frameFirst) : nil) {
                    s.headerLimit = true
                    if h.flags & HTTP2Flags.endStream != 0 && type == .headers { s[side: d].ended = true }
                }
                blockLost(d, stream: sid, promised: block?.promised, why: "a header block was larger than the cap")
                dirs[d].state = h.length == 0 ? .header : .skip(h.length)
                return
            }
            fallthrough
        default:
            if h.length == 0 {
                dirs[d].state = .header
                frameEnded(d, h, UnsafeRawBufferPointer(start: nil, count: 0), last: last)
            } else {
                dirs[d].state = .payload
                dirs[d].payload.reserveCapacity(h.length)
            }
        }
    }

    // MARK: Frames

    /// The payload's bounds without its padding (HEADERS, PUSH_PROMISE); nil, counted and the
    /// header block given up, when the pad length runs past the payload.
    private func unpadded(_ d: Int, _ h: HTTP2FrameHeader, _ p: UnsafeRawBufferPointer, frame: String) -> (Int, Int)? {
        guard h.flags & HTTP2Flags.padded != 0 else { return (0, p.count) }
        guard p.count >= 1, Int(p[0]) <= p.count - 1 else {
            analyzer.counters.http2[.badPadding] += 1
            blockLost(d, stream: h.streamID, promised: nil, why: "a \(frame) frame had bad padding")
            return nil
        }
        return (1, p.count - Int(p[0]))
    }

    private func frameEnded(_ d: Int, _ h: HTTP2FrameHeader, _ p: UnsafeRawBufferPointer, last: Int64) {
        switch h.known! {
        case .headers:
            guard let bounds = unpadded(d, h, p, frame: "HEADERS") else { return }
            var lo = bounds.0
            let hi = bounds.1
            if h.flags & HTTP2Flags.priority != 0 {
                guard hi - lo >= 5 else {
                    analyzer.counters.http2[.badFrameForType] += 1
                    blockLost(d, stream: h.streamID, promised: nil, why: "a HEADERS frame was too short for its priority")
                    return
                }
                lo += 5
            }
            let s = stream(h.streamID, from: d, opening: d == 0, at: dirs[d].frameFirst)
            if let s, h.flags & HTTP2Flags.padded != 0 { s.padding += Int64(p[0]) + 1 }
            dirs[d].openBlock = (h.streamID, h.flags & HTTP2Flags.endStream != 0, nil, dirs[d].frameFirst)
            blockFragment(d, h, UnsafeRawBufferPointer(rebasing: p[lo..<hi]), last: last)
        case .continuation:
            guard dirs[d].openBlock != nil else {
                analyzer.counters.http2[.badContinuation] += 1
                return
            }
            blocks[d].append(contentsOf: p)
            if h.flags & HTTP2Flags.endHeaders != 0 {
                let gathered = blocks[d]
                gathered.withUnsafeBytes { blockEnded(d, $0, last: last) }
            }
        case .pushPromise:
            guard let (lo, hi) = unpadded(d, h, p, frame: "PUSH_PROMISE") else { return }
            guard hi - lo >= 4 else {
                analyzer.counters.http2[.badFrameForType] += 1
                return
            }
            let promised = (UInt32(p[lo]) << 24 | UInt32(p[lo + 1]) << 16 | UInt32(p[lo + 2]) << 8 | UInt32(p[lo + 3])) & 0x7fff_ffff
            dirs[d].openBlock = (h.streamID, false, promised, dirs[d].frameFirst)
            blockFragment(d, h, UnsafeRawBufferPointer(rebasing: p[(lo + 4)..<hi]), last: last)
        case .rstStream:
            let code = UInt32(p[0]) << 24 | UInt32(p[1]) << 16 | UInt32(p[2]) << 8 | UInt32(p[3])
            guard let s = stream(h.streamID, from: d, opening: false, at: dirs[d].frameFirst) else { return }
            analyzer.counters.http2.resets += 1
            // The first reset is the stream's (the server answers a client's with its own).
            if s.reset == nil { s.reset = HTTP2Reset(code: code, byClient: d == 0, at: last) }
            if s[side: d].lastTimestamp == nil { s[side: d].lastTimestamp = last }
            s.resetGraceEnd = nil
            if d == 0, !s.response.ended {
                // The client gave up while the server may already have answered: what the server
                // sent before the reset reached it (trailers with grpc-status, a body) is still
                // on its way. The stream waits for it, a short while.
                s[side: 0].ended = true
                s.resetGraceEnd = last &+ Self.resetGrace
                pendingResets.append(s)
                return
            }
            emit(s)
        case .settings:
            guard h.flags & HTTP2Flags.ack == 0 else { return }
            var k = 0
            while k + 6 <= p.count {
                let id = UInt16(p[k]) << 8 | UInt16(p[k + 1])
                let v = Int(UInt32(p[k + 2]) << 24 | UInt32(p[k + 3]) << 16 | UInt32(p[k + 4]) << 8 | UInt32(p[k + 5]))
                k += 6
                // The sender is the decoder of the other direction's blocks and the receiver
                // of its frames.
                switch id {
                case 0x1: dirs[1 - d].hpack.raiseTableLimit(to: v)
                case 0x5 where v >= HTTP2BoundaryScan.defaultMaxFrameSize && v < 1 << 24:
                    if !midstream { dirs[1 - d].maxFrameSize = v }
                default: break
                }
            }
        case .goAway:
            analyzer.counters.http2.goAways += 1
        case .data, .priority, .ping, .windowUpdate:
            break
        }
    }

    private func dataBytes(_ d: Int, _ p: UnsafeRawBufferPointer) {
        guard let s = lookup(dirs[d].frame.streamID) else { return }
        s[side: d].bodyLength += Int64(p.count)
        // Read through the side itself: `s[side: d].x` as a value copies the whole side.
        let keep = configuration.bodyPrefixBytes - (d == 0 ? s.request.bodyPrefix.count : s.response.bodyPrefix.count)
        if keep > 0 { s[side: d].bodyPrefix.append(contentsOf: p.prefix(keep)) }
        if s.isGRPC { s[side: d].grpc.feed(p) }
    }

    private func dataFrameEnded(_ d: Int, last: Int64) {
        let h = dirs[d].frame
        guard let s = lookup(h.streamID) else { return }
        s[side: d].dataFrames += 1
        s[side: d].lastTimestamp = last
        if h.flags & HTTP2Flags.endStream != 0 { sideEnded(s, d) }
    }

    // MARK: Header blocks

    /// A header block's first fragment (HEADERS, PUSH_PROMISE): decoded from the frame when
    /// the block ends there, else gathered in the direction's buffer (its storage reused).
    private func blockFragment(_ d: Int, _ h: HTTP2FrameHeader, _ fragment: UnsafeRawBufferPointer, last: Int64) {
        if h.flags & HTTP2Flags.endHeaders != 0 {
            blockEnded(d, fragment, last: last)
        } else {
            blocks[d].removeAll(keepingCapacity: true)
            blocks[d].append(contentsOf: fragment)
        }
    }

    /// The open block is complete (its bytes: `bytes`): decode it and give it to its stream.
    private func blockEnded(_ d: Int, _ bytes: UnsafeRawBufferPointer, last: Int64) {
        guard let block = dirs[d].openBlock else { return }
        dirs[d].openBlock = nil
        let fields = dirs[d].hpack.decode(bytes, scratch: analyzer.hpackScratch)
        if fields == nil && dirs[d].tableLost == nil {
            analyzer.counters.http2[.badHeaderBlock] += 1
        }
        guard var fields else {
            blockLost(d, stream: block.stream, promised: block.promised,
                      why: dirs[d].tableLost ?? "a header block could not be decoded", first: block.first, last: last,
                      endStream: block.endStream)
            return
        }
        // Fields the decoder kept (a repeated block) are the memos' to remember.
        let shared = fields.storageIsShared()
        if let promised = block.promised {
            guard d == 1, let s = stream(promised, from: d, opening: true, at: block.first) else { return }
            s.pushed = true
            requestFields(s, fields, first: block.first, last: last)
            s.request.ended = true
            return
        }
        guard let s = stream(block.stream, from: d, opening: d == 0, at: block.first) else { return }
        if d == 0 {
            let isRequest = s.request.state == .none || (s.request.state == .notCaptured && fields.firstIndex(exactly: ":method") != nil)
            if isRequest {
                requestFields(s, fields, first: block.first, last: last)
            } else {
                analyzer.counters.http2.trailers += 1
                s.request.trailers = fields
            }
        } else {
            let status = status(of: fields, shared: shared)
            if let status, status >= 100 && status < 200 && s.response.fields == nil {
                analyzer.counters.http2.interimResponses += 1
                if status == 100 { analyzer.counters.continueResponses += 1 } else { analyzer.counters.otherInterimResponses += 1 }
                s.interim.append(HTTPInterimResponse(status: status, reason: "", headers: fields,
                                                     firstTimestamp: block.first, lastTimestamp: last))
            } else if s.response.fields == nil && s.response.state != .unrecoverable && status != nil {
                analyzer.counters.responses += 1
                responseCount += 1
                s.response.fields = fields
                s.response.status = status
                s.response.state = .decoded
                s.response.firstTimestamp = block.first
                s.response.lastTimestamp = last
                if s.isGRPC { grpcStatus(s, fields) }
            } else {
                analyzer.counters.http2.trailers += 1
                s.response.trailers = fields
                if s.isGRPC { grpcStatus(s, fields) }
            }
        }
        if block.endStream { sideEnded(s, d, at: last) }
    }

    private func requestFields(_ s: HTTP2Stream, _ fields: HTTPHeaders, first: Int64, last: Int64) {
        analyzer.counters.requests += 1
        requestCount += 1
        s.request.fields = fields
        s.request.state = .decoded
        s.request.firstTimestamp = first
        s.request.lastTimestamp = last
        let grpc: Bool
        if let key = fields.storageKey, let i = requestHeadKeys.firstIndex(of: key) {
            grpc = requestHeads[i].grpc
        } else {
            grpc = Self.isGRPC(fields)
        }
        if grpc {
            s.isGRPC = true
            analyzer.counters.http2.grpcStreams += 1
        }
    }

    /// A request whose content-type is application/grpc….
    private static func isGRPC(_ fields: HTTPHeaders) -> Bool {
        fields.valueHasPrefix(exactly: "content-type", "application/grpc")
    }

    /// grpc-status and grpc-message, from the trailers (or a trailers-only response).
    private func grpcStatus(_ s: HTTP2Stream, _ fields: HTTPHeaders) {
        for f in fields {
            if f.name == "grpc-status", let v = Int(f.value) { s.grpcStatusCode = v }
            if f.name == "grpc-message" { s.grpcMessage = f.value }
        }
    }

    /// A header block that will not be decoded: its stream says so, and the direction's table
    /// no longer follows the sender's (its insertions are lost), so it starts again empty.
    private func blockLost(_ d: Int, stream sid: UInt32, promised: UInt32?, why: String,
                           first: Int64? = nil, last: Int64? = nil, endStream: Bool = false) {
        analyzer.counters.http2.headersUnrecoverable += 1
        let note = "headers unrecoverable: \(why)"
        if let promised {
            if d == 1, let s = stream(promised, from: d, opening: true, at: first ?? 0) {
                s.pushed = true
                s.request.state = .unrecoverable
                s.request.ended = true
                s.noteOnce(note)
            }
        } else if let s = streams[sid] ?? stream(sid, from: d, opening: d == 0, at: first ?? 0) {
            if s[side: d].state == .none || s[side: d].state == .notCaptured {
                s[side: d].state = .unrecoverable
                if s[side: d].firstTimestamp == nil { s[side: d].firstTimestamp = first }
            }
            if let last { s[side: d].lastTimestamp = last }
            s.noteOnce(note)
            if endStream { sideEnded(s, d) }
        }
        resetTable(d, because: dirs[d].tableLost ?? "an earlier header block was not decoded")
    }

    private func resetTable(_ d: Int, because why: String) {
        dirs[d].hpack = HTTP2Direction.decoder(maxHeaderBytes: configuration.maxHeaderBytes, tableSize: Self.pickupTableSize)
        dirs[d].tableLost = why
    }

    // MARK: Streams

    /// The open stream `sid`, if any (`recent` first).
    @inline(__always)
    private func lookup(_ sid: UInt32) -> HTTP2Stream? {
        if let r = recent, r.id == sid { return r }
        guard let s = streams[sid] else { return nil }
        recent = s
        return s
    }

    /// The stream `sid`, made when new: `opening` when its first frame is the client's HEADERS
    /// (else its request was not captured). Nil for stream 0 and for streams already emitted.
    private func stream(_ sid: UInt32, from d: Int, opening: Bool, at first: Int64) -> HTTP2Stream? {
        if let s = lookup(sid) { return s }
        guard sid != 0, !closed.contains(sid) else { return nil }
        if streams.count >= configuration.maxOutstandingRequests,
           let oldest = streams.values.min(by: { $0.sequence < $1.sequence }) {
            analyzer.counters.http2.streamCapHits += 1
            emit(oldest)
        }
        var open = 0
        for s in streams.values where !s.response.ended && s.resetGraceEnd == nil { open += 1 }
        let s = HTTP2Stream(id: sid, sequence: nextSequence, position: open)
        nextSequence += 1
        streamCount += 1
        analyzer.counters.http2.streams += 1
        if !opening {
            s.request.state = .notCaptured
            s.noteOnce(midstream ? "request headers not captured: the stream began before the capture picked the connection up"
                                 : "request headers not captured: the stream's HEADERS fell in a capture gap")
            analyzer.counters.http2.streamsWithoutHeaders += 1
        }
        streams[sid] = s
        recent = s
        return s
    }

    private func sideEnded(_ s: HTTP2Stream, _ d: Int, at last: Int64? = nil) {
        s[side: d].ended = true
        if let last { s[side: d].lastTimestamp = last }
        if s.finished { emit(s) }
    }

    /// Emits the stream's exchange and forgets the stream.
    private func emit(_ s: HTTP2Stream) {
        guard streams.removeValue(forKey: s.id) != nil else { return }
        if recent === s { recent = nil }
        closed.insert(s.id)
        if closedRing.count < Self.closedMemory {
            closedRing.append(s.id)
        } else {
            closed.remove(closedRing[closedNext])
            closedRing[closedNext] = s.id
            closedNext = (closedNext + 1) % Self.closedMemory
        }
        let c = analyzer
        var flags: HTTPExchangeFlags = []
        if midstream { flags.insert(.midstream) }
        if s.headerLimit { flags.insert(.headerLimitExceeded) }
        let requestComplete = s.upgradedRequestComplete ?? (s.request.fields != nil ? s.request.ended && !s.request.gap : nil)
        let responseComplete: Bool? = s.response.fields != nil ? s.response.ended && !s.response.gap : nil
        if s.request.gap { flags.insert(.requestAfterGap) }
        if s.response.gap { flags.insert(.responseAfterGap) }
        if requestComplete == false { flags.insert(.requestIncomplete); c.counters.incompleteRequests += 1 }
        if responseComplete == false, s.reset == nil { flags.insert(.responseIncomplete); c.counters.incompleteResponses += 1 }
        if requestComplete == nil {
            flags.insert(.responseWithoutRequest)
            if responseComplete != nil { c.counters.responsesWithoutRequest += 1 }
        } else if responseComplete == nil {
            c.counters.unansweredRequests += 1
            if s.response.gap { flags.insert(.lostInGap); c.counters.lostInGap += 1 }
        } else {
            c.counters.pairedExchanges += 1
        }
        var grpc: GRPCCall?
        if s.isGRPC {
            let parts = s.request.value(":path").flatMap(GRPCCall.split(path:))
            grpc = GRPCCall(service: parts?.service, method: parts?.method, status: s.grpcStatusCode,
                            message: s.grpcMessage, requestMessages: s.request.grpc.messages,
                            responseMessages: s.response.grpc.messages,
                            framingLost: s.request.grpc.lost || s.response.grpc.lost)
            c.counters.http2.grpcMessages += s.request.grpc.messages + s.response.grpc.messages
        }
        c.counters.exchanges += 1
        exchangeCount += 1
        c.onExchange(exchange(s, connection: conn.connectionBox, flags: flags, grpc: grpc))
    }

    /// The stream's exchange. The request, the response and the exchange are each built once,
    /// in one expression, and handed on as they are made: written through `x.request!` after
    /// the exchange was made, or bound to locals and passed on, the optimizer copied the
    /// messages in and out of their optionals and the exchange whole (13 moves and 5 optional
    /// destroys a stream: callgrind, h2c benchmark capture). One copy of the exchange is still
    /// made and destroyed at once (`HTTPExchange`'s outlined copy) in every formulation tried;
    /// with the messages' fields in shared storage it is a handful of references, not 400 bytes.
    @inline(__always)
    private func exchange(_ s: HTTP2Stream, connection: ConnectionBox, flags: HTTPExchangeFlags,
                          grpc: GRPCCall?) -> HTTPExchange {
        HTTPExchange(connection: connection, sequence: s.sequence, request: request(of: s),
                     response: response(of: s), flags: flags, pipelinePosition: s.position,
                     http2: HTTP2StreamInfo(streamID: s.id, requestHeaders: s.request.state,
                                            responseHeaders: s.response.state, headersNote: s.note,
                                            reset: s.reset, requestDataFrames: s.request.dataFrames,
                                            responseDataFrames: s.response.dataFrames,
                                            paddingBytes: s.padding, pushed: s.pushed, grpc: grpc))
    }

    /// The stream's request: the HTTP/1.1 request of an `Upgrade: h2c`, else built from its
    /// decoded fields (nil when none were decoded).
    @inline(__always)
    private func request(of s: HTTP2Stream) -> HTTPRequest? {
        if let u = s.upgradedRequest { return u }
        // Taken from the stream, which is dropped once emitted: moved, not retained and released.
        guard var fields = s.request.fields.take() else { return nil }
        // Asked before the call: asked in its arguments, `fields` was copied first.
        let shared = fields.storageIsShared()
        let (method, target, host) = requestHead(fields, shared: shared, grpc: s.isGRPC)
        return HTTPRequest(method: method, target: target, version: .http2, headers: fields, host: host,
                           trailers: s.request.trailers ?? HTTPHeaders(), bodyLength: s.request.bodyLength,
                           bodyPrefix: s.request.bodyPrefix, complete: s.request.ended && !s.request.gap,
                           firstTimestamp: s.request.firstTimestamp ?? 0,
                           lastTimestamp: s.request.lastTimestamp ?? s.request.firstTimestamp ?? 0)
    }

    /// A request head's method, target and host (the host as `HTTPRequest` finds it: a Host
    /// field, else :authority, any case), from `requestHeads` when the fields are shared; kept
    /// there when they are (`shared`: the decoder kept them, so other streams may carry them),
    /// with `grpc`, what `requestFields` found of them.
    private func requestHead(_ fields: HTTPHeaders, shared: Bool, grpc: Bool) -> (String, String, String?) {
        if let key = fields.storageKey, let i = requestHeadKeys.firstIndex(of: key) {
            return (requestHeads[i].method, requestHeads[i].target, requestHeads[i].host)
        }
        // One pass over the fields for the three. (Written out: through `Optional.map` closures
        // and `??` chains the optimizer copied and destroyed the optionals twice a request.)
        let f = fields.requestFacts()
        var method = ""
        if let i = f.method { method = fields.value(at: i) }
        var authority: String?
        if let i = f.authorityAnyCase { authority = fields.value(at: i) }
        var target = ""
        if let i = f.path {
            target = fields.value(at: i)
        } else if method == "CONNECT", let i = f.authority {
            target = i == f.authorityAnyCase ? authority! : fields.value(at: i)
        }
        let host: String?
        if let i = f.host {
            host = fields.value(at: i)
        } else if authority != nil {
            host = authority
        } else {
            host = HTTPRequest.host(method: method, target: target, headers: HTTPHeaders())
        }
        if shared { remember(fields, method: method, target: target, host: host, grpc: grpc) }
        return (method, target, host)
    }

    /// Keeps a shared request head's facts in `requestHeads` (out of line: the path of a head
    /// decoded once stays as short as it was without the memo).
    @inline(never)
    private func remember(_ fields: HTTPHeaders, method: String, target: String, host: String?, grpc: Bool) {
        guard let key = fields.storageKey else { return }
        // The entry holds the fields, so the storage (and its key) stays theirs.
        let m = (fields: fields, method: method, target: target, host: host, grpc: grpc)
        if requestHeads.count < Self.requestHeadMemory {
            requestHeads.append(m)
            requestHeadKeys.append(key)
        } else {
            requestHeads[requestHeadsNext] = m
            requestHeadKeys[requestHeadsNext] = key
            requestHeadsNext = (requestHeadsNext + 1) % Self.requestHeadMemory
        }
    }

    /// A response head's :status (nil when missing or not a number), from `responseHead` when
    /// the fields are shared (and kept there when they are).
    private func status(of fields: HTTPHeaders, shared: Bool) -> Int? {
        if let key = fields.storageKey, key == responseHeadKey { return responseHead!.status }
        let status = fields.intValue(exactly: ":status")
        if shared, let key = fields.storageKey {
            responseHead = (fields, status)
            responseHeadKey = key
        }
        return status
    }

    /// The stream's final response (nil when its head was not decoded).
    @inline(__always)
    private func response(of s: HTTP2Stream) -> HTTPResponse? {
        guard let fields = s.response.fields.take() else { return nil }
        return HTTPResponse(status: s.response.status ?? 0, version: .http2, headers: fields,
                            trailers: s.response.trailers ?? HTTPHeaders(), bodyLength: s.response.bodyLength,
                            bodyPrefix: s.response.bodyPrefix, complete: s.response.ended && !s.response.gap,
                            interim: s.interim, firstTimestamp: s.response.firstTimestamp ?? 0,
                            lastTimestamp: s.response.lastTimestamp ?? s.response.firstTimestamp ?? 0)
    }

    // MARK: Gaps and resynchronisation

    /// `length` bytes of direction `d` were lost.
    func gap(_ d: Int, length: Int) {
        dirs[d].gaps += 1
        for s in streams.values where !s[side: d].ended {
            s[side: d].gap = true
            s[side: d].grpc.lost = true
        }
        if let block = dirs[d].openBlock {
            dirs[d].openBlock = nil
            blockLost(d, stream: block.stream, promised: block.promised, why: "a capture gap cut its header block")
        }
        dirs[d].headerBytes.removeAll()
        dirs[d].payload.removeAll()
        resetTable(d, because: "a capture gap (\(length) bytes) may have held header blocks, so the HPACK dynamic table was lost")
        enterResync(d, reason: "gap")
    }

    /// The frame boundary is lost (a gap, a length that cannot be): bytes are gathered until a
    /// chain of frames can be trusted. Whatever is skipped may hold header blocks, so the
    /// direction's HPACK table is dropped (a gap drops it itself, with its own reason).
    private func enterResync(_ d: Int, reason: String?) {
        dirs[d].state = .resync
        dirs[d].resyncBuffer.removeAll(keepingCapacity: true)
        if let block = dirs[d].openBlock {
            dirs[d].openBlock = nil
            blockLost(d, stream: block.stream, promised: block.promised, why: "the frame boundary was lost inside its header block")
        }
        if reason == nil {
            resetTable(d, because: "bytes were skipped while the frame boundary was lost (they may have held header blocks)")
        }
    }

    /// Scans the gathered bytes for a boundary: bytes before the first offset still in
    /// question are skipped (so the buffer holds at most one frame's worth and a header).
    private func tryResync(_ d: Int, first: Int64, last: Int64) {
        let scan = dirs[d].resyncBuffer.withUnsafeBytes {
            HTTP2BoundaryScan.firstBoundary(in: $0, maxFrameSize: midstream ? HTTP2BoundaryScan.defaultMaxFrameSize : dirs[d].maxFrameSize)
        }
        switch scan {
        case .found(let o):
            analyzer.counters.http2.resyncs += 1
            analyzer.counters.http2.resyncSkippedBytes += Int64(o)
            let rest = Array(dirs[d].resyncBuffer[o...])
            dirs[d].resyncBuffer.removeAll()
            dirs[d].state = .header
            rest.withUnsafeBytes { consume(d, $0, first: first, last: last) }
        case .needMore(let o):
            if o > 0 {
                analyzer.counters.http2.resyncSkippedBytes += Int64(o)
                dirs[d].resyncBuffer.removeFirst(o)
            }
        }
    }

    // MARK: Close

    func close() {
        pendingResets.removeAll()
        for s in streams.values.sorted(by: { $0.sequence < $1.sequence }) {
            s.resetGraceEnd = nil
            emit(s)
        }
        analyzer.counters.http2.resyncSkippedBytes += Int64(dirs[0].resyncBuffer.count + dirs[1].resyncBuffer.count)
    }
}
