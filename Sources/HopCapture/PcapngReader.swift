#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One interface of a pcapng file (an interface description block).
public struct CaptureInterface: Sendable, Equatable {
    /// Its position among every interface of the file (0-based, all sections counted).
    public var ordinal: Int
    /// The section it belongs to (0-based) and its ID there (what packets name it by).
    public var section: Int
    public var id: Int
    public var linkType: LinkType
    public var snaplen: UInt32
    /// `if_name` and `if_description`, when the file gives them.
    public var name: String?
    public var description: String?
    /// `if_tsresol`: ticks per second are 10^resolution (or 2^resolution when `binary`).
    public var resolution: UInt8 = 6
    public var binaryResolution = false
    /// `if_tsoffset`: seconds added to every time.
    public var offsetSeconds: Int64 = 0

    /// How the file's reports name it: `if_name`, or `ifN` (N its ordinal).
    public var displayName: String { name ?? "if\(ordinal)" }
}

/// A packet block, as `PcapngReader.next` hands it over (`data` valid until the next read).
struct PcapngPacket {
    var timestamp: Int64 = 0
    var capturedLength = 0
    var wireLength = 0
    var data: UnsafeRawPointer?
    /// The interface's ordinal in `PcapngReader.interfaces`.
    var interface = 0
}

/// Why a pcapng file cannot be read on.
enum PcapngFailure: Error {
    /// The first block is not a section header hoptrace reads.
    case notPcapng(String)
    /// The file ends inside a block, or a block is corrupt: what came before it was read.
    case corrupt(String)
}

/// A reader of pcapng files (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-02.html),
/// block by block: section headers (either byte order, any number of sections), interface
/// descriptions (link type, snaplen, `if_name`, `if_description`, `if_tsresol`, `if_tsoffset`),
/// enhanced, simple and (obsolete) packet blocks; every other block is skipped by its length.
/// Unlike libpcap it reads interfaces of different link types: every packet comes with its
/// interface. Every length is checked before it is used (a hostile file is an error, never a
/// trap); a block is read in place from one buffer (no copy per packet). Its state is used by
/// one thread: `@exclusivity(unchecked)` spares a dynamic check at every field read.
final class PcapngReader {
    /// A block larger than this is corrupt (libpcap's bound is 16 MiB too).
    static let maxBlockBytes = 16 << 20
    static let sectionHeaderType: UInt32 = 0x0A0D_0D0A
    static let byteOrderMagic: UInt32 = 0x1A2B_3C4D

    /// Every interface declared so far, in file order.
    @exclusivity(unchecked) private(set) var interfaces: [CaptureInterface] = []
    /// What each packet needs of its interface, by ordinal (no strings: nothing to retain per packet).
    @exclusivity(unchecked) private(set) var clocks: [Clock] = []
    @exclusivity(unchecked) private(set) var linkTypes: [LinkType] = []
    @exclusivity(unchecked) private(set) var named: [Bool] = []

    /// An interface's time resolution and offset.
    struct Clock {
        var resolution: UInt8 = 6
        var binary = false
        var offsetSeconds: Int64 = 0
        init(_ i: CaptureInterface) {
            resolution = i.resolution
            binary = i.binaryResolution
            offsetSeconds = i.offsetSeconds
        }
    }
    /// Sections started so far.
    @exclusivity(unchecked) private(set) var sections = 0

    @exclusivity(unchecked) private var buffer: UnsafeMutableRawPointer
    @exclusivity(unchecked) private var capacity: Int
    private let ownsBuffer: Bool
    @exclusivity(unchecked) private var position = 0
    @exclusivity(unchecked) private var end = 0
    /// The file offset of `buffer[0]`.
    @exclusivity(unchecked) private var base: Int64 = 0
    private let file: UnsafeMutablePointer<FILE>?
    /// The current section's byte order is not this machine's.
    @exclusivity(unchecked) private var swapped = false
    /// The ordinals of the current section's interfaces, by ID.
    @exclusivity(unchecked) private var sectionInterfaces: [Int] = []

    /// A reader of `file` (hoptrace closes it), whose first bytes `head` were read already.
    init(file: UnsafeMutablePointer<FILE>, head: [UInt8], bufferBytes: Int = 1 << 20) {
        self.file = file
        capacity = max(bufferBytes, head.count, 64)
        buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        ownsBuffer = true
        head.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        end = head.count
    }

    /// A reader of bytes in memory (kept alive by the caller while the reader is used).
    init(memory: UnsafeRawBufferPointer) {
        file = nil
        buffer = UnsafeMutableRawPointer(mutating: memory.baseAddress ?? UnsafeRawPointer(bitPattern: 16)!)
        capacity = memory.count
        ownsBuffer = false
        end = memory.count
    }

    deinit {
        if ownsBuffer { buffer.deallocate() }
        if let file { fclose(file) }
    }

    /// The file offset of the next block.
    var offset: Int64 { base + Int64(position) }

    /// Whether `bytes` start with a pcapng section header's type (the same in either order).
    static func isPcapng<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8 {
        Array(bytes.prefix(4)) == [0x0A, 0x0D, 0x0D, 0x0A]
    }

    /// Reads the first section header and the blocks up to the first interface (or the first
    /// packet, or the end): the interface tells the file's first link type.
    func start() throws(PcapngFailure) {
        guard ensure(12) else {
            throw .corrupt("truncated pcapng file: its section header block is cut after \(end - position) bytes")
        }
        let magic = load(8, swapped: false)
        guard magic == Self.byteOrderMagic || magic == Self.byteOrderMagic.byteSwapped else {
            throw .notPcapng("pcapng section header with the byte-order magic 0x\(String(magic, radix: 16)), not 0x1a2b3c4d in either byte order")
        }
        var unused = PcapngPacket()
        while interfaces.isEmpty {
            guard ensure(8) else { break }
            if load(0, swapped: false) != Self.sectionHeaderType, [2, 3, 6].contains(load(0)) { break }
            _ = try readBlock(&unused)
        }
    }

    /// Reads up to the next packet. False at the end of the file.
    @inline(__always)
    func next(_ packet: inout PcapngPacket) throws(PcapngFailure) -> Bool {
        while true {
            switch try readBlock(&packet) {
            case .packet: return true
            case .end: return false
            case .other: continue
            }
        }
    }

    private enum BlockKind { case packet, other, end }

    /// Reads one block; fills `packet` when it is a packet block.
    @inline(__always)
    private func readBlock(_ packet: inout PcapngPacket) throws(PcapngFailure) -> BlockKind {
        guard ensure(8) else {
            if position == end { return .end }
            throw .corrupt("truncated pcapng file: it ends \(end - position) bytes into the header of a block at byte \(offset)")
        }
        let rawType = load(0, swapped: false)
        if rawType == Self.sectionHeaderType {
            try readSectionHeader()
            return .other
        }
        guard sections > 0 else { throw .notPcapng("the file does not start with a pcapng section header") }
        let type = load(0)
        let length = Int(load(4))
        let at = offset
        guard length >= 12, length & 3 == 0 else {
            throw .corrupt("pcapng block of type \(type) at byte \(at) has a length of \(length) bytes (at least 12 and a multiple of 4)")
        }
        guard length <= Self.maxBlockBytes else {
            throw .corrupt("pcapng block of type \(type) at byte \(at) has a length of \(length) bytes, more than the \(Self.maxBlockBytes >> 20) MiB hoptrace reads")
        }
        guard ensure(length) else {
            throw .corrupt("truncated pcapng file: the \(Self.blockName(type)) at byte \(at) is \(length) bytes long, the file holds \(end - position) of them")
        }
        guard load(length - 4) == UInt32(length) else {
            throw .corrupt("pcapng block of type \(type) at byte \(at): its length at the end (\(load(length - 4))) is not the \(length) at its start")
        }
        defer { position += length }
        let bodyLength = length - 12
        switch type {
        case 6:  // enhanced packet block
            return try readPacketBlock(&packet, type: type, interfaceIDBits: 32, bodyLength: bodyLength, length: length, at: at)
        case 3:  // simple packet block: interface 0, no time
            guard bodyLength >= 4 else { throw .corrupt("simple packet block at byte \(at) is too short (\(length) bytes)") }
            let ordinal = try interface(0, at)
            let wire = Int(load(8))
            var caplen = min(wire, bodyLength - 4)
            let snaplen = Int(interfaces[ordinal].snaplen)
            if snaplen > 0 { caplen = min(caplen, snaplen) }
            packet.timestamp = 0
            packet.capturedLength = caplen
            packet.wireLength = wire
            packet.data = UnsafeRawPointer(buffer + position + 12)
            packet.interface = ordinal
            return .packet
        case 2:  // packet block (obsolete): a 16-bit interface ID and a drops count
            return try readPacketBlock(&packet, type: type, interfaceIDBits: 16, bodyLength: bodyLength, length: length, at: at)
        case 1:
            try readInterface(bodyLength: bodyLength, at: at)
            return .other
        default:
            // Name resolution, statistics, decryption secrets, custom and unknown blocks.
            return .other
        }
    }

    /// An enhanced packet block, or an obsolete packet block: the same layout but for the
    /// interface ID, 32 bits in the first, 16 bits (then a 16-bit drops count) in the second.
    /// Body: interface ID, timestamp (high, low), captured length, wire length, data.
    @inline(__always)
    private func readPacketBlock(_ packet: inout PcapngPacket, type: UInt32, interfaceIDBits: Int, bodyLength: Int,
                                 length: Int, at: Int64) throws(PcapngFailure) -> BlockKind {
        guard bodyLength >= 20 else { throw .corrupt("\(Self.blockName(type)) at byte \(at) is too short (\(length) bytes)") }
        let id = interfaceIDBits == 16 ? Int(load16(8)) : Int(load(8))
        let caplen = Int(load(20))
        guard caplen <= bodyLength - 20 else {
            throw .corrupt("\(Self.blockName(type)) at byte \(at) says \(caplen) bytes were captured, the block holds \(bodyLength - 20)")
        }
        let ordinal = try interface(id, at)
        let ticks = UInt64(load(12)) << 32 | UInt64(load(16))
        packet.timestamp = Self.nanoseconds(ticks, clocks[ordinal])
        packet.capturedLength = caplen
        packet.wireLength = Int(load(24))
        packet.data = UnsafeRawPointer(buffer + position + 28)
        packet.interface = ordinal
        return .packet
    }

    @inline(__always)
    private func interface(_ id: Int, _ at: Int64) throws(PcapngFailure) -> Int {
        guard id < sectionInterfaces.count else {
            throw .corrupt("packet at byte \(at) is on interface \(id), but its section declares \(sectionInterfaces.count) interface\(sectionInterfaces.count == 1 ? "" : "s") before it")
        }
        return sectionInterfaces[id]
    }

    private static func blockName(_ type: UInt32) -> String {
        switch type {
        case 1: return "interface description block"
        case 2: return "packet block"
        case 3: return "simple packet block"
        case 6: return "enhanced packet block"
        default: return "block of type \(type)"
        }
    }

    private func readSectionHeader() throws(PcapngFailure) {
        let at = offset
        guard ensure(12) else {
            throw .corrupt("truncated pcapng file: it ends \(end - position) bytes into the section header block at byte \(at)")
        }
        let magic = load(8, swapped: false)
        if magic == Self.byteOrderMagic {
            swapped = false
        } else if magic == Self.byteOrderMagic.byteSwapped {
            swapped = true
        } else {
            throw .corrupt("section header block at byte \(at) has the byte-order magic 0x\(String(magic, radix: 16)), not 0x1a2b3c4d in either byte order")
        }
        let length = Int(load(4))
        guard length >= 28, length & 3 == 0, length <= Self.maxBlockBytes else {
            throw .corrupt("section header block at byte \(at) has a length of \(length) bytes (28 to \(Self.maxBlockBytes >> 20) MiB, a multiple of 4)")
        }
        guard ensure(length) else {
            throw .corrupt("truncated pcapng file: the section header block at byte \(at) is \(length) bytes long, the file holds \(end - position) of them")
        }
        guard load(length - 4) == UInt32(length) else {
            throw .corrupt("section header block at byte \(at): its length at the end (\(load(length - 4))) is not the \(length) at its start")
        }
        let major = load16(12), minor = load16(14)
        guard major == 1 else {
            throw .notPcapng("pcapng section header of version \(major).\(minor); hoptrace reads version 1")
        }
        sections += 1
        sectionInterfaces.removeAll()
        position += length
    }

    private func readInterface(bodyLength: Int, at: Int64) throws(PcapngFailure) {
        guard bodyLength >= 8 else { throw .corrupt("interface description block at byte \(at) is too short (\(bodyLength + 12) bytes)") }
        var iface = CaptureInterface(
            ordinal: interfaces.count, section: sections - 1, id: sectionInterfaces.count,
            linkType: Self.dlt(linkType: load16(8)), snaplen: load(12))
        // Options: code, length, value padded to 4 bytes; the last one is code 0. An option
        // that runs past the block ends them (the packets are still read).
        var o = 16
        let optionsEnd = 8 + bodyLength
        while o + 4 <= optionsEnd {
            let code = load16(o), length = Int(load16(o + 2))
            if code == 0 { break }
            let value = o + 4
            guard value + length <= optionsEnd else { break }
            switch code {
            case 2: iface.name = text(value, length)
            case 3: iface.description = text(value, length)
            case 9 where length >= 1:
                let v = buffer.load(fromByteOffset: position + value, as: UInt8.self)
                iface.binaryResolution = v & 0x80 != 0
                iface.resolution = v & 0x7f
                let limit = iface.binaryResolution ? 63 : 19
                guard Int(iface.resolution) <= limit else {
                    throw .corrupt("interface \(iface.id) at byte \(at) has a time resolution of \(iface.binaryResolution ? 2 : 10)^-\(iface.resolution) s, finer than a 64-bit time holds")
                }
            case 14 where length >= 8:
                let v = buffer.loadUnaligned(fromByteOffset: position + value, as: UInt64.self)
                iface.offsetSeconds = Int64(bitPattern: swapped ? v.byteSwapped : v)
            default: break
            }
            o = value + (length + 3) & ~3
        }
        sectionInterfaces.append(interfaces.count)
        interfaces.append(iface)
        clocks.append(Clock(iface))
        linkTypes.append(iface.linkType)
        named.append(iface.name != nil)
    }

    /// libpcap's DLT for a file's LINKTYPE (as libpcap's `linktype_to_dlt`): they differ for
    /// a few, RAW above all (101 in files, DLT_RAW 12 on Linux).
    static func dlt(linkType: UInt16) -> LinkType {
        switch linkType {
        case 101: return .raw
        case 102: return LinkType(rawValue: 15)  // SLIP_BSDOS
        case 103: return LinkType(rawValue: 16)  // PPP_BSDOS
        case 106: return LinkType(rawValue: 19)  // ATM_CLIP
        default: return LinkType(rawValue: Int32(linkType))
        }
    }

    private func text(_ at: Int, _ length: Int) -> String {
        let bytes = UnsafeRawBufferPointer(start: buffer + position + at, count: length)
        let cut = bytes.firstIndex(of: 0) ?? length
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[..<cut]), as: UTF8.self)
    }

    /// `ticks` of `iface`'s resolution since the epoch, plus its offset, in nanoseconds
    /// clamped to [0, 2^62) as libpcap's times are (`PcapSource.nanoseconds`).
    static func nanoseconds(_ ticks: UInt64, _ iface: CaptureInterface) -> Int64 {
        nanoseconds(ticks, Clock(iface))
    }

    @inline(__always)
    static func nanoseconds(_ ticks: UInt64, _ iface: Clock) -> Int64 {
        var seconds: UInt64, fraction: UInt64
        let r = iface.resolution
        if !iface.binary {
            switch r {
            case 6:
                (seconds, fraction) = ticks.quotientAndRemainder(dividingBy: 1_000_000)
                fraction *= 1000
            case 9:
                (seconds, fraction) = ticks.quotientAndRemainder(dividingBy: 1_000_000_000)
            default:
                let perSecond = power10(Int(r))
                (seconds, fraction) = ticks.quotientAndRemainder(dividingBy: perSecond)
                fraction = r <= 9 ? fraction * power10(9 - Int(r)) : fraction / power10(Int(r) - 9)
            }
        } else if r == 0 {
            seconds = ticks
            fraction = 0
        } else {
            seconds = ticks >> UInt64(r)
            let ticksOfSecond = ticks & ((1 << UInt64(r)) - 1)
            let (high, low) = ticksOfSecond.multipliedFullWidth(by: 1_000_000_000)
            fraction = high << (64 - UInt64(r)) | low >> UInt64(r)
        }
        var s = seconds > UInt64(Int64.max) ? Int64.max : Int64(seconds)
        if iface.offsetSeconds != 0 {
            let (sum, overflow) = s.addingReportingOverflow(iface.offsetSeconds)
            s = overflow ? (iface.offsetSeconds > 0 ? .max : .min) : sum
        }
        return PcapSource.nanoseconds(seconds: s, fraction: Int64(fraction))
    }

    @inline(__always)
    static func power10(_ n: Int) -> UInt64 {
        var v: UInt64 = 1
        for _ in 0..<n { v &*= 10 }
        return v
    }

    /// A 32-bit field of the block at `position`, in the section's byte order.
    @inline(__always)
    private func load(_ at: Int) -> UInt32 {
        let v = buffer.loadUnaligned(fromByteOffset: position + at, as: UInt32.self)
        return swapped ? v.byteSwapped : v
    }

    @inline(__always)
    private func load(_ at: Int, swapped s: Bool) -> UInt32 {
        let v = buffer.loadUnaligned(fromByteOffset: position + at, as: UInt32.self)
        return s ? v.byteSwapped : v
    }

    @inline(__always)
    private func load16(_ at: Int) -> UInt16 {
        let v = buffer.loadUnaligned(fromByteOffset: position + at, as: UInt16.self)
        return swapped ? v.byteSwapped : v
    }

    /// Makes `count` bytes from `position` available, reading more of the file as needed
    /// (the buffer moves its unread bytes to its start, and grows for a large block). False
    /// when the file ends first.
    @inline(__always)
    private func ensure(_ count: Int) -> Bool {
        if end - position >= count { return true }
        return refill(count)
    }

    @inline(never)
    private func refill(_ count: Int) -> Bool {
        guard let file else { return false }
        if position + count > capacity {
            let unread = end - position
            if position > 0 {
                if unread > 0 { memmove(buffer, buffer + position, unread) }
                base += Int64(position)
                position = 0
                end = unread
            }
            if count > capacity {
                let grown = max(count, capacity * 2)
                let bigger = UnsafeMutableRawPointer.allocate(byteCount: grown, alignment: 16)
                bigger.copyMemory(from: buffer, byteCount: end)
                buffer.deallocate()
                buffer = bigger
                capacity = grown
            }
        }
        while end - position < count {
            let got = fread(buffer + end, 1, capacity - end, file)
            if got == 0 { return false }
            end += got
        }
        return true
    }

    /// The file read so far, for progress.
    var stdioFile: UnsafeMutablePointer<FILE>? { file }
}
