//! imi-testnet: a whole federation on one machine.
//!
//! Builds N country nodes and the Commission's observer on loopback with a
//! generated PKI, for tests, training and benchmarks. Every node gets its own
//! directory laid out exactly as `imi-node init` and the `certs` commands
//! lay out a production node (key, certificates, configuration file, store),
//! so the same directories can be run in-process ([`Testnet`]) or by the real
//! `imi-node` binary in separate processes ([`Federation::prepare`]).
//! It must not contain logic that production nodes need.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use imi_protocol::Country;
//! let net = imi_testnet::Testnet::builder()
//!     .countries([Country::Fi, Country::Pt])
//!     .start()
//!     .await?;
//! net.wait_connected(std::time::Duration::from_secs(10)).await?;
//! # Ok(()) }
//! ```

pub mod api;
pub mod bench;
pub mod bench_api;
pub mod bench_flood;
pub mod bench_tasks;
pub mod scenario;
pub mod ui;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use imi_certs::{
    CertificateRequest, NationalCa, NodeKey, RevocationList, RevocationParams, Revoked, RootCa,
    Validity,
};
use imi_node::cases::CaseApp;
use imi_node::config::{CertPaths, Config, DeliveryConfig, LogConfig};
use imi_node::node::{Node, NodeSetup};
use imi_protocol::{Country, NodeAddress};

/// The generated PKI of a test federation: the root and one national CA per
/// country, with their keys (which a real federation keeps apart).
pub struct Pki {
    /// The Commission's root CA.
    pub root: RootCa,
    /// The national CAs.
    pub nationals: BTreeMap<Country, NationalCa>,
    revocation_numbers: std::sync::Mutex<BTreeMap<Option<Country>, u64>>,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki")
            .field("countries", &self.nationals.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Pki {
    /// A root and national CAs for `countries`.
    pub fn generate(countries: &[Country]) -> Result<Pki> {
        let root = RootCa::generate("imi test federation root", Validity::days_from_now(3650))?;
        let mut nationals = BTreeMap::new();
        for country in countries {
            if country.is_commission() || nationals.contains_key(country) {
                continue;
            }
            nationals.insert(
                *country,
                root.issue_national_ca(*country, Validity::days_from_now(3000))?,
            );
        }
        Ok(Pki {
            root,
            nationals,
            revocation_numbers: std::sync::Mutex::new(BTreeMap::new()),
        })
    }

    /// Issues a certificate for node `name` of `country`, in `dir`, laid out
    /// as a production node, with a configuration listening on `listen`.
    pub fn write_node_dir(
        &self,
        dir: &Path,
        country: Country,
        name: &str,
        listen: Vec<String>,
        peers: Vec<String>,
    ) -> Result<NodeDir> {
        std::fs::create_dir_all(dir.join("certs/revocations"))?;
        let key = NodeKey::generate();
        let node_name = name.parse().context("node name")?;
        let request = CertificateRequest::new(&key, country, &node_name)?;
        let validity = Validity::days_from_now(365);
        let (cert, national_ca) = if country.is_commission() {
            (self.root.issue_observer(&request, validity)?, None)
        } else {
            let national = self
                .nationals
                .get(&country)
                .with_context(|| format!("no national CA for {country}"))?;
            (
                national.issue_node(&request, validity)?,
                Some(national.certificate().clone()),
            )
        };
        imi_certs::write_private_key_pem(&dir.join("node-key.pem"), &key.to_pkcs8_pem())?;
        self.root
            .certificate()
            .write_pem_file(&dir.join("certs/root.pem"))?;
        cert.write_pem_file(&dir.join("certs/node.pem"))?;
        if let Some(ca) = &national_ca {
            ca.write_pem_file(&dir.join("certs/national-ca.pem"))?;
        }
        let config = Config {
            country,
            name: name.to_owned(),
            listen,
            peers,
            data_dir: "data".into(),
            certs: CertPaths {
                national_ca: national_ca.map(|_| "certs/national-ca.pem".into()),
                ..CertPaths::default()
            },
            delivery: DeliveryConfig {
                initial_backoff_ms: 50,
                max_backoff_ms: 2_000,
                ..DeliveryConfig::default()
            },
            log: LogConfig::default(),
            web: None,
        };
        let config_path = dir.join("imi-node.toml");
        std::fs::write(&config_path, toml::to_string(&config)?)?;
        Ok(NodeDir {
            address: format!("{country}/{name}").parse()?,
            dir: dir.to_owned(),
            config: config_path,
            serial: cert.serial().clone(),
            key,
        })
    }

    /// Renews the certificate and key of the node in `node`: a new key and
    /// a new certificate for the same country and name, written where the
    /// node's configuration expects them, as an operator does with
    /// `imi-node certs request` and the national CA's `issue-node`. The old
    /// certificate is not revoked; it simply stops being used.
    pub fn renew_node(&self, node: &mut NodeDir) -> Result<()> {
        let key = NodeKey::generate();
        let country = node.address.country;
        let name = node.address.node.to_string();
        let node_name = name.parse().context("node name")?;
        let request = CertificateRequest::new(&key, country, &node_name)?;
        let validity = Validity::days_from_now(365);
        let cert = if country.is_commission() {
            self.root.issue_observer(&request, validity)?
        } else {
            self.nationals
                .get(&country)
                .with_context(|| format!("no national CA for {country}"))?
                .issue_node(&request, validity)?
        };
        imi_certs::write_private_key_pem(&node.dir.join("node-key.pem"), &key.to_pkcs8_pem())?;
        cert.write_pem_file(&node.dir.join("certs/node.pem"))?;
        node.serial = cert.serial().clone();
        node.key = key;
        Ok(())
    }

    /// A revocation list of `country`'s national CA revoking `serials`,
    /// numbered after the previous one.
    pub fn revoke_nodes(
        &self,
        country: Country,
        serials: &[imi_certs::Serial],
    ) -> Result<RevocationList> {
        let national = self
            .nationals
            .get(&country)
            .with_context(|| format!("no national CA for {country}"))?;
        let number = self.next_number(Some(country));
        let now = SystemTime::now();
        Ok(national.revocation_list(&RevocationParams {
            number,
            this_update: now,
            next_update: now + Duration::from_secs(86_400),
            revoked: serials
                .iter()
                .map(|serial| Revoked {
                    serial: serial.clone(),
                    revoked_at: now,
                })
                .collect(),
        })?)
    }

    fn next_number(&self, issuer: Option<Country>) -> u64 {
        let mut numbers = self
            .revocation_numbers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let n = numbers.entry(issuer).or_insert(0);
        *n += 1;
        *n
    }
}

/// A node's directory, ready to run.
#[derive(Debug)]
pub struct NodeDir {
    /// The node's address.
    pub address: NodeAddress,
    /// The directory.
    pub dir: PathBuf,
    /// Its configuration file.
    pub config: PathBuf,
    /// The serial of its certificate (to revoke it).
    pub serial: imi_certs::Serial,
    /// Its key.
    pub key: NodeKey,
}

/// A loopback TCP port the OS considers free now. It is not kept: the OS
/// may hand it to the next caller too (a federation keeps its nodes'
/// ports, see [`PortHold`]).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// The loopback port of one node of a federation, kept for as long as the
/// federation lives.
///
/// A port picked by binding port 0 and letting go of it ([`free_port`]) can
/// be handed out again at once: to another node of the same federation, or
/// to a federation another test starts at the same time. libp2p listens
/// with `SO_REUSEPORT`, so the second node to bind the port does not fail:
/// both listen on it, the kernel spreads incoming connections between them,
/// and neither dials an address it listens on itself, so links stay
/// missing. A TCP port is therefore kept bound (not listening) with
/// `SO_REUSEPORT`: the OS hands it to nobody else's port 0 or outgoing
/// connection, a listener without `SO_REUSEPORT` cannot take it, and the
/// node, restarted as often as a test likes, listens on it beside the hold.
/// QUIC binds its UDP socket without reuse, so a held UDP port would keep
/// the node out: a QUIC port is only picked apart from the federation's
/// other ports (a collision with another process then fails loudly, at
/// bind, rather than sharing the port).
struct PortHold {
    port: u16,
    _socket: Option<socket2::Socket>,
}

impl PortHold {
    /// A loopback port, none of `taken`.
    fn new(quic: bool, taken: &[PortHold]) -> Result<PortHold> {
        use socket2::{Domain, Protocol, Socket, Type};
        let any = std::net::SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        if !quic {
            let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
            socket.set_reuse_port(true)?;
            socket.bind(&any.into())?;
            let port = socket
                .local_addr()?
                .as_socket()
                .context("a loopback socket has an address")?
                .port();
            return Ok(PortHold {
                port,
                _socket: Some(socket),
            });
        }
        for _ in 0..64 {
            let port = std::net::UdpSocket::bind(any)?.local_addr()?.port();
            if taken.iter().all(|held| held.port != port) {
                return Ok(PortHold {
                    port,
                    _socket: None,
                });
            }
        }
        bail!("no free UDP port on the loopback interface")
    }
}

/// The default name of a country's node in a test federation (`fi-1`).
pub fn node_name(country: Country) -> String {
    format!("{}-1", country.code().to_ascii_lowercase())
}

/// Builds a [`Testnet`].
#[derive(Debug, Clone, Default)]
pub struct TestnetBuilder {
    countries: Vec<Country>,
    /// Countries with more than one node (regional nodes), and how many.
    several: BTreeMap<Country, usize>,
    observer: bool,
    quic: bool,
    dir: Option<PathBuf>,
}

impl TestnetBuilder {
    /// The countries that get a node (one each: a country listed twice
    /// still gets one node; [`TestnetBuilder::nodes_of`] gives it more).
    pub fn countries(mut self, countries: impl IntoIterator<Item = Country>) -> Self {
        for country in countries {
            if !self.countries.contains(&country) {
                self.countries.push(country);
            }
        }
        self
    }

    /// Gives `country` `count` nodes (`de-1`, `de-2`, …), as a country
    /// with regional nodes has; the country is added if it is not listed.
    pub fn nodes_of(mut self, country: Country, count: usize) -> Self {
        if !self.countries.contains(&country) {
            self.countries.push(country);
        }
        self.several.insert(country, count.max(1));
        self
    }

    /// Whether the Commission's observer node runs too.
    pub fn observer(mut self, observer: bool) -> Self {
        self.observer = observer;
        self
    }

    /// Link the nodes over QUIC instead of TCP.
    pub fn quic(mut self, quic: bool) -> Self {
        self.quic = quic;
        self
    }

    /// Keep the node directories in `dir` instead of a temporary directory.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Generates the PKI and node directories without starting anything.
    pub fn prepare(self) -> Result<Federation> {
        let mut countries = self.countries.clone();
        if self.observer && !countries.contains(&Country::Eu) {
            countries.push(Country::Eu);
        }
        let (temp, base) = match &self.dir {
            Some(dir) => (None, dir.clone()),
            None => {
                let temp = tempfile::Builder::new().prefix("imi-testnet-").tempdir()?;
                let base = temp.path().to_owned();
                (Some(temp), base)
            }
        };
        let pki = Pki::generate(&countries)?;
        let mut named = Vec::new();
        for country in &countries {
            let count = self.several.get(country).copied().unwrap_or(1);
            let code = country.code().to_ascii_lowercase();
            for n in 1..=count {
                named.push((*country, format!("{code}-{n}")));
            }
        }
        let mut ports: Vec<PortHold> = Vec::new();
        for _ in &named {
            ports.push(PortHold::new(self.quic, &ports)?);
        }
        let addr = |port: u16| {
            if self.quic {
                format!("/ip4/127.0.0.1/udp/{port}/quic-v1")
            } else {
                format!("/ip4/127.0.0.1/tcp/{port}")
            }
        };
        let mut nodes = Vec::new();
        for (i, (country, name)) in named.iter().enumerate() {
            // Each node dials the nodes listed before it: a full mesh.
            let peers = ports[..i].iter().map(|p| addr(p.port)).collect();
            let dir = base.join(name);
            let listen = vec![addr(ports[i].port)];
            nodes.push(pki.write_node_dir(&dir, *country, name, listen, peers)?);
        }
        Ok(Federation {
            pki: Arc::new(pki),
            nodes,
            listen: ports.iter().map(|p| addr(p.port)).collect(),
            ports,
            quic: self.quic,
            _temp: temp,
            base,
        })
    }

    /// Generates everything and starts every node in this process.
    pub async fn start(self) -> Result<Testnet> {
        let federation = self.prepare()?;
        let mut nodes = Vec::new();
        for dir in &federation.nodes {
            nodes.push(start_node(&dir.config).await?);
        }
        let net = Testnet { federation, nodes };
        net.set_country_routes().await?;
        Ok(net)
    }
}

/// Node directories and the PKI that certified them.
pub struct Federation {
    /// The PKI.
    pub pki: Arc<Pki>,
    /// One directory per node.
    pub nodes: Vec<NodeDir>,
    /// The address each node listens on, in the order of `nodes`.
    listen: Vec<String>,
    /// Their ports, kept from other processes while the federation lives.
    ports: Vec<PortHold>,
    quic: bool,
    _temp: Option<tempfile::TempDir>,
    base: PathBuf,
}

impl std::fmt::Debug for Federation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Federation")
            .field("base", &self.base)
            .field("nodes", &self.nodes.len())
            .finish()
    }
}

impl Federation {
    /// The directory holding every node's directory.
    pub fn base(&self) -> &Path {
        &self.base
    }
}

/// Starts the node configured in `config` in this process.
pub async fn start_node(config: &Path) -> Result<Node<CaseApp>> {
    let config = Config::load(config)?;
    let setup = NodeSetup::from_config(&config)?;
    let app = Arc::new(CaseApp::new(setup.address.clone()));
    // A node stopped a moment ago may still be releasing its store.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let setup = NodeSetup::from_config(&config)?;
        match Node::start(setup, app.clone()).await {
            Ok(node) => return Ok(node),
            Err(err) if Instant::now() < deadline && err.to_string().contains("already open") => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => return Err(err.into()),
        }
    }
}

/// A running federation in this process.
pub struct Testnet {
    /// The directories and PKI.
    pub federation: Federation,
    /// The running nodes, in the order of [`Federation::nodes`].
    pub nodes: Vec<Node<CaseApp>>,
}

impl std::fmt::Debug for Testnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Testnet")
            .field("nodes", &self.nodes.len())
            .finish()
    }
}

impl Testnet {
    /// A builder.
    pub fn builder() -> TestnetBuilder {
        TestnetBuilder::default()
    }

    /// The (first) node of `country`.
    pub fn node(&self, country: Country) -> &Node<CaseApp> {
        self.nodes
            .iter()
            .find(|n| n.address().country == country)
            .unwrap_or_else(|| panic!("no node for {country} in this testnet"))
    }

    fn index_of(&self, country: Country) -> usize {
        self.nodes
            .iter()
            .position(|n| n.address().country == country)
            .unwrap_or_else(|| panic!("no node for {country} in this testnet"))
    }

    /// Every node learns which node receives each country's alerts.
    async fn set_country_routes(&self) -> Result<()> {
        for node in &self.nodes {
            for other in &self.nodes {
                node.set_country_route(other.address().country, other.address())
                    .await?;
            }
        }
        Ok(())
    }

    /// Waits until every running node has admitted every other one.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let expected = self.nodes.len() - 1;
        loop {
            let mut done = true;
            for node in &self.nodes {
                if node.net().peers().await.len() < expected {
                    done = false;
                    break;
                }
            }
            if done {
                return Ok(());
            }
            if Instant::now() > deadline {
                let mut report = String::new();
                for node in &self.nodes {
                    report.push_str(&format!(
                        "\n  {}: {} peers",
                        node.address(),
                        node.net().peers().await.len()
                    ));
                }
                bail!("the testnet did not connect within {timeout:?}:{report}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the (first) node of `country` (its directory and store stay).
    pub async fn stop(&mut self, country: Country) -> Result<NodeDirRef> {
        let index = self.index_of(country);
        let address = self.nodes[index].address().clone();
        self.stop_node(&address).await
    }

    /// Stops the node at `address` (its directory and store stay).
    pub async fn stop_node(&mut self, address: &NodeAddress) -> Result<NodeDirRef> {
        let index = self
            .nodes
            .iter()
            .position(|n| n.address() == address)
            .with_context(|| format!("no running node {address} in this testnet"))?;
        let dir = self
            .federation
            .nodes
            .iter()
            .position(|d| &d.address == address)
            .with_context(|| format!("no node {address} in this federation"))?;
        let node = self.nodes.remove(index);
        node.shutdown().await;
        Ok(NodeDirRef(dir))
    }

    /// Starts a stopped node again from its directory.
    pub async fn restart(&mut self, stopped: NodeDirRef) -> Result<()> {
        let dir = &self.federation.nodes[stopped.0];
        let node = start_node(&dir.config).await?;
        // Keep the nodes in the order of the federation's directories.
        let before: Vec<&NodeAddress> = self.federation.nodes[..stopped.0]
            .iter()
            .map(|d| &d.address)
            .collect();
        let position = self
            .nodes
            .iter()
            .filter(|n| before.contains(&n.address()))
            .count();
        self.nodes.insert(position, node);
        Ok(())
    }

    /// The running node at `address` (`"DE/de-2"`).
    pub fn node_at(&self, address: &str) -> &Node<CaseApp> {
        self.nodes
            .iter()
            .find(|n| n.address().to_string() == address)
            .unwrap_or_else(|| panic!("no running node {address} in this testnet"))
    }

    /// Certifies and starts one more node of `country` (named after the
    /// ones it has: `fi-2`), which connects to every node of the
    /// federation: a fresh node joining.
    pub async fn add_node(&mut self, country: Country) -> Result<&Node<CaseApp>> {
        let code = country.code().to_ascii_lowercase();
        let count = self
            .federation
            .nodes
            .iter()
            .filter(|d| d.address.country == country)
            .count();
        let name = format!("{code}-{}", count + 1);
        let hold = PortHold::new(self.federation.quic, &self.federation.ports)?;
        let port = hold.port;
        let listen = if self.federation.quic {
            format!("/ip4/127.0.0.1/udp/{port}/quic-v1")
        } else {
            format!("/ip4/127.0.0.1/tcp/{port}")
        };
        let dir = self.federation.base.join(&name);
        let node_dir = self.federation.pki.write_node_dir(
            &dir,
            country,
            &name,
            vec![listen.clone()],
            self.federation.listen.clone(),
        )?;
        let node = start_node(&node_dir.config).await?;
        self.federation.nodes.push(node_dir);
        self.federation.listen.push(listen);
        self.federation.ports.push(hold);
        self.nodes.push(node);
        Ok(self.nodes.last().expect("just pushed"))
    }

    /// Waits until every running node holds the same directory (the same
    /// heads of every document).
    pub async fn wait_converged(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let heads: Vec<_> = self
                .nodes
                .iter()
                .map(|n| n.directory().all_heads())
                .collect();
            if heads.windows(2).all(|w| w[0] == w[1]) {
                return Ok(());
            }
            if Instant::now() > deadline {
                let mut report = String::new();
                for node in &self.nodes {
                    report.push_str(&format!(
                        "\n  {}: {} authorities",
                        node.address(),
                        node.directory().authority_count()
                    ));
                }
                bail!("the directories did not converge within {timeout:?}:{report}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A stopped node of a [`Testnet`], to restart it.
#[derive(Debug, Clone, Copy)]
pub struct NodeDirRef(usize);

/// Waits until `check` holds, polling every 20 ms, or fails after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// `count` authorities of `country` served by `node`, with names in the
/// country's languages (built from the catalogue's translated area names
/// and a numbered city) and competences drawn from the catalogue: realistic
/// directory data for tests, training and benchmarks. The same arguments
/// give the same names; ids are new each time.
pub fn sample_authorities(
    country: Country,
    node: &NodeAddress,
    count: usize,
) -> Vec<imi_node::directory::PublishedAuthority> {
    use imi_protocol::{AuthorityId, Catalogue, Competence, Contact};
    let catalogue = Catalogue::builtin();
    let areas = catalogue.areas();
    let languages = country.official_languages();
    let city = country
        .native_names()
        .first()
        .map(|(_, name)| *name)
        .unwrap_or("Europa");
    (0..count)
        .map(|i| {
            let area = &areas[i % areas.len()];
            let second = &areas[(i / areas.len() + i + 1) % areas.len()];
            let names = languages
                .iter()
                .map(|lang| {
                    (
                        *lang,
                        format!("{} — {city} {}", area.label.get(*lang), i + 1),
                    )
                })
                .collect();
            let competence = |area: &imi_protocol::LegislativeArea| Competence {
                area: area.key.clone(),
                procedures: catalogue
                    .procedures_of(&area.key)
                    .take(2)
                    .map(|p| p.key.clone())
                    .collect(),
                professions: catalogue
                    .professions_of(&area.key)
                    .skip(i % 3)
                    .take(3)
                    .map(|p| p.key.clone())
                    .collect(),
                other: vec![],
            };
            let mut competences = vec![competence(area)];
            if second.key != area.key {
                competences.push(competence(second));
            }
            competences.sort_by(|a, b| a.area.cmp(&b.area));
            let code = country.code().to_ascii_lowercase();
            imi_node::directory::PublishedAuthority {
                id: AuthorityId::new(),
                country,
                names,
                competences,
                contact: Contact {
                    city: Some(format!("{city} {}", i + 1)),
                    email: Some(format!("imi-{}@authority-{}.{code}.example", i + 1, i + 1)),
                    phone: Some(format!("+00 {:06}", i + 1)),
                    ..Contact::default()
                },
                languages: languages.iter().copied().collect(),
                node: node.clone(),
            }
        })
        .collect()
}

/// Real competent authorities and registers of 25 countries (names in their
/// own languages, competences as catalogue keys): the search's relevance
/// fixture, used as demo data so a trainer's searches find real names.
const DEMO_DIRECTORY: &str = include_str!("../../search/tests/relevance/directory.toml");

#[derive(serde::Deserialize)]
struct DemoDirectory {
    entry: Vec<imi_search::DirectoryEntry>,
}

/// The real authorities and registers of `country` from the demo directory,
/// published as served by `node`. Ids are derived from the entries' names,
/// so every run gives the same ids.
pub fn demo_entries(
    country: Country,
    node: &NodeAddress,
) -> Result<(
    Vec<imi_node::directory::PublishedAuthority>,
    Vec<imi_node::directory::Register>,
)> {
    use std::collections::{BTreeMap, BTreeSet};
    use std::hash::{DefaultHasher, Hash, Hasher};

    use imi_protocol::{AreaKey, AuthorityId, Catalogue, Competence, Contact};
    use imi_search::EntryKind;

    let demo: DemoDirectory = toml::from_str(DEMO_DIRECTORY).context("demo directory")?;
    let catalogue = Catalogue::builtin();
    let mut authorities = Vec::new();
    let mut registers = Vec::new();
    for entry in demo.entry.into_iter().filter(|e| e.country == country) {
        let mut areas: BTreeSet<AreaKey> = entry.areas.iter().cloned().collect();
        for profession in &entry.professions {
            if let Some(p) = catalogue.profession(profession) {
                areas.insert(p.area.clone());
            }
        }
        for procedure in &entry.procedures {
            if let Some(p) = catalogue.procedure(procedure) {
                areas.insert(p.area.clone());
            }
        }
        let names: BTreeMap<imi_protocol::Language, String> = entry.names.iter().cloned().collect();
        match entry.kind {
            EntryKind::Authority => {
                let competences = areas
                    .iter()
                    .map(|area| Competence {
                        area: area.clone(),
                        procedures: entry
                            .procedures
                            .iter()
                            .filter(|p| catalogue.procedure(p).is_some_and(|p| &p.area == area))
                            .cloned()
                            .collect(),
                        professions: entry
                            .professions
                            .iter()
                            .filter(|p| catalogue.profession(p).is_some_and(|p| &p.area == area))
                            .cloned()
                            .collect(),
                        other: entry.other_competences.clone(),
                    })
                    .collect();
                let mut hasher = DefaultHasher::new();
                entry.id.hash(&mut hasher);
                let id = AuthorityId::from_parts(1, u128::from(hasher.finish()));
                authorities.push(imi_node::directory::PublishedAuthority {
                    id,
                    country,
                    names,
                    competences,
                    contact: Contact {
                        city: entry.city.clone(),
                        region: entry.region.clone(),
                        website: entry.url.clone(),
                        ..Contact::default()
                    },
                    languages: entry.languages.iter().copied().collect(),
                    node: node.clone(),
                });
            }
            // A register is published with the address where it is looked up.
            EntryKind::Register if entry.url.is_none() => {}
            EntryKind::Register => registers.push(imi_node::directory::Register {
                id: entry.id.clone(),
                country,
                names,
                url: entry.url.clone().unwrap_or_default(),
                areas,
                professions: entry.professions.iter().cloned().collect(),
                lookups: entry.other_competences.clone(),
                languages: entry.languages.iter().copied().collect(),
            }),
        }
    }
    Ok((authorities, registers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_country_listed_twice_gets_one_node() -> Result<()> {
        let federation = Testnet::builder()
            .countries([Country::Fi, Country::Pt, Country::Fi])
            .countries([Country::Pt])
            .prepare()?;
        let addresses: Vec<String> = federation
            .nodes
            .iter()
            .map(|n| n.address.to_string())
            .collect();
        assert_eq!(addresses, ["FI/fi-1", "PT/pt-1"]);
        Ok(())
    }

    #[test]
    fn no_other_listener_takes_a_nodes_port_while_its_federation_lives() -> Result<()> {
        let federation = Testnet::builder()
            .countries([Country::Fi, Country::Pt, Country::Fr, Country::Se])
            .nodes_of(Country::De, 2)
            .observer(true)
            .prepare()?;
        let ports: Vec<u16> = federation.ports.iter().map(|p| p.port).collect();
        let distinct: std::collections::BTreeSet<_> = ports.iter().collect();
        assert_eq!(distinct.len(), 7, "{ports:?}");
        // Another federation's node, or anything else that was handed the
        // port, cannot listen on it: the node's connections stay its own.
        for port in &ports {
            let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, *port));
            assert_eq!(
                taken.map(|_| ()).map_err(|e| e.kind()),
                Err(std::io::ErrorKind::AddrInUse),
                "port {port}"
            );
        }
        // The node itself listens on it, as libp2p does.
        let listener = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        listener.set_reuse_address(true)?;
        listener.set_reuse_port(true)?;
        listener.bind(&std::net::SocketAddr::from((Ipv4Addr::LOCALHOST, ports[0])).into())?;
        listener.listen(8)?;
        drop(federation);
        drop(listener);
        TcpListener::bind((Ipv4Addr::LOCALHOST, ports[1]))?;
        Ok(())
    }
}
