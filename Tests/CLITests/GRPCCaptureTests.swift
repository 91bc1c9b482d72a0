import Foundation
import XCTest

/// gRPC calls between real peers (grpcio's server and client, Captures/grpc-peer.py) read by
/// `hoptrace http` against tshark's gRPC dissector on the same file: per call, the same service
/// and method, grpc-status, grpc-message and messages each way.
final class GRPCCaptureTests: XCTestCase {
    /// One call as either tool saw it: `PORT/STREAM /service/method status S "message" msgs R/A`
    /// and, when a RST_STREAM ended it, `rst CODE by client|server` (PORT: the client's port; a
    /// field not seen is "-").
    typealias Call = String

    static func call(clientPort: String, stream: String, path: String, status: String, message: String, requests: Int, responses: Int,
                     reset: String?) -> Call {
        "\(clientPort)/\(stream) \(path) status \(status) \"\(message)\" msgs \(requests)/\(responses)" + (reset.map { " rst \($0)" } ?? "")
    }

    /// tshark's calls, from its PDML (`-T pdml`), whose elements keep the order of the frames in
    /// a packet: each `http2` element is one frame (type, stream id, decoded headers) and each
    /// `grpc` element after a DATA frame is one length-prefixed message of that frame's stream,
    /// named Request or Response by the dissector. A RST_STREAM counts when it ended the stream
    /// (hoptrace's `reset`): not after END_STREAM both ways (a server's RST_STREAM NO_ERROR after
    /// its trailers can cross the client's END_STREAM).
    static func tsharkCalls(_ file: String, port: Int) throws -> [Call] {
        guard let tshark = TestEnv.which("tshark") else { throw XCTSkip("no tshark (Debian: tshark; scripts/setup.sh installs it)") }
        let r = try TestEnv.run(tshark, ["-r", file, "-d", "tcp.port==\(port),http2", "-T", "pdml"], timeout: 120)
        XCTAssertEqual(r.status, 0, r.stderr)
        struct Seen {
            var clientPort = "-", path = "-", status = "-", message = "", requests = 0, responses = 0, reset: String?
            var ended: Set<String> = []
        }
        var calls: [String: Seen] = [:]
        var tcpStream = "", sourcePort = "", stream: String?, headerName: String?, endStream = false
        for line in r.stdout.split(separator: "\n") {
            if line.hasPrefix("<packet>") {
                tcpStream = ""; sourcePort = ""; stream = nil
            } else if line.contains("<proto name=\"http2\"") {
                stream = nil; headerName = nil; endStream = false
            } else if line.contains("<proto name=\"grpc\""), let key = stream {
                let name = attribute("showname", of: line) ?? ""
                if name.hasSuffix(", Request") { calls[key, default: Seen()].requests += 1 }
                if name.hasSuffix(", Response") { calls[key, default: Seen()].responses += 1 }
            } else if let field = attribute("name", of: line), let show = attribute("show", of: line) {
                switch field {
                case "tcp.stream": tcpStream = show
                case "tcp.srcport": sourcePort = show
                case "http2.flags.end_stream": endStream = show == "1"
                case "http2.streamid":
                    // The flags come before the stream id in a frame's fields.
                    stream = show == "0" ? nil : tcpStream + "/" + show
                    if let key = stream, endStream { calls[key, default: Seen()].ended.insert(sourcePort) }
                case "http2.rst_stream.error":
                    guard let key = stream, calls[key, default: Seen()].ended.count < 2 else { break }
                    calls[key, default: Seen()].reset = "\(show) by \(sourcePort == calls[key]?.clientPort ? "client" : "server")"
                case "http2.header.name": headerName = show
                case "http2.header.value":
                    guard let key = stream else { break }
                    switch headerName {
                    case ":method": calls[key, default: Seen()].clientPort = sourcePort
                    case ":path": calls[key, default: Seen()].path = show
                    case "grpc-status": calls[key, default: Seen()].status = show
                    case "grpc-message": calls[key, default: Seen()].message = show
                    default: break
                    }
                    headerName = nil
                default: break
                }
            }
        }
        return calls.compactMap { key, c in
            guard c.path != "-" else { return nil }
            let id = String(key.split(separator: "/").last ?? "")
            return call(clientPort: c.clientPort, stream: id, path: c.path, status: c.status, message: c.message,
                        requests: c.requests, responses: c.responses, reset: c.reset)
        }.sorted()
    }

    /// The value of `name="…"` in a PDML line, XML entities undone.
    static func attribute(_ name: String, of line: Substring) -> String? {
        guard let start = line.range(of: " \(name)=\"") else { return nil }
        let rest = line[start.upperBound...]
        guard let end = rest.firstIndex(of: "\"") else { return nil }
        return String(rest[..<end]).replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&amp;", with: "&")
    }

    /// hoptrace's calls, from `http --format jsonl` (its gRPC view of each HTTP/2 stream).
    static func hoptraceCalls(_ file: String) throws -> [Call] {
        let r = try TestEnv.run(TestEnv.hoptrace, ["http", file, "--format", "jsonl"])
        XCTAssertEqual(r.status, 0, r.stderr)
        var out: [Call] = []
        for line in r.stdout.split(separator: "\n") where !line.hasPrefix("{\"summary\":") {
            let o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            guard let h2 = o["http2"] as? [String: Any], let g = h2["grpc"] as? [String: Any] else { continue }
            let port = (o["client"] as? String)?.split(separator: ":").last.map(String.init) ?? "-"
            let path = "/\(g["service"] as? String ?? "-")/\(g["method"] as? String ?? "-")"
            out.append(call(clientPort: port, stream: "\(h2["stream"] as? Int ?? -1)", path: path,
                            status: (g["status"] as? Int).map(String.init) ?? "-", message: g["message"] as? String ?? "",
                            requests: g["requestMessages"] as? Int ?? -1, responses: g["responseMessages"] as? Int ?? -1,
                            reset: (h2["reset"] as? [String: Any]).map { "\($0["code"] as? Int ?? -1) by \($0["by"] as? String ?? "-")" }))
        }
        return out.sorted()
    }

    /// What the comparison must cover to mean something: unary and streaming calls both ways,
    /// a non-OK status with a message, a call the client cancelled.
    func assertCovers(_ calls: [Call], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(calls.contains { $0.contains(" status 0 ") && $0.hasSuffix("msgs 1/1") }, "a unary OK call", file: file, line: line)
        XCTAssertTrue(calls.contains { $0.contains("/Count status 0 ") && !$0.hasSuffix("/1") }, "a server-streaming call", file: file, line: line)
        XCTAssertTrue(calls.contains { $0.contains("/Total status 0 ") && !$0.contains("msgs 1/") }, "a client-streaming call", file: file, line: line)
        XCTAssertTrue(calls.contains { !$0.contains(" status 0 ") && !$0.contains(" status - ") && !$0.contains("\"\"") },
                      "a non-OK grpc-status with a grpc-message", file: file, line: line)
        XCTAssertTrue(calls.contains { $0.hasSuffix(" rst 8 by client") }, "a call the client cancelled (RST_STREAM CANCEL)", file: file, line: line)
    }

    func testBundledGRPCCaptureHasTsharksCalls() throws {
        let file = TestEnv.captures.appendingPathComponent("grpc-grpcio.pcap").path
        let want = try Self.tsharkCalls(file, port: 50051)
        let got = try Self.hoptraceCalls(file)
        XCTAssertEqual(want.count, 12, "make-grpc-capture.sh makes 12 calls: \(want)")
        XCTAssertEqual(got, want)
        assertCovers(want)
    }

    /// A fresh capture by Captures/make-grpc-capture.sh (root, grpcio): the same comparison on
    /// calls made now.
    func testFreshGRPCCaptureFromRealPeersHasTsharksCalls() throws {
        guard TestEnv.isRoot else { throw XCTSkip("needs root for the capture's network namespace") }
        guard TestEnv.which("tcpdump") != nil else { throw XCTSkip("no tcpdump (scripts/setup.sh installs it)") }
        let pythons = [TestEnv.which("python3"), FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") ? "/usr/bin/python3" : nil]
        let grpcio = pythons.compactMap { $0 }.contains { py in
            (try? TestEnv.run(py, ["-c", "import grpc"]).status) == 0
        }
        guard grpcio else { throw XCTSkip("no python3 with grpcio (Debian: python3-grpcio; scripts/setup.sh installs it)") }
        let file = TestEnv.temporaryFile("grpc.pcap")
        defer { try? FileManager.default.removeItem(at: file) }
        let script = TestEnv.repoRoot.appendingPathComponent("Captures/make-grpc-capture.sh").path
        let made = try TestEnv.run("/bin/bash", [script, file.path], timeout: 120)
        XCTAssertEqual(made.status, 0, made.stderr)
        let want = try Self.tsharkCalls(file.path, port: 50051)
        XCTAssertEqual(want.count, 12, "\(want)")
        XCTAssertEqual(try Self.hoptraceCalls(file.path), want)
        assertCovers(want)
    }
}
