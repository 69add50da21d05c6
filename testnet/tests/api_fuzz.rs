//! The JSON API against its own OpenAPI document, on a running node: the
//! document validates against the OpenAPI 3.1 schema and every schema in it
//! has an example; and requests generated from it by schemathesis (valid and
//! invalid bodies, parameters, headers and tokens) never get a 5xx, every
//! refusal is `application/problem+json` with `type`, `title`, `status` and
//! `detail`, and a refused request changes nothing the token's user can see
//! (`api_fuzz/hooks.py`).
//!
//! The Python tools come from a virtual environment: `IMI_API_PYTHON` (its
//! `python`), else `~/.cache/imi-venv/bin/python`, which `.ci/run` creates
//! with pinned versions. Without it the tests fail and say so.
//!
//! The fuzzer acts as the Finnish official with one token. It must not
//! revoke that token nor change the password behind it, so revoking a token
//! and changing the password are fuzzed in a second run, with a token of
//! another user (the node's coordinator) whose state that run fingerprints.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail, ensure};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use imi_node::cases::CaseApp;
use imi_node::node::Node;
use imi_node::ui::{NodeUi, UiOptions, UiServer, UiSetup};
use imi_protocol::{Country, Language, Timestamp};
use imi_testnet::ui::{demo_finland_and_portugal, serve_ui};
use imi_testnet::{Testnet, wait_until};
use imi_web::{ApiLimits, NodeInterface, WebSettings};
use serde_json::{Value, json};

/// The schemathesis checks, built into the test binary.
const HOOKS: &str = include_str!("api_fuzz/hooks.py");

/// Test cases per operation and phase: enough to find what the fuzzer
/// found here, few enough for CI (about two minutes on two cores).
/// `IMI_FUZZ_EXAMPLES` sets another number, `IMI_FUZZ_CHECKS` adds
/// schemathesis checks (`all`, `response_schema_conformance`) for a
/// longer look.
const EXAMPLES: u32 = 100;

/// The checks every run makes: no 5xx, refusals as problems that change
/// nothing, and no operation served without a valid token.
const CHECKS: &str =
    "not_a_server_error,refusals_are_problems,refusals_change_nothing,ignored_auth";

/// The Python of the virtual environment with schemathesis and
/// openapi-spec-validator.
fn python() -> Result<PathBuf> {
    let python = match std::env::var_os("IMI_API_PYTHON") {
        Some(python) => PathBuf::from(python),
        None => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?)
            .join(".cache/imi-venv/bin/python"),
    };
    let usable = std::process::Command::new(&python)
        .args(["-c", "import schemathesis, openapi_spec_validator"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !usable {
        bail!(
            "{} cannot import schemathesis and openapi_spec_validator: run .ci/run, which \
             creates the virtual environment $HOME/.cache/imi-venv with the pinned versions, \
             or set IMI_API_PYTHON to the python of one that has them",
            python.display()
        );
    }
    Ok(python)
}

type Http = Client<HttpConnector, Full<Bytes>>;

/// `method url` with a bearer token and a JSON body; status and JSON.
async fn call(
    http: &Http,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Result<(StatusCode, Value)> {
    let mut request = Request::builder().method(method).uri(url);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = match body {
        Some(body) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Full::new(Bytes::from(serde_json::to_vec(body)?))
        }
        None => Full::new(Bytes::new()),
    };
    let response = http.request(request.body(body)?).await?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{method} {url}: {}", String::from_utf8_lossy(&bytes)))?
    };
    Ok((status, value))
}

async fn token(ui: &NodeUi, node: &Node<CaseApp>, login: &str) -> Result<String> {
    let user = node.admin().user_by_login(login)?.user.id;
    let expires = Timestamp::from_system_time(SystemTime::now()).plus_days(30);
    Ok(ui.create_api_token(user, "fuzzer", expires).await?.secret)
}

/// Every schema of the document that has no example, by name.
fn schemas_without_example(document: &Value) -> Vec<String> {
    document["components"]["schemas"]
        .as_object()
        .map(|schemas| {
            schemas
                .iter()
                .filter(|(_, s)| s.get("example").is_none() && s.get("examples").is_none())
                .map(|(name, _)| name.clone())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_validates_against_openapi_3_1_with_an_example_for_every_schema()
-> Result<()> {
    common::logs();
    let python = python()?;
    let net = Testnet::builder().countries([Country::Fi]).start().await?;
    let web = serve_ui(net.node(Country::Fi)).await?;
    let http: Http = Client::builder(TokioExecutor::new()).build_http();
    let (status, document) = call(
        &http,
        "GET",
        &format!("{}api/openapi.json", web.url()),
        None,
        None,
    )
    .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(document["openapi"], "3.1.0");
    let missing = schemas_without_example(&document);
    assert!(
        missing.is_empty(),
        "schemas without an example: {missing:?}"
    );

    let dir = tempfile::tempdir()?;
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&document)?)?;
    let mut command = std::process::Command::new(&python);
    command
        .args(["-m", "openapi_spec_validator", "--schema", "3.1"])
        .args(["--validation-errors", "all"])
        .arg(&file);
    let ran = common::run(command, dir.path(), Duration::from_secs(120)).await?;
    let said = format!("{}{}", ran.stdout, ran.stderr);
    assert!(ran.status.success(), "openapi-spec-validator:\n{said}");
    assert!(said.contains("OK"), "openapi-spec-validator:\n{said}");
    Ok(())
}

/// One schemathesis run against `node` (`http://127.0.0.1:PORT`), as the
/// user of `token`, on the operations `filter` selects.
async fn fuzz(
    python: &Path,
    node: &str,
    token: &str,
    case: Option<&str>,
    filter: &[&str],
) -> Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("hooks.py"), HOOKS)?;
    let report = dir.path().join("report.json");
    let examples = std::env::var("IMI_FUZZ_EXAMPLES").unwrap_or_else(|_| EXAMPLES.to_string());
    let checks = match std::env::var("IMI_FUZZ_CHECKS") {
        Ok(more) if !more.trim().is_empty() => format!("{CHECKS},{more}"),
        _ => CHECKS.to_owned(),
    };
    let mut command = std::process::Command::new(python);
    command
        .args(["-m", "schemathesis.cli", "run"])
        .arg(format!("{node}/api/openapi.json"))
        .arg("--url")
        .arg(format!("{node}/api/v1"))
        .arg("--header")
        .arg(format!("Authorization: Bearer {token}"))
        .args([
            "--checks",
            &checks,
            "--phases",
            "examples,coverage,fuzzing",
            "--workers",
            "1",
            "--max-examples",
            &examples,
            "--generation-database",
            "none",
            "--request-timeout",
            "30",
            "--no-color",
            "--continue-on-failure",
            "--suppress-health-check",
            "all",
        ])
        .args(filter)
        .current_dir(dir.path())
        .env("PYTHONPATH", dir.path())
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("IMI_FUZZ_NODE", node)
        .env("IMI_FUZZ_TOKEN", token)
        .env("IMI_FUZZ_CASE", case.unwrap_or(""))
        .env("IMI_FUZZ_REPORT", &report);
    let started = Instant::now();
    let ran = common::run(command, dir.path(), Duration::from_secs(420)).await?;
    let said = format!("{}{}", ran.stdout, ran.stderr);
    ensure!(
        ran.status.success(),
        "schemathesis found responses that break the rules ({}):\n{said}",
        ran.status
    );
    // The checks of hooks.py ran: they judged answers of every kind and
    // compared the user's state around refusals.
    let report: Value = serde_json::from_slice(
        &std::fs::read(&report).context("hooks.py left no report: were its checks loaded?")?,
    )?;
    let statuses = report["statuses"].as_object().context("statuses")?;
    let count = |class: char| {
        statuses
            .iter()
            .filter(|(s, _)| s.starts_with(class))
            .map(|(_, n)| n.as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    ensure!(
        (case.is_none() || count('2') > 0)
            && count('4') > 0
            && report["refusals_compared"].as_u64() > Some(0),
        "the checks saw too little: {report}"
    );
    let summary: Vec<&str> = said.lines().rev().take(30).collect();
    eprintln!(
        "schemathesis {filter:?} passed in {:?}, answers judged by status: {}\n{}",
        started.elapsed(),
        report["statuses"],
        summary.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_generated_from_the_document_get_no_5xx_and_refusals_are_problems_that_change_nothing()
-> Result<()> {
    common::logs();
    let python = python()?;
    let net = demo_finland_and_portugal().await?;
    let (fi, pt) = (net.node(Country::Fi), net.node(Country::Pt));
    // The fuzzer and its fingerprints send far more requests than a user
    // may: the rate limit is lifted, so that every request is judged on
    // what it says (the limit has its own tests).
    let web = UiServer::start(
        fi,
        UiSetup {
            listen: "127.0.0.1:0".parse()?,
            options: UiOptions {
                training: true,
                default_language: Language::Fi,
            },
            settings: WebSettings {
                api_limits: ApiLimits {
                    per_second: 1_000_000,
                    burst: 1_000_000,
                },
                ..WebSettings::default()
            },
        },
    )
    .await?;
    let node = web.url().trim_end_matches('/').to_owned();
    let fi_ui = NodeUi::new(
        fi,
        UiOptions {
            training: true,
            default_language: Language::Fi,
        },
    )
    .await?;
    let finn = token(&fi_ui, fi, "fi-official").await?;
    let coordinator = token(&fi_ui, fi, "coordinator").await?;

    // A real request of the Finn's, sent to the Ordem, for the fuzzer to
    // aim steps and reads at (hooks.py puts its id in half the paths).
    let http: Http = Client::builder(TokioExecutor::new()).build_http();
    let ordem = pt
        .admin()
        .user_by_login("pt-official")?
        .user
        .authority
        .to_string();
    wait_until(
        "the Ordem in the Finnish directory",
        common::WAIT,
        || async {
            call(
                &http,
                "GET",
                &format!("{node}/api/v1/authorities/PT/{ordem}"),
                Some(&finn),
                None,
            )
            .await
            .is_ok_and(|(status, _)| status == StatusCode::OK)
        },
    )
    .await?;
    let reply_by = Timestamp::from_system_time(SystemTime::now())
        .date()
        .checked_add_days(14)
        .context("a date")?
        .to_string();
    let (status, case) = call(
        &http,
        "POST",
        &format!("{node}/api/v1/cases"),
        Some(&finn),
        Some(&json!({
            "to": {"country": "PT", "authority": ordem},
            "question_set": "pq-general",
            "details": {
                "profession-host": "Lääkäri",
                "regulated-in-home": "yes",
                "full-name": "Ana Sofia Martins",
                "date-of-birth": "1984-05-17"
            },
            "questions": ["qualification-title"],
            "reply_by": reply_by,
            "send": true,
            "attachments": [{"name": "a.txt", "media_type": "text/plain", "content_base64": "YQ=="}]
        })),
    )
    .await?;
    ensure!(status == StatusCode::CREATED, "{status} {case}");
    let case = case["id"].as_str().context("case id")?.to_owned();

    fuzz(
        &python,
        &node,
        &finn,
        Some(&case),
        &[
            "--exclude-path",
            "/me/password",
            "--exclude-path",
            "/me/tokens/{id}",
        ],
    )
    .await?;
    fuzz(
        &python,
        &node,
        &coordinator,
        None,
        &[
            "--include-path",
            "/me/password",
            "--include-path",
            "/me/tokens/{id}",
        ],
    )
    .await?;

    // The fuzzer's tokens still work: it revoked neither.
    for token in [&finn, &coordinator] {
        let (status, _) = call(
            &http,
            "GET",
            &format!("{node}/api/v1/me"),
            Some(token),
            None,
        )
        .await?;
        assert_eq!(status, StatusCode::OK);
    }
    Ok(())
}
