// IPv4/IPv6 addresses and CIDR prefixes as value types, printed the way
// iptables-save prints them (dotted quad; IPv6 as glibc's inet_ntop writes it;
// networks always with a prefix length).

/// An IPv4 or IPv6 address.
public enum IPAddress: Hashable, Sendable, Comparable, CustomStringConvertible {
    case v4(UInt32)
    /// High and low 64 bits, network order.
    case v6(UInt64, UInt64)

    /// Parses dotted-quad IPv4 or textual IPv6 (with `::` and an embedded IPv4 tail).
    public init?(_ text: some StringProtocol) {
        let s = String(text)
        if s.contains(":") {
            guard let v = IPAddress.parseV6(s) else { return nil }
            self = .v6(v.0, v.1)
        } else {
            guard let v = IPAddress.parseV4(s) else { return nil }
            self = .v4(v)
        }
    }

    public var isIPv4: Bool { if case .v4 = self { true } else { false } }

    /// Maximum prefix length of the family (32 or 128).
    public var bitWidth: Int { isIPv4 ? 32 : 128 }

    /// 127.0.0.0/8 or ::1.
    public var isLoopback: Bool {
        switch self {
        case .v4(let a): a >> 24 == 127
        case .v6(let hi, let lo): hi == 0 && lo == 1
        }
    }

    public var description: String {
        switch self {
        case .v4(let a): return IPAddress.formatV4(a)
        case .v6(let hi, let lo): return IPAddress.formatV6(hi, lo)
        }
    }

    public static func < (l: IPAddress, r: IPAddress) -> Bool {
        switch (l, r) {
        case (.v4(let a), .v4(let b)): return a < b
        case (.v4, .v6): return true
        case (.v6, .v4): return false
        case (.v6(let ah, let al), .v6(let bh, let bl)): return (ah, al) < (bh, bl)
        }
    }

    static func parseV4(_ s: String) -> UInt32? {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var v: UInt32 = 0
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.allSatisfy({ $0.isASCII && $0.isNumber }),
                  let n = UInt32(p), n <= 255 else { return nil }
            v = v << 8 | n
        }
        return v
    }

    static func parseV6(_ s: String) -> (UInt64, UInt64)? {
        var text = Substring(s)
        var tail: [UInt16] = []
        // An embedded IPv4 address in the last 32 bits.
        if let lastColon = text.lastIndex(of: ":"), text[text.index(after: lastColon)...].contains(".") {
            guard let v4 = parseV4(String(text[text.index(after: lastColon)...])) else { return nil }
            tail = [UInt16(v4 >> 16), UInt16(v4 & 0xffff)]
            text = text[...lastColon]
            if !text.hasSuffix("::") { text = text.dropLast() }
        }
        func groups(_ part: Substring) -> [UInt16]? {
            if part.isEmpty { return [] }
            var out: [UInt16] = []
            for g in part.split(separator: ":", omittingEmptySubsequences: false) {
                guard !g.isEmpty, g.count <= 4, let n = UInt16(g, radix: 16) else { return nil }
                out.append(n)
            }
            return out
        }
        var words: [UInt16]
        if let dc = doubleColon(text) {
            let after = text.index(dc, offsetBy: 2)
            if doubleColon(text[after...]) != nil { return nil }
            guard let head = groups(text[..<dc]),
                  let rest = groups(text[after...]) else { return nil }
            let missing = 8 - head.count - rest.count - tail.count
            guard missing >= 1 else { return nil }
            words = head + Array(repeating: 0, count: missing) + rest + tail
        } else {
            guard let all = groups(text) else { return nil }
            words = all + tail
        }
        guard words.count == 8 else { return nil }
        var hi: UInt64 = 0, lo: UInt64 = 0
        for i in 0..<4 { hi = hi << 16 | UInt64(words[i]) }
        for i in 4..<8 { lo = lo << 16 | UInt64(words[i]) }
        return (hi, lo)
    }

    static func doubleColon(_ s: Substring) -> Substring.Index? {
        var i = s.startIndex
        while i < s.endIndex {
            let n = s.index(after: i)
            if s[i] == ":", n < s.endIndex, s[n] == ":" { return i }
            i = n
        }
        return nil
    }

    static func formatV4(_ a: UInt32) -> String {
        "\(a >> 24).\(a >> 16 & 0xff).\(a >> 8 & 0xff).\(a & 0xff)"
    }

    /// As glibc's inet_ntop: the longest run (>= 2) of zero words becomes `::`,
    /// the first one on a tie; `::ffff:a.b.c.d` and `::a.b.c.d` keep an IPv4 tail.
    static func formatV6(_ hi: UInt64, _ lo: UInt64) -> String {
        var w: [UInt16] = []
        for i in (0..<4).reversed() { w.append(UInt16(truncatingIfNeeded: hi >> (UInt64(i) * 16))) }
        for i in (0..<4).reversed() { w.append(UInt16(truncatingIfNeeded: lo >> (UInt64(i) * 16))) }
        var bestBase = -1, bestLen = 0, curBase = -1, curLen = 0
        for i in 0..<8 {
            if w[i] == 0 {
                if curBase == -1 { curBase = i; curLen = 1 } else { curLen += 1 }
            } else if curBase != -1 {
                if curLen > bestLen { bestBase = curBase; bestLen = curLen }
                curBase = -1
            }
        }
        if curBase != -1, curLen > bestLen { bestBase = curBase; bestLen = curLen }
        if bestLen < 2 { bestBase = -1 }
        var out = ""
        var i = 0
        while i < 8 {
            if i == bestBase {
                out += "::"
                i += bestLen
                continue
            }
            if i == 6, bestBase == 0, bestLen == 6 || (bestLen == 5 && w[5] == 0xffff) {
                if !out.hasSuffix(":") { out += ":" }
                out += formatV4(UInt32(w[6]) << 16 | UInt32(w[7]))
                break
            }
            if !out.isEmpty, !out.hasSuffix("::") { out += ":" }
            out += String(w[i], radix: 16)
            i += 1
        }
        return out
    }
}

/// A network: an address masked to `prefixLength` bits. Printed as iptables-save
/// prints `-s`/`-d`: always with the prefix (`127.0.0.1/32`, `::1/128`).
public struct CIDR: Hashable, Sendable, CustomStringConvertible {
    public let address: IPAddress
    public let prefixLength: Int

    /// Masks `address` to `prefixLength` bits (as iptables does: `10.1.2.3/8` is `10.0.0.0/8`).
    /// Without a prefix length the network is the single address.
    public init(_ address: IPAddress, prefixLength: Int? = nil) {
        let len = max(0, min(prefixLength ?? address.bitWidth, address.bitWidth))
        self.prefixLength = len
        self.address = CIDR.mask(address, len)
    }

    /// `addr`, `addr/len`, or IPv4 `addr/dotted.mask` (contiguous masks only).
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let addr = IPAddress(parts[0]) else { return nil }
        guard parts.count == 2 else { self.init(addr); return }
        let m = parts[1]
        if let n = Int(m), String(n) == m, n >= 0, n <= addr.bitWidth {
            self.init(addr, prefixLength: n)
        } else if addr.isIPv4, let mask = IPAddress.parseV4(String(m)) {
            let len = mask.nonzeroBitCount
            guard mask == (len == 0 ? 0 : UInt32.max << (32 - len)) else { return nil }
            self.init(addr, prefixLength: len)
        } else {
            return nil
        }
    }

    public var description: String { "\(address)/\(prefixLength)" }

    public func contains(_ a: IPAddress) -> Bool {
        guard a.isIPv4 == address.isIPv4 else { return false }
        return CIDR.mask(a, prefixLength) == address
    }

    static func mask(_ a: IPAddress, _ len: Int) -> IPAddress {
        switch a {
        case .v4(let v):
            return .v4(len == 0 ? 0 : v & (UInt32.max << (32 - len)))
        case .v6(let hi, let lo):
            let mh: UInt64 = len >= 64 ? .max : (len == 0 ? 0 : UInt64.max << (64 - len))
            let ml: UInt64 = len <= 64 ? 0 : (len >= 128 ? .max : UInt64.max << (128 - len))
            return .v6(hi & mh, lo & ml)
        }
    }
}
