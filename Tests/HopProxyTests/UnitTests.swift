import NIOCore
import XCTest

@testable import HopProxy

/// The proxy's pure parts: protocol sniffing, request ids, JSON lines, routing, the uid rule.
final class ProxyUnitTests: XCTestCase {
    func testSniffing() {
        XCTAssertEqual(sniff(Array("GET / HTTP/1.1\r\n".utf8)), .http)
        XCTAssertEqual(sniff(Array("PROPFIND /x".utf8)), .http)
        XCTAssertEqual(sniff(Array("GE".utf8)), .needMore)
        XCTAssertEqual(sniff([UInt8]()), .needMore)
        XCTAssertEqual(sniff(Array("get / HTTP/1.1".utf8)), .raw)
        XCTAssertEqual(sniff([0x16, 0x03, 0x01, 0x02]), .raw, "TLS ClientHello")
        XCTAssertEqual(sniff(Array("PRI * HTTP/2.0\r\n".utf8)), .raw, "HTTP/2 preface")
        XCTAssertEqual(sniff(Array(" GET".utf8)), .raw)
        XCTAssertEqual(sniff(Array(repeating: UInt8(ascii: "A"), count: 30)), .raw)
    }

    func testRequestIDsAreVersion4UUIDs() {
        var seen = Set<String>()
        for _ in 0..<200 {
            let id = RequestID.make()
            XCTAssertTrue(ProxyLabTests.isUUIDv4(id), id)
            seen.insert(id)
        }
        XCTAssertEqual(seen.count, 200)
    }

    func testGeneratedRequestIDsAreWrittenTheSameEverywhere() throws {
        var rng = SystemRandomNumberGenerator()
        let id = UUIDv4(using: &rng)
        XCTAssertTrue(ProxyLabTests.isUUIDv4(id.text), id.text)
        // Into a forwarded head, as bytes.
        var buffer = ByteBuffer()
        buffer.writeUUID(id)
        XCTAssertEqual(buffer.readString(length: buffer.readableBytes), id.text)
        // Into the access log, without a string in between; a given id is escaped as any string.
        var record = AccessRecord()
        record.requestIDValue = .generated(id)
        XCTAssertEqual(record.requestID, id.text)
        let line = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(record.line().utf8)) as? [String: Any])
        XCTAssertEqual(line["requestId"] as? String, id.text)
        record.requestID = "given \"one\""
        let given = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(record.line().utf8)) as? [String: Any])
        XCTAssertEqual(given["requestId"] as? String, "given \"one\"")
        record.requestIDValue = nil
        let none = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(record.line().utf8)) as? [String: Any])
        XCTAssertTrue(none["requestId"] is NSNull)
    }

    func testJSONLineEscapesAndFormats() throws {
        var j = JSONLine()
        j.add("s", "a\"b\\c\nd\u{1}é")
        j.add("n", nil as String?)
        j.add("i", 42)
        j.add("ms", milliseconds: 1_234_567)
        j.add("b", true)
        var inner = JSONLine()
        inner.add("x", "y")
        j.add("o", object: inner)
        let text = j.finished
        XCTAssertEqual(text, #"{"s":"a\"b\\c\nd\u0001é","n":null,"i":42,"ms":1.235,"b":true,"o":{"x":"y"}}"#)
        let parsed = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        XCTAssertEqual(parsed?["s"] as? String, "a\"b\\c\nd\u{1}é")
    }

    func testTimeFormat() {
        XCTAssertEqual(WallClock.rfc3339(1_700_000_000_123_456_789), "2023-11-14T22:13:20.123Z")
    }

    func testUIDRule() {
        XCTAssertNil(uidCheckMessage(currentUID: 0, proxyUID: 1337))
        XCTAssertNil(uidCheckMessage(currentUID: 1337, proxyUID: 1337))
        // Root dropping to uid 0 stays root: its connections are redirected back to the proxy.
        XCTAssertTrue(uidCheckMessage(currentUID: 0, proxyUID: 0)?.hasPrefix("--uid 0: the proxy would keep running as root") == true)
        XCTAssertEqual(
            uidCheckMessage(currentUID: 1000, proxyUID: 1337),
            "hoptrace proxy runs as uid 1000, which the interception rules redirect back to the proxy (only uid 1337 is exempt): start it as root (it drops to 1337) or as uid 1337")
    }

    func testRoutes() throws {
        var config = ProxyConfiguration()
        config.podAddresses = ["198.18.3.2"]
        let shared = ProxyShared(configuration: config, accessLog: try AccessLog(path: "/dev/null"))
        func route(_ shared: ProxyShared, local: String, _ localPort: Int, nat: String?, _ natPort: Int = 0) throws -> Route {
            try XCTUnwrap(Route.make(
                client: try address("198.18.3.1", 40000), local: try address(local, localPort),
                originalDestination: try nat.map { try address($0, natPort) }, shared: shared))
        }

        let inbound = try route(shared, local: "198.18.3.2", 15001, nat: "198.18.3.2", 80)
        XCTAssertEqual(inbound.direction, .inbound)
        XCTAssertEqual(inbound.upstream?.hopDescription, "127.0.0.1:80")
        XCTAssertNil(inbound.source)

        let outbound = try route(shared, local: "127.0.0.1", 15001, nat: "198.18.3.18", 8080)
        XCTAssertEqual(outbound.direction, .outbound)
        XCTAssertEqual(outbound.upstream?.hopDescription, "198.18.3.18:8080")

        let direct = try route(shared, local: "198.18.3.2", 15001, nat: nil)
        XCTAssertNil(direct.upstream, "no NAT entry: the destination is the proxy itself")
        XCTAssertTrue(direct.loopMessage.contains("198.18.3.2:15001"), direct.loopMessage)

        config.layout = .istioCurrent
        config.inboundPort = 15006
        let current = ProxyShared(configuration: config, accessLog: try AccessLog(path: "/dev/null"))
        let r = try route(current, local: "198.18.3.2", 15006, nat: "198.18.3.2", 80)
        XCTAssertEqual(r.upstream?.hopDescription, "198.18.3.2:80")
        XCTAssertEqual(r.source?.ipAddress, "127.0.0.6")
    }
}
