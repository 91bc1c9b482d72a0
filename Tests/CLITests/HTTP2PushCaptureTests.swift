import Foundation
import XCTest

/// HTTP/2 server push from a real peer (nghttpd `-p`, fetched by nghttp): each stream the server
/// promised, as `hoptrace http` shows it (pushed, the promised request's path, the response's
/// status and body bytes) against tshark's HTTP/2 dissector (its PUSH_PROMISE frames, then the
/// promised stream's HEADERS and DATA).
final class HTTP2PushCaptureTests: XCTestCase {
    /// `PORT/STREAM PATH STATUS BYTES` (PORT: the client's port; a field not seen is "-").
    typealias Pushed = String

    /// tshark's pushed streams, from its PDML: each `http2` element is one frame.
    static func tsharkPushed(_ file: String, port: Int) throws -> [Pushed] {
        guard let tshark = TestEnv.which("tshark") else { throw XCTSkip("no tshark (Debian: tshark; scripts/setup.sh installs it)") }
        let r = try TestEnv.run(tshark, ["-r", file, "-d", "tcp.port==\(port),http2", "-T", "pdml"], timeout: 120)
        XCTAssertEqual(r.status, 0, r.stderr)
        struct Seen { var clientPort = "-", path = "-", status = "-", bytes = 0 }
        var pushed: [String: Seen] = [:]
        var tcpStream = "", destinationPort = ""
        var type = "", length = 0, padding = 0, padded = false, stream = "", promised: String?, headerName: String?
        for line in r.stdout.split(separator: "\n") {
            if line.hasPrefix("<packet>") {
                tcpStream = ""; destinationPort = ""
            } else if line.contains("<proto name=\"http2\"") {
                type = ""; length = 0; padding = 0; padded = false; stream = ""; promised = nil; headerName = nil
            } else if line.contains("</proto>") {
                // A DATA frame on a promised stream: its payload less padding.
                let key = tcpStream + "/" + stream
                if type == "0", pushed[key] != nil { pushed[key]!.bytes += max(0, length - (padded ? padding : 0)) }
                type = ""
            } else if let field = GRPCCaptureTests.attribute("name", of: line), let show = GRPCCaptureTests.attribute("show", of: line) {
                switch field {
                case "tcp.stream": tcpStream = show
                case "tcp.dstport": destinationPort = show
                case "http2.type": type = show
                case "http2.length": length = Int(show) ?? 0
                case "http2.flags.padded": padded = show == "1"
                case "http2.pad_length": padding = (Int(show) ?? 0) + 1
                case "http2.streamid": stream = show
                case "http2.push_promise.promised_stream_id":
                    let key = tcpStream + "/" + show
                    promised = key
                    pushed[key, default: Seen()].clientPort = destinationPort
                case "http2.header.name": headerName = show
                case "http2.header.value":
                    if type == "5", let key = promised, headerName == ":path" { pushed[key]?.path = show }
                    if type == "1", headerName == ":status", pushed[tcpStream + "/" + stream] != nil {
                        pushed[tcpStream + "/" + stream]!.status = show
                    }
                    headerName = nil
                default: break
                }
            }
        }
        return pushed.map { key, p in "\(p.clientPort)/\(key.split(separator: "/").last ?? "") \(p.path) \(p.status) \(p.bytes)" }.sorted()
    }

    /// hoptrace's pushed streams, from `http --format jsonl`.
    static func hoptracePushed(_ file: String) throws -> (pushed: [Pushed], streams: Int) {
        let r = try TestEnv.run(TestEnv.hoptrace, ["http", file, "--format", "jsonl"])
        XCTAssertEqual(r.status, 0, r.stderr)
        var out: [Pushed] = []
        var streams = 0
        for line in r.stdout.split(separator: "\n") where !line.hasPrefix("{\"summary\":") {
            let o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            guard let h2 = o["http2"] as? [String: Any] else { continue }
            streams += 1
            guard h2["pushed"] as? Bool == true else { continue }
            let port = (o["client"] as? String)?.split(separator: ":").last.map(String.init) ?? "-"
            out.append("\(port)/\(h2["stream"] as? Int ?? -1) \(o["target"] as? String ?? "-") \((o["status"] as? Int).map(String.init) ?? "-") \(o["responseBodyBytes"] as? Int ?? -1)")
        }
        return (out.sorted(), streams)
    }

    func testBundledPushCaptureHasTsharksPushedStreams() throws {
        let file = TestEnv.captures.appendingPathComponent("h2-push-nghttpd.pcap").path
        let want = try Self.tsharkPushed(file, port: 18081)
        let got = try Self.hoptracePushed(file)
        XCTAssertEqual(want.count, 4, "make-h2-push-capture.sh: 2 connections, 2 pushes each: \(want)")
        XCTAssertEqual(got.pushed, want)
        XCTAssertEqual(got.streams, 7, "3 requests and 4 pushes")
    }

    /// A fresh capture by Captures/make-h2-push-capture.sh (root, nghttp2's tools).
    func testFreshPushCaptureFromRealPeersHasTsharksPushedStreams() throws {
        guard TestEnv.isRoot else { throw XCTSkip("needs root for the capture's network namespace") }
        for tool in ["nghttpd", "nghttp", "tcpdump"] where TestEnv.which(tool) == nil {
            throw XCTSkip("no \(tool) (Debian: nghttp2-server, nghttp2-client, tcpdump; scripts/setup.sh installs them)")
        }
        let file = TestEnv.temporaryFile("h2-push.pcap")
        defer { try? FileManager.default.removeItem(at: file) }
        let script = TestEnv.repoRoot.appendingPathComponent("Captures/make-h2-push-capture.sh").path
        let made = try TestEnv.run("/bin/bash", [script, file.path], timeout: 120)
        XCTAssertEqual(made.status, 0, made.stderr)
        let want = try Self.tsharkPushed(file.path, port: 18081)
        XCTAssertEqual(want.count, 4, "\(want)")
        XCTAssertEqual(try Self.hoptracePushed(file.path).pushed, want)
    }
}
