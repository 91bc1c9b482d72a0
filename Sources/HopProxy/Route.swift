// Where one accepted connection goes: inbound to the app, outbound to its original
// destination, or nowhere (a connection straight to the proxy's own listener).
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// State shared by every connection of one proxy: configuration, the access log, the
/// connection count and the sessions to tell when draining.
final class ProxyShared: Sendable {
    let configuration: ProxyConfiguration
    let accessLog: AccessLog
    let podAddresses: Set<String>
    private let connections = LockedBox<(count: Int, sessions: [ObjectIdentifier: SessionHandle], draining: Bool)>(
        (0, [:], false))

    init(configuration: ProxyConfiguration, accessLog: AccessLog) {
        self.configuration = configuration
        self.accessLog = accessLog
        podAddresses = Set(configuration.podAddresses)
    }

    /// Registers an accepted connection; false when the cap is reached or the proxy drains.
    func admit(_ session: SessionHandle) -> (admitted: Bool, open: Int) {
        connections.withLock { state in
            if state.draining || state.count >= configuration.maxConnections { return (false, state.count) }
            state.count += 1
            state.sessions[session.id] = session
            return (true, state.count)
        }
    }

    func release(_ id: ObjectIdentifier) {
        connections.withLock { state in
            if state.sessions.removeValue(forKey: id) != nil { state.count -= 1 }
        }
    }

    var openConnections: Int { connections.withLock { $0.count } }

    /// Marks the proxy as draining and returns the open connections.
    func startDraining() -> [SessionHandle] {
        connections.withLock { state in
            state.draining = true
            return Array(state.sessions.values)
        }
    }

    var isDraining: Bool { connections.withLock { $0.draining } }

    /// Idle keep-alive connections closed to make room, and when the last line said so.
    private let reclaimed = LockedBox<(total: Int, unreported: Int, reportedAt: UInt64, flushPending: Bool)>((0, 0, 0, false))

    /// Counts idle connections closed to make room; says so on stderr at most once a second
    /// (what a second holds back is said a second later, by a timer on `reactor`).
    func noteReclaimed(_ count: Int, why: String, on reactor: Reactor) {
        let now = monotonicNanos()
        let (line, scheduleFlush) = reclaimed.withLock { r -> (String?, Bool) in
            r.total += count
            r.unreported += count
            guard r.reportedAt == 0 || now &- r.reportedAt >= 1_000_000_000 else {
                defer { r.flushPending = true }
                return (nil, !r.flushPending)
            }
            defer { r.unreported = 0; r.reportedAt = now }
            return ("hoptrace proxy: closed \(r.unreported) idle keep-alive connection(s) to make room (\(why)); \(r.total) so far", false)
        }
        if let line { writeDiagnostic(line) }
        if scheduleFlush {
            reactor.schedule(in: 1_000_000_000) { [self] in
                let held = reclaimed.withLock { r -> (Int, Int) in
                    r.flushPending = false
                    return (r.unreported, r.total)
                }
                if held.0 > 0 { noteReclaimed(0, why: why, on: reactor) }
            }
        }
    }

    var reclaimedIdleConnections: Int { reclaimed.withLock { $0.total } }

    /// Logs one record; `reactor` (the connection's) delays the batch's write a little.
    func log(_ record: AccessRecord, on reactor: Reactor? = nil) {
        accessLog.write(record, on: reactor)
    }
}

/// Something that serves an accepted connection and can be told to drain.
protocol DrainableSession: AnyObject {
    /// Called on the session's reactor: finish the request in flight, then close.
    func drainRequested()
}

/// An accepted connection's session as the shared table keeps it: drained on its own reactor.
struct SessionHandle: @unchecked Sendable {
    // @unchecked: `session` is only touched on `reactor`'s thread (through `execute`).
    let id: ObjectIdentifier
    let reactor: Reactor
    let session: DrainableSession

    init(_ session: DrainableSession, on reactor: Reactor) {
        id = ObjectIdentifier(session)
        self.reactor = reactor
        self.session = session
    }

    func drain() {
        let handle = self
        reactor.execute { handle.session.drainRequested() }
    }
}


struct Route: Sendable {
    var client: SocketAddress?
    var local: SocketAddress?
    /// From SO_ORIGINAL_DST, or the local address when the kernel has no NAT entry.
    var originalDestination: SocketAddress
    var redirected: Bool
    var direction: Direction
    /// Where the proxy connects; nil when the connection would loop back to the proxy.
    var upstream: SocketAddress?
    /// The address to bind before connecting (current layout, inbound).
    var source: SocketAddress?
    /// The addresses as the access log spells them (formatted once per connection).
    var clientText: String?
    var localText: String?
    var originalDestinationText: String

    /// A fresh access-log record for this connection.
    func record() -> AccessRecord {
        var r = AccessRecord()
        r.client = clientText
        r.local = localText
        r.originalDestination = originalDestinationText
        r.direction = direction
        return r
    }

    /// Decides the route of an accepted connection.
    static func make(
        client: SocketAddress?, local: SocketAddress?, originalDestination nat: SocketAddress?,
        shared: ProxyShared
    ) -> Route? {
        guard let local else { return nil }
        let target = nat ?? local
        guard let port = target.port else { return nil }
        let config = shared.configuration
        let host = target.hostKey
        var route = Route(
            client: client, local: local, originalDestination: target,
            redirected: nat != nil && nat != local, direction: .outbound, upstream: target, source: nil,
            clientText: client?.hopDescription, localText: local.hopDescription,
            originalDestinationText: target.hopDescription)
        let isPodAddress = shared.podAddresses.contains(host)
        // A connection straight to the listener (no NAT entry, or a NAT entry that points at the
        // proxy itself) would loop: the proxy would connect to itself, forever.
        let ownAddress = isPodAddress || target.isLoopback || host == local.hostKey
        if ownAddress && config.listenPorts.contains(port) {
            route.upstream = nil
            route.direction = .inbound
            return route
        }
        if isPodAddress {
            route.direction = .inbound
            let isV6: Bool
            if case .v6 = target { isV6 = true } else { isV6 = false }
            switch config.layout {
            case .istio2018:
                route.upstream = try? SocketAddress(ipAddress: isV6 ? "::1" : "127.0.0.1", port: port)
            case .istioCurrent:
                route.upstream = target
                route.source = try? SocketAddress(
                    ipAddress: isV6 ? "::6" : config.inboundSourceAddress, port: 0)
            }
        }
        return route
    }

    var loopMessage: String {
        let why = redirected
            ? "its original destination \(originalDestination.hopDescription) is the proxy itself"
            : "it was not redirected (no SO_ORIGINAL_DST entry) and its destination \(originalDestination.hopDescription) is the proxy's own listener"
        return "hoptrace proxy: refusing to forward a connection to itself: \(why)"
    }
}

/// How an upstream connection attempt or connection failed, for the 503 body and the log.
enum UpstreamFailure {
    case refused, timedOut, reset, closed, other(String)

    init(errno code: CInt) {
        switch code {
        case ECONNREFUSED: self = .refused
        case ECONNRESET, EPIPE: self = .reset
        case ETIMEDOUT: self = .timedOut
        default: self = .other(String(cString: strerror(code)))
        }
    }

    var token: String {
        switch self {
        case .refused: return "upstream_refused"
        case .timedOut: return "upstream_connect_timeout"
        case .reset: return "upstream_reset"
        case .closed: return "upstream_closed"
        case .other: return "upstream_failed"
        }
    }

    func phrase(connectTimeoutSeconds: Double) -> String {
        switch self {
        case .refused: return "refused the connection"
        case .timedOut:
            return "did not accept the connection within \(connectTimeoutSeconds) s (--connect-timeout)"
        case .reset: return "reset the connection before responding"
        case .closed: return "closed the connection before responding"
        case .other(let s): return "could not be reached: \(s)"
        }
    }
}
