//! Verification of presented chains: what a node admits and what it refuses.

mod common;

use common::{DAY, Federation, Forgery, YEAR};
use imi_certs::{
    CertChain, Certificate, CertificateRole, IssueError, NodeKey, NodeName, RevocationParams,
    Revoked, RevokedBy, RootCa, Validity, VerifyError,
};
use imi_protocol::Country;

#[test]
fn national_node_chain_verifies() {
    let fed = Federation::new();
    let node = fed.node(&fed.fi, "helsinki-1");
    let verified = fed
        .pinned
        .verify(
            &node.chain,
            &node.key.peer_id(),
            fed.now,
            &fed.revocations(),
        )
        .unwrap();
    assert_eq!(verified.country, Country::Fi);
    assert_eq!(verified.node, "helsinki-1");
    assert_eq!(verified.peer_id, node.key.peer_id());
    assert_eq!(verified.public_key, node.key.public_key_bytes());
    assert_eq!(verified.not_after, node.cert.not_after());
}

#[test]
fn observer_chain_verifies() {
    let fed = Federation::new();
    let observer = fed.observer();
    let verified = fed
        .pinned
        .verify(
            &observer.chain,
            &observer.key.peer_id(),
            fed.now,
            &fed.revocations(),
        )
        .unwrap();
    assert_eq!(verified.country, Country::Eu);
    assert_eq!(verified.node, "observer");
    assert_eq!(verified.public_key, observer.key.public_key_bytes());
}

#[test]
fn chain_survives_pem_and_wire_round_trips() {
    let fed = Federation::new();
    let node = fed.node(&fed.de, "berlin");
    let peer = node.key.peer_id();
    let revocations = fed.revocations();
    let from_pem = CertChain::from_pem(&node.chain.to_pem()).unwrap();
    assert_eq!(from_pem, node.chain);
    let verified = fed
        .pinned
        .verify_der_list(&node.chain.to_der_list(), &peer, fed.now, &revocations)
        .unwrap();
    assert_eq!(verified.country, Country::De);
    fed.pinned
        .verify_pem(&node.chain.to_pem(), &peer, fed.now, &revocations)
        .unwrap();
}

#[test]
fn certificates_say_what_they_are() {
    let fed = Federation::new();
    let node = fed.node(&fed.fi, "oulu");
    assert_eq!(fed.root.certificate().role(), &CertificateRole::Root);
    assert_eq!(
        fed.fi.certificate().role(),
        &CertificateRole::NationalCa {
            country: Country::Fi
        }
    );
    assert_eq!(
        node.cert.role(),
        &CertificateRole::Node {
            country: Country::Fi,
            node: NodeName::new("oulu").unwrap(),
            peer_id: node.key.peer_id(),
        }
    );
}

#[test]
fn self_signed_node_certificate_has_an_unknown_issuer() {
    let fed = Federation::new();
    let key = NodeKey::generate();
    let cert = Forgery::node(&key, "FI", "rogue").self_signed(fed.now);
    for chain in [
        CertChain::observer(cert.clone()),
        CertChain::national(cert, fed.fi.certificate().clone()),
    ] {
        assert_eq!(
            fed.pinned
                .verify(&chain, &key.peer_id(), fed.now, &fed.revocations()),
            Err(VerifyError::UnknownIssuer)
        );
    }
}

#[test]
fn certificate_from_another_root_has_an_unknown_issuer() {
    let fed = Federation::new();
    // Same names, different keys: only the keys tell the roots apart.
    let other = Federation::named("imi federation root CA");
    let node = other.node(&other.fi, "helsinki-1");
    assert_eq!(
        fed.pinned.verify(
            &node.chain,
            &node.key.peer_id(),
            fed.now,
            &fed.revocations()
        ),
        Err(VerifyError::UnknownIssuer)
    );
    let observer = other.observer();
    assert_eq!(
        fed.pinned.verify(
            &observer.chain,
            &observer.key.peer_id(),
            fed.now,
            &fed.revocations()
        ),
        Err(VerifyError::UnknownIssuer)
    );
}

#[test]
fn node_certificate_with_its_issuer_signature_altered_is_refused() {
    let fed = Federation::new();
    let node = fed.node(&fed.fi, "helsinki-1");
    let mut der = node.cert.der().to_vec();
    let pos = der
        .windows(10)
        .position(|w| w == b"helsinki-1")
        .expect("the node name is in the certificate");
    der[pos + 9] = b'2';
    let tampered = Certificate::from_der(der).unwrap();
    let chain = CertChain::national(tampered, fed.fi.certificate().clone());
    assert_eq!(
        fed.pinned
            .verify(&chain, &node.key.peer_id(), fed.now, &fed.revocations()),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn certificate_of_another_peer_is_refused() {
    let fed = Federation::new();
    let node = fed.node(&fed.fi, "helsinki-1");
    let impostor = NodeKey::generate();
    assert_eq!(
        fed.pinned.verify(
            &node.chain,
            &impostor.peer_id(),
            fed.now,
            &fed.revocations()
        ),
        Err(VerifyError::PeerIdMismatch {
            certified: node.key.peer_id(),
            presented: impostor.peer_id(),
        })
    );
}

#[test]
fn expired_certificate_is_refused() {
    let fed = Federation::new();
    let node = fed.node(&fed.fi, "helsinki-1");
    let later = fed.now + 2 * YEAR;
    assert_eq!(
        fed.pinned
            .verify(&node.chain, &node.key.peer_id(), later, &fed.revocations()),
        Err(VerifyError::Expired {
            not_after: node.cert.not_after()
        })
    );

    // Issued with a validity period already over.
    let past = fed.node_valid(
        &fed.fi,
        "turku",
        Validity::new(fed.now - 10 * DAY, fed.now - DAY),
    );
    assert!(matches!(
        fed.pinned.verify(
            &past.chain,
            &past.key.peer_id(),
            fed.now,
            &fed.revocations()
        ),
        Err(VerifyError::Expired { .. })
    ));
}

#[test]
fn not_yet_valid_certificate_is_refused() {
    let fed = Federation::new();
    let future = fed.node_valid(
        &fed.fi,
        "tampere",
        Validity::new(fed.now + DAY, fed.now + 10 * DAY),
    );
    assert_eq!(
        fed.pinned.verify(
            &future.chain,
            &future.key.peer_id(),
            fed.now,
            &fed.revocations()
        ),
        Err(VerifyError::NotYetValid {
            not_before: future.cert.not_before()
        })
    );
    // The same certificate is fine once its time has come.
    fed.pinned
        .verify(
            &future.chain,
            &future.key.peer_id(),
            fed.now + 2 * DAY,
            &fed.revocations(),
        )
        .unwrap();
    // And an ordinary certificate is refused before it was issued.
    let node = fed.node(&fed.fi, "helsinki-1");
    assert!(matches!(
        fed.pinned.verify(
            &node.chain,
            &node.key.peer_id(),
            fed.now - 2 * DAY,
            &fed.revocations()
        ),
        Err(VerifyError::NotYetValid { .. })
    ));
}

fn list_params(
    now: std::time::SystemTime,
    number: u64,
    revoked: &[&Certificate],
) -> RevocationParams {
    RevocationParams {
        number,
        this_update: now,
        next_update: now + DAY,
        revoked: revoked
            .iter()
            .map(|cert| Revoked {
                serial: cert.serial().clone(),
                revoked_at: now,
            })
            .collect(),
    }
}

#[test]
fn node_revoked_by_its_national_ca_is_refused() {
    let fed = Federation::new();
    let revoked = fed.node(&fed.fi, "helsinki-1");
    let kept = fed.node(&fed.fi, "espoo");
    let mut revocations = fed.revocations();
    let list = fed
        .fi
        .revocation_list(&list_params(fed.now, 1, &[&revoked.cert]))
        .unwrap();
    revocations
        .accept_national_list(list, fed.fi.certificate())
        .unwrap();
    assert_eq!(
        fed.pinned.verify(
            &revoked.chain,
            &revoked.key.peer_id(),
            fed.now,
            &revocations
        ),
        Err(VerifyError::Revoked {
            serial: revoked.cert.serial().clone(),
            by: RevokedBy::NationalCa(Country::Fi),
        })
    );
    fed.pinned
        .verify(&kept.chain, &kept.key.peer_id(), fed.now, &revocations)
        .unwrap();
}

#[test]
fn node_under_a_revoked_national_ca_is_refused() {
    let fed = Federation::new();
    let finn = fed.node(&fed.fi, "helsinki-1");
    let german = fed.node(&fed.de, "berlin");
    let mut revocations = fed.revocations();
    let list = fed
        .root
        .revocation_list(&list_params(fed.now, 1, &[fed.fi.certificate()]))
        .unwrap();
    revocations.accept_root_list(list).unwrap();
    assert_eq!(
        fed.pinned
            .verify(&finn.chain, &finn.key.peer_id(), fed.now, &revocations),
        Err(VerifyError::Revoked {
            serial: fed.fi.certificate().serial().clone(),
            by: RevokedBy::Root,
        })
    );
    fed.pinned
        .verify(&german.chain, &german.key.peer_id(), fed.now, &revocations)
        .unwrap();
}

#[test]
fn observer_revoked_by_the_root_is_refused() {
    let fed = Federation::new();
    let observer = fed.observer();
    let mut revocations = fed.revocations();
    let list = fed
        .root
        .revocation_list(&list_params(fed.now, 1, &[&observer.cert]))
        .unwrap();
    revocations.accept_root_list(list).unwrap();
    assert!(matches!(
        fed.pinned.verify(
            &observer.chain,
            &observer.key.peer_id(),
            fed.now,
            &revocations
        ),
        Err(VerifyError::Revoked {
            by: RevokedBy::Root,
            ..
        })
    ));
}

#[test]
fn german_ca_cannot_certify_a_finnish_node() {
    let fed = Federation::new();
    let key = NodeKey::generate();

    // The CA itself refuses to issue it.
    let request = key
        .certificate_request(Country::Fi, &NodeName::new("helsinki-1").unwrap())
        .unwrap();
    assert_eq!(
        fed.de
            .issue_node(&request, Validity::starting_at(fed.now, YEAR)),
        Err(IssueError::WrongCountry {
            requested: Country::Fi,
            ca: Country::De
        })
    );

    // A misbehaving DE CA that signs one anyway is caught by verification.
    let forged = Forgery::node(&key, "FI", "helsinki-1").signed_by(
        fed.de.certificate(),
        &fed.de.key_pem(),
        fed.now,
    );
    let chain = CertChain::national(forged, fed.de.certificate().clone());
    assert_eq!(
        fed.pinned
            .verify(&chain, &key.peer_id(), fed.now, &fed.revocations()),
        Err(VerifyError::WrongCountry {
            node_country: Country::Fi,
            issuer_country: Country::De,
        })
    );
}

#[test]
fn root_certifies_only_the_observer() {
    let fed = Federation::new();
    let key = NodeKey::generate();
    let request = key
        .certificate_request(Country::Fi, &NodeName::new("helsinki-1").unwrap())
        .unwrap();
    assert_eq!(
        fed.root
            .issue_observer(&request, Validity::starting_at(fed.now, YEAR)),
        Err(IssueError::ObserverMustBeCommission {
            requested: Country::Fi
        })
    );
    assert_eq!(
        fed.root
            .issue_national_ca(Country::Eu, Validity::starting_at(fed.now, YEAR))
            .unwrap_err(),
        IssueError::NationalCaForCommission
    );

    // A Finnish node certificate signed by the root directly is refused.
    let forged = Forgery::node(&key, "FI", "helsinki-1").signed_by(
        fed.root.certificate(),
        &fed.root.key_pem(),
        fed.now,
    );
    assert_eq!(
        fed.pinned.verify(
            &CertChain::observer(forged),
            &key.peer_id(),
            fed.now,
            &fed.revocations()
        ),
        Err(VerifyError::WrongCountry {
            node_country: Country::Fi,
            issuer_country: Country::Eu,
        })
    );
}

#[test]
fn node_certificate_used_as_issuer_is_not_a_ca() {
    let fed = Federation::new();
    let issuer_node = fed.node(&fed.fi, "helsinki-1");
    let key = NodeKey::generate();
    let forged = Forgery::node(&key, "FI", "rogue").signed_by(
        &issuer_node.cert,
        &issuer_node.key.to_pkcs8_pem(),
        fed.now,
    );
    let chain = CertChain::national(forged, issuer_node.cert.clone());
    assert_eq!(
        fed.pinned
            .verify(&chain, &key.peer_id(), fed.now, &fed.revocations()),
        Err(VerifyError::NotACa)
    );
}

#[test]
fn garbage_is_malformed() {
    let fed = Federation::new();
    let revocations = fed.revocations();
    let peer = NodeKey::generate().peer_id();
    for text in [
        "garbage",
        "-----BEGIN CERTIFICATE-----\nZ2FyYmFnZQ==\n-----END CERTIFICATE-----\n",
        "-----BEGIN PRIVATE KEY-----\nZ2FyYmFnZQ==\n-----END PRIVATE KEY-----\n",
    ] {
        assert!(
            matches!(
                fed.pinned.verify_pem(text, &peer, fed.now, &revocations),
                Err(VerifyError::Malformed { .. })
            ),
            "{text}"
        );
    }
    assert!(matches!(
        fed.pinned
            .verify_der_list(&[b"garbage".to_vec()], &peer, fed.now, &revocations),
        Err(VerifyError::Malformed { .. })
    ));
    // Three certificates are not a federation chain.
    let node = fed.node(&fed.fi, "helsinki-1");
    let mut three = node.chain.to_der_list();
    three.push(fed.root.certificate().der().to_vec());
    assert!(matches!(
        fed.pinned
            .verify_der_list(&three, &node.key.peer_id(), fed.now, &revocations),
        Err(VerifyError::Malformed { .. })
    ));
}

#[test]
fn certificate_without_node_identity_is_malformed() {
    let fed = Federation::new();
    let key = NodeKey::generate();
    let mut forgery = Forgery::node(&key, "FI", "helsinki-1");
    forgery.with_node_names = false;
    let cert = forgery.signed_by(fed.fi.certificate(), &fed.fi.key_pem(), fed.now);
    let chain = CertChain::national(cert, fed.fi.certificate().clone());
    assert!(matches!(
        fed.pinned
            .verify(&chain, &key.peer_id(), fed.now, &fed.revocations()),
        Err(VerifyError::Malformed { what }) if what.contains("imi:node:")
    ));

    // A certified PeerId that is not the certified key's is refused too.
    let mut forgery = Forgery::node(&key, "FI", "helsinki-1");
    let other = NodeKey::generate();
    forgery.peer_id = other.peer_id();
    let cert = forgery.signed_by(fed.fi.certificate(), &fed.fi.key_pem(), fed.now);
    let chain = CertChain::national(cert, fed.fi.certificate().clone());
    assert!(matches!(
        fed.pinned
            .verify(&chain, &other.peer_id(), fed.now, &fed.revocations()),
        Err(VerifyError::Malformed { what }) if what.contains("does not belong to its public key")
    ));
}

#[test]
fn revocation_set_of_another_root_is_refused() {
    let fed = Federation::new();
    let other = Federation::new();
    let node = fed.node(&fed.fi, "helsinki-1");
    assert_eq!(
        fed.pinned.verify(
            &node.chain,
            &node.key.peer_id(),
            fed.now,
            &other.revocations()
        ),
        Err(VerifyError::ForeignRevocationSet)
    );
}

#[test]
fn issuing_checks_validity_periods() {
    let fed = Federation::new();
    let key = NodeKey::generate();
    let request = key
        .certificate_request(Country::Fi, &NodeName::new("helsinki-1").unwrap())
        .unwrap();
    assert!(matches!(
        fed.fi
            .issue_node(&request, Validity::starting_at(fed.now, 20 * YEAR)),
        Err(IssueError::OutlivesIssuer { issuer_not_after }) if issuer_not_after == fed.fi.certificate().not_after()
    ));
    assert_eq!(
        fed.fi
            .issue_node(&request, Validity::new(fed.now, fed.now - DAY)),
        Err(IssueError::EmptyValidity)
    );
    assert!(RootCa::generate("x", Validity::new(fed.now, fed.now)).is_err());
}

/// Every single-byte change to a node or national CA certificate is
/// refused, and none makes verification panic.
#[test]
fn every_altered_byte_is_refused() {
    let fed = Federation::new();
    let node = fed.node(&fed.fi, "helsinki-1");
    let peer = node.key.peer_id();
    let revocations = fed.revocations();
    let ca_der = fed.fi.certificate().der().to_vec();
    let node_der = node.cert.der().to_vec();
    for (which, original) in [(0, &node_der), (1, &ca_der)] {
        for i in 0..original.len() {
            let mut altered = original.clone();
            altered[i] ^= 0x01;
            let list = if which == 0 {
                vec![altered, ca_der.clone()]
            } else {
                vec![node_der.clone(), altered]
            };
            assert!(
                fed.pinned
                    .verify_der_list(&list, &peer, fed.now, &revocations)
                    .is_err(),
                "flipping byte {i} of certificate {which} was accepted"
            );
        }
    }
}
