// What an encrypted turn is as an exchange: one value, `HTTPExchange.tls`, nil for plaintext.
// An encrypted exchange has no `request` and no `response` (nothing of either can be read
// without the keys); its times and sizes are the turns' (TLS.swift), and the correlator pairs
// it with the plaintext copy of the same request on another hop by time nesting and size.

/// One request turn of a TLS connection and the response turn after it.
public struct TLSTurnInfo: Sendable, Hashable {
    /// From the ClientHello (nil when the handshake was not captured).
    public var serverName: String?
    /// ALPN protocols the client offered (Istio's `istio-peer-exchange`, `istio-http/1.1`,
    /// `istio-h2` among them), and the one the server chose (TLS ≤ 1.2 only: TLS 1.3 encrypts
    /// it).
    public var alpnOffered: [String] = []
    public var alpnSelected: String?
    /// The negotiated version (`TLSHello.versionName`), when the ServerHello was captured.
    public var version: String?
    /// True when the client presented a certificate (TLS ≤ 1.2: seen in clear) or the server
    /// asked for one (a CertificateRequest seen in clear); nil when it cannot be told (TLS 1.3
    /// encrypts both).
    public var clientCertificate: Bool?
    /// The request turn: application-data records from the client and their payload bytes
    /// (ciphertext: each record adds its tag, and in TLS 1.3 its inner content type, to the
    /// plaintext).
    public var requestRecords: Int
    public var requestBytes: Int
    public var requestFirstTimestamp: Int64
    public var requestLastTimestamp: Int64
    /// The response turn: nil fields when the server sent nothing back before the next request
    /// turn or the end.
    public var responseRecords: Int = 0
    public var responseBytes: Int = 0
    public var responseFirstTimestamp: Int64?
    public var responseLastTimestamp: Int64?
    /// When the response turn's last record began: by then the response had surely begun,
    /// even when the turn opened with TLS 1.3 session tickets (`includesHandshake`).
    public var responseLastRecordFirstTimestamp: Int64?
    /// The connection's first turn under TLS 1.3: it also carries the client's Finished (and
    /// under mTLS its certificate) and the server's session tickets, so its sizes say less.
    public var includesHandshake = false
    /// TLS 1.3, the connection's first turn: when the server's session tickets began, where
    /// they could be told from the response (two records of one size, as OpenSSL writes its
    /// two). The server sends them as it completes the handshake: it read the request no
    /// earlier, so the proxy's copy of it began after (a proxy busy with handshakes reads a
    /// connection's first request long after it arrived).
    public var sessionTicketsAt: Int64?
    /// A gap cut this turn (records were skipped): its sizes are lower bounds.
    public var cutByGap = false
    /// No response turn, and the server sent an alert instead: it refused the request or the
    /// connection (a client certificate it would not accept, say).
    public var answeredByAlert = false
    /// A short record from the server between the request's head and its body (100 Continue)
    /// was taken for an interim response: the request turn went on after it.
    public var interimResponse = false
    /// The connection carries HTTP/2 (why that is known, e.g. "the client offered only HTTP/2
    /// in ALPN (istio-h2)"): its requests are multiplexed inside TLS and cannot be told apart
    /// without the keys. The exchange then stands for the connection, from its first
    /// application data to the moment it was recognised, not for one request; nil for a turn.
    public var multiplexed: String?

    public init(requestRecords: Int, requestBytes: Int, requestFirstTimestamp: Int64, requestLastTimestamp: Int64) {
        self.requestRecords = requestRecords
        self.requestBytes = requestBytes
        self.requestFirstTimestamp = requestFirstTimestamp
        self.requestLastTimestamp = requestLastTimestamp
    }

    /// Bytes each record adds to its plaintext, by version: TLS 1.3's AEAD tag and inner
    /// content type (17), TLS 1.2's AES-GCM explicit nonce and tag (24).
    public var overheadPerRecord: Int { version == "TLS 1.3" || version == nil ? 17 : 24 }
    /// The plaintext sizes the turns stand for (the ciphertext less each record's overhead).
    public var requestPlaintextBytes: Int { max(0, requestBytes - requestRecords * overheadPerRecord) }
    public var responsePlaintextBytes: Int { max(0, responseBytes - responseRecords * overheadPerRecord) }
    /// What the handshake said in clear, as every report says it: "TLS 1.3, SNI
    /// reviews.default, ALPN offered istio-http/1.1, h2, client certificate".
    public var summary: String {
        var s = version ?? "TLS (handshake not captured)"
        if let n = serverName { s += ", SNI " + n }
        if let a = alpnSelected {
            s += ", ALPN " + a
        } else if !alpnOffered.isEmpty {
            s += ", ALPN offered " + alpnOffered.joined(separator: ", ")
        }
        if clientCertificate == true { s += ", client certificate" }
        return s
    }
    /// Response start minus request start (ns), when a response turn was seen.
    public var latency: Int64? { responseFirstTimestamp.map { $0 - requestFirstTimestamp } }
    /// The latest the response can have begun: its first record's time, or, on a first turn
    /// whose session tickets may have come before the response, its last record's.
    public var responseSurelyBegun: Int64? { includesHandshake ? responseLastRecordFirstTimestamp : responseFirstTimestamp }
}

/// An encrypted turn's facts behind a reference (`HTTPExchange.tls`).
@usableFromInline
final class TLSTurnBox: Sendable {
    @usableFromInline let value: TLSTurnInfo
    init(_ value: TLSTurnInfo) { self.value = value }
}

extension HTTPHeaders {
    /// The fields' size as an HTTP/1 head writes them (`name: value` and CRLF each).
    public var http1Bytes: Int {
        var n = 0
        for h in self { n += h.name.utf8.count + h.value.utf8.count + 4 }
        return n
    }
}

extension HTTPExchange {
    /// The request's and response's sizes as HTTP/1 sends them (start line, fields, the blank
    /// line and the body; chunk framing not counted), for comparing a plaintext copy with an
    /// encrypted one; nil for an HTTP/2 stream (HPACK's sizes are not comparable) and for an
    /// encrypted turn.
    public var http1Sizes: (request: Int?, response: Int?) {
        guard http2 == nil, tlsBox == nil else { return (nil, nil) }
        let q = request.map { $0.method.utf8.count + $0.target.utf8.count + 12 + $0.headers.http1Bytes + 2 + Int($0.bodyLength) }
        let r = response.map { 15 + $0.reason.utf8.count + $0.headers.http1Bytes + 2 + Int($0.bodyLength) }
        return (q, r)
    }

    /// When the request began, on the wire: its first byte, or the encrypted turn's.
    @inlinable public var requestFirstTimestamp: Int64? { request?.firstTimestamp ?? tlsBox?.value.requestFirstTimestamp }
    @inlinable public var requestLastTimestamp: Int64? { request?.lastTimestamp ?? tlsBox?.value.requestLastTimestamp }
    @inlinable public var responseFirstTimestamp: Int64? { response?.firstTimestamp ?? tlsBox?.value.responseFirstTimestamp }
    @inlinable public var responseLastTimestamp: Int64? { response?.lastTimestamp ?? tlsBox?.value.responseLastTimestamp }
}
