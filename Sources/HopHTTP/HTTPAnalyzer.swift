import HopFlows

/// Parses HTTP/1.x on every connection of a stream of `StreamEvent`s and emits one
/// `HTTPExchange` per request (paired with its response when one was seen), per response whose
/// request was never seen, as soon as the pair is complete, or at close/`finish()`.
///
/// Single-threaded: call `handle` from one thread (the reassembler's).
public final class HTTPAnalyzer: StreamEventConsumer {
    public let configuration: HTTPConfiguration
    /// Everything counted so far.
    @exclusivity(unchecked) public internal(set) var counters = HTTPCounters()
    /// Called with each connection's summary when it closes (or at `finish()`): whether it was
    /// HTTP, TLS, not HTTP, a tunnel.
    public var onConnectionSummary: ((HTTPConnectionSummary) -> Void)?

    let onExchange: (HTTPExchange) -> Void
    /// Where HTTP/2 header blocks are decoded before being packed (one for every connection:
    /// the analyzer runs on one thread).
    let hpackScratch = HPACKScratch()
    @exclusivity(unchecked) private var states: [Int: ConnectionState] = [:]
    /// A direct-mapped cache in front of `states` (connection ids are small consecutive numbers,
    /// so the open connections rarely collide): no hashing per event.
    @exclusivity(unchecked) private var cacheIDs = [Int](repeating: Int.min, count: 256)
    @exclusivity(unchecked) private var cacheStates = [ConnectionState?](repeating: nil, count: 256)

    public init(configuration: HTTPConfiguration = .init(), onExchange: @escaping (HTTPExchange) -> Void) {
        self.configuration = configuration
        self.onExchange = onExchange
    }

    /// Connections currently tracked.
    public var openConnections: Int { states.count }

    public func handle(_ event: StreamEvent) {
        switch event {
        case .opened(let c):
            if let old = states[c.id.value] {
                old.adopt(c)
                return
            }
            counters.connections += 1
            let st = ConnectionState(analyzer: self, connection: c)
            states[c.id.value] = st
            let k = c.id.value & 255
            cacheIDs[k] = c.id.value
            cacheStates[k] = st
        case .data(let id, let dir, let bytes, let first, let last):
            guard let st = state(id) else {
                counters.eventsForUnknownConnections += 1
                return
            }
            if !tlsAwaiting.isEmpty && last > lastTLSSweep &+ 10_000_000 { settleTLS(now: last) }
            if let h2 = st.http2 {
                st.hadData = true
                h2.consume(dir == .clientToServer ? 0 : 1, bytes, first: first, last: last)
                return
            }
            if let t = st.tls {
                st.tlsData(t, dir, bytes, first: first, last: last)
                return
            }
            if !st.firstBytesSeen {
                switch st.probeTLS(dir, bytes, first: first, last: last) {
                case .held: return
                case .tls: return
                case .notTLS(let held):
                    if let held {
                        // The bytes held while undecided, then these, down the usual path.
                        held.bytes.withUnsafeBytes { plainData(st, held.dir, $0, first: held.first, last: held.last) }
                    }
                }
            }
            plainData(st, dir, bytes, first: first, last: last)
        case .gap(let id, let dir, let length, let at):

            guard let st = state(id) else {
                counters.eventsForUnknownConnections += 1
                return
            }
            flushTLSProbe(st)
            counters.gaps += 1
            counters.gapBytes += Int64(length)
            if let h2 = st.http2 {
                h2.gap(dir == .clientToServer ? 0 : 1, length: length)
                return
            }
            if let t = st.tls {
                t.gap(dir == .clientToServer ? 0 : 1)
                return
            }
            if !st.midstream { st.settlePrefaceProbe() }
            st.settleRolesNow()
            st.parser(st.swapped ? dir.reversed : dir).gap(length: length, at: at, conn: st)
        case .closed(let c):
            guard let st = state(c.id) else {
                counters.eventsForUnknownConnections += 1
                return
            }
            flushTLSProbe(st)
            st.settleRolesNow()
            st.adopt(c)
            st.close(cleanly: Self.isClean(st.connection.closeReason))
            states[c.id.value] = nil
            let k = c.id.value & 255
            if cacheIDs[k] == c.id.value {
                cacheIDs[k] = Int.min
                cacheStates[k] = nil
            }
        }
    }

    /// The last turns of TLS connections the capture's end closed, held for `finish` to emit
    /// in time order (`closed`: the connection's summary follows its turn).
    @exclusivity(unchecked) var heldTurns: [(end: Int64, state: ConnectionState, pair: TLSTurnPair, closed: Bool)] = []
    /// TLS connections whose response turn has begun (`TLSConnection.settle`).
    @exclusivity(unchecked) private var tlsAwaiting: [ConnectionState] = []
    @exclusivity(unchecked) private var lastTLSSweep: Int64 = .min

    func awaitSettle(_ st: ConnectionState) { tlsAwaiting.append(st) }

    /// Gives out the turn pairs whose response paused for the settle time.
    private func settleTLS(now: Int64) {
        lastTLSSweep = now
        tlsAwaiting.removeAll { st in
            guard let t = st.tls, t.awaitingSettle else { return true }
            // Found to carry HTTP/2 since: nothing of it will settle.
            if t.tracker.multiplexed != nil {
                t.awaitingSettle = false
                return true
            }
            guard let p = t.settle(now: now, into: &counters) else { return false }
            t.awaitingSettle = false
            st.emitTurn(p)
            return true
        }
    }

    /// Ends every connection still open (the capture ended): emits their unanswered and
    /// incomplete exchanges, in connection order.
    public func finish() {
        // The TLS connections' last turns first, in the order their responses ended (as they
        // would have been emitted had the capture gone on), not in connection order: the
        // correlator pairs copies in the order they come, and the end of a busy capture holds
        // the last turn of every open connection at once.
        var last = heldTurns
        heldTurns = []
        for st in states.values {
            guard let t = st.tls, let p = t.finish(into: &counters) else { continue }
            t.awaitingSettle = false
            last.append((p.response?.lastTimestamp ?? p.request.lastTimestamp, st, p, false))
        }
        last.sort { ($0.end, $0.state.connection.id.value) < ($1.end, $1.state.connection.id.value) }
        for (_, st, p, closed) in last {
            st.emitTurn(p)
            if closed { st.reportTLSSummary() }
        }
        for key in states.keys.sorted() {
            guard let st = states[key] else { continue }
            flushTLSProbe(st)
            st.close(cleanly: false)
        }
        states.removeAll()
        for k in 0..<256 {
            cacheIDs[k] = Int.min
            cacheStates[k] = nil
        }
    }

    /// First bytes still held by the TLS probe when a gap or the end comes: not TLS, parsed now.
    private func flushTLSProbe(_ st: ConnectionState) {
        guard st.tlsProbe != nil, let held = st.releaseTLSProbe() else { return }
        held.bytes.withUnsafeBytes { plainData(st, held.dir, $0, first: held.first, last: held.last) }
    }

    /// Bytes of a connection that is not TLS: HTTP/2 when its preface says so, else HTTP/1.x.
    @inline(__always)
    func plainData(_ st: ConnectionState, _ dir: FlowDirection, _ bytes: UnsafeRawBufferPointer, first: Int64, last: Int64) {
        if let h2 = st.http2 {
            st.hadData = true
            h2.consume(dir == .clientToServer ? 0 : 1, bytes, first: first, last: last)
            return
        }
        if st.prefaceProbe != nil && !st.probeHTTP2(dir, bytes, first: first, last: last) {
            st.hadData = true
            return
        }
        http1Data(st, dir, bytes, first: first, last: last)
    }

    /// Bytes of a connection parsed as HTTP/1.x (roles probed first on a mid-stream one).
    @inline(__always)
    func http1Data(_ st: ConnectionState, _ dir: FlowDirection, _ bytes: UnsafeRawBufferPointer, first: Int64, last: Int64) {
        if !st.rolesSettled && !st.probeRoles(dir, bytes, first: first, last: last) { return }
        st.hadData = true
        st.parser(st.swapped ? dir.reversed : dir).consume(bytes, first: first, last: last, conn: st)
    }

    @inline(__always)
    private func state(_ id: ConnectionID) -> ConnectionState? {
        let k = id.value & 255
        if cacheIDs[k] == id.value { return cacheStates[k] }
        guard let st = states[id.value] else { return nil }
        cacheIDs[k] = id.value
        cacheStates[k] = st
        return st
    }

    /// A close after which a close-delimited body counts as complete.
    static func isClean(_ reason: CloseReason?) -> Bool {
        switch reason {
        case .fin, .reset(by: .serverToClient), .portReuse: true
        default: false
        }
    }
}

/// A request slot's bookkeeping beside its exchange.
struct SlotMeta {
    var requestDone = false
    var responseDone = false
    var interim: [HTTPInterimResponse] = []
    /// A CONNECT or Upgrade request: the client side waits for the response's decision.
    var holdsRequestSide = false
    /// Gaps seen on the response side when the request was sent.
    var responseGapsAtSend: Int
}

/// A slot's absolute position in its connection's queue (positions are never reused).
typealias SlotRef = Int

/// One request slot, in place: the exchange being built (the request, its response once seen;
/// the connection is set at emission) and its bookkeeping.
struct SlotView {
    let x: UnsafeMutablePointer<HTTPExchange>
    let m: UnsafeMutablePointer<SlotMeta>

    var request: HTTPRequest {
        _read { yield x.pointee.request! }
        nonmutating _modify { yield &x.pointee.request! }
    }
    var response: HTTPResponse? {
        _read { yield x.pointee.response }
        nonmutating _modify { yield &x.pointee.response }
    }
    var hasResponse: Bool {
        if case .some = x.pointee.response { return true }
        return false
    }
    var flags: HTTPExchangeFlags {
        get { x.pointee.flags }
        nonmutating set { x.pointee.flags = newValue }
    }
    var sequence: Int { x.pointee.sequence }
    var position: Int { x.pointee.pipelinePosition }
    var requestDone: Bool {
        get { m.pointee.requestDone }
        nonmutating set { m.pointee.requestDone = newValue }
    }
    var responseDone: Bool {
        get { m.pointee.responseDone }
        nonmutating set { m.pointee.responseDone = newValue }
    }
    var interim: [HTTPInterimResponse] {
        _read { yield m.pointee.interim }
        nonmutating _modify { yield &m.pointee.interim }
    }
    var holdsRequestSide: Bool {
        get { m.pointee.holdsRequestSide }
        nonmutating set { m.pointee.holdsRequestSide = newValue }
    }
    var responseGapsAtSend: Int { m.pointee.responseGapsAtSend }
}

/// The request queue's storage: rings of exchanges and their bookkeeping, addressed by absolute
/// position (`SlotRef`), read and written in place; no allocation per request, and an emitted
/// exchange is moved out, never copied. The owner tracks which positions are live (`head..<tail`).
struct SlotRing {
    var xs: UnsafeMutablePointer<HTTPExchange>
    var ms: UnsafeMutablePointer<SlotMeta>
    var mask: Int
    #if DEBUG
    /// Debug builds: the absolute position held by each ring index, or -1 when it is empty.
    /// Every access checks that the slot it names is initialized.
    var live: UnsafeMutablePointer<Int>
    #endif

    init(capacity: Int) {
        xs = .allocate(capacity: capacity)
        ms = .allocate(capacity: capacity)
        mask = capacity - 1
        #if DEBUG
        live = .allocate(capacity: capacity)
        live.initialize(repeating: -1, count: capacity)
        #endif
    }

    @inline(__always)
    func checkLive(_ ref: SlotRef) {
        #if DEBUG
        precondition(live[ref & mask] == ref, "SlotRing: slot \(ref) is not initialized (holds \(live[ref & mask]))")
        #endif
    }

    var capacity: Int { mask + 1 }

    subscript(ref: SlotRef) -> SlotView {
        @inline(__always) get {
            checkLive(ref)
            return SlotView(x: xs + (ref & mask), m: ms + (ref & mask))
        }
    }

    /// Starts the slot at `ref` with its request (built in place).
    @inline(__always)
    func initialize(_ ref: SlotRef, connection: ConnectionBox, sequence: Int, position: Int, responseGapsAtSend: Int,
                    method: String, target: String, version: HTTPVersion, headers: HTTPHeaders,
                    firstTimestamp: Int64, lastTimestamp: Int64) {
        #if DEBUG
        precondition(live[ref & mask] == -1, "SlotRing: slot \(ref) initialized twice")
        live[ref & mask] = ref
        #endif
        let xp = xs + (ref & mask)
        xp.initialize(to: HTTPExchange(connection: connection, sequence: sequence, request: nil, response: nil,
                                       flags: [], pipelinePosition: position))
        xp.pointee.request = HTTPRequest(method: method, target: target, version: version, headers: headers,
                                         firstTimestamp: firstTimestamp, lastTimestamp: lastTimestamp)
        (ms + (ref & mask)).initialize(to: SlotMeta(responseGapsAtSend: responseGapsAtSend))
    }

    /// Moves the exchange out of `ref`, which is left empty.
    @inline(__always)
    func take(_ ref: SlotRef) -> HTTPExchange {
        checkLive(ref)
        #if DEBUG
        live[ref & mask] = -1
        #endif
        (ms + (ref & mask)).deinitialize(count: 1)
        return (xs + (ref & mask)).move()
    }

    /// Doubles the capacity, keeping the slots at `head..<tail`.
    mutating func grow(head: SlotRef, tail: SlotRef) {
        let bigger = SlotRing(capacity: capacity * 2)
        for k in head..<tail {
            checkLive(k)
            (bigger.xs + (k & bigger.mask)).moveInitialize(from: xs + (k & mask), count: 1)
            (bigger.ms + (k & bigger.mask)).moveInitialize(from: ms + (k & mask), count: 1)
            #if DEBUG
            bigger.live[k & bigger.mask] = k
            #endif
        }
        xs.deallocate()
        ms.deallocate()
        #if DEBUG
        live.deallocate()
        #endif
        self = bigger
    }

    func free(head: SlotRef, tail: SlotRef) {
        for k in head..<tail {
            checkLive(k)
            (xs + (k & mask)).deinitialize(count: 1)
            (ms + (k & mask)).deinitialize(count: 1)
        }
        xs.deallocate()
        ms.deallocate()
        #if DEBUG
        live.deallocate()
        #endif
    }
}

@inline(__always)
func take<T>(_ v: inout T, leaving empty: T) -> T {
    var t = empty
    swap(&t, &v)
    return t
}

/// A connection's first request line that could not be parsed, kept until the response side
/// says whether the connection is HTTP.
struct MalformedRequest {
    /// The line's first bytes (at most `malformedLinePrefix`), with its LF once seen.
    var bytes: [UInt8]
    var firstTimestamp: Int64
    /// Time of the line's last byte (or of the last one seen).
    var lastTimestamp: Int64

    init(bytes: [UInt8], firstTimestamp: Int64, lastTimestamp: Int64) {
        self.bytes = Array(bytes.prefix(malformedLinePrefix))
        self.firstTimestamp = firstTimestamp
        self.lastTimestamp = lastTimestamp
    }

    var lineEnded: Bool { bytes.count >= malformedLinePrefix || bytes.contains(LF) }

    /// Takes the line's further bytes from `more`, which arrived at `last`.
    mutating func extend(_ more: UnsafeRawBufferPointer, last: Int64) {
        guard !lineEnded, !more.isEmpty else { return }
        let room = malformedLinePrefix - bytes.count
        let upTo = more.prefix(room).firstIndex(of: LF).map { $0 + 1 } ?? min(room, more.count)
        bytes.append(contentsOf: more[0..<upTo])
        lastTimestamp = last
    }
}

/// Per-connection state: both direction parsers and the request queue that pairs them.
final class ConnectionState {
    unowned(unsafe) let analyzer: HTTPAnalyzer
    /// The connection as last known (shared with the exchanges emitted since it last changed).
    @exclusivity(unchecked) var connectionBox: ConnectionBox
    var connection: Connection {
        get { connectionBox.value }
        set { connectionBox = ConnectionBox(newValue) }
    }
    let req: DirectionParser
    let resp: DirectionParser
    let midstream: Bool
    @exclusivity(unchecked) var hadData = false
    @exclusivity(unchecked) var kind: HTTPConnectionKind?
    @exclusivity(unchecked) var sawStartLine = false
    @exclusivity(unchecked) var tunnel = false
    /// HTTP/2 (HTTP2Connection.swift): the connection's parser once it is known to be HTTP/2.
    @exclusivity(unchecked) var http2: HTTP2Connection?
    /// TLS (TLSConnection.swift): the connection's record reader once its first bytes were TLS's.
    @exclusivity(unchecked) var tls: TLSConnection?
    /// Whether the connection's first payload bytes have been looked at (for TLS).
    @exclusivity(unchecked) var firstBytesSeen = false
    /// The first bytes, held while too few to tell whether they are TLS (`probeTLS`).
    @exclusivity(unchecked) var tlsProbe: TLSProbe?
    /// While the connection's first bytes may be HTTP/2's (HTTP2Detection.swift); nil once decided.
    @exclusivity(unchecked) var prefaceProbe: PrefaceProbe? = PrefaceProbe()

    /// Requests not yet emitted, oldest first: `slots[head..<tail]`.
    @exclusivity(unchecked) var slots = SlotRing(capacity: 4)
    @exclusivity(unchecked) var head: SlotRef = 0
    @exclusivity(unchecked) var tail: SlotRef = 0
    /// The first slot whose response has not started.
    @exclusivity(unchecked) var respCursor = 0
    @exclusivity(unchecked) var nextSequence = 1
    @exclusivity(unchecked) var reqSlot: SlotRef?
    @exclusivity(unchecked) var respSlot: SlotRef?
    @exclusivity(unchecked) var currentResponse: HTTPResponse?
    @exclusivity(unchecked) var currentResponseFlags: HTTPExchangeFlags = []
    /// Responses whose request has not been seen (yet): paired with a late request or emitted.
    /// Requests emitted unanswered by the queue's cap (`maxOutstandingRequests`) whose responses
    /// have not started yet: the next responses are theirs.
    @exclusivity(unchecked) var responsesOwedToDroppedRequests = 0
    @exclusivity(unchecked) var heldResponses: [(response: HTTPResponse, flags: HTTPExchangeFlags, sequence: Int)] = []
    /// A CONNECT tunnel's exchange, emitted once the client's first tunnel bytes tell whether it is TLS.
    @exclusivity(unchecked) var tunnelPending: SlotRef?
    /// Answered exchanges with pipelinePosition > 0 and no gap: the client pipelines.
    @exclusivity(unchecked) var pipeliningSeen = false
    @exclusivity(unchecked) var requestCount = 0
    @exclusivity(unchecked) var responseCount = 0
    @exclusivity(unchecked) var exchangeCount = 0

    deinit {
        slots.free(head: head, tail: tail)
    }

    init(analyzer: HTTPAnalyzer, connection: Connection) {
        self.analyzer = analyzer
        self.connectionBox = ConnectionBox(connection)
        req = DirectionParser(isRequestSide: true, config: analyzer.configuration)
        resp = DirectionParser(isRequestSide: false, config: analyzer.configuration)
        midstream = !connection.sawHandshake
        if midstream {
            rolesSettled = false
            analyzer.counters.midstreamConnections += 1
            req.enterResync(.midstream)
            resp.enterResync(.midstream)
        }
    }

    @inline(__always)
    func parser(_ dir: FlowDirection) -> DirectionParser { dir == .clientToServer ? req : resp }

    /// A mid-stream connection whose first bytes show requests flowing from the side the
    /// reassembler took for the server (its port guess was wrong): client and server swapped.
    @exclusivity(unchecked) var swapped = false

    /// Takes the reassembler's latest view of the connection, with the roles swapped when
    /// the HTTP messages showed they are the other way round.
    func adopt(_ c: Connection) {
        connection = swapped ? Self.reversed(c) : c
    }

    static func reversed(_ c: Connection) -> Connection {
        var r = c
        r.client = c.server
        r.server = c.client
        r.stats = [c.stats[1], c.stats[0]]
        if case .reset(let by)? = c.closeReason { r.closeReason = .reset(by: by.reversed) }
        return r
    }

    /// Whether the roles of the connection are known: from the start with a handshake; for a
    /// mid-stream connection once `roleProbe` has judged its first bytes.
    @exclusivity(unchecked) var rolesSettled = true
    /// The first bytes of a mid-stream connection, held until they show which side is the client.
    @exclusivity(unchecked) var roleProbe: RoleProbe?

    /// Before the first bytes of a mid-stream connection are parsed: holds them until they say
    /// whether the roles are the other way round (a status line from the "client", a request
    /// line from the "server"). Returns whether `bytes` are to be parsed now (false: held).
    func probeRoles(_ dir: FlowDirection, _ bytes: UnsafeRawBufferPointer, first: Int64, last: Int64) -> Bool {
        var probe = roleProbe ?? RoleProbe(direction: dir)
        guard dir == probe.direction else {
            // The other side spoke before a verdict: judge what is held.
            settleRolesNow()
            return true
        }
        let verdict = probe.verdict(adding: bytes)
        if verdict == .undecided {
            probe.hold(bytes, first: first, last: last)
            roleProbe = probe
            return false
        }
        settleRoles(verdict)
        return true
    }

    /// A probe still undecided (a gap, a close, the end of the capture, the other side's bytes)
    /// is judged on what it holds: too few bytes for a status line or a method keep the roles.
    func settleRolesNow() {
        guard !rolesSettled else { return }
        settleRoles(roleProbe?.verdict(adding: UnsafeRawBufferPointer(start: nil, count: 0)) ?? .asIs)
    }

    /// Ends the probe: swaps the roles when reversed, then parses the bytes it held, event by event.
    private func settleRoles(_ verdict: RoleProbe.Verdict) {
        rolesSettled = true
        if verdict == .reversed && !connection.isNATJoined {
            swapped = true
            connection = Self.reversed(connection)
            analyzer.counters.midstreamRolesSwapped += 1
        }
        guard let probe = roleProbe.take(), !probe.held.isEmpty else { return }
        hadData = true
        let side = parser(swapped ? probe.direction.reversed : probe.direction)
        for event in probe.events {
            event.bytes.withUnsafeBytes { side.consume($0, first: event.first, last: event.last, conn: self) }
        }
    }

    var mayDeclareNonHTTP: Bool { !sawStartLine && !midstream }

    /// The connection's first request line, malformed, while the response side has not yet
    /// shown whether the connection is HTTP.
    @exclusivity(unchecked) var pendingMalformedRequest: MalformedRequest?

    func startLineSeen() {
        if !sawStartLine {
            sawStartLine = true
            kind = .http
            analyzer.counters.httpConnections += 1
            if let m = pendingMalformedRequest.take() { malformedRequestKept(m) }
        }
    }

    /// The response side found a status line after a malformed first request line: the
    /// connection is HTTP, the line becomes a request (flagged malformed, with its first bytes)
    /// that the response answers, and the request side looks for the next request line.
    private func malformedRequestKept(_ m: MalformedRequest) {
        analyzer.counters[.badRequestLine] += 1
        analyzer.counters.malformedRequestsKept += 1
        analyzer.counters.requests += 1
        requestCount += 1
        if tail - head == slots.capacity { slots.grow(head: head, tail: tail) }
        let i = tail
        slots.initialize(i, connection: connectionBox, sequence: nextSequence, position: outstanding,
                         responseGapsAtSend: resp.gapsSeen, method: "", target: escapedLine(m.bytes), version: .http11,
                         headers: HTTPHeaders(), firstTimestamp: m.firstTimestamp, lastTimestamp: m.lastTimestamp)
        tail += 1
        nextSequence += 1
        slots[i].request.malformedLine = slots[i].request.target
        slots[i].flags.insert(.requestMalformed)
        slots[i].requestDone = true
        analyzer.counters.resyncSkippedBytes += req.heldBytes
        req.enterResync(.error)
    }

    func declare(_ k: HTTPConnectionKind) {
        pendingMalformedRequest = nil
        kind = k
        if k == .tls { analyzer.counters.tlsConnections += 1 } else { analyzer.counters.nonHTTPConnections += 1 }
        req.state = .ignored
        resp.state = .ignored
    }

    /// `ref` when it names a slot not yet emitted, else nil.
    @inline(__always)
    private func index(_ ref: SlotRef?) -> SlotRef? {
        guard let ref, ref >= head, ref < tail else { return nil }
        return ref
    }

    /// Requests sent and not yet fully answered.
    private var outstanding: Int {
        var n = 0
        for k in head..<tail where !slots[k].responseDone { n += 1 }
        return n
    }

    // MARK: Heads

    /// A head was parsed; its strings and fields are taken from `h`.
    func headParsed(_ p: DirectionParser, _ h: ParsedHead) -> HeadDecision {
        p === req ? requestHead(p, h) : responseHead(p, h)
    }

    private func requestHead(_ p: DirectionParser, _ h: ParsedHead) -> HeadDecision {
        analyzer.counters.requests += 1
        requestCount += 1
        if tail - head >= analyzer.configuration.maxOutstandingRequests {
            slots[head].flags.insert(.queueOverflow)
            analyzer.counters.queueOverflows += 1
            slots[head].requestDone = true
            slots[head].responseDone = true
            if respCursor == head {
                // Its response is still to come, in order: it must not be paired with a later request.
                respCursor += 1
                responsesOwedToDroppedRequests += 1
            }
            drain()
        }
        let requestStart = p.msgFirst
        let method = p.scratch.takeMethod()
        let isConnect = method == "CONNECT"
        if tail - head == slots.capacity { slots.grow(head: head, tail: tail) }
        let i = tail
        slots.initialize(i, connection: connectionBox, sequence: nextSequence, position: outstanding,
                         responseGapsAtSend: resp.gapsSeen, method: method, target: p.scratch.takeTarget(),
                         version: h.start.version, headers: p.scratch.takeHeaders(),
                         firstTimestamp: requestStart, lastTimestamp: p.msgLast)
        tail += 1
        nextSequence += 1
        if p.msgResyncedAfterGap { slots[i].flags.insert(.requestAfterGap) }
        if midstream { slots[i].flags.insert(.midstream) }
        if h.hasTransferEncoding && h.contentLength != nil {
            slots[i].flags.insert(.transferEncodingAndContentLength)
            analyzer.counters.transferEncodingAndContentLength += 1
        }
        reqSlot = i
        resolveHeldResponses(index: i, requestStart: requestStart)
        guard h.complete else { return .body(.none) }
        let framing: HTTPBodyFraming
        if isConnect {
            slots[i].holdsRequestSide = true
            framing = .none
        } else if h.hasTransferEncoding {
            guard h.chunked else { return .reject(.unsupportedTransferEncoding) }
            framing = .chunked
        } else if let e = h.error {
            return .reject(e)
        } else if let len = h.contentLength {
            framing = .contentLength(len)
        } else {
            framing = .none
        }
        if h.hasUpgrade { slots[i].holdsRequestSide = true }
        if framing == .chunked { analyzer.counters.chunkedMessages += 1 }
        slots[i].request.framing = framing
        return .body(framing)
    }

    private func resolveHeldResponses(index: SlotRef, requestStart: Int64) {
        while let (r, f, seq) = heldResponses.first {
            if r.firstTimestamp < requestStart {
                heldResponses.removeFirst()
                emitOrphan(r, f, sequence: seq)
            } else if respCursor == index {
                heldResponses.removeFirst()
                attach(r, f, to: index)
                respCursor += 1
                break
            } else {
                break
            }
        }
    }

    /// Chooses the request a response answers (its index in `slots`) and advances the cursor;
    /// nil for an orphan.
    private func pickSlot(_ p: DirectionParser) -> SlotRef? {
        var idx = respCursor
        let t = p.msgFirst
        if p.msgResyncedAfterGap {
            // Responses may have been lost in the gap. First, those known to have started in it
            // (the gap began at a message boundary): the oldest outstanding requests sent before
            // this response. Then, for a one-at-a-time client (no pipelining seen), every further
            // outstanding request followed by a later one that was sent after the last response
            // bytes before the gap, and not together with its predecessor: the client only sends
            // the next request once the previous one is answered, so that answer was in the gap.
            var lost = p.lostMessageStarts
            p.lostMessageStarts = 0
            while lost > 0, idx < tail, slots[idx].request.firstTimestamp <= t {
                markLost(idx)
                idx += 1
                lost -= 1
            }
            if !pipeliningSeen && idx < tail {
                let prev = p.gapPrevTimestamp ?? Int64.min
                var k = idx
                var j = idx + 1
                while j < tail {
                    let qStart = slots[j].request.firstTimestamp
                    let beforeEnd = slots[j - 1].request.lastTimestamp
                    guard qStart > prev, qStart > beforeEnd, qStart <= t else { break }
                    k = j
                    j += 1
                }
                while idx < k {
                    markLost(idx)
                    idx += 1
                }
            }
            respCursor = idx
        }
        guard idx < tail else { return nil }
        if slots[idx].request.firstTimestamp > t { return nil }
        respCursor = idx + 1
        return idx
    }

    private func markLost(_ i: SlotRef) {
        slots[i].flags.insert(.lostInGap)
        slots[i].responseDone = true
    }

    private func responseHead(_ p: DirectionParser, _ h: ParsedHead) -> HeadDecision {
        let status = h.start.status
        if h.complete && status >= 100 && status < 200 && status != 101 {
            if status == 100 { analyzer.counters.continueResponses += 1 } else { analyzer.counters.otherInterimResponses += 1 }
            let interim = HTTPInterimResponse(status: status, reason: p.scratch.takeReason(),
                                              headers: p.scratch.takeHeaders(),
                                              firstTimestamp: p.msgFirst, lastTimestamp: p.msgLast)
            if respCursor < tail, slots[respCursor].request.firstTimestamp <= p.msgFirst {
                slots[respCursor].interim.append(interim)
            } else {
                analyzer.counters.interimWithoutRequest += 1
            }
            return .interim
        }
        analyzer.counters.responses += 1
        responseCount += 1
        var r = HTTPResponse(status: status, reason: p.scratch.takeReason(), version: h.start.version,
                             headers: p.scratch.takeHeaders(), firstTimestamp: p.msgFirst,
                             lastTimestamp: p.msgLast)
        var flags: HTTPExchangeFlags = []
        if p.msgResyncedAfterGap { flags.insert(.responseAfterGap) }
        let slot: SlotRef?
        if responsesOwedToDroppedRequests > 0 && !p.msgResyncedAfterGap {
            // The answer to a request emitted early by the queue's cap: emitted on its own,
            // flagged, rather than paired with the next request in the queue.
            responsesOwedToDroppedRequests -= 1
            analyzer.counters.responsesToOverflowedRequests += 1
            flags.insert(.queueOverflow)
            slot = nil
        } else {
            slot = pickSlot(p)
        }
        respSlot = slot
        if let slot, !slots[slot].interim.isEmpty { r.interim = slots[slot].interim }
        if h.hasTransferEncoding && h.contentLength != nil {
            flags.insert(.transferEncodingAndContentLength)
            analyzer.counters.transferEncodingAndContentLength += 1
        }
        currentResponse = r
        currentResponseFlags = flags
        guard h.complete else { return .body(.none) }

        let method = slot.map { slots[$0].request.method }
        let success = status >= 200 && status < 300
        if status == 101 || (method == "CONNECT" && success) {
            startTunnel(slot: slot, connect: method == "CONNECT")
            return .tunnel
        }
        if let i = slot, slots[i].holdsRequestSide {
            // The server declined the CONNECT/Upgrade: the client side parses again.
            slots[i].holdsRequestSide = false
            if case .held(let held) = req.state {
                if held == 0 { req.state = .idle } else { req.enterResync(.error) }
            }
        }
        let framing: HTTPBodyFraming
        if method == "HEAD" {
            analyzer.counters.headResponses += 1
            framing = .none
        } else if status < 200 || status == 204 || status == 304 {
            framing = .none
        } else if h.hasTransferEncoding {
            framing = h.chunked ? .chunked : .untilClose
        } else if let e = h.error {
            return .reject(e)
        } else if let len = h.contentLength {
            framing = .contentLength(len)
        } else {
            framing = .untilClose
        }
        switch framing {
        case .chunked: analyzer.counters.chunkedMessages += 1
        case .untilClose: analyzer.counters.closeDelimitedResponses += 1
        default: break
        }
        currentResponse?.framing = framing
        return .body(framing)
    }

    private func startTunnel(slot: SlotRef?, connect: Bool) {
        // `Upgrade: h2c` accepted (101 with Upgrade: h2c): HTTP/2 follows, stream 1 answers
        // the request (HTTP2Detection.swift).
        let h2c = !connect && currentResponse.map { $0.status == 101 && Self.upgradesToH2C($0.headers) } == true
        if h2c, let slot {
            startUpgradedHTTP2(request: slots[slot].request)
        } else {
            tunnel = true
            analyzer.counters.tunnels += 1
        }
        guard var r = currentResponse.take() else { return }
        r.complete = true
        var flags = currentResponseFlags
        flags.insert(.tunnel)
        respSlot = nil
        req.state = .tunnel(TunnelPeek())
        if let slot {
            if !slots[slot].requestDone {
                // The body (if any) ends where the tunnel begins.
                reqSlot = nil
                slots[slot].requestDone = true
                slots[slot].request.complete = true
            }
            attach(r, flags, to: slot)
            if connect, case .tunnel(let peek) = req.state, peek.count == 0 && peek.bytes.isEmpty { tunnelPending = slot }
            drain()
        } else {
            emitOrphan(r, flags)
        }
    }

    /// The first bytes of a tunnel: a client ClientHello marks the CONNECT tunnel as TLS.
    func tunnelFirstBytes(_ bytes: [UInt8]) {
        guard tunnelPending != nil else { return }
        if bytes.count >= 3, bytes[0] == 0x16, bytes[1] == 3, bytes[2] <= 4 {
            if let i = index(tunnelPending) { slots[i].flags.insert(.tls) }
            analyzer.counters.tunnelsWithTLS += 1
        }
        tunnelPending = nil
        drain()
    }

    // MARK: Message ends

    func messageEnded(_ p: DirectionParser, _ end: MessageEnd) {
        if p === req {
            guard let ref = reqSlot else { return }
            reqSlot = nil
            if let i = index(ref) {
                slots[i].request.bodyLength = end.bodyLength
                if !end.bodyPrefix.isEmpty { slots[i].request.bodyPrefix = end.bodyPrefix }
                slots[i].request.bodyMissing = end.bodyMissing
                slots[i].request.lastTimestamp = end.lastTimestamp
                slots[i].request.complete = end.complete
                if end.trailers.count > 0 { slots[i].request.trailers = end.trailers }
                if !end.complete { slots[i].flags.insert(.requestIncomplete) }
                if end.malformed { slots[i].flags.insert(.requestMalformed) }
                if end.headerLimit { slots[i].flags.insert(.headerLimitExceeded) }
                if end.bodyMissing > 0 { slots[i].flags.insert(.requestAfterGap) }
                slots[i].requestDone = true
                if slots[i].holdsRequestSide && end.complete && !slots[i].responseDone && req.state.isIdle {
                    req.state = .held(bytes: 0)
                }
            }
            drain()
        } else {
            guard var r = currentResponse.take() else { return }
            r.bodyLength = end.bodyLength
            if !end.bodyPrefix.isEmpty { r.bodyPrefix = end.bodyPrefix }
            r.bodyMissing = end.bodyMissing
            r.lastTimestamp = end.lastTimestamp
            r.complete = end.complete
            if end.trailers.count > 0 { r.trailers = end.trailers }
            var flags = currentResponseFlags
            if !end.complete { flags.insert(.responseIncomplete) }
            if end.malformed { flags.insert(.responseMalformed) }
            if end.headerLimit { flags.insert(.headerLimitExceeded) }
            if end.bodyMissing > 0 { flags.insert(.responseAfterGap) }
            if let ref = respSlot {
                respSlot = nil
                if let i = index(ref) { attach(r, flags, to: i) }
                drain()
            } else if flags.contains(.queueOverflow) {
                emitOrphan(r, flags)
            } else if respCursor < tail, slots[respCursor].request.firstTimestamp <= r.firstTimestamp {
                // Its request arrived while the response was being read.
                let i = respCursor
                respCursor += 1
                attach(r, flags, to: i)
                drain()
            } else if heldResponses.count < analyzer.configuration.maxHeldResponses {
                heldResponses.append((r, flags, takeSequence()))
            } else {
                emitOrphan(r, flags)
            }
        }
    }

    private func attach(_ r: consuming HTTPResponse, _ flags: HTTPExchangeFlags, to i: SlotRef) {
        if r.interim.isEmpty && !slots[i].interim.isEmpty { r.interim = slots[i].interim }
        slots[i].response = consume r
        slots[i].responseDone = true
        slots[i].flags.formUnion(flags)
    }

    // MARK: Emission

    private func drain() {
        while head < tail {
            guard slots[head].requestDone && slots[head].responseDone && head != tunnelPending else { break }
            head += 1
            emit(head - 1)
        }
        // Slots before `head` are moved out: the cursor never names one (a response must not
        // be attached to, nor an interim appended to, an exchange already handed out).
        if respCursor < head { respCursor = head }
    }

    /// Emits the slot at `ref` (moved out of the queue).
    private func emit(_ ref: SlotRef) {
        let c = analyzer
        let s = slots[ref]
        var flags = s.flags
        let position = s.position
        if !s.hasResponse {
            c.counters.unansweredRequests += 1
            if flags.contains(.lostInGap) { c.counters.lostInGap += 1 }
        } else {
            c.counters.pairedExchanges += 1
            let gapFlags: HTTPExchangeFlags = [.requestAfterGap, .responseAfterGap, .lostInGap]
            if position > 0 && flags.isDisjoint(with: gapFlags) { pipeliningSeen = true }
        }
        if position > 0 { c.counters.pipelinedRequests += 1 }
        if !s.request.complete {
            c.counters.incompleteRequests += 1
            flags.insert(.requestIncomplete)
        }
        if s.hasResponse && !s.response.unsafelyUnwrapped.complete { c.counters.incompleteResponses += 1 }
        c.counters.exchanges += 1
        exchangeCount += 1
        var x = slots.take(ref)
        x.flags = flags
        if x.connectionBox !== connectionBox { x.connectionBox = connectionBox }
        c.onExchange(x)
    }

    private func takeSequence() -> Int {
        defer { nextSequence += 1 }
        return nextSequence
    }

    private func emitOrphan(_ r: HTTPResponse, _ flags: HTTPExchangeFlags, sequence: Int? = nil) {
        var flags = flags
        flags.insert(.responseWithoutRequest)
        if midstream { flags.insert(.midstream) }
        analyzer.counters.responsesWithoutRequest += 1
        if !r.complete { analyzer.counters.incompleteResponses += 1 }
        analyzer.counters.exchanges += 1
        exchangeCount += 1
        let seq = sequence ?? takeSequence()
        analyzer.onExchange(HTTPExchange(connection: connectionBox, sequence: seq, request: nil, response: r,
                                         flags: flags, pipelinePosition: 0))
    }

    // MARK: Close

    func close(cleanly: Bool) {
        if let t = tls {
            t.awaitingSettle = false
            if let p = t.finish(into: &analyzer.counters) {
                if connection.closeReason == .endOfCapture {
                    // Every open connection closes at once at the end: `finish` emits their last
                    // turns in time order.
                    analyzer.heldTurns.append((p.response?.lastTimestamp ?? p.request.lastTimestamp, self, p, true))
                    return
                }
                emitTurn(p)
            }
            reportTLSSummary()
            return
        }
        settlePrefaceProbe()
        if let h2 = http2 {
            h2.close()
            if let cb = analyzer.onConnectionSummary {
                cb(HTTPConnectionSummary(connection: connection, kind: .http2, tunnel: false, requests: h2.requestCount,
                                         responses: h2.responseCount, exchanges: h2.exchangeCount))
            }
            return
        }
        settleRolesNow()
        // The response side first: a close-delimited body ends here.
        resp.close(conn: self, cleanly: cleanly)
        req.close(conn: self, cleanly: cleanly)
        tunnelPending = nil
        let responseLost = resp.state.isResync
        for k in head..<tail {
            slots[k].requestDone = true
            if !slots[k].responseDone {
                slots[k].responseDone = true
                if !slots[k].hasResponse && (responseLost || resp.gapsSeen > slots[k].responseGapsAtSend) {
                    slots[k].flags.insert(.lostInGap)
                }
            }
        }
        drain()
        for (r, f, seq) in heldResponses { emitOrphan(r, f, sequence: seq) }
        heldResponses.removeAll()
        let finalKind: HTTPConnectionKind
        if let kind {
            finalKind = kind
        } else if hadData {
            finalKind = midstream ? .unknown : .nonHTTP
            if midstream { analyzer.counters.unknownConnections += 1 } else { analyzer.counters.nonHTTPConnections += 1 }
        } else {
            finalKind = .empty
        }
        if let cb = analyzer.onConnectionSummary {
            cb(HTTPConnectionSummary(connection: connection, kind: finalKind, tunnel: tunnel,
                                     requests: requestCount, responses: responseCount, exchanges: exchangeCount))
        }
    }
}
