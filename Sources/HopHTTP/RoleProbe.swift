import HopFlows

/// The first bytes of a connection picked up mid-stream, held until they show which side is the
/// client: a status line from the side taken for the client, or a request line from the side
/// taken for the server, means the roles are the other way round. The bytes are held (never
/// more than `window`) rather than judged chunk by chunk, so the verdict does not depend on
/// where the capture cut them.
struct RoleProbe {
    enum Verdict { case undecided, reversed, asIs }

    /// Bytes needed at most for a verdict: a status line's "HTTP/1.x NNN", a method and a space.
    static let window = 16

    let direction: FlowDirection
    /// The bytes held, in one piece for the verdict.
    private(set) var held: [UInt8] = []
    /// The same bytes as the events that brought them, with their times: parsed as they came,
    /// so that a message's times do not depend on which events the probe held.
    private(set) var events: [(bytes: [UInt8], first: Int64, last: Int64)] = []

    init(direction: FlowDirection) {
        self.direction = direction
    }

    /// The verdict on the held bytes followed by `more`.
    func verdict(adding more: UnsafeRawBufferPointer) -> Verdict {
        let count = held.count + more.count
        return Self.verdict(direction: direction, count: count) { $0 < held.count ? held[$0] : more[$0 - held.count] }
    }

    /// Holds `more` (only while the verdict is undecided: less than `window` bytes in all).
    mutating func hold(_ more: UnsafeRawBufferPointer, first: Int64, last: Int64) {
        held.append(contentsOf: more)
        events.append((Array(more), first, last))
    }

    /// The verdict on a prefix of one direction's bytes. Once decided, a longer prefix gives
    /// the same verdict.
    static func verdict(direction: FlowDirection, count: Int, _ byte: (Int) -> UInt8) -> Verdict {
        if direction == .clientToServer {
            // "HTTP/1.x NNN" from the side taken for the client.
            let pattern = Array("HTTP/1.x ".utf8)
            for k in 0..<min(count, pattern.count) where k != 7 && byte(k) != pattern[k] { return .asIs }
            return count >= 12 ? .reversed : .undecided
        }
        // A known method and a space from the side taken for the server.
        var k = 0
        while k < count && k < window && byte(k) != 0x20 { k += 1 }
        if k < count && k < window {
            guard k > 0 else { return .asIs }
            var method = [UInt8]()
            for i in 0..<k { method.append(byte(i)) }
            return method.withUnsafeBytes { isKnownMethod($0, 0, k) } ? .reversed : .asIs
        }
        if k >= window { return .asIs }
        // No space yet: undecided while the bytes are a known method or the start of one.
        let canStartMethod = knownMethods.contains { m in m.count >= count && (0..<count).allSatisfy { m[$0] == byte($0) } }
        return canStartMethod ? .undecided : .asIs
    }
}
