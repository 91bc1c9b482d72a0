import HopFlows
import HopHTTP

/// The HTTP/2 parser: the `http` target's scripted connection, with the client preface put
/// before the client's first bytes (and, by byte 0, a connection picked up mid-way without
/// it), so the bytes are read as frames. The same promises: exchanges and counters do not
/// depend on the cuts; every exchange counted; one exchange per stream.
enum HTTP2StreamFuzz {
    static func run(_ bytes: UnsafeRawBufferPointer) {
        guard let mode = bytes.first else { return }
        var events = HTTPStreamFuzz.events(bytes)
        let handshake = mode & 1 == 0
        if handshake {
            let preface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
            events.insert(.data(.clientToServer, preface, 1_000), at: 0)
        }
        let close: CloseReason? = [CloseReason.fin, .reset(by: .clientToServer), nil][Int(mode >> 1) % 3]
        let whole = HTTPStreamFuzz.feed(events, handshake: handshake, close: close, cuts: nil)
        var cuts = Cuts(seed: bytes)
        for maxPiece in [1, 7] {
            let cut = HTTPStreamFuzz.feed(events, handshake: handshake, close: close, cuts: { cuts.next(maxPiece) })
            promise(cut.exchanges == whole.exchanges, "HTTP/2 exchanges depend on the cuts (pieces up to \(maxPiece)):\n\(whole.exchanges)\n---\n\(cut.exchanges)")
            promise(cut.counters == whole.counters, "HTTP/2 counters depend on the cuts (pieces up to \(maxPiece)):\n\(whole.counters.report)\n---\n\(cut.counters.report)")
        }
        let c = whole.counters
        promise(c.exchanges == whole.exchanges.count, "exchange counter \(c.exchanges) != \(whole.exchanges.count) emitted")
        if c.http2.connections > 0 {
            promise(c.http2.streams == whole.exchanges.count, "streams \(c.http2.streams) != exchanges \(whole.exchanges.count)")
            promise(whole.exchanges.allSatisfy { $0.http2 != nil }, "an HTTP/2 connection's exchange without its stream")
        }
    }
}
