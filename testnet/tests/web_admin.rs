//! The local data administrator keeps the authority's users over real
//! HTTP, against a real Finnish node serving its web UI: Valvira's
//! administrator sees that only one official handles professional
//! qualifications, adds a second request handler, who signs in, and the
//! warning goes away; a duplicate login and a weak password are refused
//! with the field named and nobody created; deactivated, the second
//! official's session ends and they cannot sign in again. A request handler
//! gets 403 on the page and on a forged form.

mod common;

use anyhow::{Context, Result, ensure};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use imi_protocol::Country;
use imi_testnet::Testnet;
use imi_testnet::ui::{DEMO_PASSWORD, demo_coordinator, demo_people, serve_ui};

/// The second official's first password.
const SECOND_PASSWORD: &str = "a second official stands in";

type Http = Client<HttpConnector, Full<Bytes>>;

/// A page as the browser got it.
struct Page {
    status: StatusCode,
    location: Option<String>,
    cookie: Option<String>,
    html: String,
}

/// The web UI of one node, used like a browser would.
struct Browser {
    http: Http,
    base: String,
}

impl Browser {
    async fn send(&self, request: Request<Full<Bytes>>) -> Result<Page> {
        let response = self.http.request(request).await?;
        let status = response.status();
        let header_text = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let location = header_text(header::LOCATION);
        let cookie = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("imi-session="))
            .and_then(|v| v.split(';').next())
            .map(str::to_owned);
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Page {
            status,
            location,
            cookie,
            html: String::from_utf8(body.to_vec())?,
        })
    }

    async fn get(&self, path: &str, cookie: &str) -> Result<Page> {
        self.send(
            Request::get(format!("{}{}", self.base, path.trim_start_matches('/')))
                .header(header::COOKIE, cookie)
                .body(Full::new(Bytes::new()))?,
        )
        .await
    }

    /// Posts a form from this site's own page, as a browser does.
    async fn post(&self, path: &str, cookie: &str, form: &[(&str, &str)]) -> Result<Page> {
        self.post_from(
            path,
            cookie,
            form,
            self.base.trim_end_matches('/'),
            "same-origin",
        )
        .await
    }

    async fn post_from(
        &self,
        path: &str,
        cookie: &str,
        form: &[(&str, &str)],
        origin: &str,
        fetch_site: &str,
    ) -> Result<Page> {
        let body = form
            .iter()
            .map(|(name, value)| format!("{name}={}", encode(value)))
            .collect::<Vec<_>>()
            .join("&");
        self.send(
            Request::post(format!("{}{}", self.base, path.trim_start_matches('/')))
                .header(header::COOKIE, cookie)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::ORIGIN, origin)
                .header("sec-fetch-site", fetch_site)
                .body(Full::new(Bytes::from(body)))?,
        )
        .await
    }

    /// Signs in as `login` with `password`; the page answering.
    async fn try_sign_in(&self, login: &str, password: &str) -> Result<Page> {
        self.post(
            "/sign-in",
            "",
            &[("login", login), ("password", password), ("next", "/tasks")],
        )
        .await
    }

    /// Signs in as `login`; the session cookie.
    async fn sign_in(&self, login: &str, password: &str) -> Result<String> {
        let page = self.try_sign_in(login, password).await?;
        ensure!(
            page.status == StatusCode::SEE_OTHER,
            "signing in answered {}",
            page.status
        );
        page.cookie.context("no session cookie after signing in")
    }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The fields the error summary links to.
fn summary_links(html: &str) -> Vec<&str> {
    let Some(summary) = html.split("class=\"error-summary\"").nth(1) else {
        return vec![];
    };
    let summary = &summary[..summary.find("</div>").unwrap_or(summary.len())];
    summary
        .split("href=\"#")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect()
}

/// Whether the page warns that an area lacks a substitute.
fn warns_of_missing_substitute(html: &str) -> bool {
    html.contains("id=\"substitutes\"")
}

/// The path of a user's page, linked from the users list.
fn user_link(html: &str, name: &str) -> Option<String> {
    let before = &html[..html.find(&format!(">{name}</a>"))?];
    let href = &before[before.rfind("href=\"")? + 6..];
    Some(href[..href.find('"')?].to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_administrator_adds_a_substitute_then_deactivates_them_and_refused_forms_change_nothing()
-> Result<()> {
    common::logs();
    let net = Testnet::builder().countries([Country::Fi]).start().await?;
    let fi = net.node(Country::Fi);
    demo_coordinator(fi).await?;
    demo_people(fi, "coordinator").await?;
    let valvira = fi.admin().user_by_login("fi-admin")?.user.authority;
    let ui = serve_ui(fi).await?;
    let browser = Browser {
        http: Client::builder(TokioExecutor::new()).build_http(),
        base: ui.url(),
    };
    let users = || -> Result<usize> { Ok(fi.admin().users_of(valvira)?.len()) };

    // Only Aino handles professional qualifications: the administrator is
    // told to make sure someone stands in.
    let admin = browser.sign_in("fi-admin", DEMO_PASSWORD).await?;
    let page = browser.get("/authority/users", &admin).await?;
    ensure!(page.status == StatusCode::OK, "Users: {}", page.status);
    assert!(
        page.html.contains("href=\"/authority/users\""),
        "in the menu"
    );
    assert!(warns_of_missing_substitute(&page.html));
    assert!(page.html.contains("Aino Virtanen"));
    let before = users()?;

    // A login already taken: the error summary leads to the login field,
    // which keeps what was typed; nobody is created.
    let second = [
        ("name", "Eero Mäkinen"),
        ("login", "fi-official"),
        ("email", "eero.makinen@valvira.fi.example"),
        ("language", "fi"),
        ("role", "professional-qualifications:request-handler"),
        ("password", SECOND_PASSWORD),
    ];
    let refused = browser.post("/authority/users", &admin, &second).await?;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(summary_links(&refused.html), ["login"]);
    assert!(refused.html.contains("id=\"login-error\""));
    assert!(
        refused.html.contains("Eero Mäkinen"),
        "the form keeps the name"
    );
    assert_eq!(users()?, before);

    // A weak password: the summary leads to the password field.
    let mut form = second.to_vec();
    form[1] = ("login", "fi-eero");
    form[5] = ("password", "short");
    let refused = browser.post("/authority/users", &admin, &form).await?;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(summary_links(&refused.html), ["password"]);
    assert_eq!(users()?, before);
    assert!(fi.admin().user_by_login("fi-eero").is_err());

    // Added with a good password: confirmed, and nobody is missing any more.
    form[5] = ("password", SECOND_PASSWORD);
    let added = browser.post("/authority/users", &admin, &form).await?;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.html);
    let page = browser
        .get(added.location.as_deref().context("no redirect")?, &admin)
        .await?;
    assert!(page.html.contains("class=\"notice\" role=\"status\""));
    assert!(
        !warns_of_missing_substitute(&page.html),
        "warning still shown"
    );
    assert_eq!(users()?, before + 1);
    let eero_page = user_link(&page.html, "Eero Mäkinen").context("no link to Eero")?;

    // Eero signs in and works.
    let eero = browser.sign_in("fi-eero", SECOND_PASSWORD).await?;
    let tasks = browser.get("/tasks", &eero).await?;
    assert_eq!(tasks.status, StatusCode::OK);
    assert!(
        !tasks.html.contains("href=\"/authority/users\""),
        "not in his menu"
    );

    // A request handler gets 403 on the page and on a forged form.
    let aino = browser.sign_in("fi-official", DEMO_PASSWORD).await?;
    let page = browser.get("/authority/users", &aino).await?;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let mut forged = second.to_vec();
    forged[1] = ("login", "fi-intruder");
    let page = browser.post("/authority/users", &aino, &forged).await?;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let page = browser
        .post(&format!("{eero_page}/deactivate"), &aino, &[])
        .await?;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(users()?, before + 1);
    assert!(fi.admin().user_by_login("fi-eero")?.user.active);

    // Eero leaves: deactivated, his session ends at once, he cannot sign in
    // again, and Valvira lacks a substitute again.
    let done = browser
        .post(&format!("{eero_page}/deactivate"), &admin, &[])
        .await?;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert!(!fi.admin().user_by_login("fi-eero")?.user.active);
    let after = browser.get("/tasks", &eero).await?;
    assert!(
        after
            .location
            .as_deref()
            .is_some_and(|l| l.starts_with("/sign-in")),
        "{} {:?}",
        after.status,
        after.location
    );
    let again = browser.try_sign_in("fi-eero", SECOND_PASSWORD).await?;
    assert_ne!(again.status, StatusCode::SEE_OTHER);
    let page = browser.get("/authority/users", &admin).await?;
    assert!(warns_of_missing_substitute(&page.html));

    ui.stop().await;
    let mut net = net;
    for node in net.nodes.drain(..) {
        node.shutdown().await;
    }
    Ok(())
}
