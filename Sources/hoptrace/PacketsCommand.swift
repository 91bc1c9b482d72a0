import ArgumentParser
import HopPipeline
import HopReport

struct Packets: ParsableCommand, PacketReading {
    static let configuration = CommandConfiguration(commandName: "packets",
        abstract: "Print one line per TCP segment, tcpdump style.",
        discussion: """
        Reads a capture file (FILE or -r) or a live interface (-i) through libpcap, decodes \
        Ethernet (with 802.1Q/QinQ), Linux cooked v1/v2, BSD loopback and raw IP down to TCP, \
        and prints each segment: time (local time of day; --utc for UTC), interface and \
        direction when the link type records them, source > destination, flags, absolute \
        sequence numbers and payload length. Everything that is not a clean TCP segment \
        (non-IP, UDP, fragments, truncated or malformed packets) is counted and reported on \
        standard error at the end (or in a final {"summary": …} object with --format jsonl).

        Examples:
          hoptrace packets Captures/sll2-any.pcap
          hoptrace packets -r capture.pcapng --format jsonl 'tcp port 80'
          hoptrace packets -i any -c 20 -A port 15001
        """)

    static let countsWhat = "TCP segments"
    static let printing: PrintingOptions = [.timestamps, .ascii, .verbose, .absoluteSequence, .number]
    static let asciiHelp = "Print each segment's payload (as captured) in ASCII after its line, '.' for what is not printable (tcpdump -A)."

    @OptionGroup var capture: CaptureOptions<Packets>

    @Option(name: .long, help: "Output format: text (tcpdump-like lines) or jsonl (one JSON object per segment, then a summary).")
    var format: StreamFormat = .text

    @Flag(name: [.customShort("q"), .long], help: "Decode every packet but print only the counters (for timing the decoder).")
    var quiet = false

    func validate() throws {
        try capture.requireSource()
    }

    func run() throws {
        guard let source = try capture.open() else { return }
        try PacketPipeline.print(source: source, writer: try capture.writer(for: source), options: capture.stream(jsonl: format == .jsonl),
                                 style: PacketText.Style(ascii: capture.ascii, verbose: capture.verbose, number: capture.number), quiet: quiet)
    }
}
