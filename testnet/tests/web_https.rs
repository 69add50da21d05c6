//! The web UI served over HTTPS by the node itself, with the certificate
//! its country's national web CA issued, over real sockets on loopback: an
//! official whose browser trusts the web CA signs in and gets a `Secure`
//! session cookie; a client that does not trust it is refused at the
//! handshake, and neither it nor a client that stalls its handshake keeps
//! the next official waiting. Chromium opens the UI once it trusts the web
//! CA, and refuses it otherwise.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use imi_certs::{Certificate, RootCa, Validity, WebCa};
use imi_node::config::{WebConfig, WebTlsConfig};
use imi_node::ui::{UiServer, UiSetup};
use imi_protocol::Country;
use imi_testnet::Testnet;
use imi_testnet::ui::{DEMO_PASSWORD, demo_coordinator};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// The name officials reach the Finnish UI by.
const HOST: &str = "imi.fi.test";

/// Less than the ten seconds the server gives a handshake.
const SOON: Duration = Duration::from_secs(5);

/// A browser of sorts: trusts only the CA it is given, opens a new
/// connection for every request.
struct Browser {
    connector: TlsConnector,
}

/// What came back.
struct Page {
    status: StatusCode,
    headers: hyper::HeaderMap,
    body: String,
}

impl Browser {
    fn trusting(ca: &Certificate) -> Result<Browser> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from(ca.der().to_vec()))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Browser {
            connector: TlsConnector::from(Arc::new(config)),
        })
    }

    async fn handshake(
        &self,
        ui: SocketAddr,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(ui).await?;
        let name = ServerName::try_from(HOST).expect("a DNS name");
        self.connector.connect(name, tcp).await
    }

    async fn send(&self, ui: SocketAddr, request: Request<Full<Bytes>>) -> Result<Page> {
        let tls = self.handshake(ui).await.context("TLS handshake")?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        let connection = tokio::spawn(connection);
        let response = sender.send_request(request).await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await?.to_bytes();
        drop(sender);
        let _ = connection.await;
        Ok(Page {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }

    async fn get(&self, ui: SocketAddr, path: &str) -> Result<Page> {
        let request = Request::get(path)
            .header(header::HOST, authority(ui))
            .body(Full::new(Bytes::new()))?;
        self.send(ui, request).await
    }

    /// Posts a form as a browser does from a page of `origin`.
    async fn post_form(
        &self,
        ui: SocketAddr,
        path: &str,
        origin: &str,
        form: &str,
    ) -> Result<Page> {
        let request = Request::post(path)
            .header(header::HOST, authority(ui))
            .header(header::ORIGIN, origin)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(form.to_owned())))?;
        self.send(ui, request).await
    }
}

fn authority(ui: SocketAddr) -> String {
    format!("{HOST}:{}", ui.port())
}

/// A Finnish node with its coordinator, and its web UI served over HTTPS on
/// loopback with a certificate of Finland's web CA for [`HOST`], read from
/// the files `imi-node.toml` names, as `imi-node run` does.
struct Served {
    net: Testnet,
    ui: UiServer,
    web_ca: WebCa,
    _files: tempfile::TempDir,
}

async fn finnish_ui_over_https() -> Result<Served> {
    let net = Testnet::builder().countries([Country::Fi]).start().await?;
    demo_coordinator(net.node(Country::Fi)).await?;
    let web_ca = WebCa::generate(
        &net.federation.pki.nationals[&Country::Fi],
        &["fi.test".parse()?],
        Validity::days_from_now(30),
    )?;
    let files = tempfile::tempdir()?;
    let tls = WebTlsConfig {
        certificate: files.path().join("web.pem"),
        key: files.path().join("web-key.pem"),
    };
    web_ca
        .issue_server(&[HOST.parse()?], Validity::days_from_now(10))?
        .write_pem_files(&tls.certificate, &tls.key)?;
    let web = WebConfig {
        listen: "127.0.0.1:0".parse()?,
        tls: Some(tls),
        public_origin: None,
        training: true,
        default_language: None,
        idle_minutes: 30,
        max_attachment_kib: 2048,
        api_requests_per_second: 20,
        api_burst: 100,
    };
    let setup = UiSetup::from_config(&web, Country::Fi)?;
    let ui = UiServer::start(net.node(Country::Fi), setup).await?;
    Ok(Served {
        net,
        ui,
        web_ca,
        _files: files,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_official_signs_in_over_https_and_the_session_cookie_is_secure() -> Result<()> {
    common::logs();
    let Served {
        net,
        ui,
        web_ca,
        _files,
    } = finnish_ui_over_https().await?;
    let address = ui.address();
    assert!(ui.url().starts_with("https://"), "{}", ui.url());
    let browser = Browser::trusting(web_ca.certificate())?;

    let page = browser.get(address, "/sign-in").await?;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("name=\"password\""), "{}", page.body);
    assert!(
        page.headers.contains_key(header::STRICT_TRANSPORT_SECURITY),
        "an HTTPS page tells the browser to stay on HTTPS"
    );

    // The form posted from the UI's own https origin passes the CSRF check.
    let origin = format!("https://{}", authority(address));
    let form = format!(
        "login=coordinator&password={}",
        DEMO_PASSWORD.replace(' ', "+")
    );
    let signed_in = browser
        .post_form(address, "/sign-in", &origin, &form)
        .await?;
    assert!(
        signed_in.status.is_redirection(),
        "{}: {}",
        signed_in.status,
        signed_in.body
    );
    let cookie = signed_in
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("imi-session="))
        .context("no session cookie on sign-in")?
        .to_owned();
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert!(attributes.contains(&"Secure"), "{cookie}");
    assert!(attributes.contains(&"HttpOnly"), "{cookie}");

    // The session opens My tasks.
    let session = cookie.split(';').next().unwrap_or_default().to_owned();
    let request = Request::get("/tasks")
        .header(header::HOST, authority(address))
        .header(header::COOKIE, session)
        .body(Full::new(Bytes::new()))?;
    let tasks = browser.send(address, request).await?;
    assert_eq!(tasks.status, StatusCode::OK, "{}", tasks.body);

    // A form posted from another site is still refused.
    let forged = browser
        .post_form(address, "/sign-in", "https://elsewhere.test", &form)
        .await?;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);

    ui.stop().await;
    drop(net);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_trust_the_web_ca_is_refused_and_the_next_official_is_served()
-> Result<()> {
    common::logs();
    let Served {
        net,
        ui,
        web_ca,
        _files,
    } = finnish_ui_over_https().await?;
    let address = ui.address();

    // A client holding its handshake open, saying nothing, does not keep
    // an official waiting: each is served within less time than the
    // server gives the stalled handshake.
    let mut stalled = TcpStream::connect(address).await?;
    stalled.write_all(&[0x16, 0x03, 0x01]).await?;
    let browser = Browser::trusting(web_ca.certificate())?;
    let served_at_once = |what: &'static str| {
        let browser = &browser;
        async move {
            let page = tokio::time::timeout(SOON, browser.get(address, "/sign-in"))
                .await
                .with_context(|| format!("the official waited {what}"))??;
            ensure!(page.status == StatusCode::OK, "{}", page.body);
            anyhow::Ok(())
        }
    };
    served_at_once("behind a stalled handshake").await?;

    // A client trusting another country's web CA refuses the certificate.
    let portugal = RootCa::generate("another federation root", Validity::days_from_now(60))?
        .issue_national_ca(Country::Pt, Validity::days_from_now(50))?;
    let other_ca = WebCa::generate(
        &portugal,
        &["pt.test".parse()?],
        Validity::days_from_now(30),
    )?;
    let stranger = Browser::trusting(other_ca.certificate())?;
    let refused = tokio::time::timeout(SOON, stranger.handshake(address))
        .await
        .context("the refusal waited behind a stalled handshake")?;
    let Err(err) = refused else {
        bail!("a client that does not trust the web CA completed the handshake");
    };
    let reason = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
        .with_context(|| format!("not a TLS refusal: {err}"))?;
    ensure!(
        matches!(
            reason,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
        ),
        "refused for another reason: {reason}"
    );

    // Plain HTTP on the HTTPS port gets no page.
    let mut plain = TcpStream::connect(address).await?;
    plain
        .write_all(b"GET /sign-in HTTP/1.1\r\nHost: imi.fi.test\r\n\r\n")
        .await?;
    let mut answer = vec![];
    tokio::time::timeout(SOON, plain.read_to_end(&mut answer))
        .await
        .context("the server kept a plain HTTP client's connection open")??;
    assert!(
        !String::from_utf8_lossy(&answer).contains("HTTP/1.1 200"),
        "plain HTTP was served"
    );

    // And the next official is served as before.
    served_at_once("after the refused clients").await?;

    drop(stalled);
    ui.stop().await;
    drop(net);
    Ok(())
}

/// Debian's Chromium, which the browser tests drive too.
const CHROMIUM: &str = "/usr/bin/chromium";

/// The page Chromium loads from `url` with its profile in `home` (whose
/// NSS store holds the CAs it trusts besides the built-in ones), and what
/// it logged.
async fn chromium_loads(home: &std::path::Path, url: String) -> Result<(String, String)> {
    let home = home.to_owned();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(CHROMIUM)
            .env("HOME", &home)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                &format!("--host-resolver-rules=MAP {HOST} 127.0.0.1"),
                "--dump-dom",
                &url,
            ])
            .output()
    })
    .await?
    .context("cannot run Chromium")?;
    Ok((
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

/// A Chromium profile in `home` that trusts `ca` for websites, as an
/// official's workstation does once the operator installed the web CA
/// (docs/OPERATIONS.md §11).
fn trust_in_chromium(home: &std::path::Path, ca: &Certificate) -> Result<()> {
    let db = home.join(".pki/nssdb");
    std::fs::create_dir_all(&db)?;
    let ca_file = home.join("web-ca.pem");
    std::fs::write(&ca_file, ca.to_pem())?;
    let db_arg = format!("sql:{}", db.display());
    let run = |args: &[&str]| -> Result<()> {
        let out = std::process::Command::new("certutil")
            .args(args)
            .output()
            .context("cannot run certutil (Debian package libnss3-tools)")?;
        ensure!(
            out.status.success(),
            "certutil {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    };
    run(&["-d", &db_arg, "-N", "--empty-password"])?;
    let ca_path = ca_file.display().to_string();
    run(&[
        "-d",
        &db_arg,
        "-A",
        "-t",
        "C,,",
        "-n",
        "imi web CA FI",
        "-i",
        &ca_path,
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_that_trusts_the_web_ca_opens_the_ui_over_https_and_one_that_does_not_refuses_it()
-> Result<()> {
    common::logs();
    let Served {
        net,
        ui,
        web_ca,
        _files,
    } = finnish_ui_over_https().await?;
    let url = format!("https://{}/sign-in", authority(ui.address()));

    let official = tempfile::tempdir()?;
    trust_in_chromium(official.path(), web_ca.certificate())?;
    let (page, log) = chromium_loads(official.path(), url.clone()).await?;
    assert!(
        page.contains("name=\"password\""),
        "the sign-in page did not open: {page}\n{log}"
    );

    let stranger = tempfile::tempdir()?;
    let (page, log) = chromium_loads(stranger.path(), url).await?;
    assert!(!page.contains("name=\"password\""), "{page}");
    assert!(log.contains("ERR_CERT_AUTHORITY_INVALID"), "{log}");

    ui.stop().await;
    drop(net);
    Ok(())
}
