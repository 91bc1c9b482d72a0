import NIOHPACK
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Header fields of an HTTP/2 block packed into `HTTPHeaders`' one-allocation form straight
/// from NIOHPACK's decoded block: one pass for the sizes, one copy of each name's and value's
/// UTF-8, no intermediate field array (packing through `[HTTPHeader]` and `Array.append` was
/// 15% of `http` on the h2c benchmark capture, callgrind).
extension HTTPHeaders {
    init(packing block: HPACKHeaders) {
        var fields = 0, bytes = 0
        for f in block {
            fields += 1
            bytes += f.name.utf8.count + f.value.utf8.count
        }
        guard fields > 0 else {
            self.init()
            return
        }
        let base = (bytes + 7) & ~7
        let total = base + fields * MemoryLayout<Span>.stride
        let storage = unsafeDowncast(HeadStorage.create(minimumCapacity: total) { _ in total }, to: HeadStorage.self)
        storage.withUnsafeMutablePointerToElements { p in
            let out = UnsafeMutableRawPointer(p)
            var at = 0, i = 0
            func copy(_ s: String) {
                let n = s.utf8.withContiguousStorageIfAvailable { u -> Int in
                    if u.count > 0 { (out + at).copyMemory(from: u.baseAddress!, byteCount: u.count) }
                    return u.count
                }
                if let n {
                    at += n
                } else {
                    for c in s.utf8 {
                        out.storeBytes(of: c, toByteOffset: at, as: UInt8.self)
                        at += 1
                    }
                }
            }
            for f in block where i < fields {
                let ns = Int32(at)
                copy(f.name)
                let vs = Int32(at)
                copy(f.value)
                out.storeBytes(of: Span(nameStart: ns, nameEnd: vs, valueStart: vs, valueEnd: Int32(at)),
                               toByteOffset: base + i * MemoryLayout<Span>.stride, as: Span.self)
                i += 1
            }
            // The padding between the bytes and the spans: defined bytes.
            if base > at { (out + at).initializeMemory(as: UInt8.self, repeating: 0, count: base - at) }
        }
        self.init(storage: storage, spanBase: base, count: fields)
    }

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

    /// The value of the first field named exactly `name`, or nil.
    func value(exactly name: StaticString) -> String? {
        firstIndex(exactly: name).map { value(at: $0) }
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
