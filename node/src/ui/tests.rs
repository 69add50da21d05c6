use imi_protocol::{Timestamp, UserId};
use imi_web::{IdempotencyClaim, KeptResponse, StoredSession};

use super::idempotency::{self, KEPT_FOR_MS, KeyError, KeyRefused};
use super::sessions;
use crate::store::Store;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store.redb")).unwrap();
    (dir, store)
}

fn session(data: &[u8], expires_ms: u64) -> StoredSession {
    StoredSession {
        data: data.to_vec(),
        expires: Timestamp::from_millis(expires_ms),
    }
}

#[tokio::test]
async fn sessions_survive_in_the_store_until_they_expire() {
    let (_dir, store) = store();
    sessions::create_table(&store).await.unwrap();
    sessions::save(&store, "abc", session(b"{\"user\":1}", 2_000))
        .await
        .unwrap();
    sessions::save(&store, "old", session(b"{}", 500))
        .await
        .unwrap();
    let now = Timestamp::from_millis(1_000);
    assert_eq!(
        sessions::load(&store, "abc", now).unwrap(),
        Some(session(b"{\"user\":1}", 2_000))
    );
    // An expired session is never handed out, then purged.
    assert_eq!(sessions::load(&store, "old", now).unwrap(), None);
    assert_eq!(sessions::purge(&store, now).await.unwrap(), 1);
    assert_eq!(sessions::purge(&store, now).await.unwrap(), 0);
    sessions::delete(&store, "abc").await.unwrap();
    assert_eq!(sessions::load(&store, "abc", now).unwrap(), None);
}

#[tokio::test]
async fn oversized_sessions_are_refused_and_nothing_is_stored() {
    let (_dir, store) = store();
    sessions::create_table(&store).await.unwrap();
    let big = vec![b'x'; 17 * 1024];
    assert!(matches!(
        sessions::save(&store, "abc", session(&big, 2_000)).await,
        Err(sessions::SessionRefused::TooLarge(_))
    ));
    let long_id = "i".repeat(65);
    assert!(matches!(
        sessions::save(&store, &long_id, session(b"{}", 2_000)).await,
        Err(sessions::SessionRefused::Id)
    ));
    let now = Timestamp::from_millis(1_000);
    assert_eq!(sessions::load(&store, "abc", now).unwrap(), None);
}

fn created(body: &str) -> KeptResponse {
    KeptResponse {
        status: 201,
        location: Some("/api/v1/cases/01J".into()),
        body: body.as_bytes().to_vec(),
    }
}

fn idempotency_rows(store: &Store) -> Vec<(Vec<u8>, Vec<u8>)> {
    use redb::ReadableTable;
    let tx = store.read().unwrap();
    let table = tx.open_table(idempotency::IDEMPOTENCY_KEYS).unwrap();
    table
        .iter()
        .unwrap()
        .map(|entry| {
            let (k, v) = entry.unwrap();
            (k.value().to_vec(), v.value().to_vec())
        })
        .collect()
}

#[tokio::test]
async fn an_idempotency_key_is_claimed_once_then_replayed_for_the_same_request_only() {
    let (_dir, store) = store();
    idempotency::create_table(&store).await.unwrap();
    let (ana, rui) = (UserId::new(), UserId::new());
    let now = Timestamp::from_millis(1_793_577_600_000);
    let request = [1; 32];
    let claim = |user, key: &'static str, fingerprint| {
        let store = store.clone();
        async move {
            idempotency::claim(&store, user, key, fingerprint, now)
                .await
                .unwrap()
        }
    };

    assert_eq!(claim(ana, "k-1", request).await, IdempotencyClaim::Claimed);
    assert_eq!(
        claim(ana, "k-1", request).await,
        IdempotencyClaim::InProgress
    );
    assert_eq!(claim(ana, "k-1", [2; 32]).await, IdempotencyClaim::Mismatch);
    // Keys are per user.
    assert_eq!(claim(rui, "k-1", [2; 32]).await, IdempotencyClaim::Claimed);

    idempotency::keep(&store, ana, "k-1", Some(created("{\"id\":1}")))
        .await
        .unwrap();
    assert_eq!(
        claim(ana, "k-1", request).await,
        IdempotencyClaim::Replay(created("{\"id\":1}"))
    );
    assert_eq!(claim(ana, "k-1", [2; 32]).await, IdempotencyClaim::Mismatch);
    // A kept response is kept: neither replaced nor released.
    idempotency::keep(&store, ana, "k-1", Some(created("{\"id\":2}")))
        .await
        .unwrap();
    idempotency::keep(&store, ana, "k-1", None).await.unwrap();
    assert_eq!(
        claim(ana, "k-1", request).await,
        IdempotencyClaim::Replay(created("{\"id\":1}"))
    );

    // A request that changed nothing releases its key for a retry.
    idempotency::keep(&store, rui, "k-1", None).await.unwrap();
    assert_eq!(claim(rui, "k-1", request).await, IdempotencyClaim::Claimed);
}

#[tokio::test]
async fn unusable_idempotency_keys_are_refused_and_nothing_is_stored() {
    let (_dir, store) = store();
    idempotency::create_table(&store).await.unwrap();
    let ana = UserId::new();
    let now = Timestamp::from_millis(1_000);
    let long = "k".repeat(201);
    for key in ["", long.as_str()] {
        assert!(matches!(
            idempotency::claim(&store, ana, key, [1; 32], now).await,
            Err(KeyError::Refused(KeyRefused::Key))
        ));
        assert!(matches!(
            idempotency::keep(&store, ana, key, None).await,
            Err(KeyError::Refused(KeyRefused::Key))
        ));
    }
    // Never claimed: nothing to keep.
    assert!(matches!(
        idempotency::keep(&store, ana, "k-1", Some(created("{}"))).await,
        Err(KeyError::Refused(KeyRefused::NotClaimed))
    ));
    assert!(idempotency_rows(&store).is_empty());

    // 200 characters (not bytes) is the longest key.
    let longest = "é".repeat(200);
    assert_eq!(
        idempotency::claim(&store, ana, &longest, [1; 32], now)
            .await
            .unwrap(),
        IdempotencyClaim::Claimed
    );
    let rows = idempotency_rows(&store);
    let huge = KeptResponse {
        status: 200,
        location: None,
        body: vec![b' '; 1024 * 1024 + 1],
    };
    assert!(matches!(
        idempotency::keep(&store, ana, &longest, Some(huge)).await,
        Err(KeyError::Refused(KeyRefused::TooLarge(_)))
    ));
    assert_eq!(idempotency_rows(&store), rows);
}

#[tokio::test]
async fn idempotency_keys_are_kept_24_hours_then_purged() {
    let (_dir, store) = store();
    idempotency::create_table(&store).await.unwrap();
    let ana = UserId::new();
    let start = Timestamp::from_millis(1_793_577_600_000);
    let later = |ms: u64| Timestamp::from_millis(start.as_millis() + ms);
    idempotency::claim(&store, ana, "old", [1; 32], start)
        .await
        .unwrap();
    idempotency::keep(&store, ana, "old", Some(created("{}")))
        .await
        .unwrap();
    idempotency::claim(&store, ana, "newer", [1; 32], later(3_600_000))
        .await
        .unwrap();

    // Just under 24 hours: both kept.
    assert_eq!(
        idempotency::purge(&store, later(KEPT_FOR_MS - 1))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        idempotency::claim(&store, ana, "old", [1; 32], later(KEPT_FOR_MS - 1))
            .await
            .unwrap(),
        IdempotencyClaim::Replay(created("{}"))
    );
    // 24 hours after its claim, a key is as good as unused, then purged.
    assert_eq!(
        idempotency::purge(&store, later(KEPT_FOR_MS))
            .await
            .unwrap(),
        1
    );
    assert_eq!(idempotency_rows(&store).len(), 1);
    assert_eq!(
        idempotency::claim(
            &store,
            ana,
            "newer",
            [2; 32],
            later(KEPT_FOR_MS + 3_600_000)
        )
        .await
        .unwrap(),
        IdempotencyClaim::Claimed
    );
}

mod https {
    use std::path::Path;
    use std::time::{Duration, SystemTime};

    use imi_certs::{RootCa, Validity, WebCa, WebServerCertificate};
    use imi_protocol::Country;

    use crate::config::{WebConfig, WebTlsConfig};
    use crate::ui::{UiSetup, UiStartError};

    fn web_ca() -> WebCa {
        let root = RootCa::generate("root", Validity::days_from_now(30)).unwrap();
        let finland = root
            .issue_national_ca(Country::Fi, Validity::days_from_now(20))
            .unwrap();
        WebCa::generate(
            &finland,
            &["example.fi".parse().unwrap()],
            Validity::days_from_now(10),
        )
        .unwrap()
    }

    fn issue(web_ca: &WebCa, validity: Validity) -> WebServerCertificate {
        web_ca
            .issue_server(&["imi.example.fi".parse().unwrap()], validity)
            .unwrap()
    }

    fn files(dir: &Path) -> WebTlsConfig {
        WebTlsConfig {
            certificate: dir.join("web.pem"),
            key: dir.join("web-key.pem"),
        }
    }

    fn start(tls: &WebTlsConfig) -> Result<UiSetup, UiStartError> {
        let web = WebConfig {
            listen: "0.0.0.0:8443".parse().unwrap(),
            tls: Some(tls.clone()),
            public_origin: None,
            training: false,
            default_language: None,
            idle_minutes: 30,
            max_attachment_kib: 2048,
            api_requests_per_second: 20,
            api_burst: 100,
        };
        UiSetup::from_config(&web, Country::Fi)
    }

    fn refusal(tls: &WebTlsConfig) -> String {
        start(tls).expect_err("the UI must not start").to_string()
    }

    fn mentions(message: &str, path: &Path) {
        assert!(
            message.contains(&path.display().to_string()),
            "{message} does not name {}",
            path.display()
        );
    }

    #[test]
    fn the_web_ui_starts_over_https_with_the_certificate_its_web_ca_issued() {
        let dir = tempfile::tempdir().unwrap();
        let tls = files(dir.path());
        issue(&web_ca(), Validity::days_from_now(5))
            .write_pem_files(&tls.certificate, &tls.key)
            .unwrap();
        let setup = start(&tls).unwrap();
        let identity = setup.settings.tls.expect("served over https");
        assert_eq!(identity.certificate_chain().len(), 2);
    }

    #[test]
    fn a_missing_or_unreadable_certificate_file_stops_the_web_ui_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let tls = files(dir.path());
        let issued = issue(&web_ca(), Validity::days_from_now(5));
        issued.write_pem_files(&tls.certificate, &tls.key).unwrap();

        let missing = WebTlsConfig {
            certificate: dir.path().join("nowhere.pem"),
            key: tls.key.clone(),
        };
        let message = refusal(&missing);
        mentions(&message, &missing.certificate);
        assert!(message.contains("[web]"), "{message}");

        imi_certs::write_public_pem(&tls.certificate, "not a certificate\n").unwrap();
        let message = refusal(&tls);
        mentions(&message, &tls.certificate);
        assert!(message.contains("BEGIN CERTIFICATE"), "{message}");

        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        imi_certs::write_public_pem(&tls.certificate, garbage).unwrap();
        let message = refusal(&tls);
        mentions(&message, &tls.certificate);
    }

    #[test]
    fn a_key_that_is_missing_readable_by_others_or_not_the_certificates_stops_the_web_ui() {
        let dir = tempfile::tempdir().unwrap();
        let tls = files(dir.path());
        let web_ca = web_ca();
        issue(&web_ca, Validity::days_from_now(5))
            .write_pem_files(&tls.certificate, &tls.key)
            .unwrap();

        // The certificate given as the key: no key in it.
        let swapped = WebTlsConfig {
            certificate: tls.certificate.clone(),
            key: dir.path().join("swapped-key.pem"),
        };
        imi_certs::write_private_key_pem(
            &swapped.key,
            &std::fs::read_to_string(&tls.certificate).unwrap(),
        )
        .unwrap();
        let message = refusal(&swapped);
        mentions(&message, &swapped.key);
        assert!(message.contains("PRIVATE KEY"), "{message}");

        // Another certificate's key.
        let other = issue(&web_ca, Validity::days_from_now(5));
        imi_certs::write_private_key_pem(&tls.key, other.key_pem()).unwrap();
        let err = start(&tls).unwrap_err();
        assert!(matches!(err, UiStartError::TlsKeyMismatch { .. }), "{err}");
        let message = err.to_string();
        mentions(&message, &tls.key);
        mentions(&message, &tls.certificate);

        // A key other users can read.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tls.key, std::fs::Permissions::from_mode(0o644)).unwrap();
            let message = refusal(&tls);
            mentions(&message, &tls.key);
            assert!(message.contains("chmod 600"), "{message}");
        }
    }

    #[test]
    fn an_expired_web_certificate_stops_the_web_ui_with_when_it_ended() {
        let dir = tempfile::tempdir().unwrap();
        let tls = files(dir.path());
        let day = Duration::from_secs(86_400);
        let now = SystemTime::now();
        issue(&web_ca(), Validity::new(now - 10 * day, now - day))
            .write_pem_files(&tls.certificate, &tls.key)
            .unwrap();
        let err = start(&tls).unwrap_err();
        assert!(matches!(err, UiStartError::TlsNotValidNow { .. }), "{err}");
        let message = err.to_string();
        mentions(&message, &tls.certificate);
        assert!(message.contains("certs issue-web"), "{message}");
    }
}
