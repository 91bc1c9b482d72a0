import HopCapture

// The contract between reassembly (HopFlows) and the protocol analyzers that consume it
// (HopHTTP). Modelled on gopacket's reassembly Stream (Accept / ReassembledSG /
// ReassemblyComplete) and Zeek's analyzer tree: bytes are handed over in order, once,
// with explicit gaps; every anomaly is a named counter.

/// A connection's number: 1, 2, 3… in the order connections were first seen.
public struct ConnectionID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let value: Int
    public init(_ value: Int) { self.value = value }
    public static func < (a: ConnectionID, b: ConnectionID) -> Bool { a.value < b.value }
    public var description: String { "c\(value)" }
}

/// Which way bytes flow on a connection.
public enum FlowDirection: Int, Sendable, Hashable {
    /// From the side that opened the connection (sent the SYN).
    case clientToServer = 0
    /// The replies.
    case serverToClient = 1

    public var reversed: FlowDirection { self == .clientToServer ? .serverToClient : .clientToServer }
}

/// How a connection ended.
public enum CloseReason: Sendable, Hashable, CustomStringConvertible {
    /// Both sides sent FIN (and were acknowledged or the capture moved on).
    case fin
    /// A RST was sent by this side.
    case reset(by: FlowDirection)
    /// No packet for longer than the idle timeout (capture time).
    case idleTimeout
    /// The capture ended with the connection still open.
    case endOfCapture
    /// Closed early because the connection table was full.
    case evicted
    /// A new SYN arrived on the same 4-tuple after this connection closed (port reuse).
    case portReuse

    public var description: String {
        switch self {
        case .fin: "fin"
        case .reset(let by): by == .clientToServer ? "rst-by-client" : "rst-by-server"
        case .idleTimeout: "idle-timeout"
        case .endOfCapture: "open-at-end"
        case .evicted: "evicted"
        case .portReuse: "port-reuse"
        }
    }
}

/// Per-direction statistics of a connection.
public struct DirectionStats: Sendable, Hashable {
    /// Segments seen in this direction (duplicates seen at a second capture point excluded).
    public var segments = 0
    /// Payload bytes delivered in order.
    public var bytes = 0
    /// Bytes known to be missing (delivered as gaps).
    public var gapBytes = 0
    /// Segments that repeated bytes already delivered (retransmissions).
    public var retransmissions = 0
    /// Retransmitted bytes that differed from those already delivered.
    public var inconsistentRetransmissions = 0
    /// Segments that arrived ahead of a hole and were buffered.
    public var outOfOrder = 0
    public var sawFIN = false
    public var sawRST = false
    public init() {}
}

/// A TCP connection: both directions, its on-wire tuples, and (for a NAT-split connection)
/// the original destination.
public struct Connection: Sendable, Hashable {
    public let id: ConnectionID
    /// The side that sent the SYN (or, for a connection picked up mid-stream, the side judged to
    /// be the client: the one talking to a well-known, privileged or non-ephemeral port, else
    /// the first sender).
    public var client: Endpoint
    /// The destination of the client's packets as seen on the wire (for a REDIRECTed connection
    /// on `lo` this is `127.0.0.1:15001`, the proxy).
    public var server: Endpoint
    /// The source of the server's replies as seen on the wire, when it differs from `server`:
    /// the de-NATed half of a REDIRECTed connection (`remote:80`).
    public var replySource: Endpoint?
    /// The destination the client asked for before NAT (what the proxy read with
    /// SO_ORIGINAL_DST), learned from the reply half; nil unless the halves were joined.
    public var originalDestination: Endpoint?
    /// Time of the first packet (ns since the epoch).
    public var firstTimestamp: Int64
    /// Time of the last packet seen so far.
    public var lastTimestamp: Int64
    /// True when the three-way handshake (at least the SYN) was captured.
    public var sawHandshake: Bool
    public var clientISN: UInt32?
    public var serverISN: UInt32?
    /// Interface indexes the connection's packets were seen on (LINUX_SLL2), ascending.
    public var interfaceIndexes: [Int32] = []
    /// [clientToServer, serverToClient]
    public var stats: [DirectionStats] = [DirectionStats(), DirectionStats()]
    /// Set when the connection is closed.
    public var closeReason: CloseReason?

    public init(id: ConnectionID, client: Endpoint, server: Endpoint, firstTimestamp: Int64, sawHandshake: Bool) {
        self.id = id
        self.client = client
        self.server = server
        self.firstTimestamp = firstTimestamp
        self.lastTimestamp = firstTimestamp
        self.sawHandshake = sawHandshake
    }

    /// True when the two halves of a REDIRECTed connection were joined.
    public var isNATJoined: Bool { replySource != nil }

    public subscript(direction: FlowDirection) -> DirectionStats {
        get { stats[direction.rawValue] }
        set { stats[direction.rawValue] = newValue }
    }
}

/// What reassembly tells a consumer, in capture order.
///
/// `data`'s bytes are a view valid only during the call: copy what must be kept.
///
/// `opened` and `closed` are `indirect` (boxed, once per connection) so that the enum stays
/// small: a `data` event, the one sent per segment, is then a few words instead of a whole
/// `Connection` to copy. Source-compatible: names, payloads and pattern matching are unchanged.
public enum StreamEvent {
    /// A new connection (its handshake or, mid-stream, its first packet). Sent when the reply
    /// direction is first seen (so a NAT-split connection joined on its handshake already carries
    /// `replySource` and `originalDestination`), or just before the connection's first `data`,
    /// `gap` or `closed` event, whichever comes first.
    indirect case opened(Connection)
    /// Bytes in order, each byte once. `first` is the capture time of the segment that carried
    /// the first byte; `last` the time the last byte became deliverable: its segment's capture
    /// time or, for bytes held behind a hole, the time of the segment that filled the hole (a
    /// late retransmission completes what followed it; a hole given up as a gap does not move
    /// the time).
    case data(ConnectionID, FlowDirection, UnsafeRawBufferPointer, first: Int64, last: Int64)
    /// `length` bytes in this direction will never be delivered (not captured, or a cap was hit).
    case gap(ConnectionID, FlowDirection, length: Int, at: Int64)
    /// The connection ended; the value carries its final statistics and `closeReason`.
    indirect case closed(Connection)
}

/// Something that consumes stream events (an HTTP analyzer, a flow printer, a test recorder).
public protocol StreamEventConsumer: AnyObject {
    func handle(_ event: StreamEvent)
}
