//! My tasks under load: a Portuguese official whose authority has 1,000
//! open requests, signed in, loads My tasks over and over from many
//! connections at once.
//!
//! A Finnish and a Portuguese node run in this process with their demo
//! users; the Finnish official sends the requests to the Ordem dos Médicos
//! through the node (not measured), and once the Portuguese node lists
//! them all as tasks, its web UI is served on loopback. The load generator
//! (hyper's client, one keep-alive connection per worker) signs in like a
//! browser, then each worker requests `/tasks` in a loop for the measured
//! time. Every page must come back 200 and list tasks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::{Request as HttpRequest, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use imi_protocol::{
    CaseAction, CaseId, CaseState, Content, Country, Party, Request, RequestAction, TaskOwner,
    Timestamp,
};

use crate::bench::Latencies;
use crate::ui::{DEMO_PASSWORD, demo_finland_and_portugal, serve_ui};
use crate::wait_until;

/// How to load My tasks.
#[derive(Debug, Clone)]
pub struct TasksOptions {
    /// Open requests of the official's authority.
    pub cases: usize,
    /// Connections loading pages at once.
    pub connections: usize,
    /// How long to measure.
    pub duration: Duration,
}

impl Default for TasksOptions {
    fn default() -> Self {
        TasksOptions {
            cases: 1_000,
            connections: 16,
            duration: Duration::from_secs(10),
        }
    }
}

/// What the load measured.
#[derive(Debug, Clone)]
pub struct TasksReport {
    /// Tasks the official's authority has.
    pub tasks: usize,
    /// Pages served in the measured time.
    pub pages: usize,
    /// The measured time.
    pub elapsed: Duration,
    /// Per page, from the request sent to the last byte read.
    pub latencies: Latencies,
    /// Bytes of one page's HTML.
    pub page_bytes: usize,
    /// Bytes of the stylesheet and scripts the page loads (cached).
    pub asset_bytes: usize,
}

impl std::fmt::Display for TasksReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        writeln!(
            f,
            "my tasks ({} tasks, first page of 50): {} pages in {:.1} s: {:.0} pages/s; p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.tasks,
            self.pages,
            self.elapsed.as_secs_f64(),
            self.pages as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON),
            ms(self.latencies.quantile(0.5)),
            ms(self.latencies.quantile(0.9)),
            ms(self.latencies.quantile(0.99)),
            ms(self.latencies.max()),
        )?;
        write!(
            f,
            "page weight: {} bytes of HTML, plus {} bytes of stylesheet and scripts loaded once and cached\ntargets: >= 2,000 pages/s, p99 <= 20 ms",
            self.page_bytes, self.asset_bytes
        )
    }
}

type Http = Client<HttpConnector, Full<Bytes>>;

async fn get(client: &Http, url: &str, cookie: &str) -> Result<(u16, Bytes)> {
    let request = HttpRequest::get(url)
        .header(header::COOKIE, cookie)
        .header(header::ACCEPT_LANGUAGE, "pt")
        .body(Full::new(Bytes::new()))?;
    let response = client.request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// Signs in as `login` like a browser; the session cookie.
async fn sign_in(client: &Http, base: &str, login: &str) -> Result<String> {
    let form = format!(
        "login={login}&password={}&next=%2Ftasks",
        DEMO_PASSWORD.replace(' ', "+").replace(',', "%2C")
    );
    let request = HttpRequest::post(format!("{base}sign-in"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ORIGIN, base.trim_end_matches('/'))
        .header("sec-fetch-site", "same-origin")
        .body(Full::new(Bytes::from(form)))?;
    let response = client.request(request).await?;
    ensure!(
        response.status().is_redirection(),
        "sign-in answered {}",
        response.status()
    );
    let cookie = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("imi-session="))
        .and_then(|v| v.split(';').next())
        .context("no session cookie after signing in")?;
    Ok(cookie.to_owned())
}

/// Runs the My tasks benchmark.
pub async fn tasks(options: &TasksOptions) -> Result<TasksReport> {
    if options.connections == 0 {
        bail!("at least one connection is needed");
    }
    let net = demo_finland_and_portugal().await?;
    let tasks = fill_tasks(&net, options.cases).await?;
    let pt = net.node(Country::Pt);

    let ui = serve_ui(pt).await?;
    let base = ui.url();
    let client: Http = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(options.connections)
        .build_http();
    let cookie = sign_in(&client, &base, "pt-official").await?;
    let url = format!("{base}tasks");
    let (status, page) = get(&client, &url, &cookie).await?;
    ensure!(status == 200, "My tasks answered {status}");
    ensure!(
        page.windows(b"<table class=\"tasks\">".len())
            .any(|w| w == b"<table class=\"tasks\">"),
        "My tasks lists no task"
    );
    let mut asset_bytes = 0;
    for asset in ["assets/style.css", "assets/htmx.min.js", "assets/app.js"] {
        asset_bytes += get(&client, &format!("{base}{asset}"), &cookie)
            .await?
            .1
            .len();
    }

    // Warm up, then measure.
    let _ = load(
        &client,
        &url,
        &cookie,
        options.connections,
        Duration::from_secs(1),
    )
    .await?;
    let started = Instant::now();
    let samples = load(
        &client,
        &url,
        &cookie,
        options.connections,
        options.duration,
    )
    .await?;
    let elapsed = started.elapsed();
    ui.stop().await;
    let mut net = net;
    for node in net.nodes.drain(..) {
        node.shutdown().await;
    }
    Ok(TasksReport {
        tasks,
        pages: samples.len(),
        elapsed,
        latencies: Latencies::new(samples),
        page_bytes: page.len(),
        asset_bytes,
    })
}

/// The Finnish official of `net` (see [`demo_finland_and_portugal`]) sends
/// `cases` requests to the Ordem dos Médicos through the node, reply-by
/// dates spread over 60 days; returns once the Portuguese node lists them
/// all as the Ordem's tasks, with the number of its tasks.
pub async fn fill_tasks(net: &crate::Testnet, cases: usize) -> Result<usize> {
    let (fi, pt) = (net.node(Country::Fi), net.node(Country::Pt));
    let finn = fi.admin().user_by_login("fi-official")?.user;
    let actor = finn.actor_for(Country::Fi, "professional-qualifications");
    let ordem = pt.admin().user_by_login("pt-official")?.user.authority;
    let to = Party {
        authority: ordem,
        country: Country::Pt,
    };
    wait_until(
        "the Finnish node to know the Ordem dos Médicos",
        Duration::from_secs(60),
        || async { fi.directory().authority(Country::Pt, ordem).is_some() },
    )
    .await?;

    // The requests, sent through the node (not measured).
    let today = Timestamp::from_system_time(std::time::SystemTime::now()).date();
    let sent = futures::stream::iter(0..cases)
        .map(|i| {
            let actor = actor.clone();
            async move {
                let draft = Request::draft(
                    CaseId::new(),
                    &actor,
                    "professional-qualifications",
                    to,
                    Timestamp::from_system_time(std::time::SystemTime::now()),
                )?;
                let reply_by = today
                    .checked_add_days(7 + (i % 60) as i64)
                    .context("a date")?;
                fi.open_case(
                    CaseState::Request(draft),
                    actor,
                    CaseAction::Request(RequestAction::Send { reply_by }),
                    Content::default(),
                )
                .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    for result in sent {
        result?;
    }
    let owner = [TaskOwner::Authority(to)];
    wait_until(
        "the Portuguese node to list every request as a task",
        Duration::from_secs(300),
        || async { pt.tasks_of(&owner).is_ok_and(|t| t.len() >= cases) },
    )
    .await?;
    let tasks = pt.tasks_of(&owner)?.len();
    Ok(tasks)
}

/// `connections` workers load `url` until `duration` has passed; every
/// page's latency.
async fn load(
    client: &Http,
    url: &str,
    cookie: &str,
    connections: usize,
    duration: Duration,
) -> Result<Vec<Duration>> {
    let until = Instant::now() + duration;
    let url: Arc<str> = url.into();
    let cookie: Arc<str> = cookie.into();
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (client, url, cookie) = (client.clone(), url.clone(), cookie.clone());
            tokio::spawn(async move {
                let mut samples = Vec::new();
                while Instant::now() < until {
                    let start = Instant::now();
                    let (status, body) = get(&client, &url, &cookie).await?;
                    samples.push(start.elapsed());
                    ensure!(
                        status == 200 && !body.is_empty(),
                        "My tasks answered {status}"
                    );
                }
                anyhow::Ok(samples)
            })
        })
        .collect();
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await??);
    }
    Ok(all)
}
