// Listening and connecting on a reactor: a listener per reactor (SO_REUSEPORT spreads the
// accepted connections over the reactors' threads, no hand-off between threads), and
// non-blocking connects with a timeout.
import CHopSys
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

enum SocketAddresses {
    /// The address of a socket (`getsockname`) or of its peer (`getpeername`).
    static func of(_ fd: Int32, peer: Bool) -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { peer ? getpeername(fd, $0, &length) : getsockname(fd, $0, &length) }
        }
        guard rc == 0 else { return nil }
        return address(storage)
    }

    /// An IPv4 or IPv6 socket address as the kernel wrote it, with its numeric host text.
    static func address(_ storage: sockaddr_storage) -> SocketAddress? {
        switch Int32(storage.ss_family) {
        case AF_INET:
            let sin = withUnsafeBytes(of: storage) { $0.load(as: sockaddr_in.self) }
            return ntop(AF_INET, sin.sin_addr).map { SocketAddress(sin, host: $0) }
        case AF_INET6:
            let sin6 = withUnsafeBytes(of: storage) { $0.load(as: sockaddr_in6.self) }
            return ntop(AF_INET6, sin6.sin6_addr).map { SocketAddress(sin6, host: $0) }
        default:
            return nil
        }
    }

    /// Calls `body` with the address as a `sockaddr` and its length.
    static func withSockaddr<T>(_ address: SocketAddress, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        address.withSockAddr { p, n in body(p, socklen_t(n)) }
    }

    static func setInt(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) {
        var v = value
        setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size))
    }
}

/// A listening socket on one reactor; hands every accepted connection's descriptor on.
final class Listener: ReactorSource {
    let fd: Int32
    let address: SocketAddress
    unowned let reactor: Reactor
    var onAccept: (Int32) -> Void = { Glibc.close($0) }

    /// Binds (SO_REUSEADDR, SO_REUSEPORT; IPv6 only for IPv6 addresses) and listens.
    init(address: SocketAddress, reactor: Reactor, backlog: Int32 = 1024) throws {
        let family: Int32
        switch address {
        case .v4: family = AF_INET
        case .v6: family = AF_INET6
        case .unixDomainSocket: throw ProxyError("cannot listen on a Unix socket")
        }
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ProxyError("socket failed: \(String(cString: strerror(errno)))") }
        SocketAddresses.setInt(fd, SOL_SOCKET, SO_REUSEADDR, 1)
        SocketAddresses.setInt(fd, SOL_SOCKET, SO_REUSEPORT, 1)
        if family == AF_INET6 { SocketAddresses.setInt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1) }
        let rc = SocketAddresses.withSockaddr(address) { Glibc.bind(fd, $0, $1) }
        guard rc == 0, Glibc.listen(fd, backlog) == 0 else {
            let why = String(cString: strerror(errno))
            Glibc.close(fd)
            throw ProxyError(why)
        }
        self.fd = fd
        self.address = address
        self.reactor = reactor
    }

    /// Starts accepting (on the reactor's thread).
    func start() { reactor.register(self, fd: fd, events: CHOPSYS_EPOLLIN) }

    private var pausedUntilFDsFree = false
    private var closed = false

    func handle(events: UInt32) {
        // A burst of connections is taken in one go, up to a bound.
        for _ in 0..<64 {
            let c = chopsys_accept(fd, nil, nil)
            if c < 0 {
                let e = errno
                if e == EMFILE || e == ENFILE {
                    // Out of descriptors: close the connections kept alive and idle the
                    // longest (two: the client's and its upstream's each hold one, and the
                    // new connection needs both), then accept again.
                    if reactor.reclaimIdle(2, why: "out of file descriptors") > 0 { continue }
                }
                if e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM {
                    // Out of descriptors: the listener stays readable, so stop watching it
                    // for a while instead of spinning (connections wait in the backlog).
                    writeDiagnostic("hoptrace proxy: cannot accept on \(address.hopDescription): \(String(cString: strerror(e))); pausing 100 ms")
                    pausedUntilFDsFree = true
                    reactor.unregister(fd: fd)
                    reactor.schedule(in: 100_000_000) { [self] in
                        guard pausedUntilFDsFree, !closed else { return }
                        pausedUntilFDsFree = false
                        start()
                    }
                }
                return
            }
            SocketAddresses.setInt(c, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
            onAccept(c)
        }
    }

    func close() {
        guard !closed else { return }
        closed = true
        if !pausedUntilFDsFree { reactor.unregister(fd: fd) }
        Glibc.close(fd)
    }

    /// Closes a listener that never started (before its reactor runs).
    func closeUnregistered() { Glibc.close(fd) }
}

/// A non-blocking connect: completes with a started connection, or errno (ETIMEDOUT when the
/// timeout passed first).
final class Connector: ReactorSource {
    private let fd: Int32
    private unowned let reactor: Reactor
    private var completion: ((Result<Connection, ConnectFailure>) -> Void)?
    private var timer: ReactorTimer?

    struct ConnectFailure: Error {
        var errno: Int32
    }

    /// Connects to `target` (from `source` when given); `completion` is called once, on the
    /// reactor, unless `cancel()` came first.
    @discardableResult
    static func connect(
        to target: SocketAddress, from source: SocketAddress?, timeoutNanos: UInt64, on reactor: Reactor,
        _ completion: @escaping (Result<Connection, ConnectFailure>) -> Void
    ) -> Connector? {
        let family: Int32
        switch target {
        case .v4: family = AF_INET
        case .v6: family = AF_INET6
        case .unixDomainSocket:
            completion(.failure(ConnectFailure(errno: EAFNOSUPPORT)))
            return nil
        }
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        var fd = socket(family, type, 0)
        if fd < 0, errno == EMFILE || errno == ENFILE, reactor.reclaimIdle(1, why: "out of file descriptors") > 0 {
            // Out of descriptors: the connection kept alive and idle the longest made room.
            fd = socket(family, type, 0)
        }
        guard fd >= 0 else {
            completion(.failure(ConnectFailure(errno: errno)))
            return nil
        }
        SocketAddresses.setInt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
        if let source {
            let rc = SocketAddresses.withSockaddr(source) { Glibc.bind(fd, $0, $1) }
            if rc != 0 {
                let e = errno
                Glibc.close(fd)
                completion(.failure(ConnectFailure(errno: e)))
                return nil
            }
        }
        let rc = SocketAddresses.withSockaddr(target) { Glibc.connect(fd, $0, $1) }
        if rc == 0 {
            completion(.success(Connector.started(fd, reactor)))
            return nil
        }
        let e = errno
        guard e == EINPROGRESS else {
            Glibc.close(fd)
            completion(.failure(ConnectFailure(errno: e)))
            return nil
        }
        let connector = Connector(fd: fd, reactor: reactor, completion: completion)
        reactor.register(connector, fd: fd, events: CHOPSYS_EPOLLOUT)
        connector.timer = reactor.schedule(in: timeoutNanos) { [connector] in connector.finish(ETIMEDOUT) }
        return connector
    }

    private init(fd: Int32, reactor: Reactor, completion: @escaping (Result<Connection, ConnectFailure>) -> Void) {
        self.fd = fd
        self.reactor = reactor
        self.completion = completion
    }

    private static func started(_ fd: Int32, _ reactor: Reactor) -> Connection {
        let c = Connection(
            fd: fd, reactor: reactor, local: SocketAddresses.of(fd, peer: false), remote: SocketAddresses.of(fd, peer: true))
        c.start()
        return c
    }

    func handle(events: UInt32) {
        var e: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len)
        finish(e)
    }

    private func finish(_ error: Int32) {
        guard let completion else { return }
        self.completion = nil
        timer?.cancel()
        timer = nil
        reactor.unregister(fd: fd)
        if error == 0 {
            completion(.success(Connector.started(fd, reactor)))
        } else {
            Glibc.close(fd)
            completion(.failure(ConnectFailure(errno: error)))
        }
    }

    /// Gives up: the completion is not called.
    func cancel() {
        guard completion != nil else { return }
        completion = nil
        timer?.cancel()
        reactor.unregister(fd: fd)
        Glibc.close(fd)
    }
}
