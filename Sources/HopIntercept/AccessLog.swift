// One JSON line per request (or per raw TCP connection), written with one write(2) each.
import NIOCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The access log: standard output or a file, each line written (and so flushed) at once.
public final class AccessLog: Sendable {
    private let fd: CInt
    private let ownsFD: Bool
    /// Serialises writes so lines from different event loops never interleave.
    private let lock = LockedBox(())

    /// Opens (appending, creating) `path`, or uses standard output when nil.
    public init(path: String?) throws {
        if let path {
            let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            if fd < 0 {
                throw ProxyError("cannot open the access log \(path): \(String(cString: strerror(errno)))")
            }
            self.fd = fd
            ownsFD = true
        } else {
            fd = STDOUT_FILENO
            ownsFD = false
        }
    }

    deinit { if ownsFD { close(fd) } }

    func write(_ line: String) {
        var text = line
        text += "\n"
        // One write(2) of at most PIPE_BUF bytes is atomic for pipes and O_APPEND files, so
        // short lines need no lock; longer ones are serialised.
        let count = text.utf8.count
        if count <= 4096 {
            text.withUTF8 { buf in writeAll(buf) }
            return
        }
        lock.withLock { _ in text.withUTF8 { buf in writeAll(buf) } }
    }

    private func writeAll(_ buf: UnsafeBufferPointer<UInt8>) {
        var offset = 0
        while offset < buf.count {
            let n = systemWrite(fd, buf.baseAddress! + offset, buf.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += n
        }
    }
}

/// Everything one access-log line says about a request (or a raw connection).
struct AccessRecord {
    var startWall: Int64 = WallClock.now()
    var start = NIODeadline.now()
    var requestID: String?
    // Addresses as the log spells them ("ip:port"), computed once per connection.
    var client: String?
    var local: String?
    var originalDestination: String?
    var upstreamLocal: String?
    var upstreamRemote: String?
    var direction: Direction = .outbound
    /// "http", "tcp" (raw pass-through) or "tunnel" (CONNECT / Upgrade after the switch).
    var proto = "http"
    var method: String?
    var target: String?
    var host: String?
    var status = 0
    var requestBytes = 0
    var responseBytes = 0
    var upstreamConnectNanos: Int64?
    var upstreamReused = false
    var attempts = 0
    /// Why the exchange ended badly, if it did (a short token).
    var error: String?

    func line(end: NIODeadline = .now()) -> String {
        var j = JSONLine()
        j.add("time", WallClock.rfc3339(startWall))
        j.add("requestId", requestID)
        var down = JSONLine()
        down.add("client", client)
        down.add("local", local)
        j.add("downstream", object: down)
        j.add("originalDestination", originalDestination)
        if upstreamLocal != nil || upstreamRemote != nil {
            var up = JSONLine()
            up.add("local", upstreamLocal)
            up.add("remote", upstreamRemote)
            j.add("upstream", object: up)
        } else {
            j.add("upstream", object: nil)
        }
        j.add("direction", direction.rawValue)
        j.add("protocol", proto)
        j.add("method", method)
        j.add("target", target)
        j.add("host", host)
        j.add("status", status)
        j.add("requestBytes", requestBytes)
        j.add("responseBytes", responseBytes)
        j.add("durationMs", milliseconds: (end - start).nanoseconds)
        j.add("upstreamConnectMs", milliseconds: upstreamConnectNanos)
        j.add("upstreamReused", upstreamReused)
        j.add("attempts", attempts)
        j.add("error", error)
        return j.finished
    }
}

enum Direction: String, Sendable {
    case inbound, outbound
}

public struct ProxyError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

@inline(__always)
func systemWrite(_ fd: CInt, _ p: UnsafeRawPointer, _ n: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(fd, p, n)
    #else
    return Darwin.write(fd, p, n)
    #endif
}

/// One line on standard error (notes about connections the access log can't carry).
public func writeDiagnostic(_ message: String) {
    var text = message
    text += "\n"
    text.withUTF8 { buf in _ = systemWrite(STDERR_FILENO, buf.baseAddress!, buf.count) }
}
