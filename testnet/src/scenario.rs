//! Scenarios replayed through the JSON API alone, against a running
//! federation (`imi-testnet up --dir D` and its `D/api.json`) or one
//! started for the run.
//!
//! Each scenario is a list of numbered steps. A step acts as one official
//! with their token, then waits, polling the API of the other side until a
//! deadline, for the step to arrive there, and prints what each side sees:
//! the case's status and dates as the Finnish official reads them, in
//! Finnish, and as the Portuguese official reads them, in Portuguese (the
//! web UI's own Fluent messages, [`imi_web::Tr`]). A step that fails ends
//! the scenario with an error naming it.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use hyper::StatusCode;
use imi_protocol::{Country, Language, TaskKind, Timestamp};
use imi_web::{Locales, Tr};
use serde_json::{Value, json};

use crate::api::{Api, ApiFile, Http};

/// A scenario `imi-testnet scenario` knows of.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// Its name on the command line.
    pub name: &'static str,
    /// What it replays.
    pub about: &'static str,
    /// Whether it can be run yet.
    pub available: bool,
}

/// Every scenario, in the order `--list` shows them.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "seed",
        about: "a Finnish official asks the Portuguese Ordem dos Médicos about a doctor's qualifications: search, request with a file, allocation, acceptance, a later deadline, answer, close with a rating",
        available: true,
    },
    Scenario {
        name: "registration",
        about: "an authority registers and a national coordinator approves it (not written yet)",
        available: false,
    },
    Scenario {
        name: "revocation",
        about: "a node's certificate is revoked and the federation cuts it off (not written yet)",
        available: false,
    },
];

/// The scenario called `name`, if it can be run.
pub fn find(name: &str) -> Result<&'static Scenario> {
    match SCENARIOS.iter().find(|s| s.name == name) {
        Some(s) if s.available => Ok(s),
        Some(s) => bail!(
            "the scenario {:?} does not exist yet; `imi-testnet scenario --list` shows the scenarios",
            s.name
        ),
        None => bail!(
            "there is no scenario {name:?}; `imi-testnet scenario --list` shows the scenarios"
        ),
    }
}

/// Runs the scenario `name` against the federation `api` describes,
/// printing its steps to `out`; each step waits at most `timeout` for the
/// other side.
pub async fn run(
    name: &str,
    api: &ApiFile,
    timeout: Duration,
    out: &mut (dyn Write + Send),
) -> Result<()> {
    let scenario = find(name)?;
    match scenario.name {
        "seed" => {
            let mut progress = Progress {
                out,
                step: 0,
                title: String::new(),
            };
            let result = seed(api, timeout, &mut progress).await;
            match result {
                Ok(()) => {
                    let steps = progress.step;
                    progress.line(format_args!("scenario seed: all {steps} steps passed"))?;
                    Ok(())
                }
                Err(err) if progress.step == 0 => Err(err.context("scenario seed failed to start")),
                Err(err) => Err(err.context(format!(
                    "scenario seed failed at step {} ({})",
                    progress.step, progress.title
                ))),
            }
        }
        other => bail!("the scenario {other:?} does not exist yet"),
    }
}

/// Where a scenario stands, and where it prints.
struct Progress<'a> {
    out: &'a mut (dyn Write + Send),
    step: usize,
    title: String,
}

impl Progress<'_> {
    fn line(&mut self, line: std::fmt::Arguments<'_>) -> Result<()> {
        writeln!(self.out, "{line}").context("cannot write the scenario's output")?;
        self.out
            .flush()
            .context("cannot write the scenario's output")
    }

    fn begin(&mut self, title: String) -> Result<()> {
        self.step += 1;
        self.title = title;
        let (step, title) = (self.step, self.title.clone());
        self.line(format_args!("step {step}: {title}"))
    }
}

/// The seed scenario's people: the Finnish official, and the allocator and
/// request handler of the Ordem dos Médicos.
struct SeedPeople {
    finn: Api,
    maria: Api,
    allocator: Api,
    fi: Tr,
    pt: Tr,
    timeout: Duration,
}

/// The authority the Finnish official looks for.
const ORDEM: &str = "Ordem dos Médicos";

async fn seed(file: &ApiFile, timeout: Duration, progress: &mut Progress<'_>) -> Result<()> {
    let http = crate::api::http(4);
    let people = seed_people(file, &http, timeout)?;
    let SeedPeople {
        finn,
        maria,
        allocator,
        ..
    } = &people;
    progress.line(format_args!(
        "scenario seed: {} ({}, {}) asks {} ({}, {}); {} allocates",
        finn.name, finn.login, finn.base, maria.name, maria.login, maria.base, allocator.name
    ))?;

    // 1. The search, in Finnish.
    let query = "lääkäri Portugali";
    progress.begin(format!(
        "{} searches in Finnish for {query:?} (doctor, Portugal)",
        finn.name
    ))?;
    let path = format!("/api/v1/search?q={}&lang=fi&limit=100", encode(query));
    let deadline = Instant::now() + timeout;
    let (results, ordem) = loop {
        let results = finn.get_json(&path).await?;
        let hit = results["items"].as_array().and_then(|items| {
            items
                .iter()
                .find(|h| h["kind"] == "authority" && h["country"] == "PT" && h["name"] == ORDEM)
                .cloned()
        });
        if let Some(hit) = hit {
            break (results, hit);
        }
        ensure!(
            Instant::now() < deadline,
            "the Finnish search did not find the {ORDEM} within {timeout:?} ({} results)",
            results["total"]
        );
        tokio::time::sleep(POLL).await;
    };
    let ordem_id = ordem["id"]
        .as_str()
        .context("the authority's id")?
        .to_owned();
    progress.line(format_args!(
        "  FI sees: search results in Portugal: {}; {} ({}), {}",
        results["total"],
        ORDEM,
        ordem["city"].as_str().unwrap_or("-"),
        strings(&ordem["competences"]).join(", ")
    ))?;

    // 2. The request, with the diploma.
    progress.begin(format!(
        "{} sends {ORDEM} a professional qualifications request (pq-general) with the diploma",
        finn.name
    ))?;
    let today = Timestamp::from_system_time(std::time::SystemTime::now()).date();
    let reply_by = today.checked_add_days(14).context("a date")?.to_string();
    let diploma = b"%PDF-1.4\n% Diploma of Ana Sofia Martins\n%%EOF\n";
    let request = json!({
        "to": {"country": "PT", "authority": ordem_id},
        "question_set": "pq-general",
        "details": {
            "profession-host": "Lääkäri",
            "regulated-in-home": "yes",
            "full-name": "Ana Sofia Martins",
            "date-of-birth": "1984-05-17"
        },
        "questions": ["qualification-title", "date-of-award", "legally-established"],
        "message": "Pyydämme vahvistamaan tutkinnon.",
        "reply_by": reply_by,
        "send": true,
        "attachments": [{
            "name": "tutkintotodistus.pdf",
            "media_type": "application/pdf",
            "content_base64": base64(diploma)
        }]
    });
    let key = format!(
        "imi-testnet-seed-{}",
        Timestamp::from_system_time(std::time::SystemTime::now()).as_millis()
    );
    let created = finn
        .call(
            "POST",
            "/api/v1/cases",
            Some(&request),
            &[("idempotency-key", &key)],
        )
        .await?;
    finn.ok(&created, "the new request")?;
    let case = created.json()?;
    let id = case["id"].as_str().context("the case's id")?.to_owned();
    ensure!(
        case["status"] == "sent",
        "the request is {}",
        case["status"]
    );
    progress.line(format_args!("  case {id}"))?;
    people
        .wait(
            maria,
            &id,
            "the request to reach the Portuguese node",
            |_| true,
        )
        .await?;
    people.sees(progress, &id).await?;

    // 3. The allocation.
    progress.begin(format!(
        "{} allocates the request to {}",
        allocator.name, maria.name
    ))?;
    let incoming = allocator.get_json(&format!("/api/v1/cases/{id}")).await?;
    let handler = incoming["handlers"]
        .as_array()
        .and_then(|h| h.iter().find(|h| h["name"] == maria.name.as_str()))
        .and_then(|h| h["id"].as_str())
        .with_context(|| format!("{} is not among the request's handlers", maria.name))?
        .to_owned();
    step(
        &people,
        allocator,
        &id,
        json!({"action": "allocate", "handler": handler}),
    )
    .await?;
    people.wait_task(maria, &id).await?;
    people.sees(progress, &id).await?;

    // 4. Acceptance.
    progress.begin(format!("{} accepts the request", maria.name))?;
    step(&people, maria, &id, json!({"action": "accept"})).await?;
    people
        .wait(finn, &id, "the acceptance to reach Finland", |c| {
            c["status"] == "accepted"
        })
        .await?;
    people.sees(progress, &id).await?;

    // 5. A later deadline.
    let later = today.checked_add_days(30).context("a date")?.to_string();
    progress.begin(format!(
        "{} proposes a later reply-by date, {later}",
        maria.name
    ))?;
    step(
        &people,
        maria,
        &id,
        json!({"action": "propose-deadline", "reply_by": later, "message": "Precisamos de mais tempo para consultar o registo."}),
    )
    .await?;
    people
        .wait(finn, &id, "the proposed date to reach Finland", |c| {
            c["deadline_proposal"] == later.as_str()
        })
        .await?;
    people.sees(progress, &id).await?;

    // 6. The Finn agrees.
    progress.begin(format!("{} accepts the new reply-by date", finn.name))?;
    step(&people, finn, &id, json!({"action": "accept-deadline"})).await?;
    people
        .wait(maria, &id, "the agreed date to reach Portugal", |c| {
            c["reply_by"] == later.as_str() && c["deadline_proposal"].is_null()
        })
        .await?;
    people.sees(progress, &id).await?;

    // 7. The answer.
    progress.begin(format!("{} answers, with the register extract", maria.name))?;
    let extract = b"Register extract: Ana Sofia Martins, licensed 2009";
    step(
        &people,
        maria,
        &id,
        json!({
            "action": "answer",
            "answers": {
                "qualification-title": "Licenciatura em Medicina",
                "date-of-award": "2009-07-15",
                "legally-established": "yes"
            },
            "message": "Em anexo o extrato do registo.",
            "attachments": [{"name": "extrato.txt", "media_type": "text/plain", "content_base64": base64(extract)}]
        }),
    )
    .await?;
    let answered = people
        .wait(finn, &id, "the answer to reach Finland", |c| {
            c["status"] == "answered"
        })
        .await?;
    // The questions in Finnish, from the catalogue; the answers as given.
    let set = finn
        .get_json("/api/v1/catalogue/question-sets/pq-general?lang=fi")
        .await?;
    let labels: std::collections::BTreeMap<&str, &str> = set["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["questions"].as_array().into_iter().flatten())
        .filter_map(|q| Some((q["key"].as_str()?, q["label"].as_str()?)))
        .collect();
    for question in answered["questions"].as_array().into_iter().flatten() {
        let key = question["key"].as_str().unwrap_or("?");
        progress.line(format_args!(
            "  FI reads: {}: {}",
            labels.get(key).copied().unwrap_or(key),
            question["answer"].as_str().unwrap_or("-")
        ))?;
    }
    people.sees(progress, &id).await?;

    // 8. Closed with a rating.
    progress.begin(format!(
        "{} closes the request, rating it 4 for timeliness and 5 for effort",
        finn.name
    ))?;
    step(
        &people,
        finn,
        &id,
        json!({"action": "close", "rating": {"timeliness": 4, "effort": 5}}),
    )
    .await?;
    people
        .wait(maria, &id, "the closure to reach Portugal", |c| {
            c["status"] == "closed"
        })
        .await?;
    people.sees(progress, &id).await?;
    Ok(())
}

fn seed_people(file: &ApiFile, http: &Http, timeout: Duration) -> Result<SeedPeople> {
    let locales = Locales::builtin();
    Ok(SeedPeople {
        finn: file.client(http, Country::Fi, "fi-official")?,
        maria: file.client(http, Country::Pt, "pt-official")?,
        allocator: file.client(http, Country::Pt, "pt-allocator")?,
        fi: locales.tr(Language::Fi),
        pt: locales.tr(Language::Pt),
        timeout,
    })
}

/// How often the other side is asked whether a step has arrived: well
/// within the API's default rate limit per user.
const POLL: Duration = Duration::from_millis(100);

impl SeedPeople {
    /// Polls `api` for case `id` until `arrived` holds; the case as it
    /// then reads. A case the node does not have yet is waited for; any
    /// other refusal fails at once.
    async fn wait(
        &self,
        api: &Api,
        id: &str,
        what: &str,
        arrived: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        let deadline = Instant::now() + self.timeout;
        let path = format!("/api/v1/cases/{id}");
        let mut last = None;
        loop {
            let reply = api.get(&path).await?;
            if reply.status != StatusCode::NOT_FOUND {
                api.ok(&reply, &path)?;
                let case = reply.json()?;
                if arrived(&case) {
                    return Ok(case);
                }
                last = Some(case["status"].as_str().unwrap_or("?").to_owned());
            }
            if Instant::now() > deadline {
                bail!(
                    "timed out after {:?} waiting for {what} ({} on {}: {})",
                    self.timeout,
                    api.login,
                    api.node,
                    last.map_or_else(|| "no such case yet".to_owned(), |s| format!("status {s}"))
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Polls until the case is among `api`'s user's own tasks.
    async fn wait_task(&self, api: &Api, id: &str) -> Result<()> {
        let deadline = Instant::now() + self.timeout;
        loop {
            if task_of(api, id, "mine").await?.is_some() {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "timed out after {:?} waiting for the request in the tasks of {}",
                self.timeout,
                api.login
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Prints what each side sees of case `id` now.
    async fn sees(&self, progress: &mut Progress<'_>, id: &str) -> Result<()> {
        for (side, api, tr) in [("FI", &self.finn, &self.fi), ("PT", &self.maria, &self.pt)] {
            let case = api.get_json(&format!("/api/v1/cases/{id}")).await?;
            let task = task_of(api, id, "all").await?;
            progress.line(format_args!(
                "  {side} sees ({}): {}",
                api.login,
                describe(tr, &case, task)
            ))?;
        }
        Ok(())
    }
}

/// The case as a line of the reader's language: status, dates, handler,
/// rating, and the reader's task.
fn describe(tr: &Tr, case: &Value, task: Option<TaskKind>) -> String {
    let mut parts = vec![tr.status(case["status"].as_str().unwrap_or("?"))];
    if let Some(date) = case["reply_by"].as_str() {
        parts.push(format!("{} {date}", tr.get("case-reply-by")));
    }
    if let Some(date) = case["deadline_proposal"].as_str() {
        parts.push(format!("{} {date}", tr.get("case-proposed-date")));
    }
    if let Some(handler) = case["handler"].as_str() {
        parts.push(format!("{}: {handler}", tr.get("case-handler")));
    }
    let rating = &case["rating"];
    if let (Some(t), Some(e)) = (rating["timeliness"].as_u64(), rating["effort"].as_u64()) {
        parts.push(tr.count2(
            "case-rating",
            "timeliness",
            t as usize,
            "effort",
            e as usize,
        ));
    }
    if let Some(task) = task {
        parts.push(format!("→ {}", tr.task(task)));
    }
    parts.join(" · ")
}

/// The task of case `id` in `api`'s user's My tasks (`all` or `mine`).
async fn task_of(api: &Api, id: &str, filter: &str) -> Result<Option<TaskKind>> {
    let tasks = api
        .get_json(&format!(
            "/api/v1/tasks?filter={filter}&order=updated&limit=100"
        ))
        .await?;
    let Some(task) = tasks["items"]
        .as_array()
        .and_then(|items| items.iter().find(|t| t["case"] == id))
    else {
        return Ok(None);
    };
    Ok(Some(
        serde_json::from_value(task["task"].clone()).context("a task kind")?,
    ))
}

/// Takes `body` as a step of case `id` on the version just read, with an
/// idempotency key, then waits for the other side's signed receipt of it;
/// the case as it then reads. When the case changed between the read and the step
/// (`412`: a receipt of an earlier step arrived), it reads the case again
/// and takes the step anew if it is still allowed.
async fn step(people: &SeedPeople, api: &Api, id: &str, body: Value) -> Result<Value> {
    let path = format!("/api/v1/cases/{id}");
    let steps = format!("{path}/steps");
    let action = body["action"].as_str().unwrap_or("step");
    let mut attempts = 0;
    loop {
        let case = api.get_json(&path).await?;
        ensure!(
            strings(&case["allowed"]).iter().any(|a| a == action),
            "{} may not take the step {action:?} now (status {}, allowed: {})",
            api.login,
            case["status"],
            strings(&case["allowed"]).join(", ")
        );
        let version = case["version"].as_str().context("the case's version")?;
        let key = format!("imi-testnet-seed-{id}-{action}-{version}");
        let reply = api
            .call(
                "POST",
                &steps,
                Some(&body),
                &[
                    ("if-match", &format!("\"{version}\"")),
                    ("idempotency-key", &key),
                ],
            )
            .await?;
        attempts += 1;
        if reply.status == StatusCode::PRECONDITION_FAILED && attempts < 5 {
            continue;
        }
        api.ok(&reply, &format!("the step {action:?}"))?;
        break;
    }
    let case = people
        .wait(
            api,
            id,
            "the other side's signed receipt of the step",
            delivered,
        )
        .await?;
    let rejected: Vec<String> = deliveries(&case)
        .filter(|d| d["state"] == "rejected")
        .map(|d| format!("{}: {}", d["node"], d["reason"]))
        .collect();
    ensure!(
        rejected.is_empty(),
        "the other side rejected the step ({})",
        rejected.join("; ")
    );
    Ok(case)
}

fn deliveries(case: &Value) -> impl Iterator<Item = &Value> {
    case["history"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["deliveries"].as_array().into_iter().flatten())
}

/// Whether every message the reader's node sent for the case has its
/// signed receipt (none queued); a rejected one is an error.
fn delivered(case: &Value) -> bool {
    deliveries(case).all(|d| d["state"] == "delivered" || d["state"] == "rejected")
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Percent-encodes a query parameter's value.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A Finnish and a Portuguese node started in this process for one
/// scenario, with their web UIs and a token of each demo account.
pub struct LocalFederation {
    net: crate::Testnet,
    uis: Vec<imi_node::ui::UiServer>,
    /// The federation's API.
    pub api: ApiFile,
}

impl LocalFederation {
    /// Starts it.
    pub async fn start() -> Result<LocalFederation> {
        let net = crate::ui::demo_finland_and_portugal().await?;
        let mut uis = Vec::new();
        let mut nodes = Vec::new();
        for country in [Country::Fi, Country::Pt] {
            let node = net.node(country);
            let ui = crate::ui::serve_ui(node).await?;
            nodes.push(
                crate::api::demo_tokens(node, &ui.url(), &crate::ui::demo_logins(country)).await?,
            );
            uis.push(ui);
        }
        Ok(LocalFederation {
            net,
            uis,
            api: ApiFile { nodes },
        })
    }

    /// Stops the web UIs and the nodes.
    pub async fn stop(mut self) {
        for ui in self.uis.drain(..) {
            ui.stop().await;
        }
        for node in self.net.nodes.drain(..) {
            node.shutdown().await;
        }
    }
}
