import Foundation
import HopInstaller

/// Paths every test target needs: the built products (the `hoptrace` binary) and the repository.
public enum TestPaths {
    /// The folder holding the built products (`hoptrace` among them).
    public static var productsDirectory: URL {
        #if os(macOS)
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            return bundle.bundleURL.deletingLastPathComponent()
        }
        fatalError("couldn't find the products directory")
        #else
        return Bundle.main.bundleURL
        #endif
    }

    public static var hoptrace: String { productsDirectory.appendingPathComponent("hoptrace").path }

    /// The repository root (this file is Tests/HopTestSupport/TestProcess.swift).
    public static var repoRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    public static var captures: URL { repoRoot.appendingPathComponent("Captures") }

    /// A tool on PATH (or in the sbin folders, where iproute2 and iptables live).
    public static func which(_ tool: String) -> String? { ProcessRunner.which(tool) }
}

/// What a finished process printed.
public struct ProcessResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    /// Standard output as bytes (for output that is not text).
    public var stdoutData: Data
    /// The signal that ended the process (a crash: SIGILL/SIGTRAP for a Swift runtime trap),
    /// nil when it exited.
    public var signal: Int32? = nil
}

public enum TestProcess {
    /// Runs a program to completion with HopInstaller's `ProcessRunner` (both pipes read
    /// together, so a chatty child cannot block on a full pipe) and captures its output; after
    /// `timeout` it gets SIGTERM, and SIGKILL 0.2 s later. A program killed by a signal has the
    /// signal as its status, as Foundation's `Process` says.
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String], stdin: Data? = nil,
                           timeout: TimeInterval = 60, environment: [String: String] = [:],
                           currentDirectory: URL? = nil) throws -> ProcessResult {
        signal(SIGPIPE, SIG_IGN)  // a child that exits early must not take the test process with it
        let r = try ProcessRunner.run(executable, arguments, stdin: stdin.map { [UInt8]($0) }, environment: environment,
                                      currentDirectory: currentDirectory?.path, timeout: timeout, terminateGrace: 0.2)
        return ProcessResult(status: r.signal ?? r.status, stdout: r.stdoutText, stderr: r.stderrText,
                             stdoutData: Data(r.stdout), signal: r.signal)
    }
}

/// How a measured run ended and what it cost.
public struct MeasuredRun: Sendable {
    public var status: Int32
    /// The signal that ended the process, nil when it exited.
    public var signal: Int32?
    /// Peak resident memory (`ru_maxrss` of this child alone), in KiB.
    public var peakKiB: Int
    public var seconds: Double
    public var timedOut: Bool
}

extension TestProcess {
    /// Runs a program with its standard output and error written to files (no pipe to drain)
    /// and measures its own peak memory: `wait4` gives the resource use of this child alone,
    /// where `getrusage(RUSAGE_CHILDREN)` would mix in every earlier child of the test process.
    public static func runMeasured(_ executable: String, _ arguments: [String], stdout: String, stderr: String,
                                   timeout: TimeInterval = 120) -> MeasuredRun {
        // posix_spawn starts the child in this process's memory (vfork), and Linux counts what
        // the child had before exec in its peak: a test process grown large by earlier tests made
        // every child look that large. A small python3 in between starts the program from its
        // own small memory and reports the program's own peak.
        if let python = ["/usr/bin/python3", "/usr/local/bin/python3"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) {
            let report = stderr + ".peak"
            let script = """
                import resource, subprocess, sys
                out, err, report, timeout = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
                timed_out = False
                with open(out, "wb") as o, open(err, "wb") as e:
                    p = subprocess.Popen(sys.argv[5:], stdin=subprocess.DEVNULL, stdout=o, stderr=e)
                    try:
                        rc = p.wait(timeout=timeout)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        rc = p.wait()
                        timed_out = True
                peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
                with open(report, "w") as r:
                    r.write("%d %d %d\\n" % (rc, peak, 1 if timed_out else 0))
                """
            let started = Date()
            let run = runMeasuredDirect(python, ["-c", script, stdout, stderr, report, String(timeout)] + [executable] + arguments,
                                        stdout: "/dev/null", stderr: stderr + ".trampoline", timeout: timeout + 30)
            let seconds = Date().timeIntervalSince(started)
            defer {
                try? FileManager.default.removeItem(atPath: report)
                try? FileManager.default.removeItem(atPath: stderr + ".trampoline")
            }
            if run.status == 0, let text = try? String(contentsOfFile: report, encoding: .utf8) {
                let f = text.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
                if f.count == 3 {
                    let rc = f[0]
                    return MeasuredRun(status: rc < 0 ? -1 : Int32(rc), signal: rc < 0 ? Int32(-rc) : nil, peakKiB: f[1],
                                       seconds: seconds, timedOut: f[2] == 1)
                }
            }
        }
        return runMeasuredDirect(executable, arguments, stdout: stdout, stderr: stderr, timeout: timeout)
    }

    /// `runMeasured` without the trampoline (its peak includes this process's memory at spawn).
    static func runMeasuredDirect(_ executable: String, _ arguments: [String], stdout: String, stderr: String,
                                  timeout: TimeInterval) -> MeasuredRun {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let started = Date()
        guard posix_spawn(&pid, executable, &actions, nil, argv, environ) == 0 else {
            return MeasuredRun(status: 127, signal: nil, peakKiB: 0, seconds: 0, timedOut: false)
        }
        var status: Int32 = 0
        var usage = rusage()
        var timedOut = false
        while wait4(pid, &status, WNOHANG, &usage) == 0 {
            if Date().timeIntervalSince(started) > timeout && !timedOut {
                timedOut = true
                kill(pid, SIGKILL)  // our own child, by its PID
            }
            usleep(5_000)
        }
        let seconds = Date().timeIntervalSince(started)
        let signalled = status & 0x7f != 0 && status & 0x7f != 0x7f
        return MeasuredRun(status: signalled ? -1 : (status >> 8) & 0xff, signal: signalled ? status & 0x7f : nil,
                           peakKiB: Int(usage.ru_maxrss), seconds: seconds, timedOut: timedOut)
    }
}
