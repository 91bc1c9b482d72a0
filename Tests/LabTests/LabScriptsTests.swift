import Foundation
import HopLab
import HopTestSupport
import XCTest

/// The lab's peers are files (Sources/HopLab/Scripts), embedded in the code: what the lab
/// writes is those files, and each one parses in its own language.
final class LabScriptsTests: XCTestCase {
    static let scripts = TestPaths.repoRoot.appendingPathComponent("Sources/HopLab/Scripts")

    func file(_ name: String) throws -> String {
        try String(contentsOf: Self.scripts.appendingPathComponent(name), encoding: .utf8)
    }

    func testTheEmbeddedScriptsAreTheFiles() throws {
        XCTAssertEqual(LabScripts.app, try file("app.py"))
        XCTAssertEqual(LabScripts.client, try file("client.py"))
        XCTAssertEqual(LabScripts.nginx, try file("nginx.conf"))
        XCTAssertEqual(LabScripts.wrk(identical: false), try file("wrk-unique.lua"))
        XCTAssertEqual(LabScripts.curlLoop, try file("curl-loop.sh"))
        XCTAssertEqual(LabScripts.h2cClients, try file("h2c-clients.sh"))
        XCTAssertEqual(LabScripts.grpcPeer, try file("grpc-peer.py"))
        XCTAssertEqual(LabScripts.wrk(identical: true), "wrk.method = \"GET\"\nwrk.path = \"/\"\n")
    }

    func testThePythonAndShellScriptsParse() throws {
        if let python = TestPaths.which("python3") {
            for name in ["app.py", "client.py", "grpc-peer.py"] {
                let path = Self.scripts.appendingPathComponent(name).path
                let r = try TestProcess.run(python, ["-c", "import ast, sys; ast.parse(open(sys.argv[1]).read())", path])
                XCTAssertEqual(r.status, 0, "\(name): \(r.stderr)")
            }
        }
        if let sh = TestPaths.which("sh") {
            for name in ["curl-loop.sh", "h2c-clients.sh"] {
                let r = try TestProcess.run(sh, ["-n", Self.scripts.appendingPathComponent(name).path])
                XCTAssertEqual(r.status, 0, "\(name): \(r.stderr)")
            }
        }
        if let nginx = TestPaths.which("nginx") ?? (FileManager.default.fileExists(atPath: "/usr/sbin/nginx") ? "/usr/sbin/nginx" : nil) {
            // The placeholders the lab fills in, filled with a scratch directory.
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("labscripts-\(getpid())")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            let conf = LabScripts.nginx.replacingOccurrences(of: "BIGFILE", with: dir.appendingPathComponent("big").path)
                .replacingOccurrences(of: "LOGFORMAT", with: "'$remote_addr'")
                .replacingOccurrences(of: "DIR", with: dir.path)
            let url = dir.appendingPathComponent("nginx.conf")
            try conf.write(to: url, atomically: true, encoding: .utf8)
            let r = try TestProcess.run(nginx, ["-t", "-q", "-c", url.path, "-p", dir.path, "-e", dir.appendingPathComponent("error.log").path])
            // As non-root `user nobody` only warns; any syntax error fails.
            XCTAssertFalse(r.stderr.contains("emerg"), r.stderr)
        }
    }
}
