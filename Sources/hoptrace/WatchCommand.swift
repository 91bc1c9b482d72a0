import ArgumentParser
import Foundation
import HopCapture
import HopCorrelation
import HopFlows
import HopHTTP
import HopProxy
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
    static let asciiHelp = "Show each exchange's request and response heads after its line, and the first \(ExchangeText.bodyPrefixBytes) bytes of each body in ASCII ('.' for what is not printable; `requestBodyPrefix` / `responseBodyPrefix` in jsonl)."
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
        if capture.ascii { settings.bodyPrefixBytes = ExchangeText.bodyPrefixBytes }
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
                out.line(HopLine.json(hop, chain: chain, headers: heads))
            } else {
                out.line(HopLine.text(hop, chain: chain, color: color, names: &names, clock: &clock)
                         + (heads ? LineBuilder.string { ExchangeText.heads(hop.exchange, bodies: true, into: &$0) } : ""))
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
        if jsonl {
            out.line(outcome.summaryJSON())
            out.flush()
        }
        Output.stderr.line("")
        for l in outcome.counterLines() { Output.stderr.line(l) }
        if !jsonl { printWarnings(outcome.warnings) }
        if let e = outcome.result.readError { throw InputError(message: e.description) }
    }

    /// `-Z USER`: the capture is open; run on as USER (one privilege drop: HopProxy's).
    static func dropPrivileges(to user: String) throws {
        guard let pw = getpwnam(user) else { throw InputError(message: "-Z \(user): no such user") }
        do { try Privileges.drop(toUID: pw.pointee.pw_uid, gid: pw.pointee.pw_gid) } catch {
            throw InputError(message: "-Z \(user): cannot drop privileges: \(error)")
        }
    }
}
