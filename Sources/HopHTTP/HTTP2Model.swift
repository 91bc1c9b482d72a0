// What an HTTP/2 stream adds to its exchange: one value, `HTTPExchange.http2`, nil for
// HTTP/1.x. The request and response themselves are the ordinary `HTTPRequest` and
// `HTTPResponse` (method, target and status from the pseudo-header fields, which stay in the
// headers in wire order), so everything that reads exchanges reads HTTP/2 ones too.

/// Whether a header block of the stream could be read.
public enum HTTP2HeaderBlockState: String, Sendable, Hashable {
    /// Decoded (its fields are the request's or response's headers).
    case decoded
    /// Seen but not decodable with a table hoptrace can trust: the HPACK dynamic table was
    /// lost (mid-way pickup, a capture gap, a block skipped before). Never guessed.
    case unrecoverable
    /// Not in the capture (the stream began before it, or the block fell in a gap).
    case notCaptured = "not-captured"
    /// None was sent yet (no response when the capture or the connection ended).
    case none
}

/// A stream ended by RST_STREAM.
public struct HTTP2Reset: Sendable, Hashable {
    /// The error code (RFC 9113 §7).
    public var code: UInt32
    /// True when the client sent it.
    public var byClient: Bool
    /// Capture time of the RST_STREAM frame (0 when not known).
    public var at: Int64

    public init(code: UInt32, byClient: Bool, at: Int64 = 0) {
        self.code = code
        self.byClient = byClient
        self.at = at
    }

    public var codeName: String {
        switch code {
        case 0x0: "NO_ERROR"
        case 0x1: "PROTOCOL_ERROR"
        case 0x2: "INTERNAL_ERROR"
        case 0x3: "FLOW_CONTROL_ERROR"
        case 0x4: "SETTINGS_TIMEOUT"
        case 0x5: "STREAM_CLOSED"
        case 0x6: "FRAME_SIZE_ERROR"
        case 0x7: "REFUSED_STREAM"
        case 0x8: "CANCEL"
        case 0x9: "COMPRESSION_ERROR"
        case 0xa: "CONNECT_ERROR"
        case 0xb: "ENHANCE_YOUR_CALM"
        case 0xc: "INADEQUATE_SECURITY"
        case 0xd: "HTTP_1_1_REQUIRED"
        default: "0x" + String(code, radix: 16)
        }
    }
}

/// gRPC, as a view of an HTTP/2 stream whose request's content-type is application/grpc….
public struct GRPCCall: Sendable, Hashable {
    /// From the path `/package.Service/Method`; nil when the path is not of that form.
    public var service: String?
    public var method: String?
    /// grpc-status (trailers, or the headers of a trailers-only response); nil when not seen.
    public var status: Int?
    public var message: String?
    /// Length-prefixed messages begun in each direction.
    public var requestMessages: Int
    public var responseMessages: Int
    /// True when a gap cut a direction's message framing (the counts are then lower bounds).
    public var framingLost: Bool

    /// The name of a grpc-status code.
    public static func statusName(_ code: Int) -> String {
        let names = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
                     "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
                     "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
                     "UNAUTHENTICATED"]
        return code >= 0 && code < names.count ? names[code] : String(code)
    }

    /// service and method of `/package.Service/Method`.
    static func split(path: String) -> (service: String, method: String)? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].isEmpty, !parts[1].isEmpty, !parts[2].isEmpty else { return nil }
        return (String(parts[1]), String(parts[2]))
    }
}

/// One HTTP/2 stream's protocol facts (immutable, shared: an exchange holds a reference).
public final class HTTP2StreamInfo: Sendable, Hashable, CustomStringConvertible {
    public let streamID: UInt32
    public let requestHeaders: HTTP2HeaderBlockState
    public let responseHeaders: HTTP2HeaderBlockState
    /// Why a block is unrecoverable or not captured (nil when both were decoded).
    public let headersNote: String?
    public let reset: HTTP2Reset?
    /// DATA frames and their payload bytes (padding excluded) in each direction.
    public let requestDataFrames: Int
    public let responseDataFrames: Int
    /// Padding bytes in the stream's DATA and HEADERS frames (both directions).
    public let paddingBytes: Int64
    /// A stream the server pushed (PUSH_PROMISE): its request is the promised one.
    public let pushed: Bool
    public let grpc: GRPCCall?

    public init(streamID: UInt32, requestHeaders: HTTP2HeaderBlockState, responseHeaders: HTTP2HeaderBlockState,
                headersNote: String?, reset: HTTP2Reset?, requestDataFrames: Int, responseDataFrames: Int,
                paddingBytes: Int64, pushed: Bool, grpc: GRPCCall?) {
        self.streamID = streamID
        self.requestHeaders = requestHeaders
        self.responseHeaders = responseHeaders
        self.headersNote = headersNote
        self.reset = reset
        self.requestDataFrames = requestDataFrames
        self.responseDataFrames = responseDataFrames
        self.paddingBytes = paddingBytes
        self.pushed = pushed
        self.grpc = grpc
    }

    public static func == (a: HTTP2StreamInfo, b: HTTP2StreamInfo) -> Bool {
        a.streamID == b.streamID && a.requestHeaders == b.requestHeaders && a.responseHeaders == b.responseHeaders
            && a.headersNote == b.headersNote && a.reset == b.reset && a.requestDataFrames == b.requestDataFrames
            && a.responseDataFrames == b.responseDataFrames && a.paddingBytes == b.paddingBytes
            && a.pushed == b.pushed && a.grpc == b.grpc
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(streamID)
        hasher.combine(requestHeaders)
        hasher.combine(responseHeaders)
        hasher.combine(reset)
        hasher.combine(grpc)
    }

    /// `stream 3`, then what is unusual: ` rst=CANCEL by client`, ` request headers unrecoverable`….
    public var description: String {
        var s = "stream \(streamID)"
        if pushed { s += " pushed" }
        if requestHeaders == .unrecoverable || responseHeaders == .unrecoverable { s += " headers unrecoverable" }
        if requestHeaders == .notCaptured { s += " request headers not captured" }
        if let r = reset { s += " rst=\(r.codeName) by \(r.byClient ? "client" : "server")" }
        return s
    }
}

/// What the HTTP/2 parser counted (part of `HTTPCounters`, reported under `http2-…` names).
public struct HTTP2Counters: Sendable, Equatable {
    /// Connections parsed as HTTP/2: with the client preface, or recognised mid-way.
    public var connections = 0
    public var prefaceConnections = 0
    /// Connections that switched to HTTP/2 by `Upgrade: h2c` (101).
    public var upgradeConnections = 0
    public var midstreamConnections = 0
    /// Streams seen (one exchange each).
    public var streams = 0
    /// Frames by type (RFC 9113 types 0…9), and of unknown (extension) types.
    public var frames = [Int](repeating: 0, count: HTTP2FrameType.allCases.count)
    public var unknownTypeFrames = 0
    public var frameErrors = [Int](repeating: 0, count: HTTP2FrameError.allCases.count)
    /// Header blocks not decoded because the HPACK dynamic table was lost (pickup, gap).
    public var headersUnrecoverable = 0
    /// Streams whose first frames were seen without their opening HEADERS.
    public var streamsWithoutHeaders = 0
    public var resets = 0
    public var goAways = 0
    public var trailers = 0
    public var interimResponses = 0
    /// Directions that lost their frame boundary (gap, a frame too large) and scanned for one.
    public var resyncs = 0
    public var resyncSkippedBytes: Int64 = 0
    public var grpcStreams = 0
    public var grpcMessages = 0
    /// Streams emitted early because too many were open on the connection.
    public var streamCapHits = 0

    public init() {}

    public subscript(type: HTTP2FrameType) -> Int {
        get { frames[Int(type.rawValue)] }
        set { frames[Int(type.rawValue)] = newValue }
    }

    public subscript(error: HTTP2FrameError) -> Int {
        get { frameErrors[error.rawValue] }
        set { frameErrors[error.rawValue] = newValue }
    }

    /// Named non-zero counters, for reports: (name, count, explanation).
    var report: [(name: String, count: Int, explanation: String)] {
        var out: [(String, Int, String)] = []
        func add(_ name: String, _ c: Int, _ why: String) { if c > 0 { out.append((name, c, why)) } }
        add("http2-connections", connections, "connections parsed as HTTP/2 (h2c)")
        add("http2-preface-connections", prefaceConnections, "HTTP/2 connections that began with the client preface (prior knowledge)")
        add("http2-upgrade-connections", upgradeConnections, "connections that switched to HTTP/2 by Upgrade: h2c (101); stream 1 answers the upgraded request")
        add("http2-midstream-connections", midstreamConnections, "HTTP/2 connections recognised mid-way by their frames (HPACK table lost at the start)")
        add("http2-streams", streams, "HTTP/2 streams (one exchange each)")
        for t in HTTP2FrameType.allCases {
            add("http2-frames:\(t.name)", self[t], "HTTP/2 \(t.name) frames")
        }
        add("http2-unknown-type-frames", unknownTypeFrames, "HTTP/2 frames of extension types (skipped)")
        for e in HTTP2FrameError.allCases {
            add("http2-error:\(e.name)", self[e], e.explanation)
        }
        add("http2-headers-unrecoverable", headersUnrecoverable, "HTTP/2 header blocks not decoded: the HPACK dynamic table was lost (mid-way pickup or gap); never guessed")
        add("http2-streams-without-headers", streamsWithoutHeaders, "HTTP/2 streams first seen without their opening HEADERS (begun before the capture or in a gap)")
        add("http2-resets", resets, "HTTP/2 streams ended by RST_STREAM")
        add("http2-goaways", goAways, "HTTP/2 GOAWAY frames")
        add("http2-trailers", trailers, "HTTP/2 trailer blocks")
        add("http2-interim-responses", interimResponses, "HTTP/2 1xx header blocks")
        add("http2-resyncs", resyncs, "HTTP/2 directions that lost the frame boundary (gap, bad length) and found one again by scanning")
        add("http2-resync-skipped-bytes", Int(resyncSkippedBytes), "bytes skipped while looking for an HTTP/2 frame boundary")
        add("grpc-streams", grpcStreams, "HTTP/2 streams carrying gRPC (content-type application/grpc)")
        add("grpc-messages", grpcMessages, "gRPC length-prefixed messages begun (both directions)")
        add("http2-stream-cap-hits", streamCapHits, "HTTP/2 streams emitted early: too many open on one connection (maxOutstandingRequests)")
        return out
    }
}

extension HTTPVersion {
    /// The version of requests and responses read from HTTP/2 streams.
    public static let http2 = HTTPVersion(major: 2, minor: 0)
}
