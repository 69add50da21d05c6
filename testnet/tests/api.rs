//! The JSON API over real HTTP, against a real Finnish and a real
//! Portuguese node serving their web UIs: the seed scenario carried through
//! `/api/v1` alone by the officials' tokens (search, request with a file,
//! allocation, acceptance, a deadline proposal, the answer, the close with
//! a rating), a POST retried after the connection was cut taking its step
//! once, a step on a stale version refused with 412, and bad input of every
//! kind refused as problem+json with nothing changed. Every operation of
//! the OpenAPI document is called here.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, ensure};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Request, StatusCode, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use imi_node::ui::{NodeUi, UiOptions};
use imi_protocol::{Country, Language, Timestamp};
use imi_testnet::ui::{demo_finland_and_portugal, serve_ui};
use imi_testnet::wait_until;
use imi_web::NodeInterface;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

type Http = Client<HttpConnector, Full<Bytes>>;
type Exercised = Arc<Mutex<BTreeSet<(String, String)>>>;

/// A response as the client got it.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body)
            .with_context(|| format!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// A problem of `kind` with `status`, naming `field` when given.
    fn problem(&self, status: StatusCode, kind: &str, field: Option<&str>) -> Result<Value> {
        ensure!(
            self.status == status,
            "expected {status}, got {} {}",
            self.status,
            String::from_utf8_lossy(&self.body)
        );
        ensure!(
            self.header("content-type").as_deref() == Some("application/problem+json"),
            "not problem+json: {:?}",
            self.header("content-type")
        );
        let problem = self.json()?;
        ensure!(
            problem["type"] == format!("/api/docs#problem-{kind}"),
            "{problem}"
        );
        ensure!(problem["status"] == status.as_u16(), "{problem}");
        ensure!(
            problem["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{problem}"
        );
        if let Some(field) = field {
            ensure!(problem["field"] == field, "{problem}");
        }
        Ok(problem)
    }
}

/// One user's client of one node's API.
#[derive(Clone)]
struct Api {
    http: Http,
    base: String,
    token: String,
    exercised: Exercised,
}

impl Api {
    /// Calls `method path` (the operation `template` of the document).
    async fn call(
        &self,
        method: &str,
        template: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Reply> {
        self.exercised
            .lock()
            .expect("exercised")
            .insert((method.to_lowercase(), template.to_owned()));
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, path));
        if !self.token.is_empty() {
            request = request.header(header::AUTHORIZATION, format!("Bearer {}", self.token));
        }
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
        let response = self.http.request(request.body(body)?).await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    async fn get(&self, template: &str, path: &str) -> Result<Reply> {
        self.call("GET", template, path, None, &[]).await
    }

    /// A case as this user reads it now.
    async fn case(&self, id: &str) -> Result<Value> {
        let reply = self
            .get("/api/v1/cases/{id}", &format!("/api/v1/cases/{id}"))
            .await?;
        ensure!(
            reply.status == StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        let case = reply.json()?;
        ensure!(
            reply.header("etag") == Some(format!("\"{}\"", case["version"].as_str().unwrap_or(""))),
            "the ETag is the case's version"
        );
        Ok(case)
    }

    /// Takes a step on the version just read.
    async fn step(&self, id: &str, step: Value) -> Result<Value> {
        let version = self.case(id).await?["version"]
            .as_str()
            .context("version")?
            .to_owned();
        let reply = self
            .call(
                "POST",
                "/api/v1/cases/{id}/steps",
                &format!("/api/v1/cases/{id}/steps"),
                Some(&step),
                &[("if-match", &format!("\"{version}\""))],
            )
            .await?;
        ensure!(
            reply.status == StatusCode::OK,
            "{step}: {} {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        );
        reply.json()
    }
}

async fn ui(node: &imi_node::node::Node<imi_node::cases::CaseApp>) -> Result<NodeUi> {
    Ok(NodeUi::new(
        node,
        UiOptions {
            training: true,
            default_language: Language::En,
        },
    )
    .await?)
}

/// A token of `login`, created as the user would in My profile.
async fn token(
    ui: &NodeUi,
    node: &imi_node::node::Node<imi_node::cases::CaseApp>,
    login: &str,
) -> Result<String> {
    let user = node.admin().user_by_login(login)?.user.id;
    let expires = Timestamp::from_system_time(std::time::SystemTime::now()).plus_days(30);
    Ok(ui
        .create_api_token(user, "case system", expires)
        .await?
        .secret)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_national_system_carries_the_seed_request_through_the_api_alone() -> Result<()> {
    common::logs();
    let net = demo_finland_and_portugal().await?;
    let (fi, pt) = (net.node(Country::Fi), net.node(Country::Pt));
    let (fi_web, pt_web) = (serve_ui(fi).await?, serve_ui(pt).await?);
    let (fi_ui, pt_ui) = (ui(fi).await?, ui(pt).await?);
    let http: Http = Client::builder(TokioExecutor::new()).build_http();
    let exercised: Exercised = Arc::default();
    let client = |web: &imi_node::ui::UiServer, token: String| Api {
        http: http.clone(),
        base: web.url().trim_end_matches('/').to_owned(),
        token,
        exercised: Arc::clone(&exercised),
    };
    let finn = client(&fi_web, token(&fi_ui, fi, "fi-official").await?);
    let maria = client(&pt_web, token(&pt_ui, pt, "pt-official").await?);
    let allocator = client(&pt_web, token(&pt_ui, pt, "pt-allocator").await?);
    let nurse = client(&pt_web, token(&pt_ui, pt, "pt-nurses").await?);
    let nobody = client(&fi_web, String::new());

    // Who the token acts for.
    let me = finn.get("/api/v1/me", "/api/v1/me").await?.json()?;
    assert_eq!(me["login"], "fi-official");
    assert_eq!(me["authority"]["country"], "FI");
    nobody.get("/api/v1/me", "/api/v1/me").await?.problem(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        None,
    )?;
    let forged = Api {
        token: "imi_not-a-token-anyone-was-given".into(),
        ..finn.clone()
    };
    let refused = forged.get("/api/v1/me", "/api/v1/me").await?;
    refused.problem(StatusCode::UNAUTHORIZED, "unauthorized", None)?;
    assert!(refused.header("www-authenticate").is_some());

    // The Finn finds the Ordem through the search, in Finnish.
    let ordem = pt
        .admin()
        .user_by_login("pt-official")?
        .user
        .authority
        .to_string();
    wait_until("the Ordem in the Finnish search", common::WAIT, || async {
        finn.get(
            "/api/v1/search",
            "/api/v1/search?q=Ordem%20dos%20M%C3%A9dicos&country=PT&lang=fi",
        )
        .await
        .ok()
        .and_then(|r| r.json().ok())
        .is_some_and(|r| {
            r["items"]
                .as_array()
                .is_some_and(|i| i.iter().any(|h| h["id"] == ordem.as_str()))
        })
    })
    .await?;
    let found = finn
        .get(
            "/api/v1/search",
            "/api/v1/search?q=Ordem&country=PT&limit=1",
        )
        .await?
        .json()?;
    assert_eq!(found["items"].as_array().map(Vec::len), Some(1));
    if found["total"].as_u64() > Some(1) {
        let cursor = found["next_cursor"].as_str().context("a next page")?;
        let next = finn
            .get(
                "/api/v1/search",
                &format!("/api/v1/search?q=Ordem&country=PT&limit=1&cursor={cursor}"),
            )
            .await?
            .json()?;
        assert_ne!(next["items"][0]["id"], found["items"][0]["id"]);
    }
    let authority = finn
        .get(
            "/api/v1/authorities/{country}/{id}",
            &format!("/api/v1/authorities/PT/{ordem}"),
        )
        .await?
        .json()?;
    assert_eq!(authority["names"]["pt"], "Ordem dos Médicos");
    finn.get(
        "/api/v1/authorities/{country}/{id}",
        "/api/v1/authorities/PT/no-such-authority",
    )
    .await?
    .problem(StatusCode::NOT_FOUND, "not-found", None)?;
    let registers = finn
        .get("/api/v1/registers", "/api/v1/registers?country=PT")
        .await?;
    assert_eq!(registers.status, StatusCode::OK);
    assert!(registers.json()?.is_array());
    finn.get("/api/v1/registers", "/api/v1/registers?country=XX")
        .await?
        .problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid", Some("country"))?;
    let helpdesks = finn.get("/api/v1/helpdesks", "/api/v1/helpdesks").await?;
    assert_eq!(helpdesks.status, StatusCode::OK);
    assert!(helpdesks.json()?.is_array());
    let catalogue = maria
        .get("/api/v1/catalogue", "/api/v1/catalogue?lang=pt")
        .await?
        .json()?;
    assert_eq!(catalogue["language"], "pt");
    let pq = catalogue["areas"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["key"] == "professional-qualifications"))
        .context("professional qualifications in the catalogue")?;
    assert_eq!(pq["label"], "Qualificações profissionais");
    let set = finn
        .get(
            "/api/v1/catalogue/question-sets/{key}",
            "/api/v1/catalogue/question-sets/pq-general?lang=fi",
        )
        .await?
        .json()?;
    assert_eq!(set["key"], "pq-general");
    assert!(
        set["groups"]
            .as_array()
            .is_some_and(|g| g.iter().any(|g| g["given_by_requester"] == true))
    );

    // The request, with the diploma, sent with an idempotency key over a
    // connection the client cuts before the answer: the retry gets the
    // first answer, and one request exists.
    let diploma = b"%PDF-1.4\n% Diploma of Ana Sofia Martins\n%%EOF\n";
    let reply_by = imi_protocol::Timestamp::from_system_time(std::time::SystemTime::now())
        .date()
        .checked_add_days(14)
        .context("a date")?
        .to_string();
    let request = json!({
        "to": {"country": "PT", "authority": ordem},
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
            "content_base64": base64_of(diploma)
        }]
    });
    let body = serde_json::to_vec(&request)?;
    let address = fi_web.address();
    let mut cut = tokio::net::TcpStream::connect(address).await?;
    cut.write_all(
        format!(
            "POST /api/v1/cases HTTP/1.1\r\nhost: {address}\r\nauthorization: Bearer {}\r\n\
             content-type: application/json\r\nidempotency-key: seed-request-1\r\n\
             content-length: {}\r\n\r\n",
            finn.token,
            body.len()
        )
        .as_bytes(),
    )
    .await?;
    cut.write_all(&body).await?;
    cut.flush().await?;
    // The node takes the request; the client never reads the answer.
    let requests_from_valvira = || async {
        let tasks = maria
            .get("/api/v1/tasks", "/api/v1/tasks?order=updated&limit=100")
            .await
            .ok()
            .and_then(|r| r.json().ok())
            .unwrap_or_default();
        tasks["items"].as_array().map_or(0, |items| {
            items
                .iter()
                .filter(|t| t["counterpart"]["country"] == "FI")
                .count()
        })
    };
    wait_until(
        "the request, taken and sent, on the Portuguese node",
        common::WAIT,
        || async { requests_from_valvira().await == 1 },
    )
    .await?;
    drop(cut);
    let key = [("idempotency-key", "seed-request-1")];
    let deadline = std::time::Instant::now() + common::WAIT;
    let created = loop {
        let reply = finn
            .call(
                "POST",
                "/api/v1/cases",
                "/api/v1/cases",
                Some(&request),
                &key,
            )
            .await?;
        if reply.status == StatusCode::CREATED {
            break reply;
        }
        ensure!(
            reply.status == StatusCode::CONFLICT && std::time::Instant::now() < deadline,
            "the retry: {} {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(
        created.header("idempotent-replayed").as_deref(),
        Some("true")
    );
    let case = created.json()?;
    let id = case["id"].as_str().context("case id")?.to_owned();
    assert_eq!(
        created.header("location"),
        Some(format!("/api/v1/cases/{id}"))
    );
    let again = finn
        .call(
            "POST",
            "/api/v1/cases",
            "/api/v1/cases",
            Some(&request),
            &key,
        )
        .await?;
    assert_eq!(again.body, created.body, "a retry gets the first answer");
    let mut changed = request.clone();
    changed["message"] = json!("Another request");
    finn.call(
        "POST",
        "/api/v1/cases",
        "/api/v1/cases",
        Some(&changed),
        &key,
    )
    .await?
    .problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-reused",
        Some("Idempotency-Key"),
    )?;
    assert_eq!(requests_from_valvira().await, 1, "one request, not two");
    assert_eq!(case["status"], "sent");

    // On the Portuguese side: the allocator gives it to Maria Silva.
    wait_until(
        "the request on the Portuguese node",
        common::WAIT,
        || async { allocator.case(&id).await.is_ok() },
    )
    .await?;
    nurse
        .get("/api/v1/cases/{id}", &format!("/api/v1/cases/{id}"))
        .await?
        .problem(StatusCode::FORBIDDEN, "forbidden", None)?;
    let incoming = allocator.case(&id).await?;
    let handler = incoming["handlers"]
        .as_array()
        .and_then(|h| h.iter().find(|h| h["name"] == "Maria Silva"))
        .and_then(|h| h["id"].as_str())
        .context("Maria Silva among the handlers")?
        .to_owned();
    let allocated = allocator
        .step(&id, json!({"action": "allocate", "handler": handler}))
        .await?;
    assert_eq!(allocated["handler"], "Maria Silva");
    let mine = maria
        .get("/api/v1/tasks", "/api/v1/tasks?filter=mine")
        .await?
        .json()?;
    assert!(
        mine["items"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["case"] == id.as_str())),
        "{mine}"
    );

    // A step decided on an outdated version is refused, and changes nothing.
    let stale = incoming["version"].as_str().context("version")?.to_owned();
    maria
        .call(
            "POST",
            "/api/v1/cases/{id}/steps",
            &format!("/api/v1/cases/{id}/steps"),
            Some(&json!({"action": "accept"})),
            &[("if-match", &format!("\"{stale}\""))],
        )
        .await?
        .problem(
            StatusCode::PRECONDITION_FAILED,
            "precondition-failed",
            Some("If-Match"),
        )?;
    assert_eq!(maria.case(&id).await?["status"], "sent");

    // Refused input: the field is named and the case is unchanged.
    let refusals: [(Value, StatusCode, &str, Option<&str>); 5] = [
        (
            json!({"action": "fly"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            Some("action"),
        ),
        (
            json!({"action": "propose-deadline", "reply_by": "2001-01-01"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            Some("reply_by"),
        ),
        (
            json!({"action": "accept", "colour": "red"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            Some("colour"),
        ),
        (
            json!({"action": 7}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            Some("action"),
        ),
        (
            json!({"action": "close", "rating": {"timeliness": 5, "effort": 4}}),
            StatusCode::CONFLICT,
            "step-refused",
            None,
        ),
    ];
    for (body, status, kind, field) in refusals {
        maria
            .call(
                "POST",
                "/api/v1/cases/{id}/steps",
                &format!("/api/v1/cases/{id}/steps"),
                Some(&body),
                &[],
            )
            .await?
            .problem(status, kind, field)
            .with_context(|| format!("{body}"))?;
    }
    let raw = maria
        .http
        .request(
            Request::post(format!("{}/api/v1/cases/{id}/steps", maria.base))
                .header(header::AUTHORIZATION, format!("Bearer {}", maria.token))
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Full::new(Bytes::from_static(b"accept")))?,
        )
        .await?;
    assert_eq!(raw.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(maria.case(&id).await?["status"], "sent");

    // Maria accepts, proposes a later date, the Finn agrees.
    assert_eq!(
        maria.step(&id, json!({"action": "accept"})).await?["status"],
        "accepted"
    );
    let later = imi_protocol::Timestamp::from_system_time(std::time::SystemTime::now())
        .date()
        .checked_add_days(30)
        .context("a date")?
        .to_string();
    maria
        .step(&id, json!({"action": "propose-deadline", "reply_by": later, "message": "Precisamos de mais tempo."}))
        .await?;
    wait_until("the proposal in Finland", common::WAIT, || async {
        finn.case(&id)
            .await
            .is_ok_and(|c| c["deadline_proposal"] == later.as_str())
    })
    .await?;
    finn.step(&id, json!({"action": "accept-deadline"})).await?;

    // The answer, with the register extract; the Finn downloads it whole.
    wait_until("the agreed date in Portugal", common::WAIT, || async {
        maria
            .case(&id)
            .await
            .is_ok_and(|c| c["reply_by"] == later.as_str())
    })
    .await?;
    let extract = b"Register extract: Ana Sofia Martins, licensed 2009".to_vec();
    let answered = maria
        .step(
            &id,
            json!({
                "action": "answer",
                "answers": {
                    "qualification-title": "Licenciatura em Medicina",
                    "date-of-award": "2009-07-15",
                    "legally-established": "yes"
                },
                "message": "Em anexo o extrato do registo.",
                "attachments": [{"name": "extrato.txt", "media_type": "text/plain", "content_base64": base64_of(&extract)}]
            }),
        )
        .await?;
    assert_eq!(answered["status"], "answered");
    wait_until("the answer in Finland", common::WAIT, || async {
        finn.case(&id)
            .await
            .is_ok_and(|c| c["status"] == "answered")
    })
    .await?;
    let file_href = finn.case(&id).await?["history"]
        .as_array()
        .and_then(|h| h.iter().rev().find_map(|s| s["files"][0]["href"].as_str()))
        .context("the answer's file")?
        .to_owned();
    let file = finn
        .get("/api/v1/cases/{id}/files/{step}/{index}", &file_href)
        .await?;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.body.as_ref(), extract.as_slice());
    assert!(file.header("x-content-sha256").is_some());
    nurse
        .get("/api/v1/cases/{id}/files/{step}/{index}", &file_href)
        .await?
        .problem(StatusCode::FORBIDDEN, "forbidden", None)?;
    let answers = finn.case(&id).await?;
    assert!(
        answers["questions"]
            .as_array()
            .is_some_and(|q| q
                .iter()
                .any(|q| q["key"] == "qualification-title"
                    && q["answer"] == "Licenciatura em Medicina")),
        "{answers}"
    );

    // Closed with a rating.
    let closed = finn
        .step(
            &id,
            json!({"action": "close", "rating": {"timeliness": 4, "effort": 5}}),
        )
        .await?;
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["rating"]["effort"], 5);

    // The profile: language, notifications, password, tokens.
    let put = |api: &Api, template: &'static str, body: Value| {
        let api = api.clone();
        async move { api.call("PUT", template, template, Some(&body), &[]).await }
    };
    assert_eq!(
        put(&finn, "/api/v1/me/language", json!({"language": "sv"}))
            .await?
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        finn.get("/api/v1/me", "/api/v1/me").await?.json()?["language"],
        "sv"
    );
    put(&finn, "/api/v1/me/language", json!({"language": "klingon"}))
        .await?
        .problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            Some("language"),
        )?;
    assert_eq!(
        put(
            &finn,
            "/api/v1/me/notifications",
            json!({"task_emails": "daily-summary", "address": null})
        )
        .await?
        .status,
        StatusCode::NO_CONTENT
    );
    put(
        &finn,
        "/api/v1/me/notifications",
        json!({"task_emails": "hourly", "address": null}),
    )
    .await?
    .problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("task_emails"),
    )?;
    let chosen = finn
        .get("/api/v1/me/notifications", "/api/v1/me/notifications")
        .await?
        .json()?;
    assert_eq!(chosen["task_emails"], "daily-summary");
    finn.call(
        "POST",
        "/api/v1/me/password",
        "/api/v1/me/password",
        Some(&json!({"current": "wrong", "new": "x"})),
        &[],
    )
    .await?
    .problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid", Some("current"))?;
    let changed = finn
        .call(
            "POST",
            "/api/v1/me/password",
            "/api/v1/me/password",
            Some(&json!({"current": imi_testnet::ui::DEMO_PASSWORD, "new": "a much longer passphrase of Aino"})),
            &[],
        )
        .await?;
    assert_eq!(
        changed.status,
        StatusCode::NO_CONTENT,
        "{}",
        String::from_utf8_lossy(&changed.body)
    );
    let made = finn
        .call(
            "POST",
            "/api/v1/me/tokens",
            "/api/v1/me/tokens",
            Some(&json!({"name": "reporting", "days": 7})),
            &[],
        )
        .await?;
    assert_eq!(made.status, StatusCode::CREATED);
    let made = made.json()?;
    let second = Api {
        token: made["secret"].as_str().context("secret")?.to_owned(),
        ..finn.clone()
    };
    assert_eq!(
        second.get("/api/v1/me", "/api/v1/me").await?.status,
        StatusCode::OK
    );
    let listed = finn
        .get("/api/v1/me/tokens", "/api/v1/me/tokens")
        .await?
        .json()?;
    assert!(listed.as_array().is_some_and(|t| {
        t.iter()
            .any(|t| t["name"] == "reporting" && t.get("secret").is_none())
    }));
    let token_id = made["token"]["id"].as_str().context("token id")?;
    let revoked = finn
        .call(
            "DELETE",
            "/api/v1/me/tokens/{id}",
            &format!("/api/v1/me/tokens/{token_id}"),
            None,
            &[],
        )
        .await?;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    second.get("/api/v1/me", "/api/v1/me").await?.problem(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        None,
    )?;

    // The node's status is its national coordinators', not an official's.
    finn.get("/api/v1/status", "/api/v1/status")
        .await?
        .problem(StatusCode::FORBIDDEN, "forbidden", None)?;
    let coordinator = client(&fi_web, token(&fi_ui, fi, "coordinator").await?);
    let status = coordinator
        .get("/api/v1/status", "/api/v1/status")
        .await?
        .json()?;
    assert!(
        status["peers"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["node"] == "PT/pt-1")),
        "{status}"
    );
    assert!(status["sent"]["accepted"].as_u64() >= Some(1), "{status}");

    // Addresses and methods the API does not have.
    finn.get("/api/v1/nothing-here", "/api/v1/nothing-here")
        .await?
        .problem(StatusCode::NOT_FOUND, "no-such-address", None)?;
    finn.call("DELETE", "/api/v1/tasks", "/api/v1/tasks", None, &[])
        .await?
        .problem(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", None)?;
    finn.get("/api/v1/tasks", "/api/v1/tasks?limit=0")
        .await?
        .problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid", Some("limit"))?;
    finn.get("/api/v1/tasks", "/api/v1/tasks?cursor=forged")
        .await?
        .problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid", Some("cursor"))?;

    // Every operation of the document was called above.
    let document = finn
        .get("/api/openapi.json", "/api/openapi.json")
        .await?
        .json()?;
    assert_eq!(document["openapi"], "3.1.0");
    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_object().context("paths")? {
        for method in item.as_object().context("path item")?.keys() {
            documented.insert((method.clone(), format!("/api/v1{path}")));
        }
    }
    let called = exercised.lock().expect("exercised").clone();
    let missed: Vec<_> = documented.difference(&called).collect();
    assert!(missed.is_empty(), "operations no test calls: {missed:?}");
    let page = finn.get("/api/docs", "/api/docs").await?;
    assert_eq!(page.status, StatusCode::OK);
    let html = String::from_utf8(page.body.to_vec())?;
    assert!(html.contains("id=\"problem-precondition-failed\""));
    assert!(html.contains("/cases/{id}/steps"));
    Ok(())
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Found by the API fuzzer (`api_fuzz.rs`): the `Idempotency-Key` was read
/// and claimed before the address and method were matched, so `PUT
/// /api/v1/cases` with an empty key got 422 instead of 405, and with a key
/// (or a POST to an address without POST) it used the key up: the POST that
/// key was meant for was then refused as `idempotency-key-reused`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_an_address_does_not_take_is_405_and_leaves_its_idempotency_key_unused()
-> Result<()> {
    common::logs();
    let net = demo_finland_and_portugal().await?;
    let fi = net.node(Country::Fi);
    let web = serve_ui(fi).await?;
    let fi_ui = ui(fi).await?;
    let finn = Api {
        http: Client::builder(TokioExecutor::new()).build_http(),
        base: web.url().trim_end_matches('/').to_owned(),
        token: token(&fi_ui, fi, "fi-official").await?,
        exercised: Arc::default(),
    };
    let body = json!({"to": {"country": "PT", "authority": "no-such-authority"}, "question_set": "pq-general"});
    for key in ["", "fuzzed-key-1"] {
        finn.call(
            "PUT",
            "/api/v1/cases",
            "/api/v1/cases",
            Some(&body),
            &[("idempotency-key", key)],
        )
        .await?
        .problem(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", None)
        .with_context(|| format!("key {key:?}"))?;
    }
    finn.call(
        "POST",
        "/api/v1/nothing-here",
        "/api/v1/nothing-here",
        Some(&body),
        &[("idempotency-key", "fuzzed-key-1")],
    )
    .await?
    .problem(StatusCode::NOT_FOUND, "no-such-address", None)?;
    finn.call(
        "POST",
        "/api/v1/tasks",
        "/api/v1/tasks",
        Some(&body),
        &[("idempotency-key", "fuzzed-key-1")],
    )
    .await?
    .problem(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", None)?;
    // The key is still free for the request it was made for.
    finn.call(
        "POST",
        "/api/v1/cases",
        "/api/v1/cases",
        Some(&body),
        &[("idempotency-key", "fuzzed-key-1")],
    )
    .await?
    .problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("to.authority"),
    )?;
    Ok(())
}
