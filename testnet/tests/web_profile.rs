//! My profile's email notifications over real HTTP, against a real Finnish
//! node serving its web UI: an official chooses a daily summary, signs out
//! and in again and finds it kept; a choice that does not exist, an address
//! that is not one, and a form sent from another site are refused with
//! nothing stored changed; the node hands the choice to whoever emails new
//! tasks. And API tokens: an official creates one, sees its secret once
//! and the token in her list, the node accepts the secret; she revokes it
//! and the node refuses it.

mod common;

use anyhow::{Context, Result, ensure};
use common::web::{Browser, Page, summary_links};
use hyper::StatusCode;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use imi_node::admin::{NotificationPreference, TaskEmails};
use imi_protocol::Country;
use imi_testnet::Testnet;
use imi_testnet::ui::{DEMO_PASSWORD, demo_coordinator, demo_people, serve_ui};

impl Browser {
    /// Sends the email notifications form of My profile.
    async fn save_notifications(
        &self,
        cookie: &str,
        task_emails: &str,
        address: &str,
    ) -> Result<Page> {
        self.post(
            "/profile/notifications",
            cookie,
            &[("task_emails", task_emails), ("address", address)],
        )
        .await
    }
}

/// The task emails choice the profile page shows as chosen.
fn chosen(html: &str) -> Option<&str> {
    html.split("<input ")
        .map(|tag| &tag[..tag.find('>').unwrap_or(tag.len())])
        .filter(|tag| tag.contains("name=\"task_emails\"") && tag.ends_with(" checked"))
        .find_map(|tag| tag.split("value=\"").nth(1)?.split('"').next())
}

/// The value of the address field.
fn address_field(html: &str) -> Option<&str> {
    let input = html.split("<input id=\"task-email-address\"").nth(1)?;
    input.split("value=\"").nth(1)?.split('"').next()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daily_summary_chosen_on_my_profile_is_kept_across_sign_ins_and_wrong_input_changes_nothing()
-> Result<()> {
    common::logs();
    let net = Testnet::builder().countries([Country::Fi]).start().await?;
    let fi = net.node(Country::Fi);
    demo_coordinator(fi).await?;
    demo_people(fi, "coordinator").await?;
    let aino = fi.admin().user_by_login("fi-official")?.user;
    let ui = serve_ui(fi).await?;
    let browser = Browser {
        http: Client::builder(TokioExecutor::new()).build_http(),
        base: ui.url(),
    };
    let stored = || fi.admin().notification_preference(aino.id);

    // Never chosen: an email for each new task, to the account's address,
    // which the page shows.
    let cookie = browser.sign_in("fi-official", DEMO_PASSWORD).await?;
    let page = browser.get("/profile", &cookie).await?;
    ensure!(page.status == StatusCode::OK, "My profile: {}", page.status);
    assert_eq!(chosen(&page.html), Some("each-task"));
    assert!(
        page.html.contains(&aino.email),
        "the account's address is shown"
    );
    assert_eq!(address_field(&page.html), Some(""));

    // A daily summary, saved and confirmed.
    let saved = browser
        .save_notifications(&cookie, "daily-summary", "")
        .await?;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    let confirmed = browser
        .get(saved.location.as_deref().context("no redirect")?, &cookie)
        .await?;
    assert!(
        confirmed.html.contains("class=\"notice\" role=\"status\""),
        "no confirmation on {:?}",
        saved.location
    );
    assert_eq!(chosen(&confirmed.html), Some("daily-summary"));

    // Signed out, the old session opens nothing; signed in again, the
    // choice is still there.
    browser.sign_out(&cookie).await?;
    let after = browser.get("/profile", &cookie).await?;
    assert!(
        after
            .location
            .as_deref()
            .is_some_and(|l| l.starts_with("/sign-in")),
        "{:?}",
        after.location
    );
    let cookie = browser.sign_in("fi-official", DEMO_PASSWORD).await?;
    let page = browser.get("/profile", &cookie).await?;
    assert_eq!(chosen(&page.html), Some("daily-summary"));
    let kept = NotificationPreference {
        task_emails: TaskEmails::DailySummary,
        address: None,
    };
    assert_eq!(stored()?, kept);

    // A choice that does not exist: the error summary leads to the radios;
    // the stored choice stays.
    let refused = browser.save_notifications(&cookie, "weekly", "").await?;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(summary_links(&refused.html), ["task-emails"]);
    assert!(refused.html.contains("id=\"task-emails-error\""));
    assert_eq!(chosen(&refused.html), None);
    assert_eq!(stored()?, kept);
    let page = browser.get("/profile", &cookie).await?;
    assert_eq!(chosen(&page.html), Some("daily-summary"));

    // An address that is not one: the summary leads to the field, which
    // keeps what was typed; nothing stored changes.
    let refused = browser
        .save_notifications(&cookie, "never", "aino.virtanen@valvira")
        .await?;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(summary_links(&refused.html), ["task-email-address"]);
    assert_eq!(address_field(&refused.html), Some("aino.virtanen@valvira"));
    assert!(refused.html.contains("aria-invalid=\"true\""));
    assert_eq!(stored()?, kept);

    // The same form from another site is refused before it reaches the node.
    let forged = browser
        .post_from(
            "/profile/notifications",
            &cookie,
            &[("task_emails", "never"), ("address", "")],
            "http://evil.example",
            "cross-site",
        )
        .await?;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(stored()?, kept);

    // An address of her own: shown on the page, and what the node gives
    // whoever emails her new tasks.
    let saved = browser
        .save_notifications(&cookie, "each-task", " imi.aino@valvira.fi.example ")
        .await?;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    let page = browser.get("/profile", &cookie).await?;
    assert_eq!(chosen(&page.html), Some("each-task"));
    assert_eq!(
        address_field(&page.html),
        Some("imi.aino@valvira.fi.example")
    );
    let email = fi.admin().task_email(aino.id)?.context("no task email")?;
    assert_eq!(email.frequency, TaskEmails::EachTask);
    assert_eq!(email.address, "imi.aino@valvira.fi.example");

    ui.stop().await;
    let mut net = net;
    for node in net.nodes.drain(..) {
        node.shutdown().await;
    }
    Ok(())
}

/// The secret shown once after a token is created.
fn shown_secret(html: &str) -> Option<&str> {
    let input = html.split("<input id=\"token-secret\"").nth(1)?;
    input.split("value=\"").nth(1)?.split('"').next()
}

/// The revocation paths of the tokens listed.
fn revoke_actions(html: &str) -> Vec<&str> {
    html.split("action=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|action| action.ends_with("/revoke"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_official_creates_an_api_token_sees_it_listed_and_revokes_it() -> Result<()> {
    common::logs();
    let net = Testnet::builder().countries([Country::Fi]).start().await?;
    let fi = net.node(Country::Fi);
    demo_coordinator(fi).await?;
    demo_people(fi, "coordinator").await?;
    let aino = fi.admin().user_by_login("fi-official")?.user;
    let ui = serve_ui(fi).await?;
    let browser = Browser {
        http: Client::builder(TokioExecutor::new()).build_http(),
        base: ui.url(),
    };
    let cookie = browser.sign_in("fi-official", DEMO_PASSWORD).await?;
    let page = browser.get("/profile", &cookie).await?;
    ensure!(page.status == StatusCode::OK, "My profile: {}", page.status);
    assert!(page.html.contains("id=\"api-tokens\""));
    assert!(revoke_actions(&page.html).is_empty());

    // Wrong input: the summary leads to the fields, nothing is created.
    let refused = browser
        .post(
            "/profile/tokens",
            &cookie,
            &[("name", " "), ("days", "400")],
        )
        .await?;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(summary_links(&refused.html), ["token-name", "token-days"]);
    assert!(fi.admin().api_tokens(aino.id)?.is_empty());

    // Created: the secret is on this page, once, and works.
    let created = browser
        .post(
            "/profile/tokens",
            &cookie,
            &[("name", "Valvira case system"), ("days", "30")],
        )
        .await?;
    assert_eq!(created.status, StatusCode::OK);
    let secret = shown_secret(&created.html)
        .context("no secret on the page")?
        .to_owned();
    assert!(secret.starts_with("imi_"), "{secret}");
    assert_eq!(fi.admin().api_token_user(&secret).await?, aino.id);
    let tokens = fi.admin().api_tokens(aino.id)?;
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].name, "Valvira case system");

    // Listed on My profile, never with its secret.
    let page = browser.get("/profile", &cookie).await?;
    assert!(page.html.contains("Valvira case system"));
    assert!(!page.html.contains(&secret));
    let revoke = revoke_actions(&page.html);
    assert_eq!(revoke, [format!("/profile/tokens/{}/revoke", tokens[0].id)]);
    let revoke = revoke[0].to_owned();

    // Another site cannot revoke it.
    let forged = browser
        .post_from(&revoke, &cookie, &[], "http://evil.example", "cross-site")
        .await?;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(fi.admin().api_token_user(&secret).await?, aino.id);

    // Revoked: confirmed, gone from the list, refused by the node.
    let revoked = browser.post(&revoke, &cookie, &[]).await?;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    let page = browser
        .get(revoked.location.as_deref().context("no redirect")?, &cookie)
        .await?;
    assert!(page.html.contains("class=\"notice\" role=\"status\""));
    assert!(revoke_actions(&page.html).is_empty());
    assert!(fi.admin().api_token_user(&secret).await.is_err());
    // Twice: there is nothing left to revoke.
    let again = browser.post(&revoke, &cookie, &[]).await?;
    assert_eq!(again.status, StatusCode::NOT_FOUND);

    ui.stop().await;
    let mut net = net;
    for node in net.nodes.drain(..) {
        node.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_national_coordinator_reads_which_nodes_are_linked_and_an_official_may_not()
-> Result<()> {
    common::logs();
    let net = imi_testnet::ui::demo_finland_and_portugal().await?;
    let fi = net.node(Country::Fi);
    let ui = serve_ui(fi).await?;
    let browser = Browser {
        http: Client::builder(TokioExecutor::new()).build_http(),
        base: ui.url(),
    };
    imi_testnet::wait_until("Portugal linked to Finland", common::WAIT, || async {
        !fi.net().peers().await.is_empty()
    })
    .await?;

    // The coordinator finds the page in the menu: Portugal's node is
    // linked, with its certificate's end, and the store is described.
    let cookie = browser.sign_in("coordinator", DEMO_PASSWORD).await?;
    let tasks = browser.get("/tasks", &cookie).await?;
    assert!(tasks.html.contains("href=\"/status\""), "the menu links it");
    let page = browser.get("/status", &cookie).await?;
    ensure!(
        page.status == StatusCode::OK,
        "status page: {}",
        page.status
    );
    assert!(page.html.contains("PT/pt-1"), "the linked node is listed");
    let until = fi
        .net()
        .peers()
        .await
        .into_iter()
        .find(|p| p.address.to_string() == "PT/pt-1")
        .context("PT linked")?
        .valid_until_ms;
    let day = imi_protocol::Timestamp::from_millis(until)
        .date()
        .to_string();
    assert!(page.html.contains(&day), "its certificate's end: {day}");
    assert!(
        page.html
            .contains(imi_protocol::Catalogue::builtin().version()),
        "the catalogue version"
    );

    // An official has no such menu entry, and is refused the page.
    let official = browser.sign_in("fi-official", DEMO_PASSWORD).await?;
    let tasks = browser.get("/tasks", &official).await?;
    assert!(!tasks.html.contains("href=\"/status\""));
    let refused = browser.get("/status", &official).await?;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(!refused.html.contains("PT/pt-1"));
    Ok(())
}
