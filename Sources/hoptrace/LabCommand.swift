import ArgumentParser
import HopPipeline
import HopLab
import HopReport

struct Lab: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "lab",
        abstract: "Build a sidecar scene in network namespaces, capture it, and check the analysis against ground truth.",
        discussion: """
        Each scenario builds namespaces for a client, the pod and (outbound) a remote service, \
        joined by veth pairs in 198.18.10.0/24 … 198.18.19.0/24; runs the app on :80 in the pod \
        (nginx when /usr/sbin/nginx is installed, else a built-in Python server), installs the \
        scenario's interception rules in the pod with hoptrace's rule installer, starts \
        the sidecar (`--sidecar`: `hoptrace proxy`, HAProxy or nginx, as uid 1337), captures with hoptrace's own capture engine inside the \
        pod (on `any`, or on one interface), drives known traffic, and analyzes the capture. \
        The analysis is compared with what the client sent (methods, targets, order, local \
        ports, statuses) and with the proxy's access log (downstream client ↔ upstream local \
        address, status, attempts); with HAProxy or nginx, with their log joined by x-request-id \
        with the app's (exact counts; load from wrk). Every run also reports its pairing \
        accuracy, a calibration table (ECE) and a timing-only baseline (never failing). Exit 0 \
        when every request is found with the right hops, roles and pairing and nothing is \
        unexplained that should not be; 1 with a list of the differences otherwise; 2 without \
        root or the tools it needs.

        Everything it makes (namespaces named hoplab-PID-…, processes, temp files) is removed on \
        exit, on error and on SIGINT/SIGTERM; namespaces left by a crashed run are removed by \
        the next one.

        Examples:
          hoptrace lab --list
          hoptrace lab seed
          hoptrace lab load --requests 1000 --connections 16
          hoptrace lab --all --format json
          hoptrace lab load --sidecar haproxy --identical-targets --connections 32
          hoptrace lab load --sidecar nginx --truth-dir /tmp/truth
          hoptrace lab --all --write-dir Captures --update-expectations
        """)

    @Argument(help: ArgumentHelp("The scenario to run (see --list).", valueName: "scenario"))
    var scenario: String?

    @Flag(name: .long, help: "Run every scenario.")
    var all = false

    @Flag(name: .long, help: "List the scenarios.")
    var list = false

    @Option(name: .long, parsing: .unconditional, help: "load: requests to send.")
    var requests: Int = 200

    @Option(name: .long, parsing: .unconditional, help: "load: concurrent keep-alive connections.")
    var connections: Int = 8

    @Flag(name: .customLong("identical-targets"), help: "load: send identical requests (HEAD /, GET /) instead of one target per request, so pairing must rely on timing alone.")
    var identicalTargets = false

    @Option(name: .long, help: "The sidecar: hoptrace (its own proxy), haproxy, haproxy-h2 (HAProxy with HTTP/2 to an h2c app), haproxy-h2c (the same, with h2c clients too: h2load, nghttp and curl --http2-prior-knowledge beside wrk), haproxy-grpc (HAProxy in front of a gRPC app: grpcio's server and client; load only), haproxy-mtls (mutual TLS from a client sidecar to the pod's HAProxy, plaintext to the app; load only), haproxy-mtls-h2 (the same with HTTP/2 between the sidecars, ALPN istio-h2: requests multiplexed inside TLS) or nginx (third-party: truth from their logs joined with the app's by x-request-id; load is driven by wrk).")
    var sidecar: LabSidecar = .hoptrace

    @Option(name: .long, parsing: .unconditional, help: "Third-party sidecars under load: wrk's duration in seconds.")
    var duration: Int = 2

    @Option(name: .customLong("truth-dir"), help: ArgumentHelp("Keep each run's capture and truth as DIR/NAME.pcap and DIR/NAME.truth.jsonl (NAME: scenario-sidecar-cN[-identical]).", valueName: "dir"))
    var truthDir: String?

    @Option(name: .long, help: "Output: text or json (the verdict).")
    var format: Check.CheckFormat = .text

    @Option(name: .long, help: ArgumentHelp("Keep the capture of the (single) scenario in this file.", valueName: "file"))
    var write: String?

    @Option(name: .customLong("write-dir"), help: ArgumentHelp("Keep each passing scenario's capture as DIR/lab-NAME.pcap.", valueName: "dir"))
    var writeDir: String?

    @Flag(name: .customLong("update-expectations"), help: "With --write-dir: also write DIR/lab-NAME.expect.json from the (verified) analysis.")
    var updateExpectations = false

    @Flag(name: .customLong("strict-rules"), help: "Fail when a hop's deciding rule is not the rule the kernel used (by default a note).")
    var strictRules = false

    @Flag(name: [.short, .long], help: "Say what is being built and started.")
    var verbose = false

    @Flag(name: .long, help: "Keep the temp directory (logs, access log, capture) of each run.")
    var keep = false

    /// Tests: wait (at most 60 s) until this file exists before sending the traffic.
    @Option(name: .customLong("wait-for"), help: .hidden)
    var waitForFile: String?

    @Option(name: .customLong("namespace-prefix"), help: .hidden)
    var namespacePrefix: String = "hoplab-"

    func validate() throws {
        if list { return }
        if all && scenario != nil { throw ValidationError("give a SCENARIO or --all, not both") }
        if !all && scenario == nil { throw ValidationError("give a SCENARIO or --all (--list shows them)") }
        if let s = scenario, LabScenario.named(s) == nil {
            throw ValidationError("unknown scenario '\(s)' (one of: \(LabScenario.all.map(\.name).joined(separator: ", ")))")
        }
        if write != nil && all { throw ValidationError("--write keeps one capture: with --all use --write-dir DIR") }
        do { try options.validate() } catch { throw ValidationError(error.description) }
    }

    var options: LabOptions {
        var options = LabOptions()
        options.requests = requests
        options.connections = connections
        options.identicalTargets = identicalTargets
        options.sidecar = sidecar
        options.duration = duration
        options.write = write
        options.writeDir = writeDir
        options.updateExpectations = updateExpectations
        options.truthDir = truthDir
        options.strictRules = strictRules
        options.verbose = verbose
        options.keep = keep
        options.waitForFile = waitForFile
        options.namespacePrefix = namespacePrefix
        return options
    }

    func run() throws {
        if list {
            for s in LabScenario.all { Output.stdout.line(s.listLine) }
            return
        }
        let tools: (ip: String, python: String)
        do { tools = try LabRunner.preflight() } catch { throw InputError(message: error.description) }
        let runner = LabRunner(options: options, ip: tools.ip, python: tools.python) { capture, rules, podIPs in
            try CheckRun.analyzeDocument(capture: capture, rules: rules, podIPs: podIPs, filter: nil)
        }
        if let note = runner.prepare() { Output.stderr.line(note) }
        let chosen = all ? LabScenario.all : [LabScenario.named(scenario!)!]
        do {
            if try !runner.runPrinting(chosen, json: format == .json) { throw ExitCode(ExitStatus.differences) }
        } catch let error as LabRunner.Stopped {
            Output.stderr.line("hoptrace lab: \(error.scenario): \(error); everything the lab made was removed")
            throw ExitCode(130)
        }
    }
}

extension LabSidecar: ExpressibleByArgument {}
