import Foundation

/// The proxy the lab runs as the pod's sidecar.
public enum LabSidecar: String, CaseIterable, Sendable {
    /// `hoptrace proxy`: truth from the client's records and the proxy's access log.
    case hoptrace
    /// HAProxy (Debian `haproxy`) in http mode, `http-reuse always`.
    case haproxy
    /// nginx as a reverse proxy with an upstream keepalive pool.
    case nginx
    /// HAProxy speaking HTTP/2 upstream (`proto h2`, prior knowledge) to an h2c app (nginx
    /// `listen 80 http2`): each request HTTP/1.1 on the client's hop and an HTTP/2 stream,
    /// multiplexed on the pool's connections, on the proxy → app hop.
    case haproxyH2 = "haproxy-h2"
    /// `haproxy-h2` with h2c clients as well: HAProxy's one frontend takes HTTP/1.1 and h2c with
    /// prior knowledge (it detects the HTTP/2 preface), so under load h2load, nghttp and
    /// `curl --http2-prior-knowledge` run beside wrk and curl (`LabScene.driveH2CClients`).
    case haproxyH2C = "haproxy-h2c"
    /// HAProxy (h2c from the clients, `proto h2` upstream) in front of a gRPC app: grpcio's server
    /// and client (`LabScene.startGRPCApp`, `driveGRPC`), the app's log by request id.
    case haproxyGRPC = "haproxy-grpc"

    /// HTTP/2 (`proto h2`) from the sidecar to an h2c app.
    public var speaksHTTP2Upstream: Bool { self == .haproxyH2 || self == .haproxyH2C || self == .haproxyGRPC }
    /// Two HAProxies with mutual TLS between them (MTLSScene.swift): a client sidecar in the
    /// client namespace and the pod's sidecar terminating TLS before the plaintext app.
    case haproxyMTLS = "haproxy-mtls"
    /// `haproxy-mtls` with HTTP/2 between the sidecars (ALPN `istio-h2`, HAProxy's h2
    /// multiplexer on both ends), as Istio's sidecars speak when the mesh upgrades to h2: the
    /// pool's requests multiplexed inside the TLS connections, plaintext HTTP/1.1 to the app.
    case haproxyMTLSH2 = "haproxy-mtls-h2"

    /// The mTLS scene (MTLSScene.swift), with HTTP/1.1 or HTTP/2 between the sidecars.
    public var isMTLS: Bool { self == .haproxyMTLS || self == .haproxyMTLSH2 }

    public var isThirdParty: Bool { self != .hoptrace }
    public var executable: String? {
        switch self {
        case .hoptrace: nil
        case .haproxy, .haproxyH2, .haproxyH2C, .haproxyGRPC, .haproxyMTLS, .haproxyMTLSH2: "haproxy"
        case .nginx: "nginx"
        }
    }
}

/// Where the sidecar listens and how it reaches its upstream, per rules layout.
public struct SidecarPlan: Sendable {
    /// 15001 (istio-2018: inbound and outbound) or 15006 (istio-current inbound).
    public var listenPort: Int
    /// The upstream: the app (127.0.0.1:80 inbound) or the remote's address (outbound).
    public var upstream: String
    /// Source address of upstream connections (istio-current inbound: 127.0.0.6).
    public var sourceAddress: String?
    /// The scene's directory for the sidecar's pid, temp and log files (world-writable).
    public var dir: String

    public init(listenPort: Int, upstream: String, sourceAddress: String?, dir: String) {
        self.listenPort = listenPort; self.upstream = upstream; self.sourceAddress = sourceAddress; self.dir = dir
    }

    /// HAProxy's `global` and `defaults` sections as every lab HAProxy runs them (one thread,
    /// the log on stdout, keep-alive), ending with a blank line.
    static func haproxyGlobal(pidfile: String) -> String {
        """
        global
            log stdout format raw local0
            pidfile \(pidfile)
            maxconn 4096
            nbthread 1
            hard-stop-after 3s

        defaults
            mode http
            log global
            option http-keep-alive
            timeout connect 2s
            timeout client 20s
            timeout server 20s
            timeout http-request 10s
            timeout http-keep-alive 20s


        """
    }

    /// HAProxy's configuration: run as uid/gid 1337 (through setpriv, so it never holds root),
    /// its log on stdout in `LabLogFormats.haproxy`, one upstream pool shared by every client
    /// connection (`http-reuse always`), a unique id per request sent as X-Request-Id; with
    /// `h2`, HTTP/2 to the upstream (`proto h2`).
    public func haproxyConfig(h2: Bool = false) -> String {
        Self.haproxyGlobal(pidfile: "\(dir)/haproxy.pid") + """
        frontend sidecar
            bind 0.0.0.0:\(listenPort)
            unique-id-format hl-%pid-%rt
            unique-id-header X-Request-Id
            log-format "\(LabLogFormats.haproxy)"
            default_backend upstream

        backend upstream
            http-reuse always
            server s \(upstream)\(sourceAddress.map { " source \($0)" } ?? "")\(h2 ? " proto h2" : "")

        """
    }

    /// nginx's configuration (the master runs as uid 1337 through setpriv: no `user`): a
    /// keepalive pool to the upstream, `$request_id` as X-Request-Id, the access log in
    /// `LabLogFormats.nginxSidecar`.
    public func nginxConfig() -> String {
        """
        worker_processes 1;
        daemon off;
        master_process on;
        pid \(dir)/nginx.pid;
        error_log \(dir)/error.log warn;
        events { worker_connections 2048; }
        http {
            log_format hoplab \(LabLogFormats.nginxSidecar);
            access_log \(dir)/access.log hoplab;
            client_body_temp_path \(dir)/body;
            proxy_temp_path \(dir)/proxy;
            fastcgi_temp_path \(dir)/fastcgi;
            uwsgi_temp_path \(dir)/uwsgi;
            scgi_temp_path \(dir)/scgi;
            keepalive_requests 100000;
            keepalive_timeout 30s;
            upstream app {
                server \(upstream);
                keepalive 32;
                keepalive_requests 100000;
            }
            server {
                listen 0.0.0.0:\(listenPort);
                server_tokens off;
                location / {
                    proxy_pass http://app;
                    proxy_http_version 1.1;
                    proxy_set_header Connection "";
                    proxy_set_header Host $host;
                    proxy_set_header X-Request-Id $request_id;
                    proxy_buffering off;\(sourceAddress.map { "\n                proxy_bind \($0);" } ?? "")
                }
            }
        }

        """
    }
}
