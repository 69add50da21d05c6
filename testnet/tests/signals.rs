//! The real `imi-node run` stops cleanly on SIGTERM, what systemd and
//! container runtimes send to stop a service.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use common::imi_node_binary;
use imi_protocol::Country;
use imi_testnet::Testnet;

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
