// The proxy's own event loop: one epoll instance per thread, its timers, and the tasks other
// threads hand it. Sockets (listeners, connections, connects in progress) register as
// sources; a source is served on its reactor's thread only.
//
// Why not SwiftNIO's loop: per request the proxy makes two reads and two writes, and NIO's
// per-event work (its pipeline, pending-writes manager, lifecycle checks) cost 5-6 us of user
// time a request against 0.7 us for a plain epoll loop in Swift doing the same syscalls
// (Benchmarks/README.md, "The ceiling"), and user time costs twice on a loaded machine.
import CHopSys
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Something a reactor watches: told which epoll events fired.
protocol ReactorSource: AnyObject {
    func handle(events: UInt32)
}

/// Monotonic nanoseconds (CLOCK_MONOTONIC).
@inline(__always)
func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

final class Reactor: @unchecked Sendable {
    // @unchecked: everything but `inbox` is used on the reactor's own thread; `inbox` is locked.
    let epollFD: Int32
    private let wakeFD: Int32
    /// Sources by file descriptor, and how many times each descriptor was registered: an
    /// event carries the generation it was registered under, so an event for a descriptor
    /// closed and reused within one batch never reaches the new source.
    private var sources: [ReactorSource?] = []
    private var generations: [UInt32] = []
    private var timers = TimerHeap()
    private let inbox = LockedBox<[() -> Void]>([])
    private var stopped = false
    /// Every connection of this reactor reads into this buffer (one at a time): memory per
    /// reactor, not per connection. A reader that keeps the bytes shares the storage, and the
    /// next read then gets a copy (ByteBuffer's copy on write).
    private var readBuffer = ByteBufferAllocator().buffer(capacity: Reactor.readSize)
    static let readSize = 64 * 1024
    /// This reactor's client connections kept alive between requests, oldest idle first:
    /// closed to make room when the connection cap or the descriptor limit is reached.
    var idle = IdleList()

    init() throws {
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epollFD >= 0 else { throw ProxyError("epoll_create1 failed: \(String(cString: strerror(errno)))") }
        wakeFD = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard wakeFD >= 0 else {
            close(epollFD)
            throw ProxyError("eventfd failed: \(String(cString: strerror(errno)))")
        }
        var ev = epoll_event()
        ev.events = CHOPSYS_EPOLLIN
        ev.data.u64 = Self.wakeToken
        epoll_ctl(epollFD, EPOLL_CTL_ADD, wakeFD, &ev)
    }

    private static let wakeToken = UInt64.max

    @inline(__always)
    private func token(_ fd: Int32) -> UInt64 { UInt64(generations[Int(fd)]) << 32 | UInt64(UInt32(bitPattern: fd)) }

    deinit {
        close(wakeFD)
        close(epollFD)
    }

    // MARK: sources

    func register(_ source: ReactorSource, fd: Int32, events: UInt32) {
        let i = Int(fd)
        if i >= sources.count {
            let more = i + 1 - sources.count + 64
            sources.append(contentsOf: repeatElement(nil, count: more))
            generations.append(contentsOf: repeatElement(0, count: more))
        }
        sources[i] = source
        generations[i] &+= 1
        var ev = epoll_event()
        ev.events = events
        ev.data.u64 = token(fd)
        epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &ev)
    }

    func modify(fd: Int32, events: UInt32) {
        var ev = epoll_event()
        ev.events = events
        ev.data.u64 = token(fd)
        epoll_ctl(epollFD, EPOLL_CTL_MOD, fd, &ev)
    }

    /// Stops watching `fd` (before it is closed).
    func unregister(fd: Int32) {
        epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, nil)
        if Int(fd) < sources.count { sources[Int(fd)] = nil }
    }

    /// The read buffer, cleared, for one read; give it back with `returnReadBuffer`.
    func takeReadBuffer() -> ByteBuffer {
        var b = readBuffer
        readBuffer = ByteBuffer()
        b.clear()
        return b
    }

    func returnReadBuffer(_ buffer: ByteBuffer) {
        readBuffer = buffer
    }

    /// Told how many idle connections were closed to make room, and why (for a diagnostic).
    var onIdleReclaimed: (Int, String) -> Void = { _, _ in }

    /// Closes up to `count` of the connections idle the longest; how many it closed.
    @discardableResult
    func reclaimIdle(_ count: Int = 1, why: String) -> Int {
        var closed = 0
        while closed < count, let node = idle.popOldest() {
            if let owner = node.owner, owner.reclaimIdle() { closed += 1 }
        }
        if closed > 0 { onIdleReclaimed(closed, why) }
        return closed
    }

    // MARK: timers and tasks

    /// Runs `body` on this reactor `nanos` from now, unless cancelled first.
    @discardableResult
    func schedule(in nanos: UInt64, _ body: @escaping () -> Void) -> ReactorTimer {
        let timer = ReactorTimer(deadline: monotonicNanos() &+ nanos, body: body)
        timers.push(timer)
        return timer
    }

    /// Runs `body` on this reactor's thread (call from any thread).
    func execute(_ body: @escaping @Sendable () -> Void) {
        inbox.withLock { $0.append(body) }
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    /// Ends `run()` after the current iteration (call from any thread).
    func stop() { execute { [self] in stopped = true } }

    // MARK: the loop

    /// Serves the sources until `stop()`.
    func run() {
        let capacity = 256
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: capacity)
        defer { events.deallocate() }
        while !stopped {
            var timeout: Int32 = -1
            if let next = timers.nextDeadline() {
                let t = monotonicNanos()
                timeout = next <= t ? 0 : Int32(min((next - t + 999_999) / 1_000_000, 60_000))
            }
            let n = epoll_wait(epollFD, events, Int32(capacity), timeout)
            if n > 0 {
                for i in 0..<Int(n) {
                    let token = events[i].data.u64
                    if token == Self.wakeToken {
                        var value: UInt64 = 0
                        _ = read(wakeFD, &value, 8)
                        continue
                    }
                    // A source closed earlier in this batch is gone from the table (or its
                    // descriptor already serves another source, of a later generation).
                    let fd = Int(UInt32(truncatingIfNeeded: token))
                    guard fd < sources.count, generations[fd] == UInt32(truncatingIfNeeded: token >> 32),
                        let source = sources[fd]
                    else { continue }
                    source.handle(events: events[i].events)
                }
            }
            runTimers()
            runInbox()
        }
    }

    private func runTimers() {
        guard timers.nextDeadline() != nil else { return }
        let now = monotonicNanos()
        while let timer = timers.popExpired(now: now) {
            timer.fire()
        }
    }

    private func runInbox() {
        let tasks = inbox.withLock { tasks -> [() -> Void] in
            if tasks.isEmpty { return [] }
            defer { tasks.removeAll(keepingCapacity: true) }
            return tasks
        }
        for task in tasks { task() }
    }
}

/// A scheduled call; `cancel()` keeps it from running.
final class ReactorTimer {
    let deadline: UInt64
    private var body: (() -> Void)?

    init(deadline: UInt64, body: @escaping () -> Void) {
        self.deadline = deadline
        self.body = body
    }

    var isCancelled: Bool { body == nil }

    func cancel() { body = nil }

    /// Runs the call (once; nothing when cancelled).
    func fire() {
        let b = body
        body = nil
        b?()
    }
}

/// A binary min-heap of timers by deadline; cancelled ones are dropped when they reach the top.
struct TimerHeap {
    private var items: [ReactorTimer] = []

    mutating func nextDeadline() -> UInt64? {
        while let first = items.first, first.isCancelled { _ = popFirst() }
        return items.first?.deadline
    }

    mutating func push(_ t: ReactorTimer) {
        items.append(t)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if items[parent].deadline <= items[i].deadline { break }
            items.swapAt(parent, i)
            i = parent
        }
    }

    mutating func popExpired(now: UInt64) -> ReactorTimer? {
        guard let first = items.first, first.deadline <= now else { return nil }
        return popFirst()
    }

    private mutating func popFirst() -> ReactorTimer? {
        guard !items.isEmpty else { return nil }
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count && items[l].deadline < items[m].deadline { m = l }
                if r < items.count && items[r].deadline < items[m].deadline { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return top
    }
}

/// A session that can be closed to make room: a client connection kept alive between
/// requests, with nothing in flight (nginx's "reusable" connections).
protocol IdleReclaimable: AnyObject {
    /// Closes the connection now (on its reactor) if it is still idle; whether it did.
    func reclaimIdle() -> Bool
}

/// A place in a reactor's list of idle sessions.
final class IdleNode {
    weak var owner: IdleReclaimable?
    fileprivate var prev: IdleNode?
    fileprivate var next: IdleNode?
    fileprivate(set) var isListed = false

    init(owner: IdleReclaimable) { self.owner = owner }
}

/// A reactor's idle sessions, oldest idle first: listed when a session starts waiting for
/// its next request, taken off when a byte comes or it closes (both O(1)).
struct IdleList {
    private var head: IdleNode?
    private var tail: IdleNode?
    private(set) var count = 0

    mutating func append(_ node: IdleNode) {
        guard !node.isListed else { return }
        node.isListed = true
        node.prev = tail
        node.next = nil
        if let t = tail { t.next = node } else { head = node }
        tail = node
        count += 1
    }

    mutating func remove(_ node: IdleNode) {
        guard node.isListed else { return }
        node.isListed = false
        if let p = node.prev { p.next = node.next } else { head = node.next }
        if let n = node.next { n.prev = node.prev } else { tail = node.prev }
        node.prev = nil
        node.next = nil
        count -= 1
    }

    /// Takes the session idle the longest off the list.
    mutating func popOldest() -> IdleNode? {
        guard let h = head else { return nil }
        remove(h)
        return h
    }
}
