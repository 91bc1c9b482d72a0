import HopCapture

/// Writes JSON straight into a growable block of bytes: the one JSON writer and the one string
/// escaper of the reports (`analyze --format json/jsonl`, `http --format jsonl`, `flows`, …).
///
/// Values go in as they are produced (no intermediate `String`s, dictionaries or arrays of
/// encoded objects); a writer given a `sink` hands its bytes over whenever `flushThreshold`
/// bytes are buffered (`flushIfNeeded`), so a document of any length is written in constant
/// memory. Commas are placed by the writer: a value or a key after a value gets one.
///
/// The buffer is owned manually (no bounds or uniqueness checks per byte, as `LineBuilder` of
/// the command line): the writer frees it in `deinit`. One writer is used by one thread, so its
/// state is declared `@exclusivity(unchecked)`: the dynamic exclusivity checks of a class's
/// properties cost 30% of `http --format jsonl` (perf, on identical-4x.pcap).
public final class JSONWriter {
    @exclusivity(unchecked) @usableFromInline private(set) var base: UnsafeMutablePointer<UInt8>
    /// Bytes buffered.
    @exclusivity(unchecked) public private(set) var count = 0
    @exclusivity(unchecked) @usableFromInline private(set) var capacity: Int
    /// A comma goes before the next key or value.
    @exclusivity(unchecked) @usableFromInline var needsComma = false
    private let sink: ((UnsafeRawBufferPointer) -> Void)?
    /// `flushIfNeeded` hands the buffer to the sink once it holds this many bytes.
    public var flushThreshold: Int
    /// The second last written by `iso8601`, and its `"YYYY-MM-DDTHH:MM:SS.` text (21 bytes).
    @exclusivity(unchecked) private var cachedSecond: Int64 = .min
    @exclusivity(unchecked) private var cachedSecondText: (UInt64, UInt64, UInt64) = (0, 0, 0)
    /// The second last written by `epochNanos`, and its digits.
    @exclusivity(unchecked) private var cachedDigitsSecond: Int64 = .min
    @exclusivity(unchecked) private var cachedSecondDigits: [UInt8] = []

    /// A writer that keeps everything (read it with `string` or `bytes`), or, with a `sink`,
    /// hands its bytes over on `flush` / `flushIfNeeded`.
    public init(capacity: Int = 1024, flushThreshold: Int = 1 << 16, sink: ((UnsafeRawBufferPointer) -> Void)? = nil) {
        self.capacity = max(capacity, 64)
        self.flushThreshold = flushThreshold
        self.sink = sink
        base = .allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    /// What was written (and not flushed), as text.
    public var string: String { String(decoding: UnsafeBufferPointer(start: base, count: count), as: UTF8.self) }
    /// What was written (and not flushed).
    public var bytes: [UInt8] { Array(UnsafeBufferPointer(start: base, count: count)) }

    /// Hands the buffered bytes to the sink (nothing without one) and empties the buffer.
    public func flush() {
        guard let sink else { return }
        if count > 0 { sink(UnsafeRawBufferPointer(start: base, count: count)) }
        count = 0
    }

    @inline(__always)
    public func flushIfNeeded() {
        if count >= flushThreshold { flush() }
    }

    /// The bytes written (and not flushed) in `range`.
    func withBytes(_ range: Range<Int>, _ body: (UnsafeRawBufferPointer) -> Void) {
        body(UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count))
    }

    /// Forgets what was written (and the comma state).
    public func reset() {
        count = 0
        needsComma = false
    }

    // MARK: bytes

    @inline(__always) func reserve(_ n: Int) {
        if count + n > capacity { grow(count + n) }
    }

    @inline(never) private func grow(_ needed: Int) {
        var c = capacity * 2
        while c < needed { c *= 2 }
        let nb = UnsafeMutablePointer<UInt8>.allocate(capacity: c)
        nb.initialize(from: base, count: count)
        base.deallocate()
        base = nb
        capacity = c
    }

    @inline(__always) func byte(_ b: UInt8) {
        reserve(1)
        base[count] = b
        count += 1
    }

    @inline(__always) func append(_ p: UnsafeRawBufferPointer) {
        let n = p.count
        guard n > 0 else { return }
        reserve(n)
        Self.copy(p.baseAddress!, n, to: UnsafeMutableRawPointer(base + count))
        count += n
    }

    /// Copies `n` bytes. Keys and short pieces: a word or two copied in place of a call to
    /// memmove (most of a report's copies are a dozen bytes).
    @inline(__always) static func copy(_ from: UnsafeRawPointer, _ n: Int, to: UnsafeMutableRawPointer) {
        if n >= 8 && n <= 16 {
            let a = from.loadUnaligned(as: UInt64.self), b = from.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
            to.storeBytes(of: a, as: UInt64.self)
            to.storeBytes(of: b, toByteOffset: n - 8, as: UInt64.self)
        } else if n < 8 {
            if n >= 4 {
                let a = from.loadUnaligned(as: UInt32.self), b = from.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self)
                to.storeBytes(of: a, as: UInt32.self)
                to.storeBytes(of: b, toByteOffset: n - 4, as: UInt32.self)
            } else {
                for i in 0..<n { to.storeBytes(of: from.load(fromByteOffset: i, as: UInt8.self), toByteOffset: i, as: UInt8.self) }
            }
        } else if n > 0 {
            to.copyMemory(from: from, byteCount: n)
        }
    }

    @inline(__always) func ascii(_ s: StaticString) {
        s.withUTF8Buffer { append(UnsafeRawBufferPointer($0)) }
    }

    /// Appends an integer's digits: two at a time from a table (a report's nanosecond times
    /// have 19).
    @inline(__always) func digits<I: BinaryInteger>(_ v: I) {
        reserve(21)
        if v < 0 { base[count] = 0x2d; count += 1 }
        var m = UInt64(v.magnitude)
        let n = Self.decimalCount(m)
        let pairs: StaticString = "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"
        pairs.withUTF8Buffer { t in
            var i = count + n
            while m >= 100 {
                let r = Int(truncatingIfNeeded: m % 100) &* 2
                m /= 100
                i -= 2
                base[i] = t[r]
                base[i + 1] = t[r + 1]
            }
            if m >= 10 {
                let r = Int(truncatingIfNeeded: m) &* 2
                base[i - 2] = t[r]
                base[i - 1] = t[r + 1]
            } else {
                base[i - 1] = 0x30 &+ UInt8(truncatingIfNeeded: m)
            }
        }
        count += n
    }

    /// How many decimal digits `m` has (a few comparisons).
    @inline(__always) static func decimalCount(_ m: UInt64) -> Int {
        if m < 10_000_000_000 {
            if m < 100_000 { return m < 100 ? (m < 10 ? 1 : 2) : (m < 1000 ? 3 : (m < 10_000 ? 4 : 5)) }
            return m < 10_000_000 ? (m < 1_000_000 ? 6 : 7) : (m < 100_000_000 ? 8 : (m < 1_000_000_000 ? 9 : 10))
        }
        if m < 1_000_000_000_000_000 {
            return m < 1_000_000_000_000 ? (m < 100_000_000_000 ? 11 : 12)
                : (m < 10_000_000_000_000 ? 13 : (m < 100_000_000_000_000 ? 14 : 15))
        }
        return m < 100_000_000_000_000_000 ? (m < 10_000_000_000_000_000 ? 16 : 17)
            : (m < 1_000_000_000_000_000_000 ? 18 : (m < 10_000_000_000_000_000_000 ? 19 : 20))
    }

    /// Two digits of `v` (0…99) at `i`.
    @inline(__always) func pair(_ v: Int, at i: Int) {
        let pairs: StaticString = "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"
        let t = pairs.utf8Start
        base[i] = t[2 &* v]
        base[i + 1] = t[2 &* v &+ 1]
    }

    /// `v` zero-padded to `width` digits (at most 20).
    @inline(__always) func padded(_ v: UInt64, _ width: Int) {
        reserve(width)
        var x = v
        var i = count + width
        count = i
        while i > count - width {
            i -= 1
            base[i] = 0x30 &+ UInt8(truncatingIfNeeded: x % 10)
            x /= 10
        }
    }

    @inline(__always) func separator() {
        if needsComma { byte(0x2c) }
    }

    // MARK: structure

    public func beginObject() { separator(); byte(0x7b); needsComma = false }
    public func endObject() { byte(0x7d); needsComma = true }
    public func beginArray() { separator(); byte(0x5b); needsComma = false }
    public func endArray() { byte(0x5d); needsComma = true }

    /// Ends a line of `jsonl` (the next value starts a new document).
    public func newline() { byte(0x0a); needsComma = false }

    /// A key that needs no escaping (the reports' own names).
    public func key(_ k: StaticString) {
        let n = k.utf8CodeUnitCount
        reserve(n + 4)
        var i = count
        if needsComma { base[i] = 0x2c; i += 1 }
        base[i] = 0x22
        Self.copy(UnsafeRawPointer(k.utf8Start), n, to: UnsafeMutableRawPointer(base + i + 1))
        i += n + 1
        base[i] = 0x22
        base[i + 1] = 0x3a
        count = i + 2
        needsComma = false
    }

    /// A key from data (escaped). Disfavoured: a literal key is a `StaticString` (written as
    /// it is, not scanned for escapes).
    @_disfavoredOverload
    public func key(_ k: String) {
        separator()
        escaped(k)
        byte(0x3a)
        needsComma = false
    }

    // MARK: values

    public func null() { separator(); ascii("null"); needsComma = true }

    public func string(_ s: String?) {
        separator()
        if let s { escaped(s) } else { ascii("null") }
        needsComma = true
    }

    public func int<I: BinaryInteger>(_ v: I?) {
        separator()
        if let v { digits(v) } else { ascii("null") }
        needsComma = true
    }

    public func bool(_ v: Bool?) {
        separator()
        if let v { if v { ascii("true") } else { ascii("false") } } else { ascii("null") }
        needsComma = true
    }

    /// A finite double as Swift prints it (`0.95`); null for nil, NaN and infinities.
    public func double(_ v: Double?) {
        separator()
        if let v, v.isFinite { raw(String(v)) } else { ascii("null") }
        needsComma = true
    }

    /// An already-encoded JSON value.
    public func rawValue(_ json: String) {
        separator()
        raw(json)
        needsComma = true
    }

    /// An array of strings.
    public func strings<S: Sequence<String>>(_ items: S) {
        beginArray()
        for s in items { string(s) }
        endArray()
    }

    /// An array of integers.
    public func ints<S: Sequence>(_ items: S) where S.Element: BinaryInteger {
        beginArray()
        for v in items { int(v) }
        endArray()
    }

    /// `ip:port` (IPv6 in brackets), as `Endpoint.description` spells it, as a string.
    public func endpoint(_ e: Endpoint?) {
        separator()
        guard let e else { ascii("null"); needsComma = true; return }
        byte(0x22)
        endpointText(e)
        byte(0x22)
        needsComma = true
    }

    /// `ip:port` inside a string (`beginString`).
    public func endpointText(_ e: Endpoint) {
        if let v4 = e.address.ipv4Value {
            digits(v4 >> 24); byte(0x2e); digits((v4 >> 16) & 0xff); byte(0x2e)
            digits((v4 >> 8) & 0xff); byte(0x2e); digits(v4 & 0xff)
        } else {
            byte(0x5b); raw(e.address.description); byte(0x5d)
        }
        byte(0x3a)
        digits(e.port)
    }

    /// Opens a string whose text comes in pieces (`piece`, `endpointText`); `endString`
    /// closes it.
    public func beginString() { separator(); byte(0x22) }

    /// Text inside an open string, escaped.
    public func piece(_ s: String) {
        // A native or literal string lends its bytes (no copy of the String to make it so).
        if s.utf8.withContiguousStorageIfAvailable({ escapedBody(UnsafeRawBufferPointer($0)) }) != nil { return }
        var s = s
        s.withUTF8 { escapedBody(UnsafeRawBufferPointer($0)) }
    }

    public func endString() { byte(0x22); needsComma = true }

    /// A duration inside a string, as `Timestamp.duration` spells it.
    public func durationText(_ ns: Int64) {
        let (negative, q, decimals, unit) = Timestamp.durationParts(ns)
        if negative { byte(0x2d) }
        if decimals == 0 {
            digits(q)
        } else {
            var scale: UInt64 = 1
            for _ in 0..<decimals { scale *= 10 }
            digits(q / scale)
            byte(0x2e)
            padded(q % scale, decimals)
        }
        unit.withUTF8Buffer { append(UnsafeRawBufferPointer($0)) }
    }

    /// Already-encoded JSON members (`"k":v,…`) inside an open object.
    public func members(_ json: [UInt8]) {
        guard !json.isEmpty else { return }
        separator()
        json.withUnsafeBytes { append($0) }
        needsComma = true
    }

    /// `"2026-11-26T13:50:01.123456789Z"`, as `Timestamp.iso8601` spells it; null for nil.
    /// The text up to the second (`"2026-11-26T13:50:01.`, 21 bytes) is made once per second
    /// and copied after: a report's times come in order, many to a second.
    public func iso8601(_ ns: Int64?) {
        separator()
        needsComma = true
        guard let ns else { ascii("null"); return }
        var second = ns / 1_000_000_000
        var nanos = ns % 1_000_000_000
        if nanos < 0 { nanos += 1_000_000_000; second -= 1 }
        if second != cachedSecond {
            let (days, sod, _) = Timestamp.split(second &* 1_000_000_000)
            let (y, m, d) = Timestamp.civil(days: days)
            guard (0...9999).contains(y) else { escaped(Timestamp.iso8601(ns)); return }
            cachedSecond = second
            let h = sod / 3600, mi = sod / 60 % 60, sec = sod % 60
            func two(_ v: Int64) -> [UInt8] { [UInt8(0x30 + v / 10), UInt8(0x30 + v % 10)] }
            let text: [UInt8] = [0x22, UInt8(0x30 + y / 1000), UInt8(0x30 + y / 100 % 10), UInt8(0x30 + y / 10 % 10), UInt8(0x30 + y % 10), 0x2d]
                + two(m) + [0x2d] + two(d) + [0x54] + two(h) + [0x3a] + two(mi) + [0x3a] + two(sec) + [0x2e]
            withUnsafeMutableBytes(of: &cachedSecondText) { t in
                for i in 0..<21 { t[i] = text[i] }
            }
        }
        reserve(32)
        withUnsafeBytes(of: cachedSecondText) { t in Self.copy(t.baseAddress!, 21, to: UnsafeMutableRawPointer(base + count)) }
        // `nnnnnnnnnZ"`.
        nineDigits(Int(nanos), at: count + 21)
        base[count + 30] = 0x5a
        base[count + 31] = 0x22
        count += 32
    }

    /// Nanoseconds since the epoch as an integer (`1796590540921047000`); null for nil. Its
    /// seconds' digits are made once per second, as `iso8601`'s text.
    public func epochNanos(_ ns: Int64?) {
        guard let ns, ns >= 1_000_000_000 else { int(ns); return }
        separator()
        needsComma = true
        let second = ns / 1_000_000_000
        if second != cachedDigitsSecond {
            cachedDigitsSecond = second
            let w = JSONWriter(capacity: 32)
            w.digits(second)
            cachedSecondDigits = w.bytes
        }
        reserve(32)
        cachedSecondDigits.withUnsafeBytes { append($0) }
        nineDigits(Int(ns % 1_000_000_000), at: count)
        count += 9
    }

    /// `v` (0…999,999,999) as nine digits at `i`, zero-padded, two at a time (the caller
    /// reserved them).
    @inline(__always) private func nineDigits(_ v: Int, at start: Int) {
        var q = v
        var i = start + 7
        for _ in 0..<4 {
            pair(q % 100, at: i)
            q /= 100
            i -= 2
        }
        base[start] = 0x30 &+ UInt8(truncatingIfNeeded: q)
    }

    // MARK: key and value

    public func field(_ k: StaticString, _ v: String?) { key(k); string(v) }
    public func field<I: BinaryInteger>(_ k: StaticString, _ v: I?) { key(k); int(v) }
    public func field(_ k: StaticString, _ v: Bool?) { key(k); bool(v) }
    public func field(_ k: StaticString, _ v: Double?) { key(k); double(v) }
    public func field(_ k: StaticString, endpoint v: Endpoint?) { key(k); endpoint(v) }
    public func field(_ k: StaticString, iso8601 v: Int64?) { key(k); iso8601(v) }
    public func field(_ k: StaticString, epochNanos v: Int64?) { key(k); epochNanos(v) }
    public func field(_ k: StaticString, strings v: [String]) { key(k); strings(v) }

    // MARK: text

    /// Appends text as it is (already JSON).
    public func raw(_ s: String) {
        var s = s
        s.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// A JSON string: quotes, and `"`, `\` and control characters escaped (RFC 8259: `\n`,
    /// `\r`, `\t`, others as `\u00xx`); everything else, UTF-8 included, as it is.
    public func escaped(_ s: String) {
        if s.utf8.withContiguousStorageIfAvailable({ escaped(UnsafeRawBufferPointer($0)) }) != nil { return }
        var s = s
        s.withUTF8 { escaped(UnsafeRawBufferPointer($0)) }
    }

    /// `escaped` for UTF-8 bytes.
    public func escaped(_ p: UnsafeRawBufferPointer) {
        reserve(p.count + 2)
        base[count] = 0x22
        count += 1
        escapedBody(p)
        byte(0x22)
    }

    /// Whether any of the 8 bytes of `x` is below 0x20, `"` or `\` (SWAR: such a byte sets its
    /// high bit in the result; a false alarm only sends the text the slow way).
    @inline(__always) static func special(_ x: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101, high: UInt64 = 0x8080_8080_8080_8080
        let quote = x ^ (ones &* 0x22), backslash = x ^ (ones &* 0x5c)
        return ((x &- ones &* 0x20) & ~x | (quote &- ones) & ~quote | (backslash &- ones) & ~backslash) & high != 0
    }

    /// Whether `p` holds a byte that JSON escapes: a word at a time, the last word overlapping
    /// the one before, a short text padded with `A`s (no per-byte loop for the short pieces a
    /// report's sentences are made of).
    @inline(__always) static func needsEscape(_ p: UnsafeRawBufferPointer) -> Bool {
        let n = p.count
        if n >= 8 {
            var i = 0
            while i + 8 <= n {
                if special(p.loadUnaligned(fromByteOffset: i, as: UInt64.self)) { return true }
                i += 8
            }
            return i < n && special(p.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self))
        }
        var x: UInt64 = 0x4141_4141_4141_4141
        withUnsafeMutableBytes(of: &x) { $0.baseAddress!.copyMemory(from: p.baseAddress!, byteCount: n) }
        return special(x)
    }

    /// The bytes of a JSON string without its quotes.
    func escapedBody(_ p: UnsafeRawBufferPointer) {
        guard p.count > 0 else { return }
        if !Self.needsEscape(p) {
            append(p)
            return
        }
        var start = 0
        var i = 0
        let n = p.count
        while i < n {
            // Eight bytes at a time while none needs escaping (SWAR: a byte below 0x20, or
            // equal to `"` or `\`, sets its high bit in `special`).
            while i + 8 <= n {
                let x = p.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                let ones: UInt64 = 0x0101_0101_0101_0101, high: UInt64 = 0x8080_8080_8080_8080
                let quote = x ^ (ones &* 0x22), backslash = x ^ (ones &* 0x5c)
                let special = ((x &- ones &* 0x20) & ~x) | ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash)
                if special & high != 0 { break }
                i += 8
            }
            guard i < n else { break }
            let b = p[i]
            if b >= 0x20 && b != 0x22 && b != 0x5c { i += 1; continue }
            if i > start { append(UnsafeRawBufferPointer(rebasing: p[start..<i])) }
            switch b {
            case 0x22: ascii("\\\"")
            case 0x5c: ascii("\\\\")
            case 0x0a: ascii("\\n")
            case 0x0d: ascii("\\r")
            case 0x09: ascii("\\t")
            default:
                let hex: StaticString = "0123456789abcdef"
                ascii("\\u00")
                hex.withUTF8Buffer { h in byte(h[Int(b >> 4)]); byte(h[Int(b & 0xf)]) }
            }
            i += 1
            start = i
        }
        if n > start { append(UnsafeRawBufferPointer(rebasing: p[start..<n])) }
    }
}
