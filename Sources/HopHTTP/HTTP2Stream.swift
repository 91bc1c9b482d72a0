// One HTTP/2 stream while it is open, and the gRPC message framing of its DATA.

/// Counts gRPC's length-prefixed messages (1 flag byte, 4 length bytes, the message) in one
/// direction's DATA payload, across frames.
struct GRPCMessageFramer {
    /// Prefix bytes still to read (5: between messages).
    private var prefixLeft = 5
    private var length: UInt32 = 0
    private var messageLeft = 0
    private(set) var messages = 0
    /// A gap cut the framing: counting stopped.
    var lost = false

    mutating func feed(_ p: UnsafeRawBufferPointer) {
        guard !lost else { return }
        var i = 0
        let n = p.count
        while i < n {
            if messageLeft > 0 {
                let t = min(messageLeft, n - i)
                messageLeft -= t
                i += t
                continue
            }
            if prefixLeft == 5 { messages += 1 }
            if prefixLeft <= 4 { length = length << 8 | UInt32(p[i]) }
            i += 1
            prefixLeft -= 1
            if prefixLeft == 0 {
                messageLeft = Int(length)
                length = 0
                prefixLeft = 5
            }
        }
    }
}

/// The request or the response side of a stream as it is being read.
struct HTTP2Side {
    /// The decoded fields of the first (non-1xx) header block, pseudo-header fields included,
    /// packed as the message will carry them (no copy at emission).
    var fields: HTTPHeaders?
    var state: HTTP2HeaderBlockState = .none
    var trailers: HTTPHeaders?
    var firstTimestamp: Int64?
    var lastTimestamp: Int64?
    var ended = false
    var bodyLength: Int64 = 0
    var bodyPrefix: [UInt8] = []
    var dataFrames = 0
    var grpc = GRPCMessageFramer()
    /// A gap fell in this direction while the side was open.
    var gap = false

    func value(_ name: StaticString) -> String? { fields?.value(exactly: name) }
}

/// A stream from its first frame to its emission.
final class HTTP2Stream {
    let id: UInt32
    let sequence: Int
    /// Streams open on the connection when this one began.
    let position: Int
    // `@exclusivity(unchecked)` here and on HTTP2Connection's `dirs` and `streams` (one thread
    // reads and writes them, for every frame): swift_beginAccess was 9.4% of `http` on the
    // h2c benchmark capture (perf); with them `http` on it went 0.46 -> 0.41 s (-11%; 5 runs
    // each, /usr/bin/time, release build, 60,006 streams).
    @exclusivity(unchecked) var request = HTTP2Side()
    @exclusivity(unchecked) var response = HTTP2Side()
    var interim: [HTTPInterimResponse] = []
    var reset: HTTP2Reset?
    var padding: Int64 = 0
    var pushed = false
    var note: String?
    var isGRPC = false
    /// Stream 1 of an `Upgrade: h2c`: the HTTP/1.1 request it answers.
    var upgradedRequest: HTTPRequest?
    var grpcStatusCode: Int?
    var grpcMessage: String?
    var headerLimit = false

    init(id: UInt32, sequence: Int, position: Int) {
        self.id = id
        self.sequence = sequence
        self.position = position
    }

    var finished: Bool { reset != nil || (request.ended && response.ended) }

    subscript(side d: Int) -> HTTP2Side {
        get { d == 0 ? request : response }
        _modify {
            if d == 0 { yield &request } else { yield &response }
        }
    }

    /// A note about lost headers, the first one kept.
    func noteOnce(_ s: String) { if note == nil { note = s } }
}
