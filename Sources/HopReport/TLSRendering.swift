import HopHTTP

/// How every printer shows an encrypted turn (`HTTPExchange.tls`): one short text for the
/// line-oriented and diagram formats, one JSON object (`"tls"`, absent for plaintext).
public enum TLSRendering {
    /// `encrypted turn 2 (TLS 1.3, SNI orders.default, ALPN offered istio-http/1.1, client certificate)`.
    /// A connection carrying HTTP/2: `encrypted HTTP/2 connection (TLS 1.3, SNI …)`.
    public static func text(_ t: TLSTurnInfo, turn: Int) -> String {
        t.multiplexed != nil ? "encrypted HTTP/2 connection (\(t.summary))" : "encrypted turn \(turn) (\(t.summary))"
    }

    /// `req 116 B resp 262 B ciphertext (1/1 records)` and what makes the sizes loose.
    /// A connection carrying HTTP/2 says why, and that its requests are not told apart.
    public static func sizes(_ t: TLSTurnInfo) -> String {
        if let why = t.multiplexed {
            return "requests multiplexed inside TLS, not told apart without the keys (HTTP/2: \(why))"
        }
        var s = "req \(t.requestBytes) B resp \(t.responseBytes) B ciphertext (\(t.requestRecords)/\(t.responseRecords) records)"
        if t.includesHandshake { s += " with handshake bytes" }
        if t.cutByGap { s += " cut by a gap" }
        if t.answeredByAlert { s += " answered by a TLS alert" }
        if t.interimResponse { s += " after an interim response" }
        return s
    }

    /// `"tls": {…}` (only for encrypted exchanges).
    static func write(_ t: TLSTurnInfo?, turn: Int, to w: JSONWriter) {
        guard let t else { return }
        w.key("tls")
        w.beginObject()
        w.field("turn", turn)
        w.field("version", t.version)
        w.field("sni", t.serverName)
        w.field("alpnOffered", strings: t.alpnOffered)
        w.field("alpn", t.alpnSelected)
        w.field("clientCertificate", t.clientCertificate)
        w.field("requestRecords", t.requestRecords)
        w.field("requestBytes", t.requestBytes)
        w.field("responseRecords", t.responseRecords)
        w.field("responseBytes", t.responseBytes)
        w.field("includesHandshake", t.includesHandshake)
        w.field("cutByGap", t.cutByGap)
        w.field("answeredByAlert", t.answeredByAlert)
        w.field("interimResponse", t.interimResponse)
        if let why = t.multiplexed { w.field("multiplexed", why) }
        w.endObject()
    }
}
