// HopReport
