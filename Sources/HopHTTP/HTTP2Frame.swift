// HTTP/2 framing (RFC 9113 §4, §6): the connection preface, the 9-byte frame header, the
// frame types, and which headers are plausible enough to trust as a frame boundary when a
// direction is picked up mid-way or after a capture gap.

/// The client connection preface: `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n` (RFC 9113 §3.4).
let http2Preface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

/// The frame types of RFC 9113 §6 (others are extensions: skipped and counted).
public enum HTTP2FrameType: UInt8, CaseIterable, Sendable {
    case data = 0
    case headers = 1
    case priority = 2
    case rstStream = 3
    case settings = 4
    case pushPromise = 5
    case ping = 6
    case goAway = 7
    case windowUpdate = 8
    case continuation = 9

    public var name: String {
        switch self {
        case .data: "DATA"
        case .headers: "HEADERS"
        case .priority: "PRIORITY"
        case .rstStream: "RST_STREAM"
        case .settings: "SETTINGS"
        case .pushPromise: "PUSH_PROMISE"
        case .ping: "PING"
        case .goAway: "GOAWAY"
        case .windowUpdate: "WINDOW_UPDATE"
        case .continuation: "CONTINUATION"
        }
    }

    /// Flag bits the type defines (others must be zero to trust a boundary).
    var definedFlags: UInt8 {
        switch self {
        case .data: HTTP2Flags.endStream | HTTP2Flags.padded
        case .headers: HTTP2Flags.endStream | HTTP2Flags.endHeaders | HTTP2Flags.padded | HTTP2Flags.priority
        case .settings, .ping: HTTP2Flags.ack
        case .pushPromise: HTTP2Flags.endHeaders | HTTP2Flags.padded
        case .continuation: HTTP2Flags.endHeaders
        case .priority, .rstStream, .goAway, .windowUpdate: 0
        }
    }
}

enum HTTP2Flags {
    static let endStream: UInt8 = 0x1
    static let ack: UInt8 = 0x1
    static let endHeaders: UInt8 = 0x4
    static let padded: UInt8 = 0x8
    static let priority: UInt8 = 0x20
}

/// Why a frame was counted as bad. Each is named in the counters; the direction resumes at the
/// next boundary it can trust (a length field it cannot trust) or after the frame (a frame
/// whose length is sound but whose content is not).
public enum HTTP2FrameError: Int, CaseIterable, Sendable {
    /// The length is above the largest frame size either side allowed: the boundary is lost.
    case frameTooLarge
    /// A type-specific rule broken (stream 0 for a stream frame, a fixed length not met…).
    case badFrameForType
    /// Padding longer than the frame.
    case badPadding
    /// A CONTINUATION without a header block open, or another frame inside one.
    case badContinuation
    /// Header block the HPACK decoder (nghttp2's inflater) could not decode with a table it
    /// trusts (malformed block).
    case badHeaderBlock
    /// A header block larger than `HTTPConfiguration.maxHeaderBytes`: skipped.
    case headerBlockTooLarge

    public var name: String {
        switch self {
        case .frameTooLarge: "frame-too-large"
        case .badFrameForType: "bad-frame-for-type"
        case .badPadding: "bad-padding"
        case .badContinuation: "bad-continuation"
        case .badHeaderBlock: "bad-header-block"
        case .headerBlockTooLarge: "header-block-too-large"
        }
    }

    public var explanation: String {
        switch self {
        case .frameTooLarge: "HTTP/2 frame length above the largest frame size allowed (boundary lost; resynchronised)"
        case .badFrameForType: "HTTP/2 frame breaking its type's rules (stream id, fixed length); skipped"
        case .badPadding: "HTTP/2 frame whose padding is longer than its payload; skipped"
        case .badContinuation: "HTTP/2 CONTINUATION without an open header block, or another frame inside one"
        case .badHeaderBlock: "HTTP/2 header block the HPACK decoder (nghttp2) rejected although its table was intact"
        case .headerBlockTooLarge: "HTTP/2 header block larger than the header cap; skipped"
        }
    }
}

/// A frame's 9-byte header.
struct HTTP2FrameHeader: Equatable {
    var length: Int
    var type: UInt8
    var flags: UInt8
    var streamID: UInt32
    /// The reserved bit of the stream id field.
    var reserved: Bool

    static let size = 9

    /// Reads the header at `offset` of `buf` (which must hold 9 bytes from there).
    @inline(__always)
    init(_ buf: UnsafeRawBufferPointer, at offset: Int) {
        length = Int(buf[offset]) << 16 | Int(buf[offset + 1]) << 8 | Int(buf[offset + 2])
        type = buf[offset + 3]
        flags = buf[offset + 4]
        let s = UInt32(buf[offset + 5]) << 24 | UInt32(buf[offset + 6]) << 16 | UInt32(buf[offset + 7]) << 8 | UInt32(buf[offset + 8])
        reserved = s & 0x8000_0000 != 0
        streamID = s & 0x7fff_ffff
    }

    init(length: Int, type: UInt8, flags: UInt8, streamID: UInt32) {
        self.length = length
        self.type = type
        self.flags = flags
        self.streamID = streamID
        reserved = false
    }

    var known: HTTP2FrameType? { HTTP2FrameType(rawValue: type) }

    /// Whether the type-specific rules hold (stream id, fixed lengths). Unknown types pass.
    var obeysTypeRules: Bool {
        guard let t = known else { return true }
        switch t {
        case .data, .headers, .continuation: return streamID != 0
        case .priority: return streamID != 0 && length == 5
        case .rstStream: return streamID != 0 && length == 4
        case .settings: return streamID == 0 && length % 6 == 0 && (flags & HTTP2Flags.ack == 0 || length == 0)
        case .pushPromise: return streamID != 0 && length >= 4
        case .ping: return streamID == 0 && length == 8
        case .goAway: return streamID == 0 && length >= 8
        case .windowUpdate: return length == 4
        }
    }

    /// Strict enough to trust as a frame boundary found by scanning: a known type, only its
    /// defined flags, the reserved bit clear, its type's rules, a length within `maxFrameSize`.
    func trustworthy(maxFrameSize: Int) -> Bool {
        guard let t = known, !reserved, length <= maxFrameSize, flags & ~t.definedFlags == 0 else { return false }
        return obeysTypeRules
    }
}

/// Finding a frame boundary to trust in bytes that start anywhere (a mid-way pickup, the
/// bytes after a gap).
enum HTTP2BoundaryScan {
    /// The smallest largest-frame-size (RFC 9113 §6.5.2); what a scan assumes when no SETTINGS
    /// were seen.
    static let defaultMaxFrameSize = 16_384

    /// Where a scan of bytes without a known boundary stands.
    enum Scan: Equatable {
        /// A boundary to trust at this offset.
        case found(Int)
        /// Every offset before this one is no boundary; from it on, more bytes are needed.
        case needMore(Int)
    }

    /// The first offset from which `minFrames` trustworthy frame headers chain (each the
    /// previous one's end). Judged only on bytes present, and an offset that needs more bytes
    /// stops the scan: the answer depends on the bytes, never on how they were cut.
    static func firstBoundary(in buf: UnsafeRawBufferPointer, maxFrameSize: Int, minFrames: Int = 2) -> Scan {
        var o = 0
        while o < buf.count {
            switch chainVerdict(buf, from: o, maxFrameSize: maxFrameSize, minFrames: minFrames) {
            case true?: return .found(o)
            case nil: return .needMore(o)
            case false?: o += 1
            }
        }
        return .needMore(o)
    }

    /// Whether `minFrames` trustworthy headers chain from `from`; nil: more bytes needed.
    static func chainVerdict(_ buf: UnsafeRawBufferPointer, from: Int, maxFrameSize: Int, minFrames: Int) -> Bool? {
        var o = from
        for _ in 0..<minFrames {
            guard o + HTTP2FrameHeader.size <= buf.count else { return nil }
            let h = HTTP2FrameHeader(buf, at: o)
            guard h.trustworthy(maxFrameSize: maxFrameSize) else { return false }
            o += HTTP2FrameHeader.size + h.length
        }
        return true
    }

    /// Whether a mid-stream connection's first bytes (of one direction, so far) are HTTP/2
    /// frames: two trustworthy frame headers chained from the first byte. Nil: too few bytes
    /// to say (the verdict never depends on how the bytes were cut).
    static func midstreamVerdict(_ buf: UnsafeRawBufferPointer) -> Bool? {
        chainVerdict(buf, from: 0, maxFrameSize: defaultMaxFrameSize, minFrames: 2)
    }
}
