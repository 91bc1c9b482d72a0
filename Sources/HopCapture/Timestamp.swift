#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Formatting of capture timestamps (nanoseconds since the Unix epoch), without Foundation:
/// ISO 8601 always in UTC; the time of day in UTC unless `localTime` is set.
public enum Timestamp {
    /// `timeOfDay` and `dateAndTime` print the local time zone's time (the command line's
    /// default, as tcpdump) instead of UTC. Set once, before any thread formats a time.
    nonisolated(unsafe) public static var localTime = false

    /// The local time zone's offset from UTC at `seconds` since the epoch, in seconds.
    public static func localOffset(seconds: Int64) -> Int64 {
        var t = time_t(seconds)
        var parts = tm()
        guard localtime_r(&t, &parts) != nil else { return 0 }
        return Int64(parts.tm_gmtoff)
    }

    /// `ns` moved into the time zone times of day are printed in.
    @inline(__always)
    public static func displayed(_ ns: Int64) -> Int64 {
        guard localTime else { return ns }
        let (offset, overflow) = ns.addingReportingOverflow(localOffset(seconds: ns / 1_000_000_000) * 1_000_000_000)
        return overflow ? ns : offset
    }

    /// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    public static func civil(days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }

    @inline(__always)
    static func pad(_ v: Int64, _ width: Int) -> String {
        let s = String(v)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }

    public static func split(_ ns: Int64) -> (days: Int64, secOfDay: Int64, nanos: Int64) {
        var secs = ns / 1_000_000_000
        var nanos = ns % 1_000_000_000
        if nanos < 0 { nanos += 1_000_000_000; secs -= 1 }
        var days = secs / 86_400
        var sod = secs % 86_400
        if sod < 0 { sod += 86_400; days -= 1 }
        return (days, sod, nanos)
    }

    /// `2026-11-26T13:50:01.123456789Z`
    public static func iso8601(_ ns: Int64) -> String {
        let (days, sod, nanos) = split(ns)
        let (y, m, d) = civil(days: days)
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(sod / 3600, 2)):\(pad(sod / 60 % 60, 2)):\(pad(sod % 60, 2)).\(pad(nanos, 9))Z"
    }

    /// `13:50:01.123456789` (UTC, or local with `localTime`), as tcpdump prints the time of day.
    public static func timeOfDay(_ ns: Int64) -> String {
        let (_, sod, nanos) = split(displayed(ns))
        return "\(pad(sod / 3600, 2)):\(pad(sod / 60 % 60, 2)):\(pad(sod % 60, 2)).\(pad(nanos, 9))"
    }

    /// `2026-11-26 13:50:01.123456789` (UTC, or local with `localTime`), as tcpdump -tttt.
    public static func dateAndTime(_ ns: Int64) -> String {
        let (days, _, _) = split(displayed(ns))
        let (y, m, d) = civil(days: days)
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2)) " + timeOfDay(ns)
    }

    /// `1764251401.123456789`: seconds since the epoch, as tcpdump -tt.
    public static func epochSeconds(_ ns: Int64) -> String {
        let (days, sod, nanos) = split(ns)
        return "\(days * 86_400 + sod).\(pad(nanos, 9))"
    }

    /// `00:00:00.000840000`: a time since another, as tcpdump -ttt and -ttttt.
    public static func deltaSeconds(_ ns: Int64) -> String {
        let (days, sod, nanos) = split(max(ns, 0))
        return "\(pad(days * 24 + sod / 3600, 2)):\(pad(sod / 60 % 60, 2)):\(pad(sod % 60, 2)).\(pad(nanos, 9))"
    }

    /// `to - from`, saturated at the ends of `Int64` instead of trapping on overflow: report
    /// arithmetic on capture times never crashes, whatever the capture holds.
    @inline(__always)
    public static func elapsed(from: Int64, to: Int64) -> Int64 {
        let (d, overflow) = to.subtractingReportingOverflow(from)
        if !overflow { return d }
        return to > from ? .max : .min
    }

    /// The digits of a duration: the unit suffix and its magnitude in units of
    /// 10^-decimals of that unit, computed without any multiplication (no overflow for any
    /// `Int64`, `Int64.min` included).
    @inline(__always)
    public static func durationParts(_ ns: Int64) -> (negative: Bool, scaled: UInt64, decimals: Int, unit: StaticString) {
        let a = ns.magnitude
        if a < 1_000 { return (ns < 0, a, 0, " ns") }
        if a < 1_000_000 { return (ns < 0, a / 100, 1, " µs") }
        if a < 1_000_000_000 { return (ns < 0, a / 10_000, 2, " ms") }
        return (ns < 0, a / 1_000_000, 3, " s")
    }

    /// A duration in a readable unit: `840 ns`, `12.3 µs`, `4.56 ms`, `1.234 s`. Any `Int64`
    /// is accepted (a huge or negative value prints as such; it never traps).
    public static func duration(_ ns: Int64) -> String {
        let (negative, q, decimals, unit) = durationParts(ns)
        var out = negative ? "-" : ""
        if decimals == 0 {
            out += String(q)
        } else {
            var scale: UInt64 = 1
            for _ in 0..<decimals { scale *= 10 }
            let frac = String(q % scale)
            out += String(q / scale) + "." + String(repeating: "0", count: decimals - frac.count) + frac
        }
        return out + unit.description
    }
}
