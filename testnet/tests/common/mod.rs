//! Helpers shared by the multi-node tests.
#![allow(dead_code, unreachable_pub)]

pub mod web;

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, ensure};

use imi_node::cases::{CaseApp, CaseState};
use imi_node::node::Node;
use imi_protocol::{Actor, AuthorityId, CaseId, Country, Date, Party, Role, UserId};
use imi_testnet::Testnet;

pub const WAIT: Duration = Duration::from_secs(20);

/// Logs of the nodes, when `IMI_LOG` asks for them.
pub fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("IMI_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .with_test_writer()
        .try_init();
}

/// An official of a new authority of `country` with `roles`.
pub fn official(country: Country, roles: &[Role]) -> Actor {
    Actor {
        user: UserId::new(),
        authority: AuthorityId::new(),
        country,
        roles: roles.iter().copied().collect::<BTreeSet<_>>(),
    }
}

pub fn party(actor: &Actor) -> Party {
    Party {
        authority: actor.authority,
        country: actor.country,
    }
}

/// A date `days` from today.
pub fn in_days(days: i64) -> Date {
    let today_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    imi_protocol::Timestamp::from_millis(today_ms)
        .date()
        .checked_add_days(days)
        .unwrap()
}

/// The state of `case` on `node`, if it has it.
pub fn state(node: &Node<CaseApp>, case: CaseId) -> Option<CaseState> {
    node.case(case).unwrap().map(|r| r.state())
}

/// The request status of `case` on `node`, as words.
pub fn status(node: &Node<CaseApp>, case: CaseId) -> Option<String> {
    state(node, case).map(|s| s.describe())
}

/// A Finnish and a Portuguese node, linked both ways, with a request
/// handler of an authority of each; both nodes route each authority to
/// its own country's node, as the directory would.
pub async fn finland_and_portugal(quic: bool) -> anyhow::Result<(Testnet, Actor, Actor)> {
    logs();
    let net = Testnet::builder()
        .countries([Country::Fi, Country::Pt])
        .quic(quic)
        .start()
        .await?;
    net.wait_connected(WAIT).await?;
    let finn = official(Country::Fi, &[Role::RequestHandler]);
    let portuguese = official(Country::Pt, &[Role::RequestHandler]);
    for node in &net.nodes {
        for actor in [&finn, &portuguese] {
            node.set_authority_route(party(actor), net.node(actor.country).address())
                .await?;
        }
    }
    Ok((net, finn, portuguese))
}

/// The `imi-node` binary next to this test's own target directory, built
/// with cargo when it is not there yet.
pub fn imi_node_binary() -> anyhow::Result<std::path::PathBuf> {
    let exe = std::env::current_exe()?;
    // <target>/<profile>/deps/<test>-<hash>
    let profile_dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .context("the test executable lies outside a target directory")?;
    let binary = profile_dir.join(format!("imi-node{}", std::env::consts::EXE_SUFFIX));
    if !binary.exists() {
        let target_dir = profile_dir
            .parent()
            .context("the profile directory has no parent")?;
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "-p", "imi-node", "--bin", "imi-node"])
            .env("CARGO_TARGET_DIR", target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .context("cannot run cargo to build imi-node")?;
        ensure!(status.success(), "building imi-node failed");
        ensure!(
            binary.exists(),
            "cargo built imi-node, but not at {}",
            binary.display()
        );
    }
    Ok(binary)
}

/// What a program said and how it ended.
pub struct Ran {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` to its end, killing it after `timeout`; its output goes
/// through files in `dir`, so a talkative program never blocks on a pipe.
/// (The workspace's tokio has no `process` feature; this waits without
/// holding a runtime thread.)
pub async fn run(
    mut command: std::process::Command,
    dir: &std::path::Path,
    timeout: Duration,
) -> anyhow::Result<Ran> {
    let (out, err) = (dir.join(".stdout"), dir.join(".stderr"));
    let mut child = command
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out)?)
        .stderr(std::fs::File::create(&err)?)
        .spawn()
        .with_context(|| format!("starting {command:?}"))?;
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!(
                "{command:?} still running after {timeout:?}\n--- stdout\n{}\n--- stderr\n{}",
                std::fs::read_to_string(&out).unwrap_or_default(),
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    Ok(Ran {
        status,
        stdout: String::from_utf8_lossy(&std::fs::read(&out)?).into_owned(),
        stderr: String::from_utf8_lossy(&std::fs::read(&err)?).into_owned(),
    })
}
