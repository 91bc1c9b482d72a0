import HopReport
import ArgumentParser
import HopPipeline
import HopCapture
#if canImport(Glibc)
import Glibc
#endif

struct Hoptrace: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hoptrace",
        abstract: "Explain what a sidecar proxy does to HTTP traffic, from packets alone.",
        discussion: """
        Inside a pod with an Istio-style sidecar, `tcpdump -i any` shows every request twice: \
        once from the client to port 80 (redirected by iptables to the proxy on 15001) and \
        once from the proxy to the app. hoptrace reads such captures (files or live \
        interfaces), rebuilds every TCP connection, parses HTTP/1.x, and says why each copy \
        exists.

        Exit status: 0 ok, 1 differences found (check, lab), 2 usage or input error.
        """,
        version: "hoptrace \(hoptraceVersion) (\(PcapSource.libraryVersion))",
        subcommands: hoptraceSubcommands)

    /// When the first argument names no subcommand: a message with the closest one, if any
    /// is close (a typo: `analyse`), else the list.
    static func unknownSubcommandMessage(_ arguments: [String]) -> String? {
        guard let first = arguments.first, !first.hasPrefix("-") else { return nil }
        let names = hoptraceSubcommands.map { $0._commandName }
        if names.contains(first) || first == "help" { return nil }
        if let best = Suggestion.closest(to: first, among: names) {
            return "unknown command '\(first)'; did you mean '\(best)'? (`hoptrace --help` lists the commands)"
        }
        return "unknown command '\(first)'; the commands are \(names.joined(separator: ", ")) (`hoptrace --help` says what each does)"
    }
}

/// hoptrace's version, printed by `--version`.
let hoptraceVersion = "0.1.0"

/// Runs the command line; maps errors to messages and the documented exit codes.
func hoptraceMain() -> Never {
    signal(SIGPIPE, SIG_IGN)
    do {
        if let message = Hoptrace.unknownSubcommandMessage(Array(CommandLine.arguments.dropFirst())) {
            throw InputError(message: message)
        }
        var command = try Hoptrace.parseAsRoot()
        try command.run()
        Output.stdout.flush()
        exit(ExitStatus.ok)
    } catch let error as InputError {
        Output.stdout.flush()
        Output.stderr.line("hoptrace: \(error.message)")
        exit(ExitStatus.inputError)
    } catch let error as ExitCode {
        Output.stdout.flush()
        exit(error.rawValue)
    } catch {
        Output.stdout.flush()
        let code = Hoptrace.exitCode(for: error)
        if code == .success {
            Hoptrace.exit(withError: error)  // --help, --version
        }
        Output.stderr.line(Hoptrace.fullMessage(for: error))
        exit(ExitStatus.inputError)
    }
}

let hoptraceSubcommands: [ParsableCommand.Type] = [Analyze.self, Watch.self, Packets.self, Flows.self, HTTP.self, Intercept.self, Proxy.self, Lab.self, Check.self]

hoptraceMain()
