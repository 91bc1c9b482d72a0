import HopCapture
import HopFlows
import HopHTTP

/// The HTTP parser over a scripted connection read from the bytes, fed whole and then cut at
/// points taken from the bytes: the exchanges and counters must not depend on the cuts
/// (DirectionParser: "every decision depends only on the bytes").
///
/// Input: byte 0 picks handshake/mid-stream and the close; then records, each a control byte
/// `c` (bit 0: direction, bits 1-2: 3 = a gap, else data; `(c >> 3) * 4 + 1` bytes long)
/// followed, for data, by its bytes.
enum HTTPStreamFuzz {
    enum Event {
        case data(FlowDirection, [UInt8], Int64)
        case gap(FlowDirection, Int, Int64)
    }

    /// The scripted events the bytes after byte 0 describe.
    static func events(_ bytes: UnsafeRawBufferPointer) -> [Event] {
        var events: [Event] = []
        var i = 1
        var t: Int64 = 1_000
        while i < bytes.count {
            let c = bytes[i]
            i += 1
            let dir: FlowDirection = c & 1 == 0 ? .clientToServer : .serverToClient
            let length = Int(c >> 3) * 4 + 1
            t += 1_000
            if (c >> 1) & 3 == 3 {
                events.append(.gap(dir, length, t))
            } else {
                let end = min(bytes.count, i + length)
                if end > i { events.append(.data(dir, Array(bytes[i..<end]), t)) }
                i = end
            }
        }
        return events
    }

    static func run(_ bytes: UnsafeRawBufferPointer) {
        guard let mode = bytes.first else { return }
        let events = events(bytes)
        let handshake = mode & 1 == 0
        let close: CloseReason? = [CloseReason.fin, .reset(by: .clientToServer), nil][Int(mode >> 1) % 3]
        let whole = feed(events, handshake: handshake, close: close, cuts: nil)
        var cuts = Cuts(seed: bytes)
        for maxPiece in [1, 7] {
            let cut = feed(events, handshake: handshake, close: close, cuts: { cuts.next(maxPiece) })
            promise(cut.exchanges == whole.exchanges, "exchanges depend on the cuts (pieces up to \(maxPiece)):\n\(whole.exchanges)\n---\n\(cut.exchanges)")
            promise(cut.counters == whole.counters, "counters depend on the cuts (pieces up to \(maxPiece)):\n\(whole.counters.report)\n---\n\(cut.counters.report)")
        }
        let c = whole.counters
        promise(c.pairedExchanges + c.unansweredRequests == c.requests, "paired + unanswered != requests: \(c.report)")
        promise(c.exchanges == whole.exchanges.count, "exchange counter \(c.exchanges) != \(whole.exchanges.count) emitted")
    }

    static func feed(_ events: [Event], handshake: Bool, close: CloseReason?,
                     cuts: (() -> Int)?) -> (exchanges: [HTTPExchange], counters: HTTPCounters) {
        var out: [HTTPExchange] = []
        let analyzer = HTTPAnalyzer { out.append($0) }
        var connection = Connection(id: ConnectionID(1), client: Endpoint(IPAddress(ipv4: 0xC612_0001), 40000),
                                    server: Endpoint(IPAddress(ipv4: 0xC612_0002), 80), firstTimestamp: 0,
                                    sawHandshake: handshake)
        analyzer.handle(.opened(connection))
        for event in events {
            switch event {
            case .gap(let dir, let length, let t):
                analyzer.handle(.gap(connection.id, dir, length: length, at: t))
            case .data(let dir, let data, let t):
                var start = 0
                while start < data.count {
                    let end = cuts.map { min(data.count, start + $0()) } ?? data.count
                    // A fresh allocation per piece: a parser keeping a pointer would read freed memory.
                    let piece = Array(data[start..<end])
                    piece.withUnsafeBytes { analyzer.handle(.data(connection.id, dir, $0, first: t, last: t)) }
                    start = end
                }
            }
        }
        if let close {
            connection.closeReason = close
            analyzer.handle(.closed(connection))
        } else {
            analyzer.finish()
        }
        return (out, analyzer.counters)
    }
}
