import HopFlows

/// TLS counters (reported as `tls-…`).
public struct TLSCounters: Sendable, Hashable {
    /// Turn pairs emitted as encrypted exchanges.
    public var turns = 0
    /// Of those, the ones without a response turn.
    public var unansweredTurns = 0
    /// Turn pairs given out when their response paused (`settle`), before the client's next turn.
    public var settledTurns = 0
    /// Server application-data records after such a turn and before the client's next one.
    public var lateServerRecords = 0
    /// TLS 1.3 handshake records sent as application data (not turns).
    public var handshakeRecords = 0
    public var alerts = 0
    /// Bytes skipped looking for a record boundary after a gap or a mid-way pickup.
    public var skippedBytes = 0
    /// Connections picked up mid-way whose records were still read (no hello: no SNI or ALPN).
    public var midstreamConnections = 0
    /// Connections whose client presented a certificate (TLS ≤ 1.2, where it is in clear).
    public var clientCertificates = 0
    /// Connections found to carry HTTP/2 (ALPN, or the client's SETTINGS acknowledgement): one
    /// encrypted exchange each stands for the connection; their records are not turns.
    public var multiplexedConnections = 0
    /// Application-data records of those connections after they were recognised.
    public var multiplexedRecords = 0

    public init() {}

    var report: [(name: String, count: Int, explanation: String)] {
        var out: [(String, Int, String)] = []
        func add(_ name: String, _ c: Int, _ why: String) { if c > 0 { out.append((name, c, why)) } }
        add("tls-turns", turns, "request turns of TLS connections, each an encrypted exchange (paired with its plaintext copy by time and size)")
        add("tls-unanswered-turns", unansweredTurns, "encrypted request turns with no response turn before the next one or the end")
        add("tls-settled-turns", settledTurns, "encrypted turns given out once their response paused, before the client's next turn")
        add("tls-late-server-records", lateServerRecords, "server records after a settled turn and before the client's next (a response that paused longer than the settle time)")
        add("tls-handshake-records", handshakeRecords, "TLS 1.3 handshake records sent as application data (the server's flight before the client's Finished, the client's Certificate, CertificateVerify and Finished): not turns")
        add("tls-alerts", alerts, "TLS alert records (in clear, or TLS 1.3's encrypted 19-byte ones): not turns")
        add("tls-skipped-bytes", skippedBytes, "bytes skipped looking for a TLS record boundary after a gap or a mid-way pickup")
        add("tls-midstream-connections", midstreamConnections, "TLS connections picked up mid-way (no hello: no SNI or ALPN)")
        add("tls-client-certificates", clientCertificates, "TLS connections whose client sent a certificate in clear (TLS ≤ 1.2)")
        add("tls-http2-connections", multiplexedConnections, "TLS connections carrying HTTP/2 (ALPN, or the client's SETTINGS acknowledgement): requests multiplexed inside TLS cannot be told apart without the keys, so each connection is one encrypted exchange, not turns")
        add("tls-http2-records", multiplexedRecords, "application-data records of those connections after they were recognised (not cut into turns)")
        return out
    }
}

/// A TLS connection read without decrypting (TLS.swift): its records per direction, what its
/// handshake says in clear, and its application data cut into turns; each request turn and the
/// response turn after it becomes one encrypted `HTTPExchange` (`tls` set, no request or
/// response), which the correlator pairs with the plaintext copy of the same request.
final class TLSConnection {
    /// How long a response turn may pause before it is taken as whole (capture time): the
    /// turn pair is then given out without waiting for the client's next request, so that an
    /// idle keep-alive connection does not hold its last exchange back.
    static let settleTime: Int64 = 100_000_000

    private var readers = [TLSRecordReader(), TLSRecordReader()]
    private var changeCipherSpec = [false, false]
    var hello = TLSHello()
    var clientCertificate: Bool?
    private var clientSentCertificate = false
    var tracker = TLSTurnTracker()
    /// A gap cut the turn being read.
    private var cut = false
    let midstream: Bool
    var turns = 0
    var answered = 0
    /// In the analyzer's list of connections whose response turn may settle.
    var awaitingSettle = false
    private var skippedCounted = 0
    private var lateCounted = 0
    private var handshakeCounted = 0
    private var alertsCounted = 0
    private var multiplexedCounted = 0

    init(midstream: Bool) {
        self.midstream = midstream
    }

    /// ALPN values that mean HTTP/2 (Istio's between sidecars, and the standard one).
    static let http2ALPN: Set<String> = ["h2", "istio-h2"]
    /// ALPN values that name no HTTP version: Istio's in-mesh marker (`istio`, which its
    /// sidecars add to every offer: `istio-h2, istio` for an HTTP/2 upstream, `istio-http/1.1,
    /// istio` for HTTP/1.1) and its metadata exchange (`istio-peer-exchange`).
    static let markerALPN: Set<String> = ["istio", "istio-peer-exchange"]

    /// Why the handshake makes the connection HTTP/2, if it does: the server chose an HTTP/2
    /// protocol in clear (TLS ≤ 1.2), or the client offered no other HTTP version (Istio's
    /// markers aside: an Istio sidecar whose upstream speaks HTTP/2 offers `istio-h2, istio`).
    /// Nil when HTTP/1 is possible: an offer of both is settled in TLS 1.3's encrypted part,
    /// and the records are read as HTTP/1 turns unless the client's SETTINGS acknowledgement
    /// shows.
    static func http2ByALPN(_ h: TLSHello) -> String? {
        if let chosen = h.alpnSelected, !markerALPN.contains(chosen) {
            return http2ALPN.contains(chosen) ? "the server chose \(chosen) in ALPN" : nil
        }
        let offered = h.alpnOffered.filter { !markerALPN.contains($0) }
        guard !offered.isEmpty, offered.allSatisfy(http2ALPN.contains) else { return nil }
        return "the client offered only HTTP/2 in ALPN (\(h.alpnOffered.joined(separator: ", ")))"
    }

    /// Whether a connection's first client bytes start a TLS handshake record.
    static func startsHandshake(_ b: UnsafeRawBufferPointer) -> Bool {
        b.count >= 3 && b[0] == 0x16 && b[1] == 3 && b[2] <= 4
    }

    /// Whether a mid-way connection's first bytes (either direction) look like a TLS
    /// application-data or handshake record header of a plausible length.
    static func looksLikeRecord(_ b: UnsafeRawBufferPointer) -> Bool {
        b.count >= 5 && (b[0] == 0x17 || b[0] == 0x16) && b[1] == 3 && b[2] >= 1 && b[2] <= 4
            && TLSRecordReader.length(b, at: 0) <= TLSRecordReader.maximumLength
    }

    /// Bytes of one direction (0: client → server). Returns the turn pairs they completed.
    func consume(_ dir: Int, _ bytes: UnsafeRawBufferPointer, first: Int64, last: Int64,
                 into counters: inout HTTPCounters, emit: (TLSTurnPair) -> Void) {
        let records = readers[dir].consume(bytes, first: first, last: last)
        for r in records {
            switch r.type {
            case .handshake:
                guard !changeCipherSpec[dir], let payload = r.handshakePayload else { break }
                var h = hello
                if TLSHelloParser.read(payload, into: &h) {
                    hello = h
                    if dir == 1 { tracker.negotiated(version: h.version, cipherSuite: h.cipherSuite) }
                    tracker.http2ByALPN = Self.http2ByALPN(h)
                }
                let types = TLSHelloParser.messageTypes(payload)
                if dir == 0, types.contains(11), !clientSentCertificate {
                    clientSentCertificate = true
                    clientCertificate = true
                    counters.tls.clientCertificates += 1
                } else if dir == 1, types.contains(13), clientCertificate == nil {
                    clientCertificate = true
                }
            case .changeCipherSpec:
                // TLS 1.3 sends one only for middlebox compatibility; its handshake is already
                // encrypted as application data.
                if !tracker.tls13 { changeCipherSpec[dir] = true }
            default:
                break
            }
            if let pair = tracker.add(r, fromClient: dir == 0) {
                emit(pair)
            }
        }
        account(&counters)
    }

    func gap(_ dir: Int) {
        readers[dir].gap()
        cut = true
    }

    /// Whether a gap cut the turn pair just completed (and resets for the next).
    func takeCut() -> Bool {
        defer { cut = false }
        return cut
    }

    /// The current pair, if its response has begun and paused since `now - settleTime`.
    func settle(now: Int64, into counters: inout HTTPCounters) -> TLSTurnPair? {
        guard let r = tracker.responseInProgress, r.lastTimestamp < now - Self.settleTime else { return nil }
        counters.tls.settledTurns += 1
        return tracker.flush()
    }

    func finish(into counters: inout HTTPCounters) -> TLSTurnPair? {
        defer { account(&counters) }
        return tracker.finish()
    }

    /// Moves the readers' and tracker's running counts into the counters.
    private func account(_ counters: inout HTTPCounters) {
        let skipped = readers[0].skippedBytes + readers[1].skippedBytes
        if skipped != skippedCounted {
            counters.tls.skippedBytes += skipped - skippedCounted
            skippedCounted = skipped
        }
        let late = tracker.lateServerRecords
        if late != lateCounted {
            counters.tls.lateServerRecords += late - lateCounted
            lateCounted = late
        }
        let handshake = tracker.serverHandshakeRecords + tracker.clientHandshakeRecords
        if handshake != handshakeCounted {
            counters.tls.handshakeRecords += handshake - handshakeCounted
            handshakeCounted = handshake
        }
        if tracker.multiplexedRecords != multiplexedCounted {
            counters.tls.multiplexedRecords += tracker.multiplexedRecords - multiplexedCounted
            multiplexedCounted = tracker.multiplexedRecords
        }
        if tracker.alerts != alertsCounted {
            counters.tls.alerts += tracker.alerts - alertsCounted
            alertsCounted = tracker.alerts
        }
    }

    /// The exchange's `tls` value for a turn pair.
    func info(_ p: TLSTurnPair, cutByGap: Bool) -> TLSTurnInfo {
        var t = TLSTurnInfo(requestRecords: p.request.records, requestBytes: p.request.bytes,
                            requestFirstTimestamp: p.request.firstTimestamp, requestLastTimestamp: p.request.lastTimestamp)
        t.serverName = hello.serverName
        t.alpnOffered = hello.alpnOffered
        t.alpnSelected = hello.alpnSelected
        t.version = hello.version.map(TLSHello.versionName)
        t.clientCertificate = clientCertificate
        if let r = p.response {
            t.responseRecords = r.records
            t.responseBytes = r.bytes
            t.responseFirstTimestamp = r.firstTimestamp
            t.responseLastTimestamp = r.lastTimestamp
            t.responseLastRecordFirstTimestamp = r.lastRecordFirstTimestamp
        }
        t.includesHandshake = p.includesHandshake
        t.sessionTicketsAt = p.sessionTicketsAt
        t.answeredByAlert = p.answeredByAlert
        t.interimResponse = p.interimResponse
        t.multiplexed = p.multiplexed
        t.cutByGap = cutByGap
        return t
    }
}

/// The first bytes of a connection, while they may still start TLS.
struct TLSProbe {
    var dir: FlowDirection
    var bytes: [UInt8]
    var first: Int64
    var last: Int64
}

enum TLSProbeVerdict {
    /// Held: too few bytes to tell yet.
    case held
    /// TLS: the bytes (and any held) went to the TLS reader.
    case tls
    /// Not TLS: the held bytes (if any) are to be parsed before these.
    case notTLS(held: TLSProbe?)
}

extension ConnectionState {
    /// Whether the connection's first bytes are TLS: a handshake record from the client, or, on
    /// a connection picked up mid-way, a record header either way. Holds a prefix too short to
    /// tell (so the verdict does not depend on how the segments were cut).
    func probeTLS(_ dir: FlowDirection, _ bytes: UnsafeRawBufferPointer, first: Int64, last: Int64) -> TLSProbeVerdict {
        var probe = tlsProbe.take()
        if let p = probe, p.dir != dir {
            // The other side spoke first: what was held is not a TLS start.
            firstBytesSeen = true
            return .notTLS(held: p)
        }
        var all = probe?.bytes ?? []
        all.append(contentsOf: bytes)
        let need = midstream ? 5 : 3
        let verdict: Bool? = all.withUnsafeBytes { b in
            // Decided on the bytes present only: a prefix that might still be TLS waits.
            for k in 0..<min(b.count, need) {
                switch k {
                case 0: if midstream ? (b[0] != 0x16 && b[0] != 0x17) : (b[0] != 0x16 || dir != .clientToServer) { return false }
                case 1: if b[1] != 3 { return false }
                case 2: if b[2] > 4 || (midstream && b[2] == 0) { return false }
                default: break
                }
            }
            if b.count < need { return nil }
            return midstream ? TLSConnection.looksLikeRecord(b) : TLSConnection.startsHandshake(b)
        }
        switch verdict {
        case nil:
            if probe == nil { probe = TLSProbe(dir: dir, bytes: [], first: first, last: last) }
            probe!.bytes = all
            probe!.last = last
            tlsProbe = probe
            return .held
        case true?:
            firstBytesSeen = true
            startTLS(midstream: midstream)
            let start = probe?.first ?? first
            all.withUnsafeBytes { tlsData(tls!, dir, $0, first: start, last: last) }
            return .tls
        case false?:
            firstBytesSeen = true
            return .notTLS(held: probe)
        }
    }

    /// The connection closed or hit a gap while its first bytes were held: they are not TLS.
    func releaseTLSProbe() -> TLSProbe? {
        firstBytesSeen = true
        return tlsProbe.take()
    }

    /// The connection is TLS from here on: its bytes go to a `TLSConnection`.
    func startTLS(midstream: Bool) {
        tls = TLSConnection(midstream: midstream)
        kind = .tls
        analyzer.counters.tlsConnections += 1
        if midstream { analyzer.counters.tls.midstreamConnections += 1 }
        req.state = .ignored
        resp.state = .ignored
        prefaceProbe = nil
        rolesSettled = true
        roleProbe = nil
    }

    func tlsData(_ t: TLSConnection, _ dir: FlowDirection, _ bytes: UnsafeRawBufferPointer, first: Int64, last: Int64) {
        hadData = true
        let d = dir == .clientToServer ? 0 : 1
        let before = t.tracker.responseInProgress != nil
        t.consume(d, bytes, first: first, last: last, into: &analyzer.counters) { emitTurn($0) }
        if !before, t.tracker.responseInProgress != nil, !t.awaitingSettle {
            t.awaitingSettle = true
            analyzer.awaitSettle(self)
        }
    }

    func reportTLSSummary() {
        guard let cb = analyzer.onConnectionSummary else { return }
        cb(HTTPConnectionSummary(connection: connection, kind: .tls, tunnel: false, requests: requestCount,
                                 responses: responseCount, exchanges: exchangeCount))
    }

    func emitTurn(_ p: TLSTurnPair) {
        guard let t = tls else { return }
        let info = t.info(p, cutByGap: t.takeCut())
        if p.multiplexed != nil {
            // The connection, not a request: no turn, request or response counted.
            analyzer.counters.tls.multiplexedConnections += 1
        } else {
            t.turns += 1
            analyzer.counters.tls.turns += 1
            if p.response == nil { analyzer.counters.tls.unansweredTurns += 1 } else { t.answered += 1 }
            requestCount += 1
            if p.response != nil { responseCount += 1 }
        }
        analyzer.counters.exchanges += 1
        exchangeCount += 1
        var flags: HTTPExchangeFlags = []
        if midstream { flags.insert(.midstream) }
        var x = HTTPExchange(connection: connectionBox, sequence: nextSequence, request: nil, response: nil,
                             flags: flags, pipelinePosition: 0)
        nextSequence += 1
        x.tls = info
        analyzer.onExchange(x)
    }
}
