import HopCapture

/// Resolves interface names for SLL2 captures taken live in this namespace.
public struct InterfaceNames {
    let live: Bool
    let device: String?
    private var cache: [Int32: String] = [:]

    /// A pcapng file's interfaces are named by the file (`if_name`).
    public init(source: PcapSource) {
        live = source.isLive
        device = source.isLive && source.name != "any" ? source.name : nil
        file = source.isLive ? nil : source
    }

    private let file: PcapSource?

    public mutating func name(for index: Int32?) -> String? {
        if let device { return device }
        guard let index else { return nil }
        if let n = cache[index] { return n }
        let n = (live ? PcapSource.interfaceName(index: index) : file?.interfaceName(ordinal: index)) ?? "if\(index)"
        cache[index] = n
        return n
    }
}

/// tcpdump's first line of a live capture.
public func listeningLine(_ source: PcapSource, snaplen: Int32) -> String {
    "hoptrace: listening on \(source.name), link-type \(source.linkType.name) (\(source.linkType.longDescription)), snapshot length \(snaplen) bytes"
}

/// How a line begins with its time, as tcpdump's -t options say: the time of day (default),
/// none, seconds since the epoch, since the previous line, date and time, since the first line.
public struct LineClock {
    public let level: Int
    private var previous: Int64?
    private var first: Int64?

    public init(level: Int) { self.level = level }

    /// The time text, and whether there is one (-t: none).
    public mutating func text(_ ns: Int64) -> String? {
        defer { previous = ns; if first == nil { first = ns } }
        switch level {
        case 0: return Timestamp.timeOfDay(ns)
        case 1: return nil
        case 2: return Timestamp.epochSeconds(ns)
        case 3: return Timestamp.deltaSeconds(Timestamp.elapsed(from: previous ?? ns, to: ns))
        case 4: return Timestamp.dateAndTime(ns)
        default: return Timestamp.deltaSeconds(Timestamp.elapsed(from: first ?? ns, to: ns))
        }
    }

    /// The time text written into `b`, and whether there is one (-t: none). The time of day
    /// (the default) is formatted straight into the bytes.
    public mutating func write(_ ns: Int64, into b: inout LineBuilder) -> Bool {
        guard level == 0 else {
            guard let t = text(ns) else { return false }
            b.text(t)
            return true
        }
        previous = ns
        if first == nil { first = ns }
        b.timeOfDay(ns)
        return true
    }

    /// `text` and a space, or nothing.
    public mutating func prefix(_ ns: Int64) -> String {
        text(ns).map { $0 + " " } ?? ""
    }
}
