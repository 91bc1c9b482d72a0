import Foundation
import HopInstaller
#if canImport(Glibc)
import Glibc
#endif

/// Set by the lab's SIGINT/SIGTERM handler; every wait loop polls it.
nonisolated(unsafe) public var labInterruptSignal: Int32 = 0

public struct Interrupted: Error, CustomStringConvertible {
    public let signal: Int32
    public var description: String { "interrupted by signal \(signal)" }
}

/// Running programs to completion (bounded, interruptible) or in the background (stopped by PID).
public enum Subprocess {
    public struct Result {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    /// This executable.
    public static var selfPath: String {
        if let p = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return p }
        return CommandLine.arguments[0]
    }

    /// A tool on PATH or in the sbin folders (`ProcessRunner.which`).
    public static func which(_ tool: String) -> String? { ProcessRunner.which(tool) }

    public static func checkInterrupt() throws {
        if labInterruptSignal != 0 { throw Interrupted(signal: labInterruptSignal) }
    }

    /// Runs to completion (HopInstaller's `ProcessRunner`); killed after `timeout` seconds
    /// (status -1, said on stderr) and when the lab is interrupted (then throws `Interrupted`).
    /// A program killed by a signal has the signal as its status.
    public static func run(_ executable: String, _ arguments: [String], stdin: String? = nil, timeout: TimeInterval = 60, interruptible: Bool = true) throws -> Result {
        let p = try ProcessRunner.run(executable, arguments, stdin: stdin.map { Array($0.utf8) }, timeout: timeout,
                                      shouldStop: interruptible ? { labInterruptSignal != 0 } : nil)
        if interruptible { try checkInterrupt() }
        var r = Result(status: p.signal ?? p.status, stdout: p.stdoutText, stderr: p.stderrText)
        if p.timedOut {
            r.status = -1
            r.stderr += "\n(killed after \(Int(timeout)) s)"
        }
        return r
    }

    /// A program running in the background, its output in files.
    public final class Background {
        public let process: Process
        public let name: String
        public let stdoutURL: URL
        public let stderrURL: URL
        public var pid: Int32 { process.processIdentifier }

        public init(_ executable: String, _ arguments: [String], name: String, directory: URL) throws {
            process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            self.name = name
            stdoutURL = directory.appendingPathComponent("\(name).out")
            stderrURL = directory.appendingPathComponent("\(name).err")
            _ = FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
            _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
            process.standardOutput = try FileHandle(forWritingTo: stdoutURL)
            process.standardError = try FileHandle(forWritingTo: stderrURL)
            process.standardInput = FileHandle.nullDevice
            try process.run()
        }

        public var stdout: String { (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "" }
        public var stderr: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }

        /// Waits (bounded) until `text` shows up in its stdout or stderr; false if it exited first.
        public func waitFor(_ text: String, timeout: TimeInterval = 10) throws -> Bool {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if stderr.contains(text) || stdout.contains(text) { return true }
                if !process.isRunning { return stderr.contains(text) || stdout.contains(text) }
                try checkInterrupt()
                usleep(10_000)
            }
            return false
        }

        /// Sends `signal`, waits up to `timeout`, then SIGKILL. Only this PID.
        public func stop(signal sig: Int32 = SIGTERM, timeout: TimeInterval = 3) {
            guard process.isRunning else { return }
            kill(pid, sig)
            let deadline = Date().addingTimeInterval(timeout)
            while process.isRunning && Date() < deadline { usleep(5_000) }
            if process.isRunning { kill(pid, SIGKILL) }
            process.waitUntilExit()
        }
    }
}
