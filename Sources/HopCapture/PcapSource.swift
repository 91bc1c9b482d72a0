import CPcap
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Options for a live capture, with tcpdump's defaults.
public struct LiveCaptureOptions: Sendable {
    public var interface: String
    /// Bytes kept of each packet (`-s`); 262144 is tcpdump's default.
    public var snaplen: Int32 = 262_144
    /// Promiscuous mode: off unless asked (`-p` inverts tcpdump's default; hoptrace defaults to off).
    public var promiscuous: Bool = false
    /// Deliver each packet as it arrives (`--immediate-mode`). Off by default: libpcap then
    /// reads the ring with TPACKET_V3, packets packed into large blocks handed over when full
    /// or after `timeoutMilliseconds` (a line appears at most that late). Immediate mode
    /// reads with TPACKET_V2, one fixed slot per packet sized for the snaplen: with 262144
    /// bytes a 32 MiB ring holds 128 packets, and a loaded interface overflows it (issue 21).
    /// For a person watching a quiet interface with a small snaplen.
    public var immediate: Bool = false
    /// Kernel buffer size in bytes (`-B`, given in KiB on the command line). 32 MiB by
    /// default, sixteen times libpcap's: 512 of the 64 KiB GSO frames lo and veths carry, a
    /// burst the capture thread drains while the other processes have the cores (8 MiB
    /// dropped under load in the lab, issue 21).
    public var bufferSize: Int32? = 32 << 20
    /// How long a read waits for packets, in milliseconds.
    public var timeoutMilliseconds: Int32 = 100
    /// The in-process queue between the capture thread and the analysis: batches of this
    /// many bytes, at most `queueBatches` of them (64 MiB by default, allocated as needed).
    public var queueBatchBytes = 1 << 20
    public var queueBatches = 64

    public init(interface: String) { self.interface = interface }
}

/// libpcap's statistics for a live capture.
public struct CaptureStatistics: Sendable, Equatable {
    /// Packets the filter accepted (`ps_recv`).
    public var received: UInt32
    /// Packets dropped because the buffer was full (`ps_drop`).
    public var dropped: UInt32
    /// Packets dropped by the interface or its driver (`ps_ifdrop`).
    public var interfaceDropped: UInt32
    /// The capture thread's queue: packets it shed, its high-water mark (nil: no capture thread).
    public var queue: PacketQueue.Figures?
    /// When the kernel dropped packets, as the capture thread saw its counter grow (about
    /// every 50 ms), with how many.
    public var kernelLossWindows: [LossWindow] = []

    public init(received: UInt32, dropped: UInt32, interfaceDropped: UInt32,
                queue: PacketQueue.Figures? = nil, kernelLossWindows: [LossWindow] = []) {
        self.received = received
        self.dropped = dropped
        self.interfaceDropped = interfaceDropped
        self.queue = queue
        self.kernelLossWindows = kernelLossWindows
    }

    /// Packets lost before the analysis saw them: by the kernel and by the queue.
    public var lost: Int { Int(dropped) + (queue?.shed ?? 0) }

    /// Every loss window, the kernel's and the queue's, in time order.
    public var lossWindows: [LossWindow] {
        (kernelLossWindows + (queue?.shedWindows ?? [])).sorted { $0.start < $1.start }
    }
}

/// A libpcap handle over a classic pcap file or a live interface, or hoptrace's own pcapng
/// reader (`PcapngReader`) over a pcapng file, whose interfaces may have different link types.
/// Reads packets as views into the reader's buffer (valid until the next read).
public final class PcapSource {
    /// libpcap's handle: of the file or interface read, or, for a pcapng file, a handle of the
    /// first interface's link type (what `-w` writes with).
    public let handle: OpaquePointer
    /// The capture's link type: of a pcapng file, its first interface's (`interfaces` has each one's).
    public let linkType: LinkType
    /// The file path or interface name.
    public let name: String
    public let isLive: Bool
    /// Packets read so far.
    @exclusivity(unchecked) public private(set) var packetsRead = 0
    /// The BPF expression applied, if any.
    @exclusivity(unchecked) public private(set) var filter: String?
    /// A warning from pcap_activate (e.g. promiscuous mode not supported), if any.
    public private(set) var activationWarning: String?

    /// The pcapng reader of a pcapng file (nil: libpcap reads).
    private let pcapng: PcapngReader?
    @exclusivity(unchecked) private var pcapngPacket = PcapngPacket()
    /// Set by `breakLoop()` for the pcapng reader.
    @exclusivity(unchecked) private var stopRequested = false
    /// The BPF filter of a pcapng file, compiled for each link type met (nil: it does not compile for it).
    private var filterPrograms: [Int32: UnsafeMutablePointer<bpf_program>?] = [:]

    private init(handle: OpaquePointer, name: String, isLive: Bool, pcapng: PcapngReader? = nil) {
        self.handle = handle
        self.name = name
        self.isLive = isLive
        self.pcapng = pcapng
        self.linkType = LinkType(rawValue: pcap_datalink(handle))
    }

    deinit {
        stopCapture()
        pcap_close(handle)  // closes the FILE of a memory capture too
        for case let program? in filterPrograms.values {
            pcap_freecode(program)
            program.deallocate()
        }
        memory?.deallocate()
    }

    /// The interfaces of a pcapng file declared so far (its interface description blocks,
    /// every section's, in file order); empty for a classic pcap file or a live capture.
    public var interfaces: [CaptureInterface] { pcapng?.interfaces ?? [] }

    /// The capture's link type's name; of a pcapng file whose interfaces have several, each
    /// one's (`EN10MB, LINUX_SLL, RAW`), in the order they were met so far.
    public var linkTypeDescription: String {
        var names: [String] = []
        for i in interfaces where !names.contains(i.linkType.name) { names.append(i.linkType.name) }
        return names.count > 1 ? names.joined(separator: ", ") : linkType.name
    }

    /// How many interfaces the capture holds as far as read: a pcapng file's declared ones, 1 otherwise.
    public var interfaceCount: Int { max(interfaces.count, 1) }

    /// The name of the pcapng interface `RawPacket.interface` names (its `if_name`, or `ifN`).
    /// Nil when the file has a LINUX_SLL2 interface: its packets carry the capturing host's
    /// interface index instead, which a pcapng ordinal cannot be told from.
    public func interfaceName(ordinal: Int32) -> String? {
        guard let all = pcapng?.interfaces, ordinal >= 0, Int(ordinal) < all.count,
              !all.contains(where: { $0.linkType == .linuxSLL2 }) else { return nil }
        return all[Int(ordinal)].displayName
    }

    /// The names of every pcapng interface by ordinal (for reports), as `interfaceName(ordinal:)`.
    public var interfaceNames: [Int32: String] {
        var out: [Int32: String] = [:]
        for i in interfaces.indices { if let n = interfaceName(ordinal: Int32(i)) { out[Int32(i)] = n } }
        return out
    }

    /// Opens a pcapng file with hoptrace's reader, its first bytes `head` read already from
    /// `file` (or the bytes in `memory`).
    private static func openPcapng(
        file: UnsafeMutablePointer<FILE>?, head: [UInt8], memory: UnsafeMutableRawBufferPointer?, path: String
    ) throws(CaptureError) -> PcapSource {
        let reader: PcapngReader
        if let file {
            reader = PcapngReader(file: file, head: head)
        } else {
            reader = PcapngReader(memory: UnsafeRawBufferPointer(memory!))
        }
        do {
            try reader.start()
        } catch {
            switch error {
            case .notPcapng(let detail): throw .notACaptureFile(path: path, detail: "pcapng: " + detail)
            case .corrupt(let detail):
                if detail.hasPrefix("truncated") { throw .truncatedFile(path: path, packetsRead: 0, detail: "pcapng: " + detail) }
                throw .notACaptureFile(path: path, detail: "pcapng: " + detail)
            }
        }
        guard let first = reader.interfaces.first else {
            throw .notACaptureFile(path: path, detail: "pcapng: the file has no interface description block before its first packet or its end")
        }
        let snaplen = first.snaplen == 0 || first.snaplen > 262_144 ? 262_144 : Int32(first.snaplen)
        guard let dead = pcap_open_dead_with_tstamp_precision(first.linkType.rawValue, snaplen, UInt32(PCAP_TSTAMP_PRECISION_NANO)) else {
            throw .notACaptureFile(path: path, detail: "pcapng: libpcap cannot make a handle for \(first.linkType.name)")
        }
        return PcapSource(handle: dead, name: path, isLive: false, pcapng: reader)
    }

    /// Opens a pcap or pcapng file (or `-` for standard input) with nanosecond timestamps.
    public static func openFile(_ path: String) throws(CaptureError) -> PcapSource {
        if path != "-" {
            var st = stat()
            if stat(path, &st) != 0 {
                let err = errno
                if err == ENOENT { throw .fileNotFound(path: path) }
                throw .fileNotReadable(path: path, reason: String(cString: strerror(err)))
            }
            if (st.st_mode & S_IFMT) == S_IFDIR { throw .fileNotReadable(path: path, reason: "it is a directory") }
            if access(path, R_OK) != 0 {
                throw .fileNotReadable(path: path, reason: String(cString: strerror(errno)))
            }
            if (st.st_mode & S_IFMT) == S_IFREG && st.st_size == 0 { throw .emptyFile(path: path) }
        }
        var errbuf = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE) + 1)
        let handle: OpaquePointer?
        var readBuffer: UnsafeMutableRawBufferPointer?
        // A pcapng file (its first 4 bytes say so) is read by hoptrace's reader, which reads
        // interfaces of several link types; anything else by libpcap, the 4 bytes put back.
        let opened = path == "-" ? fdopen(dup(0), "rb") : fopen(path, "rb")
        guard let file = opened else {
            throw .fileNotReadable(path: path, reason: String(cString: strerror(errno)))
        }
        var head = [UInt8](repeating: 0, count: 4)
        let got = fread(&head, 1, 4, file)
        head.removeLast(4 - got)
        if PcapngReader.isPcapng(head) && !readPcapngWithLibpcap {
            return try openPcapng(file: file, head: head, memory: nil, path: path)
        }
        if path == "-" && got == 0 {
            fclose(file)
            throw .emptyFile(path: path)
        }
        // libpcap reads a file with stdio, whose default buffer is one 4 KiB page: a read(2)
        // per 4 KiB. A 1 MiB buffer of our own cuts the system calls 256-fold and the
        // reading thread's time by a third (Benchmarks/README.md). The buffer must be set
        // before the first read: the file is opened again (standard input: the bytes read
        // are put back, in stdio's own buffer).
        if path == "-" {
            for b in head.reversed() { ungetc(Int32(b), file) }
            handle = pcap_fopen_offline_with_tstamp_precision(file, UInt32(PCAP_TSTAMP_PRECISION_NANO), &errbuf)
            if handle == nil { fclose(file) }
        } else {
            fclose(file)
            guard let file = fopen(path, "rb") else {
                throw .fileNotReadable(path: path, reason: String(cString: strerror(errno)))
            }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: PcapSource.fileBufferBytes, alignment: 64)
            setvbuf(file, buffer.baseAddress!.assumingMemoryBound(to: CChar.self), _IOFBF, buffer.count)
            handle = pcap_fopen_offline_with_tstamp_precision(file, UInt32(PCAP_TSTAMP_PRECISION_NANO), &errbuf)
            if handle == nil {
                fclose(file)
                buffer.deallocate()
            } else {
                readBuffer = buffer
            }
        }
        guard let h = handle else {
            let msg = String(nullTerminated: errbuf)
            // Standard input with nothing on it: libpcap read no byte of the file header.
            if path == "-" && msg.contains("only got 0") { throw .emptyFile(path: path) }
            if msg.contains("truncated") {
                throw .truncatedFile(path: path, packetsRead: 0, detail: msg)
            }
            if path != "-", let (format, tool) = compression(ofFile: path) {
                throw .compressedFile(path: path, format: format, decompressor: tool)
            }
            throw .notACaptureFile(path: path, detail: msg)
        }
        let source = PcapSource(handle: h, name: path, isLive: false)
        source.memory = readBuffer
        return source
    }

    /// The compression a file's first bytes announce, and the tool that decompresses it to
    /// standard output; nil for anything else.
    static func compression(ofFile path: String) -> (format: String, decompressor: String)? {
        guard let f = fopen(path, "rb") else { return nil }
        defer { fclose(f) }
        var head = [UInt8](repeating: 0, count: 6)
        let n = fread(&head, 1, head.count, f)
        return compression(of: head.prefix(n))
    }

    static func compression(of head: ArraySlice<UInt8>) -> (format: String, decompressor: String)? {
        let magics: [([UInt8], String, String)] = [
            ([0x1f, 0x8b], "gzip", "zcat"),
            ([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], "xz", "xzcat"),
            ([0x42, 0x5a, 0x68], "bzip2", "bzcat"),
            ([0x28, 0xb5, 0x2f, 0xfd], "zstd", "zstdcat"),
        ]
        for (magic, format, tool) in magics where head.starts(with: magic) { return (format, tool) }
        return nil
    }

    /// libpcap's own description of its version (`libpcap version 1.10.3 (with TPACKET_V3)`).
    public static var libraryVersion: String { String(cString: pcap_lib_version()) }

    /// `HOPTRACE_PCAPNG_READER=libpcap`: pcapng files are read by libpcap as before hoptrace had
    /// its reader (one link type per file), to compare the two (Benchmarks/README.md).
    static let readPcapngWithLibpcap = getenv("HOPTRACE_PCAPNG_READER").map { String(cString: $0) } == "libpcap"

    /// The stdio buffer of a capture file.
    static let fileBufferBytes = 1 << 20

    /// Bytes kept alive until `pcap_close`: a capture read from memory, or the stdio buffer of
    /// a capture file.
    private var memory: UnsafeMutableRawBufferPointer?
    private var isMemoryCapture = false

    /// Opens a capture held in memory (a bundled capture), with nanosecond timestamps.
    public static func openMemory(_ bytes: [UInt8], name: String) throws(CaptureError) -> PcapSource {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 8)
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
        if PcapngReader.isPcapng(bytes) {
            let source: PcapSource
            do {
                source = try openPcapng(file: nil, head: [], memory: UnsafeMutableRawBufferPointer(rebasing: buffer[..<bytes.count]), path: name)
            } catch {
                buffer.deallocate()
                throw error
            }
            source.memory = buffer
            source.isMemoryCapture = true
            return source
        }
        guard let file = fmemopen(buffer.baseAddress, bytes.count, "rb") else {
            buffer.deallocate()
            throw .fileNotReadable(path: name, reason: String(cString: strerror(errno)))
        }
        var errbuf = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE) + 1)
        guard let h = pcap_fopen_offline_with_tstamp_precision(file, UInt32(PCAP_TSTAMP_PRECISION_NANO), &errbuf) else {
            fclose(file)
            buffer.deallocate()
            throw .notACaptureFile(path: name, detail: String(nullTerminated: errbuf))
        }
        let source = PcapSource(handle: h, name: name, isLive: false)
        source.memory = buffer
        source.isMemoryCapture = true
        return source
    }

    /// Opens a live interface (`any` for all of them in this network namespace).
    public static func openLive(_ options: LiveCaptureOptions) throws(CaptureError) -> PcapSource {
        var errbuf = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE) + 1)
        let iface = options.interface
        guard let h = pcap_create(iface, &errbuf) else {
            throw .liveCaptureFailed(interface: iface, detail: String(nullTerminated: errbuf))
        }
        pcap_set_snaplen(h, options.snaplen)
        pcap_set_promisc(h, options.promiscuous ? 1 : 0)
        pcap_set_immediate_mode(h, options.immediate ? 1 : 0)
        pcap_set_timeout(h, options.timeoutMilliseconds)
        if let size = options.bufferSize { pcap_set_buffer_size(h, size) }
        _ = pcap_set_tstamp_precision(h, Int32(PCAP_TSTAMP_PRECISION_NANO))
        let status = pcap_activate(h)
        if status < 0 {
            let detail = String(cString: pcap_geterr(h))
            let statusText = String(cString: pcap_statustostr(status))
            pcap_close(h)
            let message = detail.isEmpty ? statusText : detail
            switch status {
            case PCAP_ERROR_PERM_DENIED, PCAP_ERROR_PROMISC_PERM_DENIED:
                throw .permissionDenied(interface: iface, detail: message)
            case PCAP_ERROR_NO_SUCH_DEVICE:
                throw .noSuchInterface(interface: iface, detail: message)
            case PCAP_ERROR_IFACE_NOT_UP:
                throw .interfaceNotUp(interface: iface)
            default:
                if message.contains("Operation not permitted") || message.contains("Permission denied") {
                    throw .permissionDenied(interface: iface, detail: message)
                }
                if message.contains("No such device") {
                    throw .noSuchInterface(interface: iface, detail: message)
                }
                throw .liveCaptureFailed(interface: iface, detail: message)
            }
        }
        let source = PcapSource(handle: h, name: iface, isLive: true)
        source.liveOptions = options
        if status > 0 {
            source.activationWarning = String(cString: pcap_statustostr(status)) + ": " + String(cString: pcap_geterr(h))
        }
        return source
    }

    /// Compiles and installs a BPF filter, as tcpdump takes it.
    public func setFilter(_ expression: String) throws(CaptureError) {
        if pcapng != nil {
            // Compiled for each link type of the file as it is met; the first one now, so that
            // a bad expression is said at once.
            filter = expression
            _ = try program(for: linkType)
            return
        }
        var program = bpf_program()
        let netmask: bpf_u_int32 = PCAP_NETMASK_UNKNOWN
        if pcap_compile(handle, &program, expression, 1, netmask) != 0 {
            throw .badFilter(expression: expression, detail: String(cString: pcap_geterr(handle)))
        }
        defer { pcap_freecode(&program) }
        if pcap_setfilter(handle, &program) != 0 {
            throw .badFilter(expression: expression, detail: String(cString: pcap_geterr(handle)))
        }
        filter = expression
    }

    /// The filter compiled for `linkType` (nil: no filter). An expression that does not
    /// compile for the file's first link type is an error; for a later interface's link type,
    /// no packet of it passes (`filterUnmatched` counts them).
    private func program(for linkType: LinkType) throws(CaptureError) -> UnsafeMutablePointer<bpf_program>? {
        guard let expression = filter else { return nil }
        if linkType == lastFilter.linkType { return lastFilter.program }
        if let known = filterPrograms[linkType.rawValue] {
            lastFilter = (linkType, known)
            return known
        }
        let snaplen: Int32 = 262_144
        guard let dead = pcap_open_dead(linkType.rawValue, snaplen) else {
            throw .badFilter(expression: expression, detail: "libpcap cannot make a handle for \(linkType.name)")
        }
        defer { pcap_close(dead) }
        let program = UnsafeMutablePointer<bpf_program>.allocate(capacity: 1)
        program.initialize(to: bpf_program())
        if pcap_compile(dead, program, expression, 1, PCAP_NETMASK_UNKNOWN) != 0 {
            let detail = String(cString: pcap_geterr(dead))
            program.deallocate()
            if filterPrograms.isEmpty { throw .badFilter(expression: expression, detail: detail) }
            filterPrograms[linkType.rawValue] = .some(nil)
            return nil
        }
        filterPrograms[linkType.rawValue] = program
        return program
    }

    /// The program of the last packet's link type (most files have one).
    @exclusivity(unchecked) private var lastFilter: (linkType: LinkType?, program: UnsafeMutablePointer<bpf_program>?) = (nil, nil)

    /// Packets of a pcapng file left out because the filter does not compile for their
    /// interface's link type (e.g. `ether host` on a RAW interface).
    public private(set) var filterUnmatched = 0
    /// The number the packet read after the first of them got (`DecodeCounters.filterNotApplicable`).
    public private(set) var firstFilterUnmatched = 0

    /// Adds the packets the filter could not apply to (`filterUnmatched`) to the decoder's counters.
    public func countFilterUnmatched(into decoder: inout PacketDecoder) {
        guard filterUnmatched > 0 else { return }
        decoder.countFilterNotApplicable(CountWithFirst(count: filterUnmatched, firstPacket: firstFilterUnmatched))
    }

    /// The result of one read.
    public enum ReadResult {
        case packet(RawPacket)
        /// A live capture's read timeout passed with no packet.
        case timeout
        /// End of file, or the capture was stopped with `breakLoop()`.
        case end
    }

    /// Packet timestamps stay below this (2^62 ns, about year 2116).
    public static let timestampLimit: Int64 = 1 << 62

    /// `seconds * 10^9 + fraction`, clamped to [0, `timestampLimit`).
    @inline(__always)
    static func nanoseconds(seconds: Int64, fraction: Int64) -> Int64 {
        if seconds < 0 { return 0 }
        if seconds >= timestampLimit / 1_000_000_000 { return timestampLimit - 1 }
        return seconds * 1_000_000_000 + fraction
    }

    /// Reads the next packet. A truncated or corrupt file throws `.truncatedFile` after the
    /// packets before it were returned.
    @inline(__always)
    public func next() throws(CaptureError) -> ReadResult {
        if let pcapng { return try nextPcapng(pcapng) }
        if isLive { return try nextQueued() }
        var header: UnsafeMutablePointer<pcap_pkthdr>?
        var data: UnsafePointer<UInt8>?
        let rc = pcap_next_ex(handle, &header, &data)
        if rc == 1, let header, let data {
            packetsRead += 1
            let h = header.pointee
            // A pcapng block may hold any 64-bit time: clamp to [0, 2^62) ns (1970-2116, every
            // time a classic pcap can hold; pcap and pcapng times are unsigned) so that sums and
            // differences of differences of timestamps (the time a proxy added) fit in an Int64
            // and nothing downstream traps on a hostile file.
            let ts = Self.nanoseconds(seconds: Int64(h.ts.tv_sec), fraction: Int64(h.ts.tv_usec))
            return .packet(RawPacket(
                timestamp: ts, wireLength: Int(h.len),
                bytes: UnsafeRawBufferPointer(start: data, count: Int(h.caplen)), index: packetsRead))
        }
        switch rc {
        case 0: return .timeout
        case PCAP_ERROR_BREAK: return .end
        default:
            let detail = String(cString: pcap_geterr(handle))
            if isLive { throw .liveCaptureFailed(interface: name, detail: detail) }
            throw .truncatedFile(path: name, packetsRead: packetsRead, detail: detail)
        }
    }

    /// The next packet of a pcapng file that passes the filter, with its interface's link type
    /// (and the interface, when the file names it or has several).
    @inline(__always)
    private func nextPcapng(_ reader: PcapngReader) throws(CaptureError) -> ReadResult {
        while true {
            if stopRequested { return .end }
            let more: Bool
            do {
                more = try reader.next(&pcapngPacket)
            } catch {
                switch error {
                case .notPcapng(let detail), .corrupt(let detail):
                    throw .truncatedFile(path: name, packetsRead: packetsRead, detail: "pcapng: " + detail)
                }
            }
            guard more else { return .end }
            let p = pcapngPacket
            let linkType = reader.linkTypes[p.interface]
            if filter != nil {
                guard let program = try program(for: linkType) else {
                    if filterUnmatched == 0 { firstFilterUnmatched = packetsRead + 1 }
                    filterUnmatched += 1
                    continue
                }
                var header = pcap_pkthdr()
                header.caplen = UInt32(p.capturedLength)
                header.len = UInt32(truncatingIfNeeded: p.wireLength)
                if pcap_offline_filter(program, &header, p.data?.assumingMemoryBound(to: UInt8.self)) == 0 { continue }
            }
            packetsRead += 1
            let named = reader.named[p.interface] || reader.named.count > 1
            return .packet(RawPacket(
                timestamp: p.timestamp, wireLength: p.wireLength,
                bytes: UnsafeRawBufferPointer(start: p.data, count: p.capturedLength), index: packetsRead,
                linkType: linkType, interface: named ? Int32(truncatingIfNeeded: p.interface) : nil))
        }
    }

    /// Bytes of the file read so far and the file's size (nil for live captures, stdin and
    /// memory): for progress indicators.
    public func fileProgress() -> (read: Int64, total: Int64)? {
        guard !isLive, name != "-", !isMemoryCapture, let f = pcapng?.stdioFile ?? pcap_file(handle) else { return nil }
        let pos = Int64(ftello(f))
        var st = stat()
        guard fstat(fileno(f), &st) == 0, st.st_size > 0 else { return nil }
        return (pos, Int64(st.st_size))
    }

    /// Makes a blocked `next()` return `.end` (safe from a signal handler).
    public func breakLoop() {
        stopRequested = true
        pcap_breakloop(handle)
    }

    /// libpcap's counters for a live capture, and its queue's; nil for files. Stops the
    /// capture thread first (the read is over): libpcap's handle is not shared between threads.
    public func statistics() -> CaptureStatistics? {
        guard isLive else { return nil }
        stopCapture()
        var st = pcap_stat()
        guard pcap_stats(handle, &st) == 0 else { return nil }
        return CaptureStatistics(received: st.ps_recv, dropped: st.ps_drop, interfaceDropped: st.ps_ifdrop,
                                 queue: capture?.queue.figures, kernelLossWindows: capture?.kernelLossWindows ?? [])
    }

    // MARK: live capture on a thread of its own

    /// The options a live capture was opened with.
    private var liveOptions: LiveCaptureOptions?
    /// The capture thread (started at the first read) and the batch being read.
    private var capture: CaptureThread?
    @exclusivity(unchecked) private var batch: PacketBatch?
    @exclusivity(unchecked) private var cursor = 0

    /// Called on the reading thread each time a live capture's batch of packets has been read
    /// (e.g. to flush output written a batch at a time).
    public var onBatchDone: (() -> Void)?

    /// The capture thread's figures so far (nil before the first read of a live capture).
    public var queueFigures: PacketQueue.Figures? { capture?.queue.figures }

    /// The next packet a live capture's thread queued. The thread only moves packets out of
    /// libpcap's ring into the queue; this one (the analysis) never makes it wait.
    @inline(__always)
    private func nextQueued() throws(CaptureError) -> ReadResult {
        let capture = self.capture ?? startCapture()
        while true {
            if let b = batch {
                if cursor < b.count {
                    packetsRead += 1
                    let p = b.packet(at: cursor, index: packetsRead)
                    cursor += 1
                    return .packet(p)
                }
                capture.queue.recycle(b)
                batch = nil
                onBatchDone?()
            }
            switch capture.queue.take(timeoutMilliseconds: Int(liveOptions?.timeoutMilliseconds ?? 100)) {
            case .batch(let b):
                batch = b
                cursor = 0
            case .timeout:
                return .timeout
            case .end(let error):
                capture.join()
                if let error { throw .liveCaptureFailed(interface: name, detail: error) }
                return .end
            }
        }
    }

    private func startCapture() -> CaptureThread {
        let o = liveOptions ?? LiveCaptureOptions(interface: name)
        let batchBytes = max(o.queueBatchBytes, Int(o.snaplen) + 64)
        let t = CaptureThread(handle: handle, queue: PacketQueue(batchBytes: batchBytes, maxBatches: o.queueBatches))
        capture = t
        t.start()
        return t
    }

    /// Ends the capture thread (the packets it queued stay readable) and waits for it.
    private func stopCapture() {
        guard let t = capture, t.isRunning else { return }
        pcap_breakloop(handle)
        t.join()
    }

    /// An interface libpcap can capture on, as `tcpdump -D` lists it.
    public struct Interface: Sendable, Hashable {
        public var name: String
        public var description: String?
        public var isUp: Bool
        public var isRunning: Bool
        public var isLoopback: Bool

        /// The interface as `tcpdump -D` lists it, numbered from 1:
        /// `1.eth0 (description) [Up, Running]`.
        public func listingLine(number: Int) -> String {
            var flags: [String] = []
            if isUp { flags.append("Up") }
            if isRunning { flags.append("Running") }
            if isLoopback { flags.append("Loopback") }
            return "\(number).\(name)\(description.map { " (\($0))" } ?? "")\(flags.isEmpty ? "" : " [\(flags.joined(separator: ", "))]")"
        }
    }

    /// The interfaces of this network namespace libpcap can capture on (`pcap_findalldevs`).
    public static func interfaces() throws(CaptureError) -> [Interface] {
        var errbuf = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        var list: UnsafeMutablePointer<pcap_if_t>?
        guard pcap_findalldevs(&list, &errbuf) == 0 else {
            throw .liveCaptureFailed(interface: "(listing interfaces)", detail: String(nullTerminated: errbuf))
        }
        defer { pcap_freealldevs(list) }
        var out: [Interface] = []
        var p = list
        while let d = p {
            let flags = d.pointee.flags
            out.append(Interface(
                name: String(cString: d.pointee.name),
                description: d.pointee.description.map { String(cString: $0) },
                isUp: flags & UInt32(PCAP_IF_UP) != 0, isRunning: flags & UInt32(PCAP_IF_RUNNING) != 0,
                isLoopback: flags & UInt32(PCAP_IF_LOOPBACK) != 0))
            p = d.pointee.next
        }
        return out
    }

    /// The name of an interface index in this network namespace (for LINUX_SLL2 captures made here).
    public static func interfaceName(index: Int32) -> String? {
        var buf = [CChar](repeating: 0, count: Int(IF_NAMESIZE) + 1)
        guard index > 0, if_indextoname(UInt32(index), &buf) != nil else { return nil }
        return String(nullTerminated: buf)
    }
}

/// Writes packets to a pcap file with libpcap (`-w`).
public final class PcapWriter {
    private let dumper: OpaquePointer
    private let deadHandle: OpaquePointer?
    public let path: String

    /// A writer with the link type, snaplen and timestamp precision of `source`.
    public init(path: String, source: PcapSource) throws(CaptureError) {
        guard let d = pcap_dump_open(source.handle, path) else {
            throw .writeFailed(path: path, detail: String(cString: pcap_geterr(source.handle)))
        }
        dumper = d
        deadHandle = nil
        sourceHandle = source.handle
        self.path = path
    }

    /// A writer for packets of `linkType` (nanosecond timestamps).
    public init(path: String, linkType: LinkType, snaplen: Int32 = 262_144) throws(CaptureError) {
        guard let dead = pcap_open_dead_with_tstamp_precision(linkType.rawValue, snaplen, UInt32(PCAP_TSTAMP_PRECISION_NANO)) else {
            throw .writeFailed(path: path, detail: "libpcap cannot create a handle for \(linkType.name)")
        }
        guard let d = pcap_dump_open(dead, path) else {
            let detail = String(cString: pcap_geterr(dead))
            pcap_close(dead)
            throw .writeFailed(path: path, detail: detail)
        }
        dumper = d
        deadHandle = dead
        self.path = path
    }

    /// Packets not written because their interface's link type is not the file's (a pcapng
    /// source with interfaces of several link types: a pcap file holds one).
    public private(set) var skippedOtherLinkType = 0
    private lazy var linkType = LinkType(rawValue: pcap_datalink(deadHandle ?? sourceHandle!))
    private var sourceHandle: OpaquePointer?

    public func write(_ packet: RawPacket) {
        if let lt = packet.linkType, lt != linkType, !(lt == .rawFileValue && linkType == .raw) {
            skippedOtherLinkType += 1
            return
        }
        var header = pcap_pkthdr()
        header.ts.tv_sec = Int(packet.timestamp / 1_000_000_000)
        header.ts.tv_usec = Int(packet.timestamp % 1_000_000_000)
        header.caplen = UInt32(packet.bytes.count)
        header.len = UInt32(packet.wireLength)
        guard let base = packet.bytes.baseAddress else { return }
        pcap_dump(UnsafeMutableRawPointer(dumper).assumingMemoryBound(to: UInt8.self), &header,
                  base.assumingMemoryBound(to: UInt8.self))
    }

    public func flush() { pcap_dump_flush(dumper) }

    /// What the writer could not write from `source` (`skippedOtherLinkType`), as one warning
    /// (without the `hoptrace: warning:` prefix); nil when every packet was written.
    public func unwrittenWarning(source: PcapSource) -> String? {
        guard skippedOtherLinkType > 0 else { return nil }
        return Self.unwrittenWarning(path: path, count: skippedOtherLinkType, linkType: source.linkType.name,
                                     linkTypes: source.linkTypeDescription)
    }

    /// `count` packets not written to `path` because their interface's link type is not
    /// `linkType`, the file's: a pcap file holds one (`linkTypes`: the capture's).
    public static func unwrittenWarning(path: String, count n: Int, linkType: String, linkTypes: String) -> String {
        "\(path): \(n) packet\(n == 1 ? "" : "s") not written: \(n == 1 ? "its" : "their") interface's link type is not \(linkType), "
            + "the first interface's, and a pcap file holds one link type (the capture's link types: \(linkTypes)); "
            + "filter by interface, e.g. `tshark -r FILE -Y 'frame.interface_id == N' -w part-N.pcapng`"
    }

    deinit {
        pcap_dump_close(dumper)
        if let deadHandle { pcap_close(deadHandle) }
    }
}

extension String {
    /// The text of a C string held in an array (up to its first NUL, or all of it), as UTF-8.
    public init(nullTerminated chars: [CChar]) {
        let end = chars.firstIndex(of: 0) ?? chars.count
        self = chars[..<end].withUnsafeBufferPointer { p in
            String(decoding: UnsafeRawBufferPointer(p), as: UTF8.self)
        }
    }
}
