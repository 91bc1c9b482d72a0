// HopCorrelation
