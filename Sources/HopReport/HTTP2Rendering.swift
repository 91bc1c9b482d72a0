import HopHTTP

/// How every printer shows an HTTP/2 stream (`HTTPExchange.http2`): one short text for the
/// line-oriented and diagram formats, one JSON object (`"http2"`, absent for HTTP/1.x).
public enum HTTP2Rendering {
    /// `h2 stream 3`, then the gRPC call and what is unusual:
    /// `h2 stream 3 grpc helloworld.Greeter/SayHello status 5 NOT_FOUND "msg" msgs 2/1 rst CANCEL by client`.
    public static func text(_ info: HTTP2StreamInfo) -> String {
        "h2 stream \(info.streamID)" + details(info)
    }

    /// The same text written as bytes into a line (`http`'s line: no String for the usual
    /// stream, whose details are empty).
    public static func write(_ info: HTTP2StreamInfo, into b: inout LineBuilder) {
        b.ascii("h2 stream ")
        b.int(info.streamID)
        let rest = details(info)
        if !rest.isEmpty { b.text(rest) }
    }

    /// What follows `h2 stream N`: empty unless the stream was pushed, is gRPC or lost something.
    static func details(_ info: HTTP2StreamInfo) -> String {
        var s = ""
        if info.pushed { s += " pushed" }
        if let g = info.grpc {
            s += " grpc"
            if let svc = g.service, let m = g.method { s += " \(svc)/\(m)" }
            if let st = g.status { s += " status \(st) \(GRPCCall.statusName(st))" }
            if let m = g.message, !m.isEmpty { s += " \"\(m)\"" }
            s += " msgs \(g.requestMessages)/\(g.responseMessages)"
            if g.framingLost { s += " (framing lost in a gap)" }
        }
        if let r = info.reset { s += " rst \(r.codeName) by \(r.byClient ? "client" : "server")" }
        if info.requestHeaders == .unrecoverable { s += " request headers unrecoverable" }
        if info.responseHeaders == .unrecoverable { s += " response headers unrecoverable" }
        if info.requestHeaders == .notCaptured { s += " request headers not captured" }
        return s
    }

    /// What stands for a request whose fields are not known.
    public static func missingRequest(_ info: HTTP2StreamInfo) -> String {
        switch info.requestHeaders {
        case .unrecoverable: "(request headers unrecoverable: HPACK table lost)"
        case .notCaptured: "(request headers not captured)"
        case .decoded, .none: "(request not seen)"
        }
    }

    /// `"http2": {…}` (only for HTTP/2 exchanges).
    static func write(_ info: HTTP2StreamInfo?, to w: JSONWriter) {
        guard let info else { return }
        w.key("http2")
        w.beginObject()
        w.field("stream", Int(info.streamID))
        w.field("requestHeaders", info.requestHeaders.rawValue)
        w.field("responseHeaders", info.responseHeaders.rawValue)
        w.field("note", info.headersNote)
        w.key("reset")
        if let r = info.reset {
            w.beginObject()
            w.field("code", Int(r.code))
            w.field("name", r.codeName)
            w.field("by", r.byClient ? "client" : "server")
            w.endObject()
        } else {
            w.null()
        }
        w.field("requestDataFrames", info.requestDataFrames)
        w.field("responseDataFrames", info.responseDataFrames)
        w.field("paddingBytes", info.paddingBytes)
        w.field("pushed", info.pushed)
        w.key("grpc")
        if let g = info.grpc {
            w.beginObject()
            w.field("service", g.service)
            w.field("method", g.method)
            w.field("status", g.status)
            w.field("statusName", g.status.map(GRPCCall.statusName))
            w.field("message", g.message)
            w.field("requestMessages", g.requestMessages)
            w.field("responseMessages", g.responseMessages)
            w.field("framingLost", g.framingLost)
            w.endObject()
        } else {
            w.null()
        }
        w.endObject()
    }
}
