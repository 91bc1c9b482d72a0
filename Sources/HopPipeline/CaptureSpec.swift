import CHopSys
import HopCapture
#if canImport(Glibc)
import Glibc
#endif

/// Where packets come from, as tcpdump is told: a file (`-r`, '-' for standard input) or a
/// live interface (`-i`), optionally inside a named network namespace, with a BPF filter.
public struct CaptureSpec: Sendable {
    public var file: String?
    public var interface: String?
    /// Enter this network namespace (/run/netns/NAME) before opening a live capture.
    public var netns: String?
    public var snaplen: Int32 = 262_144
    /// Kernel buffer size in KiB (libpcap's default when nil).
    public var bufferKiB: Int32?
    /// Deliver each packet as it arrives (`--immediate-mode`; see `LiveCaptureOptions.immediate`).
    public var immediate = false
    public var promiscuous = false
    public var filter: String?

    public init(file: String? = nil, interface: String? = nil, filter: String? = nil) {
        self.file = file
        self.interface = interface
        self.filter = filter
    }

    /// Opens the source (entering `netns` first) and applies the filter.
    public func open() throws(InputError) -> PcapSource {
        if let netns { try NetworkNamespace.enter(netns) }
        let source: PcapSource
        do {
            if let path = file {
                source = try PcapSource.openFile(path)
            } else {
                var live = LiveCaptureOptions(interface: interface ?? "any")
                live.snaplen = snaplen
                live.promiscuous = promiscuous
                if let kib = bufferKiB { live.bufferSize = kib * 1024 }
                live.immediate = immediate
                source = try PcapSource.openLive(live)
            }
            if let filter { try source.setFilter(filter) }
        } catch {
            throw InputError(message: error.description)
        }
        return source
    }

    /// Refuses a link type hoptrace cannot decode, saying how many packets were not decoded.
    public static func requireSupported(_ source: PcapSource) throws(InputError) {
        guard !source.linkType.isSupported else { return }
        var n = 0
        while case .packet = try? source.next() { n += 1 }
        let what = source.isLive ? "" : " (\(n) packet\(n == 1 ? "" : "s") not decoded)"
        throw InputError(message: CaptureError.unsupportedLinkType(source.linkType).description + what)
    }
}

/// Entering a named network namespace (`ip netns add NAME` makes /run/netns/NAME).
public enum NetworkNamespace {
    /// Enters `name` on this thread; call it before any other thread starts.
    public static func enter(_ name: String) throws(InputError) {
        let path = "/run/netns/\(name)"
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            if e == ENOENT { throw InputError(message: "network namespace \(name) does not exist (`ip netns list` shows them)") }
            throw InputError(message: "cannot open \(path): \(String(cString: strerror(e)))")
        }
        defer { close(fd) }
        guard chopsys_enter_netns(fd) == 0 else {
            let e = errno
            throw InputError(message: "cannot enter network namespace \(name): \(String(cString: strerror(e)))\(e == EPERM ? "; entering a namespace needs CAP_SYS_ADMIN: run as root" : "")")
        }
    }

    /// This namespace's own addresses (not loopback), from its interfaces.
    public static func localAddresses() -> Set<IPAddress> {
        var out = Set<IPAddress>()
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return out }
        defer { freeifaddrs(list) }
        var p: UnsafeMutablePointer<ifaddrs>? = first
        while let ifa = p {
            defer { p = ifa.pointee.ifa_next }
            guard let sa = ifa.pointee.ifa_addr else { continue }
            var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            let len = socklen_t(sa.pointee.sa_family == sa_family_t(AF_INET6) ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)
            guard sa.pointee.sa_family == sa_family_t(AF_INET) || sa.pointee.sa_family == sa_family_t(AF_INET6),
                  getnameinfo(sa, len, &host, socklen_t(host.count), nil, 0, NI_NUMERICHOST) == 0 else { continue }
            var text = String(nullTerminated: host)
            if let pct = text.firstIndex(of: "%") { text = String(text[..<pct]) }
            if let a = IPAddress(text), !a.isLoopback { out.insert(a) }
        }
        return out
    }
}
