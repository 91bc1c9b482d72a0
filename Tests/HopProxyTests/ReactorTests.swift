import Dispatch
import NIOCore
import XCTest

@testable import HopProxy

#if canImport(Glibc)
import Glibc
#endif

/// The proxy's event loop on its own: timers, tasks from other threads, and the accept path
/// (connection cap, drain) through `TransparentProxy` on loopback.
final class ReactorTests: XCTestCase {
    func testTimerHeapPopsInDeadlineOrderAndSkipsCancelled() {
        var heap = TimerHeap()
        var fired: [Int] = []
        var timers: [ReactorTimer] = []
        for (i, d) in [50, 10, 40, 20, 30, 10].enumerated() {
            let t = ReactorTimer(deadline: UInt64(d)) { fired.append(i) }
            timers.append(t)
            heap.push(t)
        }
        timers[2].cancel()  // deadline 40
        XCTAssertEqual(heap.nextDeadline(), 10)
        while let t = heap.popExpired(now: 35) { t.fire() }
        XCTAssertEqual(Set(fired.prefix(2)), [1, 5], "both deadline-10 timers first")
        XCTAssertEqual(Array(fired.dropFirst(2)), [3, 4])
        XCTAssertEqual(heap.nextDeadline(), 50, "the cancelled timer is dropped on the way")
        XCTAssertNil(heap.popExpired(now: 49))
    }

    func testScheduledAndHandedOverWorkRunsOnTheReactorThread() throws {
        let reactor = try Reactor()
        let box = UnsafeSendable(reactor)
        let thread = startThread(name: "reactor-test") { box.value.run() }
        defer {
            reactor.stop()
            pthread_join(thread, nil)
        }
        let order = LockedBox<[String]>([])
        let done = DispatchSemaphore(value: 0)
        reactor.execute {
            let start = monotonicNanos()
            let cancelled = box.value.schedule(in: 20_000_000) { order.withLock { $0.append("cancelled") } }
            box.value.schedule(in: 60_000_000) {
                order.withLock { $0.append("60ms after \((monotonicNanos() - start) / 1_000_000)") }
                done.signal()
            }
            box.value.schedule(in: 30_000_000) { order.withLock { $0.append("30ms") } }
            cancelled.cancel()
        }
        XCTAssertEqual(done.wait(timeout: .now() + 5), .success)
        let seen = order.withLock { $0 }
        XCTAssertEqual(seen.count, 2, "\(seen)")
        XCTAssertEqual(seen.first, "30ms")
        let after = Int(seen.last!.split(separator: " ").last!)!
        XCTAssertGreaterThanOrEqual(after, 59, "not before its deadline")
    }

    /// A free TCP port on 127.0.0.1 (bound, read, released).
    private func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        let any = try SocketAddress(ipAddress: "127.0.0.1", port: 0)
        XCTAssertEqual(SocketAddresses.withSockaddr(any) { bind(fd, $0, $1) }, 0)
        return try XCTUnwrap(SocketAddresses.of(fd, peer: false)?.port)
    }

    /// A blocking client socket connected to 127.0.0.1:port with a receive timeout.
    private func connectClient(_ port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: port)
        XCTAssertEqual(SocketAddresses.withSockaddr(address) { connect(fd, $0, $1) }, 0)
        var tv = timeval(tv_sec: 0, tv_usec: 300_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    /// What a read on the client sees: "closed" (end of file), "open" (nothing within the
    /// timeout) or the bytes.
    private func state(_ fd: Int32) -> String {
        var buf = [UInt8](repeating: 0, count: 512)
        let n = recv(fd, &buf, buf.count, 0)
        if n == 0 { return "closed" }
        if n < 0 { return errno == EAGAIN || errno == EWOULDBLOCK ? "open" : "error" }
        return String(decoding: buf[0..<n], as: UTF8.self)
    }

    func testConnectionCapClosesTheOneTooManyAndDrainClosesTheRest() throws {
        var config = ProxyConfiguration()
        config.port = try freePort()
        config.inboundPort = config.port
        config.listenAddresses = ["127.0.0.1"]
        config.maxConnections = 2
        config.threads = 2
        config.protocolDetectionTimeoutSeconds = 30
        let proxy = try TransparentProxy(configuration: config, accessLog: .off())
        let bound = try proxy.bind()
        XCTAssertEqual(bound.bound, ["127.0.0.1:\(config.port)"])
        proxy.startAccepting()
        defer { proxy.shutdown() }

        let a = try connectClient(config.port)
        let b = try connectClient(config.port)
        defer { close(a); close(b) }
        // Both admitted before the third arrives.
        let deadline = Date().addingTimeInterval(3)
        while proxy.openConnections < 2 && Date() < deadline { usleep(5_000) }
        XCTAssertEqual(proxy.openConnections, 2)
        let c = try connectClient(config.port)
        defer { close(c) }
        XCTAssertEqual(state(c), "closed", "the third connection is over the cap")
        XCTAssertEqual(state(a), "open")
        XCTAssertEqual(state(b), "open")

        // A connection that ends frees its slot.
        close(a)
        let freed = Date().addingTimeInterval(3)
        while proxy.openConnections > 1 && Date() < freed { usleep(5_000) }
        XCTAssertEqual(proxy.openConnections, 1)
        let d = try connectClient(config.port)
        defer { close(d) }
        XCTAssertEqual(state(d), "open", "admitted again below the cap")

        // Draining closes connections that have no request in flight, and stops accepting.
        XCTAssertEqual(proxy.drain(timeoutSeconds: 2), 0)
        XCTAssertEqual(state(b), "closed")
        XCTAssertEqual(state(d), "closed")
        let e = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(e) }
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: config.port)
        XCTAssertNotEqual(SocketAddresses.withSockaddr(address) { connect(e, $0, $1) }, 0, "no listener after draining")
    }

    /// The idle list gives back the session idle the longest; one taken off (a byte came)
    /// or closed already is skipped.
    func testIdleListReclaimsOldestFirstAndSkipsTheGone() throws {
        final class Session: IdleReclaimable {
            let name: String
            var open = true
            init(_ name: String) { self.name = name }
            lazy var node = IdleNode(owner: self)
            func reclaimIdle() -> Bool {
                guard open else { return false }
                open = false
                return true
            }
        }
        let reactor = try Reactor()
        var reported: [(Int, String)] = []
        reactor.onIdleReclaimed = { reported.append(($0, $1)) }
        let a = Session("a"), b = Session("b"), c = Session("c"), d = Session("d")
        for s in [a, b, c, d] { reactor.idle.append(s.node) }
        reactor.idle.append(a.node)  // listed once, in its first place
        XCTAssertEqual(reactor.idle.count, 4)
        reactor.idle.remove(b.node)  // a request came
        c.open = false  // closed on its own, still listed
        XCTAssertEqual(reactor.reclaimIdle(2, why: "test"), 2)
        XCTAssertFalse(a.open)
        XCTAssertFalse(d.open)
        XCTAssertTrue(b.open)
        XCTAssertEqual(reactor.idle.count, 0)
        XCTAssertEqual(reactor.reclaimIdle(1, why: "test"), 0)
        XCTAssertEqual(reported.map { $0.0 }, [2])
        reactor.idle.append(b.node)
        XCTAssertEqual(reactor.reclaimIdle(1, why: "test"), 1)
        XCTAssertFalse(b.open)
    }
}
