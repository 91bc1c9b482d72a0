import HopReport
import ArgumentParser
import HopPipeline
import HopProxy
#if canImport(Glibc)
import Glibc
#endif

struct Proxy: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy",
        abstract: "Run the transparent HTTP proxy that the interception rules redirect to.",
        discussion: """
        A sidecar proxy for the lab: iptables REDIRECT sends a pod's traffic to it (port 15001, \
        and 15006 for inbound in the current Istio layout). For each connection it reads the \
        original destination (SO_ORIGINAL_DST). A connection to one of the pod's own addresses \
        is inbound: it goes to 127.0.0.1:PORT (--layout istio-2018) or, from 127.0.0.6, to \
        POD-IP:PORT (--layout istio-current). Anything else is outbound and goes to its \
        original destination.

        HTTP/1.x is forwarded request by request (x-request-id added when missing, \
        x-forwarded-proto: http), with keep-alive, pipelining, chunked and streamed bodies, \
        100-continue; CONNECT and Upgrade become tunnels; other protocols pass through as raw \
        TCP. Each request (and each raw connection) gives one JSON line on standard output \
        (or --access-log FILE; none with --no-access-log): time, requestId, downstream {client, local}, \
        originalDestination, upstream {local, remote}, direction, protocol, method, target, \
        host, status, requestBytes, responseBytes (bodies), durationMs, upstreamConnectMs, \
        upstreamReused, attempts, error.

        Started as root it binds its ports, then drops to --gid and --uid (1337), the identity \
        the rules exempt. Under any other uid its own connections would be redirected back to \
        it, so it refuses to start; it refuses --uid 0 too, which would keep it root (--no-uid-check \
        for local testing without rules). \
        SIGTERM or SIGINT drains: stop accepting, finish requests in flight (up to \
        --drain-timeout), exit 0.

        Example (inside the pod's network namespace):
          hoptrace proxy --pod-ip 198.18.3.2 --access-log /tmp/access.jsonl
        """)

    @Option(name: .long, parsing: .unconditional, help: "The port the redirect rules send traffic to.")
    var port: Int = 15001

    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("A second port for inbound traffic (default: --port; 15006 with --layout istio-current).", valueName: "port"))
    var inboundPort: Int?

    @Option(name: .long, help: ArgumentHelp("Where inbound traffic goes: istio-2018 (to 127.0.0.1:PORT) or istio-current (from 127.0.0.6 to POD-IP:PORT).", valueName: "layout"))
    var layout: String = InboundLayout.istio2018.rawValue

    @Option(name: .long, help: ArgumentHelp("One of the pod's own addresses (repeatable; default: every non-loopback address of this network namespace).", valueName: "ip"))
    var podIP: [String] = []

    @Option(name: .long, help: ArgumentHelp("Listen address (repeatable; default 0.0.0.0 and ::).", valueName: "ip"))
    var listen: [String] = []

    @Option(name: [.customShort("u"), .long], parsing: .unconditional, help: "The uid the proxy runs as (the rules exempt it).")
    var uid: UInt32 = 1337

    @Option(name: [.customShort("g"), .long], parsing: .unconditional, help: "The gid the proxy runs as.")
    var gid: UInt32 = 1337

    @Flag(name: .long, help: "Run under any uid (for local tests without interception rules).")
    var noUidCheck = false

    @Option(name: .long, help: ArgumentHelp("Append the access log to this file instead of standard output.", valueName: "file"))
    var accessLog: String?

    @Flag(name: .long, help: "Write no access log (Istio's default); the lab needs it, so `lab` never passes this.")
    var noAccessLog = false

    @Option(name: .long, parsing: .unconditional, help: "Extra attempts for a refused connection, or a reset before any response byte of an idempotent request without body.")
    var retries: Int = 1

    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Seconds to wait for an upstream connection.", valueName: "seconds"))
    var connectTimeout: Double = 5

    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Seconds without traffic before a connection is closed (504 when a response is due).", valueName: "seconds"))
    var idleTimeout: Double = 60

    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Seconds from a request head's first byte to its end before the client gets 408 and the connection closes.", valueName: "seconds"))
    var headerTimeout: Double = 30

    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Seconds a client connection may wait for its next request (at most --idle-timeout).", valueName: "seconds"))
    var keepAliveTimeout: Double = 30

    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Seconds a drain (SIGTERM/SIGINT) waits for requests in flight.", valueName: "seconds"))
    var drainTimeout: Double = 5

    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Seconds to wait for a client's first bytes before passing the connection through as raw TCP.", valueName: "seconds"))
    var protocolDetectionTimeout: Double = 1

    @Option(name: .long, parsing: .unconditional, help: "Connections beyond this many are accepted and closed at once (with a line on standard error).")
    var maxConnections: Int = 10_000

    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Event-loop threads (default: the number of cores).", valueName: "n"))
    var threads: Int?

    func validate() throws {
        guard InboundLayout(rawValue: layout) != nil else {
            throw ValidationError("--layout must be one of \(InboundLayout.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        do { try configuration.validate() } catch { throw ValidationError(error.description) }
    }

    /// What the options say (the pod's addresses as given: `resolvePodAddresses` reads them).
    var configuration: ProxyConfiguration {
        var config = ProxyConfiguration()
        config.layout = InboundLayout(rawValue: layout) ?? .istio2018
        config.port = port
        config.inboundPort = inboundPort ?? config.layout.defaultInboundPort(proxyPort: port)
        config.podAddresses = podIP
        if !listen.isEmpty { config.listenAddresses = listen }
        config.uid = uid
        config.gid = gid
        config.retries = retries
        config.connectTimeoutSeconds = connectTimeout
        config.idleTimeoutSeconds = idleTimeout
        config.headerTimeoutSeconds = headerTimeout
        config.keepAliveTimeoutSeconds = keepAliveTimeout
        config.drainTimeoutSeconds = drainTimeout
        config.protocolDetectionTimeoutSeconds = protocolDetectionTimeout
        config.maxConnections = maxConnections
        if let threads { config.threads = threads }
        config.accessLogPath = accessLog
        return config
    }

    func run() throws {
        if !noUidCheck, let message = uidCheckMessage(currentUID: getuid(), proxyUID: uid) {
            throw InputError(message: message)
        }
        var config = configuration
        config.resolvePodAddresses()
        if noAccessLog, let accessLog {
            throw InputError(message: "--no-access-log and --access-log \(accessLog) contradict each other")
        }
        do {
            try ProxyRuntime.serve(configuration: config, accessLog: !noAccessLog) { Output.stderr.line($0) }
        } catch {
            throw InputError(message: error.description)
        }
    }
}
