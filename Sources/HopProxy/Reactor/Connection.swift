// A TCP connection on a reactor: non-blocking reads into one reusable buffer, writes queued and
// flushed (the rest waits for EPOLLOUT), reads switched off for backpressure, and watermarks
// that tell the owner when the peer can't keep up.
import CHopSys
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// What a connection tells its owner. All calls come on the connection's reactor.
protocol ConnectionDelegate: AnyObject {
    /// Bytes read; the buffer may be kept (the connection reads into a new one then).
    func connectionRead(_ connection: Connection, _ buffer: ByteBuffer)
    /// The end of one readiness event's reads: a good moment to flush what they caused.
    func connectionReadComplete(_ connection: Connection)
    /// The peer closed its side (end of file); writes may go on.
    func connectionInputClosed(_ connection: Connection)
    /// Queued bytes crossed a watermark.
    func connectionWritabilityChanged(_ connection: Connection)
    /// The connection is closed (by either side); `error` is errno for a reset or other failure.
    func connectionClosed(_ connection: Connection, error: Int32?)
}

final class Connection: ReactorSource, DrainableSession {
    static let highWatermark = 64 * 1024
    static let lowWatermark = 32 * 1024
    /// Reads per readiness event at most (while each fills the buffer), as NIO's default.
    static let readsPerEvent = 4

    let fd: Int32
    unowned let reactor: Reactor
    var delegate: ConnectionDelegate?
    /// Called once, after the delegate heard of the close.
    var onClose: (() -> Void)?
    let localAddress: SocketAddress?
    let remoteAddress: SocketAddress?

    private var queue = CircularBuffer<ByteBuffer>(initialCapacity: 4)
    private var queuedBytes = 0
    private var waitingForWritable = false
    private(set) var isWritable = true
    private(set) var isOpen = true
    private var reading = true
    private var inputOpen = true
    private var outputOpen = true
    private var closeWhenFlushed = false
    private var shutdownWhenFlushed = false
    private var registeredEvents: UInt32 = 0
    /// Out of epoll while reads are off and the peer hung up (HUP is reported regardless of
    /// the events asked for, so it would fire again and again).
    private var parked = false

    init(fd: Int32, reactor: Reactor, local: SocketAddress?, remote: SocketAddress?) {
        self.fd = fd
        self.reactor = reactor
        self.localAddress = local
        self.remoteAddress = remote
    }

    /// Starts watching the connection, reads on.
    func start() {
        registeredEvents = CHOPSYS_EPOLLIN | CHOPSYS_EPOLLRDHUP
        reactor.register(self, fd: fd, events: registeredEvents)
    }

    // MARK: reads

    /// Whether the connection reads (off while the other side can't keep up).
    func setReading(_ on: Bool) {
        guard isOpen, reading != on else { return }
        reading = on
        updateInterest()
    }

    private func updateInterest() {
        guard isOpen else { return }
        var events: UInt32 = 0
        if reading && inputOpen { events |= CHOPSYS_EPOLLIN | CHOPSYS_EPOLLRDHUP }
        if waitingForWritable { events |= CHOPSYS_EPOLLOUT }
        if parked {
            // Back into epoll once there is something to wait for again.
            guard events != 0 else { return }
            parked = false
            registeredEvents = events
            reactor.register(self, fd: fd, events: events)
            return
        }
        if events != registeredEvents {
            registeredEvents = events
            reactor.modify(fd: fd, events: events)
        }
    }

    func handle(events: UInt32) {
        if events & CHOPSYS_EPOLLOUT != 0 && waitingForWritable {
            flushQueue()
            guard isOpen else { return }
        }
        let readable = events & (CHOPSYS_EPOLLIN | CHOPSYS_EPOLLRDHUP | CHOPSYS_EPOLLHUP | CHOPSYS_EPOLLERR) != 0
        if readable && reading && inputOpen {
            readAvailable()
        } else if events & CHOPSYS_EPOLLERR != 0 {
            finish(error: socketError())
        } else if events & CHOPSYS_EPOLLHUP != 0 && !waitingForWritable {
            // Hung up while reads are off (or input already ended): wait for reads to resume.
            parked = true
            reactor.unregister(fd: fd)
        }
    }

    /// Reads what the socket has (a few reads while each fills the reactor's buffer), hands
    /// every read to the delegate, then tells it the burst is over.
    private func readAvailable() {
        var delivered = false
        for _ in 0..<Self.readsPerEvent {
            var buffer = reactor.takeReadBuffer()
            var n = 0
            var error: Int32 = 0
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: Reactor.readSize) { p in
                n = Glibc.read(fd, p.baseAddress, p.count)
                if n < 0 { error = errno }
                return max(n, 0)
            }
            let filled = buffer.writableBytes == 0
            // The reactor keeps its share of the storage: if the delegate keeps the bytes, the
            // next read copies on write; if not, the storage is read into again.
            reactor.returnReadBuffer(buffer)
            if n > 0 {
                delivered = true
                delegate?.connectionRead(self, buffer)
                if filled && isOpen && reading && inputOpen { continue }
            } else if n == 0 {
                inputOpen = false
                updateInterest()
                delegate?.connectionInputClosed(self)
                delivered = true
            } else if error != EAGAIN && error != EWOULDBLOCK && error != EINTR {
                finish(error: error)
                return
            }
            break
        }
        if delivered && isOpen { delegate?.connectionReadComplete(self) }
    }

    // MARK: writes

    func write(_ buffer: ByteBuffer) {
        guard isOpen, outputOpen, buffer.readableBytes > 0 else { return }
        queue.append(buffer)
        queuedBytes += buffer.readableBytes
        if isWritable && queuedBytes > Self.highWatermark {
            isWritable = false
            delegate?.connectionWritabilityChanged(self)
        }
    }

    func flush() {
        guard isOpen, !queue.isEmpty, !waitingForWritable else { return }
        flushQueue()
    }

    private func flushQueue() {
        while !queue.isEmpty {
            let n: Int
            if queue.count == 1 {
                // MSG_NOSIGNAL: a peer that reset gives EPIPE, not a SIGPIPE that ends the process.
                n = queue[queue.startIndex].withUnsafeReadableBytes { p in Glibc.send(fd, p.baseAddress, p.count, Int32(MSG_NOSIGNAL)) }
            } else {
                n = gatherWrite()
            }
            if n < 0 {
                let e = errno
                if e == EINTR { continue }
                if e == EAGAIN || e == EWOULDBLOCK {
                    if !waitingForWritable {
                        waitingForWritable = true
                        updateInterest()
                    }
                    return
                }
                finish(error: e)
                return
            }
            consume(n)
        }
        if waitingForWritable {
            waitingForWritable = false
            updateInterest()
        }
        if !isWritable && queuedBytes <= Self.lowWatermark {
            isWritable = true
            delegate?.connectionWritabilityChanged(self)
        }
        if closeWhenFlushed {
            close()
        } else if shutdownWhenFlushed {
            shutdownWhenFlushed = false
            outputOpen = false
            shutdown(fd, Int32(SHUT_WR))
        }
    }

    /// Writes up to 16 queued buffers with one sendmsg (MSG_NOSIGNAL, as above).
    private func gatherWrite() -> Int {
        let count = min(queue.count, 16)
        return withUnsafeTemporaryAllocation(of: iovec.self, capacity: count) { iov in
            var i = 0
            var index = queue.startIndex
            // The buffers stay alive in the queue while their pointers are used.
            while i < count {
                let b = queue[index]
                b.withUnsafeReadableBytes { p in
                    iov[i] = iovec(iov_base: UnsafeMutableRawPointer(mutating: p.baseAddress), iov_len: p.count)
                }
                i += 1
                index = queue.index(after: index)
            }
            var message = msghdr()
            message.msg_iov = iov.baseAddress
            message.msg_iovlen = count
            return Glibc.sendmsg(fd, &message, Int32(MSG_NOSIGNAL))
        }
    }

    /// Drops `n` written bytes from the front of the queue.
    private func consume(_ n: Int) {
        queuedBytes -= n
        var left = n
        while left > 0, var first = queue.first {
            if left >= first.readableBytes {
                left -= first.readableBytes
                _ = queue.removeFirst()
            } else {
                first.moveReaderIndex(forwardBy: left)
                queue[queue.startIndex] = first
                left = 0
            }
        }
    }

    /// Closes once every queued byte is written.
    func closeAfterFlush() {
        guard isOpen else { return }
        if queue.isEmpty { close() } else { closeWhenFlushed = true; flush() }
    }

    /// Half-closes once every queued byte is written: no more writes.
    func shutdownOutput() {
        guard isOpen, outputOpen else { return }
        if queue.isEmpty {
            outputOpen = false
            shutdown(fd, Int32(SHUT_WR))
        } else {
            shutdownWhenFlushed = true
            flush()
        }
    }

    // MARK: closing

    func close() { finish(error: nil) }

    /// Closes with a reset (SO_LINGER 0): the peer sees its read fail, not an end of file, and
    /// what it has not read yet is dropped. For a response cut short, where a clean end would
    /// pass for a complete (close-delimited) response.
    func abort() {
        guard isOpen else { return }
        var l = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
        finish(error: nil)
    }

    private func finish(error: Int32?) {
        guard isOpen else { return }
        isOpen = false
        if !parked { reactor.unregister(fd: fd) }
        Glibc.close(fd)
        queue.removeAll()
        queuedBytes = 0
        let d = delegate
        delegate = nil
        d?.connectionClosed(self, error: error)
        let done = onClose
        onClose = nil
        done?()
    }

    /// Whether bytes wait in the socket's receive queue (read or not).
    var hasBytesWaiting: Bool {
        guard isOpen else { return false }
        var byte: UInt8 = 0
        return Glibc.recv(fd, &byte, 1, Int32(MSG_PEEK) | Int32(MSG_DONTWAIT)) > 0
    }

    /// The proxy drains: passed to whoever serves the connection now.
    func drainRequested() {
        (delegate as? DrainableSession)?.drainRequested()
    }

    private func socketError() -> Int32 {
        var e: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len)
        return e == 0 ? EIO : e
    }
}
