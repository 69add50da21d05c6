//! `imi-node`: the daemon and operator commands of a country node.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use imi_certs::{
    Certificate, CertificateRequest, NationalCa, NodeKey, RevocationList, RevocationParams,
    Revoked, RootCa, Serial, Validity, WebCa, WebHost,
};
use imi_node::admin::{Admin, ApiTokenId, MAX_TOKEN_DAYS, NewAccount, NewUser, Password};
use imi_node::cases::{CaseApp, CaseState};
use imi_node::config::{Config, EXAMPLE, LogFormat, valid_node_name};
use imi_node::node::{Node, NodeSetup};
use imi_node::status::StoreStatus;
use imi_protocol::{
    Actor, AuthorityId, AuthorityStatus, CaseAction, CaseId, Content, Country, NodeAddress, Party,
    Request, RequestAction, Role, Timestamp, UserId,
};
use tracing::{info, warn};

/// The node of one country in the imi federation.
#[derive(Debug, Parser)]
#[command(name = "imi-node", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct ConfigArg {
    /// The node's configuration file.
    #[arg(long, short, env = "IMI_CONFIG", default_value = "imi-node.toml")]
    config: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a node: its key, a commented configuration file and its store.
    Init {
        /// The country the node serves (ISO code, or EU for the observer).
        #[arg(long)]
        country: Country,
        /// The node's name, unique in its country (e.g. helsinki-1).
        #[arg(long)]
        name: String,
        /// Directory to create the node in.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Addresses to listen on (repeat for several).
        #[arg(long)]
        listen: Vec<String>,
        /// Addresses of other nodes to connect to (repeat for several).
        #[arg(long)]
        peer: Vec<String>,
    },
    /// Run the node until interrupted.
    Run(ConfigArg),
    /// Show what the store holds (the node must be stopped).
    Status {
        #[command(flatten)]
        config: ConfigArg,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Static routes: which node serves an authority or a country (set,
    /// list, remove). A route leads only to a node of its own country.
    Route {
        #[command(flatten)]
        config: ConfigArg,
        #[command(subcommand)]
        route: RouteCommand,
    },
    /// Run the node and send drill requests to an authority abroad, to prove
    /// the link end to end (the requests are real and receipted).
    Drill {
        #[command(flatten)]
        config: ConfigArg,
        /// The authority that receives the drill requests.
        #[arg(long)]
        to_authority: AuthorityId,
        /// Its country.
        #[arg(long)]
        to_country: Country,
        /// How many requests to send.
        #[arg(long, default_value_t = 10)]
        count: usize,
        /// Withdraw every k-th request right after sending it (0: never).
        #[arg(long, default_value_t = 0)]
        withdraw_every: usize,
    },
    /// Copy the store to a file (the node must be stopped).
    Backup {
        #[command(flatten)]
        config: ConfigArg,
        /// The backup file to write.
        #[arg(long)]
        out: PathBuf,
        /// Replace the file if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Replace the store with a backup (the node must be stopped).
    Restore {
        #[command(flatten)]
        config: ConfigArg,
        /// The backup file to read.
        backup: PathBuf,
    },
    /// The national coordinator's account (the first user of the node).
    Coordinator {
        #[command(flatten)]
        config: ConfigArg,
        #[command(subcommand)]
        command: CoordinatorCommand,
    },
    /// Authorities of this country: register, list, approve, reject (the node must be stopped).
    Authority {
        #[command(flatten)]
        config: ConfigArg,
        #[command(subcommand)]
        command: AuthorityCommand,
    },
    /// Users of this country's authorities (the node must be stopped).
    User {
        #[command(flatten)]
        config: ConfigArg,
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Users' API tokens for the JSON API (the node must be stopped).
    Token {
        #[command(flatten)]
        config: ConfigArg,
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Authorities without a substitute, and users who have not signed in
    /// for a long time (leavers to remove).
    Warnings {
        #[command(flatten)]
        config: ConfigArg,
        /// Users idle for more than this many days are listed.
        #[arg(long, default_value_t = 90)]
        inactive_days: u64,
    },
    /// Federation certificates.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
}

#[derive(Debug, Subcommand)]
enum RouteCommand {
    /// `route authority <CC> <ID> <CC/NODE>`: the node serving an authority
    /// of country CC (a node of CC).
    Authority {
        /// The authority's country.
        country: Country,
        /// The authority.
        authority: AuthorityId,
        /// The node that serves it, of the same country.
        node: NodeAddress,
    },
    /// `route country <CC> <CC/NODE>`: the node receiving the country's
    /// alerts and notifications (a node of CC).
    Country {
        /// The country.
        country: Country,
        /// Its node.
        node: NodeAddress,
    },
    /// `route list`: every route the store holds.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// `route remove authority <CC> <ID>` or `route remove country <CC>`.
    Remove {
        #[command(subcommand)]
        route: RouteRemoveCommand,
    },
}

#[derive(Debug, Subcommand)]
enum RouteRemoveCommand {
    /// `route remove authority <CC> <ID>`
    Authority {
        /// The authority's country.
        country: Country,
        /// The authority.
        authority: AuthorityId,
    },
    /// `route remove country <CC>`
    Country {
        /// The country.
        country: Country,
    },
}

#[derive(Debug, Subcommand)]
enum CoordinatorCommand {
    /// Create the national coordinators' authority and its first user; the
    /// password is read from IMI_PASSWORD, or a prompt without echo (or a
    /// line of piped standard input).
    Init {
        /// Sign-in name.
        #[arg(long)]
        login: String,
        /// Full name.
        #[arg(long)]
        name: String,
        /// Email address.
        #[arg(long)]
        email: String,
    },
}

#[derive(Debug, Subcommand)]
enum AuthorityCommand {
    /// Register an authority on its behalf, as the national coordinator:
    /// pending until approved (`--approve` approves it at once); prints its
    /// id.
    Register {
        /// A name in one language, as LANG=NAME (`pt=Ordem dos Médicos`);
        /// repeat for each language.
        #[arg(long = "name", required = true)]
        names: Vec<String>,
        /// A legislative area it is competent in (catalogue key); repeat
        /// for several.
        #[arg(long = "area", required = true)]
        areas: Vec<String>,
        /// A language its officials read and write; repeat for several.
        #[arg(long = "language", required = true)]
        languages: Vec<imi_protocol::Language>,
        /// Its email address.
        #[arg(long)]
        email: Option<String>,
        /// Its city.
        #[arg(long)]
        city: Option<String>,
        /// Approve it at once, so it is published in the directory.
        #[arg(long)]
        approve: bool,
        /// The coordinator's sign-in name.
        #[arg(long = "as")]
        acting: String,
    },
    /// List authorities, optionally only those with a status.
    List {
        /// pending, active, rejected or deactivated.
        #[arg(long)]
        status: Option<String>,
    },
    /// Approve a pending registration.
    Approve {
        /// The authority.
        id: AuthorityId,
        /// The coordinator's sign-in name.
        #[arg(long = "as")]
        acting: String,
    },
    /// Reject a pending registration.
    Reject {
        /// The authority.
        id: AuthorityId,
        /// Why (shown to the authority).
        #[arg(long)]
        reason: String,
        /// The coordinator's sign-in name.
        #[arg(long = "as")]
        acting: String,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add a user to an authority; the password is read from IMI_PASSWORD, or a
    /// prompt without echo (or a line of piped standard input).
    Add {
        /// The authority.
        #[arg(long)]
        authority: AuthorityId,
        /// Sign-in name.
        #[arg(long)]
        login: String,
        /// Full name.
        #[arg(long)]
        name: String,
        /// Email address.
        #[arg(long)]
        email: String,
        /// Interface language (BCP 47 tag).
        #[arg(long)]
        language: imi_protocol::Language,
        /// A role for an area, as AREA=ROLE (repeat; AREA `*` for every area).
        #[arg(long = "role")]
        roles: Vec<String>,
        /// The acting administrator's or coordinator's sign-in name.
        #[arg(long = "as")]
        acting: String,
    },
    /// Deactivate a user (a leaver).
    Deactivate {
        /// The user's sign-in name.
        login: String,
        /// The acting administrator's or coordinator's sign-in name.
        #[arg(long = "as")]
        acting: String,
    },
    /// List the users of an authority.
    List {
        /// The authority.
        authority: AuthorityId,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create an API token for a user; its secret is printed once, and
    /// stored nowhere.
    Create {
        /// The user's sign-in name.
        #[arg(long)]
        login: String,
        /// What will use it ("medical register's case system").
        #[arg(long)]
        name: String,
        /// Days until it expires (at most 366).
        #[arg(long, default_value_t = 90)]
        days: u64,
    },
    /// List a user's API tokens (never their secrets).
    List {
        /// The user's sign-in name.
        #[arg(long)]
        login: String,
    },
    /// Revoke an API token at once, whoever holds it.
    Revoke {
        /// The token's id, as `token list` shows it.
        id: ApiTokenId,
    },
}

#[derive(Debug, Subcommand)]
enum CertsCommand {
    /// Create the Commission's federation root CA (root.pem, root-key.pem).
    RootInit {
        /// Directory for the root's files.
        #[arg(long)]
        out: PathBuf,
        /// Validity in days.
        #[arg(long, default_value_t = 3650)]
        days: u64,
    },
    /// Certify a country's national CA with the root (ca.pem, ca-key.pem).
    IssueNational {
        /// The root's directory (root.pem, root-key.pem).
        #[arg(long)]
        root: PathBuf,
        /// The country.
        #[arg(long)]
        country: Country,
        /// Directory for the national CA's files.
        #[arg(long)]
        out: PathBuf,
        /// Validity in days.
        #[arg(long, default_value_t = 1825)]
        days: u64,
    },
    /// Make this node's certificate signing request.
    Request {
        #[command(flatten)]
        config: ConfigArg,
        /// Where to write the request (PEM).
        #[arg(long)]
        out: PathBuf,
    },
    /// Issue a node certificate from a request: with a national CA, or with
    /// the root for the Commission's observer.
    IssueNode {
        /// The issuing CA's directory (ca.pem + ca-key.pem, or root.pem + root-key.pem).
        #[arg(long)]
        ca: PathBuf,
        /// The node's request.
        #[arg(long)]
        request: PathBuf,
        /// Where to write the certificate.
        #[arg(long)]
        out: PathBuf,
        /// Validity in days.
        #[arg(long, default_value_t = 365)]
        days: u64,
    },
    /// Create the national web CA beside a national CA (web-ca.pem,
    /// web-ca-key.pem): the ECDSA CA the officials' browsers trust for the
    /// country's web UIs, limited to the domains named.
    IssueWebCa {
        /// The national CA's directory (ca.pem, ca-key.pem); the web CA's
        /// files are written there too.
        #[arg(long)]
        ca: PathBuf,
        /// A domain whose host names it may certify (example.fi covers
        /// imi.example.fi); repeat for more.
        #[arg(long = "domain", required = true)]
        domains: Vec<WebHost>,
        /// Validity in days (default: until the national CA expires).
        #[arg(long)]
        days: Option<u64>,
    },
    /// Issue a web UI's HTTPS certificate and key with the national web CA
    /// (web.pem, web-key.pem).
    IssueWeb {
        /// The national CA's directory, holding the web CA (web-ca.pem,
        /// web-ca-key.pem).
        #[arg(long)]
        ca: PathBuf,
        /// A host name officials reach the UI by (imi.example.fi); repeat
        /// for more.
        #[arg(long = "host", required = true)]
        hosts: Vec<WebHost>,
        /// Directory for web.pem and web-key.pem (the node's certs directory).
        #[arg(long)]
        out: PathBuf,
        /// Validity in days.
        #[arg(long, default_value_t = 365)]
        days: u64,
    },
    /// Revoke a certificate and write the CA's new revocation list.
    Revoke {
        /// The issuing CA's directory.
        #[arg(long)]
        ca: PathBuf,
        /// The certificate to revoke (its file), or use --serial.
        #[arg(long)]
        cert: Option<PathBuf>,
        /// The serial number to revoke.
        #[arg(long)]
        serial: Option<String>,
        /// A node's revocations directory to install the list into.
        #[arg(long)]
        install_into: Vec<PathBuf>,
    },
    /// Show what a certificate, request or revocation list says.
    Show {
        /// The PEM file.
        file: PathBuf,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("imi-node: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Init {
            country,
            name,
            dir,
            listen,
            peer,
        } => init(country, &name, &dir, listen, peer),
        Command::Run(config) => {
            let config = Config::load(&config.config)?;
            logging(&config);
            runtime()?.block_on(run(config, None))
        }
        Command::Drill {
            config,
            to_authority,
            to_country,
            count,
            withdraw_every,
        } => {
            let config = Config::load(&config.config)?;
            logging(&config);
            let drill = Drill {
                to: Party {
                    authority: to_authority,
                    country: to_country,
                },
                count,
                withdraw_every,
            };
            runtime()?.block_on(run(config, Some(drill)))
        }
        Command::Status { config, json } => {
            let config = Config::load(&config.config)?;
            let status = StoreStatus::read(&config.store_path())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{status}");
            }
            Ok(())
        }
        Command::Route { config, route } => {
            let config = Config::load(&config.config)?;
            route_command(&config.store_path(), route)
        }
        Command::Backup { config, out, force } => {
            let config = Config::load(&config.config)?;
            if out.exists() && !force {
                bail!(
                    "{} exists: choose another file, or add --force to replace it",
                    out.display()
                );
            }
            imi_node::status::backup(&config.store_path(), &out)?;
            println!("store copied to {}", out.display());
            Ok(())
        }
        Command::Restore { config, backup } => {
            let config = Config::load(&config.config)?;
            imi_node::status::restore(&backup, &config.store_path())?;
            println!("store restored from {}", backup.display());
            Ok(())
        }
        Command::Certs { command } => certs(command),
        Command::Coordinator { config, command } => {
            let config = Config::load(&config.config)?;
            runtime()?.block_on(coordinator(&config, command))
        }
        Command::Authority { config, command } => {
            let config = Config::load(&config.config)?;
            runtime()?.block_on(authority(&config, command))
        }
        Command::User { config, command } => {
            let config = Config::load(&config.config)?;
            runtime()?.block_on(user(&config, command))
        }
        Command::Token { config, command } => {
            let config = Config::load(&config.config)?;
            runtime()?.block_on(token(&config, command))
        }
        Command::Warnings {
            config,
            inactive_days,
        } => {
            let config = Config::load(&config.config)?;
            runtime()?.block_on(warnings(&config, inactive_days))
        }
    }
}

async fn open_admin(config: &Config) -> Result<Admin> {
    let store = imi_node::store::Store::open(&config.store_path())
        .context("the store is in use or missing (stop the node first)")?;
    Ok(Admin::open(store, config.country).await?)
}

/// The password from `IMI_PASSWORD`, or else from standard input: a
/// prompt without echo on a terminal, one line when piped (for scripts).
fn read_password() -> Result<Password> {
    if let Ok(password) = std::env::var("IMI_PASSWORD") {
        return Ok(Password::new(password));
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        let password =
            rpassword::prompt_password("password: ").context("cannot read the password")?;
        return Ok(Password::new(password));
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(Password::new(line.trim_end_matches(['\r', '\n'])))
}

fn acting_actor(admin: &Admin, country: Country, login: &str) -> Result<Actor> {
    let account = admin
        .user_by_login(login)
        .with_context(|| format!("no user {login:?} on this node"))?;
    Ok(account.user.actor_for(country, imi_protocol::ALL_AREAS))
}

async fn coordinator(config: &Config, command: CoordinatorCommand) -> Result<()> {
    let admin = open_admin(config).await?;
    match command {
        CoordinatorCommand::Init { login, name, email } => {
            let account = admin
                .create_first_coordinator(&login, &name, &email, read_password()?)
                .await?;
            println!(
                "national coordinator {} created in authority {}",
                account.user.login, account.user.authority
            );
        }
    }
    Ok(())
}

async fn authority(config: &Config, command: AuthorityCommand) -> Result<()> {
    let admin = open_admin(config).await?;
    match command {
        AuthorityCommand::List { status } => {
            let status = match status.as_deref() {
                None => None,
                Some("pending") => Some(AuthorityStatus::Pending),
                Some("active") => Some(AuthorityStatus::Active),
                Some("rejected") => Some(AuthorityStatus::Rejected),
                Some("deactivated") => Some(AuthorityStatus::Deactivated),
                Some(other) => {
                    bail!("unknown status {other:?}: use pending, active, rejected or deactivated")
                }
            };
            for record in admin.list_authorities(status).await? {
                let a = &record.authority;
                let name = a.names.values().next().cloned().unwrap_or_default();
                println!("{}  {:?}  {}", a.id, a.status, name);
            }
        }
        AuthorityCommand::Register {
            names,
            areas,
            languages,
            email,
            city,
            approve,
            acting,
        } => {
            let actor = acting_actor(&admin, config.country, &acting)?;
            let mut named = BTreeMap::new();
            for name in names {
                let Some((language, text)) = name.split_once('=') else {
                    bail!("--name {name:?}: write it as LANG=NAME, e.g. pt=Ordem dos Médicos");
                };
                let language: imi_protocol::Language = language.trim().parse().map_err(|_| {
                    anyhow::anyhow!("--name {name:?}: {language:?} is not a language")
                })?;
                named.insert(language, text.trim().to_owned());
            }
            let mut competences = Vec::new();
            for area in areas {
                competences.push(imi_protocol::Competence {
                    area: area
                        .parse()
                        .map_err(|_| anyhow::anyhow!("--area {area:?} is not an area key"))?,
                    procedures: Default::default(),
                    professions: Default::default(),
                    other: Vec::new(),
                });
            }
            let draft = imi_node::admin::AuthorityDraft {
                names: named,
                competences,
                contact: imi_protocol::Contact {
                    email,
                    city,
                    ..Default::default()
                },
                languages: languages.into_iter().collect(),
            };
            let record = admin.register_authority(Some(&actor), draft, None).await?;
            let id = record.authority.id;
            if approve {
                admin.approve_authority(&actor, id).await?;
                println!("authority {id} registered and approved");
            } else {
                println!("authority {id} registered, pending approval");
            }
        }
        AuthorityCommand::Approve { id, acting } => {
            let actor = acting_actor(&admin, config.country, &acting)?;
            admin.approve_authority(&actor, id).await?;
            println!("authority {id} approved");
        }
        AuthorityCommand::Reject { id, reason, acting } => {
            let actor = acting_actor(&admin, config.country, &acting)?;
            admin.reject_authority(&actor, id, &reason).await?;
            println!("authority {id} rejected");
        }
    }
    Ok(())
}

async fn user(config: &Config, command: UserCommand) -> Result<()> {
    let admin = open_admin(config).await?;
    match command {
        UserCommand::Add {
            authority,
            login,
            name,
            email,
            language,
            roles,
            acting,
        } => {
            let actor = acting_actor(&admin, config.country, &acting)?;
            let mut access: BTreeMap<String, std::collections::BTreeSet<Role>> = BTreeMap::new();
            for spec in roles {
                let (area, role) = spec
                    .split_once('=')
                    .with_context(|| format!("role {spec:?} is not AREA=ROLE"))?;
                access
                    .entry(area.to_owned())
                    .or_default()
                    .insert(role.parse()?);
            }
            let account = NewAccount {
                user: NewUser {
                    login,
                    name,
                    email,
                    language,
                    access,
                },
                password: read_password()?,
            };
            let account = admin.add_user(&actor, authority, account).await?;
            println!("user {} added ({})", account.user.login, account.user.id);
        }
        UserCommand::Deactivate { login, acting } => {
            let actor = acting_actor(&admin, config.country, &acting)?;
            let user = admin.user_by_login(&login)?;
            admin.deactivate_user(&actor, user.user.id).await?;
            println!("user {login} deactivated");
        }
        UserCommand::List { authority } => {
            for account in admin.users_of(authority)? {
                let u = &account.user;
                println!(
                    "{}  {}  {}  {}",
                    u.login,
                    if u.active { "active" } else { "deactivated" },
                    u.name,
                    u.email
                );
            }
        }
    }
    Ok(())
}

async fn token(config: &Config, command: TokenCommand) -> Result<()> {
    let admin = open_admin(config).await?;
    match command {
        TokenCommand::Create { login, name, days } => {
            if days == 0 || days > MAX_TOKEN_DAYS {
                bail!("--days must be from 1 to {MAX_TOKEN_DAYS}");
            }
            let user = admin
                .user_by_login(&login)
                .with_context(|| format!("no user {login:?} on this node"))?;
            let expires = Timestamp::from_millis(now_ms()).plus_days(days);
            let created = admin.create_api_token(user.user.id, &name, expires).await?;
            println!(
                "API token {} created for {login}, valid until {}",
                created.token.id, created.token.expires
            );
            println!("secret (shown once, stored nowhere): {}", created.secret);
        }
        TokenCommand::List { login } => {
            let user = admin
                .user_by_login(&login)
                .with_context(|| format!("no user {login:?} on this node"))?;
            let tokens = admin.api_tokens(user.user.id)?;
            if tokens.is_empty() {
                println!("{login} has no API tokens");
            }
            for t in tokens {
                let last_used = t
                    .last_used
                    .map_or_else(|| "never used".to_owned(), |at| format!("last used {at}"));
                println!(
                    "{}  {}  created {}  expires {}  {last_used}",
                    t.id, t.name, t.created, t.expires
                );
            }
        }
        TokenCommand::Revoke { id } => {
            let revoked = admin.revoke_api_token(id).await?;
            let login = admin
                .user(revoked.user)
                .map_or_else(|_| revoked.user.to_string(), |a| a.user.login);
            println!("API token {id} ({}) of {login} revoked", revoked.name);
        }
    }
    Ok(())
}

async fn warnings(config: &Config, inactive_days: u64) -> Result<()> {
    let admin = open_admin(config).await?;
    let substitutes = admin.substitute_warnings().await?;
    let inactive = admin
        .inactive_users(Duration::from_secs(inactive_days * 86_400))
        .await?;
    if substitutes.is_empty() && inactive.is_empty() {
        println!("no warnings");
    }
    for warning in substitutes {
        println!("{warning}");
    }
    for idle in inactive {
        let u = &idle.account.user;
        println!(
            "{} ({}) has not signed in since {}: remove the account if they left",
            u.login, u.name, idle.idle_since
        );
    }
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn logging(config: &Config) {
    let filter = std::env::var("IMI_LOG")
        .ok()
        .or_else(|| config.log.filter.clone())
        .unwrap_or_else(|| "info".into());
    let filter = tracing_subscriber::EnvFilter::new(filter);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match config.log.format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

fn init(
    country: Country,
    name: &str,
    dir: &Path,
    listen: Vec<String>,
    peers: Vec<String>,
) -> Result<()> {
    if !valid_node_name(name) {
        bail!("node name {name:?} is not valid: use 1 to 63 lowercase letters, digits and '-'");
    }
    let config_path = dir.join("imi-node.toml");
    if config_path.exists() {
        bail!(
            "{} exists already: this directory holds a node",
            config_path.display()
        );
    }
    std::fs::create_dir_all(dir.join("certs/revocations"))?;
    std::fs::create_dir_all(dir.join("data"))?;
    let key = NodeKey::generate();
    imi_certs::write_private_key_pem(&dir.join("node-key.pem"), &key.to_pkcs8_pem())?;
    let mut text = EXAMPLE
        .replace("country = \"FI\"", &format!("country = \"{country}\""))
        .replace("name = \"helsinki-1\"", &format!("name = \"{name}\""));
    if !listen.is_empty() {
        text = text.replace(
            "listen = [\"/ip4/0.0.0.0/tcp/4100\", \"/ip4/0.0.0.0/udp/4100/quic-v1\"]",
            &format!("listen = {}", toml_list(&listen)),
        );
    }
    if !peers.is_empty() {
        text = text.replace("peers = []", &format!("peers = {}", toml_list(&peers)));
    }
    if country.is_commission() {
        text = text.replace(
            "national_ca = \"certs/national-ca.pem\"",
            "# national_ca: none, the root certifies the observer",
        );
    }
    Config::parse(&text)
        .map_err(|e| anyhow::anyhow!("the configuration would not be valid: {e}"))?;
    std::fs::write(&config_path, text)?;
    let config = Config::load(&config_path)?;
    imi_node::store::Store::open(&config.store_path())?;
    println!("node {country}/{name} created in {}", dir.display());
    println!("peer id: {}", key.peer_id());
    println!(
        "next: `imi-node certs request --config {} --out node.csr.pem`, have it issued by the national CA into certs/node.pem, and place root.pem{} in certs/",
        config_path.display(),
        if country.is_commission() {
            ""
        } else {
            " and national-ca.pem"
        }
    );
    Ok(())
}

fn toml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

struct Drill {
    to: Party,
    count: usize,
    withdraw_every: usize,
}

async fn run(config: Config, drill: Option<Drill>) -> Result<()> {
    let setup = NodeSetup::from_config(&config)?;
    // The web UI's certificate is checked before the node joins the
    // federation: a bad file stops the start with its name.
    let ui_setup = config
        .web
        .as_ref()
        .map(|web| imi_node::ui::UiSetup::from_config(web, config.country))
        .transpose()?;
    let address = setup.address.clone();
    let app = Arc::new(CaseApp::new(address.clone()));
    let node = Node::start(setup, app).await?;
    let ui = match ui_setup {
        Some(setup) => {
            let ui = imi_node::ui::UiServer::start(&node, setup).await?;
            info!(url = %ui.url(), "web UI served");
            Some(ui)
        }
        None => None,
    };
    if let Some(drill) = drill {
        send_drill(&node, &config, drill).await?;
    }
    let revocations = config.certs.revocations.clone();
    let mut seen = revocation_files(&revocations);
    let mut rescan = tokio::time::interval(Duration::from_secs(2));
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    // SIGTERM is what systemd and container runtimes send to stop a service.
    let mut terminated = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    loop {
        tokio::select! {
            _ = &mut interrupted => {
                info!("interrupted (SIGINT), stopping");
                break;
            }
            _ = terminated.recv() => {
                info!("asked to stop (SIGTERM), stopping");
                break;
            }
            _ = rescan.tick() => {
                // Lists placed by `certs revoke --install-into` take effect at once.
                let now = revocation_files(&revocations);
                if now != seen {
                    seen = now;
                    reload_revocations(&node, &revocations).await;
                }
            }
        }
    }
    if let Some(ui) = ui {
        ui.stop().await;
    }
    node.shutdown().await;
    Ok(())
}

fn revocation_files(dir: &Path) -> BTreeMap<PathBuf, SystemTime> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.path(), e.metadata().ok()?.modified().ok()?)))
        .collect()
}

async fn reload_revocations(node: &Node<CaseApp>, dir: &Path) {
    for (path, result) in imi_node::node::read_revocation_dir(dir) {
        let (issuer, list) = match result {
            Ok(file) => file,
            Err(err) => {
                warn!(file = %path.display(), error = %err, "revocation list not usable");
                continue;
            }
        };
        match node.add_revocation_list(issuer.as_ref(), list).await {
            Ok(true) => info!(file = %path.display(), "new revocation list in force"),
            Ok(false) => {}
            Err(err) => warn!(file = %path.display(), error = %err, "revocation list refused"),
        }
    }
}

/// `imi-node route …` on the store of a stopped node.
fn route_command(store: &std::path::Path, command: RouteCommand) -> Result<()> {
    use imi_node::routes::{self, RouteKey};
    let party =
        |country, authority| RouteKey::Authority(imi_protocol::Party { authority, country });
    let set = |key: RouteKey, node: NodeAddress| -> Result<()> {
        routes::set_route_offline(store, key, &node)?;
        println!("route set: {key} -> {node}");
        Ok(())
    };
    match command {
        RouteCommand::Authority {
            country,
            authority,
            node,
        } => set(party(country, authority), node),
        RouteCommand::Country { country, node } => set(RouteKey::Country(country), node),
        RouteCommand::List { json } => {
            let all = routes::list_routes_offline(store)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else if all.is_empty() {
                println!("no routes");
            } else {
                for route in all {
                    println!("{route}");
                }
            }
            Ok(())
        }
        RouteCommand::Remove { route } => {
            let key = match route {
                RouteRemoveCommand::Authority { country, authority } => party(country, authority),
                RouteRemoveCommand::Country { country } => RouteKey::Country(country),
            };
            if routes::remove_route_offline(store, key)? {
                println!("route removed: {key}");
            } else {
                println!("no route for {key}");
            }
            Ok(())
        }
    }
}

async fn send_drill(node: &Node<CaseApp>, config: &Config, drill: Drill) -> Result<()> {
    // The drill official belongs to the node's own drill authority.
    let official = Actor {
        user: UserId::from_parts(0, 1),
        authority: AuthorityId::from_parts(0, u128::from(config.country.code().as_bytes()[0])),
        country: config.country,
        roles: [Role::RequestHandler].into(),
    };
    node.set_authority_route(imi_protocol::Party::of(&official), node.address())
        .await?;
    let reply_by = Timestamp::from_millis(now_ms())
        .date()
        .checked_add_days(30)
        .context("date")?;
    // Each request is written and sent in one transaction, so a drill
    // stopped half-way leaves no unsent drafts behind.
    let sends = (0..drill.count).map(|i| {
        let official = official.clone();
        async move {
            let case = CaseId::new();
            let draft = Request::draft(
                case,
                &official,
                "professional-qualifications",
                drill.to,
                Timestamp::from_millis(now_ms()),
            )?;
            node.open_case(
                CaseState::Request(draft),
                official,
                CaseAction::Request(RequestAction::Send { reply_by }),
                Content::default(),
            )
            .await?;
            anyhow::Ok((i, case))
        }
    });
    let cases = futures::future::join_all(sends)
        .await
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
    let mut withdrawn = 0;
    if drill.withdraw_every > 0 {
        let withdraws = cases
            .iter()
            .filter(|(i, _)| i % drill.withdraw_every == 0)
            .map(|(_, case)| {
                node.act(
                    *case,
                    official.clone(),
                    CaseAction::Request(RequestAction::Withdraw),
                    Content::default(),
                )
            });
        for result in futures::future::join_all(withdraws).await {
            result?;
            withdrawn += 1;
        }
    }
    info!(requests = drill.count, withdrawn, "drill requests queued");
    println!(
        "drill queued: {} requests, {} withdrawn",
        drill.count, withdrawn
    );
    Ok(())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn certs(command: CertsCommand) -> Result<()> {
    match command {
        CertsCommand::RootInit { out, days } => {
            let root = RootCa::generate("imi federation root", Validity::days_from_now(days))?;
            std::fs::create_dir_all(&out)?;
            root.write_pem_files(&out.join("root.pem"), &out.join("root-key.pem"))?;
            println!("federation root created in {}", out.display());
            println!("give root.pem to every node; keep root-key.pem offline");
        }
        CertsCommand::IssueNational {
            root,
            country,
            out,
            days,
        } => {
            let root = RootCa::read_pem_files(&root.join("root.pem"), &root.join("root-key.pem"))?;
            let national = root.issue_national_ca(country, Validity::days_from_now(days))?;
            std::fs::create_dir_all(&out)?;
            national.write_pem_files(&out.join("ca.pem"), &out.join("ca-key.pem"))?;
            println!("national CA of {country} created in {}", out.display());
        }
        CertsCommand::Request { config, out } => {
            let config = Config::load(&config.config)?;
            let key =
                NodeKey::from_pkcs8_pem(&imi_certs::read_private_key_pem(&config.certs.key)?)?;
            let name = config.name.parse()?;
            let request = CertificateRequest::new(&key, config.country, &name)?;
            request.write_pem_file(&out)?;
            println!(
                "request for {} (peer id {}) written to {}",
                config.address(),
                key.peer_id(),
                out.display()
            );
        }
        CertsCommand::IssueNode {
            ca,
            request,
            out,
            days,
        } => {
            let request = CertificateRequest::read_pem_file(&request)?;
            let validity = Validity::days_from_now(days);
            let cert = if ca.join("root-key.pem").exists() {
                let root = RootCa::read_pem_files(&ca.join("root.pem"), &ca.join("root-key.pem"))?;
                root.issue_observer(&request, validity)?
            } else {
                let national =
                    NationalCa::read_pem_files(&ca.join("ca.pem"), &ca.join("ca-key.pem"))?;
                national.issue_node(&request, validity)?
            };
            cert.write_pem_file(&out)?;
            println!(
                "certificate for {}/{} (serial {}) written to {}",
                request.country(),
                request.node(),
                cert.serial(),
                out.display()
            );
        }
        CertsCommand::IssueWebCa { ca, domains, days } => issue_web_ca(&ca, &domains, days)?,
        CertsCommand::IssueWeb {
            ca,
            hosts,
            out,
            days,
        } => issue_web(&ca, &hosts, &out, days)?,
        CertsCommand::Revoke {
            ca,
            cert,
            serial,
            install_into,
        } => revoke(&ca, cert, serial, &install_into)?,
        CertsCommand::Show { file } => show(&file)?,
    }
    Ok(())
}

fn issue_web_ca(ca: &Path, domains: &[WebHost], days: Option<u64>) -> Result<()> {
    let (cert, key) = (ca.join("web-ca.pem"), ca.join("web-ca-key.pem"));
    if cert.exists() || key.exists() {
        bail!(
            "{} holds a national web CA already, which the officials' browsers trust; \
             to replace it, remove web-ca.pem and web-ca-key.pem first, then install the new \
             web-ca.pem in every browser and issue the web UIs' certificates anew",
            ca.display()
        );
    }
    let national = NationalCa::read_pem_files(&ca.join("ca.pem"), &ca.join("ca-key.pem"))?;
    let validity = match days {
        Some(days) => Validity::days_from_now(days),
        None => Validity::new(SystemTime::now(), national.certificate().not_after()),
    };
    let web_ca = WebCa::generate(&national, domains, validity)?;
    web_ca.write_pem_files(&cert, &key)?;
    let domains: Vec<String> = domains.iter().map(ToString::to_string).collect();
    println!(
        "national web CA of {} created in {} (web-ca.pem, web-ca-key.pem), for host names in {}",
        national.country(),
        ca.display(),
        domains.join(", ")
    );
    println!(
        "install web-ca.pem as a trusted certificate authority in the officials' browsers; keep web-ca-key.pem with the national CA's key"
    );
    Ok(())
}

fn issue_web(ca: &Path, hosts: &[WebHost], out: &Path, days: u64) -> Result<()> {
    let web_ca_cert = ca.join("web-ca.pem");
    if !web_ca_cert.exists() {
        bail!(
            "{} holds no national web CA (web-ca.pem): create it first with `imi-node certs issue-web-ca --ca {} --domain YOUR-DOMAIN`",
            ca.display(),
            ca.display()
        );
    }
    let web_ca = WebCa::read_pem_files(&web_ca_cert, &ca.join("web-ca-key.pem"))?;
    let issued = web_ca.issue_server(hosts, Validity::days_from_now(days))?;
    std::fs::create_dir_all(out)?;
    let (chain, key) = (out.join("web.pem"), out.join("web-key.pem"));
    issued.write_pem_files(&chain, &key)?;
    let hosts: Vec<String> = hosts.iter().map(ToString::to_string).collect();
    println!(
        "web UI certificate for {} (serial {}, valid until {}) written to {} with its key {}",
        hosts.join(", "),
        issued.certificate().serial(),
        imi_certs::utc(issued.certificate().not_after()),
        chain.display(),
        key.display()
    );
    println!(
        "serve it with, in the [web] section of imi-node.toml (paths relative to that file's directory): tls = {{ certificate = \"{}\", key = \"{}\" }}",
        chain.display(),
        key.display()
    );
    Ok(())
}

/// The revoked serials of a CA, kept in its directory as `revoked.toml`.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct RevokedFile {
    number: u64,
    serials: Vec<String>,
}

fn revoke(
    ca: &Path,
    cert: Option<PathBuf>,
    serial: Option<String>,
    install: &[PathBuf],
) -> Result<()> {
    let serial: Serial = match (cert, serial) {
        (Some(path), None) => Certificate::read_pem_file(&path)?.serial().clone(),
        (None, Some(serial)) => serial.parse()?,
        _ => bail!("name the certificate to revoke with exactly one of --cert or --serial"),
    };
    let state_path = ca.join("revoked.toml");
    let mut state: RevokedFile = match std::fs::read_to_string(&state_path) {
        Ok(text) => toml::from_str(&text)
            .with_context(|| format!("{} is not valid", state_path.display()))?,
        // Only a CA that never revoked anything starts from number 1; a
        // state that cannot be read must not restart the numbering.
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => RevokedFile::default(),
        Err(err) => {
            return Err(err).with_context(|| {
                format!(
                    "cannot read {}, which numbers this CA's revocation lists",
                    state_path.display()
                )
            });
        }
    };
    if !state.serials.contains(&serial.to_string()) {
        state.serials.push(serial.to_string());
    }
    state.number += 1;
    let now = SystemTime::now();
    let revoked = state
        .serials
        .iter()
        .map(|s| -> Result<Revoked> {
            Ok(Revoked {
                serial: s.parse()?,
                revoked_at: now,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let params = RevocationParams {
        number: state.number,
        this_update: now,
        next_update: now + Duration::from_secs(7 * 86_400),
        revoked,
    };
    let (list, issuer, stem) = if ca.join("root-key.pem").exists() {
        let root = RootCa::read_pem_files(&ca.join("root.pem"), &ca.join("root-key.pem"))?;
        (root.revocation_list(&params)?, None, "root".to_owned())
    } else {
        let national = NationalCa::read_pem_files(&ca.join("ca.pem"), &ca.join("ca-key.pem"))?;
        let stem = format!("national-{}", national.country());
        (
            national.revocation_list(&params)?,
            Some(national.certificate().clone()),
            stem,
        )
    };
    // The number is recorded before any list carrying it leaves: after a
    // crash in between, the next list takes the next number, never this one
    // again. Each file is replaced atomically (temp file, flush, rename).
    imi_certs::write_file_atomically(&state_path, toml::to_string(&state)?.as_bytes())?;
    list.write_pem_file(&ca.join("crl.pem"))?;
    println!(
        "serial {serial} revoked; revocation list number {} written to {}",
        state.number,
        ca.join("crl.pem").display()
    );
    for dir in install {
        std::fs::create_dir_all(dir)?;
        if let Some(issuer) = &issuer {
            issuer.write_pem_file(&dir.join(format!("{stem}.ca.pem")))?;
        }
        list.write_pem_file(&dir.join(format!("{stem}.crl.pem")))?;
        println!("installed into {}", dir.display());
    }
    Ok(())
}

fn show(file: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    if text.contains("BEGIN X509 CRL") {
        let list = RevocationList::from_pem(&text)?;
        println!("revocation list number {}", list.number());
        println!("  this update: {}", imi_certs::utc(list.this_update()));
        println!("  next update: {}", imi_certs::utc(list.next_update()));
        for revoked in list.revoked() {
            println!("  revoked: {}", revoked.serial);
        }
    } else if text.contains("BEGIN CERTIFICATE REQUEST") {
        let request = CertificateRequest::from_pem(&text)?;
        println!(
            "certificate request for {}/{}",
            request.country(),
            request.node()
        );
        println!("  peer id: {}", request.peer_id());
    } else {
        // A chain (a web UI's web.pem) is shown certificate by certificate.
        const END: &str = "-----END CERTIFICATE-----";
        let blocks: Vec<&str> = text
            .split_inclusive(END)
            .filter(|block| block.contains(END))
            .collect();
        let blocks = if blocks.is_empty() {
            vec![text.as_str()]
        } else {
            blocks
        };
        for block in blocks {
            let cert = Certificate::from_pem(block)?;
            println!("certificate, serial {}", cert.serial());
            match cert.role() {
                imi_certs::CertificateRole::Root => println!("  federation root CA"),
                imi_certs::CertificateRole::NationalCa { country } => {
                    println!("  national CA of {country}")
                }
                imi_certs::CertificateRole::Node {
                    country,
                    node,
                    peer_id,
                } => {
                    println!("  node {country}/{node}");
                    println!("  peer id: {peer_id}");
                }
                imi_certs::CertificateRole::WebCa { country, domains } => {
                    println!("  national web CA of {country}");
                    println!("  certifies host names in: {}", domains.join(", "));
                }
                imi_certs::CertificateRole::WebServer { hosts } => {
                    println!("  web UI certificate for {}", hosts.join(", "));
                }
                imi_certs::CertificateRole::Other => println!("  not a federation certificate"),
            }
            println!("  valid from {}", imi_certs::utc(cert.not_before()));
            println!("  valid until {}", imi_certs::utc(cert.not_after()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A national CA in `dir` and a node certificate it issued, in `dir/node.pem`.
    fn national_ca(dir: &Path) -> PathBuf {
        let root = RootCa::generate("root", Validity::days_from_now(30)).unwrap();
        let ca = root
            .issue_national_ca(Country::Fi, Validity::days_from_now(20))
            .unwrap();
        ca.write_pem_files(&dir.join("ca.pem"), &dir.join("ca-key.pem"))
            .unwrap();
        let key = NodeKey::generate();
        let request = CertificateRequest::new(&key, Country::Fi, &"fi-1".parse().unwrap()).unwrap();
        let cert = ca
            .issue_node(&request, Validity::days_from_now(10))
            .unwrap();
        let path = dir.join("node.pem");
        cert.write_pem_file(&path).unwrap();
        path
    }

    #[test]
    fn an_unreadable_revocation_state_never_reuses_a_list_number() {
        let dir = tempfile::tempdir().unwrap();
        let cert = national_ca(dir.path());
        revoke(dir.path(), Some(cert.clone()), None, &[]).unwrap();
        let first = std::fs::read(dir.path().join("crl.pem")).unwrap();
        assert_eq!(
            RevocationList::read_pem_file(&dir.path().join("crl.pem"))
                .unwrap()
                .number(),
            1
        );
        // The state cannot be read (here: a directory stands in its place).
        std::fs::remove_file(dir.path().join("revoked.toml")).unwrap();
        std::fs::create_dir(dir.path().join("revoked.toml")).unwrap();
        let err = revoke(dir.path(), Some(cert), None, &[]).unwrap_err();
        assert!(
            format!("{err:#}").contains("numbers this CA's revocation lists"),
            "{err:#}"
        );
        // No second list numbered 1 was written.
        assert_eq!(std::fs::read(dir.path().join("crl.pem")).unwrap(), first);
    }

    #[test]
    fn the_list_number_is_recorded_before_the_list_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let cert = national_ca(dir.path());
        // Writing the list fails (a directory stands in its place), as if
        // the machine stopped between the two files.
        std::fs::create_dir(dir.path().join("crl.pem")).unwrap();
        assert!(revoke(dir.path(), Some(cert.clone()), None, &[]).is_err());
        std::fs::remove_dir(dir.path().join("crl.pem")).unwrap();
        revoke(dir.path(), Some(cert), None, &[]).unwrap();
        let list = RevocationList::read_pem_file(&dir.path().join("crl.pem")).unwrap();
        assert_eq!(
            list.number(),
            2,
            "number 1 may have left before the failure"
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
