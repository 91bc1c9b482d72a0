import HopCapture
import HopFlows
@testable import HopHTTP
import XCTest

/// A message is complete when its last missing byte arrives: a retransmission that fills a
/// hole after the later segments were captured sets `lastTimestamp` (responseEnd, requestEnd),
/// not the segment furthest along in the stream.
final class HTTPLateFilledGapTests: XCTestCase {
    let client = Endpoint(IPAddress(ipv4: 0xC612_0001), 40000)
    let server = Endpoint(IPAddress(ipv4: 0xC612_0002), 80)

    struct Wire {
        var fromClient: Bool
        var seq: UInt32
        var flags: TCPFlags
        var data: [UInt8] = []
        var at: Int64
    }

    func run(_ wire: [Wire]) -> [HTTPExchange] {
        var out: [HTTPExchange] = []
        let analyzer = HTTPAnalyzer { out.append($0) }
        let table = ConnectionTable(consumer: analyzer)
        for (k, w) in wire.enumerated() {
            w.data.withUnsafeBytes { p in
                table.process(TCPSegment(
                    timestamp: w.at, packetIndex: k + 1, interfaceIndex: nil, direction: nil, ipVersion: 4,
                    source: w.fromClient ? client : server, destination: w.fromClient ? server : client,
                    sequenceNumber: w.seq, acknowledgementNumber: 0, flags: w.flags, options: TCPOptions(),
                    ipIdentification: UInt16(k + 1), payload: p, payloadLength: nil))
            }
        }
        table.finish()
        analyzer.finish()
        return out
    }

    func testLateRetransmissionSetsResponseAndRequestEnd() {
        let ms: Int64 = 1_000_000
        let request = Array("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 8\r\n\r\n12345678".utf8)
        let response = Array("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nabcdefghijkl".utf8)
        let q1 = Array(request[0..<20]), q2 = Array(request[20..<40]), q3 = Array(request[40...])
        let r1 = Array(response[0..<20]), r2 = Array(response[20..<40]), r3 = Array(response[40...])
        let exchanges = run([
            Wire(fromClient: true, seq: 100, flags: .syn, at: 1 * ms),
            Wire(fromClient: false, seq: 900, flags: [.syn, .ack], at: 2 * ms),
            Wire(fromClient: true, seq: 101, flags: .ack, at: 3 * ms),
            // The request's middle segment is lost, then retransmitted at 50 ms.
            Wire(fromClient: true, seq: 101, flags: [.psh, .ack], data: q1, at: 10 * ms),
            Wire(fromClient: true, seq: 141, flags: [.psh, .ack], data: q3, at: 11 * ms),
            Wire(fromClient: true, seq: 121, flags: [.psh, .ack], data: q2, at: 50 * ms),
            // The response's middle segment arrives 100 ms after its last one.
            Wire(fromClient: false, seq: 901, flags: [.psh, .ack], data: r1, at: 60 * ms),
            Wire(fromClient: false, seq: 941, flags: [.psh, .ack], data: r3, at: 61 * ms),
            // A duplicate of the first segment changes nothing.
            Wire(fromClient: false, seq: 901, flags: [.psh, .ack], data: r1, at: 90 * ms),
            Wire(fromClient: false, seq: 921, flags: [.psh, .ack], data: r2, at: 161 * ms),
        ])
        XCTAssertEqual(exchanges.count, 1)
        let x = try! XCTUnwrap(exchanges.first)
        XCTAssertEqual(x.request?.firstTimestamp, 10 * ms)
        XCTAssertEqual(x.request?.lastTimestamp, 50 * ms, "requestEnd: the retransmission completed the request")
        XCTAssertEqual(x.request?.bodyLength, 8)
        XCTAssertEqual(x.response?.firstTimestamp, 60 * ms)
        XCTAssertEqual(x.response?.lastTimestamp, 161 * ms, "responseEnd: the retransmission completed the response")
        XCTAssertEqual(x.response?.bodyLength, 12)
        XCTAssertEqual(x.response?.complete, true)
    }
}
