//! The officials' web UI of testnet nodes: served on a free loopback port
//! with the training banner, and demo people to sign in as.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};
use imi_node::admin::{Access, AuthorityDraft, NewAccount, NewUser, Password};
use imi_node::cases::CaseApp;
use imi_node::directory::PublishedAuthority;
use imi_node::node::Node;
use imi_node::ui::{UiOptions, UiServer, UiSetup};
use imi_protocol::{ALL_AREAS, Competence, Contact, Country, Language, Role};
use imi_web::WebSettings;

/// The password of every demo account.
pub const DEMO_PASSWORD: &str = "demo password, change me";

/// Serves the web UI of `node` on a free loopback port, as a training
/// environment.
pub async fn serve_ui(node: &Node<CaseApp>) -> Result<UiServer> {
    serve_ui_with(node, WebSettings::default()).await
}

/// Serves the web UI of `node` on a free loopback port with `settings`
/// (the API benchmark raises the API's rate limit), as a training
/// environment.
pub async fn serve_ui_with(node: &Node<CaseApp>, settings: WebSettings) -> Result<UiServer> {
    let country = node.address().country;
    let setup = UiSetup {
        listen: "127.0.0.1:0".parse()?,
        options: UiOptions {
            training: true,
            default_language: country
                .official_languages()
                .first()
                .copied()
                .unwrap_or(Language::En),
        },
        settings,
    };
    Ok(UiServer::start(node, setup).await?)
}

/// A demo account, for the trainer's console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoUser {
    /// The node's country.
    pub country: Country,
    /// Sign-in name.
    pub login: String,
    /// Full name.
    pub name: String,
    /// The authority's name.
    pub authority: String,
    /// The roles, in words.
    pub roles: String,
}

struct DemoAuthority {
    country: Country,
    names: &'static [(Language, &'static str)],
    professions: &'static [&'static str],
    city: &'static str,
    email: &'static str,
    languages: &'static [Language],
    /// Login, name, language, roles: in professional qualifications, or
    /// for every area for the authority administrator role.
    people: &'static [(&'static str, &'static str, Language, &'static [Role])],
}

const PQ: &str = "professional-qualifications";

const DEMO_AUTHORITIES: &[DemoAuthority] = &[
    DemoAuthority {
        country: Country::Fi,
        names: &[
            (
                Language::Fi,
                "Sosiaali- ja terveysalan lupa- ja valvontavirasto Valvira",
            ),
            (
                Language::Sv,
                "Tillstånds- och tillsynsverket för social- och hälsovården Valvira",
            ),
            (
                Language::En,
                "National Supervisory Authority for Welfare and Health Valvira",
            ),
        ],
        professions: &["doctor", "specialist-doctor", "nurse", "dentist"],
        city: "Helsinki",
        email: "imi@valvira.fi.example",
        languages: &[Language::Fi, Language::Sv, Language::En],
        people: &[
            (
                "fi-official",
                "Aino Virtanen",
                Language::Fi,
                &[Role::RequestHandler],
            ),
            (
                "fi-admin",
                "Mikko Laine",
                Language::Fi,
                &[Role::AuthorityAdministrator],
            ),
        ],
    },
    DemoAuthority {
        country: Country::Pt,
        names: &[(Language::Pt, "Ordem dos Médicos")],
        professions: &["doctor", "specialist-doctor"],
        city: "Lisboa",
        email: "imi@ordemdosmedicos.pt.example",
        languages: &[Language::Pt, Language::En],
        people: &[
            (
                "pt-official",
                "Maria Silva",
                Language::Pt,
                &[Role::RequestHandler],
            ),
            (
                "pt-allocator",
                "João Santos",
                Language::Pt,
                &[Role::Allocator],
            ),
        ],
    },
    DemoAuthority {
        country: Country::Pt,
        names: &[(Language::Pt, "Ordem dos Enfermeiros")],
        professions: &["nurse"],
        city: "Lisboa",
        email: "imi@ordemenfermeiros.pt.example",
        languages: &[Language::Pt],
        people: &[(
            "pt-nurses",
            "Rita Costa",
            Language::Pt,
            &[Role::RequestHandler],
        )],
    },
];

/// The sign-in names of the demo accounts of `country`'s node: its
/// national coordinator, then the demo people.
pub fn demo_logins(country: Country) -> Vec<&'static str> {
    let mut logins = vec!["coordinator"];
    for demo in DEMO_AUTHORITIES.iter().filter(|d| d.country == country) {
        logins.extend(demo.people.iter().map(|(login, ..)| *login));
    }
    logins
}

/// Whether `authority` is one the demo people belong to: the node registers
/// it through its administration, so the directory must not get it twice.
pub fn is_demo_people_authority(authority: &PublishedAuthority) -> bool {
    DEMO_AUTHORITIES.iter().any(|demo| {
        demo.country == authority.country
            && demo
                .names
                .iter()
                .any(|(lang, name)| authority.names.get(lang).map(String::as_str) == Some(*name))
    })
}

/// Registers and approves the demo authorities of `node`'s country through
/// its administration (so they are published like real ones) with their
/// people, acting as the national coordinator `coordinator`. Every account's
/// password is [`DEMO_PASSWORD`].
pub async fn demo_people(node: &Node<CaseApp>, coordinator: &str) -> Result<Vec<DemoUser>> {
    let country = node.address().country;
    let admin = node.admin();
    let acting = admin
        .user_by_login(coordinator)
        .with_context(|| format!("no coordinator {coordinator:?} on {country}"))?
        .user
        .actor_for(country, ALL_AREAS);
    let mut people = vec![];
    for demo in DEMO_AUTHORITIES.iter().filter(|d| d.country == country) {
        let names: BTreeMap<Language, String> = demo
            .names
            .iter()
            .map(|(l, n)| (*l, (*n).to_owned()))
            .collect();
        let draft = AuthorityDraft {
            names,
            competences: vec![Competence {
                area: PQ.parse()?,
                procedures: ["pq-information-request".parse()?].into(),
                professions: demo
                    .professions
                    .iter()
                    .map(|p| p.parse())
                    .collect::<Result<_, _>>()?,
                other: vec![],
            }],
            contact: Contact {
                city: Some(demo.city.to_owned()),
                email: Some(demo.email.to_owned()),
                ..Contact::default()
            },
            languages: demo.languages.iter().copied().collect(),
        };
        let record = admin.register_authority(Some(&acting), draft, None).await?;
        let id = record.authority.id;
        admin.approve_authority(&acting, id).await?;
        let authority_name = demo.names[0].1.to_owned();
        for (login, name, language, roles) in demo.people {
            let roles: BTreeSet<Role> = roles.iter().copied().collect();
            let (everywhere, in_area): (BTreeSet<Role>, BTreeSet<Role>) = roles
                .iter()
                .partition(|r| **r == Role::AuthorityAdministrator);
            let mut access = Access::new();
            for (area, held) in [(ALL_AREAS, &everywhere), (PQ, &in_area)] {
                if !held.is_empty() {
                    access.insert(area.to_owned(), held.clone());
                }
            }
            admin
                .add_user(
                    &acting,
                    id,
                    NewAccount {
                        user: NewUser {
                            login: (*login).to_owned(),
                            name: (*name).to_owned(),
                            email: format!("{login}@{}", demo.email.trim_start_matches("imi@")),
                            language: *language,
                            access,
                        },
                        password: Password::new(DEMO_PASSWORD),
                    },
                )
                .await?;
            people.push(DemoUser {
                country,
                login: (*login).to_owned(),
                name: (*name).to_owned(),
                authority: authority_name.clone(),
                roles: roles
                    .iter()
                    .map(|r| {
                        let area = if everywhere.contains(r) {
                            "every area"
                        } else {
                            PQ
                        };
                        format!("{r} ({area})")
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    Ok(people)
}

/// A Finnish and a Portuguese node, linked, each with its national
/// coordinator (`coordinator`) and its demo users: the federation the
/// web UI's tests and the My tasks benchmark work in.
pub async fn demo_finland_and_portugal() -> Result<crate::Testnet> {
    let net = crate::Testnet::builder()
        .countries([Country::Fi, Country::Pt])
        .start()
        .await?;
    net.wait_connected(std::time::Duration::from_secs(30))
        .await?;
    for country in [Country::Fi, Country::Pt] {
        let node = net.node(country);
        demo_coordinator(node).await?;
        demo_people(node, "coordinator").await?;
    }
    Ok(net)
}

/// The node's first national coordinator, `coordinator`, with the demo
/// password.
pub async fn demo_coordinator(node: &Node<CaseApp>) -> Result<()> {
    node.admin()
        .create_first_coordinator(
            "coordinator",
            "National IMI coordinator",
            "coordinator@imi.test",
            imi_node::admin::Password::new(DEMO_PASSWORD),
        )
        .await?;
    Ok(())
}
