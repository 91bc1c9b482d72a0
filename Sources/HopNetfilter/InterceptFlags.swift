/// istio-iptables' flags as given on a command line (`-p -z -u -g -b -d -i -x -o`) and the
/// preset they start from (`--preset`): `config()` reads them into an `InterceptConfig`.
public struct InterceptFlags: Hashable, Sendable {
    /// `--preset`: one of `InterceptConfig.presetNames`.
    public var preset = "istio-2018"
    /// `-p`: the proxy (outbound capture) port.
    public var proxyPort: UInt16?
    /// `-z`: the inbound capture port.
    public var inboundPort: UInt16?
    /// `-u`, `-g`: comma lists of the proxy's uids and gids.
    public var uids: String?
    public var gids: String?
    /// `-b`: inbound ports to capture, a comma list, `*` for all, empty for none.
    public var inboundPorts: String?
    /// `-d`: inbound ports never captured.
    public var excludedInboundPorts: String?
    /// `-i`: outbound CIDRs to capture, a comma list, `*` for all, empty for none.
    public var outboundCIDRs: String?
    /// `-x`: outbound CIDRs never captured.
    public var excludedCIDRs: String?
    /// `-o`: outbound ports never captured.
    public var excludedOutboundPorts: String?

    public init() {}

    /// A flag whose value cannot be used; the message names the flag (`-b: 'x' is not a port`).
    public struct Invalid: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    /// The preset with the flags applied. In the 2018 layout inbound shares the proxy port, so
    /// `-p` moves both unless `-z` is given.
    public func config() throws(Invalid) -> InterceptConfig {
        guard var c = InterceptConfig.preset(preset) else {
            throw Invalid(description: "--preset \(preset): unknown (\(InterceptConfig.presetNames.joined(separator: ", ")))")
        }
        if let p = proxyPort {
            if c.style == .istio2018 && c.inboundCapturePort == c.proxyPort && inboundPort == nil { c.inboundCapturePort = p }
            c.proxyPort = p
        }
        if let z = inboundPort { c.inboundCapturePort = z }
        if let u = uids { c.proxyUIDs = try Self.list(u, flag: "-u", "a number") { UInt32($0) } }
        if let g = gids { c.proxyGIDs = try Self.list(g, flag: "-g", "a number") { UInt32($0) } }
        if let b = inboundPorts {
            c.inbound = b == "*" ? .all : b.isEmpty ? .disabled : .ports(try Self.ports(b, flag: "-b"))
        }
        if let d = excludedInboundPorts { c.excludedInboundPorts = try Self.ports(d, flag: "-d") }
        if let i = outboundCIDRs {
            c.outbound = i == "*" ? .all : i.isEmpty ? .disabled : .networks(try Self.list(i, flag: "-i", "an address or CIDR") { CIDR($0) })
        }
        if let x = excludedCIDRs { c.excludedOutboundNetworks = try Self.list(x, flag: "-x", "an address or CIDR") { CIDR($0) } }
        if let o = excludedOutboundPorts { c.excludedOutboundPorts = try Self.ports(o, flag: "-o") }
        return c
    }

    static func ports(_ s: String, flag: String) throws(Invalid) -> [UInt16] {
        try list(s, flag: flag, "a port") { UInt16($0) }
    }

    /// The items of a comma list, each trimmed and read by `parse`; the first it refuses is
    /// `flag: 'item' is not WHAT`.
    static func list<T>(_ s: String, flag: String, _ what: String, _ parse: (String) -> T?) throws(Invalid) -> [T] {
        var out: [T] = []
        for p in s.split(separator: ",") {
            let blank = { (c: Character) in c.isWhitespace && !c.isNewline }
            guard let v = parse(String(p.drop(while: blank).reversed().drop(while: blank).reversed())) else {
                throw Invalid(description: "\(flag): '\(p)' is not \(what)")
            }
            out.append(v)
        }
        return out
    }
}
