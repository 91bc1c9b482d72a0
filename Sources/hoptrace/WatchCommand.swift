import ArgumentParser
import CPcap
import Foundation
import HopCapture
import HopCorrelation
import HopFlows
import HopHTTP
import HopIntercept
import HopNetfilter
import HopReport
#if canImport(Glibc)
import Glibc
#endif

struct Watch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Watch HTTP hops live, tcpdump style: one line per exchange as it completes.",
        discussion: """
        Captures live (immediate mode), rebuilds connections, parses HTTP/1.x and prints one \
        line per exchange as soon as its response completes: time, hop role, method, target, \
        status, response time and tuples. When another copy of the same request has been \
        seen, the line links them ("hop 1 of chain 17, with hop 2: proxy → app c5, +0.4 ms").

        Inside a pod (or with --netns), the rules are read from the namespace itself \
        (iptables-save) and the pod's addresses from its interfaces, unless --rules / \
        --pod-ip say otherwise. Ctrl-C, SIGTERM or -c end the watch with a summary and \
        libpcap's statistics.

        Examples:
          hoptrace watch -i any
          hoptrace watch -i any --netns pod1 -l port 80 or port 15001
          hoptrace watch -i eth0 -c 10 -w hops.pcap -Z nobody
        """)

    @Option(name: .customShort("i"), help: ArgumentHelp("Interface to watch ('any' for all in the namespace).", valueName: "interface"))
    var interface: String = "any"

    @Option(name: .long, help: ArgumentHelp("Watch inside this network namespace (/run/netns/NAME).", valueName: "name"))
    var netns: String?

    @Option(name: .customShort("s"), parsing: .unconditional, help: ArgumentHelp("Snaplen: bytes kept of each packet.", valueName: "snaplen"))
    var snaplen: Int32 = 262_144

    @Option(name: .customShort("B"), parsing: .unconditional, help: ArgumentHelp("Kernel buffer size in KiB.", valueName: "KiB"))
    var bufferKiB: Int32?

    @Option(name: .customShort("c"), parsing: .unconditional, help: ArgumentHelp("Stop after this many exchanges.", valueName: "count"))
    var count: Int?

    @Option(name: .customShort("w"), help: ArgumentHelp("Also write the raw packets to this pcap file.", valueName: "file"))
    var writeFile: String?

    @Option(name: .customShort("Z"), help: ArgumentHelp("Drop privileges to this user after opening the capture.", valueName: "user"))
    var user: String?

    @Flag(name: .customShort("l"), help: "Line-buffered output.")
    var lineBuffered = false

    @Flag(name: .customShort("n"), help: "Don't resolve names (accepted; hoptrace never resolves).")
    var numeric = false

    @Option(name: .long, help: "Output: text or jsonl.")
    var format: OutputFormat = .text

    @Option(name: .long, help: ArgumentHelp("live (read the namespace's iptables), istio-2018, istio-current, none, or a rules file.", valueName: "rules"))
    var rules: String = "live"

    @Option(name: .customLong("pod-ip"), help: ArgumentHelp("The pod's address (repeatable); default: this namespace's addresses.", valueName: "ip"))
    var podIPs: [String] = []

    @Argument(parsing: .remaining, help: ArgumentHelp("A BPF filter expression.", valueName: "expression"))
    var filterWords: [String] = []

    func validate() throws {
        if format == .json { throw ValidationError("watch prints a stream: use --format text or --format jsonl") }
        try validateCount(count)
        try validateSnaplen(snaplen, bufferKiB: bufferKiB)
        for ip in podIPs where HopCapture.IPAddress(ip) == nil { throw ValidationError("--pod-ip \(ip) is not an IPv4 or IPv6 address") }
    }

    /// Enters a named network namespace (this thread; the process is single-threaded here).
    static func enter(netns name: String) throws {
        let path = "/run/netns/\(name)"
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            if e == ENOENT { throw InputError(message: "network namespace \(name) does not exist (`ip netns list` shows them)") }
            throw InputError(message: "cannot open \(path): \(String(cString: strerror(e)))")
        }
        defer { close(fd) }
        guard hoptrace_enter_netns(fd) == 0 else {
            let e = errno
            throw InputError(message: "cannot enter network namespace \(name): \(String(cString: strerror(e)))\(e == EPERM ? "; entering a namespace needs CAP_SYS_ADMIN: run as root" : "")")
        }
    }

    /// This namespace's own addresses (not loopback).
    static func localAddresses() -> Set<HopCapture.IPAddress> {
        var out = Set<HopCapture.IPAddress>()
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
            if let a = HopCapture.IPAddress(text), !a.isLoopback { out.insert(a) }
        }
        return out
    }

    func ruleSelection() throws -> (RuleSelection, String) {
        switch rules {
        case "live":
            let installer = RuleInstaller(config: .istio2018, runner: IptablesRunner())
            if IptablesRunner.which("iptables-save") != nil, let set = try? installer.current(),
               let nat = set.table(.nat), nat.chains.contains(where: { !$0.rules.isEmpty }) {
                return (.fixed(NetfilterOracle(ruleSet: set, name: "live nat table")), "read from this namespace with iptables-save")
            }
            return (.fixed(NoRules()), "no nat rules in this namespace (or iptables-save is unavailable)")
        case "none": return (.fixed(NoRules()), "given: none")
        default:
            if let p = NetfilterOracle.preset(rules) { return (.fixed(p), "given with --rules") }
            let text = try readRulesFile(rules, keywords: ["live", "none"])
            do { return (.fixed(NetfilterOracle(ruleSet: try RuleSet.parse(text), name: rules)), "given with --rules") } catch {
                throw InputError(message: "--rules \(rules): \(error)")
            }
        }
    }

    static func dropPrivileges(to user: String) throws {
        guard let pw = getpwnam(user) else { throw InputError(message: "-Z \(user): no such user") }
        let uid = pw.pointee.pw_uid, gid = pw.pointee.pw_gid
        guard setgroups(0, nil) == 0 || geteuid() != 0, setgid(gid) == 0, setuid(uid) == 0 else {
            throw InputError(message: "-Z \(user): cannot drop privileges: \(String(cString: strerror(errno)))")
        }
    }

    func run() throws {
        if let ns = netns { try Self.enter(netns: ns) }
        var live = LiveCaptureOptions(interface: interface)
        live.snaplen = snaplen
        if let k = bufferKiB { live.bufferSize = k * 1024 }
        let source: PcapSource
        do {
            source = try PcapSource.openLive(live)
            if !filterWords.isEmpty { try source.setFilter(filterWords.joined(separator: " ")) }
        } catch {
            throw InputError(message: error.description)
        }
        guard source.linkType.isSupported else { throw InputError(message: CaptureError.unsupportedLinkType(source.linkType).description) }
        var writer: PcapWriter?
        if let w = writeFile {
            do { writer = try PcapWriter(path: w, source: source) } catch { throw InputError(message: error.description) }
        }
        var cfg = CorrelatorConfiguration()
        let (selection, origin) = try ruleSelection()
        cfg.rules = selection
        cfg.podAddresses = podIPs.isEmpty ? Self.localAddresses() : Set(podIPs.compactMap { HopCapture.IPAddress($0) })
        cfg.inferenceSample = 1
        if let u = user { try Self.dropPrivileges(to: u) }

        let out = Output.stdout
        out.lineBuffered = lineBuffered || isatty(1) == 1
        let color = isatty(1) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
        let jsonl = format == .jsonl
        let limit = count ?? .max
        var printed = 0
        var names = InterfaceNames(source: source)
        Output.stderr.line(listeningLine(source, snaplen: snaplen) + " (rules: \(origin))")

        var chainsSeen = 0, multiHop = 0, incomplete = 0
        let correlator = Correlator(configuration: cfg) { chain in
            chainsSeen += 1
            if chain.isMultiHop { multiHop += 1 }
            if chain.isIncomplete { incomplete += 1 }
            // Upstream copies were printed as they completed; the downstream copy completes
            // last and carries the links.
            guard printed < limit, let first = chain.hops.first, !first.role.isUpstream || chain.hops.count == 1 else { return }
            if first.role.isUpstream { return }  // an orphan upstream copy, already printed
            printed += 1
            out.line(jsonl ? Self.json(first, chain: chain) : Self.text(first, chain: chain, color: color, names: &names))
        }
        let http = HTTPAnalyzer { x in
            let (role, _) = correlator.role(of: x)
            if role.isUpstream && printed < limit {
                printed += 1
                let hop = Hop(role: role, exchange: x, rule: .none, attempt: 0, roleReason: "")
                out.line(jsonl ? Self.json(hop, chain: nil) : Self.text(hop, chain: nil, color: color, names: &names))
            }
            correlator.add(x)
        }
        let table = ConnectionTable(consumer: http)
        var decoder = PacketDecoder(linkType: source.linkType)
        let readError = readSegments(from: source, decoder: &decoder, raw: writer.map { w in { w.write($0) } }) { seg in
            if seg.direction == .outgoing { correlator.observeLocalAddress(seg.source.address) }
            table.process(seg)
            return printed < limit
        }
        writer?.flush()
        table.finish()
        http.finish()
        correlator.finish()
        out.flush()
        let s = correlator.summary
        Output.stderr.line("")
        Output.stderr.line("\(s.exchanges) exchanges, \(chainsSeen) chains (\(multiHop) multi-hop), \(s.unexplainedDuplicates) unexplained duplicate\(s.unexplainedDuplicates == 1 ? "" : "s"), \(incomplete) incomplete chain\(incomplete == 1 ? "" : "s")")
        Output.stderr.line("\(decoder.counters.packets) packets captured")
        if let st = source.statistics() {
            Output.stderr.line("\(st.received) packets received by filter")
            Output.stderr.line("\(st.dropped) packets dropped by kernel")
            Output.stderr.line("\(st.interfaceDropped) packets dropped by interface")
        }
        let fc = table.counters
        Output.stderr.line("\(fc.closedIdle) idle connections expired, \(http.counters.unansweredRequests) requests unanswered")
        if let e = readError { throw InputError(message: e.description) }
    }

    static func text(_ h: Hop, chain: RequestChain?, color: Bool, names: inout InterfaceNames) -> String {
        let x = h.exchange
        let c = h.connection
        let start = x.request?.firstTimestamp ?? x.response?.firstTimestamp ?? c.firstTimestamp
        var line = Timestamp.timeOfDay(start) + " "
        let role = h.role.rawValue.padding(toLength: 19, withPad: " ", startingAt: 0)
        line += color ? "\u{1b}[\(h.role.isDownstream ? "34" : h.role.isUpstream ? "32" : "90")m\(role)\u{1b}[0m" : role
        line += " \(x.request?.method ?? "-") \(x.request?.target ?? "(request not seen)")"
        line += " → \(x.response.map { String($0.status) } ?? "-")"
        if let q = x.request, let r = x.response { line += " \(Timestamp.duration(Timestamp.elapsed(from: q.firstTimestamp, to: r.lastTimestamp)))" }
        line += "  \(c.client) > \(c.server)"
        if let o = c.originalDestination { line += " (for \(o))" }
        if let i = c.interfaceIndexes.first, let n = names.name(for: i) { line += " on \(n)" }
        if let chain, chain.hops.count > 1 {
            let others = chain.hops.enumerated().filter { $0.element.exchange.connection.id != c.id }
            let links = others.map { i, o -> String in
                // A hop whose request was not captured is timed by its response's first byte.
                let from = h.requestStart ?? h.exchange.response?.firstTimestamp
                let to = o.requestStart ?? o.exchange.response?.firstTimestamp
                guard let from, let to else { return "hop \(i + 1): \(o.role.phrase) \(o.connection.id)" }
                return "hop \(i + 1): \(o.role.phrase) \(o.connection.id) +\(Timestamp.duration(Timestamp.elapsed(from: from, to: to)))"
            }
            line += "  — hop 1 of chain \(chain.id); " + links.joined(separator: "; ")
        } else if let chain, chain.isIncomplete, case .incomplete(let m, _) = chain.completeness {
            line += "  — chain \(chain.id) incomplete: no \(m.rawValue) copy"
        }
        return line
    }

    static func json(_ h: Hop, chain: RequestChain?) -> String {
        let o = JSONWriter(capacity: 1024)
        o.beginObject()
        o.field("time", iso8601: h.requestStart ?? h.connection.firstTimestamp)
        o.field("chain", chain?.id)
        o.field("hopIndex", chain == nil ? nil : 1)
        o.field("hops", chain?.hops.count)
        o.field("role", h.role.rawValue)
        o.field("method", h.exchange.request?.method)
        o.field("target", h.exchange.request?.target)
        o.field("status", h.exchange.response.map { $0.status })
        o.field("client", h.connection.client.description)
        o.field("server", h.connection.server.description)
        o.field("originalDestination", h.connection.originalDestination?.description)
        if let q = h.exchange.request, let r = h.exchange.response { o.field("durationNs", Timestamp.elapsed(from: q.firstTimestamp, to: r.lastTimestamp)) }
        if let chain {
            o.key("linked")
            o.beginArray()
            for hop in chain.hops.dropFirst() { JSONReport.write(hop: hop, report: nil, to: o) }
            o.endArray()
        }
        o.endObject()
        return o.string
    }
}
