/// Why a message could not be parsed. Each error ends the message (flagged malformed) and
/// the direction resynchronises at the next plausible start line.
public enum HTTPParseError: Int, CaseIterable, Sendable {
    case badRequestLine
    case badStatusLine
    case badHeaderLine
    case badContentLength
    case conflictingContentLength
    case unsupportedTransferEncoding
    case badChunkSize
    case badChunkTerminator
    case chunkLineTooLong

    public var name: String {
        switch self {
        case .badRequestLine: "bad-request-line"
        case .badStatusLine: "bad-status-line"
        case .badHeaderLine: "bad-header-line"
        case .badContentLength: "bad-content-length"
        case .conflictingContentLength: "conflicting-content-length"
        case .unsupportedTransferEncoding: "unsupported-transfer-encoding"
        case .badChunkSize: "bad-chunk-size"
        case .badChunkTerminator: "bad-chunk-terminator"
        case .chunkLineTooLong: "chunk-line-too-long"
        }
    }

    public var explanation: String {
        switch self {
        case .badRequestLine: "line where a request line was expected is not METHOD SP target SP HTTP/1.x"
        case .badStatusLine: "line where a status line was expected is not HTTP/1.x NNN reason"
        case .badHeaderLine: "header line without a colon or with a bad name (line skipped, message kept)"
        case .badContentLength: "Content-Length is not a decimal number"
        case .conflictingContentLength: "several Content-Length values that differ"
        case .unsupportedTransferEncoding: "request Transfer-Encoding does not end in chunked (cannot be framed)"
        case .badChunkSize: "chunk-size line is not hexadecimal"
        case .badChunkTerminator: "chunk data not followed by CRLF"
        case .chunkLineTooLong: "chunk-size line longer than the cap"
        }
    }

    /// Errors that end the message; the others are noted and parsing goes on.
    var isFatal: Bool { self != .badHeaderLine }
}

/// Everything the analyzer counted. Every anomaly is named and counted, never silent.
public struct HTTPCounters: Sendable, Equatable {
    public var connections = 0
    public var httpConnections = 0
    public var requests = 0
    /// Final (non-1xx) responses.
    public var responses = 0
    /// Exchange records emitted (answered, unanswered and orphan responses).
    public var exchanges = 0
    /// Exchanges with both a request and a response.
    public var pairedExchanges = 0
    public var unansweredRequests = 0
    /// Of the unanswered requests: those whose response was presumably lost in a gap.
    public var lostInGap = 0
    public var responsesWithoutRequest = 0
    /// Malformed first request lines kept as requests because the server answered them.
    public var malformedRequestsKept = 0
    public var parseErrors = [Int](repeating: 0, count: HTTPParseError.allCases.count)
    public var resyncsAfterGap = 0
    public var resyncsAfterError = 0
    /// Bytes skipped while looking for a start line after a gap or an error.
    public var resyncSkippedBytes: Int64 = 0
    /// Connections picked up mid-stream whose first message boundary was found by scanning.
    public var midstreamConnections = 0
    /// Mid-stream connections whose client and server were swapped because requests flowed
    /// from the side taken for the server.
    public var midstreamRolesSwapped = 0
    public var gaps = 0
    public var gapBytes: Int64 = 0
    /// Gaps that fell inside a message (head or body), not between messages.
    public var gapsInsideMessages = 0
    /// Gaps inside a body of known length: the framing was kept, the body is short of bytes.
    public var bodiesTruncatedByGap = 0
    public var nonHTTPConnections = 0
    public var tlsConnections = 0
    /// Connections picked up mid-stream where no HTTP message was ever found.
    public var unknownConnections = 0
    public var tunnels = 0
    public var tunnelsWithTLS = 0
    public var headerLimitHits = 0
    public var pipelinedRequests = 0
    public var continueResponses = 0
    /// 1xx responses other than 100 and 101.
    public var otherInterimResponses = 0
    public var interimWithoutRequest = 0
    public var headResponses = 0
    public var chunkedMessages = 0
    public var closeDelimitedResponses = 0
    public var transferEncodingAndContentLength = 0
    public var obsFoldedHeaders = 0
    public var incompleteRequests = 0
    public var incompleteResponses = 0
    public var queueOverflows = 0
    /// Responses to requests the queue's cap emitted early: emitted on their own, flagged.
    public var responsesToOverflowedRequests = 0
    /// Data events for a connection that was never opened (contract violation upstream).
    public var eventsForUnknownConnections = 0
    /// The HTTP/2 parser's counters (reported as `http2-…` and `grpc-…`).
    public var http2 = HTTP2Counters()
    /// The TLS reader's counters (reported as `tls-…`).
    public var tls = TLSCounters()

    public init() {}

    public subscript(error: HTTPParseError) -> Int {
        get { parseErrors[error.rawValue] }
        set { parseErrors[error.rawValue] = newValue }
    }

    public var parseErrorsTotal: Int { parseErrors.reduce(0, +) }

    /// Named non-zero counters, for reports: (name, count, explanation).
    public var report: [(name: String, count: Int, explanation: String)] {
        var out: [(String, Int, String)] = []
        func add(_ name: String, _ c: Int, _ why: String) { if c > 0 { out.append((name, c, why)) } }
        func add(_ name: String, _ c: Int64, _ why: String) { if c > 0 { out.append((name, Int(c), why)) } }
        add("connections", connections, "connections opened")
        add("http-connections", httpConnections, "connections on which HTTP/1.x was parsed")
        add("requests", requests, "request heads parsed (and malformed first request lines kept)")
        add("responses", responses, "final (non-1xx) response heads parsed")
        add("exchanges", exchanges, "exchange records emitted (paired, unanswered and orphan)")
        add("paired-exchanges", pairedExchanges, "exchanges with both a request and its response")
        add("unanswered-requests", unansweredRequests, "requests without a response")
        add("lost-in-gap", lostInGap, "unanswered requests whose response was presumably lost in a capture gap")
        add("responses-without-request", responsesWithoutRequest, "responses whose request was not seen")
        add("malformed-requests-kept", malformedRequestsKept, "malformed first request lines kept as requests (their first bytes, escaped) because the server answered them")
        for e in HTTPParseError.allCases {
            add("parse-error:\(e.name)", self[e], e.explanation)
        }
        add("resyncs-after-gap", resyncsAfterGap, "message boundary found again after a gap")
        add("resyncs-after-error", resyncsAfterError, "message boundary found again after a parse error")
        add("resync-skipped-bytes", resyncSkippedBytes, "bytes skipped while looking for a request or status line")
        add("gaps", gaps, "gaps in reassembled streams")
        add("gap-bytes", gapBytes, "bytes lost in gaps")
        add("gaps-inside-messages", gapsInsideMessages, "gaps that fell inside a message head or body")
        add("bodies-truncated-by-gap", bodiesTruncatedByGap, "bodies of known length that lost bytes to a gap (framing kept)")
        add("midstream-connections", midstreamConnections, "connections picked up mid-stream (scanned for a message boundary)")
        add("midstream-roles-swapped", midstreamRolesSwapped, "mid-stream connections whose client and server were swapped (requests came from the side taken for the server)")
        add("non-http-connections", nonHTTPConnections, "connections whose first bytes are not HTTP/1.x; not parsed")
        add("tls-connections", tlsConnections, "connections starting with a TLS handshake (or TLS records, picked up mid-way): read as records and turns, not decrypted")
        add("unknown-connections", unknownConnections, "mid-stream connections where no HTTP message was found")
        add("tunnels", tunnels, "CONNECT or Upgrade: the rest of the connection is a tunnel (bytes ignored)")
        add("tunnels-with-tls", tunnelsWithTLS, "tunnels whose client bytes start with a TLS ClientHello")
        add("header-limit-hits", headerLimitHits, "header blocks larger than the cap; message treated as malformed")
        add("pipelined-requests", pipelinedRequests, "requests sent while an earlier one was still unanswered")
        add("100-continue", continueResponses, "100 Continue interim responses")
        add("other-interim-responses", otherInterimResponses, "1xx interim responses other than 100 and 101")
        add("interim-without-request", interimWithoutRequest, "1xx interim responses with no request to attach to")
        add("head-responses", headResponses, "responses to HEAD (framed without body)")
        add("chunked-messages", chunkedMessages, "messages with a chunked body")
        add("close-delimited-responses", closeDelimitedResponses, "responses whose body runs to the connection's end")
        add("te-and-cl", transferEncodingAndContentLength, "messages with both Transfer-Encoding and Content-Length (smuggling indicator)")
        add("obs-folded-headers", obsFoldedHeaders, "header continuation lines joined (obs-fold)")
        add("incomplete-requests", incompleteRequests, "requests cut by a gap, an error, a cap or the connection's end")
        add("incomplete-responses", incompleteResponses, "responses cut by a gap, an error, a cap or the connection's end")
        add("queue-overflows", queueOverflows, "requests emitted unanswered because too many were outstanding (the cap: maxOutstandingRequests per connection)")
        add("queue-overflow-responses", responsesToOverflowedRequests, "responses to those requests, emitted on their own (flagged queue-overflow) rather than paired with a later request")
        add("events-for-unknown-connections", eventsForUnknownConnections, "stream events for a connection never opened")
        out.append(contentsOf: http2.report)
        out.append(contentsOf: tls.report)
        return out
    }
}
