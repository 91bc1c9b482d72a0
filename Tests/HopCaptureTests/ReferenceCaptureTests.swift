import Foundation
import XCTest
@testable import HopCapture

/// Every capture in `Captures/` (and `Captures/third-party/`) decoded by hoptrace and compared,
/// packet by packet, with tshark's fields written to `Captures/reference/NAME.tsv` by
/// `Captures/make-captures.sh`.
final class ReferenceCaptureTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let captures = root.appendingPathComponent("Captures")

    struct Row {
        var frame: Int
        var timeNs: Int64
        var src: String
        var dst: String
        var sport: UInt16
        var dport: UInt16
        var seq: UInt32
        var ack: UInt32
        var flags: UInt8
        var len: Int
        var window: UInt16
        var mss: UInt16?
        var wscale: UInt8?
        var tsval: UInt32?
        var ifindex: Int32?
        var pkttype: UInt8?
    }

    /// Parses `seconds.fraction` into nanoseconds exactly.
    static func epochNs(_ s: Substring) -> Int64? {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard let secs = Int64(parts[0]) else { return nil }
        var frac = parts.count > 1 ? String(parts[1]) : ""
        frac = String((frac + "000000000").prefix(9))
        guard let ns = Int64(frac) else { return nil }
        return secs * 1_000_000_000 + ns
    }

    static func loadReference(_ url: URL) throws -> [Int: Row] {
        let text = try String(contentsOf: url, encoding: .utf8)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        guard !lines.isEmpty else { return [:] }
        let header = lines.removeFirst().split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        func col(_ name: String) -> Int? { header.firstIndex(of: name) }
        var rows: [Int: Row] = [:]
        for line in lines {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false)
            func v(_ name: String) -> Substring? {
                guard let i = col(name), i < f.count, !f[i].isEmpty else { return nil }
                return f[i].split(separator: ",").first  // tunnels/ICMP errors list several; the first is the outer
            }
            guard let frame = v("frame.number").flatMap({ Int($0) }) else { continue }
            let flagsText = v("tcp.flags").map { $0.hasPrefix("0x") ? $0.dropFirst(2) : $0 } ?? "0"
            rows[frame] = Row(
                frame: frame, timeNs: v("frame.time_epoch").flatMap(epochNs) ?? 0,
                src: String(v("ip.src") ?? v("ipv6.src") ?? ""), dst: String(v("ip.dst") ?? v("ipv6.dst") ?? ""),
                sport: UInt16(v("tcp.srcport") ?? "") ?? 0, dport: UInt16(v("tcp.dstport") ?? "") ?? 0,
                seq: UInt32(v("tcp.seq_raw") ?? "") ?? 0, ack: UInt32(v("tcp.ack_raw") ?? "") ?? 0,
                flags: UInt8(truncatingIfNeeded: UInt16(flagsText, radix: 16) ?? 0),
                len: Int(v("tcp.len") ?? "") ?? 0, window: UInt16(v("tcp.window_size_value") ?? "") ?? 0,
                mss: v("tcp.options.mss_val").flatMap { UInt16($0) },
                wscale: v("tcp.options.wscale.shift").flatMap { UInt8($0) },
                tsval: v("tcp.options.timestamp.tsval").flatMap { UInt32($0) },
                ifindex: v("sll.ifindex").flatMap { Int32($0) },
                pkttype: v("sll.pkttype").flatMap { UInt8($0) })
        }
        return rows
    }

    /// The capture files that have a reference TSV: `reference/NAME.tsv` for `Captures/NAME`,
    /// `reference/third-party/P/NAME.tsv` for `Captures/third-party/P/NAME`.
    static func referencedCaptures() throws -> [(capture: URL, reference: URL)] {
        let refDir = captures.appendingPathComponent("reference")
        let fm = FileManager.default
        var out: [(URL, URL)] = []
        guard let walker = fm.enumerator(atPath: refDir.path) else { return [] }
        for case let relative as String in walker where relative.hasSuffix(".tsv") {
            let base = String(relative.dropLast(4))
            let capture = captures.appendingPathComponent(base)
            if fm.fileExists(atPath: capture.path) {
                out.append((capture, refDir.appendingPathComponent(relative)))
            }
        }
        return out.sorted { $0.0.path < $1.0.path }
    }

    func testEveryReferencedCaptureMatchesTsharkPacketByPacket() throws {
        let pairs = try Self.referencedCaptures()
        XCTAssertGreaterThanOrEqual(pairs.count, 20, "expected the bundled captures and their tshark references")
        var linkTypes = Set<String>()
        for (capture, reference) in pairs {
            let name = capture.lastPathComponent
            let expected = try Self.loadReference(reference)
            let source = try PcapSource.openFile(capture.path)
            linkTypes.insert(source.linkType.name)
            XCTAssertTrue(source.linkType.isSupported, "\(name): \(source.linkType)")
            var decoder = PacketDecoder(linkType: source.linkType)
            var seen = Set<Int>()
            while case .packet(let p) = try source.next() {
                guard let s = decoder.decode(p) else { continue }
                seen.insert(p.index)
                guard let r = expected[p.index] else {
                    XCTFail("\(name) packet \(p.index): hoptrace decoded a TCP segment tshark does not list")
                    continue
                }
                let at = "\(name) packet \(p.index)"
                XCTAssertEqual(s.timestamp, r.timeNs, at)
                XCTAssertEqual(s.source.address.description, r.src, at)
                XCTAssertEqual(s.destination.address.description, r.dst, at)
                XCTAssertEqual(s.source.port, r.sport, at)
                XCTAssertEqual(s.destination.port, r.dport, at)
                XCTAssertEqual(s.sequenceNumber, r.seq, at)
                XCTAssertEqual(s.acknowledgementNumber, r.ack, at)
                XCTAssertEqual(s.flags.rawValue, r.flags, at)
                XCTAssertEqual(s.payloadLength, r.len, at)
                XCTAssertEqual(s.window, r.window, at)
                XCTAssertEqual(s.options.mss, r.mss, at)
                XCTAssertEqual(s.options.windowScale, r.wscale, at)
                XCTAssertEqual(s.options.timestampValue, r.tsval, at)
                if source.linkType == .linuxSLL2 { XCTAssertEqual(s.interfaceIndex, r.ifindex, at) }
                if source.linkType == .linuxSLL || source.linkType == .linuxSLL2 {
                    XCTAssertEqual(s.direction?.rawValue, r.pkttype, at)
                }
            }
            XCTAssertTrue(decoder.counters.isBalanced, "\(name): every packet accounted for")
            // Fragmented segments too: both list them at the fragment that completed them.
            let missing = Set(expected.keys).subtracting(seen)
            XCTAssertEqual(missing.sorted(), [], "\(name): tshark lists TCP packets hoptrace did not decode")
        }
        for required in ["EN10MB", "LINUX_SLL", "LINUX_SLL2", "NULL", "LOOP", "RAW", "IPV4", "IPV6"] {
            XCTAssertTrue(linkTypes.contains(required), "no reference capture of link type \(required) (have \(linkTypes.sorted()))")
        }
    }
}
