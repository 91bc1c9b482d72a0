@testable import HopCapture
import HopTestSupport
import XCTest

/// A pcapng file built block by block, in either byte order.
struct PcapngBuilder {
    var bigEndian = false
    var bytes: [UInt8] = []

    init(bigEndian: Bool = false, sectionHeader: Bool = true) {
        self.bigEndian = bigEndian
        if sectionHeader { section() }
    }

    func u16(_ v: UInt16) -> [UInt8] { withUnsafeBytes(of: bigEndian ? v.bigEndian : v.littleEndian) { Array($0) } }
    func u32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: bigEndian ? v.bigEndian : v.littleEndian) { Array($0) } }
    func u64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: bigEndian ? v.bigEndian : v.littleEndian) { Array($0) } }

    func block(_ type: UInt32, _ body: [UInt8]) -> [UInt8] {
        var body = body
        while body.count % 4 != 0 { body.append(0) }
        let len = UInt32(12 + body.count)
        return u32(type) + u32(len) + body + u32(len)
    }

    func option(_ code: UInt16, _ value: [UInt8]) -> [UInt8] {
        var v = value
        while v.count % 4 != 0 { v.append(0) }
        return u16(code) + u16(UInt16(value.count)) + v
    }

    /// A section header (a new section: its interfaces start again at 0).
    mutating func section(bigEndian: Bool? = nil) {
        if let b = bigEndian { self.bigEndian = b }
        bytes += block(0x0A0D_0D0A, u32(0x1A2B_3C4D) + u16(1) + u16(0) + u64(UInt64.max))
    }

    mutating func interface(_ linkType: UInt16, snaplen: UInt32 = 262_144, name: String? = nil,
                            tsresol: UInt8? = nil, tsoffset: Int64? = nil) {
        var options: [UInt8] = []
        if let name { options += option(2, Array(name.utf8)) }
        if let tsresol { options += option(9, [tsresol]) }
        if let tsoffset { options += option(14, u64(UInt64(bitPattern: tsoffset))) }
        if !options.isEmpty { options += u16(0) + u16(0) }
        bytes += block(1, u16(linkType) + u16(0) + u32(snaplen) + options)
    }

    mutating func packet(_ data: [UInt8], interface: UInt32 = 0, ticks: UInt64 = 1_700_000_000_000_000, wireLength: Int? = nil) {
        bytes += block(6, u32(interface) + u32(UInt32(ticks >> 32)) + u32(UInt32(ticks & 0xffff_ffff))
            + u32(UInt32(data.count)) + u32(UInt32(wireLength ?? data.count)) + data)
    }

    mutating func simplePacket(_ data: [UInt8], wireLength: Int? = nil) {
        bytes += block(3, u32(UInt32(wireLength ?? data.count)) + data)
    }

    mutating func obsoletePacket(_ data: [UInt8], interface: UInt16 = 0, ticks: UInt64) {
        bytes += block(2, u16(interface) + u16(0) + u32(UInt32(ticks >> 32)) + u32(UInt32(ticks & 0xffff_ffff))
            + u32(UInt32(data.count)) + u32(UInt32(data.count)) + data)
    }
}

/// What a source read: each packet's time, link type, interface and segment; the error that ended it.
struct ReadAll {
    var times: [Int64] = []
    var linkTypes: [LinkType?] = []
    var interfaces: [Int32?] = []
    var ports: [UInt16] = []
    var lengths: [Int] = []
    var error: CaptureError?
    var source: PcapSource?
}

final class PcapngReaderTests: XCTestCase {
    static let ethernetLink: UInt16 = 1, rawLink: UInt16 = 101, sllLink: UInt16 = 113

    static func tcp(_ port: UInt16) -> [UInt8] {
        PB.ipv4(payload: PB.tcp(sport: port, dport: 80, seq: 1, payload: Array("x".utf8)))
    }
    static func ethernet(_ port: UInt16) -> [UInt8] { PB.ethernet(payload: tcp(port)) }

    func read(_ bytes: [UInt8], filter: String? = nil, viaFile: Bool = false) throws -> ReadAll {
        let source: PcapSource
        if viaFile {
            let url = FileManager.default.temporaryDirectory.appendingPathComponent("pcapng-\(getpid())-\(UUID().uuidString).pcapng")
            try Data(bytes).write(to: url)
            defer { try? FileManager.default.removeItem(at: url) }
            source = try PcapSource.openFile(url.path)
        } else {
            source = try PcapSource.openMemory(bytes, name: "t.pcapng")
        }
        if let filter { try source.setFilter(filter) }
        var out = ReadAll(source: source)
        var decoder = PacketDecoder(linkType: source.linkType)
        while true {
            do {
                guard case .packet(let p) = try source.next() else { break }
                out.times.append(p.timestamp)
                out.linkTypes.append(p.linkType)
                out.interfaces.append(p.interface)
                out.lengths.append(p.bytes.count)
                if let s = decoder.decode(p) { out.ports.append(s.source.port) }
            } catch {
                out.error = error
                break
            }
        }
        return out
    }

    func testBothByteOrdersAndTheFileAndMemoryPathsReadTheSame() throws {
        for bigEndian in [false, true] {
            var f = PcapngBuilder(bigEndian: bigEndian)
            f.interface(Self.ethernetLink)
            f.packet(Self.ethernet(1001), ticks: 1_700_000_000_123_456)
            f.packet(Self.ethernet(1002), ticks: 1_700_000_001_000_001)
            for viaFile in [false, true] {
                let r = try read(f.bytes, viaFile: viaFile)
                XCTAssertNil(r.error)
                XCTAssertEqual(r.ports, [1001, 1002], "big-endian \(bigEndian)")
                XCTAssertEqual(r.times, [1_700_000_000_123_456_000, 1_700_000_001_000_001_000])
                // One nameless interface: no interface is said (as a classic pcap).
                XCTAssertEqual(r.interfaces, [nil, nil])
                XCTAssertEqual(r.source?.linkType, .ethernet)
            }
        }
    }

    func testInterfacesOfSeveralLinkTypesAreEachDecodedWithTheirOwn() throws {
        var f = PcapngBuilder()
        f.interface(Self.ethernetLink, name: "eth0")
        f.packet(Self.ethernet(1))
        f.interface(Self.sllLink, name: "any")
        f.packet(PB.sll(payload: Self.tcp(2)), interface: 1)
        f.interface(Self.rawLink, name: "tun0")
        f.packet(Self.tcp(3), interface: 2)
        f.packet(Self.ethernet(4), interface: 0)
        let r = try read(f.bytes)
        XCTAssertNil(r.error)
        XCTAssertEqual(r.ports, [1, 2, 3, 4])
        XCTAssertEqual(r.interfaces, [0, 1, 2, 0])
        XCTAssertEqual(r.linkTypes, [.ethernet, .linuxSLL, .raw, .ethernet])
        XCTAssertEqual(r.source?.interfaces.map(\.displayName), ["eth0", "any", "tun0"])
        XCTAssertEqual(r.source?.interfaceName(ordinal: 2), "tun0")

        // A BPF filter applies to every packet, compiled for its interface's link type.
        let tcp = try read(f.bytes, filter: "tcp src port 3 or tcp src port 2")
        XCTAssertEqual(tcp.ports, [2, 3])
        XCTAssertNil(tcp.error)
        // An expression that does not compile for a later link type lets none of its packets through.
        let ether = try read(f.bytes, filter: "ether src 00:00:00:00:00:00 or ether broadcast or tcp")
        XCTAssertEqual(ether.ports, [1, 4])
        XCTAssertEqual(ether.source?.filterUnmatched, 2)
        XCTAssertThrowsError(try read(f.bytes, filter: "tcp port"))
    }

    func testSeveralSectionsEachWithItsInterfacesAndByteOrder() throws {
        var f = PcapngBuilder()
        f.interface(Self.ethernetLink, name: "a")
        f.packet(Self.ethernet(1))
        f.section(bigEndian: true)
        f.interface(Self.rawLink, name: "b")
        f.interface(Self.ethernetLink, name: "c")
        f.packet(Self.ethernet(2), interface: 1)
        f.packet(Self.tcp(3), interface: 0)
        let r = try read(f.bytes)
        XCTAssertNil(r.error)
        XCTAssertEqual(r.ports, [1, 2, 3])
        XCTAssertEqual(r.interfaces, [0, 2, 1])
        XCTAssertEqual(r.source?.interfaces.map(\.section), [0, 1, 1])
        XCTAssertEqual(r.source?.interfaces.map(\.id), [0, 0, 1])

        // A packet on an interface its section has not declared: an error after the packets before it.
        var g = PcapngBuilder()
        g.interface(Self.ethernetLink)
        g.interface(Self.ethernetLink)
        g.packet(Self.ethernet(1), interface: 1)
        g.section()
        g.interface(Self.ethernetLink)
        g.packet(Self.ethernet(2), interface: 1)
        let bad = try read(g.bytes)
        XCTAssertEqual(bad.ports, [1])
        XCTAssertTrue(bad.error?.description.contains("after packet 1") == true, "\(String(describing: bad.error))")
        XCTAssertTrue(bad.error?.description.contains("on interface 1, but its section declares 1 interface") == true,
                      "\(String(describing: bad.error))")
    }

    func testTimeResolutionsAndOffsets() throws {
        var f = PcapngBuilder()
        f.interface(Self.ethernetLink, tsresol: 6)
        f.interface(Self.ethernetLink, tsresol: 9)
        f.interface(Self.ethernetLink, tsresol: 0x80 | 20)  // 2^-20 s
        f.interface(Self.ethernetLink, tsresol: 3, tsoffset: 100)
        f.interface(Self.ethernetLink, tsresol: 12, tsoffset: -1_000_000_000_000)
        f.interface(Self.ethernetLink, tsresol: 0x80)  // 2^0: seconds
        f.packet(Self.ethernet(1), interface: 0, ticks: 1_500_000)
        f.packet(Self.ethernet(2), interface: 1, ticks: 1_700_000_000_123_456_789)
        f.packet(Self.ethernet(3), interface: 2, ticks: 3 << 20 | 1 << 19)  // 3.5 s
        f.packet(Self.ethernet(4), interface: 3, ticks: 2_500)  // 2.5 s + 100 s
        f.packet(Self.ethernet(5), interface: 4, ticks: 1_000_000_000_000_001)  // 1000 s + 1 ps, less 10^12 s: clamped at 0
        f.packet(Self.ethernet(6), interface: 5, ticks: 42)
        f.obsoletePacket(Self.ethernet(7), interface: 1, ticks: 5_000_000_001)
        f.simplePacket(Self.ethernet(8))
        let r = try read(f.bytes)
        XCTAssertNil(r.error)
        XCTAssertEqual(r.ports, [1, 2, 3, 4, 5, 6, 7, 8])
        XCTAssertEqual(r.times, [1_500_000_000, 1_700_000_000_123_456_789, 3_500_000_000, 102_500_000_000, 0, 42_000_000_000,
                                 5_000_000_001, 0])
        // Past the clamp, whatever the resolution.
        XCTAssertEqual(PcapngReader.nanoseconds(.max, CaptureInterface(ordinal: 0, section: 0, id: 0, linkType: .ethernet, snaplen: 0,
                                                                       resolution: 19)), 1_844_674_407)
        for (resolution, binary) in [(UInt8(0), false), (6, false), (9, false), (1, true), (63, true)] {
            let i = CaptureInterface(ordinal: 0, section: 0, id: 0, linkType: .ethernet, snaplen: 0, resolution: resolution,
                                     binaryResolution: binary, offsetSeconds: .max)
            XCTAssertEqual(PcapngReader.nanoseconds(.max, i), PcapSource.timestampLimit - 1)
        }

        // A resolution finer than 64 bits hold: an error.
        var g = PcapngBuilder()
        g.interface(Self.ethernetLink, tsresol: 20)
        g.packet(Self.ethernet(1))
        XCTAssertThrowsError(try read(g.bytes))
    }

    func testSimplePacketsAreCutToTheSnaplenAndUnknownBlocksSkipped() throws {
        var f = PcapngBuilder()
        f.bytes += f.block(0x0000_0BAD, [1, 2, 3, 4, 5])        // custom
        f.bytes += f.block(4, [0, 0, 0, 0])                      // name resolution
        f.interface(Self.ethernetLink, snaplen: 54)
        f.bytes += f.block(5, [UInt8](repeating: 7, count: 24))  // interface statistics
        f.bytes += f.block(10, [UInt8](repeating: 9, count: 16)) // decryption secrets
        f.bytes += f.block(0x7777_7777, [])                      // unknown, empty
        f.simplePacket(Self.ethernet(1))
        let r = try read(f.bytes)
        XCTAssertNil(r.error)
        XCTAssertEqual(r.lengths, [54])  // the headers, not the 1-byte payload
        XCTAssertEqual(r.ports, [1])
    }

    func testATruncatedLastBlockIsReportedAfterThePacketsBeforeIt() throws {
        var f = PcapngBuilder()
        f.interface(Self.ethernetLink)
        f.packet(Self.ethernet(1))
        f.packet(Self.ethernet(2))
        let whole = f.bytes
        for cut in [1, 4, 9, 30, whole.count - (whole.count - 60)] {
            let r = try read(Array(whole.dropLast(cut)), viaFile: true)
            XCTAssertEqual(r.ports, [1], "cut \(cut)")
            guard case .truncatedFile(_, let n, let detail)? = r.error else { return XCTFail("cut \(cut): \(String(describing: r.error))") }
            XCTAssertEqual(n, 1)
            XCTAssertTrue(detail.hasPrefix("pcapng: truncated pcapng file"), detail)
        }
        // Cut inside the section header: nothing to read, said as truncation.
        XCTAssertThrowsError(try read(Array(whole.prefix(20)), viaFile: true)) { error in
            guard case CaptureError.truncatedFile(_, 0, _) = error else { return XCTFail("\(error)") }
        }
    }

    func testHostileLengthsAreErrorsNeverTraps() throws {
        var f = PcapngBuilder()
        f.interface(Self.ethernetLink)
        f.packet(Self.ethernet(1))
        let good = f.bytes
        func withBlock(_ block: [UInt8]) -> [UInt8] { good + block }
        let e = PcapngBuilder()
        let hostile: [(String, [UInt8])] = [
            ("length 0", e.u32(6) + e.u32(0) + [UInt8](repeating: 0, count: 32)),
            ("length 8", e.u32(6) + e.u32(8) + e.u32(8)),
            ("length not a multiple of 4", e.u32(6) + e.u32(33) + [UInt8](repeating: 0, count: 40)),
            ("length 2^32 - 4", e.u32(6) + e.u32(0xffff_fffc) + [UInt8](repeating: 0, count: 40)),
            ("length 0x80000000", e.u32(6) + e.u32(0x8000_0000) + [UInt8](repeating: 0, count: 40)),
            ("trailer differs", e.u32(6) + e.u32(32) + [UInt8](repeating: 0, count: 20) + e.u32(36)),
            ("caplen past the block", e.block(6, e.u32(0) + e.u32(0) + e.u32(0) + e.u32(0xffff_ffff) + e.u32(0xffff_ffff) + [1, 2, 3, 4])),
            ("caplen one past", e.block(6, e.u32(0) + e.u32(0) + e.u32(0) + e.u32(5) + e.u32(5) + [1, 2, 3, 4])),
            ("EPB too short", e.block(6, e.u32(0) + e.u32(0))),
            ("interface 2^32 - 1", e.block(6, e.u32(0xffff_ffff) + e.u32(0) + e.u32(0) + e.u32(0) + e.u32(0))),
            ("PB too short", e.block(2, e.u32(0))),
            ("SPB too short", e.block(3, [])),
            ("IDB too short", e.block(1, e.u32(1))),
            ("SHB bad magic", e.block(0x0A0D_0D0A, e.u32(0x1234_5678) + e.u32(0) + e.u64(0))),
            ("SHB length 12", [0x0A, 0x0D, 0x0D, 0x0A] + e.u32(12) + e.u32(0x1A2B_3C4D)),
            ("SHB version 2", e.block(0x0A0D_0D0A, e.u32(0x1A2B_3C4D) + e.u16(2) + e.u16(0) + e.u64(0))),
        ]
        for (what, block) in hostile {
            let r = try read(withBlock(block))
            XCTAssertEqual(r.ports, [1], what)
            guard case .truncatedFile(_, 1, let detail)? = r.error else { XCTFail("\(what): \(String(describing: r.error))"); continue }
            XCTAssertTrue(detail.hasPrefix("pcapng: "), detail)
        }
        // Options that run past their block, or claim 65535 bytes: the options end, the packets are read.
        var o = PcapngBuilder()
        o.bytes += o.block(1, o.u16(1) + o.u16(0) + o.u32(0) + o.u16(2) + o.u16(0xffff) + Array("eth0".utf8))
        o.bytes += o.block(1, o.u16(1) + o.u16(0) + o.u32(0) + o.u16(9) + o.u16(1))
        o.packet(Self.ethernet(1), interface: 1)
        let r = try read(o.bytes)
        XCTAssertNil(r.error)
        XCTAssertEqual(r.ports, [1])
        XCTAssertEqual(r.source?.interfaces.map(\.name), [nil, nil])

        // No interface before the first packet, or none at all: not a capture libpcap reads either.
        var n = PcapngBuilder()
        n.packet(Self.ethernet(1))
        XCTAssertThrowsError(try read(n.bytes)) { XCTAssertTrue("\($0)".contains("no interface description block"), "\($0)") }
        XCTAssertThrowsError(try read(PcapngBuilder().bytes))
    }

    /// Random bytes after a valid start, and random cuts and flips of a valid file: never a trap.
    func testRandomDamageNeverTraps() throws {
        var f = PcapngBuilder()
        f.interface(Self.ethernetLink, name: "eth0", tsresol: 9)
        for i in 0..<20 { f.packet(Self.ethernet(UInt16(i))) }
        f.simplePacket(Self.ethernet(99))
        let whole = f.bytes
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            var b = whole
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            b = Array(b.prefix(Int.random(in: 0...b.count, using: &rng)))
            _ = try? read(b)
        }
    }
}
