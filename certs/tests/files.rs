//! PEM files: permissions, round trips and errors that name the file.

#![cfg(unix)]

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{Federation, YEAR};
use imi_certs::{
    CertChain, Certificate, CertificateRequest, FileError, NationalCa, NodeKey, NodeName,
    RevocationList, RevocationParams, RootCa, TrustedRoot, Validity,
};
use imi_protocol::Country;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn key_files_are_owner_only_and_certificates_world_readable() {
    let dir = tempfile::tempdir().unwrap();
    let fed = Federation::new();
    let node = fed.node(&fed.fi, "helsinki-1");

    let key_path = dir.path().join("node.key");
    node.key.write_pem_file(&key_path).unwrap();
    assert_eq!(mode(&key_path), 0o600);
    let back = NodeKey::read_pem_file(&key_path).unwrap();
    assert_eq!(back.secret_seed(), node.key.secret_seed());

    let chain_path = dir.path().join("node-chain.pem");
    node.chain.write_pem_file(&chain_path).unwrap();
    assert_eq!(mode(&chain_path), 0o644);
    assert_eq!(CertChain::read_pem_file(&chain_path).unwrap(), node.chain);

    let root_cert = dir.path().join("root.pem");
    let root_key = dir.path().join("root.key");
    fed.root.write_pem_files(&root_cert, &root_key).unwrap();
    assert_eq!(mode(&root_key), 0o600);
    assert_eq!(mode(&root_cert), 0o644);

    // Overwriting a world-readable file with a key still leaves it owner-only.
    let loose = dir.path().join("loose.key");
    std::fs::write(&loose, "old").unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    node.key.write_pem_file(&loose).unwrap();
    assert_eq!(mode(&loose), 0o600);
}

#[test]
fn a_key_file_others_can_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.key");
    NodeKey::generate().write_pem_file(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = NodeKey::read_pem_file(&path).unwrap_err();
    assert!(matches!(err, FileError::KeyFileTooOpen { mode: 0o644, .. }));
    assert!(err.to_string().contains("node.key"), "{err}");
}

#[test]
fn errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing-root.pem");
    let err = TrustedRoot::read_pem_file(&missing).unwrap_err();
    assert!(matches!(err, FileError::Io { action: "read", .. }));
    assert!(err.to_string().contains("missing-root.pem"), "{err}");

    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    let err = Certificate::read_pem_file(&garbage).unwrap_err();
    assert!(matches!(err, FileError::Content { .. }));
    assert!(err.to_string().contains("garbage.pem"), "{err}");
    assert!(RevocationList::read_pem_file(&garbage).is_err());
    assert!(CertificateRequest::read_pem_file(&garbage).is_err());

    let key = dir.path().join("garbage.key");
    imi_certs::write_private_key_pem(&key, "not a key").unwrap();
    let err = NodeKey::read_pem_file(&key).unwrap_err();
    assert!(err.to_string().contains("garbage.key"), "{err}");
}

/// The CAs keep working after a trip through their files: what a
/// coordinator does between runs of `certs issue`.
#[test]
fn cas_loaded_from_files_issue_verifiable_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let fed = Federation::new();
    let p = |name: &str| dir.path().join(name);
    fed.root
        .write_pem_files(&p("root.pem"), &p("root.key"))
        .unwrap();
    fed.fi.write_pem_files(&p("fi.pem"), &p("fi.key")).unwrap();

    let root = RootCa::read_pem_files(&p("root.pem"), &p("root.key")).unwrap();
    let fi = NationalCa::read_pem_files(&p("fi.pem"), &p("fi.key")).unwrap();
    assert_eq!(fi.country(), Country::Fi);
    let pinned = TrustedRoot::read_pem_file(&p("root.pem")).unwrap();
    assert_eq!(pinned, fed.pinned);

    let key = NodeKey::generate();
    let request = key
        .certificate_request(Country::Fi, &NodeName::new("vantaa").unwrap())
        .unwrap();
    request.write_pem_file(&p("vantaa.csr")).unwrap();
    let request = CertificateRequest::read_pem_file(&p("vantaa.csr")).unwrap();
    let cert = fi
        .issue_node(&request, Validity::starting_at(fed.now, YEAR))
        .unwrap();
    let chain = CertChain::national(cert.clone(), fi.certificate().clone());
    let revocations = imi_certs::RevocationSet::new(&pinned);
    pinned
        .verify(&chain, &key.peer_id(), fed.now, &revocations)
        .unwrap();

    // A national CA issued by the reloaded root verifies as well.
    let pt = root
        .issue_national_ca(Country::Pt, Validity::starting_at(fed.now, YEAR))
        .unwrap();
    let pt_node = fed.node(&pt, "lisboa");
    pinned
        .verify(
            &pt_node.chain,
            &pt_node.key.peer_id(),
            fed.now,
            &revocations,
        )
        .unwrap();

    let list = fi
        .revocation_list(&RevocationParams {
            number: 1,
            this_update: fed.now,
            next_update: fed.now + common::DAY,
            revoked: vec![],
        })
        .unwrap();
    list.write_pem_file(&p("fi.crl")).unwrap();
    assert_eq!(RevocationList::read_pem_file(&p("fi.crl")).unwrap(), list);
}

#[test]
fn a_ca_key_must_match_its_certificate() {
    let fed = Federation::new();
    let err = NationalCa::from_pem(&fed.fi.certificate().to_pem(), &fed.de.key_pem()).unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    assert!(RootCa::from_pem(&fed.fi.certificate().to_pem(), &fed.fi.key_pem()).is_err());
    assert!(NationalCa::from_pem(&fed.root.certificate().to_pem(), &fed.root.key_pem()).is_err());
}
