// One JSON line per request (or per raw TCP connection), written with one write(2) each.
import NIOCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The access log: standard output or a file. Lines are gathered in a buffer and written
/// in batches (whole lines only, in the order they were logged): when the buffer passes
/// `batchBytes`, when `flushDelay` has passed since the first line of a batch, and on
/// `flush()` (the proxy flushes when it stops).
public final class AccessLog: Sendable {
    private let fd: CInt
    private let ownsFD: Bool
    static let batchBytes = 32 * 1024
    static let flushDelay = TimeAmount.milliseconds(20)

    private struct State {
        var buffer: [UInt8] = []
        var flushScheduled = false
    }

    /// The batch; writes happen under the lock too, so batches never interleave or reorder.
    private let state = LockedBox(State())

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
        state.withLock { $0.buffer.reserveCapacity(Self.batchBytes + 4096) }
    }

    deinit {
        flush()
        if ownsFD { close(fd) }
    }

    /// Adds one line (the newline is added here). `loop` schedules the delayed write.
    func write(_ line: String, on loop: EventLoop? = nil) {
        var text = line
        text.withUTF8 { append(UnsafeRawBufferPointer($0), on: loop) }
    }

    /// Adds the record's line (serialised straight into the batch).
    func write(_ record: AccessRecord, on loop: EventLoop?) {
        let end = NIODeadline.now()
        let schedule = state.withLock { s -> Bool in
            record.appendLine(to: &s.buffer, end: end)
            s.buffer.append(0x0A)
            return afterAppend(&s, loop: loop)
        }
        if schedule, let loop { scheduleFlush(on: loop) }
    }

    private func append(_ bytes: UnsafeRawBufferPointer, on loop: EventLoop?) {
        let schedule = state.withLock { s -> Bool in
            s.buffer.append(contentsOf: bytes)
            if bytes.last != 0x0A { s.buffer.append(0x0A) }
            return afterAppend(&s, loop: loop)
        }
        if schedule, let loop { scheduleFlush(on: loop) }
    }

    /// Writes the batch when it is big enough (or there's no loop to delay on); otherwise
    /// says whether a delayed flush must be scheduled.
    private func afterAppend(_ s: inout State, loop: EventLoop?) -> Bool {
        if s.buffer.count >= Self.batchBytes || loop == nil {
            writeOut(&s)
            return false
        }
        if s.flushScheduled { return false }
        s.flushScheduled = true
        return true
    }

    private func scheduleFlush(on loop: EventLoop) {
        loop.scheduleTask(in: Self.flushDelay) { [self] in self.flush() }
    }

    /// Writes out every line logged so far.
    public func flush() {
        state.withLock { s in
            s.flushScheduled = false
            writeOut(&s)
        }
    }

    private func writeOut(_ s: inout State) {
        guard !s.buffer.isEmpty else { return }
        s.buffer.withUnsafeBufferPointer { writeAll($0) }
        s.buffer.removeAll(keepingCapacity: true)
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
        var bytes: [UInt8] = []
        appendLine(to: &bytes, end: end)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends the record as one JSON object (no newline): the keys in a fixed order, as
    /// `JSONLine` would write them, without building intermediate strings.
    func appendLine(to out: inout [UInt8], end: NIODeadline = .now()) {
        out.reserveCapacity(out.count + 512)
        out.raw(#"{"time":"#); WallClock.appendRFC3339(startWall, to: &out)
        out.raw(#","requestId":"#); out.jsonString(requestID)
        out.raw(#","downstream":{"client":"#); out.jsonString(client)
        out.raw(#","local":"#); out.jsonString(local)
        out.raw(#"},"originalDestination":"#); out.jsonString(originalDestination)
        if upstreamLocal != nil || upstreamRemote != nil {
            out.raw(#","upstream":{"local":"#); out.jsonString(upstreamLocal)
            out.raw(#","remote":"#); out.jsonString(upstreamRemote)
            out.raw(#"},"direction":"#)
        } else {
            out.raw(#","upstream":null,"direction":"#)
        }
        out.jsonString(direction.rawValue)
        out.raw(#","protocol":"#); out.jsonString(proto)
        out.raw(#","method":"#); out.jsonString(method)
        out.raw(#","target":"#); out.jsonString(target)
        out.raw(#","host":"#); out.jsonString(host)
        out.raw(#","status":"#); out.jsonInt(status)
        out.raw(#","requestBytes":"#); out.jsonInt(requestBytes)
        out.raw(#","responseBytes":"#); out.jsonInt(responseBytes)
        out.raw(#","durationMs":"#); out.jsonMilliseconds((end - start).nanoseconds)
        out.raw(#","upstreamConnectMs":"#); out.jsonMilliseconds(upstreamConnectNanos)
        out.raw(#","upstreamReused":"#); out.jsonBool(upstreamReused)
        out.raw(#","attempts":"#); out.jsonInt(attempts)
        out.raw(#","error":"#); out.jsonString(error)
        out.append(UInt8(ascii: "}"))
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
