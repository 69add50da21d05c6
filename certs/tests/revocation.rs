//! Revocation lists: issuing, reading back, and what a revocation set accepts.

mod common;

use common::{DAY, Federation};
use imi_certs::{
    AcceptError, Accepted, Certificate, RevocationList, RevocationParams, Revoked, RevokedBy,
    Serial,
};
use imi_protocol::Country;

fn params(fed: &Federation, number: u64, revoked: &[&Certificate]) -> RevocationParams {
    RevocationParams {
        number,
        this_update: fed.now,
        next_update: fed.now + DAY,
        revoked: revoked
            .iter()
            .map(|cert| Revoked {
                serial: cert.serial().clone(),
                revoked_at: fed.now - DAY,
            })
            .collect(),
    }
}

fn whole_seconds(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[test]
fn list_reads_back_what_was_signed() {
    let fed = Federation::new();
    let a = fed.node(&fed.fi, "a");
    let b = fed.node(&fed.fi, "b");
    let list = fed
        .fi
        .revocation_list(&params(&fed, 7, &[&a.cert, &b.cert]))
        .unwrap();
    let back = RevocationList::from_pem(&list.to_pem()).unwrap();
    assert_eq!(back, list);
    assert_eq!(back.number(), 7);
    assert_eq!(whole_seconds(back.this_update()), whole_seconds(fed.now));
    assert_eq!(
        whole_seconds(back.next_update()),
        whole_seconds(fed.now + DAY)
    );
    let serials: Vec<&Serial> = back.revoked().iter().map(|r| &r.serial).collect();
    assert_eq!(serials, [a.cert.serial(), b.cert.serial()]);
    assert_eq!(
        whole_seconds(back.revoked()[0].revoked_at),
        whole_seconds(fed.now - DAY)
    );
    assert!(back.contains(a.cert.serial()));
    assert!(!back.contains(fed.node(&fed.fi, "c").cert.serial()));
}

#[test]
fn garbage_list_is_malformed() {
    assert!(RevocationList::from_pem("garbage").is_err());
    assert!(RevocationList::from_der(b"garbage".to_vec()).is_err());
    let fed = Federation::new();
    // A certificate is not a revocation list.
    assert!(RevocationList::from_der(fed.fi.certificate().der().to_vec()).is_err());
}

#[test]
fn newer_lists_replace_older_ones_and_replays_are_refused() {
    let fed = Federation::new();
    let node = fed.node(&fed.fi, "helsinki-1");
    let mut set = fed.revocations();
    let first = fed
        .fi
        .revocation_list(&params(&fed, 1, &[&node.cert]))
        .unwrap();
    let second = fed.fi.revocation_list(&params(&fed, 2, &[])).unwrap();
    let ca = fed.fi.certificate();

    assert_eq!(
        set.accept_national_list(second.clone(), ca),
        Ok(Accepted::New)
    );
    // Replaying list 1, which revoked the node, is refused and changes nothing.
    assert_eq!(
        set.accept_national_list(first, ca),
        Err(AcceptError::Replay {
            issuer: RevokedBy::NationalCa(Country::Fi),
            held: 2,
            offered: 1
        })
    );
    fed.pinned
        .verify(&node.chain, &node.key.peer_id(), fed.now, &set)
        .unwrap();

    assert_eq!(
        set.accept_national_list(second, ca),
        Ok(Accepted::AlreadyHeld)
    );
    let other_second = fed
        .fi
        .revocation_list(&params(&fed, 2, &[&node.cert]))
        .unwrap();
    assert!(matches!(
        set.accept_national_list(other_second, ca),
        Err(AcceptError::Conflict { number: 2, .. })
    ));
    let third = fed
        .fi
        .revocation_list(&params(&fed, 3, &[&node.cert]))
        .unwrap();
    assert_eq!(
        set.accept_national_list(third, ca),
        Ok(Accepted::Replaced { previous: 2 })
    );
    assert_eq!(set.len(), 1);
    assert!(
        fed.pinned
            .verify(&node.chain, &node.key.peer_id(), fed.now, &set)
            .is_err()
    );
}

#[test]
fn root_list_replay_is_refused() {
    let fed = Federation::new();
    let mut set = fed.revocations();
    let older = fed.root.revocation_list(&params(&fed, 4, &[])).unwrap();
    let newer = fed.root.revocation_list(&params(&fed, 5, &[])).unwrap();
    assert_eq!(set.accept_root_list(newer), Ok(Accepted::New));
    assert!(matches!(
        set.accept_root_list(older),
        Err(AcceptError::Replay {
            issuer: RevokedBy::Root,
            held: 5,
            offered: 4
        })
    ));
}

#[test]
fn list_signed_by_the_wrong_issuer_is_refused() {
    let fed = Federation::new();
    let node = fed.node(&fed.fi, "helsinki-1");
    let mut set = fed.revocations();

    // A root with the same name but another key.
    let other = Federation::named("imi federation root CA");
    let forged_root_list = other
        .root
        .revocation_list(&params(&fed, 9, &[fed.fi.certificate()]))
        .unwrap();
    assert_eq!(
        set.accept_root_list(forged_root_list),
        Err(AcceptError::BadSignature {
            issuer: RevokedBy::Root
        })
    );

    // Finland's list offered as Germany's.
    let fi_list = fed
        .fi
        .revocation_list(&params(&fed, 1, &[&node.cert]))
        .unwrap();
    assert_eq!(
        set.accept_national_list(fi_list.clone(), fed.de.certificate()),
        Err(AcceptError::WrongIssuer {
            expected: RevokedBy::NationalCa(Country::De)
        })
    );

    // A look-alike FI CA under another root, offered with its own certificate.
    let foreign_list = other
        .fi
        .revocation_list(&params(&fed, 1, &[&node.cert]))
        .unwrap();
    assert!(matches!(
        set.accept_national_list(foreign_list.clone(), other.fi.certificate()),
        Err(AcceptError::IssuerNotCertified { .. })
    ));
    // ... or offered as if it were the real FI CA's.
    assert_eq!(
        set.accept_national_list(foreign_list, fed.fi.certificate()),
        Err(AcceptError::BadSignature {
            issuer: RevokedBy::NationalCa(Country::Fi)
        })
    );

    // A node certificate cannot sign lists either.
    assert!(matches!(
        set.accept_national_list(fi_list, &node.cert),
        Err(AcceptError::IssuerNotCertified { .. })
    ));

    // Nothing was accepted: the node still verifies.
    assert!(set.is_empty());
    fed.pinned
        .verify(&node.chain, &node.key.peer_id(), fed.now, &set)
        .unwrap();
}

/// Every single-byte change to a signed list is refused: it no longer
/// parses or its signature no longer verifies.
#[test]
fn every_altered_byte_of_a_list_is_refused() {
    let fed = Federation::new();
    let node = fed.node(&fed.fi, "helsinki-1");
    let list = fed
        .fi
        .revocation_list(&params(&fed, 1, &[&node.cert]))
        .unwrap();
    for i in 0..list.der().len() {
        let mut altered = list.der().to_vec();
        altered[i] ^= 0x01;
        let mut set = fed.revocations();
        let accepted = RevocationList::from_der(altered)
            .ok()
            .map(|list| set.accept_national_list(list, fed.fi.certificate()));
        assert!(
            !matches!(accepted, Some(Ok(_))),
            "flipping byte {i} of the list was accepted"
        );
    }
}
