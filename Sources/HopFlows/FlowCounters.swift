/// Named, counted reassembly events and anomalies (in the manner of Zeek's weird.log): nothing
/// unusual is dropped silently. `report` lists the non-zero ones with an explanation.
public struct FlowCounters: Sendable, Hashable {
    // Volume.
    /// Segments handed to `process` (duplicates included).
    public var segments = 0
    /// Connections created (a NAT-joined connection counts once).
    public var connections = 0
    /// Connections whose SYN was not captured: picked up from their first later packet.
    public var midStreamPickups = 0

    // Sequence anomalies.
    /// Segments repeating bytes already delivered or buffered (delivered once).
    public var retransmissions = 0
    public var retransmittedBytes = 0
    /// Retransmitted segments whose overlapping bytes differed from the first copy (kept).
    public var inconsistentRetransmissions = 0
    public var inconsistentBytes = 0
    /// Segments that arrived ahead of a hole and were buffered.
    public var outOfOrderSegments = 0
    /// SYNs or SYN-ACKs seen again with the same ISN.
    public var synRetransmissions = 0

    // Gaps (each is a `.gap` event), by cause.
    /// All gaps and their bytes.
    public var gaps = 0
    public var gapBytes = 0
    /// The peer acknowledged bytes that were never captured.
    public var gapsAckedUnseen = 0
    /// A hole still open when the connection closed (FIN, RST, idle, eviction, end of capture).
    public var gapsAtClose = 0
    /// A buffer cap was hit and reassembly gave up on the hole.
    public var gapsCapHit = 0
    /// A segment cut by snaplen: its missing tail.
    public var gapsTruncated = 0

    // Caps.
    /// Per connection-direction out-of-order buffer cap hits.
    public var bufferCapHitsPerDirection = 0
    /// Total out-of-order buffer cap hits.
    public var bufferCapHitsTotal = 0
    /// Open connections closed with `.evicted` because the table was full.
    public var tableEvictions = 0
    /// Closed connections' lingering state dropped early because the table was full.
    public var lingerEvictions = 0

    // Lifecycle.
    /// A new SYN on a 4-tuple still open, closing or recently closed, with a different ISN.
    public var portReuse = 0
    /// Copies of a segment captured at a second capture point (counted once).
    public var captureDuplicates = 0
    /// NAT-split halves joined on the SYN/SYN-ACK (ack = ISN + 1).
    public var natJoinedHandshake = 0
    /// NAT-split halves joined mid-stream on seq/ack continuity.
    public var natJoinedMidStream = 0
    /// Connections that ended with packets in one direction only (an unjoined NAT half, an
    /// unanswered SYN, or a direction not captured).
    public var oneSidedConnections = 0
    /// One-sided connections from a non-loopback client to a loopback server (only REDIRECT or
    /// DNAT produces such packets) whose reply half was never joined.
    public var unjoinedNATHalves = 0
    /// Segments with new content (data, SYN, RST…) on a connection already closed; ignored.
    public var segmentsAfterClose = 0
    /// Segments or ACKs more than 1 GiB (the largest TCP window) beyond the stream position;
    /// ignored rather than turned into a huge gap.
    public var implausibleSequenceNumbers = 0
    /// Segments timed before the latest packet of their connection (the capture's clock went
    /// back); their time was moved up to it, keeping the capture order.
    public var timestampsBackwards = 0
    /// RSTs on no known connection; ignored.
    public var strayResets = 0
    /// Closes by reason.
    public var closedByFIN = 0
    public var closedByReset = 0
    public var closedIdle = 0
    public var closedAtEnd = 0
    public var closedPortReuse = 0

    public init() {}

    /// Named non-zero counters, for reports: (name, count, explanation).
    public var report: [(name: String, count: Int, explanation: String)] {
        var out: [(String, Int, String)] = []
        func add(_ name: String, _ n: Int, _ why: String) {
            if n > 0 { out.append((name, n, why)) }
        }
        add("segments", segments, "TCP segments processed")
        add("connections", connections, "connections created (a NAT-joined connection counts once)")
        add("mid-stream-pickups", midStreamPickups, "connections whose SYN was not captured")
        add("retransmissions", retransmissions, "segments repeating bytes already seen (delivered once)")
        add("retransmitted-bytes", retransmittedBytes, "bytes of those segments already seen")
        add("inconsistent-retransmissions", inconsistentRetransmissions,
            "retransmitted segments whose overlapping bytes differ from the first copy (first copy kept)")
        add("inconsistent-bytes", inconsistentBytes, "overlapping bytes that differed")
        add("out-of-order-segments", outOfOrderSegments, "segments ahead of a hole, buffered until it filled")
        add("syn-retransmissions", synRetransmissions, "SYN or SYN-ACK seen again with the same ISN")
        add("gaps", gaps, "content gaps: bytes that will never be delivered")
        add("gap-bytes", gapBytes, "bytes in those gaps")
        add("gaps-acked-unseen", gapsAckedUnseen, "the peer acknowledged bytes that were not captured")
        add("gaps-at-close", gapsAtClose, "a hole still open when the connection closed or the capture ended")
        add("gaps-cap-hit", gapsCapHit, "a buffer cap was hit: reassembly gave up on the hole")
        add("gaps-truncated", gapsTruncated, "segment cut by snaplen: its missing tail")
        add("buffer-cap-per-direction", bufferCapHitsPerDirection,
            "out-of-order buffer of one connection direction reached its cap")
        add("buffer-cap-total", bufferCapHitsTotal, "out-of-order buffers of all connections reached their cap")
        add("table-evictions", tableEvictions, "open connections closed early because the connection table was full")
        add("linger-evictions", lingerEvictions, "closed connections' lingering state dropped because the table was full")
        add("port-reuse", portReuse, "new SYN with a different ISN on a 4-tuple in use or recently closed")
        add("capture-duplicates", captureDuplicates,
            "the same segment captured at a second point (another interface or direction), counted once")
        add("nat-joined-handshake", natJoinedHandshake, "NAT-split halves joined on SYN/SYN-ACK (ack = ISN + 1)")
        add("nat-joined-mid-stream", natJoinedMidStream, "NAT-split halves joined on seq/ack continuity")
        add("one-sided-connections", oneSidedConnections,
            "connections with packets in one direction only (unjoined NAT half, unanswered SYN, or a direction not captured)")
        add("unjoined-nat-halves", unjoinedNATHalves,
            "REDIRECTed halves (non-loopback client to a loopback server) whose replies were never joined")
        add("segments-after-close", segmentsAfterClose, "segments with new content on a closed connection, ignored")
        add("implausible-sequence-numbers", implausibleSequenceNumbers,
            "segment or ACK more than 1 GiB beyond the stream position, ignored")
        add("timestamps-backwards", timestampsBackwards,
            "segments timed before the latest packet of their connection (the clock went back): time moved up to it, keeping the capture order")
        add("stray-resets", strayResets, "RST on no known connection, ignored")
        add("closed-fin", closedByFIN, "connections closed by FIN both ways")
        add("closed-rst", closedByReset, "connections closed by RST")
        add("closed-idle", closedIdle, "connections closed by the idle timeout")
        add("closed-port-reuse", closedPortReuse, "connections closed because their 4-tuple was reused")
        add("open-at-end", closedAtEnd, "connections still open when the capture ended")
        return out
    }
}
