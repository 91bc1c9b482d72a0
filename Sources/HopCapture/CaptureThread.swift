import CPcap
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A live capture's own thread: it only moves packets out of libpcap's ring (a block at a
/// time, `pcap_dispatch`) into a `PacketQueue`, and notes when the kernel's drop counter
/// grows. The analysis reads the queue on the caller's thread and never makes this one wait:
/// tcpdump -w keeps up with what a busy pod sends, and so does this thread (issue 21).
final class CaptureThread: @unchecked Sendable {
    // @unchecked Sendable: `thread` is touched only by the thread that starts and joins;
    // `kernelLossWindows` is written by the capture thread and read after `join()`.
    let handle: OpaquePointer
    let queue: PacketQueue
    private var thread: pthread_t?
    private(set) var kernelLossWindows: [LossWindow] = []

    /// How often the thread reads the kernel's counters to date its drops (ns).
    static let statisticsInterval: Int64 = 50_000_000

    init(handle: OpaquePointer, queue: PacketQueue) {
        self.handle = handle
        self.queue = queue
    }

    var isRunning: Bool { thread != nil }

    func start() {
        let box = Unmanaged.passRetained(self)
        var t = pthread_t()
        let rc = pthread_create(&t, nil, { arg in
            Unmanaged<CaptureThread>.fromOpaque(arg!).takeRetainedValue().run()
            return nil
        }, box.toOpaque())
        precondition(rc == 0, "cannot start the capture thread (pthread_create: \(rc))")
        thread = t
    }

    /// Waits for the thread to end (after `pcap_breakloop` or an error).
    func join() {
        guard let t = thread else { return }
        pthread_join(t, nil)
        thread = nil
    }

    private static func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    private func run() {
        let context = UnsafeMutableRawPointer(Unmanaged.passUnretained(queue).toOpaque())
        var lastCheck = Self.now()
        var lastDropped: UInt32 = 0
        while true {
            let n = pcap_dispatch(handle, -1, { user, header, data in
                let queue = Unmanaged<PacketQueue>.fromOpaque(UnsafeRawPointer(user!)).takeUnretainedValue()
                let h = header!.pointee
                queue.append(timestamp: PcapSource.nanoseconds(seconds: Int64(h.ts.tv_sec), fraction: Int64(h.ts.tv_usec)),
                             wireLength: Int(h.len), bytes: UnsafeRawPointer(data), length: Int(h.caplen))
            }, context.assumingMemoryBound(to: UInt8.self))
            queue.flush()
            let now = Self.now()
            if now - lastCheck >= Self.statisticsInterval || n < 0 {
                var st = pcap_stat()
                if pcap_stats(handle, &st) == 0 && st.ps_drop != lastDropped {
                    let lost = Int(st.ps_drop &- lastDropped)
                    if let last = kernelLossWindows.last, lastCheck - last.end <= PacketQueue.windowGap {
                        kernelLossWindows[kernelLossWindows.count - 1].end = now
                        kernelLossWindows[kernelLossWindows.count - 1].packets += lost
                    } else {
                        kernelLossWindows.append(LossWindow(start: lastCheck, end: now, packets: lost))
                    }
                    lastDropped = st.ps_drop
                }
                lastCheck = now
            }
            if n == PCAP_ERROR_BREAK {
                queue.close()
                return
            }
            if n < 0 {
                queue.close(error: String(cString: pcap_geterr(handle)))
                return
            }
        }
    }
}
