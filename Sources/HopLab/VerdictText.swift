import Foundation

extension LabVerdict {
    /// The verdict as `hoptrace lab` prints it: one line, then the differences (at most 30),
    /// the pairing metrics, notes and files written.
    public func textLines() -> [String] {
        let t = String(format: "%.1f s", seconds)
        let name = sidecar == LabSidecar.hoptrace.rawValue ? scenario : "\(scenario) (\(sidecar))"
        if let reason = skipped { return ["lab \(name): skipped: \(reason)"] }
        var lines: [String] = []
        if let e = error {
            lines.append("lab \(name): error: \(e) (\(t))")
        } else if differences.isEmpty {
            lines.append("lab \(name): ok — \(requests) request\(requests == 1 ? "" : "s"), \(chains) chain\(chains == 1 ? "" : "s"), \(note) (\(t))")
        } else {
            lines.append("lab \(name): \(differences.count) difference\(differences.count == 1 ? "" : "s") from ground truth (\(t))")
            for d in differences.prefix(30) { lines.append("  \(d)") }
            if differences.count > 30 { lines.append("  … \(differences.count - 30) more") }
        }
        if let p = pairing { for l in p.textLines() { lines.append("  " + l) } }
        for n in notes { lines.append("  note: \(n)") }
        for f in files { lines.append("  wrote \(f)") }
        return lines
    }
}
