/// TLS as a hop carries it, read without decrypting: the records of each direction, what the
/// handshake says in the clear (SNI, ALPN, versions, cipher suite), and the application data
/// cut into turns — a run of records one way, then a run the other way — which is what one
/// HTTP/1 request and its response look like encrypted (issue 20: an mTLS hop between sidecars
/// is paired with its plaintext copy on lo by time nesting and size).

/// What a TLS handshake says in the clear.
public struct TLSHello: Sendable, Hashable {
    /// The server name the client asked for (SNI), if any.
    public var serverName: String?
    /// The application protocols the client offered (ALPN), in its order: `h2`, `http/1.1`,
    /// Istio's `istio-peer-exchange`, `istio-http/1.1`, `istio-h2`.
    public var alpnOffered: [String] = []
    /// The protocol the server chose, when the ServerHello carries it (TLS 1.2 and earlier;
    /// TLS 1.3 sends it encrypted, in EncryptedExtensions).
    public var alpnSelected: String?
    /// The versions the client offered (supported_versions, else its legacy version).
    public var versionsOffered: [UInt16] = []
    /// The version the server chose (its supported_versions, else its legacy version).
    public var version: UInt16?
    /// The cipher suite the server chose.
    public var cipherSuite: UInt16?
    /// The client's legacy session id was non-empty and the server echoed it (a resumption in
    /// TLS 1.2; in TLS 1.3 middlebox-compatibility mode echoes it too).
    public var sessionEchoed = false

    public init() {}

    /// `TLS 1.3`, `TLS 1.2`, … for a wire version (0x0304, 0x0303, …).
    public static func versionName(_ v: UInt16) -> String {
        switch v {
        case 0x0300: "SSL 3.0"
        case 0x0301: "TLS 1.0"
        case 0x0302: "TLS 1.1"
        case 0x0303: "TLS 1.2"
        case 0x0304: "TLS 1.3"
        default: "TLS 0x" + String(v, radix: 16)
        }
    }
}

/// One TLS record's header, as it crossed the wire.
public struct TLSRecord: Sendable, Hashable {
    public enum ContentType: UInt8, Sendable {
        case changeCipherSpec = 20, alert = 21, handshake = 22, applicationData = 23, heartbeat = 24
    }
    public var type: ContentType
    public var version: UInt16
    /// The record's payload length (the bytes after its 5-byte header).
    public var length: Int
    /// Capture times of the record's first and last bytes.
    public var firstTimestamp: Int64
    public var lastTimestamp: Int64
    /// A handshake record's payload (its first 64 KiB), for `TLSHelloParser`; nil otherwise.
    public var handshakePayload: [UInt8]? = nil
}

/// Cuts one direction of a reassembled TCP stream into TLS records.
///
/// Only headers are kept (and a handshake record's payload, for `TLSHelloParser`, up to
/// 64 KiB). After a gap the next record boundary is unknown: the reader looks for a
/// header it can trust — a known content type, version 3.x and a length within the limit, and
/// another such header right after it — and resumes there; the bytes skipped are counted.
public struct TLSRecordReader {
    /// The largest record payload TLS allows (2^14 plus expansion: 2^14 + 2048).
    public static let maximumLength = 16_384 + 2_048

    /// Bytes of a header or a handshake payload that straddle segments.
    private var pending: [UInt8] = []
    /// The payload bytes of the current record still to come (not handshake: not kept).
    private var skipping = 0
    private var current: TLSRecord?
    private var resyncing = false
    /// Bytes held while looking for a boundary (a candidate header whose successor has not
    /// arrived yet).
    private var scan: [UInt8] = []
    /// Handshake payload bytes of the current record, kept for the hello parser.
    private var handshakeBytes: [UInt8] = []
    public private(set) var skippedBytes = 0
    public private(set) var gaps = 0

    /// A direction picked up mid-way is read the same way: its first bytes are taken for a
    /// record header when they look like one (segments mostly start at record boundaries), else
    /// the next boundary is searched for, as after a gap.
    public init() {}

    /// The records the bytes complete, in order. `timestamp` is the segment's capture time.
    public mutating func consume(_ bytes: UnsafeRawBufferPointer, at timestamp: Int64) -> [TLSRecord] {
        consume(bytes, first: timestamp, last: timestamp)
    }

    /// The records the bytes complete, in order: a record begun in them starts at `first`, and
    /// one that ends in them ends at `last` (the capture times of the bytes' first and last
    /// packets).
    public mutating func consume(_ bytes: UnsafeRawBufferPointer, first: Int64, last timestamp: Int64) -> [TLSRecord] {
        var out: [TLSRecord] = []
        var i = 0
        let n = bytes.count
        while i < n {
            if skipping > 0, var r = current {
                let take = min(skipping, n - i)
                if r.type == .handshake, handshakeBytes.count + take <= 65_536 {
                    handshakeBytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[i..<(i + take)]))
                }
                skipping -= take
                i += take
                r.lastTimestamp = timestamp
                current = r
                if skipping == 0 {
                    if r.type == .handshake { r.handshakePayload = handshakeBytes }
                    out.append(r)
                    current = nil
                }
                continue
            }
            if resyncing {
                // Look for two trustworthy headers in a row, in what was held back and what is
                // here: the same boundary is found however the stream was cut.
                scan.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[i..<n]))
                i = n
                var keepFrom = scan.count
                var found: Int?
                let held = scan
                held.withUnsafeBytes { b in
                    var k = 0
                    while k < b.count {
                        if k + 5 > b.count { keepFrom = k; break }
                        if Self.plausible(b, at: k) {
                            let next = k + 5 + Self.length(b, at: k)
                            // Its successor has not arrived: decided by the bytes to come.
                            if next + 5 > b.count { keepFrom = k; break }
                            if Self.plausible(b, at: next) { found = k; break }
                        }
                        k += 1
                    }
                }
                if let f = found {
                    skippedBytes += f
                    resyncing = false
                    scan = []
                    let rest = Array(held[f...])
                    out += rest.withUnsafeBytes { consume($0, first: first, last: timestamp) }
                    return out
                }
                // Bytes before the first candidate that is still open can no longer start one.
                skippedBytes += keepFrom
                scan.removeFirst(keepFrom)
                if scan.count > 2 * Self.maximumLength + 10 {
                    skippedBytes += scan.count
                    scan = []
                }
                return out
            }
            // A header, perhaps in pieces.
            let need = 5 - pending.count
            if n - i < need {
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[i..<n]))
                return out
            }
            var header = pending
            header.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[i..<(i + need)]))
            pending.removeAll(keepingCapacity: true)
            i += need
            let ok = header.withUnsafeBytes { Self.plausible($0, at: 0) }
            guard ok, let type = TLSRecord.ContentType(rawValue: header[0]) else {
                // Not a record boundary after all: hunt for one from its next byte.
                skippedBytes += 1
                scan = Array(header.dropFirst())
                resyncing = true
                continue
            }
            let length = Int(header[3]) << 8 | Int(header[4])
            if type == .handshake { handshakeBytes.removeAll(keepingCapacity: true) }
            let r = TLSRecord(type: type, version: UInt16(header[1]) << 8 | UInt16(header[2]), length: length,
                              firstTimestamp: first, lastTimestamp: timestamp)
            if length == 0 { out.append(r); continue }
            current = r
            skipping = length
        }
        return out
    }

    /// Bytes were lost: the record being read is given up, and the next boundary is searched for.
    public mutating func gap() {
        gaps += 1
        pending.removeAll()
        skipping = 0
        current = nil
        handshakeBytes.removeAll()
        if resyncing { skippedBytes += scan.count }
        scan = []
        resyncing = true
    }

    static func plausible(_ b: UnsafeRawBufferPointer, at k: Int) -> Bool {
        guard k + 5 <= b.count, (20...24).contains(b[k]), b[k + 1] == 3, b[k + 2] <= 4 else { return false }
        return length(b, at: k) <= maximumLength
    }

    static func length(_ b: UnsafeRawBufferPointer, at k: Int) -> Int { Int(b[k + 3]) << 8 | Int(b[k + 4]) }
}

/// Reads a ClientHello or a ServerHello (a handshake record's payload) into a `TLSHello`.
public enum TLSHelloParser {
    /// Adds what `payload` (the handshake bytes of the client's or the server's first flight)
    /// says to `hello`; false when it is not a hello it could read.
    @discardableResult
    public static func read(_ payload: [UInt8], into hello: inout TLSHello) -> Bool {
        var r = Reader(payload)
        guard let type = r.u8(), let length = r.u24(), length <= r.remaining else { return false }
        var body = Reader(Array(payload[4..<(4 + length)]))
        switch type {
        case 1: return client(&body, &hello)
        case 2: return server(&body, &hello)
        default: return false
        }
    }

    /// The handshake message types that start in a handshake record's payload (the first
    /// message, and each that follows whole in the same record): 11 Certificate, 13
    /// CertificateRequest… Only meaningful before the direction's ChangeCipherSpec.
    public static func messageTypes(_ payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i + 4 <= payload.count {
            out.append(payload[i])
            let length = Int(payload[i + 1]) << 16 | Int(payload[i + 2]) << 8 | Int(payload[i + 3])
            i += 4 + length
        }
        return out
    }

    private static func client(_ r: inout Reader, _ hello: inout TLSHello) -> Bool {
        guard let legacy = r.u16(), r.skip(32), let sid = r.u8(), r.skip(Int(sid)),
              let suites = r.u16(), r.skip(Int(suites)), let comp = r.u8(), r.skip(Int(comp)) else { return false }
        hello.versionsOffered = [legacy]
        guard let extLength = r.u16(), var exts = r.sub(Int(extLength)) else { return true }
        while let type = exts.u16(), let len = exts.u16(), var e = exts.sub(Int(len)) {
            switch type {
            case 0:  // server_name: a list of (type, name); host_name is type 0
                guard let listLength = e.u16(), var list = e.sub(Int(listLength)) else { break }
                while let nameType = list.u8(), let nameLength = list.u16(), let name = list.bytes(Int(nameLength)) {
                    if nameType == 0 { hello.serverName = String(decoding: name, as: UTF8.self); break }
                }
            case 16:  // ALPN
                hello.alpnOffered = protocols(&e)
            case 43:  // supported_versions: a list of 2-byte versions
                guard let n = e.u8(), var list = e.sub(Int(n)) else { break }
                var versions: [UInt16] = []
                while let v = list.u16() { if v & 0x0f0f != 0x0a0a { versions.append(v) } }  // GREASE dropped
                if !versions.isEmpty { hello.versionsOffered = versions }
            default:
                break
            }
        }
        return true
    }

    private static func server(_ r: inout Reader, _ hello: inout TLSHello) -> Bool {
        guard let legacy = r.u16(), r.skip(32), let sid = r.u8() else { return false }
        hello.sessionEchoed = sid > 0
        guard r.skip(Int(sid)), let suite = r.u16(), r.skip(1) else { return false }
        hello.version = legacy
        hello.cipherSuite = suite
        guard let extLength = r.u16(), var exts = r.sub(Int(extLength)) else { return true }
        while let type = exts.u16(), let len = exts.u16(), var e = exts.sub(Int(len)) {
            switch type {
            case 16: hello.alpnSelected = protocols(&e).first
            case 43: if let v = e.u16() { hello.version = v }
            default: break
            }
        }
        return true
    }

    private static func protocols(_ e: inout Reader) -> [String] {
        guard let listLength = e.u16(), var list = e.sub(Int(listLength)) else { return [] }
        var out: [String] = []
        while let n = list.u8(), let p = list.bytes(Int(n)) { out.append(String(decoding: p, as: UTF8.self)) }
        return out
    }

    /// Big-endian reads that fail (nil) instead of reading past the end.
    struct Reader {
        let b: [UInt8]
        var i = 0
        init(_ b: [UInt8]) { self.b = b }
        var remaining: Int { b.count - i }
        mutating func u8() -> UInt8? { guard remaining >= 1 else { return nil }; defer { i += 1 }; return b[i] }
        mutating func u16() -> UInt16? {
            guard remaining >= 2 else { return nil }
            defer { i += 2 }
            return UInt16(b[i]) << 8 | UInt16(b[i + 1])
        }
        mutating func u24() -> Int? {
            guard remaining >= 3 else { return nil }
            defer { i += 3 }
            return Int(b[i]) << 16 | Int(b[i + 1]) << 8 | Int(b[i + 2])
        }
        mutating func skip(_ n: Int) -> Bool { guard n >= 0, remaining >= n else { return false }; i += n; return true }
        mutating func bytes(_ n: Int) -> ArraySlice<UInt8>? {
            guard n >= 0, remaining >= n else { return nil }
            defer { i += n }
            return b[i..<(i + n)]
        }
        mutating func sub(_ n: Int) -> Reader? { bytes(n).map { Reader(Array($0)) } }
    }
}

/// A run of application-data records in one direction.
public struct TLSTurn: Sendable, Hashable {
    public var records = 0
    /// The records' payload bytes (ciphertext, with each record's tag and, in TLS 1.3, its
    /// inner content type: a few dozen bytes a record more than the plaintext).
    public var bytes = 0
    public var firstTimestamp: Int64
    public var lastTimestamp: Int64
    /// When the turn's last record began, and its payload bytes.
    public var lastRecordFirstTimestamp: Int64
    public var lastRecordBytes: Int

    public init(records: Int = 1, bytes: Int, firstTimestamp: Int64, lastTimestamp: Int64) {
        self.records = records
        self.bytes = bytes
        self.firstTimestamp = firstTimestamp
        self.lastTimestamp = lastTimestamp
        lastRecordFirstTimestamp = firstTimestamp
        lastRecordBytes = bytes
    }

    mutating func add(_ r: TLSRecord) {
        records += 1
        bytes += r.length
        lastTimestamp = r.lastTimestamp
        lastRecordFirstTimestamp = r.firstTimestamp
        lastRecordBytes = r.length
    }
}

/// One request turn and the response turn after it: what an HTTP/1 exchange looks like
/// encrypted.
public struct TLSTurnPair: Sendable, Hashable {
    public var request: TLSTurn
    public var response: TLSTurn?
    /// The first pair of a TLS 1.3 connection: the client's Finished (and, under mTLS, its
    /// certificate) and the server's session tickets travel as application data too, in the
    /// same runs as the first request and response: their sizes say less.
    public var includesHandshake: Bool
    /// The server's only answer was an alert.
    public var answeredByAlert = false
    /// An interim response (100 Continue) came between the request's head and its body.
    public var interimResponse = false
    /// The connection carries HTTP/2 (why that is known): its requests are multiplexed inside
    /// TLS, so its records are not cut into turns. This pair stands for the connection (its
    /// records up to the moment it was recognised), not for a request.
    public var multiplexed: String?
    /// TLS 1.3, the first pair: when the server's session tickets began, where they are known
    /// (two records of one size opening the response turn, as OpenSSL writes its two tickets).
    /// The server sends them as it completes the handshake, so it read the request no earlier.
    public var sessionTicketsAt: Int64?
}

/// Cuts a TLS connection's application data into turns, from its records in capture order.
///
/// A turn is a run of application-data records one way; a request turn is the client's, and
/// the server's next turn answers it. Before the client has sent application data, the
/// server's application data is TLS 1.3's encrypted handshake (EncryptedExtensions,
/// Certificate, Finished), not a response; it is counted, not turned.
public struct TLSTurnTracker {
    private var request: TLSTurn?
    private var response: TLSTurn?
    private var clientSent = false
    private var firstDone = false
    public var tls13 = false
    /// TLS 1.3: the length of the client's Finished record, from the cipher suite's hash (nil:
    /// the suite was not seen, the client's flight cannot be told from a request).
    public var finishedLength: Int?
    private var clientHandshakeDone = false
    /// TLS 1.3 client handshake records (Certificate, CertificateVerify, Finished) seen as
    /// application data.
    public private(set) var clientHandshakeRecords = 0

    /// Sets the version and cipher suite the ServerHello chose.
    public mutating func negotiated(version: UInt16?, cipherSuite: UInt16?) {
        tls13 = version == 0x0304
        guard tls13, let suite = cipherSuite else { return }
        // Finished: a 4-byte handshake header and the hash's length, the inner content type
        // and a 16-byte tag. SHA-384 for TLS_AES_256_GCM_SHA384, SHA-256 for the others.
        finishedLength = 4 + (suite == 0x1302 ? 48 : 32) + 1 + 16
    }
    /// Server application data before the client's first (TLS 1.3 handshake flights).
    public private(set) var serverHandshakeRecords = 0
    /// Alerts seen (an alert ends a connection, or warns).
    public private(set) var alerts = 0
    /// Server application data after a turn pair was given up early (`flush`) and before the
    /// client's next: part of a response that paused longer than the settle time.
    public private(set) var lateServerRecords = 0
    /// The response turn being read, if one has begun.
    public var responseInProgress: TLSTurn? { response }
    /// Why the connection carries HTTP/2 (nil: taken for HTTP/1, one request at a time).
    /// Multiplexed streams interleave their records both ways: no run of records is one
    /// request, so none is made a turn.
    public private(set) var multiplexed: String?
    /// Set from the handshake: the ALPN that makes the connection HTTP/2 (the client offered
    /// nothing else, or the server chose it in clear); acted on at the client's first
    /// application data.
    public var http2ByALPN: String?
    /// Application-data records read after the connection was found to carry HTTP/2.
    public private(set) var multiplexedRecords = 0
    /// The client's application-data records so far (past its handshake flight).
    private var clientRecords = 0
    /// TLS 1.3: the last application-data record after the client's Finished was the
    /// server's (its session tickets, an HTTP/2 server's SETTINGS, a response).
    private var serverSpokeLast = false
    /// How far into the client's records an acknowledgement right after the server's records
    /// is looked for (a client may open many streams before the server's SETTINGS reach it).
    static let settingsAckAfterServerWithin = 32
    /// TLS 1.3 client records among its first few whose plaintext is one bare HTTP/2 frame
    /// header (9 bytes: a SETTINGS acknowledgement): no HTTP/1 request is that short.
    static let settingsAckPlaintext = 9
    static let settingsAckWithin = 3

    public init() {}

    /// A record in capture order; `fromClient` says its direction. Returns the pair a new
    /// request turn completed (the previous request and its response), if any.
    public mutating func add(_ r: TLSRecord, fromClient: Bool) -> TLSTurnPair? {
        if r.type == .alert { return alert(fromClient: fromClient) }
        guard r.type == .applicationData else { return nil }
        if tls13 {
            // An encrypted alert (close_notify, or a refusal): 2 bytes, its type and the tag. No
            // HTTP message is that short.
            if r.length == 19 { return alert(fromClient: fromClient) }
            // The client's second flight (its Certificate and CertificateVerify under mTLS, and
            // its Finished) is application data on the wire: it ends with the Finished, whose
            // size the cipher suite's hash fixes. Not a request.
            if fromClient, !clientHandshakeDone, let f = finishedLength {
                clientHandshakeRecords += 1
                if r.length == f { clientHandshakeDone = true }
                return nil
            }
        }
        if multiplexed != nil {
            if fromClient { clientSent = true }
            multiplexedRecords += 1
            return nil
        }
        if fromClient {
            clientRecords += 1
            if let why = http2ByALPN {
                return markMultiplexed(why, at: r)
            }
            // TLS 1.3 adds 17 bytes a record (the AEAD tag and the inner content type). The
            // acknowledgement answers the server's SETTINGS: among the client's first records,
            // or right after server records (a client that opened several streams at once
            // sends them first; the server's tickets may come before them or between). After
            // the server's records an HTTP/1 client sends a request, never 9 bytes (but for a
            // body of 9 bytes after a 100 Continue, which no client we know sends).
            let answersServer = serverSpokeLast && clientRecords <= Self.settingsAckAfterServerWithin
            serverSpokeLast = false
            if tls13, clientRecords <= Self.settingsAckWithin || answersServer, r.length - 17 == Self.settingsAckPlaintext {
                return markMultiplexed("the client acknowledged HTTP/2 SETTINGS (a record of 9 bytes of plaintext: one frame header, shorter than any HTTP/1 request)", at: r)
            }
            clientSent = true
            if let a = response, a.records == 1 || (a.records <= 3 && tls13 && !firstDone), !interimTaken, let q = request,
               (20...32).contains(a.lastRecordBytes - (tls13 ? 17 : 24)) {
                // A record of 20–32 bytes of plaintext (after a first turn's session tickets),
                // then the client goes on: an interim response (`HTTP/1.1 100 Continue` and its
                // blank line is 25), the body follows in the same request turn. No final
                // response is that short.
                interimTaken = true
                response = nil
                var more = q
                more.add(r)
                request = more
                return nil
            }
            if response != nil { return startRequest(r) }
            if request == nil { return startRequest(r) }
            request!.add(r)
            return nil
        }
        if tls13, clientHandshakeDone { serverSpokeLast = true }
        guard clientSent else { serverHandshakeRecords += 1; return nil }
        guard request != nil else { lateServerRecords += 1; return nil }
        if response == nil {
            response = TLSTurn(bytes: r.length, firstTimestamp: r.firstTimestamp, lastTimestamp: r.lastTimestamp)
        } else {
            // The first turn's response opening with two small records of one size: OpenSSL's
            // two session tickets (a response is not cut that way; a large one's records are
            // all of the largest size). Looked at once, on the turn's first two records.
            if tls13, !firstDone, !ticketsLooked, response!.records == 1 {
                ticketsLooked = true
                if r.length == response!.bytes, r.length <= Self.ticketRecordLimit {
                    sessionTicketsAt = response!.firstTimestamp
                }
            }
            response!.add(r)
        }
        return nil
    }
    /// The first pair's session tickets, when known (`TLSTurnPair.sessionTicketsAt`), and
    /// whether its response's first records were looked at.
    private var sessionTicketsAt: Int64?
    private var ticketsLooked = false
    /// The largest record taken for a session ticket (a ticket holds the session, under mTLS
    /// the client's certificate: about 1 KB; a full record is 16 KB).
    static let ticketRecordLimit = 8_192

    /// An alert; one from the server while no response has begun is the answer the next
    /// (or current) request turn gets (it refused the connection: a failed certificate check, say).
    private mutating func alert(fromClient: Bool) -> TLSTurnPair? {
        alerts += 1
        // Before the request turn too: a server that rejects the client's certificate alerts
        // on its handshake flight, and the request that follows is never read.
        if !fromClient, response == nil { refused = true }
        return nil
    }
    private var refused = false
    /// The current request turn already went on past an interim response.
    private var interimTaken = false

    /// The current pair now that its response has begun and then paused (the response looks
    /// whole): the turn pair is given out without waiting for the client's next request.
    public mutating func flush() -> TLSTurnPair? {
        guard response != nil else { return nil }
        return finish()
    }

    /// The last turn pair, at the connection's end (its response may be missing).
    public mutating func finish() -> TLSTurnPair? {
        guard let q = request else { return nil }
        defer { request = nil; response = nil }
        return pair(q, response)
    }

    /// The connection is HTTP/2 from record `r` on (the client's): the pair that stands for
    /// it, from what was read so far (the turn being read, with `r`).
    private mutating func markMultiplexed(_ why: String, at r: TLSRecord) -> TLSTurnPair {
        multiplexed = why
        clientSent = true
        var q = request ?? TLSTurn(records: 0, bytes: 0, firstTimestamp: r.firstTimestamp, lastTimestamp: r.lastTimestamp)
        q.add(r)
        var p = pair(q, response)
        p.multiplexed = why
        p.interimResponse = false
        request = nil
        response = nil
        return p
    }

    private mutating func startRequest(_ r: TLSRecord) -> TLSTurnPair? {
        let done = request.map { pair($0, response) }
        interimTaken = false
        request = TLSTurn(bytes: r.length, firstTimestamp: r.firstTimestamp, lastTimestamp: r.lastTimestamp)
        response = nil
        return done
    }

    private mutating func pair(_ q: TLSTurn, _ a: TLSTurn?) -> TLSTurnPair {
        var p = TLSTurnPair(request: q, response: a, includesHandshake: tls13 && !firstDone)
        p.sessionTicketsAt = sessionTicketsAt
        sessionTicketsAt = nil
        p.interimResponse = interimTaken
        p.answeredByAlert = refused && a == nil
        refused = false
        firstDone = true
        return p
    }
}
