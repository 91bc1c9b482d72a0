import Foundation

/// One request as a sidecar (HAProxy, nginx) logged it: the client's tuple, the request id the
/// sidecar added, and (HAProxy) the source of the upstream connection it went out on.
public struct SidecarLogRecord: Equatable, Sendable {
    public var client: String
    public var requestId: String
    public var method: String
    public var target: String
    public var status: Int
    /// Orders the requests of one client connection: HAProxy's request counter (%rt), nginx's
    /// $connection_requests.
    public var order: Int
    /// Seconds since the epoch, millisecond resolution.
    public var time: Double
    /// HAProxy %bi:%bp (the backend connection's source); nil for nginx.
    public var backendSource: String?
    /// HAProxy's termination state (%tsc), e.g. "----", "CD--".
    public var termination: String?
    /// A connection that sent no (valid) request: HAProxy `<BADREQ>`, nginx 400 without a method.
    public var badRequest: Bool

    public init(client: String, requestId: String, method: String, target: String, status: Int, order: Int, time: Double,
                backendSource: String? = nil, termination: String? = nil, badRequest: Bool = false) {
        self.client = client; self.requestId = requestId; self.method = method; self.target = target; self.status = status
        self.order = order; self.time = time; self.backendSource = backendSource; self.termination = termination
        self.badRequest = badRequest
    }
}

/// One request as the app (the lab's nginx on :80) logged it: the request id the sidecar sent and
/// the tuple of the connection it came on (the sidecar's upstream connection).
public struct AppLogRecord: Equatable, Sendable {
    public var requestId: String
    public var peer: String
    public var method: String
    public var target: String
    public var status: Int
    public var time: Double

    public init(requestId: String, peer: String, method: String, target: String, status: Int, time: Double) {
        self.requestId = requestId; self.peer = peer; self.method = method; self.target = target; self.status = status; self.time = time
    }
}

/// The log formats the lab configures, and their parsers. Every line starts with `hoplab` so
/// that anything else on the same stream (HAProxy's startup warnings) is skipped.
public enum LabLogFormats {
    /// HAProxy `log-format` (in the frontend): client, unique id, backend source, status, method,
    /// URI, request counter, accept date (ms), request date, termination state, HTTP version.
    public static let haproxy = #"hoplab %ci:%cp %ID %bi:%bp %ST %HM %{+Q}HU %rt %Ts.%ms %tr %tsc %HV"#
    /// nginx (the sidecar) `log_format hoplab …`.
    public static let nginxSidecar = #"'hoplab $remote_addr:$remote_port $request_id $connection $connection_requests $status $request_method "$request_uri" $msec $upstream_addr'"#
    /// nginx (the app) `log_format hoplab …`.
    public static let app = #"'hoplab $http_x_request_id $remote_addr:$remote_port $msec $status $request_method "$request_uri" $connection $connection_requests'"#

    static func fields(_ line: Substring) -> [String]? {
        let f = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard f.first == "hoplab" else { return nil }
        return f
    }

    static func unquote(_ s: String) -> String {
        s.count >= 2 && s.hasPrefix("\"") && s.hasSuffix("\"") ? String(s.dropFirst().dropLast()) : s
    }

    static func isMethod(_ s: String) -> Bool {
        !s.isEmpty && s != "-" && s.allSatisfy { $0.isUppercase && $0.isASCII }
    }

    /// HAProxy 2.6 with `LabLogFormats.haproxy`.
    public static func parseHAProxy(_ text: String) -> [SidecarLogRecord] {
        var out: [SidecarLogRecord] = []
        for line in text.split(separator: "\n") {
            guard let f = fields(line), f.count >= 11 else { continue }
            let method = f[5]
            // An HTTP/2 request is logged in absolute form (its :scheme and :authority before
            // :path); the stream itself carries the path: the origin form.
            let uri = f.count > 11 && f[11] == "HTTP/2.0" ? originForm(unquote(f[6])) : unquote(f[6])
            // HAProxy's milliseconds are zero-padded (%ms), so "s.ms" parses as a decimal.
            let bad = line.contains("<BADREQ>") || !isMethod(method)
            // %Ts.%ms is the accept date: the connection's for its first request, the end of
            // the previous request for the next ones on a keep-alive connection.
            out.append(SidecarLogRecord(
                client: f[1], requestId: f[2], method: bad ? method : method, target: uri, status: Int(f[4]) ?? -1,
                order: Int(f[7]) ?? 0, time: Double(f[8]) ?? 0, backendSource: f[3], termination: f[10], badRequest: bad))
        }
        return out
    }

    /// `http://host:port/p?q` → `/p?q`; anything else as it is.
    static func originForm(_ uri: String) -> String {
        guard let scheme = uri.range(of: "://"), uri.hasPrefix("http") else { return uri }
        let rest = uri[scheme.upperBound...]
        guard let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) else { return "/" }
        return rest[slash] == "?" ? "/" + rest[slash...] : String(rest[slash...])
    }

    /// nginx with `LabLogFormats.nginxSidecar`.
    public static func parseNginxSidecar(_ text: String) -> [SidecarLogRecord] {
        var out: [SidecarLogRecord] = []
        for line in text.split(separator: "\n") {
            guard let f = fields(line), f.count >= 9 else { continue }
            let method = f[6]
            let bad = !isMethod(method)
            out.append(SidecarLogRecord(
                client: f[1], requestId: f[2], method: method, target: unquote(f[7]), status: Int(f[5]) ?? -1,
                order: Int(f[4]) ?? 0, time: Double(f[8]) ?? 0, backendSource: nil, termination: nil, badRequest: bad))
        }
        return out
    }

    /// The app's nginx with `LabLogFormats.app`.
    public static func parseApp(_ text: String) -> [AppLogRecord] {
        var out: [AppLogRecord] = []
        for line in text.split(separator: "\n") {
            guard let f = fields(line), f.count >= 7 else { continue }
            out.append(AppLogRecord(requestId: f[1], peer: f[2], method: f[5], target: unquote(f[6]), status: Int(f[4]) ?? -1,
                                    time: Double(f[3]) ?? 0))
        }
        return out
    }
}
