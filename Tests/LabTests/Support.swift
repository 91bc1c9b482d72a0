import Foundation
import HopTestSupport
import XCTest

/// Paths, processes and pcap surgery for the lab and check tests.
enum LabEnv {
    static var productsDirectory: URL { TestPaths.productsDirectory }
    static var hoptrace: String { TestPaths.hoptrace }
    static var repoRoot: URL { TestPaths.repoRoot }
    static var captures: URL { TestPaths.captures }

    /// Namespaces made by these tests start with this (the lab's own runs use `hoplab-`); the
    /// test process's pid in it, so that suites run side by side neither sweep nor count each
    /// other's namespaces (CrashCleanupTests once saw another suite's lab run as a leak).
    static let prefix = "hoplabtest-\(getpid())-"

    static func which(_ tool: String) -> String? { TestPaths.which(tool) }

    /// Throws XCTSkip (one line) when the lab cannot run here.
    static func requireLab() throws {
        guard geteuid() == 0 else { throw XCTSkip("the lab needs root (network namespaces, iptables inside them)") }
        guard let ip = which("ip") else { throw XCTSkip("`ip` (iproute2) is missing") }
        guard which("iptables-restore") != nil else { throw XCTSkip("iptables-restore is missing") }
        guard which("python3") != nil else { throw XCTSkip("python3 is missing (the lab's client)") }
        guard FileManager.default.isExecutableFile(atPath: hoptrace) else { throw XCTSkip("hoptrace is not built at \(hoptrace)") }
        let probe = "\(prefix)probe-\(getpid())"
        let r = try run(ip, ["netns", "add", probe])
        if r.status != 0 { throw XCTSkip("cannot create network namespaces: \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))") }
        _ = try run(ip, ["netns", "del", probe])
    }

    typealias Result = ProcessResult

    @discardableResult
    static func run(_ executable: String, _ arguments: [String], timeout: TimeInterval = 120) throws -> Result {
        try TestProcess.run(executable, arguments, timeout: timeout)
    }

    static func hoptrace(_ arguments: [String], timeout: TimeInterval = 120) throws -> Result {
        try run(hoptrace, arguments, timeout: timeout)
    }

    static func namespaces() -> [String] {
        guard let ip = which("ip"), let r = try? run(ip, ["netns", "list"]) else { return [] }
        return r.stdout.split(separator: "\n").map { String($0.split(separator: " ").first ?? "") }
    }

    static func temporaryDirectory(_ name: String) throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("labtests-\(getpid())-\(name)")
        try? FileManager.default.removeItem(at: d)
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }
}

/// Classic pcap files: records in, records out (the lab writes these with pcap_dump).
struct PcapFile {
    var header: Data
    var records: [Data]  // each: 16-byte record header + captured bytes
    var swapped: Bool

    init(_ data: Data) throws {
        let bytes = [UInt8](data)
        guard bytes.count >= 24 else { throw PcapFileError.short }
        let magic = UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24
        switch magic {
        case 0xa1b2_c3d4, 0xa1b2_3c4d: swapped = false
        case 0xd4c3_b2a1, 0x4d3c_b2a1: swapped = true
        default: throw PcapFileError.notPcap
        }
        header = Data(bytes[0..<24])
        records = []
        var i = 24
        while i + 16 <= bytes.count {
            let b = bytes[(i + 8)..<(i + 12)].map(UInt32.init)
            let caplen = swapped ? (b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]) : (b[0] | b[1] << 8 | b[2] << 16 | b[3] << 24)
            let end = i + 16 + Int(caplen)
            guard end <= bytes.count else { break }
            records.append(Data(bytes[i..<end]))
            i = end
        }
    }

    var data: Data { records.reduce(into: header) { $0.append($1) } }

    /// The index of the first record whose bytes contain `text`.
    func firstRecord(containing text: String) -> Int? {
        let needle = Data(text.utf8)
        return records.firstIndex { $0.range(of: needle) != nil }
    }
}

enum PcapFileError: Error { case short, notPcap }
