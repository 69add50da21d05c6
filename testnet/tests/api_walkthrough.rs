//! docs/API.md's `curl` walk-through, run as written: a real Finnish and a
//! real Portuguese node serve their web UIs, the Finnish and the Portuguese
//! official each get a token, and every fenced `sh` block of the page runs
//! in order with `bash -euo pipefail` and the variables the page names
//! (`IMI_FI`, `IMI_PT`, `TOKEN_FI`, `TOKEN_PT`). Each block must exit 0;
//! at the end the request is closed with the rating the page gives, on
//! both nodes, and the downloaded file is the one the Ordem attached.
//!
//! The blocks run one `bash` each, as a reader runs them one after the
//! other in one shell: the shell variables and functions a block leaves
//! are handed to the next (see [`WRAPPER`]). The page is built into the
//! test with `include_str!`, so a test binary always runs the page it was
//! built with.

mod common;

use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail, ensure};
use imi_node::cases::CaseApp;
use imi_node::node::Node;
use imi_node::ui::{NodeUi, UiOptions};
use imi_protocol::{CaseId, CaseState, Country, Language, Timestamp};
use imi_testnet::ui::{demo_finland_and_portugal, serve_ui};
use imi_testnet::wait_until;
use imi_web::{EntryKind, NodeInterface, SearchQuery};

/// The page the walk-through is in.
const API_MD: &str = include_str!("../../docs/API.md");

/// What one block may take, its polls included.
const BLOCK_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs a block as the next command of one shell: restores what the
/// blocks before it left (`$STATE`), runs it, and keeps every variable and
/// function it set for the next one. `$1` is the block.
const WRAPPER: &str = r#"
__pristine=" $(compgen -v | tr '\n' ' ') "
if [ -f "$IMI_WALKTHROUGH_STATE" ]; then . "$IMI_WALKTHROUGH_STATE"; fi
eval "$1"
{
  declare -f
  for __name in $(compgen -v); do
    case "$__name" in __*|_|BASH*|PIPESTATUS|FUNCNAME|COMP_*|SECONDS|RANDOM|LINENO|SRANDOM|EPOCH*) continue ;; esac
    case "$__pristine" in *" $__name "*) continue ;; esac
    declare -p "$__name"
  done
} > "$IMI_WALKTHROUGH_STATE.new"
mv "$IMI_WALKTHROUGH_STATE.new" "$IMI_WALKTHROUGH_STATE"
"#;

/// The fenced ```` ```sh ```` blocks of a Markdown page, in order.
fn shell_blocks(page: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in page.lines() {
        match current.as_mut() {
            None if line.trim_end() == "```sh" => current = Some(String::new()),
            None => {}
            Some(_) if line.trim_end() == "```" => blocks.extend(current.take()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    assert!(current.is_none(), "docs/API.md has an unclosed sh block");
    blocks
}

/// What the page's blocks run with.
struct Walkthrough {
    env: Vec<(&'static str, String)>,
    dir: tempfile::TempDir,
}

impl Walkthrough {
    fn state(&self) -> std::path::PathBuf {
        self.dir.path().join(".walkthrough-state")
    }

    /// Runs block `n`; what it printed.
    async fn run(&self, n: usize, block: &str) -> Result<String> {
        let mut command = std::process::Command::new("bash");
        command
            .args(["-euo", "pipefail", "-c", WRAPPER, "walkthrough"])
            .arg(block)
            .current_dir(self.dir.path())
            .env("IMI_WALKTHROUGH_STATE", self.state())
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())));
        let ran = common::run(command, self.dir.path(), BLOCK_TIMEOUT)
            .await
            .with_context(|| format!("block {n} of docs/API.md:\n{block}"))?;
        if !ran.status.success() {
            bail!(
                "block {n} of docs/API.md failed ({}):\n{block}\n--- stdout\n{}\n--- stderr\n{}",
                ran.status,
                ran.stdout,
                ran.stderr
            );
        }
        Ok(format!("{}{}", ran.stdout, ran.stderr))
    }

    /// A variable the blocks left.
    async fn variable(&self, name: &str) -> Result<String> {
        let mut command = std::process::Command::new("bash");
        command
            .args(["-c", &format!(". \"$0\" && printf %s \"${name}\"")])
            .arg(self.state());
        let ran = common::run(command, self.dir.path(), Duration::from_secs(10)).await?;
        ensure!(ran.status.success(), "reading ${name}: {}", ran.stderr);
        Ok(ran.stdout)
    }

    fn file(&self, name: &str) -> Result<Vec<u8>> {
        std::fs::read(self.dir.path().join(name))
            .with_context(|| format!("the walk-through's {name}"))
    }
}

async fn token(ui: &NodeUi, node: &Node<CaseApp>, login: &str) -> Result<String> {
    let user = node.admin().user_by_login(login)?.user.id;
    let expires = Timestamp::from_system_time(SystemTime::now()).plus_days(30);
    Ok(ui
        .create_api_token(user, "walk-through", expires)
        .await?
        .secret)
}

async fn ui(node: &Node<CaseApp>) -> Result<NodeUi> {
    Ok(NodeUi::new(
        node,
        UiOptions {
            training: true,
            default_language: Language::En,
        },
    )
    .await?)
}

#[test]
fn the_page_has_the_blocks_of_a_whole_request() {
    let blocks = shell_blocks(API_MD);
    let all = blocks.concat();
    for call in [
        "/api/v1/me",
        "/api/v1/search",
        "/api/v1/catalogue/question-sets/pq-general",
        "/api/v1/cases\"",
        "Idempotency-Key",
        "If-Match",
        "\"action\": \"accept\"",
        "action: \"answer\"",
        "\"action\": \"close\"",
        "-o extrato-recebido.txt",
    ] {
        assert!(all.contains(call), "no sh block of docs/API.md has {call}");
    }
    for block in &blocks {
        assert!(
            !block.contains("sleep") || (block.contains("until ") && block.contains("deadline")),
            "a block that waits polls with a deadline, never sleeps a fixed time:\n{block}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_curl_walkthrough_of_docs_api_md_runs_as_written() -> Result<()> {
    common::logs();
    for tool in ["curl", "jq", "base64", "sha256sum"] {
        let found = std::process::Command::new("bash")
            .args(["-c", &format!("command -v {tool}")])
            .output()?
            .status
            .success();
        ensure!(
            found,
            "{tool} is missing: .ci/run installs what docs/API.md uses"
        );
    }
    let net = demo_finland_and_portugal().await?;
    let (fi, pt) = (net.node(Country::Fi), net.node(Country::Pt));
    let (fi_web, pt_web) = (serve_ui(fi).await?, serve_ui(pt).await?);
    let (fi_ui, pt_ui) = (ui(fi).await?, ui(pt).await?);
    let ordem = pt.admin().user_by_login("pt-official")?.user.authority;

    // What the page takes as given: the Finnish node knows the Portuguese
    // authorities (the directory has replicated).
    wait_until("the Ordem in the Finnish search", common::WAIT, || async {
        fi_ui
            .search(SearchQuery {
                text: "lääkäri Portugali".into(),
                language: Language::Fi,
                countries: vec![],
                areas: vec![],
                procedures: vec![],
                professions: vec![],
                kind: Some(EntryKind::Authority),
                offset: 0,
                limit: 20,
            })
            .await
            .is_ok_and(|page| page.hits.iter().any(|h| h.id == ordem.to_string()))
    })
    .await?;

    let walkthrough = Walkthrough {
        env: vec![
            ("IMI_FI", fi_web.url().trim_end_matches('/').to_owned()),
            ("IMI_PT", pt_web.url().trim_end_matches('/').to_owned()),
            ("TOKEN_FI", token(&fi_ui, fi, "fi-official").await?),
            ("TOKEN_PT", token(&pt_ui, pt, "pt-official").await?),
        ],
        dir: tempfile::tempdir()?,
    };
    let blocks = shell_blocks(API_MD);
    ensure!(
        blocks.len() >= 10,
        "docs/API.md has {} sh blocks",
        blocks.len()
    );
    for (n, block) in blocks.iter().enumerate() {
        let started = std::time::Instant::now();
        let output = walkthrough.run(n + 1, block).await?;
        eprintln!(
            "block {} ok in {:?}\n{}",
            n + 1,
            started.elapsed(),
            output.trim_end()
        );
    }

    // What the page says came of it: the request closed with its rating,
    // on both nodes, and the Ordem's extract downloaded whole in Finland.
    let case: CaseId = walkthrough
        .variable("CASE")
        .await?
        .parse()
        .context("$CASE is a case id")?;
    assert_eq!(walkthrough.variable("ORDEM").await?, ordem.to_string());
    let finn = fi.admin().user_by_login("fi-official")?.user.id;
    let maria = pt.admin().user_by_login("pt-official")?.user.id;
    for (ui, user, country) in [(&fi_ui, finn, "Finland"), (&pt_ui, maria, "Portugal")] {
        wait_until(
            &format!("the request closed in {country}"),
            common::WAIT,
            || async {
                ui.case(user, case).await.is_ok_and(|view| {
                    let CaseState::Request(request) = &view.state else {
                        return false;
                    };
                    view.state.status_key() == "closed"
                        && request
                            .rating()
                            .is_some_and(|r| (r.timeliness, r.effort) == (4, 5))
                })
            },
        )
        .await?;
    }
    assert_eq!(
        walkthrough.file("extrato-recebido.txt")?,
        walkthrough.file("extrato.txt")?
    );
    assert_eq!(
        walkthrough.file("diploma.pdf")?,
        walkthrough.file("tutkintotodistus.pdf")?
    );
    Ok(())
}
