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

/// The first owner of every accepted connection: reads until the first bytes say HTTP or not
/// (or the detection timeout passes: server-first protocols send nothing, and a client that
/// sent the start of a method and no more is a slow HTTP client, for the header timeout to
/// end), then hands the connection and the bytes read to an HTTP session or a raw relay.
final class ProtocolSniffer: ConnectionDelegate, DrainableSession {
    private let shared: ProxyShared
    private let route: Route
    private let connection: Connection
    private var buffered: ByteBuffer?
    /// Monotonic nanoseconds of the first read.
    private var firstByteAt: UInt64?
    private var timer: ReactorTimer?
    private var decided = false

    init(shared: ProxyShared, route: Route, connection: Connection) {
        self.shared = shared
        self.route = route
        self.connection = connection
        connection.delegate = self
        armTimer(shared.configuration.protocolDetectionTimeoutNanos)
    }

    private func armTimer(_ nanos: UInt64) {
        timer = connection.reactor.schedule(in: nanos) { [self] in
            // Bytes waiting in the socket, not read yet (their event is in a later batch of a
            // busy loop), are not a client that sent nothing: let the read decide.
            if firstByteAt == nil, connection.isOpen, connection.hasBytesWaiting {
                armTimer(100_000_000)
                return
            }
            // Only a method's first letters came (anything else is decided at once).
            decide(firstByteAt == nil ? .raw : .needMore)
        }
    }

    func connectionRead(_ connection: Connection, _ incoming: ByteBuffer) {
        var incoming = incoming
        if buffered == nil {
            firstByteAt = monotonicNanos()
            buffered = incoming
        } else {
            buffered!.writeBuffer(&incoming)
        }
        let result = sniff(buffered!.readableBytesView)
        if result != .needMore { decide(result) }
    }

    func connectionReadComplete(_ connection: Connection) {}

    func connectionInputClosed(_ connection: Connection) {
        guard !decided else { return }
        if buffered == nil || buffered!.readableBytes == 0 {
            decided = true
            timer?.cancel()
            connection.close()
            return
        }
        decide(.raw)
    }

    func connectionWritabilityChanged(_ connection: Connection) {}

    func connectionClosed(_ connection: Connection, error: Int32?) {
        decided = true
        timer?.cancel()
        timer = nil
    }

    func drainRequested() {
        guard !decided else { return }
        decided = true
        timer?.cancel()
        connection.close()
    }

    private func decide(_ result: SniffResult) {
        guard !decided, connection.isOpen else { return }
        decided = true
        timer?.cancel()
        timer = nil
        let bytes = buffered
        buffered = nil
        switch result {
        case .http, .needMore:
            let handler = HTTPProxyHandler(shared: shared, route: route, connection: connection, firstByteAt: firstByteAt)
            if let bytes, bytes.readableBytes > 0 {
                handler.connectionRead(connection, bytes)
                if connection.isOpen { handler.connectionReadComplete(connection) }
            }
        case .raw:
            var record = route.record()
            record.proto = "tcp"
            let session = RelaySession(shared: shared, reactor: connection.reactor, route: route, record: record)
            session.start(downstream: connection, alreadyRead: bytes)
        }
    }
}
