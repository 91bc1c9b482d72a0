import CNghttp2
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One direction's HPACK decoder: nghttp2's inflater (libnghttp2, the maintained HTTP/2 library
/// behind curl, nghttpd and h2load), decoding straight into `HTTPHeaders`' packed form. Its API
/// hands each field over as byte pointers (into the block, or into its own table), so a block
/// costs one allocation (the packed fields) and no String; NIOHPACK, used before, made a String
/// per name and value and was 34% of `http` on the h2c benchmark capture (callgrind).
///
/// What it accepts and rejects is what NIOHPACK's `decodeHeaders` did, so the reported problems
/// do not change: a block with an index beyond the table, a truncated field, bad Huffman code, a
/// table size update above the SETTINGS limit or after a field are nghttp2's own errors; on top,
/// as NIOHPACK did, an empty literal name, more than two size updates at the block's head
/// (RFC 7541 §4.2), and a header list (names, values, 32 bytes a field) above
/// `maxHeaderListSize` are rejected. Names and values that are not UTF-8 are repaired as
/// NIOHPACK's Strings repaired them (U+FFFD), so the fields read the same.
///
/// A decoder that failed is not used again: the caller drops it with the table (`resetTable`).
final class HPACKInflater {
    private let inflater: OpaquePointer
    /// The largest table the sender's size updates may name: SETTINGS_HEADER_TABLE_SIZE as the
    /// receiver sent it (only ever raised, as before: a smaller one sent later is not trusted
    /// to be in force yet).
    private(set) var tableLimit: Int
    let maxHeaderListSize: Int

    /// The decoder of a connection seen from its start: a 4,096-byte table (RFC 7541's initial
    /// size). `tableSize` larger: a decoder for a table that was lost (a pickup, a gap), whose
    /// size is unknown: the table may grow to `tableSize` without the sender saying so (its
    /// entries are the sender's newest; an index beyond them fails, never guesses).
    init(maxHeaderListSize: Int, tableSize: Int = 4096) {
        var p: OpaquePointer?
        let rv = nghttp2_hd_inflate_new(&p)
        guard rv == 0, let p else { fatalError("nghttp2_hd_inflate_new: \(rv) (out of memory)") }
        inflater = p
        self.maxHeaderListSize = min(max(1, maxHeaderListSize), Int(Int32.max) / 2)
        tableLimit = 4096
        if tableSize > 4096 {
            raiseTableLimit(to: tableSize)
            // The table's current size is changed only by the sender's size update: one is fed
            // to the decoder (a block of just `001xxxxx` + the size, RFC 7541 §6.3).
            var update: [UInt8] = [0x20 | 31]
            var rest = tableSize - 31
            while rest >= 128 {
                update.append(UInt8(rest & 0x7f) | 0x80)
                rest >>= 7
            }
            update.append(UInt8(rest))
            var nv = nghttp2_nv()
            var flags: Int32 = 0
            let n = update.withUnsafeBufferPointer { nghttp2_hd_inflate_hd2(p, &nv, &flags, $0.baseAddress, $0.count, 1) }
            precondition(n == update.count && flags & Int32(NGHTTP2_HD_INFLATE_FINAL.rawValue) != 0)
            nghttp2_hd_inflate_end_headers(p)
        }
    }

    deinit { nghttp2_hd_inflate_del(inflater) }

    /// SETTINGS_HEADER_TABLE_SIZE from the receiver: the limit only grows.
    func raiseTableLimit(to v: Int) {
        guard v > tableLimit else { return }
        tableLimit = v
        repeats.removeAll()
        repeatNext = 0
        let rv = nghttp2_hd_inflate_change_table_size(inflater, v)
        precondition(rv == 0, "nghttp2_hd_inflate_change_table_size: \(rv)")
    }

    /// Blocks that leave the table as it is, each with the fields nghttp2 decoded from it, while
    /// the table has not changed since (at most `repeatLimit`, the oldest replaced first). An
    /// indexed field and a literal without indexing or never indexed (RFC 7541 §6.1, §6.2.2,
    /// §6.2.3) read the table and do not change it, so the same bytes against the same table are
    /// the same fields: a client that repeats its requests, a server's `:status 200` +
    /// content-type head, gRPC's `grpc-status: 0` trailers are decoded once and then shared (one
    /// packed `HeadStorage`, immutable). Any other block (a field added to the table, a size
    /// update) empties the list before nghttp2 decodes it.
    // Single-thread state (the analyzer's), read for every block: no exclusivity checks.
    @exclusivity(unchecked) private var repeats: [(bytes: [UInt8], fields: HTTPHeaders)] = []
    @exclusivity(unchecked) private var repeatNext = 0
    static let repeatLimit = 8
    /// Longest block kept.
    static let repeatMaxBytes = 256

    /// Whether the block is a whole run of representations that leave the table alone (§6.1
    /// indexed `1xxxxxxx`, §6.2.2 `0000xxxx` and §6.2.3 `0001xxxx` literals, their integers and
    /// string lengths followed to the block's last byte). This only walks the representations'
    /// lengths: what they mean is nghttp2's to decode. False for anything else (a field added to
    /// the table `01xxxxxx`, a size update `001xxxxx`, a length that runs past the block), which
    /// then goes to nghttp2 as any block does.
    static func leavesTableAlone(_ b: UnsafeRawBufferPointer) -> Bool {
        let n = b.count
        guard n > 0 && n <= repeatMaxBytes else { return false }
        var i = 0
        while i < n {
            let c = b[i]
            if c & 0x80 != 0 {
                guard integer(b, at: &i, prefix: 7) != nil else { return false }
            } else if c & 0xe0 == 0 {
                guard let name = integer(b, at: &i, prefix: 4) else { return false }
                if name == 0 && !skipString(b, at: &i) { return false }
                guard skipString(b, at: &i) else { return false }
            } else {
                return false
            }
        }
        return true
    }

    /// An integer with a `prefix`-bit prefix at `i` (RFC 7541 §5.1), `i` moved past it; nil when
    /// it runs past the block or past 2^21.
    @inline(__always)
    private static func integer(_ b: UnsafeRawBufferPointer, at i: inout Int, prefix: Int) -> Int? {
        let mask = (1 << prefix) - 1
        var v = Int(b[i]) & mask
        i += 1
        guard v == mask else { return v }
        var shift = 0
        while true {
            guard i < b.count, shift <= 14 else { return nil }
            let c = Int(b[i])
            i += 1
            v += (c & 0x7f) << shift
            shift += 7
            if c & 0x80 == 0 { return v }
        }
    }

    /// A string literal at `i` (§5.2): its length read and its bytes skipped; false when it runs
    /// past the block.
    @inline(__always)
    private static func skipString(_ b: UnsafeRawBufferPointer, at i: inout Int) -> Bool {
        guard i < b.count, let length = integer(b, at: &i, prefix: 7), length <= b.count - i else { return false }
        i += length
        return true
    }

    /// Decodes one whole header block into `scratch` and packs it; nil when the block cannot be
    /// decoded (the decoder must then be dropped). A block that leaves the table alone, decoded
    /// before with the table as it is now, is answered from `repeats`.
    func decode(_ block: UnsafeRawBufferPointer, scratch: HPACKScratch) -> HTTPHeaders? {
        // A block kept was found to leave the table alone: the same bytes are looked up before
        // they are walked.
        if block.count > 0 && block.count <= Self.repeatMaxBytes {
            for i in repeats.indices where repeats[i].bytes.count == block.count {
                if repeats[i].bytes.withUnsafeBytes({ memcmp($0.baseAddress!, block.baseAddress!, block.count) }) == 0 {
                    return repeats[i].fields
                }
            }
        }
        let keepsTable = Self.leavesTableAlone(block)
        if !keepsTable && !repeats.isEmpty {
            repeats.removeAll(keepingCapacity: true)
            repeatNext = 0
        }
        guard let fields = inflate(block, scratch: scratch) else { return nil }
        if keepsTable {
            let r = (bytes: Array(block), fields: fields)
            if repeats.count < Self.repeatLimit {
                repeats.append(r)
            } else {
                repeats[repeatNext] = r
                repeatNext = (repeatNext + 1) % Self.repeatLimit
            }
        }
        return fields
    }

    /// nghttp2's decoding of one whole block into `scratch`, packed.
    private func inflate(_ block: UnsafeRawBufferPointer, scratch: HPACKScratch) -> HTTPHeaders? {
        if block.count > 0 && block[0] & 0xe0 == 0x20 && Self.leadingSizeUpdates(block) > 2 { return nil }
        scratch.reset()
        let emit = Int32(NGHTTP2_HD_INFLATE_EMIT.rawValue), final = Int32(NGHTTP2_HD_INFLATE_FINAL.rawValue)
        var at = block.baseAddress?.assumingMemoryBound(to: UInt8.self)
        var left = block.count
        var listSize = 0
        var nv = nghttp2_nv()
        while true {
            var flags: Int32 = 0
            let n = nghttp2_hd_inflate_hd2(inflater, &nv, &flags, at, left, 1)
            guard n >= 0 else { return nil }
            if n > 0 {
                at = at! + n
                left -= n
            }
            if flags & emit != 0 {
                guard nv.namelen > 0 else { return nil }
                let ns = scratch.byteCount
                scratch.append(nv.name, nv.namelen)
                let vs = scratch.byteCount
                scratch.append(nv.value, nv.valuelen)
                let end = scratch.byteCount
                listSize &+= end &- ns &+ 32
                guard listSize <= maxHeaderListSize else { return nil }
                // In range: a block's fields stay within the list cap (at most Int32.max / 2).
                scratch.addSpan(HTTPHeaders.Span(nameStart: Int32(truncatingIfNeeded: ns), nameEnd: Int32(truncatingIfNeeded: vs),
                                                 valueStart: Int32(truncatingIfNeeded: vs), valueEnd: Int32(truncatingIfNeeded: end)))
            }
            if flags & final != 0 {
                nghttp2_hd_inflate_end_headers(inflater)
                return scratch.packed()
            }
            if flags & emit == 0 && left == 0 { return nil }  // cannot happen with in_final set
        }
    }

    /// How many dynamic table size updates (`001xxxxx` and the rest of their integer) open the
    /// block: NIOHPACK refused more than two, as RFC 7541 §4.2 allows at most two.
    static func leadingSizeUpdates(_ b: UnsafeRawBufferPointer) -> Int {
        var i = 0, count = 0
        while i < b.count, b[i] & 0xe0 == 0x20 {
            count += 1
            if b[i] & 0x1f == 0x1f {
                i += 1
                while i < b.count, b[i] & 0x80 != 0 { i += 1 }
            }
            i += 1
        }
        return count
    }
}

/// A decoded block's fields while it is being decoded (their bytes and spans), reused from block
/// to block (one per analyzer: single thread), then packed into one `HeadStorage`.
final class HPACKScratch {
    // Single-thread state, written for every field: no exclusivity checks.
    @exclusivity(unchecked) private var bytes: UnsafeMutablePointer<UInt8>
    @exclusivity(unchecked) private var byteCapacity = 1024
    @exclusivity(unchecked) private(set) var byteCount = 0
    @exclusivity(unchecked) private var spans = SpanList()

    init() { bytes = .allocate(capacity: byteCapacity) }

    deinit {
        bytes.deallocate()
        spans.deallocate()
    }

    @inline(__always)
    func reset() {
        byteCount = 0
        spans.removeAll()
    }

    /// Appends a name's or value's bytes; bytes that are not UTF-8 are appended as
    /// `String(decoding:as:)` repairs them (as NIOHPACK's Strings held them).
    @inline(__always)
    func append(_ p: UnsafeMutablePointer<UInt8>?, _ n: Int) {
        guard n > 0, let p else { return }
        if byteCount + n > byteCapacity { grow(n) }
        // Copied eight bytes at a time (the last word overlapping the one before), checking for
        // bytes above 0x7f on the way: no memmove call for names and values this short.
        let out = UnsafeMutableRawPointer(bytes + byteCount)
        let src = UnsafeRawPointer(p)
        var high: UInt64 = 0
        if n >= 8 {
            var k = 0
            while k < n &- 8 {
                let w = src.loadUnaligned(fromByteOffset: k, as: UInt64.self)
                high |= w
                out.storeBytes(of: w, toByteOffset: k, as: UInt64.self)
                k &+= 8
            }
            let w = src.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
            high |= w
            out.storeBytes(of: w, toByteOffset: n - 8, as: UInt64.self)
        } else {
            for k in 0..<n {
                let c = src.load(fromByteOffset: k, as: UInt8.self)
                high |= UInt64(c)
                out.storeBytes(of: c, toByteOffset: k, as: UInt8.self)
            }
        }
        if high & 0x8080_8080_8080_8080 == 0 {
            byteCount &+= n
        } else {
            repair(n)
        }
    }

    /// The `n` bytes just copied hold bytes above 0x7f: they are replaced by their UTF-8 as
    /// `String(decoding:as:)` repairs it (the same bytes when they are UTF-8).
    @inline(never)
    private func repair(_ n: Int) {
        var s = String(decoding: UnsafeBufferPointer(start: bytes + byteCount, count: n), as: UTF8.self)
        s.withUTF8 { u in
            if byteCount + u.count > byteCapacity { grow(u.count) }
            if u.count > 0 { (bytes + byteCount).update(from: u.baseAddress!, count: u.count) }
            byteCount += u.count
        }
    }

    @inline(__always)
    func addSpan(_ sp: HTTPHeaders.Span) { spans.append(sp) }

    @inline(never)
    private func grow(_ n: Int) {
        var c = byteCapacity * 2
        while c < byteCount + n { c *= 2 }
        let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: c)
        grown.update(from: bytes, count: byteCount)
        bytes.deallocate()
        bytes = grown
        byteCapacity = c
    }

    /// The fields as one `HeadStorage` (bytes, zero padding to 8, spans).
    func packed() -> HTTPHeaders {
        let spanCount = spans.count
        guard spanCount > 0 else { return HTTPHeaders() }
        let base = (byteCount + 7) & ~7
        let total = base + spanCount * MemoryLayout<HTTPHeaders.Span>.stride
        let storage = unsafeDowncast(HeadStorage.create(minimumCapacity: total) { _ in total }, to: HeadStorage.self)
        storage.withUnsafeMutablePointerToElements { out in
            if byteCount > 0 { out.update(from: bytes, count: byteCount) }
            if base > byteCount { (out + byteCount).initialize(repeating: 0, count: base - byteCount) }
            UnsafeMutableRawPointer(out + base).copyMemory(from: spans.base, byteCount: spanCount * MemoryLayout<HTTPHeaders.Span>.stride)
        }
        return HTTPHeaders(storage: storage, spanBase: base, count: spanCount)
    }
}

extension HTTPHeaders {
    /// The index of the first field whose name is exactly `name` (bytes compared as they are:
    /// HTTP/2 names are lowercase on the wire, and one that is not is not the pseudo-header or
    /// field asked for).
    func firstIndex(exactly name: StaticString) -> Int? {
        guard count > 0 else { return nil }
        let q = UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)
        return withExtendedLifetime(self) {
            let r = raw
            for i in 0..<count {
                let sp = span(i)
                guard Int(sp.nameEnd - sp.nameStart) == q.count else { continue }
                if q.count == 0 || memcmp(r.baseAddress! + Int(sp.nameStart), q.baseAddress!, q.count) == 0 { return i }
            }
            return nil
        }
    }

    /// The first fields an HTTP/2 request is read from, in one pass: `:method`, `:path` and
    /// `:authority` named exactly; `host` and `:authority` in any ASCII case (as
    /// `HTTPRequest.host` looks them up).
    func requestFacts() -> (method: Int?, path: Int?, authority: Int?, host: Int?, authorityAnyCase: Int?) {
        var method: Int?, path: Int?, authority: Int?, host: Int?, authorityAnyCase: Int?
        guard count > 0 else { return (nil, nil, nil, nil, nil) }
        withExtendedLifetime(self) {
            let r = raw
            func named(_ sp: Span, _ q: StaticString, anyCase: Bool) -> Bool {
                let n = q.utf8CodeUnitCount
                guard Int(sp.nameEnd - sp.nameStart) == n else { return false }
                let p = q.utf8Start
                var k = 0
                let at = Int(sp.nameStart)
                if anyCase {
                    while k < n, lowerASCII(r[at + k]) == p[k] { k += 1 }
                } else {
                    while k < n, r[at + k] == p[k] { k += 1 }
                }
                return k == n
            }
            for i in 0..<count {
                let sp = span(i)
                switch sp.nameEnd - sp.nameStart {
                case 4:
                    if host == nil, named(sp, "host", anyCase: true) { host = i }
                case 5:
                    if path == nil, named(sp, ":path", anyCase: false) { path = i }
                case 7:
                    if method == nil, named(sp, ":method", anyCase: false) { method = i }
                case 10:
                    if authorityAnyCase == nil, named(sp, ":authority", anyCase: true) { authorityAnyCase = i }
                    if authority == nil, named(sp, ":authority", anyCase: false) { authority = i }
                default:
                    break
                }
            }
        }
        return (method, path, authority, host, authorityAnyCase)
    }

    /// The value of the first field named exactly `name`, or nil.
    func value(exactly name: StaticString) -> String? {
        firstIndex(exactly: name).map { value(at: $0) }
    }

    /// Whether the first field named exactly `name` has a value that begins with `prefix` (ASCII),
    /// as `value(exactly:)?.hasPrefix(prefix)` answers, without making the String unless a byte
    /// after the prefix is not ASCII (a combining mark there would join the prefix's last
    /// character).
    func valueHasPrefix(exactly name: StaticString, _ prefix: StaticString) -> Bool {
        guard let i = firstIndex(exactly: name) else { return false }
        let sp = span(i)
        let n = prefix.utf8CodeUnitCount
        guard Int(sp.valueEnd) - Int(sp.valueStart) >= n else { return false }
        let start = Int(sp.valueStart)
        let verdict: Bool? = withExtendedLifetime(self) {
            let r = raw
            guard memcmp(r.baseAddress! + start, prefix.utf8Start, n) == 0 else { return false }
            return start + n == Int(sp.valueEnd) || r[start + n] < 0x80 ? true : nil
        }
        return verdict ?? value(at: i).hasPrefix(String(describing: prefix))
    }

    /// `Int(value)` of the first field named exactly `name`, read from its bytes as `Int(_:)`
    /// reads a String (an optional `+` or `-`, then ASCII digits only; nil when there are none,
    /// for anything else, and on overflow), without making the String.
    func intValue(exactly name: StaticString) -> Int? {
        guard let i = firstIndex(exactly: name) else { return nil }
        let sp = span(i)
        return withExtendedLifetime(self) { () -> Int? in
            let r = raw
            var k = Int(sp.valueStart)
            let end = Int(sp.valueEnd)
            var negative = false
            if k < end && (r[k] == 0x2b || r[k] == 0x2d) {
                negative = r[k] == 0x2d
                k += 1
            }
            guard k < end else { return nil }
            var v = 0
            while k < end {
                let digit = r[k] &- 0x30
                guard digit < 10 else { return nil }
                let (m, o1) = v.multipliedReportingOverflow(by: 10)
                let (n, o2) = negative ? m.subtractingReportingOverflow(Int(digit)) : m.addingReportingOverflow(Int(digit))
                if o1 || o2 { return nil }
                v = n
                k += 1
            }
            return v
        }
    }
}
