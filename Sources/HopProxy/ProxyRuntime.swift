import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// A `TransparentProxy`'s life as `hoptrace proxy` runs it: open the access log, bind,
/// drop root to the configured uid/gid, accept until SIGTERM or SIGINT, then drain (a second
/// signal exits at once).
public enum ProxyRuntime {
    /// Why the proxy could not start (a message for the user).
    public struct StartError: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// Serves until a signal. The access log goes to `configuration.accessLogPath` (standard
    /// output when nil) unless `accessLog` is false. `say` gets the status lines (listening,
    /// draining, stopped, warnings).
    public static func serve(configuration config: ProxyConfiguration, accessLog: Bool = true,
                             say: (String) -> Void) throws(StartError) {
        let drainTimeout = config.drainTimeoutSeconds
        let log: AccessLog
        do {
            log = accessLog ? try AccessLog(path: config.accessLogPath) : .off()
        } catch {
            throw StartError(message: "\(error)")
        }
        let proxy: TransparentProxy
        do {
            proxy = try TransparentProxy(configuration: config, accessLog: log)
        } catch {
            throw StartError(message: "\(error)")
        }
        let bound: (bound: [String], warnings: [String])
        do {
            bound = try proxy.bind()
        } catch {
            proxy.shutdown()
            throw StartError(message: "\(error)")
        }
        for w in bound.warnings { say("hoptrace proxy: warning: \(w)") }
        let wasRoot = geteuid() == 0
        if wasRoot {
            do {
                try Privileges.drop(toUID: config.uid, gid: config.gid)
            } catch {
                proxy.shutdown()
                throw StartError(message: "cannot drop privileges: \(error)")
            }
        }

        // Signals: the first SIGTERM/SIGINT drains, a second one exits at once.
        let stop = DispatchSemaphore(value: 0)
        let signalQueue = DispatchQueue(label: "hoptrace.proxy.signals")
        var sources: [DispatchSourceSignal] = []
        let received = SignalCount()
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: signalQueue)
            source.setEventHandler {
                if received.increment() == 1 {
                    stop.signal()
                } else {
                    writeDiagnostic("hoptrace proxy: second signal: exiting without waiting")
                    log.flush()
                    Glibc.exit(0)
                }
            }
            source.resume()
            sources.append(source)
        }

        proxy.startAccepting()
        let pods = config.podAddresses.isEmpty ? "none" : config.podAddresses.joined(separator: ", ")
        let identity = wasRoot ? "uid \(getuid()) gid \(getgid()) (dropped from root)" : "uid \(getuid()) gid \(getgid())"
        say("hoptrace proxy: listening on \(bound.bound.joined(separator: ", ")); layout \(config.layout.rawValue); pod addresses \(pods); \(identity)")

        stop.wait()
        let open = proxy.openConnections
        say("hoptrace proxy: draining \(open) connection\(open == 1 ? "" : "s") (up to \(drainTimeout) s)")
        let left = proxy.drain(timeoutSeconds: drainTimeout)
        if left > 0 {
            say("hoptrace proxy: \(left) connection\(left == 1 ? "" : "s") still open after --drain-timeout; closing")
        }
        proxy.shutdown()
        say("hoptrace proxy: stopped")
        withExtendedLifetime(sources) {}
    }
}

/// Counts signals received (the handler runs on a serial queue; the lock keeps it simple).
private final class SignalCount: @unchecked Sendable {
    // @unchecked: `count` is only touched on the serial signal queue.
    private var count = 0
    func increment() -> Int {
        count += 1
        return count
    }
}
