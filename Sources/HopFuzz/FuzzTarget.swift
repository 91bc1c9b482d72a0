// The fuzz targets: each takes arbitrary bytes, runs one stage (or the whole analysis) over
// them and checks what the stage promises. A broken promise stops the process (a crash the
// fuzzer keeps); so does any crash of the stage itself. The same functions replay the kept
// inputs in the normal test suite (Tests/HopFuzzTests).

/// The stages fuzzed, by the name `scripts/fuzz.sh` and `hoptrace-fuzz` know them by.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// Capture file bytes → decode → flows → HTTP → correlation → every report format.
    case capture
    /// The HTTP/1.x parser over byte streams in both directions, with gaps, cut anywhere.
    case http
    /// The HTTP/2 parser: the same records, read as frames after the client preface.
    case http2
    /// iptables-save / `iptables -S` text → rule set → render → parse again, and evaluation.
    case netfilter
    /// The proxy's request and response framing, fed whole and in pieces.
    case wire

    /// Runs the target over `bytes`.
    public func run(_ bytes: UnsafeRawBufferPointer) {
        switch self {
        case .capture: CaptureFuzz.run(bytes)
        case .http: HTTPStreamFuzz.run(bytes)
        case .http2: HTTP2StreamFuzz.run(bytes)
        case .netfilter: NetfilterFuzz.run(bytes)
        case .wire: WireFuzz.run(bytes)
        }
    }

    public func run(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { run($0) }
    }
}

/// A broken promise: stops the process with what was expected (in every build configuration).
func promise(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() { fatalError("fuzz: " + message()) }
}

/// Cut points taken from the input itself, so a kept input replays the same cuts.
struct Cuts {
    var state: UInt64
    init(seed: UnsafeRawBufferPointer) {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in seed.prefix(64) { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        state = h
    }
    /// 1…max.
    mutating func next(_ max: Int) -> Int {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return Int((z ^ (z >> 31)) % UInt64(max)) + 1
    }
}
