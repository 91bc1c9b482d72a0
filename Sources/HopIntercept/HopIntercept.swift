// HopIntercept
