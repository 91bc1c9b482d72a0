import ArgumentParser
import HopCapture
import HopPipeline
import HopReport

struct Analyze: ParsableCommand, PacketReading {
    static let configuration = CommandConfiguration(commandName: "analyze",
        abstract: "Pair the copies of each request across proxy hops and explain why each exists.",
        discussion: """
        Reads a capture (a FILE, -r FILE, or live with -i, in --netns NAME), rebuilds every connection (joining \
        NAT-split halves), parses HTTP/1.x, gives every exchange a hop role \
        (inbound-intercepted, inbound-forwarded, outbound-redirected, outbound-forwarded, \
        direct), pairs the copies of one request into a chain by evidence (method, target, \
        Host, request ids, time nesting, status; optimal matching when many identical requests \
        are in flight), and explains each chain with the netfilter rule that made each copy.

        Rules: --rules istio-2018 (the seed article's), istio-current, a file of \
        iptables-save (or `iptables -t nat -S`) text, live (the network namespace's own nat \
        table, read with iptables-save), none, or auto (default): a live capture reads the \
        namespace's rules when it has any; otherwise the capture's sidecar traces pick a \
        preset, and no traces means no rules. The pod's addresses are inferred \
        (packets sent out of the host, NAT-split clients, the busiest address) unless \
        --pod-ip is given.

        With no FILE, analyzes the bundled capture of the seed scenario (the doubled HEAD). \
        Times are the local time of day (--utc for UTC); JSON times are UTC.

        Examples:
          hoptrace analyze
          hoptrace analyze capture.pcap --rules istio-current --pod-ip 10.0.0.7
          hoptrace analyze capture.pcap --chain 812      # one chain in full
          hoptrace analyze capture.pcap --all            # every chain in full
          hoptrace analyze capture.pcap --format html > report.html
        """)

    static let countsWhat = "HTTP exchanges (the analysis then runs on one thread)"
    static let printing: PrintingOptions = []

    @OptionGroup var capture: CaptureOptions<Analyze>

    @Option(name: .long, help: ArgumentHelp("istio-2018, istio-current, auto, live, none, or a file of iptables-save / iptables -S text.", valueName: "rules"))
    var rules: String = "auto"

    @Option(name: .customLong("pod-ip"), help: ArgumentHelp("The pod's address (repeatable); inferred when omitted.", valueName: "ip"))
    var podIPs: [String] = []

    @Option(name: .long, help: "Output: text, json (one document), jsonl (one chain per line, then a summary), mermaid, html.")
    var format: ReportFormat = .text

    @Flag(name: .long, help: "Text: show every chain in full, including direct requests.")
    var all = false

    @Option(name: .customLong("chain"), help: ArgumentHelp("Text: show only this chain, in full (repeatable; ids as the report lists them).", valueName: "id"))
    var chains: [Int] = []

    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Slack for time nesting between capture points, in ms.", valueName: "ms"))
    var tolerance: Double = 0.2

    @Option(name: .customLong("duplicate-window"), parsing: .unconditional, help: ArgumentHelp("Identical direct requests closer than this are reported as duplicates (0: off), in ms.", valueName: "ms"))
    var duplicateWindow: Double = 1000

    func validate() throws {
        try validatePodIPs(podIPs)
        do { try AnalysisSettings.checkMilliseconds(tolerance: tolerance, duplicateWindow: duplicateWindow) } catch {
            throw ValidationError(error.message)
        }
    }

    func run() throws {
        if capture.listInterfaces { _ = try capture.open(); return }
        // A file's rules are read first (their errors come first); a live capture's once the
        // capture is open, in its network namespace.
        let live = capture.hasSource && capture.captureFile == nil
        let resolved = live ? nil : try RuleSource.resolve(rules, live: false)
        let sourceName: String
        let source: PcapSource
        if capture.hasSource {
            sourceName = capture.captureFile ?? "live capture on \(capture.interface ?? "any")"
            guard let opened = try capture.open() else { return }
            source = opened
        } else {
            capture.applyTimeZone()
            sourceName = "\(BundledCapture.name) (bundled seed scenario: give a FILE to analyze yours)"
            source = try BundledCapture.open(filter: capture.filterExpression)
            Output.stderr.line("hoptrace: no capture given: analyzing the bundled seed capture \(BundledCapture.name)")
        }
        var settings = try AnalysisSettings(rules: resolved ?? RuleSource.resolve(rules, live: true), podIPs: podIPs,
                                            toleranceMs: tolerance, duplicateWindowMs: duplicateWindow)
        settings.filter = capture.filterExpression
        settings.exchangeLimit = capture.count

        try Analysis.print(source: source, sourceName: sourceName, settings: settings, format: format, all: all, chains: chains,
                           writer: try capture.writer(for: source))
    }
}

extension ReportFormat: ExpressibleByArgument {}
