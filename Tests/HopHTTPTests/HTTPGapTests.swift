import HopCapture
import HopFlows
@testable import HopHTTP
import XCTest

final class HTTPGapTests: XCTestCase {
    /// A one-at-a-time client: request i at i*1000 ns, response i at i*1000+500, response
    /// `lost` replaced by a gap of its exact length.
    func sequentialConversation(count: Int, lost: Set<Int>, bodies: Bool = true) -> [Step] {
        var steps: [Step] = []
        for i in 1...count {
            steps.append(.c2s(getRequest("/\(i)"), Int64(i) * 1000))
            let resp = okResponse(i, body: bodies ? String(repeating: "x", count: i % 17) : "")
            if lost.contains(i) {
                // The reassembler reports the hole when the next data arrives.
                steps.append(.gap(.serverToClient, resp.utf8.count, Int64(i + 1) * 1000 + 500))
            } else {
                steps.append(.s2c(resp, Int64(i) * 1000 + 500))
            }
        }
        return steps
    }

    func assertPairedBySequence(_ r: RunResult, count: Int, lost: Set<Int>, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.exchanges.count, count, file: file, line: line)
        for (k, x) in r.exchanges.enumerated() {
            let i = k + 1
            XCTAssertEqual(x.sequence, i, file: file, line: line)
            XCTAssertEqual(x.request?.target, "/\(i)", file: file, line: line)
            if lost.contains(i) {
                XCTAssertNil(x.response, "exchange \(i)", file: file, line: line)
                XCTAssertTrue(x.flags.contains(.lostInGap), "exchange \(i) \(x.flags)", file: file, line: line)
            } else {
                XCTAssertEqual(x.response?.headers["x-seq"], "\(i)", "exchange \(i)", file: file, line: line)
            }
        }
        XCTAssertEqual(r.counters.requests, count, file: file, line: line)
        XCTAssertEqual(r.counters.responses, count - lost.count, file: file, line: line)
        XCTAssertEqual(r.counters.unansweredRequests, lost.count, file: file, line: line)
        XCTAssertEqual(r.counters.lostInGap, lost.count, file: file, line: line)
        XCTAssertEqual(r.counters.pairedExchanges, count - lost.count, file: file, line: line)
        XCTAssertEqual(r.counters.responsesWithoutRequest, 0, file: file, line: line)
    }

    func testOneResponseLostInGapKeepsPairing() {
        let r = runSplitInvariant(sequentialConversation(count: 20, lost: [7]), everyCut: false)
        assertPairedBySequence(r, count: 20, lost: [7])
        XCTAssertEqual(r.counters.resyncsAfterGap, 1)
        XCTAssertEqual(r.exchanges[7].flags, [.responseAfterGap])
        XCTAssertEqual(r.exchanges[6].flags, [.lostInGap])
        XCTAssertEqual(r.counters.pipelinedRequests, 1)  // /8 was sent while /7 looked outstanding
    }

    func testThousandRequestsOneDroppedResponse() {
        let r = feed(sequentialConversation(count: 1000, lost: [500]))
        assertPairedBySequence(r, count: 1000, lost: [500])
    }

    func testLastResponseLostIsUnansweredLostInGap() {
        var steps = sequentialConversation(count: 5, lost: [])
        steps[steps.count - 1] = .gap(.serverToClient, 100, 5600)
        let r = runSplitInvariant(steps, everyCut: false)
        XCTAssertEqual(r.exchanges.count, 5)
        XCTAssertNil(r.exchanges[4].response)
        XCTAssertEqual(r.exchanges[4].flags, [.lostInGap])
        XCTAssertEqual(r.counters.unansweredRequests, 1)
        XCTAssertEqual(r.counters.lostInGap, 1)
    }

    func testGapAcrossTwoResponsesAndPartOfTheirNeighbours() {
        // Response 6 loses its last 3 body bytes, 7 and 8 are lost, 9 loses its head: the
        // stream resynchronises at response 10.
        var steps: [Step] = []
        for i in 1...12 {
            steps.append(.c2s(getRequest("/\(i)"), Int64(i) * 1000))
            let resp = okResponse(i, body: "0123456789")
            switch i {
            case 6: steps.append(.s2cBytes(Array(resp.utf8.dropLast(3)), Int64(i) * 1000 + 500))
            case 7, 8: break
            case 9:
                let lostLen = 3 + okResponse(7, body: "0123456789").utf8.count + okResponse(8, body: "0123456789").utf8.count + 20
                steps.append(.gap(.serverToClient, lostLen, 9500))
                steps.append(.s2cBytes(Array(resp.utf8.dropFirst(20)), 9500))
            default: steps.append(.s2c(resp, Int64(i) * 1000 + 500))
            }
        }
        let r = runSplitInvariant(steps, everyCut: false)
        XCTAssertEqual(r.exchanges.count, 12, describe(r))
        XCTAssertEqual(r.exchanges[5].response?.headers["x-seq"], "6")
        XCTAssertEqual(r.exchanges[5].response?.bodyLength, 7)
        XCTAssertEqual(r.exchanges[5].response?.bodyMissing, 3)
        XCTAssertEqual(r.exchanges[5].response?.complete, true)
        XCTAssertEqual(r.exchanges[5].flags, [.responseAfterGap])
        for k in [6, 7, 8] {
            XCTAssertNil(r.exchanges[k].response, "\(k + 1)")
            XCTAssertEqual(r.exchanges[k].flags, [.lostInGap], "\(k + 1)")
        }
        XCTAssertEqual(r.exchanges[9].response?.headers["x-seq"], "10")
        XCTAssertEqual(r.exchanges[9].flags, [.responseAfterGap])
        XCTAssertEqual(r.exchanges[10].response?.headers["x-seq"], "11")
        XCTAssertEqual(r.exchanges[11].response?.headers["x-seq"], "12")
        XCTAssertEqual(r.counters.lostInGap, 3)
        XCTAssertEqual(r.counters.resyncsAfterGap, 1)
        XCTAssertEqual(r.counters.bodiesTruncatedByGap, 1)
    }

    func testGapInsideContentLengthBodyKeepsFraming() {
        let body = String(repeating: "a", count: 100)
        let resp = okResponse(1, body: body)
        let head = resp.utf8.count - 100
        let r = runSplitInvariant([
            .c2s(getRequest("/1") + getRequest("/2"), 10),
            .s2cBytes(Array(resp.utf8.prefix(head + 30)), 20),
            .gap(.serverToClient, 40, 30),
            .s2c(String(repeating: "a", count: 30) + okResponse(2, body: "tail"), 40),
        ])
        XCTAssertEqual(r.exchanges.count, 2)
        let p = r.exchanges[0].response!
        XCTAssertEqual(p.bodyLength, 60)
        XCTAssertEqual(p.bodyMissing, 40)
        XCTAssertTrue(p.complete)
        XCTAssertEqual(p.lastTimestamp, 40)
        XCTAssertEqual(r.exchanges[0].flags, [.responseAfterGap])
        XCTAssertEqual(r.exchanges[1].response?.headers["x-seq"], "2")
        XCTAssertEqual(r.exchanges[1].response?.bodyLength, 4)
        XCTAssertEqual(r.exchanges[1].flags, [])
        XCTAssertEqual(r.counters.bodiesTruncatedByGap, 1)
        XCTAssertEqual(r.counters.gapsInsideMessages, 1)
        XCTAssertEqual(r.counters.resyncsAfterGap, 0)
        XCTAssertEqual(r.counters.resyncSkippedBytes, 0)
    }

    func testGapInChunkedBodyForcesResync() {
        // The gap spans the end of chunk 1 and the size line of chunk 2.
        let r = runSplitInvariant([
            .c2s(getRequest("/1"), 10),
            .s2c("HTTP/1.1 200 OK\r\nX-Seq: 1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456", 20),
            .gap(.serverToClient, 9 + 2 + 4, 35),
            .s2c("abcd\r\n0\r\n\r\n", 35),
            .c2s(getRequest("/2"), 40),
            .s2c(okResponse(2, body: "ok"), 50),
        ])
        XCTAssertEqual(r.exchanges.count, 2, describe(r))
        let p = r.exchanges[0].response!
        XCTAssertEqual(p.bodyLength, 7)
        XCTAssertEqual(p.bodyMissing, 9)
        XCTAssertFalse(p.complete)
        XCTAssertEqual(r.exchanges[0].flags, [.responseIncomplete, .responseAfterGap])
        XCTAssertEqual(r.exchanges[1].response?.headers["x-seq"], "2")
        XCTAssertEqual(r.exchanges[1].flags, [.responseAfterGap])
        XCTAssertEqual(r.counters.resyncsAfterGap, 1)
        XCTAssertEqual(r.counters.resyncSkippedBytes, Int64("abcd\r\n0\r\n\r\n".utf8.count))
    }

    func testGapInsideChunkDataKeepsFraming() {
        let r = runSplitInvariant([
            .c2s(getRequest("/1"), 10),
            .s2c("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123", 20),
            .gap(.serverToClient, 8, 30),
            .s2c("cdef\r\n0\r\n\r\n" + okResponse(2), 40),
            .c2s(getRequest("/2"), 5),
        ])
        XCTAssertEqual(r.exchanges.count, 2, describe(r))
        XCTAssertEqual(r.exchanges[0].response?.bodyLength, 8)
        XCTAssertEqual(r.exchanges[0].response?.bodyMissing, 8)
        XCTAssertEqual(r.exchanges[0].response?.complete, true)
        XCTAssertEqual(r.exchanges[1].response?.headers["x-seq"], "2")
        XCTAssertEqual(r.counters.resyncsAfterGap, 0)
    }

    func testGapInRequestStreamResyncsAndResponseIsOrphan() {
        let r2 = "POST /2 HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\n0123456789"
        let r = runSplitInvariant([
            .c2s(getRequest("/1"), 1000),
            .s2c(okResponse(1), 1500),
            // Request 2 loses everything but its last 4 body bytes.
            .gap(.clientToServer, r2.utf8.count - 4, 2000),
            .c2s("6789", 2000),
            .s2c(okResponse(2), 2500),
            .c2s(getRequest("/3"), 3000),
            .s2c(okResponse(3), 3500),
        ])
        XCTAssertEqual(r.exchanges.map(\.sequence), [1, 2, 3], describe(r))
        XCTAssertEqual(r.exchanges[0].request?.target, "/1")
        XCTAssertNil(r.exchanges[1].request)
        XCTAssertEqual(r.exchanges[1].response?.headers["x-seq"], "2")
        XCTAssertEqual(r.exchanges[1].flags, [.responseWithoutRequest])
        XCTAssertEqual(r.exchanges[2].request?.target, "/3")
        XCTAssertEqual(r.exchanges[2].response?.headers["x-seq"], "3")
        XCTAssertEqual(r.exchanges[2].flags, [.requestAfterGap])
        XCTAssertEqual(r.counters.responsesWithoutRequest, 1)
        XCTAssertEqual(r.counters.resyncsAfterGap, 1)
        XCTAssertEqual(r.counters.resyncSkippedBytes, 4)
    }

    func testGapInsideRequestHeadKeepsTheStartLine() {
        let r = runSplitInvariant([
            .c2s("GET /cut HTTP/1.1\r\nHost: a\r\nUser-Ag", 1000),
            .gap(.clientToServer, 30, 1100),
            .c2s("xx\r\n\r\n" + getRequest("/next"), 1100),
            .s2c(okResponse(1) + okResponse(2), 1500),
        ])
        XCTAssertEqual(r.exchanges.count, 2, describe(r))
        XCTAssertEqual(r.exchanges[0].request?.target, "/cut")
        XCTAssertEqual(r.exchanges[0].request?.headers.pairs.map(\.name), ["Host"])
        XCTAssertEqual(r.exchanges[0].flags, [.requestIncomplete])
        XCTAssertEqual(r.exchanges[0].response?.headers["x-seq"], "1")
        XCTAssertEqual(r.exchanges[1].request?.target, "/next")
        XCTAssertEqual(r.exchanges[1].response?.headers["x-seq"], "2")
        XCTAssertEqual(r.counters.gapsInsideMessages, 1)
    }

    func testResponseSeenBeforeItsRequestIsPairedByTime() {
        // Reassembly delivered the response first (the request waited for a retransmission),
        // but the request's capture time is earlier.
        let r = runSplitInvariant([
            .s2c(okResponse(1, body: "abc"), 200),
            .c2s(getRequest("/late"), 100),
            .c2s(getRequest("/2"), 300),
            .s2c(okResponse(2), 400),
        ])
        XCTAssertEqual(r.exchanges.count, 2, describe(r))
        XCTAssertEqual(r.exchanges[0].request?.target, "/late")
        XCTAssertEqual(r.exchanges[0].response?.headers["x-seq"], "1")
        XCTAssertEqual(r.exchanges[1].request?.target, "/2")
        XCTAssertEqual(r.exchanges[1].response?.headers["x-seq"], "2")
        XCTAssertEqual(r.counters.responsesWithoutRequest, 0)
    }

    func testMidstreamPickup() {
        let r = runSplitInvariant([
            .c2s("ody-of-an-earlier-request\r\n" + getRequest("/found"), 1000),
            .s2c("...tail of a response\r\nHTTP/1.1 is not\r\n" + okResponse(9), 1500),
        ], handshake: false)
        XCTAssertEqual(r.exchanges.count, 1, describe(r))
        XCTAssertEqual(r.exchanges[0].request?.target, "/found")
        XCTAssertEqual(r.exchanges[0].response?.headers["x-seq"], "9")
        XCTAssertEqual(r.exchanges[0].flags, [.midstream])
        XCTAssertEqual(r.counters.midstreamConnections, 1)
        XCTAssertEqual(r.counters.resyncsAfterGap, 0)
        XCTAssertEqual(r.summaries.map(\.kind), [.http])
    }

    func testMidstreamWithoutHTTPIsUnknown() {
        let r = runSplitInvariant([.c2s("\u{1}\u{2}binary\nstuff", 10)], handshake: false)
        XCTAssertEqual(r.exchanges.count, 0)
        XCTAssertEqual(r.counters.unknownConnections, 1)
        XCTAssertEqual(r.summaries.map(\.kind), [.unknown])
    }

    func testParseErrorResyncs() {
        let r = runSplitInvariant([
            .c2s(getRequest("/1") + getRequest("/2"), 10),
            .s2c("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\njunk\r\n" + okResponse(2), 20),
        ])
        XCTAssertEqual(r.exchanges.count, 2, describe(r))
        XCTAssertEqual(r.exchanges[0].flags, [.responseIncomplete, .responseMalformed])
        XCTAssertEqual(r.exchanges[1].response?.headers["x-seq"], "2")
        XCTAssertEqual(r.counters[.badChunkSize], 1)
        XCTAssertEqual(r.counters.resyncsAfterError, 1)
    }

    func testHeaderSizeLimit() {
        var config = HTTPConfiguration()
        config.maxHeaderBytes = 256
        let big = "GET /big HTTP/1.1\r\nHost: a\r\nCookie: " + String(repeating: "c", count: 1000) + "\r\nAccept: */*\r\n\r\n"
        let r = runSplitInvariant([
            .c2s(big + getRequest("/next"), 10),
            .s2c(okResponse(1) + okResponse(2), 20),
        ], configuration: config, everyCut: false)
        XCTAssertEqual(r.exchanges.count, 2, describe(r))
        XCTAssertEqual(r.exchanges[0].request?.target, "/big")
        XCTAssertEqual(r.exchanges[0].request?.headers.pairs.map(\.name), ["Host"])
        XCTAssertEqual(r.exchanges[0].flags, [.requestIncomplete, .requestMalformed, .headerLimitExceeded])
        XCTAssertEqual(r.exchanges[0].response?.headers["x-seq"], "1")
        XCTAssertEqual(r.exchanges[1].request?.target, "/next")
        XCTAssertEqual(r.exchanges[1].response?.headers["x-seq"], "2")
        XCTAssertEqual(r.counters.headerLimitHits, 1)
        XCTAssertEqual(r.counters.resyncsAfterError, 1)
    }

    func testConflictingContentLengthAndSmugglingIndicator() {
        let r = runSplitInvariant([
            .c2s("POST /a HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 10),
            .s2c(okResponse(1), 20),
            .c2s("POST /b HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd" + getRequest("/c"), 30),
            .s2c(okResponse(2) + okResponse(3), 40),
        ])
        XCTAssertEqual(r.exchanges.count, 3, describe(r))
        XCTAssertEqual(r.exchanges[0].request?.framing, .chunked)
        XCTAssertEqual(r.exchanges[0].request?.bodyLength, 3)
        XCTAssertEqual(r.exchanges[0].flags, [.transferEncodingAndContentLength])
        XCTAssertEqual(r.exchanges[1].flags, [.requestIncomplete, .requestMalformed])
        XCTAssertEqual(r.exchanges[2].request?.target, "/c")
        XCTAssertEqual(r.exchanges[2].response?.headers["x-seq"], "3")
        XCTAssertEqual(r.counters.transferEncodingAndContentLength, 1)
        XCTAssertEqual(r.counters[.conflictingContentLength], 1)
    }
}

final class HTTPPipelinedGapTests: XCTestCase {
    func testPipelinedFirstResponseLostAtBoundary() {
        // Three requests in one segment; the first response is lost whole (the gap starts at a
        // message boundary): the second response answers the second request.
        let first = okResponse(1, body: "one")
        let r = runSplitInvariant([
            .c2s(getRequest("/1") + getRequest("/2") + getRequest("/3"), 1000),
            .gap(.serverToClient, first.utf8.count, 1500),
            .s2c(okResponse(2, body: "two") + okResponse(3, body: "three"), 1500),
        ])
        XCTAssertEqual(r.exchanges.count, 3, describe(r))
        XCTAssertNil(r.exchanges[0].response)
        XCTAssertEqual(r.exchanges[0].flags, [.lostInGap])
        XCTAssertEqual(r.exchanges[1].response?.headers["x-seq"], "2")
        XCTAssertEqual(r.exchanges[1].flags, [.responseAfterGap])
        XCTAssertEqual(r.exchanges[2].response?.headers["x-seq"], "3")
        XCTAssertEqual(r.exchanges.map(\.pipelinePosition), [0, 1, 2])
        XCTAssertEqual(r.counters.lostInGap, 1)
    }

    func testPipelinedGapInsideChunkedBodyKeepsPairing() {
        // The gap cuts the first (chunked) response, whose head was seen: nothing else is lost.
        let r = runSplitInvariant([
            .c2s(getRequest("/1") + getRequest("/2"), 1000),
            .s2c("HTTP/1.1 200 OK\r\nX-Seq: 1\r\nTransfer-Encoding: chunked\r\n\r\n8\r\nab", 1500),
            .gap(.serverToClient, 6 + 2 + 5, 1600),
            .s2c(okResponse(2, body: "two"), 1600),
        ])
        XCTAssertEqual(r.exchanges.count, 2, describe(r))
        XCTAssertEqual(r.exchanges[0].response?.headers["x-seq"], "1")
        XCTAssertEqual(r.exchanges[0].flags, [.responseIncomplete, .responseAfterGap])
        XCTAssertEqual(r.exchanges[1].response?.headers["x-seq"], "2")
        XCTAssertEqual(r.counters.lostInGap, 0)
        XCTAssertEqual(r.counters.resyncsAfterGap, 1)
    }
}
