//! The directory's core without a network: documents syncing through
//! generated and received messages, the ownership checks, persistence.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use automerge::{ChangeHash, ReadDoc};
use ed25519_dalek::SigningKey;
use imi_certs::{
    CertChain, CertificateRequest, NationalCa, NodeKey, RevocationParams, Revoked, RootCa, Serial,
    Validity,
};
use imi_protocol::{Country, Language, NodeAddress};

use super::document::{CountryDoc, PersistOp};
use super::model::{self, PublishedAuthority};
use super::signed::{SignatureRefused, SignedHeads, Trust};
use super::{Stats, persist};
use crate::admission::CertAdmission;
use crate::net::Admission;

struct Pki {
    root: RootCa,
    nationals: BTreeMap<Country, NationalCa>,
}

struct TestNode {
    address: NodeAddress,
    key: SigningKey,
    chain: Vec<Vec<u8>>,
    serial: Serial,
    admission: Arc<CertAdmission>,
    trust: Trust,
    stats: Stats,
}

impl Pki {
    fn new(countries: &[Country]) -> Pki {
        let root = RootCa::generate("test root", Validity::days_from_now(60)).unwrap();
        let nationals = countries
            .iter()
            .map(|c| {
                (
                    *c,
                    root.issue_national_ca(*c, Validity::days_from_now(30))
                        .unwrap(),
                )
            })
            .collect();
        Pki { root, nationals }
    }

    fn node(&self, address: &str) -> TestNode {
        let address: NodeAddress = address.parse().unwrap();
        let national = &self.nationals[&address.country];
        let key = NodeKey::generate();
        let request = CertificateRequest::new(
            &key,
            address.country,
            &address.node.to_string().parse().unwrap(),
        )
        .unwrap();
        let cert = national
            .issue_node(&request, Validity::days_from_now(10))
            .unwrap();
        let serial = cert.serial().clone();
        let chain = CertChain::national(cert, national.certificate().clone());
        let admission = Arc::new(
            CertAdmission::new(self.root.trusted_root(), chain.clone(), vec![], None).unwrap(),
        );
        let trust = Trust::new(self.root.trusted_root(), admission.clone());
        TestNode {
            address,
            key: SigningKey::from_bytes(&key.secret_seed()),
            chain: chain.to_der_list(),
            serial,
            admission,
            trust,
            stats: Stats::default(),
        }
    }
}

fn empty(country: Country) -> CountryDoc {
    CountryDoc::restore(country, &[], 0, vec![]).unwrap()
}

fn entry(node: &TestNode, name: &str) -> PublishedAuthority {
    PublishedAuthority {
        id: imi_protocol::AuthorityId::new(),
        country: node.address.country,
        names: [(Language::Pt, name.to_owned())].into(),
        competences: vec![],
        contact: Default::default(),
        languages: [Language::Pt].into(),
        node: node.address.clone(),
    }
}

fn publish(doc: &mut CountryDoc, node: &TestNode, entry: &PublishedAuthority) -> Vec<PersistOp> {
    let mut ops = Vec::new();
    let entry = entry.clone();
    doc.edit(
        move |tx| {
            let authorities = model::root_map(tx, model::AUTHORITIES).unwrap();
            model::write_authority(tx, &authorities, &entry)
        },
        &node.key,
        &node.chain,
        &mut ops,
    )
    .unwrap()
    .expect("the edit changes the document");
    ops
}

/// Runs the sync protocol between two copies until neither has more to
/// say, or a round repeats the last one (as a session ends then).
fn sync(a: &mut CountryDoc, a_node: &TestNode, b: &mut CountryDoc, b_node: &TestNode) {
    let a_name = a_node.address.to_string();
    let b_name = b_node.address.to_string();
    let mut last = None;
    for _ in 0..20 {
        let to_b = a.generate(&b_name, 1);
        let round = postcard::to_stdvec(&to_b).unwrap();
        if to_b.is_none() || last.as_ref() == Some(&round) {
            return;
        }
        last = Some(round);
        if let Some(message) = to_b {
            b.receive(
                &a_name,
                1,
                message,
                &b_node.trust,
                &b_node.stats,
                &mut vec![],
            );
        }
        if let Some(message) = b.generate(&a_name, 1) {
            a.receive(
                &b_name,
                1,
                message,
                &a_node.trust,
                &a_node.stats,
                &mut vec![],
            );
        }
    }
    panic!("the sync did not settle");
}

#[test]
fn an_edit_reaches_a_node_that_never_met_its_signer() {
    let pki = Pki::new(&[Country::Pt, Country::Fi, Country::Se]);
    let pt = pki.node("PT/pt-1");
    let fi = pki.node("FI/fi-1");
    let se = pki.node("SE/se-1");
    let mut at_pt = empty(Country::Pt);
    let mut at_fi = empty(Country::Pt);
    let mut at_se = empty(Country::Pt);
    let published = entry(&pt, "Ordem dos Médicos");
    publish(&mut at_pt, &pt, &published);
    // PT → FI → SE: Sweden checks Portugal's signature by its chain.
    sync(&mut at_pt, &pt, &mut at_fi, &fi);
    sync(&mut at_fi, &fi, &mut at_se, &se);
    assert_eq!(at_se.heads(), at_pt.heads());
    assert_eq!(
        at_se.read_view().authorities.get(&published.id),
        Some(&published)
    );
    assert_eq!(
        se.stats
            .refused_changes
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[test]
fn changes_a_foreign_node_makes_are_refused_even_relayed() {
    let pki = Pki::new(&[Country::Pt, Country::Fi, Country::Se]);
    let pt = pki.node("PT/pt-1");
    let fi = pki.node("FI/fi-1");
    let se = pki.node("SE/se-1");
    let mut at_pt = empty(Country::Pt);
    let mut at_fi = empty(Country::Pt);
    let mut at_se = empty(Country::Pt);
    publish(&mut at_pt, &pt, &entry(&pt, "Ordem dos Médicos"));
    sync(&mut at_pt, &pt, &mut at_fi, &fi);
    // Finland writes into its copy of Portugal's document and signs it.
    let forged = entry(&pt, "Autoridade falsa");
    publish(&mut at_fi, &fi, &forged);
    sync(&mut at_fi, &fi, &mut at_se, &se);
    assert!(
        se.stats
            .refused_changes
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
    assert!(
        se.stats
            .refused_signatures
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
    assert_eq!(at_se.heads(), at_pt.heads());
    assert_eq!(at_se.read_view().authorities.get(&forged.id), None);
    // Portugal itself refuses it too.
    sync(&mut at_fi, &fi, &mut at_pt, &pt);
    assert_eq!(at_pt.read_view().authorities.get(&forged.id), None);
}

#[test]
fn two_nodes_of_a_country_write_its_document_concurrently() {
    let pki = Pki::new(&[Country::De, Country::Fi]);
    let de1 = pki.node("DE/de-1");
    let de2 = pki.node("DE/de-2");
    let fi = pki.node("FI/fi-1");
    let mut at_de1 = empty(Country::De);
    let mut at_de2 = empty(Country::De);
    let mut at_fi = empty(Country::De);
    let one = entry(&de1, "Ärztekammer Berlin");
    let two = entry(&de2, "Ärztekammer Hamburg");
    publish(&mut at_de1, &de1, &one);
    publish(&mut at_de2, &de2, &two);
    // Finland hears from each of them separately.
    sync(&mut at_de1, &de1, &mut at_fi, &fi);
    sync(&mut at_de2, &de2, &mut at_fi, &fi);
    sync(&mut at_de1, &de1, &mut at_de2, &de2);
    assert_eq!(at_fi.heads(), at_de1.heads());
    assert_eq!(at_de2.heads(), at_de1.heads());
    assert_eq!(at_fi.read_view().authorities.len(), 2);
    assert_eq!(at_fi.signatures().len(), 2);
}

#[test]
fn an_older_signed_state_is_refused_as_stale() {
    let pki = Pki::new(&[Country::Pt]);
    let pt = pki.node("PT/pt-1");
    let mut doc = empty(Country::Pt);
    publish(&mut doc, &pt, &entry(&pt, "Primeira"));
    let old = doc.signatures().remove(0);
    publish(&mut doc, &pt, &entry(&pt, "Segunda"));
    let new = doc.signatures().remove(0);
    assert!(new.counter > old.counter);
    let mut copy = empty(Country::Pt);
    let mut sync = super::DocSync {
        country: Country::Pt,
        known: vec![],
        signed: vec![new.clone()],
        message: None,
    };
    copy.receive(
        "PT/pt-1",
        1,
        sync.clone(),
        &pt.trust,
        &pt.stats,
        &mut vec![],
    );
    sync.signed = vec![old];
    copy.receive("FI/fi-1", 1, sync, &pt.trust, &pt.stats, &mut vec![]);
    assert_eq!(
        pt.stats
            .stale_signatures
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(copy.signatures(), vec![new]);
}

#[test]
fn a_signer_of_another_country_or_revoked_is_refused() {
    let pki = Pki::new(&[Country::Pt, Country::Fi]);
    let pt = pki.node("PT/pt-1");
    let fi = pki.node("FI/fi-1");
    let heads = model::genesis(Country::Pt).get_heads();
    let by_fi = SignedHeads::sign(Country::Pt, &heads, 1, &fi.key, fi.chain.clone());
    assert!(matches!(
        pt.trust.check(&by_fi),
        Err(SignatureRefused::WrongCountry { .. })
    ));
    let mut forged_chain = SignedHeads::sign(Country::Pt, &heads, 1, &fi.key, pt.chain.clone());
    forged_chain.chain = pt.chain.clone();
    assert!(matches!(
        fi.trust.check(&forged_chain),
        Err(SignatureRefused::Uncertified(_))
    ));
    let by_pt = SignedHeads::sign(Country::Pt, &heads, 1, &pt.key, pt.chain.clone());
    assert_eq!(fi.trust.check(&by_pt).unwrap(), pt.address);
    // Portugal revokes its node; Finland's admission layer learns it, and
    // the node's signatures are refused from then on.
    let now = SystemTime::now();
    let list = pki.nationals[&Country::Pt]
        .revocation_list(&RevocationParams {
            number: 1,
            this_update: now,
            next_update: now + Duration::from_secs(3600),
            revoked: vec![Revoked {
                serial: pt.serial.clone(),
                revoked_at: now,
            }],
        })
        .unwrap();
    assert!(
        fi.admission
            .add_revocation_list(Some(pki.nationals[&Country::Pt].certificate()), list)
            .unwrap()
    );
    assert!(!fi.admission.revocations().is_empty());
    assert!(matches!(
        fi.trust.check(&by_pt),
        Err(SignatureRefused::Uncertified(_))
    ));
}

#[test]
fn garbage_from_a_peer_changes_nothing() {
    let pki = Pki::new(&[Country::Pt]);
    let pt = pki.node("PT/pt-1");
    let mut doc = empty(Country::Pt);
    let before = doc.heads();
    for message in [vec![], vec![0x42], b"\x42\x01garbage".to_vec(), {
        let mut bad = automerge::sync::Message {
            heads: vec![automerge::ChangeHash([9; 32])],
            need: vec![],
            have: vec![],
            changes: automerge::sync::ChunkList::from(vec![b"\x85\x6f\x4a\x83junk".to_vec()]),
            flags: None,
            version: automerge::sync::MessageVersion::V1,
        };
        bad.heads.sort();
        bad.encode()
    }] {
        let sync = super::DocSync {
            country: Country::Pt,
            known: vec![],
            signed: vec![],
            message: Some(message),
        };
        doc.receive("FI/fi-1", 1, sync, &pt.trust, &pt.stats, &mut vec![]);
    }
    assert_eq!(doc.heads(), before);
    assert!(
        pt.stats
            .malformed
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 3
    );
}

#[tokio::test]
async fn a_document_and_its_signatures_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::Store::open(&dir.path().join("store.redb")).unwrap();
    store.write(persist::create_tables).await.unwrap();
    let pki = Pki::new(&[Country::Pt]);
    let pt = pki.node("PT/pt-1");
    let mut doc = empty(Country::Pt);
    // Enough edits to go through incremental saves and a whole save.
    for i in 0..40 {
        let ops = publish(&mut doc, &pt, &entry(&pt, &format!("Autoridade {i}")));
        persist::write(&store, ops).await.unwrap();
    }
    let restored = persist::load(&store, Country::Pt).unwrap();
    assert_eq!(restored.heads(), doc.heads());
    assert_eq!(restored.signatures(), doc.signatures());
    assert_eq!(restored.read_view().authorities.len(), 40);
    // What is saved is the standard format.
    let loaded = automerge::AutoCommit::load(&restored.doc().save()).unwrap();
    assert_eq!(
        loaded.length(model::root_map(&loaded, model::AUTHORITIES).unwrap()),
        40
    );
    let (country, _) = loaded.get(automerge::ROOT, "country").unwrap().unwrap();
    assert_eq!(country.as_str(), Some("PT"));
}

#[test]
fn an_honest_relay_of_an_older_signed_state_is_taken_not_quarantined() {
    let pki = Pki::new(&[Country::Pt, Country::Fi, Country::Se]);
    let pt = pki.node("PT/pt-1");
    let fi = pki.node("FI/fi-1");
    let se = pki.node("SE/se-1");
    let mut at_pt = empty(Country::Pt);
    let mut at_fi = empty(Country::Pt);
    let mut at_se = empty(Country::Pt);
    let first = entry(&pt, "Primeira");
    publish(&mut at_pt, &pt, &first);
    sync(&mut at_pt, &pt, &mut at_fi, &fi);
    // Portugal moves on; Sweden hears of the newer signed heads first.
    publish(&mut at_pt, &pt, &entry(&pt, "Segunda"));
    let newer = at_pt.signatures();
    at_se.receive(
        "PT/pt-1",
        1,
        super::DocSync {
            country: Country::Pt,
            known: vec![],
            signed: newer,
            message: None,
        },
        &se.trust,
        &se.stats,
        &mut vec![],
    );
    // Finland relays the older state it holds, signed by Portugal.
    sync(&mut at_fi, &fi, &mut at_se, &se);
    let refused = se
        .stats
        .refused_changes
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(refused, 0, "the relayed changes were refused");
    assert_eq!(at_se.read_view().authorities.get(&first.id), Some(&first));
    // And Sweden goes on to the newer state with Portugal.
    sync(&mut at_pt, &pt, &mut at_se, &se);
    assert_eq!(at_se.heads(), at_pt.heads());
}

/// The changes of `doc` since genesis, as a sync message a relay would send.
fn relayed_changes(doc: &CountryDoc) -> Vec<u8> {
    let changes: Vec<Vec<u8>> = doc
        .doc()
        .get_changes(&[])
        .into_iter()
        .skip(1)
        .map(|c| c.raw_bytes().to_vec())
        .collect();
    automerge::sync::Message {
        heads: doc.heads(),
        need: vec![],
        have: vec![],
        changes: automerge::sync::ChunkList::from(changes),
        flags: None,
        version: automerge::sync::MessageVersion::V1,
    }
    .encode()
}

#[test]
fn a_change_that_arrives_before_its_signed_heads_is_held_not_quarantined() {
    let pki = Pki::new(&[Country::Pt, Country::Fi, Country::Se]);
    let pt = pki.node("PT/pt-1");
    let se = pki.node("SE/se-1");
    let mut at_pt = empty(Country::Pt);
    let mut at_se = empty(Country::Pt);
    let first = entry(&pt, "Primeira");
    publish(&mut at_pt, &pt, &first);
    let signed = at_pt.signatures();
    let held_by_relay: Vec<([u8; 32], u64)> =
        signed.iter().map(|s| (s.signer, s.counter)).collect();
    let refused = |node: &TestNode| {
        node.stats
            .refused_changes
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    // A relay passes Portugal's change on to Sweden; the signed heads that
    // cover it come in a later message.
    at_se.receive(
        "FI/fi-1",
        1,
        super::DocSync {
            country: Country::Pt,
            known: held_by_relay.clone(),
            signed: vec![],
            message: Some(relayed_changes(&at_pt)),
        },
        &se.trust,
        &se.stats,
        &mut vec![],
    );
    assert_eq!(refused(&se), 0, "the relay was treated as a forger");
    assert!(at_se.read_view().authorities.is_empty(), "applied unsigned");
    let received = at_se.receive(
        "FI/fi-1",
        1,
        super::DocSync {
            country: Country::Pt,
            known: held_by_relay,
            signed,
            message: None,
        },
        &se.trust,
        &se.stats,
        &mut vec![],
    );
    assert!(received.applied.is_some());
    assert_eq!(at_se.heads(), at_pt.heads());
    assert_eq!(at_se.read_view().authorities.get(&first.id), Some(&first));
    assert_eq!(refused(&se), 0);

    // Proof of forgery: a change no signature can vouch for (Sweden holds
    // every change of the signed heads it holds, and the sender claims no
    // newer ones) is refused.
    let fi = pki.node("FI/fi-1");
    let mut forged = empty(Country::Pt);
    sync(&mut at_pt, &pt, &mut forged, &fi);
    let mut rogue = entry(&pt, "Falsa");
    rogue.id = first.id;
    let mut ops = Vec::new();
    forged
        .edit(
            move |tx| {
                let authorities = model::root_map(tx, model::AUTHORITIES).unwrap();
                model::write_authority(tx, &authorities, &rogue)
            },
            &fi.key,
            &fi.chain,
            &mut ops,
        )
        .unwrap();
    at_se.receive(
        "FI/fi-1",
        2,
        super::DocSync {
            country: Country::Pt,
            known: vec![],
            signed: vec![],
            message: Some(relayed_changes(&forged)),
        },
        &se.trust,
        &se.stats,
        &mut vec![],
    );
    assert_eq!(refused(&se), 1);
    assert_eq!(at_se.read_view().authorities.get(&first.id), Some(&first));
}

/// `doc`'s message for a peer, with its bloom filter of the changes it has
/// replaced by one that also matches `also`: a false positive, as a bloom
/// filter gives for about one change in a hundred it does not hold.
fn with_false_positive(sync: super::DocSync, doc: &CountryDoc, also: ChangeHash) -> super::DocSync {
    let Some(bytes) = &sync.message else {
        return sync;
    };
    let mut message = automerge::sync::Message::decode(bytes).unwrap();
    for have in &mut message.have {
        let mut hashes: Vec<ChangeHash> = doc
            .doc()
            .get_changes(&have.last_sync)
            .iter()
            .map(|c| c.hash())
            .collect();
        hashes.push(also);
        have.bloom = automerge::sync::BloomFilter::from_hashes(hashes.iter());
    }
    super::DocSync {
        message: Some(message.encode()),
        ..sync
    }
}

#[test]
fn the_history_a_held_change_waits_for_is_asked_for_by_its_hash() {
    let pki = Pki::new(&[Country::Pt, Country::Se]);
    let pt = pki.node("PT/pt-1");
    let se = pki.node("SE/se-1");
    let mut at_pt = empty(Country::Pt);
    let mut at_se = empty(Country::Pt);
    let first = entry(&pt, "Primeira");
    let second = entry(&pt, "Segunda");
    publish(&mut at_pt, &pt, &first);
    let missing = at_pt.heads()[0];
    publish(&mut at_pt, &pt, &second);
    // Sweden's bloom filter happens to match Portugal's first change, which
    // it lacks: Portugal sends only the second, which Sweden holds back
    // until its history arrives. The history must be asked for by hash.
    for _ in 0..10 {
        if let Some(to_pt) = at_se.generate("PT/pt-1", 1) {
            let to_pt = with_false_positive(to_pt, &at_se, missing);
            at_pt.receive("SE/se-1", 1, to_pt, &pt.trust, &pt.stats, &mut vec![]);
        }
        if let Some(to_se) = at_pt.generate("SE/se-1", 1) {
            at_se.receive("PT/pt-1", 1, to_se, &se.trust, &se.stats, &mut vec![]);
        }
    }
    assert_eq!(
        at_se.heads(),
        at_pt.heads(),
        "the held change is still waiting"
    );
    let view = at_se.read_view();
    assert_eq!(view.authorities.get(&first.id), Some(&first));
    assert_eq!(view.authorities.get(&second.id), Some(&second));
}
