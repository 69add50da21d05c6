//! The officials' web UI in a real headless Chromium, against real nodes of
//! a two-country federation: a Finnish official signs in with the pages in
//! Finnish, searches in Finnish for the Portuguese doctors' authority and
//! opens its page; a form sent from another origin is refused; axe-core
//! finds no serious or critical accessibility violation on any page
//! visited. Screenshots go to `target/tmp/screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver`
//! (`apt-get install -y chromium chromium-driver`; `.ci/run` installs them).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use fantoccini::{Client, ClientBuilder, Locator};
use imi_protocol::{Country, Language};
use imi_testnet::ui::{DEMO_PASSWORD, demo_finland_and_portugal, serve_ui};
use imi_testnet::{free_port, wait_until};
use serde_json::json;

/// axe-core 4.14 (MPL-2.0), injected into each page to check it.
const AXE: &str = include_str!("assets/axe.min.js");

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The chromedriver process, ended when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A headless Chromium driven over WebDriver.
struct Browser {
    client: Client,
    shots: PathBuf,
    // Dropped after the client.
    _driver: Driver,
}

impl Browser {
    /// Starts Chromium with the browser's language set to `accept_language`.
    async fn start(accept_language: &str) -> Result<Browser> {
        for program in [CHROMIUM, CHROMEDRIVER] {
            if !Path::new(program).exists() {
                bail!(
                    "{program} is missing: the browser tests need Debian's Chromium; install it with `apt-get update && apt-get install -y chromium chromium-driver`"
                );
            }
        }
        let port = free_port()?;
        let driver = Driver(
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("cannot start chromedriver")?,
        );
        let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
        std::fs::create_dir_all(&shots)?;
        let address = format!("127.0.0.1:{port}");
        wait_until(
            "chromedriver to listen",
            Duration::from_secs(20),
            || async { tokio::net::TcpStream::connect(&address).await.is_ok() },
        )
        .await?;
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,1024",
                    format!("--lang={accept_language}"),
                ],
                "prefs": { "intl.accept_languages": accept_language },
            },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("an object")
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://{address}"))
            .await
            .context("cannot open a Chromium session")?;
        Ok(Browser {
            client,
            shots,
            _driver: driver,
        })
    }

    async fn goto(&self, url: &str) -> Result<()> {
        Ok(self.client.goto(url).await?)
    }

    async fn text_of(&self, css: &str) -> Result<String> {
        let found = self
            .client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await;
        match found {
            Ok(element) => Ok(element.text().await?),
            Err(err) => bail!("no {css} on {}: {err}", self.url().await),
        }
    }

    async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .map_or_else(|e| e.to_string(), |u| u.to_string())
    }

    async fn html_lang(&self) -> Result<String> {
        let lang = self
            .client
            .execute("return document.documentElement.lang", vec![])
            .await?;
        Ok(lang.as_str().unwrap_or_default().to_owned())
    }

    /// The element `css` once the page shows it (a click that submits a
    /// form returns before the next page is there).
    async fn element(&self, css: &str) -> Result<fantoccini::elements::Element> {
        match self
            .client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => Ok(element),
            Err(err) => bail!("no {css} on {}: {err}", self.url().await),
        }
    }

    async fn fill(&self, css: &str, text: &str) -> Result<()> {
        let field = self.element(css).await?;
        field.clear().await?;
        field.send_keys(text).await?;
        Ok(())
    }

    async fn click(&self, css: &str) -> Result<()> {
        self.element(css).await?.click().await?;
        Ok(())
    }

    /// Saves a screenshot of the page as `name.png`.
    async fn screenshot(&self, name: &str) -> Result<()> {
        let png = self.client.screenshot().await?;
        std::fs::write(self.shots.join(format!("{name}.png")), png)?;
        Ok(())
    }

    /// Runs axe-core on the page: no serious or critical violation.
    async fn assert_accessible(&self, page: &str) -> Result<()> {
        self.client.execute(AXE, vec![]).await?;
        let found = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] }).then(r => done(
                   r.violations
                     .filter(v => v.impact === 'serious' || v.impact === 'critical')
                     .map(v => v.impact + ' ' + v.id + ': ' + v.help + ' at ' +
                          v.nodes.map(n => n.target.join(' ')).join(', '))));",
                vec![],
            )
            .await?;
        let violations: Vec<String> = serde_json::from_value(found)?;
        ensure!(
            violations.is_empty(),
            "axe-core on the {page} page: {violations:#?}"
        );
        Ok(())
    }
}

/// Signs in on the sign-in page of `ui` as `login`.
async fn sign_in(browser: &Browser, ui: &str, login: &str) -> Result<()> {
    browser.goto(&format!("{ui}sign-in")).await?;
    browser.fill("#login", login).await?;
    browser.fill("#password", DEMO_PASSWORD).await?;
    browser
        .click("form[action='/sign-in'] button[type=submit]")
        .await?;
    Ok(())
}

/// Searches the directory from the search page.
async fn search(browser: &Browser, text: &str) -> Result<()> {
    browser.fill("#q", text).await?;
    browser
        .click("form.search-form button[type=submit]")
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finnish_official_finds_the_portuguese_doctors_authority_in_finnish() -> Result<()> {
    common::logs();
    let net = demo_finland_and_portugal().await?;
    let fi = net.node(Country::Fi);
    wait_until(
        "the Finnish node to find the Portuguese doctors' authority",
        common::WAIT,
        || async {
            fi.search()
                .find("Ordem dos Médicos", Language::Pt)
                .await
                .is_ok_and(|r| r.hits.iter().any(|h| h.display_name == "Ordem dos Médicos"))
        },
    )
    .await?;
    let fi_ui = serve_ui(fi).await?;
    let pt_ui = serve_ui(net.node(Country::Pt)).await?;
    let fi_url = fi_ui.url();
    let browser = Browser::start("fi").await?;

    // The sign-in page speaks the browser's language.
    browser.goto(&format!("{fi_url}sign-in")).await?;
    assert_eq!(browser.html_lang().await?, "fi");
    assert_eq!(browser.text_of("h1").await?, "Kirjaudu sisään");
    assert!(
        browser
            .text_of(".training-banner")
            .await?
            .contains("Koulutusympäristö")
    );
    browser.screenshot("sign-in").await?;
    browser.assert_accessible("sign-in").await?;

    // A wrong password: an error summary, and still on the sign-in page.
    browser.fill("#login", "fi-official").await?;
    browser.fill("#password", "not the password at all").await?;
    browser
        .click("form[action='/sign-in'] button[type=submit]")
        .await?;
    assert!(
        browser
            .text_of(".error-summary")
            .await?
            .contains("Käyttäjätunnus tai salasana on väärin")
    );
    browser.screenshot("sign-in-failed").await?;
    browser.assert_accessible("failed sign-in").await?;

    sign_in(&browser, &fi_url, "fi-official").await?;
    wait_until("signing in to land on My tasks", common::WAIT, || async {
        browser.url().await.ends_with("/tasks")
    })
    .await?;
    browser.goto(&format!("{fi_url}search")).await?;
    assert_eq!(
        browser.text_of("h1").await?,
        "Hae viranomaisia ja rekistereitä"
    );
    browser.assert_accessible("search").await?;

    // The seed scenario: "doctor" and "Portugal", in Finnish.
    search(&browser, "lääkäri Portugali").await?;
    let link = browser
        .client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::LinkText("Ordem dos Médicos"))
        .await
        .context("the Portuguese doctors' authority is not among the results")?;
    assert!(browser.text_of("#results-heading").await?.contains("tulos"));
    browser.screenshot("search-results").await?;
    browser.assert_accessible("search results").await?;

    link.click().await?;
    browser.shows("h1", "Ordem dos Médicos").await?;
    let page = browser.text_of("main").await?;
    assert!(page.contains("Ammattipätevyys"), "area in Finnish: {page}");
    assert!(page.contains("Lääkäri"), "profession in Finnish: {page}");
    assert!(page.contains("PT/pt-1"), "the serving node: {page}");
    browser.screenshot("authority").await?;
    browser.assert_accessible("authority").await?;

    // The profile shows the official's authority and roles.
    browser.goto(&format!("{fi_url}profile")).await?;
    let page = browser.text_of("main").await?;
    assert!(page.contains("Valvira") && page.contains("Pyyntöjen käsittelijä"));
    browser.screenshot("profile").await?;
    browser.assert_accessible("profile").await?;

    // An API token for the case system: its secret is shown once, the
    // list names it, and it is gone from the page once left.
    browser
        .fill("#token-name", "Valviran asiankäsittelyjärjestelmä")
        .await?;
    browser
        .click("form[action='/profile/tokens'] button[type=submit]")
        .await?;
    let secret = browser
        .client
        .wait()
        .for_element(fantoccini::Locator::Css("#token-secret"))
        .await?
        .prop("value")
        .await?
        .context("the secret")?;
    assert!(secret.starts_with("imi_"), "{secret}");
    assert!(
        browser
            .text_of("table.tokens")
            .await?
            .contains("Valviran asiankäsittelyjärjestelmä")
    );
    browser.screenshot("profile-api-token").await?;
    browser.assert_accessible("profile-api-token").await?;
    browser.goto(&format!("{fi_url}profile")).await?;
    let source = browser.client.source().await?;
    assert!(!source.contains(&secret), "the secret is shown once only");
    browser
        .click("table.tokens form button[type=submit]")
        .await?;
    browser
        .shows(
            ".notice",
            &imi_web::Locales::builtin()
                .tr(Language::Fi)
                .get("profile-tokens-revoked"),
        )
        .await?;

    // A form on another site posting to the Finnish UI is refused, and
    // changes nothing. (The UI's own pages could not even send it: their
    // policy allows forms only to the UI itself.)
    browser
        .goto("data:text/html,<!DOCTYPE html><title>elsewhere</title><body></body>")
        .await?;
    browser
        .client
        .execute(
            "const form = document.createElement('form');
             form.method = 'post';
             form.action = arguments[0] + 'language';
             for (const [name, value] of [['language', 'pt'], ['back', '/search']]) {
               const input = document.createElement('input');
               input.type = 'hidden'; input.name = name; input.value = value;
               form.appendChild(input);
             }
             document.body.appendChild(form);
             form.submit();",
            vec![json!(fi_url)],
        )
        .await?;
    wait_until("the cross-site form to land", common::WAIT, || async {
        browser.url().await.starts_with(&fi_url)
    })
    .await?;
    assert_eq!(browser.text_of("h1").await?, "Pyyntö hylättiin");
    browser.screenshot("cross-site-refused").await?;
    browser.assert_accessible("cross-site refusal").await?;
    browser.goto(&format!("{fi_url}search")).await?;
    assert_eq!(
        browser.html_lang().await?,
        "fi",
        "the language did not change"
    );

    browser.client.clone().close().await?;
    drop(browser);
    fi_ui.stop().await;
    pt_ui.stop().await;
    let mut net = net;
    for node in net.nodes.drain(..) {
        node.shutdown().await;
    }
    Ok(())
}

impl Browser {
    /// Reloads the page until `css` is on it (the other node's step has
    /// arrived).
    async fn reload_until(&self, what: &str, css: &str) -> Result<()> {
        wait_until(what, common::WAIT, || async {
            let _ = self.client.refresh().await;
            self.client.find(Locator::Css(css)).await.is_ok()
        })
        .await
    }

    /// Waits until `css` shows `text` (a step's page replaces the one it
    /// was taken on).
    async fn shows(&self, css: &str, text: &str) -> Result<()> {
        let what = format!("{css} to show {text:?}");
        wait_until(&what, common::WAIT, || async {
            match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.text().await.is_ok_and(|t| t.contains(text)),
                Err(_) => false,
            }
        })
        .await
        .with_context(|| format!("on {}", "the page"))
    }

    /// The HTTP status of a GET of `url` made by the page (with its cookie).
    async fn status_of(&self, url: &str) -> Result<u64> {
        let status = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 fetch(arguments[0], { credentials: 'same-origin' }).then(r => done(r.status));",
                vec![json!(url)],
            )
            .await?;
        status.as_u64().context("a status")
    }

    /// Visits, checks and photographs one page of the walk-through.
    async fn page(&self, shot: &str) -> Result<()> {
        self.screenshot(shot).await?;
        self.assert_accessible(shot).await
    }

    /// Posts a form to `action` from another site, as a forged page would.
    async fn post_from_elsewhere(&self, action: &str, fields: &[(&str, &str)]) -> Result<()> {
        self.goto("data:text/html,<!DOCTYPE html><title>elsewhere</title><body></body>")
            .await?;
        let fields: Vec<[&str; 2]> = fields.iter().map(|(n, v)| [*n, *v]).collect();
        self.client
            .execute(
                "const form = document.createElement('form');
                 form.method = 'post';
                 form.action = arguments[0];
                 for (const [name, value] of arguments[1]) {
                   const input = document.createElement('input');
                   input.type = 'hidden'; input.name = name; input.value = value;
                   form.appendChild(input);
                 }
                 document.body.appendChild(form);
                 form.submit();",
                vec![json!(action), json!(fields)],
            )
            .await?;
        wait_until("the cross-site form to land", common::WAIT, || async {
            self.url().await.starts_with("http")
        })
        .await
    }
}

/// The seed scenario, as officials meet it: a Finnish official (pages in
/// Finnish) asks the Portuguese doctors' authority about a doctor's
/// qualifications; a Portuguese official (pages in Portuguese) accepts,
/// proposes a new reply-by date and answers; the Finn accepts the date,
/// reads the answer in Finnish and closes the request with a rating. A
/// user of another Portuguese authority gets 403 on the case, and a
/// cross-site form is refused. Every page passes axe-core; the screenshots
/// illustrate docs/USER-GUIDE.md.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_scenario_runs_from_request_to_closure_in_finnish_and_portuguese() -> Result<()> {
    common::logs();
    let net = demo_finland_and_portugal().await?;
    let (fi, pt) = (net.node(Country::Fi), net.node(Country::Pt));
    for (node, name, language) in [
        (fi, "Ordem dos Médicos", Language::Pt),
        (pt, "Valvira", Language::Fi),
    ] {
        wait_until(
            "each node to find the other's authority",
            common::WAIT,
            || async {
                node.search()
                    .find(name, language)
                    .await
                    .is_ok_and(|r| r.hits.iter().any(|h| h.display_name.contains(name)))
            },
        )
        .await?;
    }
    let fi_ui = serve_ui(fi).await?;
    let pt_ui = serve_ui(pt).await?;
    let (fi_url, pt_url) = (fi_ui.url(), pt_ui.url());
    let locales = imi_web::Locales::builtin();
    let (suomi, portugues) = (locales.tr(Language::Fi), locales.tr(Language::Pt));
    let finn = Browser::start("fi").await?;

    // The Finn signs in and lands on My tasks, empty.
    sign_in(&finn, &fi_url, "fi-official").await?;
    finn.shows("h1", &suomi.get("tasks-title")).await?;
    assert!(
        finn.text_of("main")
            .await?
            .contains(&suomi.get("tasks-empty"))
    );
    finn.page("guide-01-my-tasks-empty").await?;

    // Searches in Finnish, opens the authority, starts a request.
    finn.goto(&format!("{fi_url}search")).await?;
    search(&finn, "lääkäri Portugali").await?;
    finn.page("guide-02-search").await?;
    finn.client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::LinkText("Ordem dos Médicos"))
        .await?
        .click()
        .await?;
    finn.page("guide-03-authority").await?;
    finn.click("a.button[href^='/requests/new']").await?;
    finn.shows("h1", &suomi.get("request-new-title")).await?;
    finn.page("guide-04-question-sets").await?;
    finn.click("input[name=set][value=pq-general]").await?;
    finn.click("form[action='/requests/new'] button[type=submit]")
        .await?;

    // A form sent empty: an error summary names what is missing.
    finn.click("button[name=intent][value=check]").await?;
    let summary = finn.text_of(".error-summary").await?;
    assert!(
        summary.contains(&suomi.get("request-missing-answer")),
        "{summary}"
    );
    assert!(
        summary.contains(&suomi.get("request-no-question")),
        "{summary}"
    );
    finn.page("guide-05-request-errors").await?;

    finn.fill("#q-profession-host", "Lääkäri").await?;
    finn.click("input[name=q-regulated-in-home][value=yes]")
        .await?;
    finn.fill("#q-full-name", "Ana Sofia Martins").await?;
    finn.fill("#q-date-of-birth", "1984-05-17").await?;
    for question in [
        "qualification-title",
        "date-of-award",
        "legally-established",
    ] {
        finn.click(&format!("input[name=ask][value={question}]"))
            .await?;
    }
    finn.fill(
        "#message",
        "Hakija haluaa toimia lääkärinä Suomessa. Pyydämme vahvistamaan tutkinnon.",
    )
    .await?;
    // The diploma, attached from the official's disk.
    let diploma_path = finn.shots.join("tutkintotodistus.pdf");
    let diploma = b"%PDF-1.4\n% Diploma of Ana Sofia Martins, Universidade de Lisboa\n%%EOF\n";
    std::fs::write(&diploma_path, diploma)?;
    finn.element("#attachments")
        .await?
        .send_keys(&diploma_path.display().to_string())
        .await?;
    finn.page("guide-06-request-form").await?;
    finn.click("button[name=intent][value=check]").await?;
    finn.shows("h1", &suomi.get("request-check-title")).await?;
    let check = finn.text_of("main").await?;
    assert!(check.contains("Ana Sofia Martins"), "{check}");
    assert!(check.contains("tutkintotodistus.pdf"), "{check}");
    finn.page("guide-07-check-request").await?;
    finn.click("button[name=intent][value=send]").await?;

    // The case has one reference for good: its address.
    wait_until("the request's page", common::WAIT, || async {
        finn.url().await.contains("/cases/")
    })
    .await?;
    let case_url = finn.url().await;
    let reference = case_url
        .rsplit('/')
        .next()
        .and_then(|r| r.split('?').next())
        .context("a case address")?
        .to_owned();
    finn.shows(".notice", &reference).await?;
    finn.shows(".status", &suomi.get("status-sent")).await?;
    finn.reload_until(
        "the Portuguese node's signed receipt",
        ".timeline .delivery-delivered",
    )
    .await?;
    finn.page("guide-08-request-sent").await?;
    let case_path = format!("cases/{reference}");

    // The Ordem's allocator gives it to Maria Silva, a request handler.
    let allocator = Browser::start("pt").await?;
    sign_in(&allocator, &pt_url, "pt-allocator").await?;
    allocator
        .reload_until(
            "the request in the allocator's tasks",
            &format!("a[href='/{case_path}']"),
        )
        .await?;
    allocator.click(&format!("a[href='/{case_path}']")).await?;
    allocator.element("#allocate-handler").await?;
    allocator
        .client
        .execute(
            "document.getElementById('allocate-handler').scrollIntoView({ block: 'center' })",
            vec![],
        )
        .await?;
    allocator.page("guide-09a-allocate").await?;
    allocator
        .click("form:has(input[name=action][value=allocate]) button[type=submit]")
        .await?;
    allocator
        .shows(".notice", &portugues.get("history-allocate"))
        .await?;
    allocator.shows("main", "Maria Silva").await?;
    allocator.client.clone().close().await?;
    drop(allocator);

    // The Portuguese official, pages in Portuguese, finds it in My tasks,
    // among the tasks assigned to her.
    let portuguese = Browser::start("pt").await?;
    sign_in(&portuguese, &pt_url, "pt-official").await?;
    portuguese.goto(&format!("{pt_url}tasks?show=mine")).await?;
    portuguese
        .element(&format!("a[href='/{case_path}']"))
        .await
        .context("the allocated request among the tasks assigned to her")?;
    portuguese
        .reload_until(
            "the request in the Portuguese official's tasks",
            &format!("a[href='/{case_path}']"),
        )
        .await?;
    let tasks = portuguese.text_of("table.tasks").await?;
    assert!(
        tasks.contains(&portugues.get("task-accept-request")),
        "{tasks}"
    );
    assert!(tasks.contains("Valvira"), "{tasks}");
    portuguese.page("guide-09-my-tasks-portuguese").await?;
    portuguese.click(&format!("a[href='/{case_path}']")).await?;
    let page = portuguese.text_of("main").await?;
    assert!(page.contains("Ana Sofia Martins"), "{page}");
    assert!(
        page.contains(&portugues.get("yes")),
        "a yes in Portuguese: {page}"
    );
    portuguese.page("guide-10-incoming-request").await?;
    // The diploma came with the request: the Portuguese node checked it
    // against its digest, and it downloads as it was attached.
    let link = portuguese
        .element(".timeline .files a")
        .await?
        .attr("href")
        .await?
        .context("a link to the file")?;
    let downloaded = portuguese
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(arguments[0], { credentials: 'same-origin' })
               .then(r => r.text()).then(done);",
            vec![json!(link)],
        )
        .await?;
    assert_eq!(
        downloaded.as_str(),
        Some(std::str::from_utf8(diploma)?),
        "the file as attached"
    );

    // Accepts, proposes a later reply-by date.
    portuguese
        .click("form input[name=action][value=accept] + button")
        .await?;
    portuguese
        .shows(".status", &portugues.get("status-accepted"))
        .await?;
    let later = imi_protocol::Timestamp::from_system_time(std::time::SystemTime::now())
        .date()
        .checked_add_days(30)
        .context("a date")?
        .to_string();
    portuguese.fill("#propose-reply_by", &later).await?;
    portuguese
        .click("form input[name=action][value=propose-deadline] ~ button")
        .await?;
    portuguese.shows("main", &later).await?;
    portuguese.page("guide-11-deadline-proposed").await?;

    // The Finn accepts the new date.
    finn.goto(&format!("{fi_url}{case_path}")).await?;
    finn.reload_until(
        "the proposed date on the Finnish node",
        "form input[name=action][value=accept-deadline]",
    )
    .await?;
    finn.page("guide-12-review-deadline").await?;
    finn.click("form input[name=action][value=accept-deadline] + button")
        .await?;
    finn.shows(".notice", &suomi.get("history-accept-deadline"))
        .await?;

    // The Portuguese official answers every question asked.
    portuguese.goto(&format!("{pt_url}{case_path}")).await?;
    portuguese
        .reload_until(
            "the accepted date on the Portuguese node",
            ".timeline-item:nth-child(4)",
        )
        .await?;
    portuguese
        .fill("#a-qualification-title", "Licenciatura em Medicina")
        .await?;
    portuguese.fill("#a-date-of-award", "2009-07-15").await?;
    portuguese
        .click("input[name=a-legally-established][value=yes]")
        .await?;
    portuguese
        .fill(
            "#answer-message",
            "A médica está inscrita na Ordem sem qualquer restrição.",
        )
        .await?;
    portuguese.page("guide-13-answer").await?;
    portuguese
        .click("button[name=action][value=answer]")
        .await?;
    portuguese
        .shows(".status", &portugues.get("status-answered"))
        .await?;

    // The Finn reads the answer in Finnish and closes with a rating.
    finn.goto(&format!("{fi_url}{case_path}")).await?;
    finn.reload_until(
        "the answer on the Finnish node",
        "form input[name=action][value=close]",
    )
    .await?;
    let page = finn.text_of("main").await?;
    assert!(page.contains("Licenciatura em Medicina"), "{page}");
    assert!(page.contains(&suomi.get("yes")), "a yes in Finnish: {page}");
    assert!(
        page.contains("(português)") || page.contains("português"),
        "{page}"
    );
    finn.page("guide-14-answer-received").await?;
    finn.click("#timeliness").await?;
    finn.click("#timeliness option[value='5']").await?;
    finn.click("#effort option[value='4']").await?;
    finn.click("form input[name=action][value=close] ~ button")
        .await?;
    finn.shows(".status", &suomi.get("status-closed")).await?;
    finn.page("guide-15-closed").await?;
    portuguese.goto(&format!("{pt_url}{case_path}")).await?;
    portuguese
        .reload_until(
            "the closure on the Portuguese node",
            ".timeline-item:nth-child(6)",
        )
        .await?;
    portuguese
        .shows(".status", &portugues.get("status-closed"))
        .await?;

    // A forged form from another site cannot reopen it.
    finn.post_from_elsewhere(
        &format!("{fi_url}{case_path}/act"),
        &[("action", "reopen"), ("reopen-reply_by", &later)],
    )
    .await?;
    assert_eq!(
        finn.text_of("h1").await?,
        suomi.get("error-cross-site-title")
    );
    finn.goto(&format!("{fi_url}{case_path}")).await?;
    finn.shows(".status", &suomi.get("status-closed")).await?;

    // A user of another Portuguese authority may not see it.
    portuguese.click(".sign-out button").await?;
    sign_in(&portuguese, &pt_url, "pt-nurses").await?;
    assert_eq!(
        portuguese
            .status_of(&format!("{pt_url}{case_path}"))
            .await?,
        403
    );
    // Nor its files.
    assert_eq!(
        portuguese
            .status_of(&format!("{}{}", pt_url.trim_end_matches('/'), link))
            .await?,
        403
    );
    portuguese.goto(&format!("{pt_url}{case_path}")).await?;
    assert_eq!(
        portuguese.text_of("h1").await?,
        portugues.get("error-forbidden-title")
    );
    assert!(
        !portuguese
            .text_of("main")
            .await?
            .contains("Ana Sofia Martins")
    );
    portuguese.page("guide-16-forbidden").await?;

    for browser in [finn, portuguese] {
        browser.client.clone().close().await?;
    }
    fi_ui.stop().await;
    pt_ui.stop().await;
    let mut net = net;
    for node in net.nodes.drain(..) {
        node.shutdown().await;
    }
    Ok(())
}
