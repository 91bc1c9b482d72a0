// What the proxy is told by the command line.
import NIOCore

/// Where inbound traffic goes once the proxy has it.
public enum InboundLayout: String, Sendable, CaseIterable {
    /// Istio until 2019: the app is reached on `127.0.0.1:port`; one port (15001) for both ways.
    case istio2018 = "istio-2018"
    /// Current Istio: inbound arrives on 15006 and is forwarded from `127.0.0.6` to `podIP:port`.
    case istioCurrent = "istio-current"

    /// The inbound port when none is given: the proxy's own in the 2018 layout, 15006 now.
    public func defaultInboundPort(proxyPort: Int) -> Int { self == .istioCurrent ? 15006 : proxyPort }
}

public struct ProxyConfiguration: Sendable {
    /// Port the OUTPUT (and, in the 2018 layout, PREROUTING) redirect points at.
    public var port: Int = 15001
    /// Port the inbound redirect points at; equal to `port` in the 2018 layout.
    public var inboundPort: Int = 15001
    /// Listening addresses (each bound on every port); a failed IPv6 bind is only a warning.
    public var listenAddresses: [String] = ["0.0.0.0", "::"]
    public var layout: InboundLayout = .istio2018
    /// The pod's own addresses (normalised); a connection to one of them is inbound.
    public var podAddresses: [String] = []
    /// Source address of inbound upstream connections in the current layout.
    public var inboundSourceAddress = "127.0.0.6"
    public var uid: UInt32 = 1337
    public var gid: UInt32 = 1337
    /// Drop to uid/gid after binding when started as root.
    public var dropPrivileges = true
    public var retries = 1
    /// Seconds to wait for an upstream connection to be accepted.
    public var connectTimeoutSeconds = 5.0
    /// Seconds without a byte either way before a connection is closed (504 if a response is due).
    public var idleTimeoutSeconds = 60.0
    /// Seconds from the first byte of a request head to its end before the client is answered
    /// 408 and the connection closed (nginx's `client_header_timeout`, HAProxy's `timeout
    /// http-request`): a client sending its head a byte at a time can't hold a connection.
    public var headerTimeoutSeconds = 30.0
    /// Seconds a client connection may wait for its next request after a response (closed
    /// without a word; the idle timeout applies too, whichever is shorter).
    public var keepAliveTimeoutSeconds = 30.0
    /// Seconds a drain waits for requests in flight.
    public var drainTimeoutSeconds = 5.0
    /// Seconds to wait for a client's first bytes before treating the connection as raw TCP.
    public var protocolDetectionTimeoutSeconds = 1.0
    public var maxConnections = 10_000
    /// Event-loop threads.
    public var threads = System.coreCount
    /// Access log file; nil for standard output.
    public var accessLogPath: String?

    public init() {}

    var listenPorts: [Int] { port == inboundPort ? [port] : [port, inboundPort] }
    /// The timeouts in nanoseconds, as the reactor's timers take them (negative counts as 0).
    var connectTimeoutNanos: UInt64 { nanoseconds(connectTimeoutSeconds) }
    var idleTimeoutNanos: UInt64 { nanoseconds(idleTimeoutSeconds) }
    var headerTimeoutNanos: UInt64 { nanoseconds(headerTimeoutSeconds) }
    var keepAliveTimeoutNanos: UInt64 { nanoseconds(keepAliveTimeoutSeconds) }
    /// The longest a client connection's timer may wait before it looks again.
    var shortestClientTimeoutNanos: UInt64 { min(idleTimeoutNanos, headerTimeoutNanos, keepAliveTimeoutNanos) }
    var protocolDetectionTimeoutNanos: UInt64 { nanoseconds(protocolDetectionTimeoutSeconds) }

    private func nanoseconds(_ seconds: Double) -> UInt64 { UInt64(max(0, (seconds * 1e9).rounded())) }

    /// A setting the proxy cannot run with; the message names `hoptrace proxy`'s option.
    public struct Invalid: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    /// Refuses what the proxy cannot run with, in this order: a port outside 1…65535, a pod or
    /// listen address that is not IPv4 or IPv6 (`podAddresses` may be as given, not yet
    /// normalised), negative retries, a timeout that is not a positive number of seconds, no
    /// connection or no thread.
    public func validate() throws(Invalid) {
        for p in listenPorts where !(1...65535).contains(p) {
            throw Invalid(description: "ports must be between 1 and 65535 (got \(p))")
        }
        for ip in podAddresses + listenAddresses where InterfaceAddresses.normalise(ip) == nil {
            throw Invalid(description: "'\(ip)' is not an IPv4 or IPv6 address")
        }
        if retries < 0 { throw Invalid(description: "--retries must be 0 or more") }
        let timeouts = [("--connect-timeout", connectTimeoutSeconds), ("--idle-timeout", idleTimeoutSeconds),
                        ("--header-timeout", headerTimeoutSeconds), ("--keep-alive-timeout", keepAliveTimeoutSeconds),
                        ("--drain-timeout", drainTimeoutSeconds), ("--protocol-detection-timeout", protocolDetectionTimeoutSeconds)]
        for (name, v) in timeouts where !(v > 0) {
            throw Invalid(description: "\(name) must be a positive number of seconds")
        }
        if maxConnections < 1 { throw Invalid(description: "--max-connections must be at least 1") }
        if threads < 1 { throw Invalid(description: "--threads must be at least 1") }
    }

    /// The pod's addresses as connections spell them: this network namespace's interfaces'
    /// when none are given, else each given one normalised (`InterfaceAddresses.normalise`).
    public mutating func resolvePodAddresses() {
        podAddresses = podAddresses.isEmpty ? InterfaceAddresses.podAddresses() : podAddresses.compactMap(InterfaceAddresses.normalise)
    }
}

/// Why the proxy refuses to start under the current uid (nil when it may).
///
/// The interception rules exempt only the proxy's uid (and gid) from the OUTPUT redirect, so a
/// proxy running as anyone else would have its own upstream connections redirected back to itself.
public func uidCheckMessage(currentUID: UInt32, proxyUID: UInt32) -> String? {
    if proxyUID == 0 {
        return "--uid 0: the proxy would keep running as root, and the interception rules exempt only the proxy's own uid "
            + "(1337, `hoptrace intercept -u`): root's connections would be redirected back to the proxy. Give the uid the rules "
            + "exempt (--uid 1337), or --no-uid-check for local tests without rules"
    }
    if currentUID == 0 || currentUID == proxyUID { return nil }
    return "hoptrace proxy runs as uid \(currentUID), which the interception rules redirect back to the proxy "
        + "(only uid \(proxyUID) is exempt): start it as root (it drops to \(proxyUID)) or as uid \(proxyUID)"
}
