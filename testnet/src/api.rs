//! The JSON API of a running federation, from outside: the file of API
//! tokens `imi-testnet up` writes (`api.json`), and a small HTTP client of
//! `/api/v1` that the scenarios and the API benchmark share.
//!
//! The file names, per node, its web UI's address and a token of every demo
//! account; it holds secrets, so it is written readable by its owner only,
//! and whole (written beside, then renamed), so a reader never sees half
//! of it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use imi_node::cases::CaseApp;
use imi_node::node::Node;
use imi_protocol::{Country, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The name of the file of API tokens in a federation's directory.
pub const API_FILE: &str = "api.json";

/// Days the tokens of `imi-testnet up` are valid.
const TOKEN_DAYS: u64 = 30;

/// The JSON API of a running federation: every node's web address and a
/// token of each demo account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiFile {
    /// The nodes serving a web UI.
    pub nodes: Vec<ApiNode>,
}

/// One node's API.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiNode {
    /// The node's country.
    pub country: Country,
    /// The node (`FI/helsinki-1`).
    pub node: String,
    /// Its web UI, the API under `api/v1/` (`http://127.0.0.1:PORT/`).
    pub url: String,
    /// A token of each demo account of the node.
    pub users: Vec<ApiUser>,
}

/// A demo account and its API token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiUser {
    /// Sign-in name (`fi-official`).
    pub login: String,
    /// Full name.
    pub name: String,
    /// The bearer token (`Authorization: Bearer …`).
    pub token: String,
    /// When the token expires.
    pub expires: String,
}

impl ApiFile {
    /// The file of the federation in `dir`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(API_FILE)
    }

    /// Reads the file of the federation in `dir`.
    pub fn read(dir: &Path) -> Result<ApiFile> {
        let path = ApiFile::path(dir);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read {}: is a federation running there? Start one with `imi-testnet up --dir {}`",
                path.display(),
                dir.display()
            )
        })?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not an API file", path.display()))
    }

    /// Writes the file into `dir`, readable by its owner only.
    pub fn write(&self, dir: &Path) -> Result<PathBuf> {
        use std::io::Write;
        let path = ApiFile::path(dir);
        let partial = dir.join(format!("{API_FILE}.partial"));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&partial)
            .with_context(|| format!("cannot write {}", partial.display()))?;
        file.write_all(&serde_json::to_vec_pretty(self)?)?;
        file.sync_all()?;
        std::fs::rename(&partial, &path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }

    /// The node of `country`.
    pub fn node(&self, country: Country) -> Result<&ApiNode> {
        self.nodes
            .iter()
            .find(|n| n.country == country)
            .with_context(|| format!("the federation has no node of {country} with a web UI"))
    }

    /// A client of `login` on the node of `country`.
    pub fn client(&self, http: &Http, country: Country, login: &str) -> Result<Api> {
        let node = self.node(country)?;
        let user = node
            .users
            .iter()
            .find(|u| u.login == login)
            .with_context(|| format!("the API file has no token of {login} on {}", node.node))?;
        Ok(Api {
            http: http.clone(),
            base: node.url.trim_end_matches('/').to_owned(),
            node: node.node.clone(),
            login: user.login.clone(),
            name: user.name.clone(),
            token: user.token.clone(),
        })
    }
}

/// Creates an API token for each of `logins` on `node`, as the operator
/// would with `imi-node token create`; `url` is the node's web UI.
pub async fn demo_tokens(node: &Node<CaseApp>, url: &str, logins: &[&str]) -> Result<ApiNode> {
    let expires = Timestamp::from_system_time(std::time::SystemTime::now()).plus_days(TOKEN_DAYS);
    let mut users = Vec::with_capacity(logins.len());
    for login in logins {
        let account = node
            .admin()
            .user_by_login(login)
            .with_context(|| format!("no user {login} on {}", node.address()))?;
        let created = node
            .admin()
            .create_api_token(account.user.id, "imi-testnet", expires)
            .await
            .with_context(|| format!("no API token for {login} on {}", node.address()))?;
        users.push(ApiUser {
            login: (*login).to_owned(),
            name: account.user.name.clone(),
            token: created.secret,
            expires: expires.to_string(),
        });
    }
    Ok(ApiNode {
        country: node.address().country,
        node: node.address().to_string(),
        url: url.to_owned(),
        users,
    })
}

/// The HTTP client (HTTP/1.1, keep-alive).
pub type Http = Client<HttpConnector, Full<Bytes>>;

/// A new HTTP client keeping up to `connections` idle connections per node.
pub fn http(connections: usize) -> Http {
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(connections)
        .build_http()
}

/// An answer of the API.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Its status.
    pub status: StatusCode,
    /// Its body.
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body)
            .with_context(|| format!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }

    /// The problem's detail, or the body, for a message.
    pub fn detail(&self) -> String {
        self.json()
            .ok()
            .and_then(|p| p["detail"].as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).into_owned())
    }
}

/// One user's client of one node's API.
#[derive(Debug, Clone)]
pub struct Api {
    http: Http,
    /// The node's web address, without the final `/`.
    pub base: String,
    /// The node (`PT/lisboa-1`).
    pub node: String,
    /// The user's sign-in name.
    pub login: String,
    /// The user's full name.
    pub name: String,
    token: String,
}

impl Api {
    /// Sends `method path` with an optional JSON body and headers; waits
    /// and tries again while the node's rate limit says so (`429` with
    /// `Retry-After`), for at most 30 s.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Reply> {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let mut request = Request::builder()
                .method(method)
                .uri(format!("{}{path}", self.base))
                .header(header::AUTHORIZATION, format!("Bearer {}", self.token));
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let body = match body {
                Some(body) => {
                    request = request.header(header::CONTENT_TYPE, "application/json");
                    Full::new(Bytes::from(serde_json::to_vec(body)?))
                }
                None => Full::new(Bytes::new()),
            };
            let response = self
                .http
                .request(request.body(body)?)
                .await
                .with_context(|| format!("{} ({}) does not answer", self.base, self.node))?;
            let status = response.status();
            let retry = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let body = response.into_body().collect().await?.to_bytes();
            if status == StatusCode::TOO_MANY_REQUESTS && std::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_secs(retry.unwrap_or(1).clamp(1, 5))).await;
                continue;
            }
            return Ok(Reply { status, body });
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Result<Reply> {
        self.call("GET", path, None, &[]).await
    }

    /// `GET path`, which must answer 200 with JSON.
    pub async fn get_json(&self, path: &str) -> Result<Value> {
        let reply = self.get(path).await?;
        self.ok(&reply, path)?;
        reply.json()
    }

    /// Fails unless `reply` is a success, naming who was refused what.
    pub fn ok(&self, reply: &Reply, what: &str) -> Result<()> {
        if reply.status.is_success() {
            return Ok(());
        }
        let hint = if reply.status == StatusCode::UNAUTHORIZED {
            " (the token is unknown, expired or revoked: start the federation again or create a new token)"
        } else {
            ""
        };
        bail!(
            "{} ({}) answered {} to {what} for {}: {}{hint}",
            self.base,
            self.node,
            reply.status,
            self.login,
            reply.detail()
        )
    }
}

/// Reads the CPU model of this machine (`/proc/cpuinfo`), when it says.
pub fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, model)| model.trim().to_owned())
}

/// The machine's load average over 1, 5 and 15 minutes
/// (`/proc/loadavg`), when it says.
pub fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let parts: Vec<&str> = text.split_whitespace().take(3).collect();
    (parts.len() == 3).then(|| parts.join(" "))
}
