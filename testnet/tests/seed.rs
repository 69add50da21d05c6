//! The seed scenario end to end: a Finnish official searches in Finnish,
//! finds the Portuguese authority that the Portuguese node published in the
//! replicated directory, and sends it a request routed by that directory.

mod common;

use std::collections::BTreeSet;

use common::*;
use imi_node::cases::CaseState;
use imi_node::directory::PublishedAuthority;
use imi_node::index::authority_search_id;
use imi_protocol::{
    AuthorityId, AuthorityStatus, CaseAction, CaseId, Competence, Contact, Content, Country,
    Language, Request, RequestAction, Role, Timestamp,
};
use imi_testnet::{Testnet, wait_until};

/// A Finnish and a Portuguese node, connected.
async fn finland_and_portugal() -> anyhow::Result<Testnet> {
    logs();
    let net = Testnet::builder()
        .countries([Country::Fi, Country::Pt])
        .start()
        .await?;
    net.wait_connected(WAIT).await?;
    Ok(net)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finnish_official_finds_the_portuguese_authority_and_asks_it() -> anyhow::Result<()> {
    let net = finland_and_portugal().await?;
    let fi = net.node(Country::Fi);
    let pt = net.node(Country::Pt);

    // Portugal publishes its medical council.
    let ordem = imi_protocol::Authority {
        id: AuthorityId::new(),
        country: Country::Pt,
        names: [(Language::Pt, "Ordem dos Médicos".to_owned())].into(),
        competences: vec![Competence {
            area: "professional-qualifications".parse()?,
            procedures: BTreeSet::new(),
            professions: ["doctor".parse()?, "specialist-doctor".parse()?].into(),
            other: vec![],
        }],
        contact: Contact {
            city: Some("Lisboa".into()),
            ..Contact::default()
        },
        languages: [Language::Pt, Language::En].into(),
        status: AuthorityStatus::Active,
    };
    pt.directory()
        .upsert_authority(PublishedAuthority::from_authority(
            &ordem,
            pt.address().clone(),
        ))
        .await?;

    // The Finn searches in Finnish: "doctor Portugal".
    wait_until("the authority to be found from Finland", WAIT, || async {
        let results = fi
            .search()
            .find("lääkäri Portugali", Language::Fi)
            .await
            .unwrap();
        !results.hits.is_empty()
    })
    .await?;
    let results = fi.search().find("lääkäri Portugali", Language::Fi).await?;
    let found = results.hits.first().map(|h| h.id.clone());
    assert_eq!(found, Some(authority_search_id(Country::Pt, ordem.id)));

    // She sends the request; the directory tells her node where it goes.
    let finn = official(Country::Fi, &[Role::RequestHandler]);
    let portuguese = imi_protocol::Actor {
        authority: ordem.id,
        ..official(Country::Pt, &[Role::RequestHandler])
    };
    let case = CaseId::new();
    let draft = Request::draft(
        case,
        &finn,
        "professional-qualifications",
        party(&portuguese),
        Timestamp::from_millis(0),
    )?;
    fi.create(CaseState::Request(draft), finn.clone()).await?;
    // The Finnish node serves the Finnish authority.
    fi.set_authority_route(imi_protocol::Party::of(&finn), fi.address())
        .await?;
    let step = CaseAction::Request;
    fi.act(
        case,
        finn.clone(),
        step(RequestAction::Send {
            reply_by: in_days(14),
        }),
        Content::default(),
    )
    .await?;
    wait_until("the request to reach the Ordem", WAIT, || async {
        status(pt, case).as_deref() == Some("sent")
    })
    .await?;
    pt.act(
        case,
        portuguese.clone(),
        step(RequestAction::Accept),
        Content::default(),
    )
    .await?;
    wait_until("the acceptance to reach Finland", WAIT, || async {
        status(fi, case).as_deref() == Some("accepted")
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_authority_is_found_abroad_and_a_deactivated_one_disappears()
-> anyhow::Result<()> {
    use imi_node::admin::{AuthorityDraft, Password};
    let net = finland_and_portugal().await?;
    let fi = net.node(Country::Fi);
    let pt = net.node(Country::Pt);
    let admin = pt.admin();
    let coordinator = admin
        .create_first_coordinator(
            "ana",
            "Ana Costa",
            "ana@example.pt",
            Password::new("correct horse battery staple"),
        )
        .await?;
    let coordinator = coordinator
        .user
        .actor_for(Country::Pt, imi_protocol::ALL_AREAS);
    let draft = AuthorityDraft {
        names: [(Language::Pt, "Ordem dos Enfermeiros".to_owned())].into(),
        competences: vec![Competence {
            area: "professional-qualifications".parse()?,
            procedures: BTreeSet::new(),
            professions: ["nurse".parse()?].into(),
            other: vec![],
        }],
        contact: Contact {
            city: Some("Lisboa".into()),
            ..Contact::default()
        },
        languages: [Language::Pt].into(),
    };
    // Registered but not yet approved: not in the directory. Another
    // authority, registered and approved after it, is published after it
    // would have been: once that one is in Finland, the first would be too.
    let record = admin.register_authority(None, draft.clone(), None).await?;
    let id = record.authority.id;
    let mut later = draft;
    later
        .names
        .insert(Language::Pt, "Ordem dos Farmacêuticos".to_owned());
    later.competences[0].professions = ["pharmacist".parse()?].into();
    let later = admin
        .register_authority(None, later, None)
        .await?
        .authority
        .id;
    admin.approve_authority(&coordinator, later).await?;
    wait_until("the later authority to reach Finland", WAIT, || async {
        fi.directory().authority(Country::Pt, later).is_some()
    })
    .await?;
    assert!(fi.directory().authority(Country::Pt, id).is_none());

    admin.approve_authority(&coordinator, id).await?;
    let query = "sairaanhoitaja Portugali"; // "nurse Portugal" in Finnish
    wait_until(
        "the approved authority to be found from Finland",
        WAIT,
        || async {
            let results = fi.search().find(query, Language::Fi).await.unwrap();
            results
                .hits
                .first()
                .is_some_and(|h| h.id == authority_search_id(Country::Pt, id))
        },
    )
    .await?;

    admin
        .deactivate_authority(&coordinator, id, "merged into another order")
        .await?;
    wait_until(
        "the deactivated authority to disappear abroad",
        WAIT,
        || async {
            let results = fi.search().find(query, Language::Fi).await.unwrap();
            fi.directory().authority(Country::Pt, id).is_none()
                && !results
                    .hits
                    .iter()
                    .any(|h| h.id == authority_search_id(Country::Pt, id))
        },
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_country_publishing_hundreds_of_authorities_at_once_is_searchable_abroad()
-> anyhow::Result<()> {
    let net = finland_and_portugal().await?;
    let fi = net.node(Country::Fi);
    let pt = net.node(Country::Pt);
    let authorities = imi_testnet::sample_authorities(Country::Pt, pt.address(), 600);
    let last = authorities.last().cloned().expect("600 authorities");
    pt.directory().upsert_authorities(authorities).await?;
    wait_until("every authority to be indexed in Finland", WAIT, || async {
        fi.search().len() >= 600
    })
    .await?;
    let name = last.names.values().next().expect("a name").clone();
    let results = fi.search().find(&name, Language::Fi).await?;
    assert!(
        results
            .hits
            .iter()
            .any(|h| h.id == authority_search_id(Country::Pt, last.id)),
        "{name} not found in Finland"
    );
    Ok(())
}
