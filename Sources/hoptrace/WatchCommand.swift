import ArgumentParser
import Foundation
import HopProxy
import HopPipeline
import HopReport
#if canImport(Glibc)
#endif

struct Watch: ParsableCommand, PacketReading {
    static let configuration = CommandConfiguration(commandName: "watch",
        abstract: "Watch HTTP hops live, tcpdump style: one line per exchange as it completes.",
        discussion: """
        Captures live (a capture thread moves packets from the kernel into a bounded queue; \
        the analysis runs on another), rebuilds connections, parses HTTP/1.x and prints one \
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
          hoptrace watch -i any --summary-interval 10
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

    @Option(name: .customLong("summary-interval"), parsing: .unconditional, help: ArgumentHelp("Text: every so many seconds (of capture time) and at the end, a one-screen summary of the latency, routes and problems since the start.", valueName: "seconds"))
    var summaryInterval: Double?

    func validate() throws {
        try validatePodIPs(podIPs)
        if let s = summaryInterval, !(s > 0 && s <= 86_400) {
            throw ValidationError("--summary-interval \(s): must be a number of seconds above 0, at most 86400 (a day)")
        }
    }

    func run() throws {
        guard let source = try capture.open() else { return }
        let writer = try capture.writer(for: source)
        let settings = try WatchPipeline.settings(rules: rules, podIPs: podIPs, live: source.isLive, filter: capture.filterExpression,
                                                  bodies: capture.ascii)
        if let u = user {
            // -Z USER: the capture is open; run on as USER.
            do { try Privileges.drop(toUser: u) } catch { throw InputError(message: "-Z \(u): \(error)") }
        }
        // Live, lines are written a batch of packets at a time (at most ~100 ms late: the
        // kernel hands packets over in blocks anyway), not a write(2) each; -l for each line.
        Output.stdout.lineBuffered = capture.lineBuffered || (isatty(1) == 1 && !source.isLive)
        if source.isLive && !capture.lineBuffered { source.onBatchDone = { Output.stdout.flush() } }
        try WatchPipeline.print(source: source, writer: writer, settings: settings, options: capture.stream(jsonl: format == .jsonl),
                                heads: capture.ascii, color: TextStyle.colorOn(), summaryInterval: summaryInterval)
    }
}
