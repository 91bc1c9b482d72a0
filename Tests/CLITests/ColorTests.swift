import Foundation
import XCTest

/// Colour on a terminal in every command that prints text for people, never off one, and
/// `NO_COLOR` (https://no-color.org) honoured: the commands run under `script`, which gives
/// them a pseudo-terminal.
final class ColorTests: XCTestCase {
    func onTerminal(_ args: [String], noColor: String?) throws -> String {
        guard let script = TestEnv.which("script") else { throw XCTSkip("script (util-linux) gives a terminal; it is missing") }
        let command = ([TestEnv.hoptrace] + args).map { "'\($0)'" }.joined(separator: " ")
        let env = noColor.map { "NO_COLOR='\($0)' " } ?? "unset NO_COLOR; "
        let r = try TestEnv.run("/bin/sh", ["-c", "\(env)COLUMNS=100 TERM=xterm \(script) -qec \"\(command)\" /dev/null"])
        return r.stdout
    }

    func testEveryCommandColoursOnATerminalOnly() throws {
        let retry = TestEnv.captures.appendingPathComponent("lab-retry.pcap").path
        let expectation = TestEnv.captures.appendingPathComponent("lab-seed.expect.json").path
        for args in [["analyze", retry], ["http", retry], ["flows", retry], ["watch", "-r", retry], ["check", expectation]] {
            let colored = try onTerminal(args, noColor: nil)
            XCTAssertTrue(colored.contains("\u{1B}["), "\(args[0]): no colour on a terminal:\n\(colored)")
            XCTAssertFalse(try onTerminal(args, noColor: "1").contains("\u{1B}["), "\(args[0]): colour despite NO_COLOR")
            // no-color.org: an empty NO_COLOR is as if it were not set.
            XCTAssertTrue(try onTerminal(args, noColor: "").contains("\u{1B}["), "\(args[0]): an empty NO_COLOR turned colour off")
            let piped = try TestEnv.run(TestEnv.hoptrace, args)
            XCTAssertFalse(piped.stdout.contains("\u{1B}["), "\(args[0]): colour into a pipe")
        }
        // On a terminal the text report wraps to $COLUMNS.
        let wide = try onTerminal(["analyze", retry], noColor: "1").replacingOccurrences(of: "\r", with: "")
        let longest = wide.split(separator: "\n").map(\.count).max() ?? 0
        XCTAssertTrue(longest > 80 && longest <= 100, "longest line \(longest) with COLUMNS=100")
    }
}
