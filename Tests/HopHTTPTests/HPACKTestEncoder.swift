import CNghttp2

/// HPACK blocks for the tests, encoded by nghttp2's deflater (a real peer's encoder: incremental
/// indexing by default, Huffman when shorter), one per direction so its dynamic table evolves as
/// the peer's does.
final class HPACKTestEncoder {
    private let deflater: OpaquePointer

    init(tableSize: Int = 4096) {
        var p: OpaquePointer?
        precondition(nghttp2_hd_deflate_new(&p, tableSize) == 0)
        deflater = p!
    }

    deinit { nghttp2_hd_deflate_del(deflater) }

    /// `neverIndexed`: names sent with NGHTTP2_NV_FLAG_NO_INDEX (literals never indexed, §6.2.3).
    func encode(_ fields: [(String, String)], neverIndexed: Set<String> = []) -> [UInt8] {
        var bytes: [UInt8] = []
        var offsets: [(Int, Int, Int, Int)] = []
        for (n, v) in fields {
            let ns = bytes.count
            bytes += Array(n.utf8)
            let vs = bytes.count
            bytes += Array(v.utf8)
            offsets.append((ns, vs - ns, vs, bytes.count - vs))
        }
        bytes.append(0)
        return bytes.withUnsafeMutableBufferPointer { b -> [UInt8] in
            var nva = zip(offsets, fields).map { o, f in
                nghttp2_nv(name: b.baseAddress! + o.0, value: b.baseAddress! + o.2, namelen: o.1, valuelen: o.3,
                           flags: UInt8(neverIndexed.contains(f.0) ? NGHTTP2_NV_FLAG_NO_INDEX.rawValue : NGHTTP2_NV_FLAG_NONE.rawValue))
            }
            let bound = nghttp2_hd_deflate_bound(deflater, &nva, nva.count)
            var out = [UInt8](repeating: 0, count: bound)
            let n = out.withUnsafeMutableBufferPointer { nghttp2_hd_deflate_hd(deflater, $0.baseAddress, bound, &nva, nva.count) }
            precondition(n >= 0, "nghttp2_hd_deflate_hd: \(n)")
            return Array(out[0..<n])
        }
    }
}
