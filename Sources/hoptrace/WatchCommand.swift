import ArgumentParser
import Foundation
import HopCapture
import HopCorrelation
import HopFlows
import HopHTTP
import HopIntercept
import HopNetfilter
import HopPipeline
import HopReport
#if canImport(Glibc)
import Glibc
#endif

struct Watch: ParsableCommand, PacketReading {
    static let configuration = CommandConfiguration(
        abstract: "Watch HTTP hops live, tcpdump style: one line per exchange as it completes.",
        discussion: """
        Captures live (immediate mode), rebuilds connections, parses HTTP/1.x and prints one \
        line per exchange as soon as its response completes: time, hop role, method, target, \
        status, response time and tuples. When another copy of the same request has been \
        seen, the line links them ("hop 1 of chain 17, with hop 2: proxy → app c5, +0.4 ms").

        Live on `any` unless -i, --netns or a capture FILE (-r) says otherwise; a file is \
        replayed as if live. Inside a pod (or with --netns), the rules are read from the \
        namespace itself (iptables-save) and the pod's addresses from its interfaces, unless \
        --rules / --pod-ip say otherwise. Times are the local time of day (--utc for UTC). \
        Ctrl-C, SIGTERM or -c end the watch with a summary and libpcap's statistics (and a \
        final {"summary": …} object with --format jsonl).

        Examples:
          hoptrace watch -i any
          hoptrace watch -i any --netns pod1 -l port 80 or port 15001
          hoptrace watch -i eth0 -c 10 -w hops.pcap -Z nobody
          hoptrace watch -r Captures/lab-seed.pcap --format jsonl
        """)

    static let countsWhat = "HTTP exchanges"
    static let printing: PrintingOptions = [.timestamps, .ascii]
    static let asciiHelp = "Show each exchange's request and response heads after its line, and the first \(HTTP.bodyPrefixBytes) bytes of each body in ASCII ('.' for what is not printable; `requestBodyPrefix` / `responseBodyPrefix` in jsonl)."
    static let defaultInterface: String? = "any"

    @OptionGroup var capture: CaptureOptions<Watch>

    @Option(name: .customShort("Z"), help: ArgumentHelp("Drop privileges to this user after opening the capture.", valueName: "user"))
    var user: String?

    @Option(name: .long, help: "Output: text or jsonl (one object per exchange, then a summary).")
    var format: StreamFormat = .text

    @Option(name: .long, help: ArgumentHelp("auto (live: the namespace's own nat rules, read with iptables-save; else the capture's sidecar traces), live, istio-2018, istio-current, none, or a rules file.", valueName: "rules"))
    var rules: String = "auto"

    @Option(name: .customLong("pod-ip"), help: ArgumentHelp("The pod's address (repeatable); default: the namespace's addresses (live), inferred (a file).", valueName: "ip"))
    var podIPs: [String] = []

    func validate() throws {
        try validatePodIPs(podIPs)
    }

    func run() throws {
        guard let source = try capture.open() else { return }
        let writer = try capture.writer(for: source)
        let resolved = try RuleSource(rules).resolve(live: source.isLive)
        for note in resolved.notes { Output.stderr.line("hoptrace: \(note)") }
        var settings = AnalysisSettings(rules: resolved)
        settings.podAddresses = !podIPs.isEmpty ? Set(podIPs.compactMap { IPAddress($0) })
            : source.isLive ? NetworkNamespace.localAddresses() : []
        settings.filter = capture.filterExpression
        if capture.ascii { settings.bodyPrefixBytes = HTTP.bodyPrefixBytes }
        if let u = user { try Self.dropPrivileges(to: u) }

        let out = Output.stdout
        out.lineBuffered = capture.lineBuffered || isatty(1) == 1 || source.isLive
        let color = isatty(1) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
        let jsonl = format == .jsonl
        let limit = capture.count ?? .max
        let heads = capture.ascii
        var printed = 0
        var names = InterfaceNames(source: source)
        var clock = capture.clock
        if source.isLive { Output.stderr.line("hoptrace: rules: \(resolved.origin)") }
        let print: (Hop, RequestChain?) -> Void = { hop, chain in
            printed += 1
            if jsonl {
                out.line(Self.json(hop, chain: chain, headers: heads))
            } else {
                out.line(Self.text(hop, chain: chain, color: color, names: &names, clock: &clock)
                         + (heads ? LineBuilder.string { HTTP.heads(hop.exchange, bodies: true, into: &$0) } : ""))
            }
        }
        let outcome = WatchPipeline.run(
            source: source, settings: settings, raw: writer.map { w in { w.write($0) } },
            onUpstream: { hop in if printed < limit { print(hop, nil) } },
            onChain: { chain in
                // Upstream copies were printed as they completed; the downstream copy completes
                // last and carries the links.
                guard printed < limit, let first = chain.hops.first, !first.role.isUpstream || chain.hops.count == 1 else { return }
                if first.role.isUpstream { return }  // an orphan upstream copy, already printed
                print(first, chain)
            },
            shouldStop: { printed >= limit })
        writer?.flush()
        capture.reportUnwritten(writer, source: source)
        out.flush()
        let s = outcome.summary
        if jsonl {
            out.line(outcome.result.summaryJSON(extra: [("http", outcome.http.report), ("chains", [
                ("exchanges", s.exchanges, "HTTP exchanges"), ("chains", outcome.chains, "chains reported"),
                ("multiHop", outcome.multiHop, "chains with more than one hop"),
                ("unexplainedDuplicates", s.unexplainedDuplicates, "requests sent twice with no proxy to explain it"),
                ("incomplete", outcome.incomplete, "chains missing a hop"),
            ])], warnings: outcome.warnings))
            out.flush()
        }
        Output.stderr.line("")
        Output.stderr.line("\(s.exchanges) exchanges, \(outcome.chains) chains (\(outcome.multiHop) multi-hop), \(s.unexplainedDuplicates) unexplained duplicate\(s.unexplainedDuplicates == 1 ? "" : "s"), \(outcome.incomplete) incomplete chain\(outcome.incomplete == 1 ? "" : "s")")
        Output.stderr.line("\(outcome.result.decode.packets) packets captured")
        if let st = outcome.result.statistics {
            Output.stderr.line("\(st.received) packets received by filter")
            Output.stderr.line("\(st.dropped) packets dropped by kernel")
            Output.stderr.line("\(st.interfaceDropped) packets dropped by interface")
        }
        Output.stderr.line("\(outcome.result.flows.closedIdle) idle connections expired, \(outcome.unansweredRequests) requests unanswered")
        if !jsonl { printWarnings(outcome.warnings) }
        if let e = outcome.result.readError { throw InputError(message: e.description) }
    }

    /// `-Z USER`: the capture is open; run on as USER (one privilege drop: HopIntercept's).
    static func dropPrivileges(to user: String) throws {
        guard let pw = getpwnam(user) else { throw InputError(message: "-Z \(user): no such user") }
        do { try Privileges.drop(toUID: pw.pointee.pw_uid, gid: pw.pointee.pw_gid) } catch {
            throw InputError(message: "-Z \(user): cannot drop privileges: \(error)")
        }
    }

    static func text(_ h: Hop, chain: RequestChain?, color: Bool, names: inout InterfaceNames, clock: inout LineClock) -> String {
        let x = h.exchange
        let c = h.connection
        let start = x.request?.firstTimestamp ?? x.response?.firstTimestamp ?? c.firstTimestamp
        var line = clock.prefix(start)
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

    static func json(_ h: Hop, chain: RequestChain?, headers: Bool = false) -> String {
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
        if headers {
            o.key("requestHeaders")
            o.rawValue(JSONReport.headers(h.exchange.request?.headers))
            o.key("responseHeaders")
            o.rawValue(JSONReport.headers(h.exchange.response?.headers))
            o.field("requestBodyPrefix", h.exchange.request.map { String(decoding: $0.bodyPrefix, as: UTF8.self) })
            o.field("responseBodyPrefix", h.exchange.response.map { String(decoding: $0.bodyPrefix, as: UTF8.self) })
        }
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
