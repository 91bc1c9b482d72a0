import HopReport
import ArgumentParser
import HopPipeline
import HopInstaller
import HopNetfilter

/// The rule flags, mirroring istio-iptables.
struct InterceptOptions: ParsableArguments {
    @Option(name: .long, help: "Start from a preset: istio-2018 (the seed article's rules) or istio-current.")
    var preset: String = "istio-2018"

    @Option(name: .customShort("p"), parsing: .unconditional, help: ArgumentHelp("Proxy (outbound capture) port.", valueName: "port"))
    var proxyPort: UInt16?

    @Option(name: .customShort("z"), parsing: .unconditional, help: ArgumentHelp("Inbound capture port (the proxy port in the 2018 layout, 15006 now).", valueName: "port"))
    var inboundPort: UInt16?

    @Option(name: .customShort("u"), help: ArgumentHelp("Proxy uid(s), exempt from the redirect (comma list).", valueName: "uids"))
    var uids: String?

    @Option(name: .customShort("g"), help: ArgumentHelp("Proxy gid(s), exempt from the redirect (comma list).", valueName: "gids"))
    var gids: String?

    @Option(name: .customShort("b"), help: ArgumentHelp("Inbound ports to capture: a comma list, '*' for all, '' for none.", valueName: "ports"))
    var inboundPorts: String?

    @Option(name: .customShort("d"), help: ArgumentHelp("Inbound ports never captured (with -b '*').", valueName: "ports"))
    var excludedInboundPorts: String?

    @Option(name: .customShort("i"), help: ArgumentHelp("Outbound CIDRs to capture: a comma list, '*' for all, '' for none. Not an interface: -i means CIDRs here, as in istio-iptables (the packet-reading commands' -i is an interface).", valueName: "cidrs"))
    var outboundCIDRs: String?

    @Option(name: .customShort("x"), help: ArgumentHelp("Outbound CIDRs never captured.", valueName: "cidrs"))
    var excludedCIDRs: String?

    @Option(name: .customShort("o"), help: ArgumentHelp("Outbound ports never captured.", valueName: "ports"))
    var excludedOutboundPorts: String?

    static func ports(_ s: String, flag: String) throws -> [UInt16] {
        try s.split(separator: ",").map { p in
            guard let v = UInt16(p.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("\(flag): '\(p)' is not a port") }
            return v
        }
    }

    static func ids(_ s: String, flag: String) throws -> [UInt32] {
        try s.split(separator: ",").map { p in
            guard let v = UInt32(p.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("\(flag): '\(p)' is not a number") }
            return v
        }
    }

    static func cidrs(_ s: String, flag: String) throws -> [CIDR] {
        try s.split(separator: ",").map { p in
            guard let v = CIDR(p.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("\(flag): '\(p)' is not an address or CIDR") }
            return v
        }
    }

    /// Bad flags are found while parsing, so the error comes with this subcommand's usage.
    func validate() throws { _ = try config() }

    func config() throws -> InterceptConfig {
        guard var c = InterceptConfig.preset(preset) else {
            throw ValidationError("--preset \(preset): unknown (\(InterceptConfig.presetNames.joined(separator: ", ")))")
        }
        if let p = proxyPort {
            // In the 2018 layout inbound shares the proxy port unless -z says otherwise.
            if c.style == .istio2018 && c.inboundCapturePort == c.proxyPort && inboundPort == nil { c.inboundCapturePort = p }
            c.proxyPort = p
        }
        if let z = inboundPort { c.inboundCapturePort = z }
        if let u = uids { c.proxyUIDs = try Self.ids(u, flag: "-u") }
        if let g = gids { c.proxyGIDs = try Self.ids(g, flag: "-g") }
        if let b = inboundPorts {
            c.inbound = b == "*" ? .all : b.isEmpty ? .disabled : .ports(try Self.ports(b, flag: "-b"))
        }
        if let d = excludedInboundPorts { c.excludedInboundPorts = try Self.ports(d, flag: "-d") }
        if let i = outboundCIDRs {
            c.outbound = i == "*" ? .all : i.isEmpty ? .disabled : .networks(try Self.cidrs(i, flag: "-i"))
        }
        if let x = excludedCIDRs { c.excludedOutboundNetworks = try Self.cidrs(x, flag: "-x") }
        if let o = excludedOutboundPorts { c.excludedOutboundPorts = try Self.ports(o, flag: "-o") }
        return c
    }
}

/// Where the rules go.
struct TargetNamespace: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Apply inside this network namespace (`ip netns exec`).", valueName: "name"))
    var netns: String?

    @Flag(name: .customLong("allow-root-netns"), help: "Allow changing the host's own network namespace.")
    var allowRootNetns = false

    func runner() throws -> IptablesRunner {
        if netns == nil && !allowRootNetns {
            let why = "these rules would redirect every TCP connection of the host to a proxy on the capture ports that may not be running. Use --netns NAME for a pod/lab namespace, or --allow-root-netns if you really mean this namespace"
            switch RuleInstaller.networkNamespaceCheck() {
            case .host:
                throw InputError(message: "refusing to change the host's network namespace: \(why)")
            case .unknown(let detail):
                throw InputError(message: "refusing to change this network namespace: it may be the host's (cannot compare with PID 1's: \(detail)); \(why)")
            case .other:
                break
            }
        }
        return IptablesRunner(netns: netns)
    }
}

struct Intercept: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Render, install, remove or show Istio-style interception rules.",
        discussion: """
        The rules are generated by hoptrace's netfilter model from istio-iptables' flags \
        (-p -z -u -g -b -d -i -x -o) and applied atomically with iptables-restore --noflush. \
        Installing twice leaves the same rules as once; remove deletes only hoptrace's chains \
        and jumps; a failed install restores the nat table as it was.

        Examples:
          hoptrace intercept render --preset istio-2018
          hoptrace intercept install --netns pod1 --preset istio-current -b 80,8080
          hoptrace intercept show --netns pod1
          hoptrace intercept remove --netns pod1
        """,
        subcommands: [Render.self, Install.self, Remove.self, Show.self])

    struct Render: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the iptables-save text of the rules (changes nothing).")
        @OptionGroup var rules: InterceptOptions
        @Flag(name: .long, help: "Print the `iptables -t nat -S` form instead.")
        var listing = false
        func run() throws {
            let c = try rules.config()
            Output.stdout.write(listing ? c.ruleSet().render(.listing) : RuleInstaller(config: c).renderSave())
        }
    }

    struct Install: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Install the rules (atomically; idempotent; rolled back on failure).")
        @OptionGroup var rules: InterceptOptions
        @OptionGroup var target: TargetNamespace
        @Flag(name: .customLong("dry-run"), help: "Print the exact iptables-restore --noflush input instead of applying it.")
        var dryRun = false
        func run() throws {
            let installer = RuleInstaller(config: try rules.config(), runner: try target.runner())
            do {
                if dryRun {
                    try installer.runner.checkTools()
                    let current = try? installer.current()
                    Output.stdout.write(installer.installPlan(current: current))
                    return
                }
                try installer.install()
                Output.stderr.line("hoptrace: interception rules installed\(target.netns.map { " in network namespace \($0)" } ?? "") (\(rules.preset))")
            } catch {
                throw InputError(message: String(describing: error))
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove hoptrace's chains and jumps; nothing else is touched.")
        @OptionGroup var rules: InterceptOptions
        @OptionGroup var target: TargetNamespace
        func run() throws {
            let installer = RuleInstaller(config: try rules.config(), runner: try target.runner())
            do {
                let plan = try installer.remove()
                Output.stderr.line(plan == nil ? "hoptrace: no interception rules of ours were installed" : "hoptrace: interception rules removed")
            } catch {
                throw InputError(message: String(describing: error))
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the interception rules installed now (-S form).")
        @OptionGroup var rules: InterceptOptions
        @Option(name: .long, help: ArgumentHelp("Read inside this network namespace.", valueName: "name"))
        var netns: String?
        func run() throws {
            let installer = RuleInstaller(config: try rules.config(), runner: IptablesRunner(netns: netns))
            do { Output.stdout.write(try installer.show()) } catch {
                throw InputError(message: String(describing: error))
            }
        }
    }
}
