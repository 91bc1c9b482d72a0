/// Reassembly of IP-fragmented TCP segments (IPv4 fragments, IPv6 fragment headers), as tshark
/// and Zeek do it: a fragment's bytes are held until every byte of its datagram has arrived, and
/// the whole segment is decoded at the fragment that completed it (the packet tshark lists the
/// reassembled segment at).
///
/// Bounded: a datagram whose fragments have not all arrived within 30 s of capture time (Linux's
/// `ipfrag_time`) is given up, and so are the oldest ones while more than 64 MiB is held. A
/// datagram whose fragments reach past 65,535 bytes, or whose last fragment disagrees with
/// another about where it ends, is dropped as malformed. Overlapping fragments are accepted, the
/// later bytes winning.
final class FragmentReassembler {
    struct Key: Hashable {
        var source: IPAddress
        var destination: IPAddress
        /// IPv4: the identification and the protocol; IPv6: the fragment header's identification.
        var id: UInt32
        var ipv6: Bool
    }

    struct Datagram {
        var bytes: [UInt8] = []
        /// Byte ranges received, sorted and merged.
        var ranges: [Range<Int>] = []
        /// The datagram's length, once its last fragment has arrived.
        var total: Int? = nil
        var firstTimestamp: Int64
        var firstPacket: Int
    }

    enum Outcome {
        /// Held until the rest arrives.
        case held
        /// Complete: the reassembled payload (valid until the next call).
        case complete(UnsafeRawBufferPointer)
        /// Past 65,535 bytes or inconsistent ends: the datagram is dropped.
        case invalid
    }

    static let maxAge: Int64 = 30_000_000_000
    static let maxHeldBytes = 64 << 20
    static let maxDatagramBytes = 65_535

    private var datagrams: [Key: Datagram] = [:]
    private var heldBytes = 0
    private var nextSweep: Int64 = .min
    /// The last reassembled payload; a segment decoded from it points here.
    private let output = UnsafeMutableRawBufferPointer.allocate(byteCount: FragmentReassembler.maxDatagramBytes, alignment: 8)

    deinit { output.deallocate() }

    /// Datagrams waiting for fragments, and the packet index of the oldest one's first fragment.
    var pending: (count: Int, firstPacket: Int) {
        (datagrams.count, datagrams.values.map(\.firstPacket).min() ?? 0)
    }

    /// Adds a fragment: `data` are its captured bytes at byte `offset` of the datagram's payload;
    /// `announced` is how many bytes its header says it carries (more than `data.count` when
    /// snaplen cut it: the gap then never fills and the datagram is eventually given up).
    /// `gaveUp` is told the first packet of each datagram given up on the way.
    func add(_ key: Key, offset: Int, data: UnsafeRawBufferPointer, announced: Int, last: Bool,
             timestamp: Int64, packet: Int, gaveUp: (Int) -> Void) -> Outcome {
        if timestamp >= nextSweep {
            nextSweep = timestamp &+ 1_000_000_000
            for (k, d) in datagrams where timestamp - d.firstTimestamp > Self.maxAge {
                drop(k)
                gaveUp(d.firstPacket)
            }
        }
        let end = offset + announced
        var d = datagrams.removeValue(forKey: key) ?? Datagram(firstTimestamp: timestamp, firstPacket: packet)
        heldBytes -= d.bytes.count
        guard end <= Self.maxDatagramBytes, !(last && d.total != nil && d.total != end),
              d.total.map({ end <= $0 }) ?? true else {
            return .invalid
        }
        if last { d.total = end }
        let capturedEnd = offset + data.count
        if d.bytes.count < capturedEnd { d.bytes.append(contentsOf: repeatElement(0, count: capturedEnd - d.bytes.count)) }
        d.bytes.withUnsafeMutableBytes { dst in
            UnsafeMutableRawBufferPointer(rebasing: dst[offset..<capturedEnd]).copyMemory(from: data)
        }
        if capturedEnd > offset { Self.insert(offset..<capturedEnd, into: &d.ranges) }
        if let total = d.total, d.ranges.count == 1, d.ranges[0] == 0..<total {
            d.bytes.withUnsafeBytes { src in output.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[0..<total])) }
            return .complete(UnsafeRawBufferPointer(rebasing: output[0..<total]))
        }
        heldBytes += d.bytes.count
        datagrams[key] = d
        while heldBytes > Self.maxHeldBytes, let oldest = datagrams.min(by: { $0.value.firstTimestamp < $1.value.firstTimestamp }) {
            drop(oldest.key)
            gaveUp(oldest.value.firstPacket)
        }
        return .held
    }

    private func drop(_ key: Key) {
        if let d = datagrams.removeValue(forKey: key) { heldBytes -= d.bytes.count }
    }

    /// Inserts a range into sorted, merged ranges, merging what it touches.
    static func insert(_ r: Range<Int>, into ranges: inout [Range<Int>]) {
        var lower = r.lowerBound, upper = r.upperBound
        var i = 0
        while i < ranges.count, ranges[i].upperBound < lower { i += 1 }
        var j = i
        while j < ranges.count, ranges[j].lowerBound <= upper {
            lower = min(lower, ranges[j].lowerBound)
            upper = max(upper, ranges[j].upperBound)
            j += 1
        }
        ranges.replaceSubrange(i..<j, with: [lower..<upper])
    }
}
