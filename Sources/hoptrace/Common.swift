import ArgumentParser
import HopCapture
import HopPipeline
import HopReport

/// The documented exit codes.
enum ExitStatus {
    static let ok: Int32 = 0
    static let differences: Int32 = 1
    static let inputError: Int32 = 2
}

/// The formats of a command that prints a stream (one line per item, then a summary).
enum StreamFormat: String, ExpressibleByArgument, CaseIterable {
    case text, jsonl
}

/// A command that reads packets: what its share of the capture options means.
protocol PacketReading {
    /// What `-c` counts ("TCP segments", "HTTP exchanges", …).
    static var countsWhat: String { get }
    /// Which printing options apply to it.
    static var printing: PrintingOptions { get }
    /// What `-A` shows (when `printing` has `.ascii`).
    static var asciiHelp: String { get }
    /// Without FILE, -r or -i: nil refuses; else the default (watch: a live capture on `any`).
    static var defaultInterface: String? { get }
}

extension PacketReading {
    static var asciiHelp: String { "" }
    static var defaultInterface: String? { nil }
}

/// The options of tcpdump's that a command prints with.
struct PrintingOptions: OptionSet {
    let rawValue: Int
    /// `-t`…`-ttttt`: how lines begin with their time.
    static let timestamps = PrintingOptions(rawValue: 1)
    /// `-A`: what the command's text shows of the bytes.
    static let ascii = PrintingOptions(rawValue: 2)
    /// `-v`: more of each packet's headers.
    static let verbose = PrintingOptions(rawValue: 4)
    /// `-S`: absolute sequence numbers.
    static let absoluteSequence = PrintingOptions(rawValue: 8)
    /// `-#`: each line with its packet's number.
    static let number = PrintingOptions(rawValue: 16)
}

/// The capture options every command that reads packets takes, tcpdump's where they
/// overlap: a FILE (or `-r FILE`) or `-i IFACE` (in `--netns NAME`), `-c`, `-w`, `-l`, `-s`,
/// `-B`, a trailing BPF expression, `-n`, `-D`, the times (`-t`…, `--utc`), and per command
/// `-A`, `-v`, `-S`, `-#`. Options that do not apply to a command are not in its help and
/// are refused.
struct CaptureOptions<Command: PacketReading>: ParsableArguments {
    @Argument(help: ArgumentHelp("A capture file (pcap or pcapng; '-' for standard input), the same as -r FILE.", valueName: "file"))
    var file: String?

    @Argument(parsing: .remaining, help: ArgumentHelp("A BPF filter expression, as tcpdump takes it (e.g. 'tcp port 80'), after the FILE if any.", valueName: "expression"))
    var expressionWords: [String] = []

    @Option(name: .customShort("r"), help: ArgumentHelp("Read packets from a pcap or pcapng file ('-' for standard input).", valueName: "file"))
    var readFile: String?

    @Option(name: .customShort("i"), help: ArgumentHelp("Capture live from an interface ('any' for all interfaces of the network namespace)\(Command.defaultInterface.map { "; \($0) when no FILE is given" } ?? "").", valueName: "interface"))
    var interface: String?

    @Option(name: .long, help: ArgumentHelp("Capture inside this network namespace (/run/netns/NAME; needs root).", valueName: "name"))
    var netns: String?

    @Option(name: .customShort("c"), parsing: .unconditional, help: ArgumentHelp("Stop after this many \(Command.countsWhat).", valueName: "count"))
    var count: Int?

    @Option(name: .customShort("w"), help: ArgumentHelp("Also write the packets read (as filtered) to this pcap file.", valueName: "file"))
    var writeFile: String?

    @Flag(name: .customShort("l"), help: "Line-buffered output (flush after every line; always on for live captures).")
    var lineBuffered = false

    @Option(name: .customShort("s"), parsing: .unconditional, help: ArgumentHelp("Live capture: bytes to keep of each packet (snaplen).", valueName: "snaplen"))
    var snaplen: Int32 = 262_144

    @Option(name: .customShort("B"), parsing: .unconditional, help: ArgumentHelp("Live capture: kernel buffer size in KiB (default 32768).", valueName: "KiB"))
    var bufferKiB: Int32?

    @Flag(name: .customLong("immediate-mode"), help: "Live capture: hand over each packet as it arrives (default: in blocks, at most 100 ms late). For a quiet interface with a small snaplen (-s): under load it drops packets.")
    var immediate = false

    @Flag(name: .long, help: "Live capture: put the interface into promiscuous mode (off by default).")
    var promiscuous = false

    @Flag(name: .customShort("n"), help: "Don't resolve addresses or ports to names (accepted for tcpdump habits; hoptrace never resolves).")
    var numeric = false

    @Flag(name: [.customShort("D"), .customLong("list-interfaces")], help: "List the interfaces a live capture can use (in --netns NAME if given), then exit.")
    var listInterfaces = false

    @Flag(name: .customShort("t"), help: ArgumentHelp("Line times: -t none, -tt seconds since the epoch, -ttt since the previous line, -tttt date and time, -ttttt since the first line (default: the time of day).", visibility: Self.visibility(.timestamps)))
    var timestampLevel: Int

    @Flag(name: .long, help: "Print times in UTC (default: the local time zone, as tcpdump; JSON times are always UTC, with Z).")
    var utc = false

    @Flag(name: .customShort("A"), help: ArgumentHelp(Command.asciiHelp, visibility: Self.visibility(.ascii)))
    var ascii = false

    @Flag(name: .customShort("v"), help: ArgumentHelp("Verbose: each packet's IP TTL and identification (tcpdump -v).", visibility: Self.visibility(.verbose)))
    var verbose = false

    @Flag(name: .customShort("S"), help: ArgumentHelp("Absolute TCP sequence numbers (what hoptrace always prints; accepted for tcpdump habits).", visibility: Self.visibility(.absoluteSequence)))
    var absoluteSequence = false

    @Flag(name: [.customShort("#"), .customLong("number")], help: ArgumentHelp("Begin each line with its packet's number in the capture (tcpdump -#; the counters cite \"packet N\").", visibility: Self.visibility(.number)))
    var number = false

    static func visibility(_ option: PrintingOptions) -> ArgumentVisibility {
        Command.printing.contains(option) ? .default : .private
    }

    /// The positional word is the capture file: nothing else names a source, and (for a
    /// command that captures live by default) it looks like one.
    private var positionalIsFile: Bool {
        guard readFile == nil, interface == nil, let f = file else { return false }
        return Command.defaultInterface == nil || Self.looksLikeCapture(f)
    }

    static func looksLikeCapture(_ word: String) -> Bool {
        word == "-" || [".pcap", ".pcapng", ".cap", ".gz"].contains { word.hasSuffix($0) } || word.contains("/")
    }

    /// The capture file, from FILE or -r.
    var captureFile: String? { readFile ?? (positionalIsFile ? file : nil) }

    /// The BPF expression: the words after the FILE (all of them after -r or -i).
    var filterExpression: String? {
        let words = (positionalIsFile || file == nil ? [] : [file!]) + expressionWords
        return words.isEmpty ? nil : words.joined(separator: " ")
    }

    /// A FILE, -r, -i or --netns (live on `any` there), or the command's default source.
    var hasSource: Bool { captureFile != nil || interface != nil || netns != nil || Command.defaultInterface != nil }

    func validate() throws {
        if readFile != nil && interface != nil {
            throw ValidationError("-r and -i cannot be used together")
        }
        if (readFile != nil || interface != nil), let f = file, [".pcap", ".pcapng"].contains(where: { f.hasSuffix($0) }) {
            throw ValidationError("give the capture once: as FILE or with -r/-i")
        }
        do { try spec.validate(count: count) } catch { throw ValidationError(error.description) }
        if timestampLevel > 5 { throw ValidationError("-t is given at most five times (-ttttt)") }
        for (given, option, name) in [(timestampLevel > 0, PrintingOptions.timestamps, "-t"), (ascii, .ascii, "-A"),
                                      (verbose, .verbose, "-v"), (absoluteSequence, .absoluteSequence, "-S"), (number, .number, "-#")]
        where given && !Command.printing.contains(option) {
            throw ValidationError("\(name) does not apply to this command (its --help lists what does)")
        }
    }

    /// For commands that need a source.
    func requireSource() throws {
        if !hasSource && !listInterfaces {
            throw ValidationError("give a capture FILE, -r FILE, or an interface with -i IFACE")
        }
    }

    /// Where the packets come from.
    var spec: CaptureSpec {
        var spec = CaptureSpec(file: captureFile, interface: captureFile == nil ? interface ?? Command.defaultInterface : nil,
                               filter: filterExpression)
        spec.netns = netns
        spec.snaplen = snaplen
        spec.bufferKiB = bufferKiB
        spec.immediate = immediate
        spec.promiscuous = promiscuous
        return spec
    }

    /// Sets the process's time zone for printed times (local unless --utc). Call first.
    func applyTimeZone() {
        Timestamp.localTime = !utc
    }

    /// Opens the source (printing tcpdump's "listening on" line for a live one), or with
    /// `-D` lists the interfaces and returns nil.
    func open() throws -> PcapSource? {
        applyTimeZone()
        if listInterfaces {
            for line in try CaptureSpec.interfaceListing(netns: netns) { Output.stdout.line(line) }
            return nil
        }
        let source = try spec.openAnnounced()
        Output.stdout.lineBuffered = lineBuffered || source.isLive
        return source
    }

    /// The `-w` file, open on `source`.
    func writer(for source: PcapSource) throws -> PcapWriter? {
        guard let w = writeFile else { return nil }
        do { return try PcapWriter(path: w, source: source) } catch { throw InputError(message: error.description) }
    }

    /// How a streaming command prints: jsonl or text, `-c`, the times (`-t`…), the filter.
    func stream(jsonl: Bool) -> StreamOptions {
        StreamOptions(jsonl: jsonl, limit: count, clock: LineClock(level: timestampLevel), filter: filterExpression,
                      color: TextStyle.colorOn())
    }
}

/// Pod addresses given with --pod-ip.
func validatePodIPs(_ ips: [String]) throws {
    do { _ = try AnalysisSettings.podAddresses(ips) } catch { throw ValidationError(error.message) }
}
