// One JSON line per request (or per raw TCP connection), gathered per thread and written in batches.
import NIOCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The access log: standard output or a file.
///
/// Lines are gathered in batches, one batch per thread that logs (each event loop has its own,
/// so the proxy's threads never wait for each other to log a request), and a batch is written
/// with one write(2) of whole lines: when it passes `batchBytes`, when `flushDelay` has passed
/// since its first line, and on `flush()` (the proxy flushes when it stops). Lines of one
/// connection keep their order (a connection lives on one event loop); lines of connections on
/// different event loops are ordered by batch.
public final class AccessLog: Sendable {
    private let fd: CInt
    private let ownsFD: Bool
    static let batchBytes = 32 * 1024
    static let flushDelay = TimeAmount.milliseconds(20)

    /// One thread's batch, behind a lock taken by that thread and by `flush()` from any thread.
    private struct Lines {
        var buffer: [UInt8] = []
        var flushScheduled = false
    }
    private typealias Batch = LockedBox<Lines>

    /// This thread's batch.
    private let batchOfThread = ThreadLocal<Batch>()
    /// Every batch made, for `flush()`.
    private let batches = LockedBox<[Batch]>([])
    /// Held while a batch is written, so batches never interleave in the file; counts the
    /// batches written. (A `LockedBox<()>` here made ThreadSanitizer report a Swift access race
    /// on the empty value's inout access, whose address is not the box's own; see
    /// Benchmarks/README.md, sanitizers.)
    private let writeLock = LockedBox(0)

    /// False for the log `off()` makes: lines are neither made nor written.
    public let isEnabled: Bool

    /// An access log that drops every line without making it (`hoptrace proxy --no-access-log`).
    public static func off() -> AccessLog { AccessLog() }

    private init() {
        fd = -1
        ownsFD = false
        isEnabled = false
    }

    /// Opens (appending, creating) `path`, or uses standard output when nil.
    public init(path: String?) throws {
        isEnabled = true
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

    deinit {
        flush()
        if ownsFD { close(fd) }
    }

    private var batch: Batch {
        if let b = batchOfThread.value { return b }
        let b = Batch(Lines())
        b.withLock { $0.buffer.reserveCapacity(Self.batchBytes + 4096) }
        batchOfThread.value = b
        batches.withLock { $0.append(b) }
        return b
    }

    /// Adds the record's line (serialised straight into the batch).
    func write(_ record: AccessRecord, on reactor: Reactor?) {
        let end = NIODeadline.now()
        write(on: reactor) { record.appendLine(to: &$0, end: end) }
    }

    /// Adds the line `line` appends to the batch (the newline is added here): a record can
    /// be serialised where it is, without a copy.
    func write(on reactor: Reactor?, _ line: (inout [UInt8]) -> Void) {
        add(on: reactor) { buffer in
            line(&buffer)
            buffer.append(0x0A)
        }
    }

    /// Appends to this thread's batch, then writes the batch when it is big enough (or
    /// there's no loop to delay on), or makes sure a delayed write is scheduled.
    private func add(on reactor: Reactor?, _ append: (inout [UInt8]) -> Void) {
        guard isEnabled else { return }
        let b = batch
        let schedule = b.withLock { lines -> Bool in
            append(&lines.buffer)
            if lines.buffer.count >= Self.batchBytes || reactor == nil {
                writeOut(&lines)
                return false
            }
            if lines.flushScheduled { return false }
            lines.flushScheduled = true
            return true
        }
        if schedule, let reactor {
            reactor.schedule(in: UInt64(Self.flushDelay.nanoseconds)) { [self] in
                b.withLock { lines in
                    lines.flushScheduled = false
                    writeOut(&lines)
                }
            }
        }
    }

    /// Writes out every line logged so far, by every thread.
    public func flush() {
        for b in batches.withLock({ $0 }) {
            b.withLock { writeOut(&$0) }
        }
    }

    /// Writes a batch (its lock held) and empties it.
    private func writeOut(_ lines: inout Lines) {
        guard !lines.buffer.isEmpty else { return }
        writeLock.withLock { written in
            lines.buffer.withUnsafeBufferPointer { writeAll($0) }
            written += 1
        }
        lines.buffer.removeAll(keepingCapacity: true)
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
    var requestIDValue: RequestIDValue?
    /// The request id as text (made from a generated id when asked for).
    var requestID: String? {
        get {
            switch requestIDValue {
            case .generated(let id): return id.text
            case .given(let s): return s
            case nil: return nil
            }
        }
        set { requestIDValue = newValue.map { .given($0) } }
    }
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

    /// What is left in an exchange once its record was moved out to be logged.
    static let spent = AccessRecord(startWall: 0, start: .uptimeNanoseconds(0))

    func line(end: NIODeadline = .now()) -> String {
        var bytes: [UInt8] = []
        appendLine(to: &bytes, end: end)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends the record as one JSON object (no newline): the keys in a fixed order, as
    /// the tests' reference `JSONLine` would write them, without building intermediate strings. (A connection's
    /// handler passes its own cache, so the parts that repeat are made once.)
    func appendLine(to out: inout [UInt8], end: NIODeadline = .now()) {
        var cache = AccessLineCache()
        appendLine(to: &out, end: end, cache: &cache)
    }

    /// The same line, with the parts that repeat from one request of a connection to the
    /// next (the time up to the second, the addresses) copied from `cache`. The line is put
    /// together in a block on the stack (its length is bounded beforehand) and appended at
    /// once.
    func appendLine(to out: inout [UInt8], end: NIODeadline, cache: inout AccessLineCache) {
        cache.updateConnectionPart(of: self)
        // Keys, punctuation and numbers take under 400 bytes; the strings, at most their
        // escaped length.
        var bound = 400 + cache.connection.count + ByteCursor.maxRequestIDBytes(requestIDValue)
        bound += ByteCursor.maxStringBytes(method) + ByteCursor.maxStringBytes(target)
        bound += ByteCursor.maxStringBytes(host) + ByteCursor.maxStringBytes(error)
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: bound) { block in
            var c = ByteCursor(block.baseAddress!)
            c.raw(#"{"time":"#)
            cache.writeTime(startWall, to: &c)
            c.raw(#","requestId":"#); c.requestID(requestIDValue)
            cache.connection.withUnsafeBufferPointer { c.bytes($0) }
            c.raw(#","method":"#); c.string(method)
            c.raw(#","target":"#); c.string(target)
            c.raw(#","host":"#); c.string(host)
            c.raw(#","status":"#); c.int(status)
            c.raw(#","requestBytes":"#); c.int(requestBytes)
            c.raw(#","responseBytes":"#); c.int(responseBytes)
            c.raw(#","durationMs":"#); c.milliseconds((end - start).nanoseconds)
            c.raw(#","upstreamConnectMs":"#); c.milliseconds(upstreamConnectNanos)
            c.raw(upstreamReused ? #","upstreamReused":true,"attempts":"# : #","upstreamReused":false,"attempts":"#)
            c.int(attempts)
            c.raw(#","error":"#); c.string(error)
            c.byte(UInt8(ascii: "}"))
            precondition(c.count <= bound, "access-log line longer than its bound")
            out.append(contentsOf: UnsafeBufferPointer(start: block.baseAddress, count: c.count))
        }
    }

    /// From `"downstream"` to `"protocol"`: the connection's fields.
    func appendConnectionPart(to out: inout [UInt8]) {
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
    }
}

/// What one connection's access-log lines have in common, kept by the connection's handler:
/// the connection part of the last line (rebuilt when the upstream connection changes) and
/// the time of the last line up to its second.
struct AccessLineCache {
    /// `AccessRecord.appendConnectionPart` of the fields below.
    private(set) var connection: [UInt8] = []
    private var made = false
    private var client, local, originalDestination, upstreamLocal, upstreamRemote: String?
    private var direction = Direction.outbound
    private var proto = ""
    private var second = Int64.min
    private var secondText: [UInt8] = []

    /// Remakes `connection` when one of the record's connection fields differs from the last
    /// record's (they are usually the very same strings, which compare at once).
    mutating func updateConnectionPart(of r: AccessRecord) {
        if made && r.client == client && r.local == local && r.originalDestination == originalDestination
            && r.upstreamLocal == upstreamLocal && r.upstreamRemote == upstreamRemote
            && r.direction == direction && r.proto == proto
        {
            return
        }
        connection.removeAll(keepingCapacity: true)
        r.appendConnectionPart(to: &connection)
        (client, local, originalDestination) = (r.client, r.local, r.originalDestination)
        (upstreamLocal, upstreamRemote, direction, proto) = (r.upstreamLocal, r.upstreamRemote, r.direction, r.proto)
        made = true
    }

    /// `WallClock.appendRFC3339` (29 bytes at most), with the text up to the seconds reused
    /// within a second.
    mutating func writeTime(_ nanos: Int64, to c: inout ByteCursor) {
        let s = nanos >= 0 ? nanos / 1_000_000_000 : (nanos - 999_999_999) / 1_000_000_000
        if s != second {
            secondText.removeAll(keepingCapacity: true)
            WallClock.appendRFC3339(s * 1_000_000_000, to: &secondText)
            secondText.removeLast(6)  // ".000Z\""
            second = s
        }
        secondText.withUnsafeBufferPointer { c.bytes($0) }
        let millis = Int((nanos - s * 1_000_000_000) / 1_000_000)
        c.byte(0x2E)
        c.threeDigits(millis)
        c.byte(0x5A)
        c.byte(UInt8(ascii: "\""))
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
