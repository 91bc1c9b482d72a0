// The lab's small programs, written to its temp directory and run inside namespaces. Each is a
// file in Scripts/, embedded in the code by the package (`.embedInCode`).

public enum LabScripts {
    /// The built-in app (when nginx is not installed, and for the retry scenario):
    ///   app.py PORT [--reset-once]
    /// GET|HEAD /big → BIG bytes; anything else → "hello\n". With --reset-once the first
    /// connection is reset (SO_LINGER 0) after its request was read, before any response byte.
    public static var app: String { text(PackageResources.app_py) }

    /// nginx's configuration (DIR, BIGFILE substituted).
    public static var nginx: String { text(PackageResources.nginx_conf) }

    /// The lab's client: the ground truth of what was sent. One JSON line per request:
    /// {"conn", "index", "method", "target", "local", "status", "bytes"}.
    ///   client.py HOST PORT seq METHOD TARGET [METHOD TARGET ...]   one connection each, in order
    ///   client.py HOST PORT load N C [same]                          N requests over C keep-alive connections
    ///                                                                (targets unique per request unless `same`)
    ///   client.py HOST PORT pipeline METHOD TARGET [...]             all on one connection, sent at once
    public static var client: String { text(PackageResources.client_py) }

    /// wrk's request script: identical `GET /`, or one target per request (thread and counter).
    /// GET only: wrk's parser does not know a HEAD response has no body.
    public static func wrk(identical: Bool) -> String {
        if identical { return "wrk.method = \"GET\"\nwrk.path = \"/\"\n" }
        return text(PackageResources.wrk_unique_lua)
    }

    /// curl.sh CURL BASEURL PAIRS same|unique: HEAD then GET, PAIRS times, each a new connection;
    /// one line per request: METHOD TARGET LOCAL STATUS.
    public static var curlLoop: String { text(PackageResources.curl_loop_sh) }

    /// h2c-clients.sh CURL NGHTTP BASEURL PAIRS same|unique BODYFILE: curl with prior knowledge
    /// (HEAD, GET) and nghttp (three streams on one connection; a POST every other time);
    /// one line per curl request: METHOD TARGET LOCAL STATUS.
    public static var h2cClients: String { text(PackageResources.h2c_clients_sh) }

    /// grpc-peer.py: grpcio's server (`server PORT [ADDRESS [LOG]]`, the app log per call) and
    /// client (`client [HOST:]PORT [ROUNDS [CHANNELS]]`, one `NAME CODE DETAIL` line per call).
    public static var grpcPeer: String { text(PackageResources.grpc_peer_py) }

    private static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }
}
