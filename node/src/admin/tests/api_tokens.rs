//! API tokens against a real store: who they act for, and until when.

use super::*;
use crate::admin::tokens::{API_TOKENS, USER_API_TOKENS};

/// Token tables, every key and value.
fn token_rows(f: &Fixture) -> Vec<(Vec<u8>, Vec<u8>)> {
    let tx = f.store.read().unwrap();
    let mut rows = Vec::new();
    for table in [API_TOKENS, USER_API_TOKENS] {
        let table = tx.open_table(table).unwrap();
        for entry in table.iter().unwrap() {
            let (k, v) = entry.unwrap();
            rows.push((k.value().to_vec(), v.value().to_vec()));
        }
    }
    rows
}

fn in_days(f: &Fixture, days: u64) -> Timestamp {
    f.now().plus_days(days)
}

fn advance_ms(f: &Fixture, ms: u64) {
    f.clock.fetch_add(ms, Ordering::SeqCst);
}

#[tokio::test]
async fn a_token_acts_for_its_user_until_it_expires_and_its_secret_is_never_stored() {
    let f = Fixture::new().await;
    let (_, _, pedro) = doctors_with_pedro(&f).await;
    let id = pedro.user.id;
    let created = f
        .admin
        .create_api_token(id, "  medical register  ", in_days(&f, 30))
        .await
        .unwrap();
    let secret = &created.secret;
    assert!(secret.starts_with("imi_"), "{secret}");
    assert_eq!(secret.len(), 47);
    assert!(
        secret[4..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    );
    assert_eq!(created.token.name, "medical register");
    assert_eq!(created.token.created, f.now());
    assert!(!format!("{created:?}").contains(secret.as_str()));

    assert_eq!(f.admin.api_token_user(secret).await.unwrap(), id);
    assert_eq!(
        f.admin
            .api_tokens(id)
            .unwrap()
            .into_iter()
            .map(|t| t.id)
            .collect::<Vec<_>>(),
        [created.token.id]
    );
    // Neither the secret nor its base64 part is anywhere in the store.
    for (key, value) in token_rows(&f) {
        for bytes in [&key, &value] {
            assert!(!bytes.windows(43).any(|w| w == &secret.as_bytes()[4..]));
        }
    }
    // A second token of the same user, a minute later, is listed first.
    advance_ms(&f, 60_000);
    let second = f
        .admin
        .create_api_token(id, "back office", in_days(&f, 90))
        .await
        .unwrap();
    let listed: Vec<_> = f
        .admin
        .api_tokens(id)
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(listed, ["back office", "medical register"]);

    f.advance_days(30);
    assert!(matches!(
        f.admin.api_token_user(secret).await,
        Err(TokenError::NotValid)
    ));
    assert_eq!(f.admin.api_token_user(&second.secret).await.unwrap(), id);
    let listed: Vec<_> = f
        .admin
        .api_tokens(id)
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(listed, ["back office"]);
    assert_eq!(f.admin.purge_api_tokens().await.unwrap(), 1);
    assert_eq!(f.admin.purge_api_tokens().await.unwrap(), 0);
    assert_eq!(
        token_rows(&f).len(),
        2,
        "one token and its index entry stay"
    );

    for wrong in [
        "",
        "imi_",
        "Bearer x",
        &secret.to_uppercase(),
        &format!("{secret}x"),
    ] {
        assert!(matches!(
            f.admin.api_token_user(wrong).await,
            Err(TokenError::NotValid)
        ));
    }
}

#[tokio::test]
async fn a_user_revokes_only_their_own_tokens_and_the_operator_any() {
    let f = Fixture::new().await;
    let (_, maria, pedro) = doctors_with_pedro(&f).await;
    let pedros = f
        .admin
        .create_api_token(pedro.user.id, "register", in_days(&f, 10))
        .await
        .unwrap();
    let marias = f
        .admin
        .create_api_token(maria.user.id, "register", in_days(&f, 10))
        .await
        .unwrap();

    // Maria, Pedro's administrator, cannot revoke his token: it is not hers.
    let before = token_rows(&f);
    assert!(matches!(
        f.admin
            .revoke_own_api_token(maria.user.id, pedros.token.id)
            .await,
        Err(TokenError::UnknownToken(_))
    ));
    assert_eq!(token_rows(&f), before);
    assert_eq!(
        f.admin.api_token_user(&pedros.secret).await.unwrap(),
        pedro.user.id
    );

    let revoked = f
        .admin
        .revoke_own_api_token(pedro.user.id, pedros.token.id)
        .await
        .unwrap();
    assert_eq!(revoked.id, pedros.token.id);
    assert!(matches!(
        f.admin.api_token_user(&pedros.secret).await,
        Err(TokenError::NotValid)
    ));
    assert!(f.admin.api_tokens(pedro.user.id).unwrap().is_empty());
    assert!(matches!(
        f.admin
            .revoke_own_api_token(pedro.user.id, pedros.token.id)
            .await,
        Err(TokenError::UnknownToken(_))
    ));

    // The operator revokes by id alone.
    f.admin.revoke_api_token(marias.token.id).await.unwrap();
    assert!(matches!(
        f.admin.api_token_user(&marias.secret).await,
        Err(TokenError::NotValid)
    ));
    assert!(matches!(
        f.admin.revoke_api_token(marias.token.id).await,
        Err(TokenError::UnknownToken(_))
    ));
    assert!(token_rows(&f).is_empty());
}

#[tokio::test]
async fn tokens_of_a_deactivated_user_or_authority_do_not_work_until_reactivated() {
    let f = Fixture::new().await;
    let (doctors, maria, pedro) = doctors_with_pedro(&f).await;
    let token = f
        .admin
        .create_api_token(pedro.user.id, "register", in_days(&f, 10))
        .await
        .unwrap();
    f.admin
        .deactivate_user(&actor(&maria), pedro.user.id)
        .await
        .unwrap();
    assert!(matches!(
        f.admin.api_token_user(&token.secret).await,
        Err(TokenError::Deactivated)
    ));
    // Nor may a deactivated user get a new one.
    let before = token_rows(&f);
    assert!(matches!(
        f.admin
            .create_api_token(pedro.user.id, "another", in_days(&f, 10))
            .await,
        Err(TokenError::Deactivated)
    ));
    assert_eq!(token_rows(&f), before);

    f.admin
        .reactivate_user(&actor(&maria), pedro.user.id)
        .await
        .unwrap();
    assert_eq!(
        f.admin.api_token_user(&token.secret).await.unwrap(),
        pedro.user.id
    );

    f.admin
        .deactivate_authority(&f.coordinator(), doctors.authority.id, "merged")
        .await
        .unwrap();
    assert!(matches!(
        f.admin.api_token_user(&token.secret).await,
        Err(TokenError::AuthorityNotActive)
    ));
    assert!(matches!(
        f.admin
            .create_api_token(UserId::new(), "nobody", in_days(&f, 10))
            .await,
        Err(TokenError::UnknownUser(_))
    ));
}

#[tokio::test]
async fn names_and_expiries_out_of_bounds_are_refused_and_nothing_is_stored() {
    let f = Fixture::new().await;
    let (_, _, pedro) = doctors_with_pedro(&f).await;
    let id = pedro.user.id;
    let long = "n".repeat(101);
    let now = f.now();
    let refused = [
        ("", in_days(&f, 1), "name"),
        ("   ", in_days(&f, 1), "name"),
        (long.as_str(), in_days(&f, 1), "name"),
        ("register", now, "expiry"),
        (
            "register",
            Timestamp::from_millis(now.as_millis() - 1),
            "expiry",
        ),
        (
            "register",
            Timestamp::from_millis(in_days(&f, 366).as_millis() + 1),
            "expiry",
        ),
    ];
    for (name, expires, what) in refused {
        let result = f.admin.create_api_token(id, name, expires).await;
        match what {
            "name" => assert!(matches!(result, Err(TokenError::Name)), "{result:?}"),
            _ => assert!(matches!(result, Err(TokenError::Expiry)), "{result:?}"),
        }
    }
    assert!(token_rows(&f).is_empty());
    assert!(f.admin.api_tokens(id).unwrap().is_empty());

    // The bounds themselves are fine, in characters, not bytes.
    let name = "é".repeat(100);
    let token = f
        .admin
        .create_api_token(id, &name, in_days(&f, 366))
        .await
        .unwrap();
    assert_eq!(token.token.name, name);
}

#[tokio::test]
async fn a_user_holds_at_most_twenty_live_tokens() {
    let f = Fixture::new().await;
    let (_, _, pedro) = doctors_with_pedro(&f).await;
    let id = pedro.user.id;
    let mut created = Vec::new();
    for n in 0..MAX_TOKENS_PER_USER {
        // Half of them expire in 5 days.
        let days = if n % 2 == 0 { 5 } else { 50 };
        created.push(
            f.admin
                .create_api_token(id, &format!("system {n}"), in_days(&f, days))
                .await
                .unwrap(),
        );
    }
    let before = token_rows(&f);
    let refused = f
        .admin
        .create_api_token(id, "one more", in_days(&f, 5))
        .await;
    assert!(matches!(refused, Err(TokenError::TooMany)), "{refused:?}");
    assert_eq!(token_rows(&f), before);

    // A revoked token makes room.
    f.admin
        .revoke_own_api_token(id, created[1].token.id)
        .await
        .unwrap();
    f.admin
        .create_api_token(id, "one more", in_days(&f, 50))
        .await
        .unwrap();
    assert!(matches!(
        f.admin.create_api_token(id, "again", in_days(&f, 5)).await,
        Err(TokenError::TooMany)
    ));

    // Expired ones do not count, and go when the next one is created.
    f.advance_days(5);
    assert_eq!(f.admin.api_tokens(id).unwrap().len(), 10);
    f.admin
        .create_api_token(id, "after the expiry", in_days(&f, 5))
        .await
        .unwrap();
    assert_eq!(f.admin.api_tokens(id).unwrap().len(), 11);
    assert_eq!(token_rows(&f).len(), 2 * 11);
    // Another user's limit is their own.
    let coordinator = f.coordinator.user.id;
    f.admin
        .create_api_token(coordinator, "national system", in_days(&f, 5))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_last_use_is_written_at_most_once_a_minute() {
    let f = Fixture::new().await;
    let (_, _, pedro) = doctors_with_pedro(&f).await;
    let id = pedro.user.id;
    let token = f
        .admin
        .create_api_token(id, "register", in_days(&f, 5))
        .await
        .unwrap();
    let last_used = || f.admin.api_tokens(id).unwrap()[0].last_used;
    assert_eq!(last_used(), None);

    let first = f.now();
    f.admin.api_token_user(&token.secret).await.unwrap();
    assert_eq!(last_used(), Some(first));
    let rows = token_rows(&f);

    // Calls within the minute write nothing.
    for _ in 0..3 {
        advance_ms(&f, 19_000);
        f.admin.api_token_user(&token.secret).await.unwrap();
    }
    assert_eq!(token_rows(&f), rows);
    assert_eq!(last_used(), Some(first));

    advance_ms(&f, 3_000);
    f.admin.api_token_user(&token.secret).await.unwrap();
    assert_eq!(last_used(), Some(f.now()));
    assert_ne!(f.now(), first);
}

#[tokio::test]
async fn token_ids_are_read_back_as_listed() {
    let f = Fixture::new().await;
    let token = f
        .admin
        .create_api_token(f.coordinator.user.id, "national system", in_days(&f, 5))
        .await
        .unwrap();
    let text = token.token.id.to_string();
    assert_eq!(text.len(), 26);
    assert_eq!(text.parse::<ApiTokenId>().unwrap(), token.token.id);
    assert!("imi_secret".parse::<ApiTokenId>().is_err());
}
