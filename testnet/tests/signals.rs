//! The real `imi-node run` stops cleanly on SIGTERM, what systemd and
//! container runtimes send to stop a service.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use imi_protocol::Country;
use imi_testnet::Testnet;

/// The `imi-node` binary next to this test's own target directory, built
/// with cargo when it is not there yet.
fn imi_node_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("the test executable lies outside a target directory")?;
    let binary = profile_dir.join(format!("imi-node{}", std::env::consts::EXE_SUFFIX));
    if !binary.exists() {
        let target_dir = profile_dir
            .parent()
            .context("the profile directory has no parent")?;
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "imi-node", "--bin", "imi-node"])
            .env("CARGO_TARGET_DIR", target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .context("cannot run cargo to build imi-node")?;
        ensure!(status.success(), "building imi-node failed");
    }
    Ok(binary)
}

fn wait_for_log(log: &Path, text: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let content = std::fs::read_to_string(log).unwrap_or_default();
        if content.contains(text) {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "{text:?} did not appear in the log within {timeout:?}:\n{content}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigterm_stops_the_node_cleanly() -> Result<()> {
    let federation = Testnet::builder().countries([Country::Fi]).prepare()?;
    let node = &federation.nodes[0];
    let log = federation.base().join("fi.log");
    let mut child = Command::new(imi_node_binary()?)
        .args(["run", "--config"])
        .arg(&node.config)
        .env("IMI_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()?;
    wait_for_log(&log, "node started", Duration::from_secs(30))?;
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    ensure!(status.success(), "kill failed");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            child.kill()?;
            anyhow::bail!("the node did not stop within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let content = std::fs::read_to_string(&log)?;
    ensure!(
        status.success(),
        "the node ended with {status} instead of stopping cleanly:\n{content}"
    );
    ensure!(content.contains("SIGTERM"), "{content}");
    ensure!(content.contains("node stopped"), "{content}");
    Ok(())
}
