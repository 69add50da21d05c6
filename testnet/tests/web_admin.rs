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
use common::web::{Browser, summary_links};
use hyper::StatusCode;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use imi_protocol::Country;
use imi_testnet::Testnet;
use imi_testnet::ui::{DEMO_PASSWORD, demo_coordinator, demo_people, serve_ui};

/// The second official's first password.
const SECOND_PASSWORD: &str = "a second official stands in";

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
