// Wall-clock time for the access log: now, and RFC 3339 text.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum WallClock {
    /// RFC 3339 in UTC with milliseconds (`"2024-05-01T12:34:56.789Z"`, quoted), appended to
    /// `out`; the civil date computed without gmtime (the tests compare it with gmtime_r).
    static func appendRFC3339(_ nanos: Int64, to out: inout [UInt8]) {
        let seconds = nanos >= 0 ? nanos / 1_000_000_000 : (nanos - 999_999_999) / 1_000_000_000
        let millis = Int((nanos - seconds * 1_000_000_000) / 1_000_000)
        var days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let secOfDay = Int(seconds - days * 86400)
        // Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's civil_from_days).
        days += 719_468
        let era = (days >= 0 ? days : days - 146_096) / 146_097
        let doe = days - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = Int(doy - (153 * mp + 2) / 5 + 1)
        let month = Int(mp < 10 ? mp + 3 : mp - 9)
        let year = Int(yoe + era * 400) + (month <= 2 ? 1 : 0)
        func put(_ v: Int, _ width: Int) {
            var div = 1
            for _ in 1..<width { div *= 10 }
            var v = v
            while div > 0 {
                out.append(UInt8(truncatingIfNeeded: v / div % 10) + 0x30)
                v %= div
                div /= 10
            }
        }
        out.append(UInt8(ascii: "\""))
        put(year, 4); out.append(0x2D)
        put(month, 2); out.append(0x2D)
        put(day, 2); out.append(0x54)
        put(secOfDay / 3600, 2); out.append(0x3A)
        put(secOfDay / 60 % 60, 2); out.append(0x3A)
        put(secOfDay % 60, 2); out.append(0x2E)
        put(millis, 3); out.append(0x5A)
        out.append(UInt8(ascii: "\""))
    }

    /// Nanoseconds since the Unix epoch.
    static func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }
}
