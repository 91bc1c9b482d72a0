// Socket addresses: the original destination of a REDIRECTed connection, the pod's own
// addresses, and how addresses are spelled in messages and the access log.
import NIOCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension SocketAddress {
    /// "198.18.3.2:80", "[fd00::2]:80"; a Unix path as is.
    var hopDescription: String {
        switch self {
        case .v4: return "\(ipAddress ?? "?"):\(port ?? 0)"
        case .v6: return "[\(ipAddress ?? "?")]:\(port ?? 0)"
        case .unixDomainSocket: return pathname ?? "unix"
        }
    }

    /// The address without the port, normalised (inet_ntop), for set membership.
    var hostKey: String { ipAddress ?? "" }

    var isLoopback: Bool {
        switch self {
        case .v4(let a): return (UInt32(bigEndian: a.address.sin_addr.s_addr) >> 24) == 127
        case .v6: return ipAddress == "::1"
        case .unixDomainSocket: return false
        }
    }
}

/// An IP socket address from text (for tests and configuration).
func address(_ ip: String, _ port: Int) throws -> SocketAddress {
    try SocketAddress(ipAddress: ip, port: port)
}

/// Reads where a REDIRECTed connection was going before netfilter rewrote it.
public enum OriginalDestination {
    /// `SO_ORIGINAL_DST` (IPv4, level `SOL_IP`) and `IP6T_SO_ORIGINAL_DST` (IPv6, level
    /// `SOL_IPV6`) share the number 80 (linux/netfilter_ipv4.h, linux/netfilter_ipv6/ip6_tables.h).
    static let optionName: CInt = 80

    /// The original destination of an accepted connection, or nil when the kernel has no
    /// NAT entry for it (no conntrack, or a connection that no rule rewrote — then the kernel
    /// may also answer with the local address itself).
    ///
    /// Read from an accepted socket's descriptor (the socket's own family decides the level).
    static func read(fd: Int32, local: SocketAddress?) -> SocketAddress? {
        let level: CInt
        switch local {
        case .v4: level = CInt(SOL_IP)
        case .v6: level = CInt(IPPROTO_IPV6)
        default: return nil
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        guard getsockopt(fd, level, optionName, &storage, &length) == 0 else { return nil }
        return SocketAddresses.address(storage)
    }
}

/// The addresses of this network namespace's interfaces.
public enum InterfaceAddresses {
    /// Every IPv4 and IPv6 address of a non-loopback interface (IPv6 link-local excluded),
    /// normalised as `SocketAddress.ipAddress` spells them.
    public static func podAddresses() -> [String] {
        var result: [String] = []
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return [] }
        defer { freeifaddrs(list) }
        var cursor: UnsafeMutablePointer<ifaddrs>? = first
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard let sa = entry.pointee.ifa_addr else { continue }
            if entry.pointee.ifa_flags & UInt32(IFF_LOOPBACK) != 0 { continue }
            let family = Int32(sa.pointee.sa_family)
            if family == AF_INET {
                let sin = UnsafeRawPointer(sa).load(as: sockaddr_in.self)
                if let s = ntop(AF_INET, sin.sin_addr) { result.append(s) }
            } else if family == AF_INET6 {
                let sin6 = UnsafeRawPointer(sa).load(as: sockaddr_in6.self)
                guard let s = ntop(AF_INET6, sin6.sin6_addr) else { continue }
                if s.lowercased().hasPrefix("fe80:") { continue }
                result.append(s)
            }
        }
        var seen = Set<String>()
        return result.filter { seen.insert($0).inserted }
    }

    /// Normalises an address given on the command line ("198.18.3.2", "fd00::2"); nil if invalid.
    public static func normalise(_ text: String) -> String? {
        (try? SocketAddress(ipAddress: text, port: 0))?.ipAddress
    }
}

/// `inet_ntop` of an `in_addr` or `in6_addr`: the numeric host text.
func ntop<T>(_ family: Int32, _ addr: T) -> String? {
    var a = addr
    var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
    return withUnsafePointer(to: &a) { p in
        inet_ntop(family, p, &text, socklen_t(INET6_ADDRSTRLEN)).map { _ in cString(text) }
    }
}

/// The text of a NUL-terminated C character array.
func cString(_ chars: [CChar]) -> String {
    String(decoding: chars.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
