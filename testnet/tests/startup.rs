//! A node whose credentials do not make a node the federation admits
//! refuses to start and says what to fix, instead of starting and being
//! refused silently by every peer.

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use common::*;
use imi_certs::{CertificateRequest, Validity};
use imi_protocol::Country;
use imi_testnet::{Pki, start_node};

/// Writes a Finnish node `fi-1`, lets `tamper` spoil it, and starts it.
async fn start_spoiled(pki: &Pki, dir: &Path, tamper: impl FnOnce(&Path)) -> String {
    pki.write_node_dir(dir, Country::Fi, "fi-1", vec![], vec![])
        .unwrap();
    tamper(dir);
    match start_node(&dir.join("imi-node.toml")).await {
        Ok(node) => {
            node.shutdown().await;
            panic!("the misconfigured node started");
        }
        Err(err) => format!("{err:#}"),
    }
}

fn edit_config(dir: &Path, from: &str, to: &str) {
    let path = dir.join("imi-node.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{text}");
    std::fs::write(&path, text.replace(from, to)).unwrap();
}

#[tokio::test]
async fn a_configuration_naming_another_country_refuses_to_start() {
    logs();
    let pki = Pki::generate(&[Country::Fi]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = start_spoiled(&pki, dir.path(), |dir| {
        edit_config(dir, "country = \"FI\"", "country = \"PT\"");
    })
    .await;
    assert!(err.contains("certificate is for FI/fi-1"), "{err}");
    assert!(err.contains("configuration says PT/fi-1"), "{err}");
}

#[tokio::test]
async fn a_configuration_naming_another_node_refuses_to_start() {
    logs();
    let pki = Pki::generate(&[Country::Fi]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = start_spoiled(&pki, dir.path(), |dir| {
        edit_config(dir, "name = \"fi-1\"", "name = \"fi-2\"");
    })
    .await;
    assert!(err.contains("configuration says FI/fi-2"), "{err}");
}

#[tokio::test]
async fn another_nodes_certificate_refuses_to_start() {
    logs();
    let pki = Pki::generate(&[Country::Fi]).unwrap();
    let other = tempfile::tempdir().unwrap();
    pki.write_node_dir(other.path(), Country::Fi, "fi-1", vec![], vec![])
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = start_spoiled(&pki, dir.path(), |dir| {
        std::fs::copy(
            other.path().join("certs/node.pem"),
            dir.join("certs/node.pem"),
        )
        .unwrap();
    })
    .await;
    assert!(err.contains("belongs to another node"), "{err}");
}

#[tokio::test]
async fn another_countrys_national_ca_refuses_to_start() {
    logs();
    let pki = Pki::generate(&[Country::Fi, Country::Pt]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = start_spoiled(&pki, dir.path(), |dir| {
        pki.nationals[&Country::Pt]
            .certificate()
            .write_pem_file(&dir.join("certs/national-ca.pem"))
            .unwrap();
    })
    .await;
    assert!(
        err.contains("own certificate chain does not verify"),
        "{err}"
    );
}

#[tokio::test]
async fn another_federations_root_refuses_to_start() {
    logs();
    let pki = Pki::generate(&[Country::Fi]).unwrap();
    let other = Pki::generate(&[Country::Fi]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = start_spoiled(&pki, dir.path(), |dir| {
        other
            .root
            .certificate()
            .write_pem_file(&dir.join("certs/root.pem"))
            .unwrap();
    })
    .await;
    assert!(
        err.contains("own certificate chain does not verify"),
        "{err}"
    );
}

#[tokio::test]
async fn an_expired_own_certificate_refuses_to_start() {
    logs();
    let pki = Pki::generate(&[Country::Fi]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = start_spoiled(&pki, dir.path(), |dir| {
        let key_pem = std::fs::read_to_string(dir.join("node-key.pem")).unwrap();
        let key = imi_certs::NodeKey::from_pkcs8_pem(&key_pem).unwrap();
        let request = CertificateRequest::new(&key, Country::Fi, &"fi-1".parse().unwrap()).unwrap();
        let day = Duration::from_secs(86_400);
        let now = SystemTime::now();
        pki.nationals[&Country::Fi]
            .issue_node(&request, Validity::new(now - 10 * day, now - day))
            .unwrap()
            .write_pem_file(&dir.join("certs/node.pem"))
            .unwrap();
    })
    .await;
    assert!(err.contains("expired at"), "{err}");
    assert!(err.contains("issue a new certificate"), "{err}");
}
