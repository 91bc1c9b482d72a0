import ArgumentParser
import Foundation
import HopCapture
import HopCorrelation
import HopNetfilter
import HopReport
#if canImport(Glibc)
import Glibc
#endif

/// An error the command line reports with a message and exit code 2.
struct InputError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// The documented exit codes.
enum ExitStatus {
    static let ok: Int32 = 0
    static let differences: Int32 = 1
    static let inputError: Int32 = 2
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json, jsonl
}

/// Where packets come from: `-r FILE` or `-i IFACE`, plus a trailing BPF expression (tcpdump style).
struct CaptureOptions: ParsableArguments {
    @Option(name: .customShort("r"), help: ArgumentHelp("Read packets from a pcap or pcapng file ('-' for standard input).", valueName: "file"))
    var readFile: String?

    @Option(name: .customShort("i"), help: ArgumentHelp("Capture live from an interface ('any' for all interfaces of this network namespace).", valueName: "interface"))
    var interface: String?

    @Option(name: .customShort("s"), parsing: .unconditional, help: ArgumentHelp("Live capture: bytes to keep of each packet (snaplen).", valueName: "snaplen"))
    var snaplen: Int32 = 262_144

    @Option(name: .customShort("B"), parsing: .unconditional, help: ArgumentHelp("Live capture: kernel buffer size in KiB.", valueName: "KiB"))
    var bufferKiB: Int32?

    @Flag(name: .long, help: "Live capture: put the interface into promiscuous mode (off by default).")
    var promiscuous = false

    @Flag(name: .customShort("n"), help: "Don't resolve addresses or ports to names (accepted for tcpdump habits; hoptrace never resolves).")
    var numeric = false

    @Argument(parsing: .remaining, help: ArgumentHelp("A BPF filter expression, as tcpdump takes it (e.g. 'tcp port 80').", valueName: "expression"))
    var filterWords: [String] = []

    /// For commands that need a source (all but `analyze`, which has a bundled capture).
    func requireSource() throws {
        if readFile == nil && interface == nil {
            throw ValidationError("give a capture file with -r FILE or an interface with -i IFACE")
        }
    }

    var filterExpression: String? { filterWords.isEmpty ? nil : filterWords.joined(separator: " ") }

    func validate() throws {
        if readFile != nil && interface != nil {
            throw ValidationError("-r and -i cannot be used together")
        }
        try validateSnaplen(snaplen, bufferKiB: bufferKiB)
    }

    /// Opens the source, applies the filter, and refuses link types hoptrace cannot decode.
    func open() throws -> PcapSource {
        let source: PcapSource
        do {
            if let path = readFile {
                source = try PcapSource.openFile(path)
            } else {
                var live = LiveCaptureOptions(interface: interface!)
                live.snaplen = snaplen
                live.promiscuous = promiscuous
                if let kib = bufferKiB { live.bufferSize = kib * 1024 }
                source = try PcapSource.openLive(live)
            }
            if let f = filterExpression { try source.setFilter(f) }
        } catch {
            throw InputError(message: error.description)
        }
        if let w = source.activationWarning { Output.stderr.line("hoptrace: warning: \(w)") }
        return source
    }
}

/// `-s` and `-B`, as given: positive numbers (a negative one is read as a value, not an option).
func validateSnaplen(_ snaplen: Int32, bufferKiB: Int32?) throws {
    if snaplen <= 0 { throw ValidationError("-s \(snaplen): the snaplen must be a positive number of bytes") }
    if let b = bufferKiB, b <= 0 { throw ValidationError("-B \(b): the buffer size must be a positive number of KiB") }
}

/// The text of a `--rules FILE` (iptables-save or `iptables -S` text), or an error that says
/// what is wrong with the path: missing, a directory, unreadable, not text. `keywords`: the
/// command's other values of --rules, besides the presets.
func readRulesFile(_ path: String, keywords: [String]) throws -> String {
    let choices = "\(InterceptConfig.presetNames.joined(separator: ", ")), \(keywords.joined(separator: ", "))"
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw InputError(message: "--rules \(path): not a preset (\(choices)) and no such file")
    }
    if isDirectory.boolValue {
        throw InputError(message: "--rules \(path): is a directory; give a file of iptables-save text (e.g. `iptables-save -t nat > rules.txt` in the pod's network namespace), or one of \(choices)")
    }
    guard let data = FileManager.default.contents(atPath: path) else {
        throw InputError(message: "--rules \(path): cannot be read (\(String(cString: strerror(access(path, R_OK) == 0 ? EIO : errno))))")
    }
    guard let text = String(data: data, encoding: .utf8) else {
        throw InputError(message: "--rules \(path): not text (iptables-save output is UTF-8 text)")
    }
    return text
}

/// `-c`, as given: a positive count.
func validateCount(_ count: Int?) throws {
    if let c = count, c <= 0 { throw ValidationError("-c \(c): the count must be a positive number") }
}

/// Reads every packet of `source` through `decoder`, calling `body` for each TCP segment.
/// Returns the error that ended the read early (a truncated file), if any; `body` returns
/// false to stop.
@inline(__always)
func readSegments(
    from source: PcapSource, decoder: inout PacketDecoder, raw: ((RawPacket) -> Void)? = nil,
    _ body: (TCPSegment) -> Bool
) -> CaptureError? {
    if source.isLive { CaptureInterrupt.install(for: source) }
    defer { if source.isLive { CaptureInterrupt.uninstall() } }
    var segment = TCPSegment.empty
    while true {
        let result: PcapSource.ReadResult
        do {
            result = try source.next()
        } catch {
            return error
        }
        switch result {
        case .packet(let p):
            raw?(p)
            if decoder.decode(p, into: &segment) {
                if !body(segment) { return nil }
            }
        case .timeout:
            continue
        case .end:
            return nil
        }
    }
}

/// The counters, as lines for stderr.
func counterLines(_ c: DecodeCounters, linkType: LinkType) -> [String] {
    var lines = ["\(c.packets) packet\(c.packets == 1 ? "" : "s") read (\(linkType.name)), \(c.tcpSegments) TCP segment\(c.tcpSegments == 1 ? "" : "s")"]
    for r in c.report {
        lines.append("  \(r.count) \(r.name) (first: packet \(r.firstPacket)): \(r.explanation)")
    }
    return lines
}

/// The analysis's warnings, one line each on standard error.
func printWarnings(_ warnings: [AnalysisWarning]) {
    for w in warnings { Output.stderr.line("hoptrace: warning: " + TextReport.warningLine(w)) }
}

func statisticsLine(_ s: CaptureStatistics) -> String {
    "\(s.received) packets received by filter, \(s.dropped) packets dropped by kernel, \(s.interfaceDropped) packets dropped by interface"
}

/// Resolves interface names for SLL2 captures taken live in this namespace.
struct InterfaceNames {
    let live: Bool
    let device: String?
    private var cache: [Int32: String] = [:]

    init(source: PcapSource) {
        live = source.isLive
        device = source.isLive && source.name != "any" ? source.name : nil
    }

    mutating func name(for index: Int32?) -> String? {
        if let device { return device }
        guard let index else { return nil }
        if let n = cache[index] { return n }
        let n = (live ? PcapSource.interfaceName(index: index) : nil) ?? "if\(index)"
        cache[index] = n
        return n
    }
}

/// tcpdump's first line of a live capture.
func listeningLine(_ source: PcapSource, snaplen: Int32) -> String {
    "hoptrace: listening on \(source.name), link-type \(source.linkType.name) (\(source.linkType.longDescription)), snapshot length \(snaplen) bytes"
}
