// The listeners: accept, read SO_ORIGINAL_DST, route, sniff; drop privileges; drain.
import CHopSys
import NIOCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A transparent proxy for connections redirected to it by iptables REDIRECT rules.
///
/// Use: `init`, `bind()` (as root: the ports may be privileged and the rules exempt only the
/// proxy's uid), `dropPrivileges()`, `startAccepting()`, then `drain()` to stop.
///
/// One reactor (epoll loop) per thread; every thread has its own listener on every address
/// (SO_REUSEPORT), so the kernel spreads accepted connections over the threads and a
/// connection, its upstream connection and its timers stay on one thread.
public final class TransparentProxy: @unchecked Sendable {
    // @unchecked: `reactors` and `listeners` are set up before the threads start and only
    // read afterwards; the listeners are closed on their own reactors.
    let shared: ProxyShared
    private let reactors: [Reactor]
    private var listeners: [[Listener]] = []
    private let threads = LockedBox<[pthread_t]>([])
    private let started = LockedBox(false)

    public init(configuration: ProxyConfiguration, accessLog: AccessLog) throws {
        shared = ProxyShared(configuration: configuration, accessLog: accessLog)
        reactors = try (0..<max(1, configuration.threads)).map { _ in try Reactor() }
    }

    public var configuration: ProxyConfiguration { shared.configuration }

    /// Binds every listener (not accepting yet). Returns the bound addresses. A failure to bind
    /// an IPv6 address is returned as a warning when some IPv4 listener is bound.
    public func bind() throws -> (bound: [String], warnings: [String]) {
        var bound: [String] = []
        var warnings: [String] = []
        var perReactor: [[Listener]] = reactors.map { _ in [] }
        func closeAll() { for ls in perReactor { for l in ls { l.closeUnregistered() } } }
        for port in shared.configuration.listenPorts {
            for host in shared.configuration.listenAddresses {
                let address: SocketAddress
                do {
                    address = try SocketAddress(ipAddress: host, port: port)
                } catch {
                    closeAll()
                    throw ProxyError("--listen \(host) is not an IP address")
                }
                do {
                    var made: [Listener] = []
                    do {
                        for reactor in reactors { made.append(try Listener(address: address, reactor: reactor)) }
                    } catch {
                        for l in made { l.closeUnregistered() }
                        throw error
                    }
                    for (i, l) in made.enumerated() { perReactor[i].append(l) }
                    bound.append(address.hopDescription)
                } catch {
                    if case .v6 = address {
                        warnings.append("not listening on \(address.hopDescription): \(error)")
                        continue
                    }
                    closeAll()
                    throw ProxyError("cannot listen on \(address.hopDescription): \(error)")
                }
            }
        }
        if bound.isEmpty { throw ProxyError("no listener could be bound") }
        listeners = perReactor
        return (bound, warnings)
    }

    /// Starts accepting on every bound listener: one thread per reactor.
    public func startAccepting() {
        let first = started.withLock { s -> Bool in
            defer { s = true }
            return !s
        }
        guard first else { return }
        let shared = self.shared
        for (i, reactor) in reactors.enumerated() {
            let mine = listeners.indices.contains(i) ? listeners[i] : []
            let peers = reactors.filter { $0 !== reactor }
            reactor.onIdleReclaimed = { [unowned reactor] n, why in shared.noteReclaimed(n, why: why, on: reactor) }
            for listener in mine {
                let l = listener
                l.onAccept = { fd in TransparentProxy.accepted(fd, on: reactor, peers: peers, shared: shared) }
            }
            let box = UnsafeSendable(mine)
            let thread = startThread(name: "hop-proxy-\(i)") {
                for l in box.value { l.start() }
                reactor.run()
            }
            threads.withLock { $0.append(thread) }
        }
    }

    public var openConnections: Int { shared.openConnections }

    /// Stops accepting, tells every connection to finish its request in flight and close,
    /// and waits until they have (or `timeout` passes). Returns how many were still open.
    @discardableResult
    public func drain(timeoutSeconds: Double) -> Int {
        for (i, reactor) in reactors.enumerated() where listeners.indices.contains(i) {
            let box = UnsafeSendable(listeners[i])
            reactor.execute { for l in box.value { l.close() } }
        }
        for session in shared.startDraining() { session.drain() }
        let deadline = monotonicNanos() &+ UInt64(max(0, timeoutSeconds) * 1e9)
        while shared.openConnections > 0 && monotonicNanos() < deadline {
            usleep(20_000)
        }
        shared.accessLog.flush()
        return shared.openConnections
    }

    public func shutdown() {
        for reactor in reactors { reactor.stop() }
        for t in threads.withLock({ $0 }) { pthread_join(t, nil) }
        threads.withLock { $0 = [] }
        shared.accessLog.flush()
    }

    /// Per accepted connection: admit (connection cap), find the original destination and
    /// route, and start sniffing the protocol.
    ///
    /// At the cap, the connection kept alive and idle the longest on this reactor is closed to
    /// make room (nginx's reusable connections): idle clients can't lock new ones out for the
    /// keep-alive timeout. When this reactor has none, the other reactors are asked to close
    /// theirs and this connection is refused (the next one finds the room).
    private static func accepted(_ fd: Int32, on reactor: Reactor, peers: [Reactor], shared: ProxyShared) {
        let local = SocketAddresses.of(fd, peer: false)
        let remote = SocketAddresses.of(fd, peer: true)
        let connection = Connection(fd: fd, reactor: reactor, local: local, remote: remote)
        var admission = shared.admit(SessionHandle(connection, on: reactor))
        if !admission.admitted, !shared.isDraining {
            let why = "--max-connections \(shared.configuration.maxConnections) reached"
            if reactor.reclaimIdle(1, why: why) > 0 {
                admission = shared.admit(SessionHandle(connection, on: reactor))
            } else {
                for peer in peers { peer.execute { peer.reclaimIdle(1, why: why) } }
            }
        }
        guard admission.admitted else {
            let who = remote?.hopDescription ?? "?"
            if shared.isDraining {
                writeDiagnostic("hoptrace proxy: closed a new connection from \(who): draining")
            } else {
                writeDiagnostic(
                    "hoptrace proxy: closed a new connection from \(who): \(admission.open) connections open (--max-connections \(shared.configuration.maxConnections))"
                )
            }
            close(fd)
            return
        }
        let id = ObjectIdentifier(connection)
        connection.onClose = { shared.release(id) }
        let nat = OriginalDestination.read(fd: fd, local: local)
        guard let route = Route.make(client: remote, local: local, originalDestination: nat, shared: shared) else {
            writeDiagnostic("hoptrace proxy: cannot set up a connection from \(remote?.hopDescription ?? "?"): accepted connection without addresses")
            connection.close()
            return
        }
        connection.start()
        _ = ProtocolSniffer(shared: shared, route: route, connection: connection)
    }
}

/// A value handed to another thread that only that thread uses from then on.
struct UnsafeSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// Starts a joinable thread running `body`, named `name` (up to 15 bytes: what `top -H` and
/// `ps -L` show).
func startThread(name: String, _ body: @escaping @Sendable () -> Void) -> pthread_t {
    final class Box {
        let name: String
        let body: @Sendable () -> Void
        init(_ name: String, _ body: @escaping @Sendable () -> Void) { self.name = name; self.body = body }
    }
    let box = Unmanaged.passRetained(Box(name, body)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(&thread, nil, { arg in
        let box = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
        chopsys_name_thread(box.name)
        box.body()
        return nil
    }, box)
    precondition(rc == 0, "pthread_create failed: \(rc)")
    return thread
}

/// Giving up root: the listeners are bound; from now on the process is the proxy's uid/gid,
/// which the interception rules exempt from the redirect.
public enum Privileges {
    public static func drop(toUID uid: UInt32, gid: UInt32) throws {
        guard geteuid() == 0, uid != 0 else { return }
        if setgroups(0, nil) != 0 { throw ProxyError("setgroups([]) failed: \(String(cString: strerror(errno)))") }
        if setgid(gid_t(gid)) != 0 { throw ProxyError("setgid(\(gid)) failed: \(String(cString: strerror(errno)))") }
        if setuid(uid_t(uid)) != 0 { throw ProxyError("setuid(\(uid)) failed: \(String(cString: strerror(errno)))") }
        if setuid(0) == 0 { throw ProxyError("could still regain root after setuid(\(uid))") }
    }

    /// Runs on as `user` (a name from the password database) and its primary group: `no such
    /// user`, or `cannot drop privileges: …`.
    public static func drop(toUser user: String) throws(ProxyError) {
        guard let pw = getpwnam(user) else { throw ProxyError("no such user") }
        do { try drop(toUID: pw.pointee.pw_uid, gid: pw.pointee.pw_gid) } catch {
            throw ProxyError("cannot drop privileges: \(error)")
        }
    }
}
