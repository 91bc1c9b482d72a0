/// "Did you mean …?" for a word a person typed among a few known names (a subcommand's).
public enum Suggestion {
    /// The name closest to `word` (case aside, by `editDistance`) when it is close: at most a
    /// third of its letters apart (one for short names), or `word` begins it (`che` → `check`);
    /// nil otherwise.
    public static func closest(to word: String, among names: [String]) -> String? {
        let word = word.lowercased()
        let ranked = names.map { ($0, editDistance(word, $0)) }.sorted { $0.1 < $1.1 }
        guard let (best, distance) = ranked.first, distance <= max(1, best.count / 3) || best.hasPrefix(word) else { return nil }
        return best
    }

    /// Levenshtein distance between two words (short: subcommand names).
    public static func editDistance(_ a: String, _ b: String) -> Int {
        let x = Array(a), y = Array(b)
        var row = Array(0...y.count)
        for i in 1...max(1, x.count) where !x.isEmpty {
            var previous = row[0]
            row[0] = i
            for j in stride(from: 1, through: y.count, by: 1) {
                let substitution = previous + (x[i - 1] == y[j - 1] ? 0 : 1)
                previous = row[j]
                row[j] = min(substitution, row[j] + 1, row[j - 1] + 1)
            }
        }
        return x.isEmpty ? y.count : row[y.count]
    }
}
