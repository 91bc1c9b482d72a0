/// Limits and timeouts of a `ConnectionTable`. Every buffer has a cap; hitting one is counted
/// in `FlowCounters` and reported, never a crash and never unbounded memory.
public struct FlowConfiguration: Sendable, Hashable {
    /// Out-of-order bytes buffered per connection and direction before reassembly gives up on
    /// the hole (emits a gap and delivers what it holds).
    public var maxBufferedBytesPerDirection: Int = 1 << 20
    /// Out-of-order bytes buffered over all connections. 64 MiB (about 70 MB resident with
    /// the chunks' own cost) keeps a capture of many connections with holes under the 200 MB
    /// that hoptrace stays under whatever the capture (Benchmarks/README.md, adversarial
    /// captures: hole-flood).
    public var maxBufferedBytesTotal: Int = 64 << 20
    /// Connection states kept at once (open ones plus closed ones lingering); when full, the
    /// least recently active is dropped (a lingering closed one first, else an open one is
    /// closed with `.evicted`).
    public var maxConnections: Int = 100_000
    /// An open connection with no packet for this long (capture time, ns) is closed with
    /// `.idleTimeout`.
    public var idleTimeout: Int64 = 300 * 1_000_000_000
    /// How long a closed connection's state lingers (TIME_WAIT-like, capture time, ns) so that
    /// its last ACKs and retransmitted FINs are recognised rather than opening a new connection.
    public var closedLingerTimeout: Int64 = 30 * 1_000_000_000
    /// Two copies of one segment (same seq, ack, flags, length, IP id, TCP timestamps) captured
    /// within this many ns of each other at different capture points (interfaces, or directions
    /// on one interface) count once.
    public var duplicateWindow: Int64 = 5_000_000
    /// Join the two halves of a connection split by NAT (iptables REDIRECT in nat OUTPUT).
    public var joinNATHalves: Bool = true
    /// Ports taken to be the server's when a connection is picked up mid-stream (after these,
    /// any port below 1024, then a port outside the ephemeral range, then the first sender
    /// is taken as the client).
    public var wellKnownServerPorts: Set<UInt16> = [
        80, 443, 8080, 8443, 8000, 8888, 9080, 3000, 5000,
        15001, 15006, 15000, 15004, 15008, 15020, 15021, 15090, 9901,
    ]

    public init() {}
}
