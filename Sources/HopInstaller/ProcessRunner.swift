import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs a program to completion and collects what it printed: the package's one process
/// runner (the iptables tools here; the lab's commands; the tests' runs of `hoptrace`).
///
/// It uses `posix_spawn` and `waitpid`, not Foundation's `Process`: when `Process`'s run loop
/// cannot make its wakeup socket pair (seen as an unprivileged user) it never learns that the
/// child exited and waits forever on a zombie. Both outputs are read, and the input written,
/// in one `poll` loop, so a chatty child can never block on a full pipe; a broken input pipe
/// (a child that exits without reading it all) is an `EPIPE` for this thread, not a SIGPIPE.
public enum ProcessRunner {
    /// How a run ended and what it printed.
    public struct Result: Sendable {
        /// The exit status; 128 + the signal when a signal ended it, as a shell says.
        public var status: Int32
        /// The signal that ended the program, nil when it exited.
        public var signal: Int32?
        public var stdout: [UInt8]
        public var stderr: [UInt8]
        /// It was still running at the time limit and was killed.
        public var timedOut: Bool
        /// `shouldStop` said so and it was killed.
        public var stopped: Bool

        public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
        public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
    }

    /// The program could not be started (not found, not executable, no pipes).
    public struct StartError: Error, CustomStringConvertible, Sendable {
        public var executable: String
        public var errno: Int32
        public var description: String { "cannot run \(executable): \(String(cString: strerror(errno)))" }
    }

    /// A tool on PATH, or in the sbin folders (where iproute2 and iptables live, and which an
    /// ordinary user's PATH often lacks); nil when it is nowhere.
    public static func which(_ tool: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for dir in path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
            let p = dir + "/" + tool
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    /// Runs `executable` with `arguments` and waits for it.
    ///
    /// - Parameters:
    ///   - executable: the program's path (not looked up on PATH: see ``which(_:)``).
    ///   - arguments: its arguments, after `argv[0]`.
    ///   - argv0: the program's `argv[0]` (default: `executable`).
    ///   - stdin: its standard input (nil: `/dev/null`).
    ///   - environment: variables set on top of this process's environment.
    ///   - currentDirectory: where it starts (default: here).
    ///   - timeout: seconds it may run (nil: no limit).
    ///   - terminateGrace: at the time limit it gets SIGTERM and, this many seconds later,
    ///     SIGKILL; 0 (the default): SIGKILL at once.
    ///   - shouldStop: asked every 10 ms while it runs; true kills it with SIGKILL.
    ///
    /// Returns when the program has ended and both of its outputs are closed (or, once it was
    /// killed, when it has ended: what it started and left holding the pipes is not waited
    /// for). Signals go to the child's own PID only, and only while it has not been reaped.
    public static func run(_ executable: String, _ arguments: [String], argv0: String? = nil, stdin: [UInt8]? = nil,
                           environment: [String: String] = [:], currentDirectory: String? = nil,
                           timeout: Double? = nil, terminateGrace: Double = 0,
                           shouldStop: (() -> Bool)? = nil) throws(StartError) -> Result {
        func failed(_ code: Int32) -> StartError { StartError(executable: executable, errno: code) }
        var inPipe: [Int32] = [-1, -1], outPipe: [Int32] = [-1, -1], errPipe: [Int32] = [-1, -1]
        if stdin != nil { guard pipe(&inPipe) == 0 else { throw failed(errno) } }
        guard pipe(&outPipe) == 0 else { let e = errno; closeAll(inPipe); throw failed(e) }
        guard pipe(&errPipe) == 0 else { let e = errno; closeAll(inPipe + outPipe); throw failed(e) }
        // Our ends are not inherited by programs other threads start meanwhile; the child's
        // copies (dup2 onto 0, 1, 2) are not close-on-exec.
        for fd in inPipe + outPipe + errPipe where fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if stdin != nil {
            posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        if let currentDirectory {
            guard let addChdir = Self.addChdir else { closeAll(inPipe + outPipe + errPipe); throw failed(ENOSYS) }
            let rc = currentDirectory.withCString { addChdir(&actions, $0) }
            guard rc == 0 else { closeAll(inPipe + outPipe + errPipe); throw failed(rc) }
        }
        let cArgs = ([argv0 ?? executable] + arguments).map { strdup($0) } + [nil]
        defer { for a in cArgs { free(a) } }
        var cEnv: [UnsafeMutablePointer<CChar>?] = []
        if !environment.isEmpty {
            let merged = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            cEnv = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        }
        defer { for e in cEnv { free(e) } }

        var pid = pid_t()
        let rc = cEnv.isEmpty
            ? posix_spawn(&pid, executable, &actions, nil, cArgs, environ)
            : posix_spawn(&pid, executable, &actions, nil, cArgs, cEnv)
        closeAll([inPipe[0], outPipe[1], errPipe[1]])
        guard rc == 0 else {
            closeAll([inPipe[1], outPipe[0], errPipe[0]])
            throw failed(rc)
        }

        // Writing to a pipe whose reader is gone: EPIPE here, not a SIGPIPE for the process.
        var sigpipe = sigset_t(), oldMask = sigset_t()
        sigemptyset(&sigpipe)
        sigaddset(&sigpipe, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &sigpipe, &oldMask)
        defer {
            var pending = sigset_t()
            if sigismember(&oldMask, SIGPIPE) == 0, sigpending(&pending) == 0, sigismember(&pending, SIGPIPE) == 1 {
                var now = timespec()
                _ = sigtimedwait(&sigpipe, nil, &now)
            }
            pthread_sigmask(SIG_SETMASK, &oldMask, nil)
        }

        let started = monotonicSeconds()
        let deadline = timeout.map { started + $0 }
        var killAt: Double?  // SIGKILL due (after SIGTERM at the time limit)
        var reaped: Int32?  // the wait status, once reaped
        var timedOut = false, stopped = false
        func reap(block: Bool) {
            guard reaped == nil else { return }
            var status: Int32 = 0
            while true {
                let r = waitpid(pid, &status, block ? 0 : WNOHANG)
                if r == pid { reaped = status; return }
                if r < 0 && errno == EINTR { continue }
                if r < 0 { reaped = 0 }  // not our child any more: nothing to wait for
                return
            }
        }
        func signalChild(_ sig: Int32) {
            reap(block: false)
            if reaped == nil { kill(pid, sig) }  // our own child, by its PID
        }
        /// The limits: the time limit (SIGTERM, then SIGKILL after the grace) and `shouldStop`.
        func enforceLimits() {
            let now = monotonicSeconds()
            if let deadline, !timedOut, !stopped, now >= deadline {
                timedOut = true
                if terminateGrace > 0 {
                    signalChild(SIGTERM)
                    killAt = now + terminateGrace
                } else {
                    signalChild(SIGKILL)
                }
            }
            if let at = killAt, now >= at {
                killAt = nil
                signalChild(SIGKILL)
            }
            if let shouldStop, !stopped, !timedOut, shouldStop() {
                stopped = true
                signalChild(SIGKILL)
            }
        }
        let watched = deadline != nil || shouldStop != nil
        func pollMillis() -> Int32 {
            guard watched else { return -1 }
            var wait = shouldStop != nil ? 0.01 : 3600
            if let deadline, !timedOut { wait = min(wait, deadline - monotonicSeconds()) }
            if let killAt { wait = min(wait, killAt - monotonicSeconds()) }
            if timedOut || stopped { wait = min(wait, 0.01) }  // until it is reaped
            return Int32(max(0, min(wait, 3600)) * 1000) + 1
        }

        let input = stdin ?? []
        var written = 0
        if inPipe[1] >= 0 {
            _ = fcntl(inPipe[1], F_SETFL, fcntl(inPipe[1], F_GETFL) | O_NONBLOCK)
            if input.isEmpty { close(inPipe[1]); inPipe[1] = -1 }
        }
        var out: [UInt8] = [], err: [UInt8] = []
        var fds = [pollfd(fd: outPipe[0], events: Int16(POLLIN), revents: 0),
                   pollfd(fd: errPipe[0], events: Int16(POLLIN), revents: 0),
                   pollfd(fd: inPipe[1], events: Int16(POLLOUT), revents: 0)]
        var buffer = [UInt8](repeating: 0, count: 65536)
        while fds[0].fd >= 0 || fds[1].fd >= 0 || fds[2].fd >= 0 {
            if watched {
                enforceLimits()
                // Killed and gone: what it left running (holding the pipes) is not waited for.
                if timedOut || stopped {
                    reap(block: false)
                    if reaped != nil {
                        // What it wrote before it went is kept.
                        for i in 0..<2 where fds[i].fd >= 0 {
                            _ = fcntl(fds[i].fd, F_SETFL, fcntl(fds[i].fd, F_GETFL) | O_NONBLOCK)
                            while true {
                                let n = buffer.withUnsafeMutableBytes { read(fds[i].fd, $0.baseAddress!, $0.count) }
                                if n > 0 {
                                    if i == 0 { out += buffer[0..<n] } else { err += buffer[0..<n] }
                                } else if n < 0 && errno == EINTR {
                                    continue
                                } else {
                                    break
                                }
                            }
                        }
                        break
                    }
                }
            }
            let n = poll(&fds, nfds_t(fds.count), pollMillis())
            if n < 0 {
                if errno == EINTR { continue }
                break
            }
            for i in 0..<2 where fds[i].fd >= 0 && fds[i].revents != 0 {
                let n = buffer.withUnsafeMutableBytes { read(fds[i].fd, $0.baseAddress!, $0.count) }
                if n > 0 {
                    if i == 0 { out += buffer[0..<n] } else { err += buffer[0..<n] }
                } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
                    close(fds[i].fd)
                    fds[i].fd = -1
                }
            }
            if fds[2].fd >= 0 && fds[2].revents != 0 {
                let n = input.withUnsafeBytes { write(fds[2].fd, $0.baseAddress! + written, $0.count - written) }
                if n > 0 { written += n }
                if written == input.count || (n < 0 && errno != EINTR && errno != EAGAIN) {
                    close(fds[2].fd)  // all written, or the child no longer reads
                    fds[2].fd = -1
                }
            }
        }
        for f in fds where f.fd >= 0 { close(f.fd) }

        if watched {
            var nap: useconds_t = 100
            while true {
                reap(block: false)
                if reaped != nil { break }
                enforceLimits()
                usleep(nap)
                nap = min(nap * 2, 5_000)
            }
        } else {
            reap(block: true)
        }
        let status = reaped ?? 0
        // WIFEXITED: the exit status; killed by a signal: 128 + the signal, as a shell says.
        let sig = status & 0x7f
        return Result(status: sig == 0 ? (status >> 8) & 0xff : 128 + sig, signal: sig == 0 ? nil : sig,
                      stdout: out, stderr: err, timedOut: timedOut, stopped: stopped)
    }

    private static func closeAll(_ fds: [Int32]) {
        for fd in fds where fd >= 0 { close(fd) }
    }

    private static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// `posix_spawn_file_actions_addchdir_np` (glibc 2.29, macOS 26), looked up at run time:
    /// Swift's Glibc module does not declare it.
    private typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
    private static let addChdir: AddChdir? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addchdir_np") else { return nil }
        return unsafeBitCast(symbol, to: AddChdir.self)
    }()
}
