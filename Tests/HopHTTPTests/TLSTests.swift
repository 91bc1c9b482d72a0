import HopCapture
import HopFlows
import XCTest
@testable import HopHTTP

final class TLSTests: XCTestCase {
    // MARK: Hand-built handshake messages and records

    private func u16(_ v: Int) -> [UInt8] { [UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
    private func u24(_ v: Int) -> [UInt8] { [UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
    private func ext(_ type: Int, _ body: [UInt8]) -> [UInt8] { u16(type) + u16(body.count) + body }
    private func alpn(_ protocols: [String]) -> [UInt8] {
        let list = protocols.flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) }
        return u16(list.count) + list
    }
    private func record(_ type: UInt8, _ payload: [UInt8]) -> [UInt8] { [type, 3, 3] + u16(payload.count) + payload }

    private func clientHello(sni: String?, alpn protocols: [String], versions: [Int]) -> [UInt8] {
        var exts: [UInt8] = []
        if let sni {
            let name = Array(sni.utf8)
            let entry = [UInt8(0)] + u16(name.count) + name
            exts += ext(0, u16(entry.count) + entry)
        }
        if !protocols.isEmpty { exts += ext(16, alpn(protocols)) }
        if !versions.isEmpty {
            let list = versions.flatMap { u16($0) }
            exts += ext(43, [UInt8(list.count)] + list)
        }
        let body = u16(0x0303) + [UInt8](repeating: 7, count: 32) + [32] + [UInt8](repeating: 9, count: 32)
            + u16(4) + u16(0x1301) + u16(0x1302) + [1, 0] + u16(exts.count) + exts
        return [1] + u24(body.count) + body
    }

    private func serverHello(version: Int?, alpn selected: String?, suite: Int = 0x1301) -> [UInt8] {
        var exts: [UInt8] = []
        if let version { exts += ext(43, u16(version)) }
        if let selected { exts += ext(16, alpn([selected])) }
        let body = u16(0x0303) + [UInt8](repeating: 5, count: 32) + [32] + [UInt8](repeating: 9, count: 32)
            + u16(suite) + [0] + u16(exts.count) + exts
        return [2] + u24(body.count) + body
    }

    private func read(_ reader: inout TLSRecordReader, _ bytes: [UInt8], at t: Int64 = 0) -> [TLSRecord] {
        bytes.withUnsafeBytes { reader.consume($0, at: t) }
    }

    // MARK: Tests

    func testClientAndServerHelloSayWhatIsInTheClear() {
        var hello = TLSHello()
        XCTAssertTrue(TLSHelloParser.read(clientHello(sni: "reviews.default.svc.cluster.local",
                                                      alpn: ["istio-peer-exchange", "istio-http/1.1", "h2"],
                                                      versions: [0x0a0a, 0x0304, 0x0303]), into: &hello))
        XCTAssertTrue(TLSHelloParser.read(serverHello(version: 0x0304, alpn: nil), into: &hello))
        XCTAssertEqual(hello.serverName, "reviews.default.svc.cluster.local")
        XCTAssertEqual(hello.alpnOffered, ["istio-peer-exchange", "istio-http/1.1", "h2"])
        XCTAssertEqual(hello.versionsOffered, [0x0304, 0x0303], "GREASE values are not versions")
        XCTAssertEqual(hello.version, 0x0304)
        XCTAssertEqual(TLSHello.versionName(hello.version!), "TLS 1.3")
        XCTAssertEqual(hello.cipherSuite, 0x1301)
        XCTAssertNil(hello.alpnSelected, "TLS 1.3 sends the chosen protocol encrypted")
        XCTAssertTrue(hello.sessionEchoed)

        var twelve = TLSHello()
        TLSHelloParser.read(clientHello(sni: nil, alpn: ["h2", "http/1.1"], versions: []), into: &twelve)
        TLSHelloParser.read(serverHello(version: nil, alpn: "http/1.1", suite: 0xc02f), into: &twelve)
        XCTAssertNil(twelve.serverName)
        XCTAssertEqual(twelve.versionsOffered, [0x0303])
        XCTAssertEqual(twelve.version, 0x0303)
        XCTAssertEqual(twelve.alpnSelected, "http/1.1")
    }

    func testTruncatedOrForeignHandshakesAreRefusedNotMisread() {
        let full = clientHello(sni: "a.example", alpn: ["h2"], versions: [0x0304])
        for cut in [0, 1, 3, 4, 10, 40, full.count - 1] {
            var hello = TLSHello()
            XCTAssertFalse(TLSHelloParser.read(Array(full.prefix(cut)), into: &hello), "cut at \(cut)")
            XCTAssertNil(hello.serverName)
        }
        var hello = TLSHello()
        XCTAssertFalse(TLSHelloParser.read([11] + u24(3) + [0, 0, 0], into: &hello), "a Certificate message is not a hello")
        // An extension whose length runs past the end: the fields before it stand, nothing is invented.
        var bad = clientHello(sni: "x.example", alpn: ["h2"], versions: [])
        bad.replaceSubrange(79..<81, with: u16(500))  // the extensions' length, past the message's end
        XCTAssertTrue(TLSHelloParser.read(bad, into: &hello))
        XCTAssertEqual(hello.versionsOffered, [0x0303])
        XCTAssertNil(hello.serverName)
        XCTAssertEqual(hello.alpnOffered, [])
    }

    func testRecordsAreTheSameHoweverTheStreamIsCut() {
        let hello = clientHello(sni: "pod", alpn: ["h2"], versions: [0x0304])
        let stream = record(22, hello) + record(20, [1]) + record(23, [UInt8](repeating: 0xab, count: 700))
            + record(23, [UInt8](repeating: 0xcd, count: 3)) + record(21, [1, 0])
        var whole = TLSRecordReader()
        let expected = read(&whole, stream)
        XCTAssertEqual(expected.map(\.type), [.handshake, .changeCipherSpec, .applicationData, .applicationData, .alert])
        XCTAssertEqual(expected.map(\.length), [hello.count, 1, 700, 3, 2])
        XCTAssertEqual(expected[0].handshakePayload, hello)
        XCTAssertNil(expected[2].handshakePayload, "application data is not kept")
        for cut in 1..<stream.count {
            var r = TLSRecordReader()
            let got = read(&r, Array(stream[..<cut]), at: 1) + read(&r, Array(stream[cut...]), at: 2)
            XCTAssertEqual(got.map(\.type), expected.map(\.type), "cut at \(cut)")
            XCTAssertEqual(got.map(\.length), expected.map(\.length), "cut at \(cut)")
            XCTAssertEqual(got[0].handshakePayload, hello, "cut at \(cut)")
            XCTAssertEqual(r.skippedBytes, 0)
        }
    }

    func testAfterAGapTheReaderResumesAtTwoTrustworthyHeaders() {
        var r = TLSRecordReader()
        _ = read(&r, record(23, [UInt8](repeating: 1, count: 100)).prefix(40).map { $0 })
        r.gap()
        // The rest of the lost record's payload, then whole records.
        let tail = [UInt8](repeating: 0x17, count: 37) + [3, 3, 0xff]  // looks like a header, but its length is too long
        let next = record(23, [UInt8](repeating: 2, count: 50)) + record(23, [UInt8](repeating: 3, count: 60))
        let got = read(&r, tail + next, at: 5)
        XCTAssertEqual(got.map(\.length), [50, 60])
        XCTAssertEqual(r.skippedBytes, tail.count)
        XCTAssertEqual(r.gaps, 1)
        // Garbage that is not TLS at all is skipped, never read as records.
        var g = TLSRecordReader()
        XCTAssertEqual(read(&g, Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)).count, 0)
        XCTAssertGreaterThan(g.skippedBytes, 0)
    }

    func testApplicationDataIsCutIntoRequestAndResponseTurns() {
        func rec(_ type: TLSRecord.ContentType, _ length: Int, _ t: Int64) -> TLSRecord {
            TLSRecord(type: type, version: 0x0303, length: length, firstTimestamp: t, lastTimestamp: t + 1)
        }
        var tracker = TLSTurnTracker()
        tracker.tls13 = true
        var pairs: [TLSTurnPair] = []
        let flow: [(TLSRecord, Bool)] = [
            (rec(.handshake, 512, 0), true), (rec(.handshake, 122, 10), false), (rec(.changeCipherSpec, 1, 10), false),
            (rec(.applicationData, 2000, 11), false), (rec(.applicationData, 300, 12), false),  // encrypted handshake
            (rec(.changeCipherSpec, 1, 20), true), (rec(.applicationData, 53, 20), true),     // client Finished
            (rec(.applicationData, 120, 21), true),                                            // request 1
            (rec(.applicationData, 250, 30), false), (rec(.applicationData, 900, 31), false), // tickets + response 1
            (rec(.applicationData, 140, 40), true),                                            // request 2
            (rec(.applicationData, 16401, 50), false), (rec(.applicationData, 900, 51), false),
            (rec(.alert, 19, 60), true),
        ]
        for (r, fromClient) in flow { if let p = tracker.add(r, fromClient: fromClient) { pairs.append(p) } }
        if let p = tracker.finish() { pairs.append(p) }
        XCTAssertEqual(pairs.count, 2)
        XCTAssertEqual(tracker.serverHandshakeRecords, 2)
        XCTAssertEqual(tracker.alerts, 1)
        XCTAssertEqual(pairs[0].request.records, 2)
        XCTAssertEqual(pairs[0].request.bytes, 173)
        XCTAssertEqual(pairs[0].response?.bytes, 1150)
        XCTAssertTrue(pairs[0].includesHandshake)
        XCTAssertEqual(pairs[1].request.bytes, 140)
        XCTAssertEqual(pairs[1].response?.records, 2)
        XCTAssertEqual(pairs[1].response?.firstTimestamp, 50)
        XCTAssertEqual(pairs[1].response?.lastTimestamp, 52)
        XCTAssertFalse(pairs[1].includesHandshake)
        // A request with no answer yet is still a turn at the end, without a response.
        var open = TLSTurnTracker()
        _ = open.add(rec(.applicationData, 80, 1), fromClient: true)
        XCTAssertNil(open.finish()?.response)
    }

    // MARK: Through the analyzer: turns as encrypted exchanges

    private func appData(_ n: Int, _ fill: UInt8 = 0xee) -> [UInt8] { record(23, [UInt8](repeating: fill, count: n)) }

    /// A TLS 1.2 connection with a client certificate: the hello says SNI and ALPN in clear,
    /// each request turn and its response turn become one exchange with `tls`, however the
    /// stream is cut.
    func testTLSConnectionTurnsBecomeEncryptedExchanges() {
        let serverFlight = record(22, serverHello(version: nil, alpn: "istio-http/1.1", suite: 0xc02f)
                                      + [11] + u24(3) + [0, 0, 0] + [13] + u24(4) + [1, 1, 0, 0] + [14] + u24(0))
        let clientFlight = record(22, [11] + u24(3) + [0, 0, 0] + [16] + u24(2) + [0, 0]) + record(20, [1]) + record(22, [UInt8](repeating: 0x5a, count: 40))
        let steps: [Step] = [
            .c2sBytes(record(22, clientHello(sni: "reviews.default.svc.cluster.local", alpn: ["istio-peer-exchange", "istio-http/1.1"], versions: [])), 1_000),
            .s2cBytes(serverFlight, 2_000),
            .c2sBytes(clientFlight, 3_000),
            .s2cBytes(record(20, [1]) + record(22, [UInt8](repeating: 0x5b, count: 40)), 4_000),
            .c2sBytes(appData(300), 10_000),
            .s2cBytes(appData(1_000), 20_000),
            .s2cBytes(appData(200), 21_000),
            .c2sBytes(appData(310) + appData(90), 30_000),
            .s2cBytes(appData(640), 40_000),
            .c2sBytes(appData(50), 50_000),  // unanswered
        ]
        let r = runSplitInvariant(steps, everyCut: false)
        XCTAssertEqual(r.exchanges.count, 3, describe(r))
        XCTAssertEqual(r.exchanges.map(\.sequence), [1, 2, 3])
        XCTAssertTrue(r.exchanges.allSatisfy { $0.request == nil && $0.response == nil && $0.isEncrypted })
        let t = r.exchanges.map { $0.tls! }
        XCTAssertEqual(t[0].serverName, "reviews.default.svc.cluster.local")
        XCTAssertEqual(t[0].alpnOffered, ["istio-peer-exchange", "istio-http/1.1"])
        XCTAssertEqual(t[0].alpnSelected, "istio-http/1.1")
        XCTAssertEqual(t[0].version, "TLS 1.2")
        XCTAssertEqual(t[0].clientCertificate, true)
        XCTAssertEqual(t.map(\.requestBytes), [300, 400, 50])
        XCTAssertEqual(t.map(\.requestRecords), [1, 2, 1])
        XCTAssertEqual(t.map(\.responseBytes), [1_200, 640, 0])
        XCTAssertEqual(t[0].requestPlaintextBytes, 300 - 24, "TLS 1.2 AES-GCM: 24 bytes a record")
        XCTAssertEqual(t[0].requestFirstTimestamp, 10_000)
        XCTAssertEqual(t[0].responseFirstTimestamp, 20_000)
        XCTAssertEqual(t[0].responseLastTimestamp, 21_000)
        XCTAssertEqual(r.exchanges[0].latency, 10_000)
        XCTAssertNil(t[2].responseFirstTimestamp)
        XCTAssertFalse(t[0].includesHandshake, "TLS 1.2's handshake is all in clear")
        XCTAssertEqual(r.counters.tlsConnections, 1)
        XCTAssertEqual(r.counters.tls.turns, 3)
        XCTAssertEqual(r.counters.tls.unansweredTurns, 1)
        XCTAssertEqual(r.counters.tls.clientCertificates, 1)
        XCTAssertEqual(r.summaries.first?.kind, .tls)
        XCTAssertEqual(r.summaries.first?.requests, 3)
    }

    /// A response that pauses longer than the settle time is given out before the client's
    /// next turn (an idle keep-alive connection must not hold its last exchange back); TLS 1.3's
    /// encrypted handshake flight is not a turn.
    func testTLS13TurnsSettleWhenTheResponsePauses() {
        var out: [HTTPExchange] = []
        let analyzer = HTTPAnalyzer { out.append($0) }
        let conn = makeConnection(id: 1)
        let other = Connection(id: ConnectionID(2), client: Endpoint(IPAddress(ipv4: 0xC612_0003), 40001), server: serverEP,
                               firstTimestamp: 0, sawHandshake: true)
        analyzer.handle(.opened(conn))
        analyzer.handle(.opened(other))
        func send(_ c: Connection, _ d: FlowDirection, _ b: [UInt8], _ t: Int64) {
            b.withUnsafeBytes { analyzer.handle(.data(c.id, d, $0, first: t, last: t)) }
        }
        let ms: Int64 = 1_000_000
        send(conn, .clientToServer, record(22, clientHello(sni: "pod", alpn: ["h2", "http/1.1"], versions: [0x0304])), 0)
        send(conn, .serverToClient, record(22, serverHello(version: 0x0304, alpn: nil)) + record(20, [1]) + appData(2_000) + appData(300), 1 * ms)
        send(conn, .clientToServer, record(20, [1]) + appData(53) + appData(120), 2 * ms)
        send(conn, .serverToClient, appData(250) + appData(900), 3 * ms)
        XCTAssertTrue(out.isEmpty)
        // Another connection's traffic moves the clock on past the settle time.
        send(other, .clientToServer, Array("GET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8), 200 * ms)
        XCTAssertEqual(out.count, 1, "the first turn pair settled")
        guard out.count == 1 else { return }
        XCTAssertEqual(out[0].tls?.version, "TLS 1.3")
        XCTAssertEqual(out[0].tls?.requestBytes, 120, "the client's Finished (53 bytes under a SHA-256 suite) is handshake, not request")
        XCTAssertEqual(out[0].tls?.responseBytes, 1_150)
        XCTAssertEqual(out[0].tls?.includesHandshake, true)
        XCTAssertEqual(analyzer.counters.tls.handshakeRecords, 3, "the server's encrypted flight and the client's Finished")
        send(conn, .clientToServer, appData(140), 300 * ms)
        send(conn, .serverToClient, appData(700), 301 * ms)
        // close_notify both ways: TLS 1.3 alerts are encrypted, 19 bytes.
        send(conn, .clientToServer, appData(19), 302 * ms)
        send(conn, .serverToClient, appData(19), 302 * ms)
        analyzer.handle(.closed(conn))
        let turns = out.filter(\.isEncrypted)
        XCTAssertEqual(turns.count, 2)
        XCTAssertEqual(turns[1].sequence, 2)
        XCTAssertEqual(turns[1].tls?.includesHandshake, false)
        XCTAssertEqual(analyzer.counters.tls.settledTurns, 1)
        XCTAssertEqual(analyzer.counters.tls.alerts, 2)
    }

    /// A connection picked up mid-way whose first bytes are a record header is still read; a
    /// gap cuts the turn it falls in, and the reader resumes.
    func testMidwayTLSAndAGap() {
        let steps: [Step] = [
            .c2sBytes(appData(200), 1_000),
            .s2cBytes(appData(800), 2_000),
            .c2sBytes(appData(210), 3_000),
            .gap(.serverToClient, 500, 4_000),
            .s2cBytes(appData(100) + appData(120), 5_000),
            .c2sBytes(appData(220), 6_000),
            .s2cBytes(appData(810), 7_000),
        ]
        let r = runSplitInvariant(steps, handshake: false, everyCut: false)
        XCTAssertEqual(r.exchanges.count, 3, describe(r))
        XCTAssertTrue(r.exchanges.allSatisfy { $0.flags.contains(.midstream) && $0.tls?.serverName == nil })
        XCTAssertEqual(r.exchanges.map { $0.tls!.cutByGap }, [false, true, false])
        XCTAssertEqual(r.exchanges.map { $0.tls!.responseBytes }, [800, 220, 810], "after the gap, two headers in a row are a boundary again")
        XCTAssertEqual(r.counters.tls.skippedBytes, 0)
        XCTAssertEqual(r.counters.tls.midstreamConnections, 1)
    }

    /// A TLS 1.3 tracker (TLS_AES_128_GCM_SHA256: the client's Finished is 53 bytes) fed
    /// application-data records (length, from the client, time); the pairs it gave out, and
    /// with `finish` the one left at the end.
    private func tls13Pairs(_ flow: [(Int, Bool, Int64)], finish: Bool = true,
                            cipherSuite: UInt16 = 0x1301) -> (pairs: [TLSTurnPair], tracker: TLSTurnTracker) {
        var tracker = TLSTurnTracker()
        tracker.negotiated(version: 0x0304, cipherSuite: cipherSuite)
        var pairs: [TLSTurnPair] = []
        for (length, fromClient, t) in flow {
            let r = TLSRecord(type: .applicationData, version: 0x0303, length: length, firstTimestamp: t, lastTimestamp: t)
            if let p = tracker.add(r, fromClient: fromClient) { pairs.append(p) }
        }
        if finish, let p = tracker.finish() { pairs.append(p) }
        return (pairs, tracker)
    }

    /// TLS 1.3's first response turn opening with two small records of one size is OpenSSL's
    /// two session tickets: when they began is kept (the server completed the handshake then).
    /// Not when the two differ, when they are full-size records of a large response, or on
    /// a later turn.
    func testSessionTicketsOpeningTheFirstResponseAreTimed() {
        let tickets = tls13Pairs([
            (53, true, 1), (66, true, 2),               // the client's Finished, a GET
            (874, false, 3_000), (874, false, 3_400),   // two session tickets, 3 ms later
            (139, false, 5_000),                        // the response
            (66, true, 6_000), (874, false, 7_000), (874, false, 7_100),
        ]).pairs
        XCTAssertEqual(tickets.count, 2)
        XCTAssertEqual(tickets[0].sessionTicketsAt, 3_000)
        XCTAssertTrue(tickets[0].includesHandshake)
        XCTAssertNil(tickets[1].sessionTicketsAt, "a later turn's response is a response")
        let differ = tls13Pairs([(53, true, 1), (66, true, 2), (874, false, 3_000), (139, false, 5_000)]).pairs
        XCTAssertNil(differ[0].sessionTicketsAt)
        let large = tls13Pairs([(53, true, 1), (66, true, 2), (16_401, false, 3_000), (16_401, false, 3_100), (500, false, 3_200)]).pairs
        XCTAssertNil(large[0].sessionTicketsAt, "a large response's full records are not tickets")
    }

    /// `Expect: 100-continue` inside TLS: the server's short record between the head and the
    /// body is an interim response, and the body stays in the request turn.
    func testAHundredContinueInsideTLSKeepsTheBodyInItsTurn() {
        let flow: [(Int, Bool, Int64)] = [
            (53, true, 1),                      // the client's Finished
            (1002, false, 2), (1002, false, 3), // session tickets
            (179, true, 4),                     // PUT head, Expect: 100-continue
            (42, false, 5),                     // HTTP/1.1 100 Continue (25 + 17)
            (16401, true, 6), (3633, true, 7),  // the body
            (189, false, 8),                    // 201 Created
            (127, true, 9), (640, false, 10),   // the next request
        ]
        let pairs = tls13Pairs(flow).pairs
        XCTAssertEqual(pairs.count, 2)
        XCTAssertEqual(pairs[0].request.bytes, 179 + 16401 + 3633)
        XCTAssertEqual(pairs[0].response?.bytes, 189)
        XCTAssertEqual(pairs[0].response?.firstTimestamp, 8)
        XCTAssertTrue(pairs[0].interimResponse)
        XCTAssertFalse(pairs[1].interimResponse)
        XCTAssertEqual(pairs[1].request.bytes, 127)
    }

    // MARK: HTTP/2 inside TLS

    /// TLS 1.3 with ALPN offering both HTTP/2 and HTTP/1.1: the client's SETTINGS
    /// acknowledgement (a record of 9 bytes of plaintext among its first three) shows HTTP/2.
    /// From then on no record is a turn; the one pair given out stands for the connection.
    func testTheClientsSettingsAcknowledgementMakesTheConnectionHTTP2() {
        let flow: [(Int, Bool, Int64)] = [
            (53, true, 1),                      // the client's Finished
            (68, true, 2),                      // preface + SETTINGS (51 bytes)
            (858, false, 3), (858, false, 4),   // session tickets
            (47, false, 5),                     // the server's SETTINGS
            (26, true, 6),                      // SETTINGS ACK: 9 bytes
            (56, true, 7), (95, false, 8), (43, true, 9), (173, false, 10), (26, false, 11),
        ]
        let fed = tls13Pairs(flow, finish: false)
        let pairs = fed.pairs
        var tracker = fed.tracker
        XCTAssertNil(tracker.finish())
        XCTAssertEqual(pairs.count, 1)
        XCTAssertNotNil(pairs[0].multiplexed)
        XCTAssertTrue(pairs[0].multiplexed!.contains("SETTINGS"))
        XCTAssertEqual(pairs[0].request.records, 2)
        XCTAssertEqual(pairs[0].request.bytes, 68 + 26)
        XCTAssertEqual(pairs[0].response?.records, 3)
        XCTAssertEqual(pairs[0].request.firstTimestamp, 2)
        XCTAssertEqual(tracker.multiplexedRecords, 5)
        XCTAssertNil(tracker.responseInProgress, "nothing waits to settle")
    }

    /// A client that opens several streams at once sends their HEADERS before the server has
    /// spoken, so its acknowledgement comes after its third record: it is still the client's
    /// first record after the server's first application data (curl --parallel's records
    /// through HAProxy, Captures/mtls-h2-haproxy.pcap).
    func testTheAcknowledgementAfterSeveralStreamsStillShowsHTTP2() {
        let flow: [(Int, Bool, Int64)] = [
            (69, true, 1),                                  // the client's Finished (SHA-384)
            (81, true, 2), (77, true, 3), (45, true, 4), (38, true, 5),  // preface + SETTINGS, three HEADERS
            (1002, false, 6), (1002, false, 7),             // session tickets
            (47, false, 8),                                 // the server's SETTINGS
            (26, true, 9),                                  // SETTINGS ACK: 9 bytes, the client's fifth record
            (182, false, 10), (15347, false, 11), (182, false, 12),
        ]
        let fed = tls13Pairs(flow, finish: false, cipherSuite: 0x1302)
        let pairs = fed.pairs
        var tracker = fed.tracker
        XCTAssertNil(tracker.finish())
        XCTAssertEqual(pairs.count, 1)
        XCTAssertTrue(pairs[0].multiplexed?.contains("SETTINGS") == true)
        XCTAssertEqual(pairs[0].request.records, 5)
        XCTAssertEqual(tracker.multiplexedRecords, 3)
        // The tickets may come before the client's first record, and the SETTINGS after its
        // streams (a fresh capture of the same peers in CI): the acknowledgement still
        // follows server records.
        let ticketsFirst = tls13Pairs([
            (69, true, 1), (1002, false, 2), (1002, false, 3),
            (81, true, 4), (77, true, 5), (45, true, 6), (38, true, 7),
            (47, false, 8), (182, false, 9), (26, true, 10), (15347, false, 11),
        ], finish: false, cipherSuite: 0x1302).pairs
        XCTAssertEqual(ticketsFirst.count, 1)
        XCTAssertTrue(ticketsFirst[0].multiplexed?.contains("SETTINGS") == true)
    }

    /// HTTP/1 inside TLS 1.3 never looks like that: its requests are longer than 9 bytes, and a
    /// 9-byte record after the client's third (a chunk of an upload) is not looked at.
    func testHTTP1RecordsStayTurns() {
        let flow: [(Int, Bool, Int64)] = [
            (53, true, 1), (35, true, 2), (858, false, 3), (160, false, 4),  // GET / HTTP/1.0 (18 bytes) and its answer
            (120, true, 5), (160, false, 6),
            (200, true, 7), (26, true, 8), (160, false, 9),                   // a chunked upload's "4\r\nabcd\r\n"
        ]
        let pairs = tls13Pairs(flow).pairs
        XCTAssertEqual(pairs.count, 3)
        XCTAssertTrue(pairs.allSatisfy { $0.multiplexed == nil })
        XCTAssertEqual(pairs[2].request.bytes, 226)
    }

    /// ALPN decides as soon as it can: a server that chose h2 in clear (TLS 1.2), or a client
    /// that offered only HTTP/2 protocols (Istio's istio-h2, istio-peer-exchange aside). Through
    /// the analyzer the connection is one encrypted exchange, counted as such, however the
    /// stream is cut.
    func testALPNMakesTheConnectionOneEncryptedHTTP2Exchange() {
        var h = TLSHello()
        h.alpnOffered = ["istio-peer-exchange", "istio-h2"]
        XCTAssertNotNil(TLSConnection.http2ByALPN(h))
        // Istio's sidecars add their in-mesh marker to every offer (`istio-h2, istio` for an
        // HTTP/2 upstream): it names no HTTP version.
        h.alpnOffered = ["istio-h2", "istio"]
        XCTAssertEqual(TLSConnection.http2ByALPN(h), "the client offered only HTTP/2 in ALPN (istio-h2, istio)")
        h.alpnOffered = ["istio-peer-exchange", "istio-h2", "istio", "h2"]
        XCTAssertNotNil(TLSConnection.http2ByALPN(h))
        h.alpnOffered = ["istio-http/1.1", "istio"]
        XCTAssertNil(TLSConnection.http2ByALPN(h), "Istio's HTTP/1.1 offer")
        h.alpnOffered = ["istio"]
        XCTAssertNil(TLSConnection.http2ByALPN(h), "the marker alone names no HTTP version")
        h.alpnSelected = "istio"
        h.alpnOffered = ["istio-h2", "istio"]
        XCTAssertNotNil(TLSConnection.http2ByALPN(h), "a server that chose the marker leaves the client's offer to decide")
        h.alpnSelected = nil
        h.alpnOffered = ["istio-h2", "istio-http/1.1"]
        XCTAssertNil(TLSConnection.http2ByALPN(h), "either may be chosen, in TLS 1.3's encrypted part")
        h.alpnSelected = "h2"
        XCTAssertEqual(TLSConnection.http2ByALPN(h), "the server chose h2 in ALPN")
        h.alpnSelected = "istio-http/1.1"
        XCTAssertNil(TLSConnection.http2ByALPN(h))

        let serverFlight = record(22, serverHello(version: nil, alpn: "h2", suite: 0xc02f))
        let steps: [Step] = [
            .c2sBytes(record(22, clientHello(sni: "reviews.default.svc.cluster.local", alpn: ["h2", "http/1.1"], versions: [])), 1_000),
            .s2cBytes(serverFlight, 2_000),
            .c2sBytes(record(20, [1]) + record(22, [UInt8](repeating: 0x5a, count: 40)), 3_000),
            .s2cBytes(record(20, [1]) + record(22, [UInt8](repeating: 0x5b, count: 40)), 4_000),
            .c2sBytes(appData(300), 10_000),
            .s2cBytes(appData(1_000), 20_000),
            .c2sBytes(appData(310) + appData(90), 30_000),
            .s2cBytes(appData(640), 40_000),
        ]
        let r = runSplitInvariant(steps, everyCut: false)
        XCTAssertEqual(r.exchanges.count, 1, describe(r))
        let t = r.exchanges[0].tls!
        XCTAssertEqual(t.multiplexed, "the server chose h2 in ALPN")
        XCTAssertEqual(t.requestBytes, 300)
        XCTAssertEqual(t.requestFirstTimestamp, 10_000)
        XCTAssertEqual(r.counters.tls.turns, 0)
        XCTAssertEqual(r.counters.tls.multiplexedConnections, 1)
        XCTAssertEqual(r.counters.tls.multiplexedRecords, 4)
        XCTAssertEqual(r.summaries.first?.requests, 0)
    }
}

