//! The replicated directory over real loopback links: concurrent edits
//! converge, a node that was away catches up, a node cannot write another
//! country's entries nor replay an old state, and the documents are plain
//! Automerge.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use automerge::sync::{ChunkList, Message, MessageVersion};
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ReadDoc, Value};
use common::WAIT;
use imi_node::cases::CaseState;
use imi_node::delivery::{self, Direction};
use imi_node::directory::{
    DirectoryChange, DocSync, Helpdesk, HelpdeskContact, PublishedAuthority, Register, SignedHeads,
    SyncBatch,
};
use imi_node::index::authority_search_id;
use imi_node::net::AppProtocol;
use imi_node::routes::RouteKey;
use imi_protocol::{
    AuthorityId, CaseAction, CaseId, Content, Country, Language, Party, Request, RequestAction,
    Role, Timestamp,
};
use imi_testnet::{Testnet, sample_authorities, wait_until};

/// Warnings of the directory, kept to check what was logged. With
/// `IMI_LOG` set, the logs it asks for are kept too and printed (shown when
/// a test fails), as the other multi-node tests print them.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let filter = match std::env::var("IMI_LOG") {
            Ok(more) => format!("imi_node::directory=info,{more}"),
            Err(_) => "imi_node::directory=info".to_owned(),
        };
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_ansi(false)
            .with_writer(move || Capture(writer.clone()))
            .try_init();
        buffer
    })
    .clone()
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if std::env::var_os("IMI_LOG").is_some() {
            eprint!("{}", String::from_utf8_lossy(buf));
        }
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logged(logs: &Mutex<Vec<u8>>, text: &str) -> bool {
    String::from_utf8_lossy(&logs.lock().unwrap()).contains(text)
}

fn names(entry: &PublishedAuthority) -> Vec<String> {
    entry.names.values().cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_edits_converge_and_a_returning_node_catches_up() -> anyhow::Result<()> {
    captured_logs();
    let mut net = Testnet::builder()
        .countries([Country::Fi, Country::Pt, Country::Fr, Country::Se])
        .nodes_of(Country::De, 2)
        .observer(true)
        .start()
        .await?;
    assert_eq!(net.nodes.len(), 7);
    net.wait_connected(WAIT).await?;
    let mut feed = net.node(Country::Fi).directory().subscribe();

    // Every country publishes at once; both German nodes write Germany's
    // document at the same time, one of them in the same entry as the other.
    let de1 = net.node_at("DE/de-1");
    let de2 = net.node_at("DE/de-2");
    let shared = sample_authorities(Country::De, de1.address(), 1).remove(0);
    de1.directory().upsert_authority(shared.clone()).await?;
    net.wait_converged(WAIT).await?;

    let mut renamed = shared.clone();
    renamed
        .names
        .insert(Language::De, "Landesprüfungsamt Berlin".into());
    let mut moved = shared.clone();
    moved.contact.city = Some("Potsdam".into());
    let edits = net.nodes.iter().map(|node| {
        let address = node.address().clone();
        let directory = node.directory().clone();
        let (renamed, moved) = (renamed.clone(), moved.clone());
        async move {
            match address.to_string().as_str() {
                "DE/de-1" => {
                    directory.upsert_authority(renamed).await?;
                    directory
                        .upsert_authorities(sample_authorities(Country::De, &address, 5))
                        .await
                }
                "DE/de-2" => {
                    directory.upsert_authority(moved).await?;
                    directory
                        .upsert_authorities(sample_authorities(Country::De, &address, 5))
                        .await
                }
                "EU/eu-1" => directory.set_catalogue_version("2026.11").await,
                _ => {
                    directory
                        .upsert_authorities(sample_authorities(address.country, &address, 10))
                        .await
                }
            }
        }
    });
    for result in futures::future::join_all(edits).await {
        result?;
    }
    net.wait_converged(WAIT).await?;

    // Every node holds the same directory: 4 countries × 10, 1 + 2 × 5 German.
    let reference = net.nodes[0].directory().authorities();
    assert_eq!(reference.len(), 4 * 10 + 11);
    for node in &net.nodes {
        assert_eq!(
            node.directory().authorities(),
            reference,
            "{}",
            node.address()
        );
        assert_eq!(
            node.directory().commission().catalogue_version.as_deref(),
            Some("2026.11")
        );
    }
    // The two concurrent edits of the same German entry both survive.
    let merged = de2.directory().authority(Country::De, shared.id).unwrap();
    assert_eq!(merged.names[&Language::De], "Landesprüfungsamt Berlin");
    assert_eq!(merged.contact.city.as_deref(), Some("Potsdam"));
    // Routing: the directory says which node serves each authority.
    let portuguese = net
        .node(Country::Pt)
        .directory()
        .authorities_of(Country::Pt);
    assert_eq!(
        net.node(Country::Fi)
            .directory()
            .node_of(Country::Pt, portuguese[0].id),
        Some(net.node(Country::Pt).address().clone())
    );
    // The Finnish node's feed announced the Portuguese entries.
    let mut announced = 0;
    while let Ok(change) = feed.try_recv() {
        if let DirectoryChange::AuthorityUpserted(entry) = change
            && entry.country == Country::Pt
        {
            announced += 1;
        }
    }
    assert_eq!(announced, 10);

    // Sweden goes away; meanwhile Portugal edits, Germany withdraws an
    // entry and publishes a register and its helpdesk.
    let stopped = net.stop(Country::Se).await?;
    let pt = net.node(Country::Pt);
    let mut changed = portuguese[0].clone();
    changed.names.insert(
        Language::Pt,
        "Ordem dos Médicos — Secção Regional do Sul".into(),
    );
    pt.directory().upsert_authority(changed.clone()).await?;
    let de1 = net.node_at("DE/de-1");
    assert!(de1.directory().remove_authority(shared.id).await?);
    let register = Register {
        id: "de-aerzteregister".into(),
        country: Country::De,
        names: [(Language::De, "Bundesarztregister".to_owned())].into(),
        url: "https://register.example.de/aerzte".into(),
        areas: ["professional-qualifications".parse()?].into(),
        professions: ["doctor".parse()?].into(),
        lookups: vec!["Approbation".into(), "Berufsverbot".into()],
        languages: [Language::De, Language::En].into(),
    };
    de1.directory().upsert_register(register.clone()).await?;
    let helpdesk = Helpdesk {
        contacts: vec![HelpdeskContact {
            name: "IMI-Koordinierungsstelle".into(),
            email: Some("imi@example.de".into()),
            phone: Some("+49 30 000000".into()),
            hours: Some("Mo–Fr 9–16 Uhr".into()),
            languages: [Language::De, Language::En].into(),
        }],
    };
    net.node_at("DE/de-2")
        .directory()
        .set_helpdesk(helpdesk.clone())
        .await?;
    net.wait_converged(WAIT).await?;
    assert_eq!(
        net.node(Country::Fi)
            .directory()
            .authority(Country::De, shared.id),
        None
    );

    // Sweden comes back and catches up.
    net.restart(stopped).await?;
    net.wait_connected(WAIT).await?;
    net.wait_converged(WAIT).await?;
    let se = net.node(Country::Se).directory();
    assert_eq!(se.authority(Country::Pt, changed.id), Some(changed));
    assert_eq!(se.authority(Country::De, shared.id), None);
    assert_eq!(se.registers_of(Country::De), vec![register]);
    assert_eq!(se.helpdesk(Country::De), Some(helpdesk));
    assert_eq!(se.authorities(), net.nodes[0].directory().authorities());
    assert_eq!(se.stats().refused_changes, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_node_gets_everything_and_a_restarted_node_keeps_it() -> anyhow::Result<()> {
    captured_logs();
    let mut net = Testnet::builder()
        .countries([Country::Fi, Country::Pt, Country::De])
        .start()
        .await?;
    net.wait_connected(WAIT).await?;
    for node in &net.nodes {
        let address = node.address().clone();
        node.directory()
            .upsert_authorities(sample_authorities(address.country, &address, 50))
            .await?;
    }
    net.wait_converged(WAIT).await?;

    // A new Portuguese node joins and receives the whole directory.
    net.add_node(Country::Pt).await?;
    net.wait_connected(WAIT).await?;
    net.wait_converged(WAIT).await?;
    let fresh = net.node_at("PT/pt-2").directory();
    assert_eq!(fresh.authority_count(), 150);
    assert_eq!(fresh.authorities(), net.nodes[0].directory().authorities());

    // Alone after a restart, a node still has the directory it stored.
    let fi = net.node(Country::Fi).address().clone();
    let mut fi_stopped = None;
    let running: Vec<_> = net.nodes.iter().map(|n| n.address().clone()).collect();
    for address in running {
        let stopped = net.stop_node(&address).await?;
        if address == fi {
            fi_stopped = Some(stopped);
        }
    }
    net.restart(fi_stopped.unwrap()).await?;
    let alone = net.node(Country::Fi).directory();
    assert_eq!(alone.authority_count(), 150);
    assert_eq!(alone.authorities_of(Country::De).len(), 50);
    Ok(())
}

/// Sends `batch` from `from` to the node `to` over the real sync protocol.
async fn send(
    net: &Testnet,
    from: Country,
    to: &str,
    batch: &SyncBatch,
) -> anyhow::Result<SyncBatch> {
    let answer = net
        .node(from)
        .net()
        .request(AppProtocol::Sync, to, batch.encode())
        .await?;
    Ok(SyncBatch::decode(&answer)?)
}

/// A change to Portugal's document made on Finland's copy of it: the name
/// of `target` rewritten. Returns the message carrying it and its heads.
fn forged_change(
    net: &Testnet,
    target: &PublishedAuthority,
) -> anyhow::Result<(Vec<u8>, Vec<automerge::ChangeHash>)> {
    let mut doc = AutoCommit::load(&net.node(Country::Fi).directory().save_document(Country::Pt))?;
    let before = doc.get_heads();
    let (_, authorities) = doc.get(automerge::ROOT, "authorities")?.unwrap();
    let (_, entry) = doc.get(&authorities, target.id.to_string())?.unwrap();
    doc.put(&entry, "names", r#"{"pt":"Autoridade falsa"}"#)?;
    let heads = doc.get_heads();
    let changes: Vec<Vec<u8>> = doc
        .get_changes(&before)
        .iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect();
    let message = Message {
        heads: heads.clone(),
        need: vec![],
        have: vec![],
        changes: ChunkList::from(changes),
        flags: None,
        version: MessageVersion::V1,
    };
    Ok((message.encode(), heads))
}

fn batch_for(country: Country, signed: Vec<SignedHeads>, message: Option<Vec<u8>>) -> SyncBatch {
    let mut batch = SyncBatch::new();
    batch.docs.push(DocSync {
        country,
        known: vec![],
        signed,
        message,
    });
    batch
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cannot_write_another_countrys_entries_nor_replay_an_old_state() -> anyhow::Result<()>
{
    let logs = captured_logs();
    let net = Testnet::builder()
        .countries([Country::Fi, Country::Pt, Country::De, Country::Se])
        .start()
        .await?;
    net.wait_connected(WAIT).await?;
    let pt = net.node(Country::Pt);
    let address = pt.address().clone();
    pt.directory()
        .upsert_authorities(sample_authorities(Country::Pt, &address, 3))
        .await?;
    net.wait_converged(WAIT).await?;
    let target = pt.directory().authorities_of(Country::Pt).remove(0);
    let genuine_names = names(&target);
    let old_signed = net.node(Country::Fi).directory().signed_heads(Country::Pt);
    assert_eq!(old_signed.len(), 1, "one Portuguese signer so far");
    let de = net.node(Country::De).directory();
    let se = net.node(Country::Se).directory();

    // 1. Finland writes into Portugal's document and signs the result with
    //    its own (certified, Finnish) key.
    let fi_dir = net
        .federation
        .nodes
        .iter()
        .find(|d| d.address.country == Country::Fi)
        .unwrap();
    let fi_key = ed25519_dalek::SigningKey::from_bytes(&fi_dir.key.secret_seed());
    let (message, heads) = forged_change(&net, &target)?;
    let forged_signature = SignedHeads::sign(Country::Pt, &heads, u64::MAX / 2, &fi_key, vec![]);
    send(
        &net,
        Country::Fi,
        "DE/de-1",
        &batch_for(Country::Pt, vec![forged_signature], Some(message)),
    )
    .await?;
    assert!(de.stats().refused_signatures >= 1);
    assert!(de.stats().refused_changes >= 1);

    // 2. The same change with no signature at all (to Sweden), and with
    //    Portugal's genuine signed heads, which do not cover it (to
    //    Portugal itself).
    let (message, _) = forged_change(&net, &target)?;
    send(
        &net,
        Country::Fi,
        "SE/se-1",
        &batch_for(Country::Pt, vec![], Some(message.clone())),
    )
    .await?;
    send(
        &net,
        Country::Fi,
        "PT/pt-1",
        &batch_for(Country::Pt, old_signed.clone(), Some(message)),
    )
    .await?;
    assert!(se.stats().refused_changes >= 1);
    assert!(pt.directory().stats().refused_changes >= 1);
    for node in &net.nodes {
        assert_eq!(
            names(&node.directory().authority(Country::Pt, target.id).unwrap()),
            genuine_names
        );
    }

    // 3. Portugal edits again; Finland replays Portugal's older signed
    //    state to Germany.
    let mut renamed = target.clone();
    renamed
        .names
        .insert(Language::Pt, "Ordem dos Enfermeiros".into());
    pt.directory().upsert_authority(renamed.clone()).await?;
    net.wait_converged(WAIT).await?;
    let newer = de.signed_heads(Country::Pt);
    assert!(newer[0].counter > old_signed[0].counter);
    send(
        &net,
        Country::Fi,
        "DE/de-1",
        &batch_for(Country::Pt, old_signed.clone(), None),
    )
    .await?;
    assert!(de.stats().stale_signatures >= 1);
    assert_eq!(
        de.signed_heads(Country::Pt),
        newer,
        "the newer state is kept"
    );
    assert_eq!(de.authority(Country::Pt, target.id), Some(renamed.clone()));

    // Every refusal was logged, and every node still converges on
    // Portugal's own entries.
    wait_until("the refusals to be logged", WAIT, || async {
        logged(
            &logs,
            "changes not signed by a node of the document's country refused",
        ) && logged(&logs, "replayed signed heads refused")
            && logged(&logs, "a node of another country")
    })
    .await?;
    net.wait_converged(WAIT).await?;
    for node in &net.nodes {
        assert_eq!(
            node.directory().authority(Country::Pt, target.id),
            Some(renamed.clone())
        );
        assert_eq!(
            node.directory().authorities_of(Country::Pt),
            pt.directory().authorities_of(Country::Pt)
        );
    }
    // A node refuses locally to publish another country's entries.
    let foreign = sample_authorities(Country::Pt, &address, 1).remove(0);
    assert!(
        net.node(Country::Fi)
            .directory()
            .upsert_authority(foreign)
            .await
            .is_err()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_document_is_plain_automerge() -> anyhow::Result<()> {
    captured_logs();
    let net = Testnet::builder()
        .countries([Country::Fi, Country::Pt])
        .start()
        .await?;
    net.wait_connected(WAIT).await?;
    let pt = net.node(Country::Pt);
    let address = pt.address().clone();
    let published = sample_authorities(Country::Pt, &address, 2);
    pt.directory().upsert_authorities(published.clone()).await?;
    net.wait_converged(WAIT).await?;

    // Finland's copy of Portugal's document, saved, loads in a standard
    // Automerge implementation and reads as plain maps and lists.
    let bytes = net.node(Country::Fi).directory().save_document(Country::Pt);
    let mut doc = AutoCommit::load(&bytes)?;
    assert_eq!(doc.get_heads(), pt.directory().heads(Country::Pt));
    let (Value::Object(ObjType::Map), authorities) =
        doc.get(automerge::ROOT, "authorities")?.unwrap()
    else {
        panic!("authorities is a map");
    };
    assert_eq!(doc.length(&authorities), 2);
    let (_, entry) = doc.get(&authorities, published[0].id.to_string())?.unwrap();
    let text = |key: &str| -> anyhow::Result<String> {
        let (value, _) = doc.get(&entry, key)?.unwrap();
        Ok(value.as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(text("node")?, "PT/pt-1");
    assert_eq!(text("id")?, published[0].id.to_string());
    // Composite fields are JSON text.
    let names: serde_json::Value = serde_json::from_str(&text("names")?)?;
    assert_eq!(names["pt"], published[0].names[&Language::Pt].as_str());
    let competences: serde_json::Value = serde_json::from_str(&text("competences")?)?;
    assert_eq!(
        competences[0]["area"],
        published[0].competences[0].area.as_str()
    );
    let languages: serde_json::Value = serde_json::from_str(&text("languages")?)?;
    assert_eq!(languages, serde_json::json!(["pt"]));
    // Saved again by that implementation, it loads to the same state.
    let mut again = AutoCommit::load(&doc.save())?;
    assert_eq!(again.get_heads(), doc.get_heads());
    Ok(())
}

/// The key of the node of `country` in `net` (its certificate binds it).
fn node_key(net: &Testnet, country: Country) -> ed25519_dalek::SigningKey {
    let dir = net
        .federation
        .nodes
        .iter()
        .find(|d| d.address.country == country)
        .unwrap();
    ed25519_dalek::SigningKey::from_bytes(&dir.key.secret_seed())
}

/// A change to `country`'s document, made on `from`'s copy of it, that adds
/// authority entries with raw fields no honest node would write. Returns
/// the sync message carrying it and the document's new heads.
fn raw_entries(
    net: &Testnet,
    from: Country,
    country: Country,
    entries: &[(AuthorityId, Vec<(&str, String)>)],
) -> anyhow::Result<(Vec<u8>, Vec<automerge::ChangeHash>)> {
    let mut doc = AutoCommit::load(&net.node(from).directory().save_document(country))?;
    let before = doc.get_heads();
    let (_, authorities) = doc.get(automerge::ROOT, "authorities")?.unwrap();
    for (id, fields) in entries {
        let entry = doc.put_object(&authorities, id.to_string(), ObjType::Map)?;
        doc.put(&entry, "id", id.to_string())?;
        for (key, value) in fields {
            doc.put(&entry, *key, value.as_str())?;
        }
    }
    let heads = doc.get_heads();
    let changes: Vec<Vec<u8>> = doc
        .get_changes(&before)
        .iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect();
    let message = Message {
        heads: heads.clone(),
        need: vec![],
        have: vec![],
        changes: ChunkList::from(changes),
        flags: None,
        version: MessageVersion::V1,
    };
    Ok((message.encode(), heads))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impostor_entry_cannot_capture_requests() -> anyhow::Result<()> {
    let logs = captured_logs();
    let net = Testnet::builder()
        .countries([Country::Fi, Country::Pt, Country::Es])
        .start()
        .await?;
    net.wait_connected(WAIT).await?;
    let (fi, pt, es) = (
        net.node(Country::Fi),
        net.node(Country::Pt),
        net.node(Country::Es),
    );

    // Portugal publishes its medical council.
    let ordem = sample_authorities(Country::Pt, pt.address(), 1).remove(0);
    pt.directory().upsert_authority(ordem.clone()).await?;
    net.wait_converged(WAIT).await?;

    // Spain, a certified node, publishes in its own document an entry with
    // the Ordem's id and name, served by itself…
    let impostor = PublishedAuthority {
        country: Country::Es,
        node: es.address().clone(),
        ..ordem.clone()
    };
    es.directory().upsert_authority(impostor.clone()).await?;
    // …and, signed with its own key, two entries no honest node writes: one
    // claiming to be a Portuguese authority served by Spain, one naming the
    // Portuguese node as its server.
    let common = |country: &str, node: &str| -> Vec<(&'static str, String)> {
        vec![
            ("country", country.to_owned()),
            ("node", node.to_owned()),
            ("names", json(&ordem.names)),
            ("competences", json(&ordem.competences)),
            ("contact", json(&ordem.contact)),
            ("languages", json(&ordem.languages)),
        ]
    };
    let claims_portugal = AuthorityId::new();
    let names_pt_node = AuthorityId::new();
    let (message, heads) = raw_entries(
        &net,
        Country::Es,
        Country::Es,
        &[
            (claims_portugal, common("PT", "ES/es-1")),
            (names_pt_node, common("ES", "PT/pt-1")),
        ],
    )?;
    let held = es.directory().signed_heads(Country::Es).remove(0);
    let signed = SignedHeads::sign(
        Country::Es,
        &heads,
        held.counter + 1_000,
        &node_key(&net, Country::Es),
        held.chain,
    );
    send(
        &net,
        Country::Es,
        "FI/fi-1",
        &batch_for(Country::Es, vec![signed], Some(message)),
    )
    .await?;
    net.wait_converged(WAIT).await?;

    // Finland holds Spain's document as Spain wrote it, but reads the
    // Ordem only from Portugal's, and the entries that claim Portugal or its
    // node not at all. Each refusal is logged with its reason.
    let directory = fi.directory();
    assert_eq!(
        directory.authority(Country::Pt, ordem.id),
        Some(ordem.clone())
    );
    assert_eq!(
        directory.node_of(Country::Pt, ordem.id),
        Some(pt.address().clone())
    );
    assert_eq!(directory.authority(Country::Es, ordem.id), Some(impostor));
    for id in [claims_portugal, names_pt_node] {
        assert_eq!(directory.authority(Country::Es, id), None);
        assert_eq!(directory.authority(Country::Pt, id), None);
    }
    wait_until(
        "the refusals to be logged with their reasons",
        WAIT,
        || async {
            logged(&logs, "it claims to be an authority of PT")
                && logged(&logs, "it names PT/pt-1, a node of another country")
                && logged(&logs, "directory entry refused as PT's authority")
        },
    )
    .await?;
    // Its routes and its search keep the two authorities apart.
    let ordem_party = Party {
        authority: ordem.id,
        country: Country::Pt,
    };
    wait_until("the routes of both entries", WAIT, || async {
        fi.route(RouteKey::Authority(Party {
            country: Country::Es,
            ..ordem_party
        }))
        .unwrap()
        .is_some()
    })
    .await?;
    assert_eq!(
        fi.route(RouteKey::Authority(ordem_party))?,
        Some(pt.address().clone())
    );
    let name = ordem.names.values().next().unwrap().clone();
    let both = imi_search::Filters {
        countries: vec![Country::Pt, Country::Es],
        ..imi_search::Filters::default()
    };
    wait_until("both entries to be searchable", WAIT, || async {
        let query = imi_search::Query::new(&name, Language::Pt).with_filters(both.clone());
        let hits = fi.search().search(query).await.unwrap().hits;
        let ids: Vec<&str> = hits.iter().map(|h| h.id.as_str()).collect();
        ids.contains(&authority_search_id(Country::Pt, ordem.id).as_str())
            && ids.contains(&authority_search_id(Country::Es, ordem.id).as_str())
    })
    .await?;

    // A Finnish official sends the Ordem a request: it reaches Portugal,
    // and Spain gets nothing.
    let finn = common::official(Country::Fi, &[Role::RequestHandler]);
    fi.set_authority_route(Party::of(&finn), fi.address())
        .await?;
    let case = CaseId::new();
    let draft = Request::draft(
        case,
        &finn,
        "professional-qualifications",
        ordem_party,
        Timestamp::from_millis(0),
    )?;
    fi.create(CaseState::Request(draft), finn.clone()).await?;
    fi.act(
        case,
        finn,
        CaseAction::Request(RequestAction::Send {
            reply_by: common::in_days(14),
        }),
        Content::default(),
    )
    .await?;
    wait_until("the request to reach Portugal", WAIT, || async {
        common::status(pt, case).as_deref() == Some("sent")
    })
    .await?;
    let sent = delivery::case_messages(fi.store(), case)?;
    assert!(!sent.is_empty());
    for message in &sent {
        assert_eq!(message.direction, Direction::Outbound);
        assert_eq!(&message.peer, pt.address());
    }
    assert!(es.case(case)?.is_none());
    assert!(delivery::case_messages(es.store(), case)?.is_empty());
    Ok(())
}

/// JSON text of a directory field, as the documents hold it.
fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap()
}
