// Looks at the first bytes of an accepted connection and installs either the HTTP handlers
// or a raw TCP relay.
import NIOCore

enum SniffResult: Equatable {
    case http, raw, needMore
}

/// Classifies the first bytes a client sent: an HTTP/1.x request starts with a method token
/// (uppercase letters) and a space. HTTP/2's prior-knowledge preface ("PRI * HTTP/2.0") is raw.
func sniff<C: Collection>(_ bytes: C) -> SniffResult where C.Element == UInt8 {
    let maxMethod = 24
    var count = 0
    var method: [UInt8] = []
    for b in bytes {
        if b == 0x20 {
            if count == 0 { return .raw }
            return method == Array("PRI".utf8) ? .raw : .http
        }
        guard b >= 0x41 && b <= 0x5A else { return .raw }
        count += 1
        method.append(b)
        if count > maxMethod { return .raw }
    }
    return .needMore
}

final class ProtocolSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let shared: ProxyShared
    private let route: Route
    private var buffered: ByteBuffer?
    private var timer: Scheduled<Void>?
    private var decided = false

    init(shared: ProxyShared, route: Route) {
        self.shared = shared
        self.route = route
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // A client that sends nothing may be waiting for a server-first protocol's greeting.
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: shared.configuration.protocolDetectionTimeout) {
            [weak self] in
            self?.decide(.raw, context: context)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if decided {
            context.fireChannelRead(data)
            return
        }
        if buffered == nil {
            buffered = incoming
        } else {
            buffered!.writeBuffer(&incoming)
        }
        let result = sniff(buffered!.readableBytesView)
        if result != .needMore { decide(result, context: context) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? ChannelEvent, e == .inputClosed, !decided {
            if buffered == nil || buffered!.readableBytes == 0 {
                decided = true
                context.close(promise: nil)
                return
            }
            decide(.raw, context: context)
        } else if event is DrainEvent, !decided {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func decide(_ result: SniffResult, context: ChannelHandlerContext) {
        guard !decided, context.channel.isActive else { return }
        decided = true
        timer?.cancel()
        let pipeline = context.pipeline.syncOperations
        do {
            switch result {
            case .http, .needMore:
                try pipeline.addHandler(HTTPProxyHandler(shared: shared, route: route), position: .last)
            case .raw:
                var record = route.record()
                record.proto = "tcp"
                let session = RelaySession(
                    shared: shared, eventLoop: context.eventLoop, route: route, record: record)
                try pipeline.addHandler(RelayHandler(side: .downstream, session: session), position: .last)
                session.connect()
            }
        } catch {
            context.close(promise: nil)
            return
        }
        if let bytes = buffered, bytes.readableBytes > 0 {
            buffered = nil
            context.fireChannelRead(wrapInboundOut(bytes))
            context.fireChannelReadComplete()
        }
        pipeline.removeHandler(context: context, promise: nil)
    }
}

extension ProtocolSniffer {
    typealias InboundOut = ByteBuffer
}
