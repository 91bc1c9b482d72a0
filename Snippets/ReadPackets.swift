// Reads a capture file and decodes its packets down to TCP segments (HopCapture).
//
//   swift run ReadPackets [FILE]      (default: Captures/lab-seed.pcap)
import HopCapture

let path = CommandLine.arguments.dropFirst().first ?? "Captures/lab-seed.pcap"
do {
    let source = try PcapSource.openFile(path)
    var decoder = PacketDecoder(linkType: source.linkType)
    var segment = TCPSegment.empty
    var segments = 0, payload = 0
    reading: while true {
        switch try source.next() {
        case .packet(let packet):
            // `segment` views libpcap's buffer: use it before the next read.
            if decoder.decode(packet, into: &segment) {
                segments += 1
                payload += segment.payload.count
            }
        case .timeout: continue
        case .end: break reading
        }
    }
    print("\(path): \(source.linkType.name), \(decoder.counters.packets) packets, \(segments) TCP segments, \(payload) payload bytes")
    // Nothing is dropped silently: every packet not decoded is counted with its reason.
    for c in decoder.counters.report where c.count > 0 { print("  \(c.count) \(c.name): \(c.explanation)") }
} catch {
    print("\(path): \(error)")
}
