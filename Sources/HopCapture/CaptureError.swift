/// Everything that can go wrong opening or reading a capture, worded for the person at the keyboard.
public enum CaptureError: Error, Equatable, CustomStringConvertible {
    case fileNotFound(path: String)
    case fileNotReadable(path: String, reason: String)
    case notACaptureFile(path: String, detail: String)
    /// No bytes at all (not even the file header a capture starts with).
    case emptyFile(path: String)
    /// A compressed capture (`format`: gzip, xz, bzip2, zstd), and the tool that decompresses it.
    case compressedFile(path: String, format: String, decompressor: String)
    /// The file ended (or broke) after `packetsRead` good packets.
    case truncatedFile(path: String, packetsRead: Int, detail: String)
    case unsupportedLinkType(LinkType)
    case badFilter(expression: String, detail: String)
    case permissionDenied(interface: String, detail: String)
    case noSuchInterface(interface: String, detail: String)
    case interfaceNotUp(interface: String)
    case liveCaptureFailed(interface: String, detail: String)
    case writeFailed(path: String, detail: String)

    /// A detail as said: hoptrace's pcapng reader's start with "pcapng: ", libpcap's are named so.
    static func origin(_ detail: String) -> String {
        detail.hasPrefix("pcapng: ") ? detail : "libpcap: " + detail
    }

    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "\(path): no such file"
        case .fileNotReadable(let path, let reason):
            return "\(path): cannot be read: \(reason)"
        case .notACaptureFile(let path, let detail):
            return "\(path): not a pcap or pcapng capture file (\(Self.origin(detail)))"
        case .emptyFile(let path):
            let what = path == "-" ? "standard input is empty" : "\(path): the file is empty"
            return "\(what) (0 bytes, not even a capture file header): the capture was stopped before it wrote anything, or it was written elsewhere"
        case .compressedFile(let path, let format, let decompressor):
            let shown = path == "-" ? "FILE" : path
            return "\(path): a \(format)-compressed file; hoptrace reads pcap and pcapng: decompress it first, e.g. `\(decompressor) \(shown) | hoptrace analyze -r -`"
        case .truncatedFile(let path, let n, let detail):
            return "\(path): the file is truncated or corrupt after packet \(n) (\(n) packet\(n == 1 ? "" : "s") read; \(Self.origin(detail)))"
        case .unsupportedLinkType(let lt):
            let names = LinkType.supported.map(\.name).joined(separator: ", ")
            return "unsupported link type \(lt.name) (\(lt.longDescription), DLT \(lt.rawValue)); hoptrace decodes \(names)"
        case .badFilter(let expression, let detail):
            return "bad filter expression '\(expression)': \(detail)"
        case .permissionDenied(let iface, let detail):
            return "\(iface): no permission to capture (\(detail)); live capture needs CAP_NET_RAW (and CAP_NET_ADMIN for some interfaces): run as root, or `setcap cap_net_raw,cap_net_admin+eip` on the hoptrace binary"
        case .noSuchInterface(let iface, let detail):
            return "\(iface): no such interface (\(detail)); `ip link` lists the interfaces of this network namespace"
        case .interfaceNotUp(let iface):
            return "\(iface): the interface is not up; bring it up with `ip link set \(iface) up`"
        case .liveCaptureFailed(let iface, let detail):
            return "\(iface): cannot start the capture: \(detail)"
        case .writeFailed(let path, let detail):
            return "\(path): cannot write the capture: \(detail)"
        }
    }
}
