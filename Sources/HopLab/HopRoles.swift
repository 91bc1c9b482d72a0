/// The hop roles the lab's scenarios name (the `role` of a `ReportHop`).
public enum HopRoles {
    public static let inboundIntercepted = "inbound-intercepted"
    public static let inboundForwarded = "inbound-forwarded"
    public static let outboundRedirected = "outbound-redirected"
    public static let outboundForwarded = "outbound-forwarded"
}
