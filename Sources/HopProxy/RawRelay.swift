// Raw TCP pass-through: for connections that don't speak HTTP, and for CONNECT/Upgrade
// tunnels once the HTTP exchange that opened them is done.
import NIOCore

/// Both halves of one relayed connection and its access-log record (one line, written when
/// both sides are closed). Lives on the reactor of its two connections.
final class RelaySession {
    let shared: ProxyShared
    let reactor: Reactor
    var record: AccessRecord
    let route: Route
    /// An upstream connect is in flight: its completion finishes the session.
    private var connecting = false
    private var logged = false
    private var lastActivity = monotonicNanos()
    private var idleTimer: ReactorTimer?
    private var downstream: RelaySide?
    private var upstream: RelaySide?

    init(shared: ProxyShared, reactor: Reactor, route: Route, record: AccessRecord) {
        self.shared = shared
        self.reactor = reactor
        self.route = route
        self.record = record
    }

    /// A tunnel: both connections exist already; bytes read past the HTTP heads go first.
    func attach(downstream down: Connection, upstream up: Connection, fromClient: ByteBuffer, fromServer: ByteBuffer) {
        let d = RelaySide(side: .downstream, session: self, connection: down)
        let u = RelaySide(side: .upstream, session: self, connection: up)
        downstream = d
        upstream = u
        d.partner = u
        u.partner = d
        armIdleTimer()
        if fromClient.readableBytes > 0 { d.relay(fromClient) }
        if fromServer.readableBytes > 0 { u.relay(fromServer) }
        d.partnerFlush()
        u.partnerFlush()
        d.updateReading()
        u.updateReading()
    }

    /// Raw pass-through: takes the client's connection (and what was read from it while the
    /// protocol was sniffed), then connects the upstream half.
    func start(downstream down: Connection, alreadyRead: ByteBuffer?) {
        let d = RelaySide(side: .downstream, session: self, connection: down)
        downstream = d
        armIdleTimer()
        if let bytes = alreadyRead, bytes.readableBytes > 0 { d.relay(bytes) }
        d.updateReading()
        connect()
    }

    func transferred(_ bytes: Int, from side: RelaySide.Side) {
        lastActivity = monotonicNanos()
        switch side {
        case .downstream: record.requestBytes += bytes
        case .upstream: record.responseBytes += bytes
        }
    }

    private func connect() {
        guard let target = route.upstream else {
            record.error = "loop"
            writeDiagnostic(route.loopMessage)
            downstream?.closeAfterFlush()
            return
        }
        record.attempts += 1
        let started = NIODeadline.now()
        connecting = true
        Connector.connect(to: target, from: route.source, timeoutNanos: shared.configuration.connectTimeoutNanos, on: reactor) { [self] result in
            connecting = false
            switch result {
            case .success(let connection):
                record.upstreamConnectNanos = (NIODeadline.now() - started).nanoseconds
                record.upstreamLocal = connection.localAddress?.hopDescription
                record.upstreamRemote = connection.remoteAddress?.hopDescription
                guard let d = downstream, d.isOpen else {
                    connection.close()
                    finishIfDone()
                    return
                }
                let u = RelaySide(side: .upstream, session: self, connection: connection)
                upstream = u
                u.partner = d
                d.partner = u
                d.partnerAttached()
                u.updateReading()
            case .failure(let error):
                let failure = UpstreamFailure(errno: error.errno)
                if case .refused = failure, record.attempts <= shared.configuration.retries, downstream?.isOpen == true {
                    connect()
                    return
                }
                record.error = failure.token
                record.upstreamRemote = route.upstream?.hopDescription
                downstream?.closeAfterFlush()
                finishIfDone()
            }
        }
    }

    fileprivate func sideClosed(_ side: RelaySide) {
        finishIfDone()
    }

    private func finishIfDone() {
        guard !logged else { return }
        let downOpen = downstream?.isOpen ?? false
        let upOpen = upstream?.isOpen ?? false
        guard !downOpen else { return }
        if upOpen {
            upstream?.closeAfterFlush()
            return
        }
        if connecting { return }
        logged = true
        idleTimer?.cancel()
        idleTimer = nil
        downstream?.partner = nil
        upstream?.partner = nil
        downstream = nil
        upstream = nil
        shared.log(record, on: reactor)
    }

    private func armIdleTimer() {
        let timeout = shared.configuration.idleTimeoutNanos
        let due = lastActivity &+ timeout
        let now = monotonicNanos()
        idleTimer = reactor.schedule(in: due > now ? due - now : 0) { [self] in
            guard !logged else { return }
            if monotonicNanos() &- lastActivity >= timeout {
                record.error = "idle_timeout"
                downstream?.closeAfterFlush()
                upstream?.closeAfterFlush()
            } else {
                armIdleTimer()
            }
        }
    }
}

/// One half of a relay: bytes read here are written to the partner; reads stop while the
/// partner's socket is not writable (its watermarks), so memory stays bounded.
final class RelaySide: ConnectionDelegate {
    enum Side { case downstream, upstream }

    let side: Side
    /// Held strongly: the session lives as long as a side's connection does; it lets go of
    /// its sides once both are closed and its line is logged.
    let session: RelaySession
    let connection: Connection
    var partner: RelaySide?
    /// Bytes read before the partner existed (a raw connection's upstream is connecting).
    private var queued: [ByteBuffer] = []
    private var needsFlush = false
    private(set) var inputClosed = false
    private var closing = false

    init(side: Side, session: RelaySession, connection: Connection) {
        self.side = side
        self.session = session
        self.connection = connection
        connection.delegate = self
    }

    var isOpen: Bool { connection.isOpen }

    /// Bytes from this side, passed to the partner (or kept until there is one).
    func relay(_ buffer: ByteBuffer) {
        session.transferred(buffer.readableBytes, from: side)
        if let partner {
            partner.deliver(buffer)
        } else {
            queued.append(buffer)
        }
    }

    /// The partner exists now: what was read meanwhile goes to it.
    func partnerAttached() {
        guard let partner else { return }
        for b in queued { partner.deliver(b) }
        queued = []
        partner.flushDelivered()
        if inputClosed { partner.shutdownOutput() }
        if partner.inputClosed { shutdownOutput() }
        updateReading()
    }

    func partnerFlush() { partner?.flushDelivered() }

    fileprivate func deliver(_ buffer: ByteBuffer) {
        guard connection.isOpen, !closing else { return }
        connection.write(buffer)
        needsFlush = true
    }

    fileprivate func flushDelivered() {
        if needsFlush {
            needsFlush = false
            connection.flush()
        }
    }

    /// Reads go on while the partner takes what they bring (or, before there is a partner,
    /// while little is queued).
    func updateReading() {
        guard connection.isOpen else { return }
        if let partner {
            connection.setReading(partner.connection.isWritable)
        } else {
            connection.setReading(queued.reduce(0) { $0 + $1.readableBytes } < Connection.highWatermark)
        }
    }

    // MARK: events

    func connectionRead(_ connection: Connection, _ buffer: ByteBuffer) {
        relay(buffer)
    }

    func connectionReadComplete(_ connection: Connection) {
        partner?.flushDelivered()
        updateReading()
    }

    func connectionWritabilityChanged(_ connection: Connection) {
        if connection.isWritable { partner?.updateReading() }
    }

    func connectionInputClosed(_ connection: Connection) {
        inputClosed = true
        guard let partner else { return }
        partner.flushDelivered()
        partner.shutdownOutput()
        if partner.inputClosed {
            closeAfterFlush()
            partner.closeAfterFlush()
        }
    }

    /// The peer on the other side sent FIN: pass it on once our pending writes are out.
    fileprivate func shutdownOutput() {
        guard connection.isOpen, !closing else { return }
        if inputClosed {
            closeAfterFlush()
        } else {
            connection.shutdownOutput()
        }
    }

    /// Closes this side once everything written to it has gone out.
    func closeAfterFlush() {
        guard connection.isOpen, !closing else { return }
        closing = true
        connection.closeAfterFlush()
    }

    func connectionClosed(_ connection: Connection, error: Int32?) {
        closing = true
        if let error, session.record.error == nil {
            if side == .upstream, case .reset = UpstreamFailure(errno: error) {
                session.record.error = "upstream_reset"
            } else if side == .downstream {
                session.record.error = "downstream_reset"
            }
        }
        partner?.flushDelivered()
        partner?.closeAfterFlush()
        session.sideClosed(self)
    }
}
