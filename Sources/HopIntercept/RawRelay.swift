// Raw TCP pass-through: for connections that don't speak HTTP, and for CONNECT/Upgrade
// tunnels once the HTTP exchange that opened them is done.
import NIOCore

/// Both halves of one relayed connection and its access-log record (one line, written when
/// both sides are closed). Lives on the event loop of its two channels.
final class RelaySession {
    let shared: ProxyShared
    let eventLoop: EventLoop
    var record: AccessRecord
    var route: Route
    private var downstreamOpen = false
    private var upstreamOpen = false
    private var upstreamExpected = true
    private var logged = false
    private var lastActivity = NIODeadline.now()
    private var idleTimer: Scheduled<Void>?
    // Held strongly and let go in `removed(_:)`, when the handler leaves its pipeline: a weak
    // reference would move the handler's reference counts to a side table, and NIO retains
    // and releases a handler several times per event.
    private(set) var downstream: RelayHandler?
    private(set) var upstream: RelayHandler?

    init(shared: ProxyShared, eventLoop: EventLoop, route: Route, record: AccessRecord) {
        self.shared = shared
        self.eventLoop = eventLoop
        self.route = route
        self.record = record
    }

    func opened(_ handler: RelayHandler) {
        if handler === downstream || handler === upstream { return }
        switch handler.side {
        case .downstream:
            downstreamOpen = true
            downstream = handler
        case .upstream:
            upstreamOpen = true
            upstream = handler
        }
        if let d = downstream, let u = upstream, d.partner == nil {
            d.attach(u)
            u.attach(d)
        }
        armIdleTimer()
    }

    /// The handler left its pipeline (its channel closed, or the tunnel is torn down).
    func removed(_ handler: RelayHandler) {
        if handler === downstream { downstream = nil }
        if handler === upstream { upstream = nil }
    }

    func closed(_ handler: RelayHandler) {
        switch handler.side {
        case .downstream: downstreamOpen = false
        case .upstream: upstreamOpen = false
        }
        finishIfDone()
    }

    func transferred(_ bytes: Int, from side: RelayHandler.Side) {
        lastActivity = .now()
        switch side {
        case .downstream: record.requestBytes += bytes
        case .upstream: record.responseBytes += bytes
        }
    }

    /// Raw pass-through: connects the upstream half (with the retry policy for refusals).
    func connect() {
        guard route.upstream != nil else {
            record.error = "loop"
            upstreamExpected = false
            writeDiagnostic(route.loopMessage)
            downstream?.closeAfterFlush()
            return
        }
        record.attempts += 1
        let started = NIODeadline.now()
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        connectUpstream(route: route, on: eventLoop, configuration: shared.configuration, halfClosure: true) { channel in
            do {
                try channel.pipeline.syncOperations.addHandler(RelayHandler(side: .upstream, session: bound.value))
                return channel.eventLoop.makeSucceededVoidFuture()
            } catch {
                return channel.eventLoop.makeFailedFuture(error)
            }
        }.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                self.record.upstreamConnectNanos = (NIODeadline.now() - started).nanoseconds
                self.record.upstreamLocal = channel.localAddress?.hopDescription
                self.record.upstreamRemote = channel.remoteAddress?.hopDescription
                if !self.downstreamOpen { channel.close(promise: nil) }
            case .failure(let error):
                let failure = UpstreamFailure(error)
                if case .refused = failure, self.record.attempts <= self.shared.configuration.retries, self.downstreamOpen {
                    self.connect()
                    return
                }
                self.record.error = failure.token
                self.record.upstreamRemote = self.route.upstream?.hopDescription
                self.upstreamExpected = false
                self.downstream?.closeAfterFlush()
                self.finishIfDone()
            }
        }
    }

    /// A tunnel: both halves exist already (their HTTP handlers are being replaced).
    func expectBothSides() { upstreamExpected = true }

    private func finishIfDone() {
        guard !logged, !downstreamOpen, !upstreamOpen || !upstreamExpected else { return }
        if upstreamOpen { upstream?.closeAfterFlush(); return }
        logged = true
        idleTimer?.cancel()
        shared.log(record, on: eventLoop)
    }

    private func armIdleTimer() {
        guard idleTimer == nil else { return }
        let timeout = shared.configuration.idleTimeout
        func schedule(at deadline: NIODeadline) {
            idleTimer = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in
                guard let self, !self.logged else { return }
                let due = self.lastActivity + timeout
                if NIODeadline.now() >= due {
                    self.record.error = "idle_timeout"
                    self.downstream?.closeAfterFlush()
                    self.upstream?.closeAfterFlush()
                } else {
                    schedule(at: due)
                }
            }
        }
        schedule(at: lastActivity + timeout)
    }
}

/// One half of a relay: bytes read here are written to the partner; reads stop while the
/// partner's socket is not writable (NIO's writability watermarks), so memory stays bounded.
final class RelayHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Side { case downstream, upstream }

    let side: Side
    let session: RelaySession
    private var context: ChannelHandlerContext?
    private(set) var partner: RelayHandler?
    private var queued: [ByteBuffer] = []
    private var readHeld = false
    private var needsFlush = false
    private var inputClosed = false
    private var closing = false

    init(side: Side, session: RelaySession) {
        self.side = side
        self.session = session
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { session.opened(self) }
    }

    func channelActive(context: ChannelHandlerContext) {
        session.opened(self)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
        session.removed(self)
    }

    var isWritable: Bool { context?.channel.isWritable ?? false }

    func attach(_ partner: RelayHandler) {
        self.partner = partner
        if !queued.isEmpty {
            for b in queued { partner.deliver(b) }
            queued = []
            partner.flushDelivered()
        }
        if partner.inputClosed { shutdownOutput() }
        resumeReads()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        session.transferred(buffer.readableBytes, from: side)
        if let partner {
            partner.deliver(buffer)
        } else {
            queued.append(buffer)
        }
    }

    /// Bytes read before this handler was in the pipeline (after a CONNECT or Upgrade head),
    /// relayed as if just read.
    func inject(_ buffer: ByteBuffer) {
        session.transferred(buffer.readableBytes, from: side)
        if let partner {
            partner.deliver(buffer)
            partner.flushDelivered()
        } else {
            queued.append(buffer)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.flushDelivered()
        context.fireChannelReadComplete()
    }

    fileprivate func deliver(_ buffer: ByteBuffer) {
        guard let context, !closing else { return }
        context.write(wrapOutboundOut(buffer), promise: nil)
        needsFlush = true
    }

    fileprivate func flushDelivered() {
        if needsFlush, let context {
            needsFlush = false
            context.flush()
        }
    }

    func read(context: ChannelHandlerContext) {
        if let partner, partner.isWritable {
            context.read()
        } else {
            readHeld = true
        }
    }

    fileprivate func resumeReads() {
        guard readHeld, let context, let partner, partner.isWritable else { return }
        readHeld = false
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.resumeReads() }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? ChannelEvent, e == .inputClosed {
            inputClosed = true
            partner?.flushDelivered()
            partner?.shutdownOutput()
            if let partner, partner.inputClosed {
                closeAfterFlush()
                partner.closeAfterFlush()
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// The peer on the other side sent FIN: pass it on once our pending writes are out.
    fileprivate func shutdownOutput() {
        guard let context, !closing else { return }
        if inputClosed {
            closeAfterFlush()
        } else {
            context.close(mode: .output, promise: nil)
        }
    }

    /// Closes this side once everything written to it has gone out.
    func closeAfterFlush() {
        guard let context, !closing else { return }
        closing = true
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: promise)
        promise.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        closing = true
        partner?.flushDelivered()
        partner?.closeAfterFlush()
        session.closed(self)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if side == .upstream, session.record.error == nil, case .reset = UpstreamFailure(error) {
            session.record.error = "upstream_reset"
        } else if side == .downstream, session.record.error == nil {
            session.record.error = "downstream_reset"
        }
        context.close(promise: nil)
    }
}
