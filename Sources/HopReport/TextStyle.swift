#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How text for people is laid out: the width lines wrap at and whether they are coloured.
///
/// `standardOutput()` decides it the way every command does: on a terminal the width is
/// `$COLUMNS` (else the terminal's own, else 80) and colour is on unless `NO_COLOR` is set to
/// anything but the empty string (https://no-color.org) or `TERM` is `dumb`; not on a terminal,
/// 80 columns and never colour.
public struct TextStyle: Sendable, Equatable {
    public var width: Int
    public var color: Bool

    public init(width: Int = 80, color: Bool = false) {
        self.width = max(40, width)
        self.color = color
    }

    /// 80 columns, no colour: what a file or a pipe gets.
    public static let plain = TextStyle()

    /// The style for standard output (file descriptor 1), from `environment` (the process's).
    public static func standardOutput(environment: [String: String]? = nil) -> TextStyle {
        let env = environment ?? Self.processEnvironment()
        return Self.decide(isTerminal: isatty(1) == 1, environment: env, terminalWidth: Self.terminalWidth())
    }

    /// The rule `standardOutput` applies, given what it found.
    public static func decide(isTerminal: Bool, environment env: [String: String], terminalWidth: Int?) -> TextStyle {
        guard isTerminal else { return .plain }
        let width = env["COLUMNS"].flatMap { Int($0) }.flatMap { $0 > 0 ? $0 : nil } ?? terminalWidth ?? 80
        let noColor = !(env["NO_COLOR"] ?? "").isEmpty || env["TERM"] == "dumb"
        return TextStyle(width: width, color: !noColor)
    }

    /// Whether colour is on for file descriptor `fd` (a terminal and no `NO_COLOR`): what the
    /// streaming commands ask.
    public static func colorOn(fd: Int32 = 1, environment: [String: String]? = nil) -> Bool {
        let env = environment ?? Self.processEnvironment()
        return decide(isTerminal: isatty(fd) == 1, environment: env, terminalWidth: nil).color
    }

    static func terminalWidth() -> Int? {
        var w = winsize()
        guard ioctl(1, UInt(TIOCGWINSZ), &w) == 0, w.ws_col > 0 else { return nil }
        return Int(w.ws_col)
    }

    static func processEnvironment() -> [String: String] {
        var out: [String: String] = [:]
        for key in ["COLUMNS", "NO_COLOR", "TERM"] {
            if let v = getenv(key) { out[key] = String(cString: v) }
        }
        return out
    }

    // MARK: colour

    public enum Color: String, Sendable {
        case bold = "1"
        case dim = "2"
        case red = "31"
        case green = "32"
        case yellow = "33"
        case blue = "34"
        case cyan = "36"
        case gray = "90"

        /// A response's status: 5xx red, 4xx yellow, the rest green.
        public static func status(_ status: Int) -> Color { status >= 500 ? .red : status >= 400 ? .yellow : .green }

        /// The escape that starts this colour, and the one that ends any.
        public var start: String { "\u{1B}[\(rawValue)m" }
        public static let end = "\u{1B}[0m"
    }

    /// `s` in colour `c` when colour is on.
    public func paint(_ s: String, _ c: Color) -> String {
        color && !s.isEmpty ? c.start + s + Color.end : s
    }

    /// `line` with its first `prefix` characters in colour `c`.
    public func paint(_ line: String, prefix: Int, _ c: Color) -> String {
        guard color, prefix > 0 else { return line }
        let i = line.index(line.startIndex, offsetBy: min(prefix, line.count))
        return paint(String(line[..<i]), c) + line[i...]
    }

    /// A `packets` line with its flags in colour: red for a reset.
    public func packetLine(_ line: String, reset: Bool) -> String {
        guard color, reset else { return line }
        return line.replacingFirst("Flags [", with: "\u{1B}[31mFlags [").replacingFirst("], ", with: "]\u{1B}[0m, ")
    }

    /// A `flows` line with a reset in red and its anomalies in yellow.
    public func flowLine(_ line: String) -> String {
        guard color else { return line }
        var l = line
        for reason in [" rst-by-client", " rst-by-server"] where l.contains(reason) {
            l = l.replacingFirst(reason, with: paint(reason, .red))
            break
        }
        return l.replacingFirst(" anomalies:", with: paint(" anomalies:", .yellow))
    }

    /// A `check` line: ok in green, differences and errors in red.
    public func checkLine(_ line: String) -> String {
        guard color else { return line }
        for (word, c) in [(": ok", Color.green), (": error:", .red), (" difference", .red)] where line.contains(word) {
            return line.replacingFirst(word, with: paint(word, c))
        }
        return line
    }

    // MARK: wrapping

    /// `text` after `first` on lines of at most `width` characters, words kept whole (a word
    /// longer than a line is cut), continuation lines indented by `indent` spaces (a hanging
    /// indent). The spaces between two words on one line are kept as they are (columns stay
    /// apart); a line break takes their place.
    public func wrap(_ text: String, first: String = "", indent: Int) -> [String] {
        let pad = String(repeating: " ", count: indent)
        var words: [(gap: Int, word: Substring)] = []
        var gap = 0
        for part in text.split(separator: " ", omittingEmptySubsequences: false) {
            if part.isEmpty { gap += 1; continue }
            words.append((words.isEmpty ? 0 : gap + 1, part))
            gap = 0
        }
        var lines: [String] = []
        var line = first
        var lineHasWord = false
        var length = first.count
        let start = length
        for (wordGap, word) in words {
            var w = word
            while true {
                let spaces = lineHasWord ? wordGap : 0
                if length + spaces + w.count <= width {
                    line += String(repeating: " ", count: spaces) + w
                    length += spaces + w.count
                    lineHasWord = true
                    break
                }
                if lineHasWord || (length > indent && length > start) {
                    lines.append(line)
                    line = pad
                    length = indent
                    lineHasWord = false
                    continue
                }
                // A word longer than the line: cut it.
                let room = max(1, width - length)
                line += w.prefix(room)
                lines.append(line)
                w = w.dropFirst(room)
                line = pad
                length = indent
                lineHasWord = false
                if w.isEmpty { break }
            }
        }
        if lineHasWord || lines.isEmpty { lines.append(line) }
        return lines
    }
}
