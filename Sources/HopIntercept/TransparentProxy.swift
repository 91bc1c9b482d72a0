// The listeners: accept, read SO_ORIGINAL_DST, route, sniff; drop privileges; drain.
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A transparent proxy for connections redirected to it by iptables REDIRECT rules.
///
/// Use: `init`, `bind()` (as root: the ports may be privileged and the rules exempt only the
/// proxy's uid), `dropPrivileges()`, `startAccepting()`, then `drain()` to stop.
public final class TransparentProxy: Sendable {
    let shared: ProxyShared
    private let group: MultiThreadedEventLoopGroup
    private let servers = LockedBox<[Channel]>([])

    public init(configuration: ProxyConfiguration, accessLog: AccessLog) {
        shared = ProxyShared(configuration: configuration, accessLog: accessLog)
        group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.threads))
    }

    public var configuration: ProxyConfiguration { shared.configuration }

    /// Binds every listener (not accepting yet). Returns the bound addresses. A failure to bind
    /// an IPv6 address is returned as a warning when some IPv4 listener is bound.
    public func bind() throws -> (bound: [String], warnings: [String]) {
        var bound: [String] = []
        var warnings: [String] = []
        var channels: [Channel] = []
        let shared = self.shared
        for port in shared.configuration.listenPorts {
            for host in shared.configuration.listenAddresses {
                let address: SocketAddress
                do {
                    address = try SocketAddress(ipAddress: host, port: port)
                } catch {
                    throw ProxyError("--listen \(host) is not an IP address")
                }
                var bootstrap = ServerBootstrap(group: group)
                    .serverChannelOption(ChannelOptions.backlog, value: 1024)
                    .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                    .serverChannelOption(ChannelOptions.autoRead, value: false)
                    .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
                    .childChannelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
                    .childChannelInitializer { channel in
                        TransparentProxy.initialize(channel, shared: shared)
                    }
                if case .v6 = address {
                    bootstrap = bootstrap.serverChannelOption(
                        ChannelOptions.Types.SocketOption(level: .ipv6, name: .ipv6_v6only), value: 1)
                }
                do {
                    let channel = try bootstrap.bind(to: address).wait()
                    channels.append(channel)
                    bound.append(address.hopDescription)
                } catch {
                    if case .v6 = address {
                        warnings.append("not listening on \(address.hopDescription): \(error)")
                        continue
                    }
                    for c in channels { try? c.close().wait() }
                    throw ProxyError("cannot listen on \(address.hopDescription): \(error)")
                }
            }
        }
        if channels.isEmpty { throw ProxyError("no listener could be bound") }
        servers.withLock { $0 = channels }
        return (bound, warnings)
    }

    /// Starts accepting on every bound listener.
    public func startAccepting() {
        for channel in servers.withLock({ $0 }) {
            channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
        }
    }

    public var openConnections: Int { shared.openConnections }

    /// Stops accepting, tells every connection to finish its request in flight and close,
    /// and waits until they have (or `timeout` passes). Returns how many were still open.
    @discardableResult
    public func drain(timeoutSeconds: Double) -> Int {
        let timeout = TimeAmount.seconds(timeoutSeconds)
        for channel in servers.withLock({ $0 }) { try? channel.close().wait() }
        for channel in shared.startDraining() {
            channel.pipeline.fireUserInboundEventTriggered(DrainEvent())
        }
        let deadline = NIODeadline.now() + timeout
        while shared.openConnections > 0 && NIODeadline.now() < deadline {
            usleep(20_000)
        }
        shared.accessLog.flush()
        return shared.openConnections
    }

    public func shutdown() {
        try? group.syncShutdownGracefully()
        shared.accessLog.flush()
    }

    /// Per accepted connection: admit (connection cap), find the original destination and
    /// route, and start sniffing the protocol.
    private static func initialize(_ channel: Channel, shared: ProxyShared) -> EventLoopFuture<Void> {
        let admission = shared.admit(channel)
        guard admission.admitted else {
            let who = channel.remoteAddress?.hopDescription ?? "?"
            if shared.isDraining {
                writeDiagnostic("hoptrace proxy: closed a new connection from \(who): draining")
            } else {
                writeDiagnostic(
                    "hoptrace proxy: closed a new connection from \(who): \(admission.open) connections open (--max-connections \(shared.configuration.maxConnections))"
                )
            }
            channel.close(promise: nil)
            return channel.eventLoop.makeSucceededVoidFuture()
        }
        channel.closeFuture.whenComplete { _ in shared.release(channel) }
        return OriginalDestination.read(channel).flatMapThrowing { nat in
            guard
                let route = Route.make(
                    client: channel.remoteAddress, local: channel.localAddress, originalDestination: nat,
                    shared: shared)
            else {
                throw ProxyError("accepted connection without addresses")
            }
            try channel.pipeline.syncOperations.addHandler(ProtocolSniffer(shared: shared, route: route))
        }.flatMapErrorThrowing { error in
            writeDiagnostic("hoptrace proxy: cannot set up a connection from \(channel.remoteAddress?.hopDescription ?? "?"): \(error)")
            throw error
        }
    }
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
}
