//! The config file's shape. Every struct denies unknown fields: a misspelt key is an error, not
//! a silently ignored setting.

use std::net::SocketAddr;
use std::time::Duration;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use switchyard_filters::router::RouteConfig;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerSettings,
    #[serde(default)]
    pub admin: AdminSettings,
    #[serde(default)]
    pub access_log: AccessLogSettings,
    #[serde(default)]
    pub backends: Vec<BackendConfig>,
    #[serde(default)]
    pub listeners: Vec<ListenerConfig>,
    /// Gateway API manifests to serve beside (or instead of) `listeners` and `backends`; they
    /// are translated into listeners, routes, backends and filters of this same model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_api: Option<GatewayApiSettings>,
}

/// Where the Gateway API manifests are, which of their Gateways to serve, and where their
/// addresses and Services are on this machine (there is no cluster to ask).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayApiSettings {
    /// Files or folders of multi-document YAML, relative to the config file. A folder's
    /// `*.yaml` and `*.yml` files are read in name order (not its subfolders).
    pub manifests: Vec<PathBuf>,
    /// Serve the Gateways whose `spec.gatewayClassName` is this.
    pub gateway_class: String,
    /// Gateway `namespace/name` -> the IP its listeners bind, on the manifest's own ports.
    /// Without an entry: the first IP of `spec.addresses`, else 0.0.0.0.
    #[serde(default)]
    pub gateway_addresses: std::collections::BTreeMap<String, std::net::IpAddr>,
    /// Service backendRef `namespace/name:port` -> `host:port`. A Service without an entry
    /// does not resolve.
    #[serde(default)]
    pub services: std::collections::BTreeMap<String, String>,
    /// TLS Secret `namespace/name` -> its certificate and key files, for the Secrets an
    /// HTTPS listener's `certificateRefs` name that are not in the manifests.
    #[serde(default)]
    pub secrets: std::collections::BTreeMap<String, SecretFiles>,
}

/// The files of a TLS Secret, relative to the config file's folder.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SecretFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Worker threads per listener (pingora's `threads`). Default: the number of cores.
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// On SIGTERM the listeners stop accepting at once; requests in flight get up to this long
    /// to finish, and the process exits as soon as none is left.
    #[serde(default = "default_shutdown_timeout", with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Idle upstream connections kept for reuse, across all backends. With more requests in
    /// flight than this, most responses close their upstream connection and the next request
    /// opens one: at 512 client connections, 128 (pingora's default) gives half the
    /// requests/s of a pool that holds them all (`bench/matrix.sh`, README).
    #[serde(default = "default_keepalive_pool")]
    pub upstream_keepalive_pool_size: usize,
    /// How backend host names are resolved while the gateway runs.
    #[serde(default)]
    pub dns: DnsSettings,
}

/// The resolver of backend host names: its servers, and how often a name is looked up again.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSettings {
    /// Name servers, `ip` or `ip:port` (port 53 when left out). Empty: those of
    /// `/etc/resolv.conf`, with its search domains and `/etc/hosts`.
    #[serde(default)]
    pub servers: Vec<DnsServer>,
    /// A name is looked up again when its records' TTL ends, but not sooner than this...
    #[serde(default = "default_dns_min_refresh", with = "humantime_serde")]
    pub min_refresh: Duration,
    /// ...nor later than this; also the longest wait between retries of a failing lookup.
    #[serde(default = "default_dns_max_refresh", with = "humantime_serde")]
    pub max_refresh: Duration,
    /// How long one query waits for an answer from one server (each lookup tries twice).
    #[serde(default = "default_dns_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for DnsSettings {
    fn default() -> Self {
        DnsSettings {
            servers: Vec::new(),
            min_refresh: default_dns_min_refresh(),
            max_refresh: default_dns_max_refresh(),
            timeout: default_dns_timeout(),
        }
    }
}

fn default_dns_min_refresh() -> Duration {
    Duration::from_secs(5)
}

fn default_dns_max_refresh() -> Duration {
    Duration::from_secs(300)
}

fn default_dns_timeout() -> Duration {
    Duration::from_secs(2)
}

/// A name server's address: `ip` or `ip:port`; written back the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DnsServer(pub SocketAddr);

impl std::str::FromStr for DnsServer {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(address) = s.parse::<SocketAddr>() {
            return Ok(DnsServer(address));
        }
        s.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .map(|ip| DnsServer(SocketAddr::new(ip, 53)))
            .map_err(|_| format!("`{s}` is not an IP address, with or without a port"))
    }
}

impl<'de> Deserialize<'de> for DnsServer {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for DnsServer {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            threads: default_threads(),
            shutdown_timeout: default_shutdown_timeout(),
            upstream_keepalive_pool_size: default_keepalive_pool(),
            dns: DnsSettings::default(),
        }
    }
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn default_shutdown_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_keepalive_pool() -> usize {
    1024
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    #[serde(default = "default_admin_address")]
    pub address: SocketAddr,
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings {
            address: default_admin_address(),
        }
    }
}

fn default_admin_address() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9901))
}

/// One JSON line per request. Secrets never appear: the token is not logged, the path is logged
/// without its query string, and credential headers cannot be listed.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccessLogSettings {
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// A file to append to; absent: standard output.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Request headers to log, as the router saw them (after `pre_routing` filters).
    #[serde(default = "default_logged_headers")]
    pub headers: Vec<String>,
}

impl Default for AccessLogSettings {
    fn default() -> Self {
        AccessLogSettings {
            enabled: true,
            path: None,
            headers: default_logged_headers(),
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_logged_headers() -> Vec<String> {
    vec![
        "x-version-override".to_owned(),
        "x-tenant-version".to_owned(),
    ]
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    pub name: String,
    #[serde(rename = "static")]
    pub endpoint: StaticEndpoint,
    /// Speak TLS to the backend. Absent: plain HTTP.
    #[serde(default)]
    pub tls: Option<BackendTls>,
    /// The HTTP version spoken to the backend: `http1` (default), `h2` (HTTP/2 over TLS,
    /// chosen by ALPN; needs `tls`) or `h2c` (HTTP/2 in plaintext, with prior knowledge).
    /// gRPC backends need `h2` or `h2c`.
    #[serde(default)]
    pub protocol: BackendProtocol,
    /// Time allowed to establish a TCP connection.
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Time allowed between reads from the backend: for the response header and between body
    /// chunks. Exceeding it answers 504.
    #[serde(default = "default_read_timeout", with = "humantime_serde")]
    pub read_timeout: Duration,
    /// Time allowed for each write of the request to the backend.
    #[serde(default = "default_write_timeout", with = "humantime_serde")]
    pub write_timeout: Duration,
    /// How long an unused upstream connection stays in the keepalive pool.
    #[serde(default = "default_idle_timeout", with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Probe each host over HTTP and send traffic only to hosts that pass. Absent: hosts are
    /// judged by real traffic alone (`outlier_detection`).
    #[serde(default)]
    pub health_check: Option<HealthCheckConfig>,
    /// Take a host out of rotation after consecutive failures of real requests.
    #[serde(default)]
    pub outlier_detection: OutlierDetectionConfig,
    /// Further hosts to try when connecting to one fails. Only a connection that failed
    /// before any byte of the request was sent is retried, so a retry never repeats a request
    /// a backend has seen.
    #[serde(default = "default_connect_retries")]
    pub connect_retries: u32,
    /// Requests of this backend in flight at once; past it, 503 `upstream_overloaded` at
    /// once. Absent: no bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u32>,
    /// Exchanges with this backend at once (each an upstream connection in use; on an
    /// HTTP/2 backend, a stream). Absent: no bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    /// Requests that may wait for one of `max_connections` to free, each for at most
    /// `connect_timeout`; past it, 503 `upstream_overloaded` at once. Default 0: no waiting.
    #[serde(default)]
    pub max_pending: u32,
    /// How much routes' retries may add to this backend's load.
    #[serde(default)]
    pub retry_budget: RetryBudgetConfig,
}

/// Retries may add at most `ratio` of a backend's requests, plus `min_per_second` (Linkerd's
/// defaults: 0.2 and 10).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetryBudgetConfig {
    #[serde(default = "default_retry_ratio")]
    pub ratio: f64,
    #[serde(default = "default_min_retries")]
    pub min_per_second: u32,
}

impl Default for RetryBudgetConfig {
    fn default() -> Self {
        RetryBudgetConfig {
            ratio: default_retry_ratio(),
            min_per_second: default_min_retries(),
        }
    }
}

fn default_retry_ratio() -> f64 {
    0.2
}

fn default_min_retries() -> u32 {
    10
}

impl BackendConfig {
    /// A backend at one `host` and `port`, every other setting at its default.
    pub fn single(name: String, host: String, port: u16) -> Self {
        BackendConfig {
            name,
            endpoint: StaticEndpoint {
                host: Some(host),
                port: Some(port),
                hosts: Vec::new(),
            },
            tls: None,
            protocol: BackendProtocol::default(),
            connect_timeout: default_connect_timeout(),
            read_timeout: default_read_timeout(),
            write_timeout: default_write_timeout(),
            idle_timeout: default_idle_timeout(),
            health_check: None,
            outlier_detection: OutlierDetectionConfig::default(),
            connect_retries: default_connect_retries(),
            max_requests: None,
            max_connections: None,
            max_pending: 0,
            retry_budget: RetryBudgetConfig::default(),
        }
    }
}

fn default_connect_retries() -> u32 {
    2
}

/// Active health checking: a GET to `path` on every host, every `interval`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckConfig {
    /// The path probed; any 2xx answer passes.
    pub path: String,
    /// The `Host` header of the probe. Absent: the host's own name and port.
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default = "default_check_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Time allowed for one probe, connection included.
    #[serde(default = "default_check_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Consecutive passed probes that bring an unhealthy host back.
    #[serde(default = "default_healthy_threshold")]
    pub healthy_threshold: u32,
    /// Consecutive failed probes that take a healthy host out.
    #[serde(default = "default_unhealthy_threshold")]
    pub unhealthy_threshold: u32,
}

fn default_check_interval() -> Duration {
    Duration::from_secs(5)
}

fn default_check_timeout() -> Duration {
    Duration::from_secs(1)
}

fn default_healthy_threshold() -> u32 {
    2
}

fn default_unhealthy_threshold() -> u32 {
    3
}

/// Passive health: a host whose requests fail `consecutive_failures` times in a row (it
/// refuses or drops connections, times out, or answers 502, 503 or 504) is ejected for
/// `ejection_time`, then given traffic again.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutlierDetectionConfig {
    /// 0 turns passive ejection off.
    #[serde(default = "default_consecutive_failures")]
    pub consecutive_failures: u32,
    #[serde(default = "default_ejection_time", with = "humantime_serde")]
    pub ejection_time: Duration,
}

impl Default for OutlierDetectionConfig {
    fn default() -> Self {
        OutlierDetectionConfig {
            consecutive_failures: default_consecutive_failures(),
            ejection_time: default_ejection_time(),
        }
    }
}

fn default_consecutive_failures() -> u32 {
    5
}

fn default_ejection_time() -> Duration {
    Duration::from_secs(30)
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(2)
}

fn default_read_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_write_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_idle_timeout() -> Duration {
    Duration::from_secs(60)
}

/// The HTTP version a backend speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendProtocol {
    #[default]
    Http1,
    H2,
    H2c,
}

/// TLS to a backend. The certificate is always verified (chain and name); there is no switch
/// to turn that off.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BackendTls {
    /// The name sent as SNI and checked against the certificate. Defaults to `static.host`
    /// when that is a name; required when it is an IP address.
    #[serde(default)]
    pub sni: Option<String>,
    /// PEM file of the CA certificates to trust; absent: the system's roots. Relative paths
    /// start at the config file's folder.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM certificate chain to present to the backend (mutual TLS), with `client_key`.
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`.
    #[serde(default)]
    pub client_key: Option<PathBuf>,
}

/// Where a backend runs: one `host` and `port`, or a list of `hosts` that share its traffic
/// by weight. A host given by name is resolved while the gateway runs (`server.dns`): each of
/// its addresses becomes a host with the entry's weight.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StaticEndpoint {
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub hosts: Vec<HostConfig>,
}

impl StaticEndpoint {
    /// The hosts, each with its field path below the backend: the one `static.host` and
    /// `static.port`, or each of `static.hosts`. Whether the endpoint is well formed (one form
    /// or the other, not both) is for validation to say.
    pub fn host_list(&self) -> Vec<(HostConfig, String)> {
        match (&self.host, self.port) {
            (Some(host), Some(port)) if self.hosts.is_empty() => vec![(
                HostConfig {
                    host: host.clone(),
                    port,
                    weight: default_weight(),
                },
                "static.host".to_owned(),
            )],
            _ => self
                .hosts
                .iter()
                .enumerate()
                .map(|(i, h)| (h.clone(), format!("static.hosts[{i}]")))
                .collect(),
        }
    }
}

/// One host of a backend.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    pub host: String,
    pub port: u16,
    /// Its share of the backend's traffic relative to the other hosts (1 to 128).
    #[serde(default = "default_weight")]
    pub weight: u32,
}

fn default_weight() -> u32 {
    1
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    pub name: String,
    pub address: SocketAddr,
    #[serde(default)]
    pub filters: PhaseFilters,
    /// What one client may ask of this listener.
    #[serde(default)]
    pub limits: ListenerLimits,
    /// The router's config: an ordered list of routes, first match wins (see
    /// `switchyard_filters::router`).
    pub routes: Vec<RouteConfig>,
    /// Terminate TLS on this listener. Absent: plaintext.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ListenerTls>,
    /// Plaintext listeners only: also accept HTTP/2 with prior knowledge (h2c). On TLS
    /// listeners HTTP/2 is chosen by ALPN (`tls.alpn`).
    #[serde(default)]
    pub h2c: bool,
}

/// TLS termination: the certificates, chosen by SNI, and what a client must support.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerTls {
    /// At most one entry without `hostnames`: the default, for clients that send no SNI or a
    /// name no other entry has.
    pub certificates: Vec<CertificateConfig>,
    #[serde(default)]
    pub min_version: TlsVersion,
    /// Protocols offered by ALPN, in order of preference.
    #[serde(default = "default_alpn")]
    pub alpn: Vec<AlpnProtocol>,
    /// PEM file of the CAs that sign client certificates: with it, a client must present
    /// one (mutual TLS). Relative paths start at the config file's folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
}

impl ListenerTls {
    /// TLS with `certificates` and every other setting at its default.
    pub fn with_certificates(certificates: Vec<CertificateConfig>) -> Self {
        ListenerTls {
            certificates,
            min_version: TlsVersion::default(),
            alpn: default_alpn(),
            client_ca: None,
        }
    }
}

/// A certificate chain and its key: PEM files relative to the config file's folder (`cert`,
/// `key`), or PEM text (`cert_pem`, `key_pem`: what a Kubernetes Secret holds).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_pem: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_pem: Option<String>,
    /// The SNI names this certificate is chosen for (`api.example.com`, `*.example.com`).
    /// Absent: the listener's default certificate.
    #[serde(default)]
    pub hostnames: Vec<String>,
}

/// The oldest TLS version a client may use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum TlsVersion {
    #[default]
    #[serde(rename = "1.2")]
    Tls12,
    #[serde(rename = "1.3")]
    Tls13,
}

/// A protocol a TLS listener offers by ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum AlpnProtocol {
    #[serde(rename = "h2")]
    H2,
    #[serde(rename = "http/1.1")]
    Http11,
}

impl AlpnProtocol {
    /// The protocol's ALPN identifier on the wire.
    pub fn wire(self) -> &'static [u8] {
        match self {
            AlpnProtocol::H2 => b"h2",
            AlpnProtocol::Http11 => b"http/1.1",
        }
    }
}

fn default_alpn() -> Vec<AlpnProtocol> {
    vec![AlpnProtocol::H2, AlpnProtocol::Http11]
}

/// Bounds on what a client may send or hold, each with the answer it gets past them. The
/// defaults suit a public API: Envoy's header bounds, nginx's body size times ten.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ListenerLimits {
    /// Request line plus header names and values, in bytes; past it: 431. (The HTTP parser
    /// refuses a header section over 1 MiB with 400 before any of this is seen.)
    #[serde(default = "default_max_header_bytes")]
    pub max_request_header_bytes: usize,
    /// Header fields in a request; past it: 431. (The parser refuses more than 256 with 400.)
    #[serde(default = "default_max_headers")]
    pub max_request_headers: usize,
    /// Request body in bytes, unless the route sets its own; past it: 413.
    #[serde(default = "default_max_body_bytes")]
    pub max_request_body_bytes: u64,
    /// Time a new connection has to deliver its first request header; past it: 408 and the
    /// connection is closed.
    #[serde(default = "default_header_read_timeout", with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// How long a keep-alive connection may sit idle between requests before it is closed.
    #[serde(default = "default_client_idle_timeout", with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Open client connections on this listener; a connection past it gets 503 and is
    /// closed at once (a TLS connection is closed without an answer). A connection counts
    /// from its TLS handshake on.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Time a TLS client has to complete its handshake; past it the connection is closed.
    #[serde(default = "default_tls_handshake_timeout", with = "humantime_serde")]
    pub tls_handshake_timeout: Duration,
    /// HTTP/2 streams one connection may have open at once (the SETTINGS it is told).
    #[serde(default = "default_max_concurrent_streams")]
    pub max_concurrent_streams: u32,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        ListenerLimits {
            max_request_header_bytes: default_max_header_bytes(),
            max_request_headers: default_max_headers(),
            max_request_body_bytes: default_max_body_bytes(),
            header_read_timeout: default_header_read_timeout(),
            idle_timeout: default_client_idle_timeout(),
            max_connections: default_max_connections(),
            tls_handshake_timeout: default_tls_handshake_timeout(),
            max_concurrent_streams: default_max_concurrent_streams(),
        }
    }
}

fn default_max_header_bytes() -> usize {
    60 * 1024
}

fn default_max_headers() -> usize {
    100
}

fn default_max_body_bytes() -> u64 {
    10 * 1024 * 1024
}

fn default_header_read_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_client_idle_timeout() -> Duration {
    Duration::from_secs(60)
}

fn default_max_connections() -> usize {
    10_000
}

fn default_tls_handshake_timeout() -> Duration {
    Duration::from_secs(10)
}

/// Envoy's and pingora's default, and what RFC 9113 recommends as the least.
fn default_max_concurrent_streams() -> u32 {
    100
}

/// The filters of each phase, run in list order.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseFilters {
    #[serde(default)]
    pub pre_routing: Vec<FilterEntry>,
    #[serde(default)]
    pub post_routing: Vec<FilterEntry>,
    #[serde(default)]
    pub response: Vec<FilterEntry>,
}

pub use switchyard_filters::FilterEntry;
