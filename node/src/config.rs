//! The node's one configuration file (`imi-node.toml`).
//!
//! Paths in the file are relative to the file's own directory, so a node's
//! directory can be moved as a whole. `imi-node init` writes a commented
//! example; `node/imi-node.example.toml` is the same file in the repo, and a
//! test proves it parses.

use std::path::{Path, PathBuf};
use std::time::Duration;

use imi_protocol::Country;
use serde::{Deserialize, Serialize};

/// The example configuration shipped with imi and written by `imi-node init`.
pub const EXAMPLE: &str = include_str!("../imi-node.example.toml");

/// A node's configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The country this node serves (`EU` for the Commission's observer).
    pub country: Country,
    /// The node's name, unique within its country (`helsinki-1`).
    pub name: String,
    /// Addresses to listen on for other nodes.
    #[serde(default = "default_listen")]
    pub listen: Vec<String>,
    /// Addresses of other nodes to connect to.
    #[serde(default)]
    pub peers: Vec<String>,
    /// Where the store and the search index live.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Key and certificate files.
    #[serde(default)]
    pub certs: CertPaths,
    /// Delivery tuning.
    #[serde(default)]
    pub delivery: DeliveryConfig,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// The officials' web UI (not served when the section is absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<WebConfig>,
}

/// The officials' web UI.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// Where to serve it: any address with `tls`; without, a loopback
    /// address behind the operator's HTTPS proxy.
    pub listen: std::net::SocketAddr,
    /// Serve HTTPS with this certificate and key; plain HTTP without.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<WebTlsConfig>,
    /// The address officials open (`https://imi.example.fi`) when a proxy
    /// serves the UI under another host name.
    #[serde(default)]
    pub public_origin: Option<String>,
    /// Show every page as a training environment.
    #[serde(default)]
    pub training: bool,
    /// The language of the pages when neither the user nor the browser
    /// chooses one (default: the country's first official language).
    #[serde(default)]
    pub default_language: Option<imi_protocol::Language>,
    /// Minutes after which an unused session ends.
    #[serde(default = "default_idle_minutes")]
    pub idle_minutes: u64,
    /// The files an official may attach to one step, in KiB, in all (at
    /// most 4096, what every node accepts).
    #[serde(default = "default_attachment_kib")]
    pub max_attachment_kib: usize,
    /// Requests a second each user of the JSON API may keep up.
    #[serde(default = "default_api_per_second")]
    pub api_requests_per_second: u32,
    /// Requests each user of the JSON API may send at once above that rate.
    #[serde(default = "default_api_burst")]
    pub api_burst: u32,
}

/// The certificate the web UI serves HTTPS with (`imi-node certs
/// issue-web` writes both files).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebTlsConfig {
    /// The certificate chain in PEM: the UI's certificate, then the CA
    /// certificates browsers need to reach their trusted one.
    pub certificate: PathBuf,
    /// Its private key in PEM (unencrypted PKCS#8), owner-only.
    pub key: PathBuf,
}

fn default_idle_minutes() -> u64 {
    30
}

fn default_attachment_kib() -> usize {
    2048
}

fn default_api_per_second() -> u32 {
    imi_web::ApiLimits::default().per_second
}

fn default_api_burst() -> u32 {
    imi_web::ApiLimits::default().burst
}

/// Key and certificate files of a node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CertPaths {
    /// The node's private ed25519 key (PKCS#8 PEM, owner-only permissions).
    pub key: PathBuf,
    /// The Commission's federation root certificate, pinned.
    pub root: PathBuf,
    /// The national CA certificate that issued the node certificate
    /// (absent for the Commission's observer, which the root certifies).
    pub national_ca: Option<PathBuf>,
    /// The node certificate.
    pub node: PathBuf,
    /// Directory of revocation lists (`*.crl.pem`) known at start.
    pub revocations: PathBuf,
}

impl Default for CertPaths {
    fn default() -> Self {
        CertPaths {
            key: "node-key.pem".into(),
            root: "certs/root.pem".into(),
            national_ca: Some("certs/national-ca.pem".into()),
            node: "certs/node.pem".into(),
            revocations: "certs/revocations".into(),
        }
    }
}

/// Delivery tuning.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// First retry delay, in milliseconds.
    pub initial_backoff_ms: u64,
    /// Longest delay between two attempts, in milliseconds.
    pub max_backoff_ms: u64,
    /// Messages in flight to one node at once.
    pub max_in_flight_per_peer: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            initial_backoff_ms: 200,
            max_backoff_ms: 30_000,
            max_in_flight_per_peer: 512,
        }
    }
}

impl DeliveryConfig {
    /// First retry delay.
    pub fn initial_backoff(&self) -> Duration {
        Duration::from_millis(self.initial_backoff_ms.max(1))
    }

    /// Longest delay between two attempts.
    pub fn max_backoff(&self) -> Duration {
        Duration::from_millis(self.max_backoff_ms.max(self.initial_backoff_ms.max(1)))
    }
}

/// Log output.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Lines for people.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// Logging.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `human` or `json`.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `imi_node=debug,info`; the
    /// `IMI_LOG` environment variable overrides it.
    pub filter: Option<String>,
}

fn default_listen() -> Vec<String> {
    vec![
        "/ip4/0.0.0.0/tcp/4100".into(),
        "/ip4/0.0.0.0/udp/4100/quic-v1".into(),
    ]
}

fn default_data_dir() -> PathBuf {
    "data".into()
}

/// The configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("the configuration file {path} is not valid: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column.
        message: String,
    },
}

impl Config {
    /// Reads and checks the file at `path`; relative paths inside it are
    /// resolved against the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Config::parse(&text).map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        Ok(config)
    }

    /// Parses configuration text without touching the disk.
    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|err| err.to_string())?;
        if !valid_node_name(&config.name) {
            return Err(format!(
                "node name {:?} is not valid: use 1 to 63 lowercase letters, digits and '-'",
                config.name
            ));
        }
        if config.delivery.max_in_flight_per_peer == 0 {
            return Err(
                "delivery.max_in_flight_per_peer is 0, so no message would ever be sent: \
                 use at least 1 (the default is 512)"
                    .into(),
            );
        }
        if let Some(web) = &config.web {
            if web.tls.is_none() && !web.listen.ip().is_loopback() {
                return Err(format!(
                    "web.listen {} is not a loopback address: without web.tls the node serves plain HTTP, so serve the web UI on 127.0.0.1 or ::1 behind your HTTPS proxy, or give it a certificate with web.tls = {{ certificate = \"certs/web.pem\", key = \"certs/web-key.pem\" }} to serve HTTPS on any address",
                    web.listen
                ));
            }
            if web.tls.is_some()
                && let Some(origin) = &web.public_origin
                && origin.starts_with("http://")
            {
                return Err(format!(
                    "web.public_origin {origin:?} starts with http:// but the node serves HTTPS itself (web.tls): write it with https://"
                ));
            }
            if let Some(origin) = &web.public_origin
                && !(origin.starts_with("https://") || origin.starts_with("http://"))
            {
                return Err(format!(
                    "web.public_origin {origin:?} is not an origin like https://imi.example.fi"
                ));
            }
            let most = imi_protocol::MAX_STEP_ATTACHMENT_BYTES / 1024;
            if web.max_attachment_kib == 0 || web.max_attachment_kib > most {
                return Err(format!(
                    "web.max_attachment_kib is {}: choose 1 to {most} (other nodes refuse a step with more)",
                    web.max_attachment_kib
                ));
            }
            for (name, value) in [
                ("api_requests_per_second", web.api_requests_per_second),
                ("api_burst", web.api_burst),
            ] {
                if value == 0 || value > 100_000 {
                    return Err(format!(
                        "web.{name} is {value}: choose 1 to 100000 (0 would refuse every API request)"
                    ));
                }
            }
        }
        for addr in config.listen.iter().chain(&config.peers) {
            addr.parse::<libp2p::Multiaddr>()
                .map_err(|err| format!("address {addr:?} is not a valid multiaddr: {err}"))?;
        }
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut self.data_dir);
        resolve(&mut self.certs.key);
        resolve(&mut self.certs.root);
        resolve(&mut self.certs.node);
        resolve(&mut self.certs.revocations);
        if let Some(ca) = self.certs.national_ca.as_mut() {
            resolve(ca);
        }
        if let Some(tls) = self.web.as_mut().and_then(|w| w.tls.as_mut()) {
            resolve(&mut tls.certificate);
            resolve(&mut tls.key);
        }
    }

    /// The node's address in the federation (`FI/helsinki-1`).
    pub fn address(&self) -> String {
        format!("{}/{}", self.country, self.name)
    }

    /// The store file.
    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join("store.redb")
    }
}

/// Whether `name` is a valid node name: 1–63 lowercase ASCII letters,
/// digits and '-', not starting or ending with '-'.
pub fn valid_node_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_configuration_parses() {
        let config = Config::parse(EXAMPLE).expect("example parses");
        assert_eq!(config.country, Country::Fi);
        assert_eq!(config.web, None, "the web UI is served once configured");
        // Its commented web section, switched on, is valid too.
        let with_web = EXAMPLE.replace("# [web]", "[web]").replace(
            "# listen = \"127.0.0.1:8080\"",
            "listen = \"127.0.0.1:8080\"",
        );
        let web = Config::parse(&with_web).unwrap().web.expect("web section");
        assert!(web.listen.ip().is_loopback());
        assert_eq!(web.idle_minutes, 30);
        assert_eq!(web.tls, None);
        // So is its commented HTTPS line, on any address.
        let with_tls = with_web
            .replace("listen = \"127.0.0.1:8080\"", "listen = \"0.0.0.0:443\"")
            .replace("# tls = {", "tls = {");
        let web = Config::parse(&with_tls).unwrap().web.expect("web section");
        assert_eq!(
            web.tls.expect("tls").certificate,
            PathBuf::from("certs/web.pem")
        );
        assert_eq!(
            config,
            Config::parse(&toml::to_string(&config).unwrap()).unwrap()
        );
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let err = Config::parse("country = \"XX\"\nname = \"a\"").unwrap_err();
        assert!(err.contains("unknown country code"), "{err}");
        let err = Config::parse("country = \"FI\"\nname = \"Helsinki\"").unwrap_err();
        assert!(err.contains("node name"), "{err}");
        let err =
            Config::parse("country = \"FI\"\nname = \"h\"\nlisten = [\"nonsense\"]").unwrap_err();
        assert!(err.contains("multiaddr"), "{err}");
        let err = Config::parse("country = \"FI\"\nname = \"h\"\ncolour = 1").unwrap_err();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn the_web_ui_listens_beyond_loopback_only_over_https() {
        let web =
            |lines: &str| Config::parse(&format!("country = \"FI\"\nname = \"h\"\n[web]\n{lines}"));
        let err = web("listen = \"0.0.0.0:8080\"").unwrap_err();
        assert!(err.contains("not a loopback address"), "{err}");
        assert!(err.contains("web.tls"), "{err}");
        let err = web("listen = \"192.0.2.7:443\"").unwrap_err();
        assert!(err.contains("not a loopback address"), "{err}");
        let tls = "tls = { certificate = \"certs/web.pem\", key = \"certs/web-key.pem\" }";
        let config = web(&format!("listen = \"0.0.0.0:443\"\n{tls}")).unwrap();
        let served = config.web.unwrap();
        assert_eq!(served.listen, "0.0.0.0:443".parse().unwrap());
        assert_eq!(
            served.tls,
            Some(WebTlsConfig {
                certificate: "certs/web.pem".into(),
                key: "certs/web-key.pem".into(),
            })
        );
        // Loopback stays allowed, with or without TLS.
        assert!(web("listen = \"[::1]:8080\"").is_ok());
        assert!(web(&format!("listen = \"127.0.0.1:8443\"\n{tls}")).is_ok());
        // An http origin contradicts the node's own HTTPS.
        let err = web(&format!(
            "listen = \"0.0.0.0:443\"\npublic_origin = \"http://imi.example.fi\"\n{tls}"
        ))
        .unwrap_err();
        assert!(err.contains("https://"), "{err}");
        let err = web("listen = \"0.0.0.0:443\"\ntls = { certificate = \"web.pem\" }").unwrap_err();
        assert!(err.contains("key"), "{err}");
    }

    #[test]
    fn an_api_rate_of_zero_is_refused_and_the_default_is_the_apis() {
        let web = |lines: &str| {
            Config::parse(&format!(
                "country = \"FI\"\nname = \"h\"\n[web]\nlisten = \"127.0.0.1:8080\"\n{lines}"
            ))
        };
        let defaults = web("").unwrap().web.unwrap();
        assert_eq!(defaults.api_requests_per_second, 20);
        assert_eq!(defaults.api_burst, 100);
        let err = web("api_requests_per_second = 0").unwrap_err();
        assert!(err.contains("api_requests_per_second is 0"), "{err}");
        let err = web("api_burst = 0").unwrap_err();
        assert!(err.contains("api_burst is 0"), "{err}");
        let raised = web("api_requests_per_second = 500\napi_burst = 1000").unwrap();
        assert_eq!(raised.web.unwrap().api_burst, 1000);
    }

    #[test]
    fn zero_messages_in_flight_per_peer_is_refused() {
        let err =
            Config::parse("country = \"FI\"\nname = \"h\"\n[delivery]\nmax_in_flight_per_peer = 0")
                .unwrap_err();
        assert!(err.contains("max_in_flight_per_peer is 0"), "{err}");
        let ok =
            Config::parse("country = \"FI\"\nname = \"h\"\n[delivery]\nmax_in_flight_per_peer = 1")
                .unwrap();
        assert_eq!(ok.delivery.max_in_flight_per_peer, 1);
    }

    #[test]
    fn relative_paths_follow_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("imi-node.toml");
        std::fs::write(&path, EXAMPLE).unwrap();
        let config = Config::load(&path).unwrap();
        assert_eq!(config.certs.key, dir.path().join("node-key.pem"));
        assert_eq!(config.store_path(), dir.path().join("data/store.redb"));
        let with_tls = format!(
            "{EXAMPLE}\n[web]\nlisten = \"0.0.0.0:443\"\ntls = {{ certificate = \"certs/web.pem\", key = \"/etc/imi/web-key.pem\" }}\n"
        );
        std::fs::write(&path, with_tls).unwrap();
        let tls = Config::load(&path).unwrap().web.unwrap().tls.unwrap();
        assert_eq!(tls.certificate, dir.path().join("certs/web.pem"));
        assert_eq!(tls.key, PathBuf::from("/etc/imi/web-key.pem"));
    }
}
