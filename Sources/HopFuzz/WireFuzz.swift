import HopProxy

/// The proxy's framing over a conversation read from the bytes (byte 0 splits them into
/// what the client sent and what the server sent): heads parsed, bodies walked, message after
/// message, as the proxy does. The bytes are fed whole and in pieces; where every message
/// ends, and whether it fails, must not depend on the pieces.
enum WireFuzz {
    struct Outcome: Equatable {
        /// (head length, body bytes, payload bytes, body done) per message.
        var messages: [[Int]] = []
        var error: String?
    }

    static func run(_ bytes: UnsafeRawBufferPointer) {
        guard let split = bytes.first else { return }
        let rest = UnsafeRawBufferPointer(rebasing: bytes[1...])
        let at = rest.isEmpty ? 0 : Int(split) * rest.count / 256
        let requests = UnsafeRawBufferPointer(rebasing: rest[..<at])
        let responses = UnsafeRawBufferPointer(rebasing: rest[at...])
        var cuts = Cuts(seed: bytes)
        for isRequest in [true, false] {
            let stream = isRequest ? requests : responses
            let whole = walk(stream, isRequest: isRequest, piece: { Int.max })
            let cut = walk(stream, isRequest: isRequest, piece: { cuts.next(5) })
            promise(whole == cut, "framing depends on the pieces (\(isRequest ? "requests" : "responses")): \(whole) vs \(cut)")
        }
    }

    /// Reads messages from `stream`; bodies are given `piece()` bytes at a time.
    static func walk(_ stream: UnsafeRawBufferPointer, isRequest: Bool, piece: () -> Int) -> Outcome {
        var outcome = Outcome()
        var at = 0
        while at < stream.count && outcome.messages.count < 64 {
            let rest = UnsafeRawBufferPointer(rebasing: stream[at...])
            let length: Int
            var framing: BodyFraming
            if isRequest {
                switch parseRequestHead(rest) {
                case .incomplete: return outcome
                case .invalid(let why):
                    outcome.error = why
                    return outcome
                case .complete(let head):
                    length = head.length
                    framing = head.isCONNECT ? .none : head.framing
                }
            } else {
                switch parseResponseHead(rest) {
                case .incomplete: return outcome
                case .invalid(let why):
                    outcome.error = why
                    return outcome
                case .complete(let head):
                    length = head.length
                    framing = responseBody(status: head.status, framing: head.framing, requestIsHEAD: false,
                                           requestIsCONNECT: false).framing
                }
            }
            promise(length > 0 && length <= rest.count, "head length \(length) outside 1...\(rest.count)")
            at += length
            var reader = BodyReader(framing)
            var body = 0, payload = 0
            while at < stream.count && !reader.isDone {
                let end = at + min(stream.count - at, piece())
                do {
                    let (consumed, carried) = try reader.read(UnsafeRawBufferPointer(rebasing: stream[at..<end]))
                    promise(consumed >= 0 && consumed <= end - at && carried <= consumed, "read \(consumed)/\(carried) of \(end - at)")
                    body += consumed
                    payload += carried
                    at += consumed
                    if consumed == 0 { break }
                } catch {
                    // Where in the body the error is seen depends on the pieces (bytes read
                    // before it are counted); that it is an error, and which, must not.
                    outcome.messages.append([length, -1, -1, 0])
                    outcome.error = error.description
                    return outcome
                }
            }
            outcome.messages.append([length, body, payload, reader.isDone ? 1 : 0])
            if !reader.isDone { return outcome }
        }
        return outcome
    }
}
