import Foundation
import NIOCore
import NIOPosix
import XCTest

@testable import HopProxy

/// The HTTP handler on real sockets in this process (no namespaces, no rules): a client sends
/// crafted bytes in pieces, a scripted upstream answers with crafted bytes in pieces, and the
/// tests check what each side received and what the access log says.
final class ForwardingTests: XCTestCase {
    /// One step of the upstream's script: once it has received `after` (counted from the end
    /// of the previous step's match), it sends `reply`, piece by piece.
    struct Step {
        var after: String
        var reply: [String]
        var closeAfter = false
    }

    final class Collected: @unchecked Sendable {
        // @unchecked: every access holds `lock`.
        private let lock = NSLock()
        private var bytes: [UInt8] = []
        private var closed = false
        func append(_ b: ByteBuffer) { lock.withLock { bytes += b.readableBytesView } }
        func markClosed() { lock.withLock { closed = true } }
        var text: String { lock.withLock { String(decoding: bytes, as: UTF8.self) } }
        var isClosed: Bool { lock.withLock { closed } }
    }

    /// The upstream: plays `script` on each connection it accepts.
    final class ScriptedUpstream: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        // @unchecked: used on its channel's event loop only.
        let script: [Step]
        let received: Collected
        private var seen: [UInt8] = []
        private var matchedUpTo = 0
        private var step = 0

        init(script: [Step], received: Collected) {
            self.script = script
            self.received = received
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let b = unwrapInboundIn(data)
            received.append(b)
            seen += b.readableBytesView
            advance(context: context)
        }

        private func advance(context: ChannelHandlerContext) {
            while step < script.count {
                let s = script[step]
                let needle = Array(s.after.utf8)
                guard let r = find(needle, in: seen, from: matchedUpTo) else { return }
                matchedUpTo = r
                step += 1
                send(s.reply, close: s.closeAfter, context: context)
            }
        }

        private func find(_ needle: [UInt8], in hay: [UInt8], from: Int) -> Int? {
            if needle.isEmpty { return from }
            guard hay.count >= needle.count else { return nil }
            var i = from
            while i + needle.count <= hay.count {
                if Array(hay[i..<(i + needle.count)]) == needle { return i + needle.count }
                i += 1
            }
            return nil
        }

        private func send(_ pieces: [String], close: Bool, context: ChannelHandlerContext) {
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            var delay: Int64 = 0
            for piece in pieces {
                let bytes = Array(piece.utf8)
                context.eventLoop.scheduleTask(in: .milliseconds(delay)) {
                    let c = loopBound.value
                    c.writeAndFlush(NIOAny(c.channel.allocator.buffer(bytes: bytes)), promise: nil)
                }
                delay += 15
            }
            if close {
                context.eventLoop.scheduleTask(in: .milliseconds(delay)) { loopBound.value.close(promise: nil) }
            }
        }
    }

    final class ClientCollector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        // @unchecked: `collected` is itself locked.
        let collected: Collected
        init(_ c: Collected) { collected = c }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { collected.append(unwrapInboundIn(data)) }
        func channelInactive(context: ChannelHandlerContext) {
            collected.markClosed()
            context.fireChannelInactive()
        }
    }

    struct Result {
        var client: String
        var upstream: String
        var clientClosed: Bool
        var log: [[String: Any]]
    }

    /// Runs the proxy handler between a client sending `pieces` (15 ms apart) and an upstream
    /// playing `script`; waits until `done` holds for what the client received (or 5 s).
    func run(
        _ pieces: [String], script: [Step], configure: (inout ProxyConfiguration) -> Void = { _ in },
        until done: @escaping (String, Bool) -> Bool
    ) throws -> Result {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let upstreamReceived = Collected()
        let upstreamServer = try ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ScriptedUpstream(script: script, received: upstreamReceived))
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        defer { try? upstreamServer.close().wait() }

        let logPath = FileManager.default.temporaryDirectory.appendingPathComponent("fwd-\(UUID().uuidString).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: logPath) }
        var config = ProxyConfiguration()
        config.connectTimeoutSeconds = 2
        configure(&config)
        let shared = ProxyShared(configuration: config, accessLog: try AccessLog(path: logPath))
        let upstreamAddress = upstreamServer.localAddress!
        let proxy = try TestProxy(shared: shared, upstream: upstreamAddress)
        defer { proxy.stop() }

        let clientReceived = Collected()
        let client = try ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ClientCollector(clientReceived))
                }
            }
            .connect(to: proxy.address).wait()
        defer { try? client.close().wait() }
        for piece in pieces {
            // The proxy may close before every piece is out (a timeout under test): stop there.
            do { try client.writeAndFlush(client.allocator.buffer(string: piece)).wait() } catch { break }
            usleep(15_000)
        }
        let deadline = Date().addingTimeInterval(5)
        while !done(clientReceived.text, clientReceived.isClosed) && Date() < deadline { usleep(5_000) }
        usleep(30_000)
        shared.accessLog.flush()
        let log = ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
        }
        return Result(client: clientReceived.text, upstream: upstreamReceived.text, clientClosed: clientReceived.isClosed, log: log)
    }

    /// The proxy's HTTP session on its own reactor thread, listening on 127.0.0.1 (a free
    /// port), every connection routed to `upstream` as if redirected there.
    final class TestProxy {
        let reactor: Reactor
        let listener: Listener
        let address: SocketAddress
        private var thread: pthread_t?

        init(shared: ProxyShared, upstream: SocketAddress) throws {
            reactor = try Reactor()
            listener = try Listener(address: try SocketAddress(ipAddress: "127.0.0.1", port: 0), reactor: reactor)
            address = try XCTUnwrap(SocketAddresses.of(listener.fd, peer: false))
            let reactor = self.reactor
            listener.onAccept = { fd in
                let local = SocketAddresses.of(fd, peer: false)
                let remote = SocketAddresses.of(fd, peer: true)
                let connection = Connection(fd: fd, reactor: reactor, local: local, remote: remote)
                let route = Route(
                    client: remote, local: local, originalDestination: upstream,
                    redirected: true, direction: .outbound, upstream: upstream, source: nil,
                    clientText: remote?.hopDescription, localText: local?.hopDescription,
                    originalDestinationText: upstream.hopDescription)
                connection.start()
                _ = HTTPProxyHandler(shared: shared, route: route, connection: connection)
            }
            let box = UnsafeSendable((listener, reactor))
            thread = startThread(name: "test-proxy") {
                box.value.0.start()
                box.value.1.run()
            }
        }

        func stop() {
            let box = UnsafeSendable(listener)
            reactor.execute { box.value.close() }
            reactor.stop()
            if let thread { pthread_join(thread, nil) }
            thread = nil
        }
    }

    private func count(_ needle: String, in hay: String) -> Int { hay.components(separatedBy: needle).count - 1 }

    // MARK: tests

    func testHeadSplitAcrossReadsIsForwardedWithAddedHeaders() throws {
        let r = try run(
            ["GET /split HT", "TP/1.1\r\nHost: split.test\r", "\nX-Other: 1\r\nX-Forwarded-Proto: https\r\n", "\r\n"],
            script: [Step(after: "\r\n\r\n", reply: ["HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"])],
            until: { text, _ in text.hasSuffix("hello") })
        XCTAssertEqual(r.client, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
        let id = try XCTUnwrap(r.log.first?["requestId"] as? String)
        XCTAssertTrue(ProxyLabTests.isUUIDv4(id), id)
        XCTAssertEqual(
            r.upstream,
            "GET /split HTTP/1.1\r\nHost: split.test\r\nX-Other: 1\r\nx-request-id: \(id)\r\nx-forwarded-proto: http\r\n\r\n",
            "the client's bytes unchanged, its x-forwarded-proto replaced, ours added")
        XCTAssertEqual(r.log.count, 1)
        XCTAssertEqual(r.log.first?["status"] as? Int, 200)
        XCTAssertEqual(r.log.first?["responseBytes"] as? Int, 5)
        XCTAssertEqual(r.log.first?["host"] as? String, "split.test")
    }

    func testResponseHeadAndBodyInSeparateReads() throws {
        let r = try run(
            ["GET /a HTTP/1.1\r\nHost: h\r\nx-request-id: mine\r\n\r\n"],
            script: [Step(after: "\r\n\r\n", reply: ["HTTP/1.1 200 OK\r\nContent-", "Length: 10\r\n\r\n", "pod ", "/a\r\n", ".."])],
            until: { text, _ in text.hasSuffix("..") })
        XCTAssertEqual(r.client, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\npod /a\r\n..")
        XCTAssertEqual(r.upstream, "GET /a HTTP/1.1\r\nHost: h\r\nx-request-id: mine\r\nx-forwarded-proto: http\r\n\r\n")
        XCTAssertEqual(r.log.first?["requestId"] as? String, "mine", "a given x-request-id is kept")
        XCTAssertEqual(r.log.first?["responseBytes"] as? Int, 10)
    }

    func testPipelinedRequestsInOneReadAnsweredInOrder() throws {
        let r = try run(
            ["GET /1 HTTP/1.1\r\nHost: p\r\n\r\nHEAD /2 HTTP/1.1\r\nHost: p\r\n\r\nGET /3 HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n"],
            script: [
                Step(after: "GET /1 ", reply: ["HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", "one"]),
                // HEAD: the Content-Length describes a body that is not sent.
                Step(after: "HEAD /2 ", reply: ["HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"]),
                Step(after: "GET /3 ", reply: ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nthr\r\n", "1\r\ne\r\n0\r\n\r\n"]),
            ],
            until: { _, closed in closed })
        XCTAssertEqual(
            r.client,
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none"
                + "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
                + "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nthr\r\n1\r\ne\r\n0\r\n\r\n")
        XCTAssertTrue(r.clientClosed, "Connection: close on the last request")
        XCTAssertEqual(r.log.map { $0["target"] as? String ?? "" }, ["/1", "/2", "/3"])
        XCTAssertEqual(r.log.map { $0["responseBytes"] as? Int ?? -1 }, [3, 0, 4])
        XCTAssertEqual(r.log.map { $0["upstreamReused"] as? Bool ?? false }, [false, true, true])
        // Each request went upstream only after the previous response was complete.
        XCTAssertEqual(count("x-forwarded-proto: http", in: r.upstream), 3)
    }

    func testChunkedRequestSplitAcrossReads() throws {
        let body = ["4\r\nwi", "ki\r\n5;x=y\r", "\npedia\r\n0\r\nT: v\r\n", "\r\n"]
        let r = try run(
            ["POST /up HTTP/1.1\r\nHost: c\r\nTransfer-Encoding: chunked\r\n\r\n"] + body + ["GET /after HTTP/1.1\r\nHost: c\r\n\r\n"],
            script: [
                Step(after: "T: v\r\n\r\n", reply: ["HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"]),
                Step(after: "GET /after ", reply: ["HTTP/1.1 204 No Content\r\n\r\n"]),
            ],
            until: { text, _ in text.hasSuffix("204 No Content\r\n\r\n") })
        XCTAssertTrue(r.upstream.contains("\r\n\r\n" + body.joined() + "GET /after"), r.upstream)
        XCTAssertEqual(r.client, "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 204 No Content\r\n\r\n")
        XCTAssertEqual(r.log.first?["requestBytes"] as? Int, 9, "payload bytes, not framing")
        XCTAssertEqual(r.log.last?["status"] as? Int, 204)
    }

    func testContinueThenBody() throws {
        let r = try run(
            ["PUT /c HTTP/1.1\r\nHost: e\r\nContent-Length: 6\r\nExpect: 100-continue\r\n\r\n", "abc", "def"],
            script: [
                Step(after: "100-continue\r\n", reply: ["HTTP/1.1 100 Continue\r\n\r\n"]),
                Step(after: "abcdef", reply: ["HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n!"]),
            ],
            until: { text, _ in text.hasSuffix("!") })
        XCTAssertEqual(r.client, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n!")
        XCTAssertTrue(r.upstream.hasSuffix("\r\n\r\nabcdef"), r.upstream)
        XCTAssertEqual(r.log.count, 1)
        XCTAssertEqual(r.log.first?["status"] as? Int, 200)
        XCTAssertEqual(r.log.first?["requestBytes"] as? Int, 6)
    }

    func testNotModifiedHasNoBodyAndCloseDelimitedEndsWithTheConnection() throws {
        let r = try run(
            ["GET /etag HTTP/1.1\r\nHost: n\r\n\r\n", "GET /old HTTP/1.1\r\nHost: n\r\n\r\n"],
            script: [
                Step(after: "GET /etag", reply: ["HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\nETag: \"e\"\r\n\r\n"]),
                Step(after: "GET /old", reply: ["HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil", " the end"], closeAfter: true),
            ],
            until: { _, closed in closed })
        XCTAssertEqual(
            r.client,
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\nETag: \"e\"\r\n\r\nHTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
        XCTAssertTrue(r.clientClosed)
        XCTAssertEqual(r.log.map { $0["status"] as? Int ?? 0 }, [304, 200])
        XCTAssertEqual(r.log.last?["responseBytes"] as? Int, 13)
        XCTAssertTrue(r.log.last?["error"] is NSNull, "\(r.log)")
    }

    func testUpgradeBecomesATunnelWithBytesAlreadyRead() throws {
        let r = try run(
            ["GET /ws HTTP/1.1\r\nHost: u\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n", "client-bytes"],
            script: [
                Step(after: "Upgrade: echo\r\n", reply: ["HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nserver-first"]),
                Step(after: "client-bytes", reply: ["server-reply"]),
            ],
            until: { text, _ in text.hasSuffix("server-reply") })
        XCTAssertEqual(r.client, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nserver-firstserver-reply")
        XCTAssertTrue(r.upstream.hasSuffix("\r\n\r\nclient-bytes"), r.upstream)
    }

    func testUpstreamSilentPastTheIdleTimeoutGets504() throws {
        let started = Date()
        let r = try run(
            ["GET /slow HTTP/1.1\r\nHost: s\r\n\r\n"], script: [],
            configure: { $0.idleTimeoutSeconds = 0.3 },
            until: { _, closed in closed })
        let waited = Date().timeIntervalSince(started)
        XCTAssertTrue(r.client.hasPrefix("HTTP/1.1 504 Gateway Timeout\r\n"), r.client)
        XCTAssertTrue(r.client.contains("no progress for 0.3 s (--idle-timeout)"), r.client)
        XCTAssertTrue(r.clientClosed)
        XCTAssertTrue(r.upstream.hasPrefix("GET /slow HTTP/1.1\r\n"), "the request went upstream: \(r.upstream)")
        XCTAssertEqual(r.log.first?["error"] as? String, "idle_timeout")
        XCTAssertEqual(r.log.first?["status"] as? Int, 504)
        XCTAssertGreaterThan(waited, 0.25, "not before the timeout")
    }


    func testMalformedRequestGets400() throws {
        let r = try run(
            ["GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"], script: [],
            until: { _, closed in closed })
        XCTAssertTrue(r.client.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), r.client)
        XCTAssertTrue(r.client.contains("connection: close\r\n"), r.client)
        XCTAssertTrue(r.client.hasSuffix("both Transfer-Encoding and Content-Length\n"), r.client)
        XCTAssertEqual(r.upstream, "", "nothing reached the upstream")
        XCTAssertEqual(r.log.first?["error"] as? String, "te_and_content_length")
        XCTAssertEqual(r.log.first?["status"] as? Int, 400)
    }

    /// Every request-smuggling shape gets 400 and a closed connection, nothing of it goes
    /// upstream, and its access-log line names the shape.
    func testSmugglingShapesGet400AndALogLine() throws {
        let shapes: [(bytes: String, token: String)] = [
            ("POST /s HTTP/1.1\r\nHost: s\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "te_and_content_length"),
            ("POST /s HTTP/1.1\r\nHost: s\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde", "conflicting_content_length"),
            ("GET /s HTTP/1.1\r\nHost: s\r\nX-A: a\r\n folded\r\n\r\n", "obs_fold"),
            ("GET /s HTTP/1.1\nHost: s\n\n", "bare_lf"),
            ("POST /s HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", "te_not_chunked_last"),
            ("POST /s HTTP/1.1\r\nHost: s\r\nContent-Length: 1e3\r\n\r\n", "invalid_content_length"),
        ]
        for shape in shapes {
            let r = try run([shape.bytes], script: [], until: { _, closed in closed })
            XCTAssertTrue(r.client.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(shape.token): \(r.client)")
            XCTAssertTrue(r.clientClosed, shape.token)
            XCTAssertEqual(r.upstream, "", "\(shape.token): nothing reached the upstream")
            XCTAssertEqual(r.log.count, 1, shape.token)
            XCTAssertEqual(r.log.first?["error"] as? String, shape.token)
            XCTAssertEqual(r.log.first?["status"] as? Int, 400, shape.token)
        }
    }

    /// A chunk size that would overflow: the head went upstream, the body can't be finished,
    /// so the upstream connection is dropped and the client gets 400.
    func testChunkSizeOverflowGets400() throws {
        let r = try run(
            ["POST /c HTTP/1.1\r\nHost: c\r\nTransfer-Encoding: chunked\r\n\r\n", "ffffffffffffffff0\r\nabc"], script: [],
            until: { _, closed in closed })
        XCTAssertTrue(r.client.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), r.client)
        XCTAssertTrue(r.client.contains("a chunk size that is too large"), r.client)
        XCTAssertTrue(r.clientClosed)
        XCTAssertFalse(r.upstream.contains("ffff"), "no byte of the bad chunk went upstream: \(r.upstream)")
        XCTAssertEqual(r.log.first?["error"] as? String, "chunk_size_overflow")
        XCTAssertEqual(r.log.first?["status"] as? Int, 400)
    }

    /// A head sent in pieces that stops short: 408 once the header timeout passes, counted
    /// from its first byte (the log's duration), and nothing went upstream.
    func testIncompleteHeadGets408AfterTheHeaderTimeout() throws {
        let started = Date()
        let r = try run(
            ["GET /slow HTTP/1.1\r\n", "Host: s\r\n", "X-Slow: 1\r\n"], script: [],
            configure: { $0.headerTimeoutSeconds = 0.4 },
            until: { _, closed in closed })
        let waited = Date().timeIntervalSince(started)
        XCTAssertTrue(r.client.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"), r.client)
        XCTAssertTrue(r.client.contains("connection: close\r\n"), r.client)
        XCTAssertTrue(r.client.contains("not complete within 0.4 s (--header-timeout)"), r.client)
        XCTAssertTrue(r.clientClosed)
        XCTAssertEqual(r.upstream, "")
        XCTAssertEqual(r.log.count, 1)
        XCTAssertEqual(r.log.first?["error"] as? String, "header_timeout")
        XCTAssertEqual(r.log.first?["status"] as? Int, 408)
        XCTAssertGreaterThanOrEqual(r.log.first?["durationMs"] as? Double ?? 0, 399, "counted from the first byte")
        XCTAssertGreaterThan(waited, 0.38, "not before the timeout")
        XCTAssertLessThan(waited, 2, "not long after it")
    }

    /// Bytes that keep coming do not stretch the header timeout (they do the idle timeout).
    func testHeaderTimeoutHoldsAgainstATrickle() throws {
        let r = try run(
            ["GET /slow HTTP/1.1\r\n"] + Array(repeating: "X", count: 40), script: [],
            configure: { $0.headerTimeoutSeconds = 0.3; $0.idleTimeoutSeconds = 0.2 },
            until: { _, closed in closed })
        XCTAssertTrue(r.client.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"), r.client)
        XCTAssertEqual(r.log.first?["error"] as? String, "header_timeout")
    }

    /// Heads that complete in time, kept alive between them, are served: the timer that looks
    /// at the header timeout leaves them alone.
    func testHeadsInPiecesWithinTheHeaderTimeoutAreServed() throws {
        let r = try run(
            ["GET /a HTTP/1.1\r\n", "Host: s\r\n\r\n", "GET /b HTTP/1.1\r\n", "Host: s\r\n\r\n"],
            script: [
                Step(after: "GET /a", reply: ["HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"]),
                Step(after: "GET /b", reply: ["HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb"]),
            ],
            configure: { $0.headerTimeoutSeconds = 0.2; $0.keepAliveTimeoutSeconds = 0.2 },
            until: { text, _ in text.hasSuffix("b") })
        XCTAssertEqual(r.client, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb")
        XCTAssertEqual(r.log.map { $0["status"] as? Int ?? 0 }, [200, 200])
    }

    /// A kept-alive client that sends nothing more is closed after the keep-alive timeout or
    /// the idle timeout, whichever is shorter, with no log line of its own (no request).
    func testIdleKeptAliveClientIsClosedAfterTheShorterTimeout() throws {
        let timeouts: [(keepAlive: Double, idle: Double)] = [(0.3, 30), (30, 0.3)]
        for (keepAlive, idle) in timeouts {
            let started = Date()
            let r = try run(
                ["GET /a HTTP/1.1\r\nHost: s\r\n\r\n"],
                script: [Step(after: "GET /a", reply: ["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"])],
                configure: { $0.keepAliveTimeoutSeconds = keepAlive; $0.idleTimeoutSeconds = idle },
                until: { _, closed in closed })
            let waited = Date().timeIntervalSince(started)
            XCTAssertEqual(r.client, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            XCTAssertTrue(r.clientClosed, "an idle kept-alive connection is closed (\(keepAlive), \(idle))")
            XCTAssertGreaterThan(waited, 0.28)
            XCTAssertLessThan(waited, 3, "at the shorter timeout")
            XCTAssertEqual(r.log.count, 1)
            XCTAssertTrue(r.log.first?["error"] is NSNull, "\(r.log)")
        }
    }

    func testInvalidUpstreamResponseGets502() throws {
        let r = try run(
            ["GET /bad HTTP/1.1\r\nHost: b\r\n\r\n"],
            script: [Step(after: "\r\n\r\n", reply: ["SSH-2.0-OpenSSH\r\n\r\n"])],
            until: { _, closed in closed })
        XCTAssertTrue(r.client.hasPrefix("HTTP/1.1 502 Bad Gateway\r\n"), r.client)
        XCTAssertTrue(r.client.contains("sent a response that is not valid HTTP/1.x"), r.client)
        XCTAssertEqual(r.log.first?["error"] as? String, "upstream_bad_response")
    }
}
