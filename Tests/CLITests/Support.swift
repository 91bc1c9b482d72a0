import Foundation
import XCTest

/// Paths and process helpers shared by the command-line tests.
enum TestEnv {
    /// The folder holding the built products (`hoptrace` among them).
    static var productsDirectory: URL {
        #if os(macOS)
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            return bundle.bundleURL.deletingLastPathComponent()
        }
        fatalError("couldn't find the products directory")
        #else
        return Bundle.main.bundleURL
        #endif
    }

    static var hoptrace: String { productsDirectory.appendingPathComponent("hoptrace").path }

    /// The repository root (this file is Tests/CLITests/Support.swift).
    static var repoRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static var captures: URL { repoRoot.appendingPathComponent("Captures") }

    static var isRoot: Bool { geteuid() == 0 }

    static func which(_ tool: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let dirs: [String] = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin", "/usr/bin"]
        for dir in dirs {
            let p = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs a program to completion (with a time limit) and captures its output.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String], timeout: TimeInterval = 60) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        // Read both pipes concurrently so a chatty child can't block on a full pipe.
        nonisolated(unsafe) var outData = Data(), errData = Data()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { outData = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter()
        DispatchQueue.global().async { errData = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning {
            p.terminate()
            usleep(200_000)
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        }
        p.waitUntilExit()
        group.wait()
        return Result(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self), stderr: String(decoding: errData, as: UTF8.self))
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
