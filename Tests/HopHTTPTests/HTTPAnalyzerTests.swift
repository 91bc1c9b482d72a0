import HopCapture
import HopFlows
@testable import HopHTTP
import XCTest

final class HTTPAnalyzerTests: XCTestCase {
    func testSimpleExchangeExactValues() {
        let r = runSplitInvariant([
            .c2s("GET /index.html?q=1 HTTP/1.1\r\nHost: Example.test\r\nAccept: */*\r\nX-Dup: a\r\nx-dup: b\r\n\r\n", 100),
            .s2c("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello", 200),
        ])
        XCTAssertEqual(r.exchanges.count, 1)
        let x = r.exchanges[0]
        XCTAssertEqual(x.connection.id, ConnectionID(1))
        XCTAssertEqual(x.connection.client, clientEP)
        XCTAssertEqual(x.sequence, 1)
        XCTAssertEqual(x.flags, [])
        XCTAssertEqual(x.pipelinePosition, 0)
        let q = try! XCTUnwrap(x.request)
        XCTAssertEqual(q.method, "GET")
        XCTAssertEqual(q.target, "/index.html?q=1")
        XCTAssertEqual(q.version, .http11)
        XCTAssertEqual(q.host, "Example.test")
        XCTAssertEqual(q.headers.pairs.map(\.name), ["Host", "Accept", "X-Dup", "x-dup"])
        XCTAssertEqual(q.headers.values(for: "X-DUP"), ["a", "b"])
        XCTAssertEqual(q.headers["x-dup"], "a")
        XCTAssertEqual(q.bodyLength, 0)
        XCTAssertEqual(q.framing, .none)
        XCTAssertTrue(q.complete)
        XCTAssertEqual(q.firstTimestamp, 100)
        XCTAssertEqual(q.lastTimestamp, 100)
        let p = try! XCTUnwrap(x.response)
        XCTAssertEqual(p.status, 200)
        XCTAssertEqual(p.reason, "OK")
        XCTAssertEqual(p.headers["content-type"], "text/plain")
        XCTAssertEqual(p.bodyLength, 5)
        XCTAssertEqual(p.framing, .contentLength(5))
        XCTAssertTrue(p.complete)
        XCTAssertEqual(p.firstTimestamp, 200)
        XCTAssertEqual(x.latency, 100)
        XCTAssertTrue(x.keepAlive)
        XCTAssertEqual(r.counters.requests, 1)
        XCTAssertEqual(r.counters.responses, 1)
        XCTAssertEqual(r.counters.exchanges, 1)
        XCTAssertEqual(r.counters.pairedExchanges, 1)
        XCTAssertEqual(r.counters.httpConnections, 1)
        XCTAssertEqual(r.counters.parseErrorsTotal, 0)
        XCTAssertEqual(r.summaries.map(\.kind), [.http])
    }

    func testHeadResponseWithContentLengthIsBodiless() {
        let r = runSplitInvariant([
            .c2s("HEAD /big HTTP/1.1\r\nHost: a\r\n\r\nGET /small HTTP/1.1\r\nHost: a\r\n\r\n", 10),
            .s2c("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 20),
        ])
        XCTAssertEqual(r.exchanges.count, 2)
        XCTAssertEqual(r.exchanges[0].request?.method, "HEAD")
        XCTAssertEqual(r.exchanges[0].response?.framing, HTTPBodyFraming.none)
        XCTAssertEqual(r.exchanges[0].response?.bodyLength, 0)
        XCTAssertEqual(r.exchanges[0].response?.headers["Content-Length"], "1234")
        XCTAssertEqual(r.exchanges[1].request?.target, "/small")
        XCTAssertEqual(r.exchanges[1].response?.bodyLength, 5)
        XCTAssertEqual(r.exchanges[1].pipelinePosition, 1)
        XCTAssertEqual(r.counters.headResponses, 1)
        XCTAssertEqual(r.counters.parseErrorsTotal, 0)
        XCTAssertEqual(r.counters.resyncsAfterError, 0)
    }

    func testChunkedWithExtensionsAndTrailers() {
        let body = "5;ext=1\r\nhello\r\n6 ; name=\"x\"\r\n world\r\nA\r\n0123456789\r\n0;last\r\nX-Checksum: abc\r\nX-Other: d\r\n\r\n"
        let r = runSplitInvariant([
            .c2s("POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + body, 10),
            .s2c("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 20),
            .c2s(getRequest("/next"), 30),
            .s2c(okResponse(2, body: "xy"), 40),
        ])
        XCTAssertEqual(r.exchanges.count, 2)
        let q = r.exchanges[0].request!
        XCTAssertEqual(q.framing, .chunked)
        XCTAssertEqual(q.bodyLength, 21)
        XCTAssertTrue(q.complete)
        XCTAssertEqual(q.trailers.pairs.map(\.name), ["X-Checksum", "X-Other"])
        XCTAssertEqual(q.trailers["x-checksum"], "abc")
        let p = r.exchanges[0].response!
        XCTAssertEqual(p.framing, .chunked)
        XCTAssertEqual(p.bodyLength, 3)
        XCTAssertEqual(p.trailers.count, 0)
        XCTAssertEqual(r.exchanges[1].request?.target, "/next")
        XCTAssertEqual(r.exchanges[1].response?.headers["x-seq"], "2")
        XCTAssertEqual(r.exchanges[1].response?.bodyLength, 2)
        XCTAssertEqual(r.counters.chunkedMessages, 2)
        XCTAssertEqual(r.counters.parseErrorsTotal, 0)
    }

    func testThreePipelinedRequests() {
        let r = runSplitInvariant([
            .c2s(getRequest("/a") + getRequest("/b") + "POST /c HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz", 10),
            .s2c(okResponse(1, body: "A") + okResponse(2, body: "BB") + okResponse(3, body: "CCC"), 20),
        ])
        XCTAssertEqual(r.exchanges.map(\.sequence), [1, 2, 3])
        XCTAssertEqual(r.exchanges.map { $0.request!.target }, ["/a", "/b", "/c"])
        XCTAssertEqual(r.exchanges.map { $0.response!.headers["X-Seq"]! }, ["1", "2", "3"])
        XCTAssertEqual(r.exchanges.map { $0.response!.bodyLength }, [1, 2, 3])
        XCTAssertEqual(r.exchanges.map(\.pipelinePosition), [0, 1, 2])
        XCTAssertEqual(r.exchanges[2].request?.bodyLength, 3)
        XCTAssertEqual(r.counters.pipelinedRequests, 2)
        XCTAssertEqual(r.counters.pairedExchanges, 3)
    }

    func testContinueInterimResponse() {
        let r = runSplitInvariant([
            .c2s("PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n", 10),
            .s2c("HTTP/1.1 100 Continue\r\n\r\n", 20),
            .c2s("data", 30),
            .s2c("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", 40),
            .c2s(getRequest("/after"), 50),
            .s2c(okResponse(2), 60),
        ])
        XCTAssertEqual(r.exchanges.count, 2)
        let x = r.exchanges[0]
        XCTAssertEqual(x.request?.bodyLength, 4)
        XCTAssertEqual(x.request?.lastTimestamp, 30)
        XCTAssertEqual(x.response?.status, 201)
        XCTAssertEqual(x.response?.interim.map(\.status), [100])
        XCTAssertEqual(x.response?.interim.first?.reason, "Continue")
        XCTAssertEqual(x.response?.interim.first?.firstTimestamp, 20)
        XCTAssertEqual(x.response?.firstTimestamp, 40)
        XCTAssertEqual(r.exchanges[1].request?.target, "/after")
        XCTAssertEqual(r.exchanges[1].response?.headers["x-seq"], "2")
        XCTAssertEqual(r.counters.continueResponses, 1)
        XCTAssertEqual(r.counters.responses, 2)
    }

    func test204And304HaveNoBody() {
        let r = runSplitInvariant([
            .c2s(getRequest("/1") + getRequest("/2") + getRequest("/3"), 10),
            .s2c("HTTP/1.1 204 No Content\r\n\r\n"
                + "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\nETag: \"x\"\r\n\r\n"
                + okResponse(3, body: "0123456789"), 20),
        ])
        XCTAssertEqual(r.exchanges.map { $0.response!.status }, [204, 304, 200])
        XCTAssertEqual(r.exchanges.map { $0.response!.bodyLength }, [0, 0, 10])
        XCTAssertEqual(r.exchanges.map { $0.response!.framing }, [.none, .none, .contentLength(10)])
        XCTAssertEqual(r.counters.parseErrorsTotal, 0)
    }

    func testCloseDelimitedResponse() {
        let steps: [Step] = [
            .c2s(getRequest("/stream"), 10),
            .s2c("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nsome bytes", 20),
            .s2c(" and more\r\nHTTP/1.1 200 not a response\r\n", 30),
        ]
        let r = runSplitInvariant(steps, close: .fin)
        XCTAssertEqual(r.exchanges.count, 1)
        let p = r.exchanges[0].response!
        XCTAssertEqual(p.framing, .untilClose)
        XCTAssertEqual(p.bodyLength, Int64("some bytes".utf8.count + " and more\r\nHTTP/1.1 200 not a response\r\n".utf8.count))
        XCTAssertEqual(p.bodyLength, 50)
        XCTAssertTrue(p.complete)
        XCTAssertEqual(p.lastTimestamp, 30)
        XCTAssertFalse(r.exchanges[0].keepAlive)
        XCTAssertEqual(r.counters.closeDelimitedResponses, 1)
        XCTAssertEqual(r.counters.responses, 1)
        // The capture ended with the connection open: the body may be cut.
        let open = feed(steps, close: nil)
        XCTAssertEqual(open.exchanges.count, 1)
        XCTAssertEqual(open.exchanges[0].response?.complete, false)
        XCTAssertEqual(open.exchanges[0].flags, [.responseIncomplete])
        XCTAssertEqual(open.counters.incompleteResponses, 1)
    }

    func testHTTP10KeepAliveRules() {
        let r = runSplitInvariant([
            .c2s("GET / HTTP/1.0\r\n\r\n", 10),
            .s2c("HTTP/1.0 200 OK\r\nServer: old\r\n\r\n<html>body</html>", 20),
        ])
        XCTAssertEqual(r.exchanges.count, 1)
        XCTAssertEqual(r.exchanges[0].request?.version, .http10)
        XCTAssertEqual(r.exchanges[0].response?.version, .http10)
        XCTAssertEqual(r.exchanges[0].response?.bodyLength, 17)
        XCTAssertEqual(r.exchanges[0].response?.framing, .untilClose)
        XCTAssertFalse(r.exchanges[0].keepAlive)

        let k = runSplitInvariant([
            .c2s("GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 10),
            .s2c("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok", 20),
            .c2s("GET /2 HTTP/1.1\r\nConnection: close\r\n\r\n", 30),
            .s2c("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", 40),
        ])
        XCTAssertEqual(k.exchanges.map(\.keepAlive), [true, false])
        XCTAssertEqual(k.exchanges.map { $0.request!.target }, ["/1", "/2"])
    }

    func testObsFoldAndHeaderOddities() {
        let r = runSplitInvariant([
            .c2s("GET / HTTP/1.1\r\nX-Long: a\r\n  b\r\n\tc \r\nHost:a.test\r\nBroken line\r\nX-Empty:\r\n\r\n", 10),
            .s2c("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", 20),
        ])
        let q = r.exchanges[0].request!
        XCTAssertEqual(q.headers["x-long"], "a b c")
        XCTAssertEqual(q.headers["HOST"], "a.test")
        XCTAssertEqual(q.headers["x-empty"], "")
        XCTAssertEqual(q.headers.count, 3)
        XCTAssertEqual(r.exchanges[0].response?.reason, "")
        XCTAssertEqual(r.counters.obsFoldedHeaders, 2)
        XCTAssertEqual(r.counters[.badHeaderLine], 1)
    }

    func testBareLFLineEndingsAndLeadingEmptyLines() {
        let r = runSplitInvariant([
            .c2s("\r\n\r\nGET /lf HTTP/1.1\nHost: a\n\n", 10),
            .s2c("HTTP/1.1 200 OK\nContent-Length: 3\n\nabc", 20),
        ])
        XCTAssertEqual(r.exchanges.count, 1)
        XCTAssertEqual(r.exchanges[0].request?.target, "/lf")
        XCTAssertEqual(r.exchanges[0].response?.bodyLength, 3)
        XCTAssertEqual(r.counters.parseErrorsTotal, 0)
    }
}
