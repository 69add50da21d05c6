//! `imi-testnet scenario` as a tester runs it: the real `imi-testnet up
//! --dir D` in its own process, then `imi-testnet scenario seed --dir D` in
//! another, reading the tokens `up` wrote to `D/api.json` and going
//! through the JSON API alone; `up` stopped with SIGINT, as Ctrl-C stops
//! it. A scenario whose step cannot succeed (a revoked token) exits
//! non-zero and names the step; scenarios not written yet are refused.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use imi_protocol::Country;
use imi_testnet::api::{ApiFile, http};

const BINARY: &str = env!("CARGO_BIN_EXE_imi-testnet");

/// How long `up` may take to be ready: a debug build on a busy machine.
const READY: Duration = Duration::from_secs(300);

/// `imi-testnet up` running in a child process.
struct Up {
    child: Child,
    dir: PathBuf,
    stdout: PathBuf,
    stderr: PathBuf,
    _temp: tempfile::TempDir,
}

impl Up {
    /// Starts `imi-testnet up --dir D --countries countries`.
    fn start(countries: &str) -> Result<Up> {
        let temp = tempfile::tempdir()?;
        let dir = temp.path().join("federation");
        let stdout = temp.path().join("up.out");
        let stderr = temp.path().join("up.err");
        let child = Command::new(BINARY)
            .args(["up", "--countries", countries, "--dir"])
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout)?)
            .stderr(std::fs::File::create(&stderr)?)
            .spawn()?;
        Ok(Up {
            child,
            dir,
            stdout,
            stderr,
            _temp: temp,
        })
    }

    fn output(&self) -> String {
        format!(
            "--- up's output:\n{}\n--- up's errors:\n{}",
            std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            std::fs::read_to_string(&self.stderr).unwrap_or_default()
        )
    }

    /// Waits until `D/api.json` exists and every node's API answers each
    /// token in it; the file.
    fn wait_ready(&mut self) -> Result<ApiFile> {
        let deadline = Instant::now() + READY;
        let path = ApiFile::path(&self.dir);
        while !path.exists() {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "up ended with {status} before writing {}\n{}",
                    path.display(),
                    self.output()
                );
            }
            ensure!(
                Instant::now() < deadline,
                "up wrote no {} within {READY:?}\n{}",
                path.display(),
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
            ensure!(mode == 0o600, "{} has mode {mode:o}", path.display());
        }
        let api = ApiFile::read(&self.dir)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let http = http(1);
            for node in &api.nodes {
                for user in &node.users {
                    let client = api.client(&http, node.country, &user.login)?;
                    let me = client.get_json("/api/v1/me").await?;
                    ensure!(me["login"] == user.login.as_str(), "{me}");
                }
            }
            anyhow::Ok(())
        })?;
        Ok(api)
    }

    /// Stops `up` as Ctrl-C does and checks it stopped cleanly.
    fn stop(mut self) -> Result<()> {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()?;
        ensure!(status.success(), "kill failed");
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                bail!("up did not stop within 60 s of SIGINT\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        ensure!(
            status.success(),
            "up ended with {status} instead of stopping cleanly\n{}",
            self.output()
        );
        let output = std::fs::read_to_string(&self.stdout)?;
        ensure!(output.contains("stopping"), "{}", self.output());
        Ok(())
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        // A failed test leaves no federation running.
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn scenario(args: &[&str], dir: Option<&Path>) -> Result<Output> {
    let mut command = Command::new(BINARY);
    command.arg("scenario").args(args);
    if let Some(dir) = dir {
        command.arg("--dir").arg(dir);
    }
    Ok(command.stdin(Stdio::null()).output()?)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_seed_scenario_passes_through_the_api_of_a_five_country_federation() -> Result<()> {
    let mut up = Up::start("FI,PT,DE,FR,ES")?;
    let api = up.wait_ready()?;
    let countries: Vec<Country> = api.nodes.iter().map(|n| n.country).collect();
    assert_eq!(countries.len(), 5, "{countries:?}");
    let up_output = std::fs::read_to_string(&up.stdout)?;
    assert!(
        up_output.contains("api.json"),
        "the banner names the API file:\n{up_output}"
    );

    let run = scenario(&["seed"], Some(&up.dir))?;
    let (stdout, stderr) = (text(&run.stdout), text(&run.stderr));
    assert!(
        run.status.success(),
        "scenario seed ended with {}:\n{stdout}\n{stderr}\n{}",
        run.status,
        up.output()
    );
    let steps = [
        "step 1: Aino Virtanen searches in Finnish",
        "step 2: Aino Virtanen sends Ordem dos Médicos a professional qualifications request (pq-general)",
        "step 3: João Santos allocates the request to Maria Silva",
        "step 4: Maria Silva accepts the request",
        "step 5: Maria Silva proposes a later reply-by date",
        "step 6: Aino Virtanen accepts the new reply-by date",
        "step 7: Maria Silva answers",
        "step 8: Aino Virtanen closes the request",
        "all 8 steps passed",
    ];
    for step in steps {
        assert!(stdout.contains(step), "{step:?} missing from:\n{stdout}");
    }
    // Each side reads the case in its own language, from the UI's messages.
    for seen in [
        "FI sees (fi-official): Lähetetty",
        "PT sees (pt-official): Enviado",
        "FI sees (fi-official): Suljettu",
        "PT sees (pt-official): Encerrado",
    ] {
        assert!(stdout.contains(seen), "{seen:?} missing from:\n{stdout}");
    }
    up.stop()
}

#[test]
fn a_scenario_whose_step_cannot_succeed_exits_non_zero_naming_the_step() -> Result<()> {
    let mut up = Up::start("FI,PT")?;
    let api = up.wait_ready()?;
    // Maria Silva revokes the token the file names, as she could in My
    // profile: the scenario sends the request, then cannot read it as her.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let maria = api.client(&http(1), Country::Pt, "pt-official")?;
        let tokens = maria.get_json("/api/v1/me/tokens").await?;
        let id = tokens
            .as_array()
            .and_then(|t| t.iter().find(|t| t["name"] == "imi-testnet"))
            .and_then(|t| t["id"].as_str())
            .context("the token up created")?
            .to_owned();
        let revoked = maria
            .call("DELETE", &format!("/api/v1/me/tokens/{id}"), None, &[])
            .await?;
        maria.ok(&revoked, "the revocation")?;
        anyhow::Ok(())
    })?;

    let run = scenario(&["seed"], Some(&up.dir))?;
    let (stdout, stderr) = (text(&run.stdout), text(&run.stderr));
    assert!(!run.status.success(), "the scenario passed:\n{stdout}");
    assert!(stdout.contains("step 2:"), "{stdout}");
    assert!(!stdout.contains("step 3:"), "{stdout}");
    assert!(
        stderr.contains("scenario seed failed at step 2 (Aino Virtanen sends"),
        "{stderr}"
    );
    assert!(
        stderr.contains("401") && stderr.contains("pt-official"),
        "{stderr}"
    );
    up.stop()
}

#[test]
fn scenarios_not_written_yet_and_unknown_ones_are_refused() -> Result<()> {
    let list = scenario(&["--list"], None)?;
    assert!(list.status.success());
    let listed = text(&list.stdout);
    for name in ["seed", "registration", "revocation"] {
        assert!(listed.contains(name), "{listed}");
    }
    for (name, says) in [
        ("registration", "does not exist yet"),
        ("revocation", "does not exist yet"),
        ("fly-to-the-moon", "there is no scenario"),
    ] {
        let run = scenario(&[name], None)?;
        assert!(!run.status.success(), "{name} passed");
        let stderr = text(&run.stderr);
        assert!(stderr.contains(says), "{name}: {stderr}");
    }
    let missing = scenario(&["seed"], Some(Path::new("/nonexistent/federation")))?;
    assert!(!missing.status.success());
    assert!(text(&missing.stderr).contains("imi-testnet up --dir"));
    Ok(())
}
