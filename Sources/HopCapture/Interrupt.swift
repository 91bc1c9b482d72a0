import CPcap
#if canImport(Glibc)
import Glibc
#endif

/// Stops a capture loop from SIGINT/SIGTERM: the signal handler calls `pcap_breakloop` on the
/// registered handle, so the next read returns `.end` and the caller prints its summary.
public enum CaptureInterrupt {
    nonisolated(unsafe) static var handle: OpaquePointer?
    nonisolated(unsafe) public private(set) static var signalled: Int32 = 0

    /// Routes SIGINT and SIGTERM to `source.breakLoop()` (a second signal exits at once).
    public static func install(for source: PcapSource) {
        handle = source.handle
        let handler: @convention(c) (Int32) -> Void = { sig in
            if CaptureInterrupt.signalled != 0 { _exit(128 + sig) }
            CaptureInterrupt.signalled = sig
            if let h = CaptureInterrupt.handle { pcap_breakloop(h) }
        }
        signal(SIGINT, handler)
        signal(SIGTERM, handler)
    }

    /// Restores the default handlers.
    public static func uninstall() {
        handle = nil
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }
}
