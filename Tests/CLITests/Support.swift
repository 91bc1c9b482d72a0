import Foundation
import HopTestSupport
import XCTest

/// Paths and process helpers shared by the command-line tests.
enum TestEnv {
    static var productsDirectory: URL { TestPaths.productsDirectory }
    static var hoptrace: String { TestPaths.hoptrace }
    static var repoRoot: URL { TestPaths.repoRoot }
    static var captures: URL { TestPaths.captures }
    static var isRoot: Bool { geteuid() == 0 }
    static func which(_ tool: String) -> String? { TestPaths.which(tool) }

    typealias Result = ProcessResult

    @discardableResult
    static func run(_ executable: String, _ arguments: [String], timeout: TimeInterval = 60) throws -> Result {
        try TestProcess.run(executable, arguments, timeout: timeout)
    }

    static func hoptrace(_ args: String...) throws -> Result { try run(hoptrace, args) }

    static func temporaryFile(_ name: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("hoptrace-test-\(getpid())-\(name)")
    }
}

/// Writes classic pcap files byte by byte.
struct PcapFileBuilder {
    var bytes: [UInt8] = []

    init(linkType: UInt32, nanosecond: Bool = false, snaplen: UInt32 = 262_144) {
        append32(nanosecond ? 0xa1b2_3c4d : 0xa1b2_c3d4)
        append16(2); append16(4)
        append32(0); append32(0)
        append32(snaplen)
        append32(linkType)
    }

    mutating func append16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func append32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }

    mutating func add(_ packet: [UInt8], seconds: UInt32 = 1_700_000_000, fraction: UInt32 = 0, wireLength: Int? = nil) {
        append32(seconds); append32(fraction)
        append32(UInt32(packet.count)); append32(UInt32(wireLength ?? packet.count))
        bytes += packet
    }

    func write(to url: URL) throws { try Data(bytes).write(to: url) }
}
