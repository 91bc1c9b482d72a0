/// A small strict checker for the HTML the report writes: every element closed in order (void
/// elements excepted), attributes quoted, no raw `<`/`>` in text or attribute values, every `&`
/// an entity, raw text only inside `<style>`. Returns the problems found (empty when well-formed),
/// plus the elements and the text for further assertions.
struct HTMLChecker {
    static let void: Set<String> = ["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"]

    struct Element {
        var name: String
        var attributes: [(String, String)]
        var path: [String]
    }

    var problems: [String] = []
    var elements: [Element] = []
    var text = ""

    init(_ html: String) {
        let s = Array(html.unicodeScalars)
        var i = 0
        var stack: [String] = []
        func fail(_ m: String) { if problems.count < 20 { problems.append("at \(i): \(m)") } }
        func peek(_ str: String) -> Bool {
            let u = Array(str.unicodeScalars)
            guard i + u.count <= s.count else { return false }
            for k in 0..<u.count where s[i + k] != u[k] { return false }
            return true
        }
        func isNameChar(_ c: Unicode.Scalar) -> Bool {
            (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c == "-" || c == ":" || c == "_"
        }
        /// At `&`: checks the entity and returns what it stands for and its length.
        @discardableResult
        func checkEntity() -> (String, Int) {
            var j = i + 1
            let numeric = j < s.count && s[j] == "#"
            if numeric { j += 1 }
            let start = j
            var name = ""
            while j < s.count && isNameChar(s[j]) { name.unicodeScalars.append(s[j]); j += 1 }
            if j == start || j >= s.count || s[j] != ";" { fail("bare &"); return ("&", 1) }
            let named = ["amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'", "nbsp": "\u{a0}"]
            if numeric, let v = UInt32(name), let u = Unicode.Scalar(v) { return (String(Character(u)), j + 1 - i) }
            if let t = named[name] { return (t, j + 1 - i) }
            fail("unknown entity &\(name);")
            return ("", j + 1 - i)
        }
        while i < s.count {
            let c = s[i]
            if c == "<" {
                if peek("<!--") {
                    var j = i + 4
                    while j + 2 < s.count && !(s[j] == "-" && s[j + 1] == "-" && s[j + 2] == ">") { j += 1 }
                    i = j + 3
                    continue
                }
                if peek("<!") {
                    while i < s.count && s[i] != ">" { i += 1 }
                    i += 1
                    continue
                }
                let closing = i + 1 < s.count && s[i + 1] == "/"
                var j = i + (closing ? 2 : 1)
                var name = ""
                while j < s.count && isNameChar(s[j]) { name.unicodeScalars.append(s[j]); j += 1 }
                if name.isEmpty { fail("raw < in text"); i += 1; continue }
                let lower = name.lowercased()
                var attributes: [(String, String)] = []
                var selfClosing = false
                // Attributes.
                while j < s.count {
                    while j < s.count && (s[j] == " " || s[j] == "\n" || s[j] == "\t") { j += 1 }
                    guard j < s.count else { break }
                    if s[j] == ">" { break }
                    if s[j] == "/" && j + 1 < s.count && s[j + 1] == ">" { selfClosing = true; j += 1; break }
                    var an = ""
                    while j < s.count && isNameChar(s[j]) { an.unicodeScalars.append(s[j]); j += 1 }
                    if an.isEmpty { i = j; fail("bad attribute in <\(name)>"); j += 1; continue }
                    var value = ""
                    if j < s.count && s[j] == "=" {
                        j += 1
                        guard j < s.count, s[j] == "\"" || s[j] == "'" else { i = j; fail("unquoted attribute \(an) in <\(name)>"); continue }
                        let q = s[j]
                        j += 1
                        while j < s.count && s[j] != q {
                            if s[j] == "<" || s[j] == ">" { i = j; fail("raw \(s[j]) in attribute \(an) of <\(name)>") }
                            if s[j] == "&" { i = j; checkEntity() }
                            value.unicodeScalars.append(s[j])
                            j += 1
                        }
                        j += 1
                    }
                    attributes.append((an, value))
                }
                i = j + 1
                if closing {
                    if let top = stack.last, top == lower { stack.removeLast() } else { fail("</\(lower)> closes <\(stack.last ?? "nothing")>") }
                    continue
                }
                elements.append(Element(name: lower, attributes: attributes, path: stack))
                if selfClosing || HTMLChecker.void.contains(lower) { continue }
                stack.append(lower)
                if lower == "style" || lower == "script" {
                    // Raw text up to the closing tag.
                    while i < s.count && !peek("</\(lower)") { i += 1 }
                }
                continue
            }
            if c == ">" { fail("raw > in text") }
            if c == "&" {
                let (t, n) = checkEntity()
                text += t
                i += n
                continue
            }
            text.unicodeScalars.append(c)
            i += 1
        }
        if !stack.isEmpty { problems.append("unclosed: \(stack.joined(separator: " > "))") }
    }

    func count(_ name: String, where predicate: (Element) -> Bool = { _ in true }) -> Int {
        elements.filter { $0.name == name && predicate($0) }.count
    }
}

extension HTMLChecker.Element {
    func attribute(_ name: String) -> String? { attributes.first { $0.0 == name }?.1 }
    var classes: [String] { (attribute("class") ?? "").split(separator: " ").map(String.init) }
}
