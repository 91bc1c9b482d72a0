import HopCorrelation

/// `--format html`: one self-contained page.
public enum HTMLReport {
    public static func render(_ r: AnalysisReport) -> String {
        "<!doctype html>\n"
    }
}
