import HopCorrelation

/// `--format mermaid`: a sequence diagram of the chains.
public enum MermaidReport {
    public static func render(_ r: AnalysisReport) -> String {
        "sequenceDiagram\n"
    }
}
