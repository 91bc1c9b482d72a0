/// Writes `v`'s decimal digits (after a '-' when negative) at `base + start`, where at least
/// 21 bytes must be free; returns the index after the last digit. The one integer formatter of
/// the byte writers (JSON output, the command line's lines): no String per number.
@inlinable
public func writeDecimal<I: BinaryInteger>(_ v: I, to base: UnsafeMutablePointer<UInt8>, at start: Int) -> Int {
    var count = start
    if v < 0 { base[count] = 0x2d; count += 1 }
    var m = UInt64(v.magnitude)
    var digits = 1
    var t = m
    while t >= 10 { t /= 10; digits += 1 }
    let end = count + digits
    var i = end
    repeat {
        i -= 1
        base[i] = 0x30 &+ UInt8(truncatingIfNeeded: m % 10)
        m /= 10
    } while m > 0
    return end
}
