use imi_protocol::Timestamp;
use imi_web::StoredSession;

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
