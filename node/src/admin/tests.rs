//! Administration against a real store in a temporary directory.

use std::sync::atomic::{AtomicU64, Ordering};

use tempfile::TempDir;

use super::*;

const DAY_MS: u64 = 86_400_000;
/// 2026-11-02T00:00:00Z.
const START_MS: u64 = 1_793_577_600_000;

struct Fixture {
    _dir: TempDir,
    store: Store,
    admin: Admin,
    clock: Arc<AtomicU64>,
    coordinator: UserAccount,
}

impl Fixture {
    /// A Portuguese node with its first national coordinator.
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.redb")).unwrap();
        let clock = Arc::new(AtomicU64::new(START_MS));
        let time = Arc::clone(&clock);
        let admin = Admin::open(store.clone(), Country::Pt)
            .await
            .unwrap()
            .with_hash_cost(HashCost::Minimal)
            .with_clock(Arc::new(move || {
                Timestamp::from_millis(time.load(Ordering::SeqCst))
            }));
        let coordinator = admin
            .create_first_coordinator(
                "nimic",
                "Ana Costa",
                "ana.costa@imi.example.pt",
                Password::from("lisboa coordinates imi"),
            )
            .await
            .unwrap();
        Fixture {
            _dir: dir,
            store,
            admin,
            clock,
            coordinator,
        }
    }

    fn coordinator(&self) -> Actor {
        actor(&self.coordinator)
    }

    fn advance_days(&self, days: u64) {
        self.clock.fetch_add(days * DAY_MS, Ordering::SeqCst);
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.clock.load(Ordering::SeqCst))
    }

    /// Registers the doctors' chamber with its administrator `login` and
    /// approves it.
    async fn active_authority(&self, login: &str) -> (AuthorityRecord, UserAccount) {
        let record = self
            .admin
            .register_authority(None, doctors_chamber(), Some(account(login, Access::new())))
            .await
            .unwrap();
        self.admin
            .approve_authority(&self.coordinator(), record.authority.id)
            .await
            .unwrap();
        let administrator = self.admin.user_by_login(login).unwrap();
        (
            self.admin.authority(record.authority.id).unwrap(),
            administrator,
        )
    }

    /// Every key and value of the administration tables.
    fn snapshot(&self) -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
        let tx = self.store.read().unwrap();
        let mut rows = Vec::new();
        for (name, table) in [
            ("authorities", AUTHORITIES),
            ("users", USERS),
            ("preferences", preferences::PREFERENCES),
        ] {
            let table = tx.open_table(table).unwrap();
            for entry in table.iter().unwrap() {
                let (k, v) = entry.unwrap();
                rows.push((name, k.value().to_vec(), v.value().to_vec()));
            }
        }
        let logins = tx.open_table(LOGINS).unwrap();
        for entry in logins.iter().unwrap() {
            let (k, v) = entry.unwrap();
            rows.push(("logins", k.value().as_bytes().to_vec(), v.value().to_vec()));
        }
        let index = tx.open_table(AUTHORITY_USERS).unwrap();
        for entry in index.iter().unwrap() {
            let (k, _) = entry.unwrap();
            rows.push(("authority-users", k.value().to_vec(), vec![]));
        }
        rows
    }

    fn stored_hash(&self, id: UserId) -> String {
        let tx = self.store.read().unwrap();
        let users = tx.open_table(USERS).unwrap();
        get::<StoredUser>(&users, "user", &id.to_bytes())
            .unwrap()
            .unwrap()
            .password_hash
    }
}

fn actor(account: &UserAccount) -> Actor {
    account.user.actor_for(Country::Pt, ALL_AREAS)
}

fn pq() -> AreaKey {
    "professional-qualifications".parse().unwrap()
}

fn services() -> AreaKey {
    "services".parse().unwrap()
}

fn competence(area: AreaKey) -> Competence {
    Competence {
        area,
        procedures: BTreeSet::new(),
        professions: BTreeSet::new(),
        other: vec![],
    }
}

fn doctors_chamber() -> AuthorityDraft {
    AuthorityDraft {
        names: [(Language::Pt, "Ordem dos Médicos".to_owned())].into(),
        competences: vec![
            Competence {
                professions: ["doctor".parse().unwrap()].into(),
                ..competence(pq())
            },
            competence(services()),
        ],
        contact: Contact {
            city: Some("Lisboa".into()),
            email: Some("imi@ordemdosmedicos.example.pt".into()),
            ..Contact::default()
        },
        languages: [Language::Pt, Language::En].into(),
    }
}

fn nurses_council() -> AuthorityDraft {
    AuthorityDraft {
        names: [(Language::Pt, "Ordem dos Enfermeiros".to_owned())].into(),
        competences: vec![competence(pq())],
        ..doctors_chamber()
    }
}

fn access(entries: &[(&str, &[Role])]) -> Access {
    entries
        .iter()
        .map(|(area, roles)| ((*area).to_owned(), roles.iter().copied().collect()))
        .collect()
}

fn account(login: &str, access: Access) -> NewAccount {
    NewAccount {
        user: NewUser {
            login: login.to_owned(),
            name: format!("Official {login}"),
            email: format!("{}@example.pt", login.trim().to_lowercase()),
            language: Language::Pt,
            access,
        },
        password: Password::from(password_of(login)),
    }
}

/// A password that does not contain the login: the login backwards.
fn password_of(login: &str) -> String {
    let backwards: String = login.trim().to_lowercase().chars().rev().collect();
    format!("{backwards} keeps a long secret")
}

fn handler_in(area: &str) -> Access {
    access(&[(area, &[Role::RequestHandler])])
}

fn assert_not_allowed(result: Result<impl fmt::Debug, AdminError>, reason_part: &str) {
    match result {
        Err(err @ AdminError::NotAllowed { .. }) => {
            let message = err.to_string();
            assert!(
                message.starts_with("you may not ") && message.contains(reason_part),
                "{message}"
            );
        }
        other => panic!("expected a refusal mentioning {reason_part:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn the_first_coordinator_is_created_once_with_an_active_authority() {
    let f = Fixture::new().await;
    let user = &f.coordinator.user;
    assert_eq!(user.login, "nimic");
    assert!(holds_everywhere(&user.access, Role::NationalCoordinator));
    assert!(holds_everywhere(&user.access, Role::AuthorityAdministrator));
    let authority = f.admin.authority(user.authority).unwrap().authority;
    assert_eq!(authority.status, AuthorityStatus::Active);
    assert_eq!(authority.country, Country::Pt);
    assert_eq!(
        authority.competences.len(),
        Catalogue::builtin().areas().len()
    );
    f.admin
        .verify_password("nimic", "lisboa coordinates imi")
        .await
        .unwrap();

    let before = f.snapshot();
    let again = f
        .admin
        .create_first_coordinator(
            "second",
            "Rui Lopes",
            "rui@imi.example.pt",
            Password::from("another long passphrase"),
        )
        .await;
    assert!(
        matches!(again, Err(AdminError::AlreadyInitialised)),
        "{again:?}"
    );
    assert_eq!(f.snapshot(), before);
}

#[tokio::test]
async fn a_pending_authority_waits_for_the_national_coordinator() {
    let f = Fixture::new().await;
    let mut events = f.admin.subscribe();
    let record = f
        .admin
        .register_authority(
            None,
            doctors_chamber(),
            Some(account("maria", Access::new())),
        )
        .await
        .unwrap();
    let id = record.authority.id;
    assert_eq!(record.authority.status, AuthorityStatus::Pending);
    assert_eq!(record.registered, f.now());
    assert_eq!(events.try_recv().unwrap(), AdminEvent::AuthorityChanged(id));
    // The applicant's account exists, as the authority's administrator, but
    // cannot be used yet.
    let maria = f.admin.user_by_login("maria").unwrap();
    assert!(holds_everywhere(
        &maria.user.access,
        Role::AuthorityAdministrator
    ));
    let refused = f
        .admin
        .verify_password("maria", &password_of("maria"))
        .await;
    assert!(
        matches!(
            refused,
            Err(SignInError::AuthorityNotActive(AuthorityStatus::Pending))
        ),
        "{refused:?}"
    );
    assert!(
        f.admin
            .published_authorities()
            .await
            .unwrap()
            .iter()
            .all(|a| a.id != id)
    );

    // Nobody but this country's national coordinator approves it.
    let (_, other_admin) = f.active_authority("rui").await;
    let before = f.snapshot();
    assert_not_allowed(
        f.admin.approve_authority(&actor(&other_admin), id).await,
        "national-coordinator role",
    );
    assert_not_allowed(
        f.admin.approve_authority(&actor(&maria), id).await,
        "your authority is pending",
    );
    let mut claimed = actor(&other_admin);
    claimed.roles.insert(Role::NationalCoordinator);
    assert_not_allowed(
        f.admin.approve_authority(&claimed, id).await,
        "national-coordinator role",
    );
    let mut foreign = f.coordinator();
    foreign.country = Country::Fi;
    assert_not_allowed(
        f.admin.approve_authority(&foreign, id).await,
        "you act for Finland",
    );
    assert_eq!(f.snapshot(), before);
    assert_eq!(
        f.admin.authority(id).unwrap().authority.status,
        AuthorityStatus::Pending
    );

    while events.try_recv().is_ok() {}
    let approved = f
        .admin
        .approve_authority(&f.coordinator(), id)
        .await
        .unwrap();
    assert_eq!(approved.authority.status, AuthorityStatus::Active);
    let decision = approved.last_decision.unwrap();
    assert_eq!(decision.by, f.coordinator.user.id);
    assert_eq!(events.try_recv().unwrap(), AdminEvent::AuthorityChanged(id));
    assert!(
        f.admin
            .published_authorities()
            .await
            .unwrap()
            .iter()
            .any(|a| a.id == id)
    );
    let signed_in = f
        .admin
        .verify_password("maria", &password_of("maria"))
        .await
        .unwrap();
    assert_eq!(signed_in.user.id, maria.user.id);

    let again = f.admin.approve_authority(&f.coordinator(), id).await;
    assert!(
        matches!(
            again,
            Err(AdminError::WrongStatus {
                status: "active",
                ..
            })
        ),
        "{again:?}"
    );
}

#[tokio::test]
async fn rejection_and_deactivation_need_a_reason_and_the_right_status() {
    let f = Fixture::new().await;
    let coordinator = f.coordinator();
    let pending = f
        .admin
        .register_authority(
            Some(&coordinator),
            nurses_council(),
            Some(account("joana", Access::new())),
        )
        .await
        .unwrap();
    assert_eq!(pending.registered_by, Some(f.coordinator.user.id));
    let id = pending.authority.id;

    let blank = f.admin.reject_authority(&coordinator, id, "   ").await;
    assert!(matches!(blank, Err(AdminError::Reason(_))), "{blank:?}");
    let too_early = f
        .admin
        .deactivate_authority(&coordinator, id, "merged")
        .await;
    assert!(
        matches!(
            too_early,
            Err(AdminError::WrongStatus {
                status: "pending",
                ..
            })
        ),
        "{too_early:?}"
    );
    let rejected = f
        .admin
        .reject_authority(&coordinator, id, "not a competent authority for nurses")
        .await
        .unwrap();
    assert_eq!(rejected.authority.status, AuthorityStatus::Rejected);
    assert_eq!(
        rejected.last_decision.unwrap().reason.as_deref(),
        Some("not a competent authority for nurses")
    );
    let refused = f
        .admin
        .verify_password("joana", &password_of("joana"))
        .await;
    assert!(
        matches!(
            refused,
            Err(SignInError::AuthorityNotActive(AuthorityStatus::Rejected))
        ),
        "{refused:?}"
    );
    assert_eq!(
        f.admin
            .list_authorities(Some(AuthorityStatus::Rejected))
            .await
            .unwrap()
            .len(),
        1
    );

    // Reconsidered, approved, later dissolved.
    f.admin.approve_authority(&coordinator, id).await.unwrap();
    f.admin
        .verify_password("joana", &password_of("joana"))
        .await
        .unwrap();
    let own = f
        .admin
        .deactivate_authority(&coordinator, f.coordinator.user.authority, "moving")
        .await;
    assert_not_allowed(own, "your own authority");
    f.admin
        .deactivate_authority(&coordinator, id, "merged into the health ministry")
        .await
        .unwrap();
    let refused = f
        .admin
        .verify_password("joana", &password_of("joana"))
        .await;
    assert!(
        matches!(
            refused,
            Err(SignInError::AuthorityNotActive(
                AuthorityStatus::Deactivated
            ))
        ),
        "{refused:?}"
    );
    assert!(refused.unwrap_err().to_string().contains("deactivated"));
    assert!(
        f.admin
            .published_authorities()
            .await
            .unwrap()
            .iter()
            .all(|a| a.id != id)
    );
}

#[tokio::test]
async fn users_are_managed_by_their_own_administrators_and_the_coordinator() {
    let f = Fixture::new().await;
    let (doctors, maria) = f.active_authority("maria").await;
    let nurses = f
        .admin
        .register_authority(None, nurses_council(), None)
        .await
        .unwrap();
    let admin = actor(&maria);

    // Maria administers the doctors' chamber and may add its users.
    let pedro = f
        .admin
        .add_user(
            &admin,
            doctors.authority.id,
            account("Pedro.Alves", handler_in("services")),
        )
        .await
        .unwrap();
    assert_eq!(pedro.user.login, "pedro.alves");
    assert_eq!(pedro.user.authority, doctors.authority.id);
    assert_eq!(pedro.created, f.now());
    assert_eq!(f.admin.users_of(doctors.authority.id).unwrap().len(), 2);

    // Not users of another authority, and not as a mere request handler.
    assert_not_allowed(
        f.admin
            .add_user(&admin, nurses.authority.id, account("ines", Access::new()))
            .await,
        "your own authority only",
    );
    assert_not_allowed(
        f.admin
            .add_user(
                &actor(&pedro),
                doctors.authority.id,
                account("ines", Access::new()),
            )
            .await,
        "holds neither role",
    );
    // National roles come from the national coordinator only.
    let alert = access(&[("professional-qualifications", &[Role::AlertCoordinator])]);
    assert_not_allowed(
        f.admin
            .add_user(&admin, doctors.authority.id, account("ines", alert.clone()))
            .await,
        "only the national IMI coordinator of Portugal",
    );
    let ines = f
        .admin
        .add_user(
            &f.coordinator(),
            doctors.authority.id,
            account("ines", alert),
        )
        .await
        .unwrap();
    // The coordinator also adds users to a pending authority.
    f.admin
        .add_user(
            &f.coordinator(),
            nurses.authority.id,
            account("joana", Access::new()),
        )
        .await
        .unwrap();

    // Roles only for the authority's areas, administrator roles only for all.
    let wrong_area = f
        .admin
        .add_user(
            &admin,
            doctors.authority.id,
            account("tiago", handler_in("solvit")),
        )
        .await;
    assert!(
        matches!(
            wrong_area,
            Err(AdminError::InvalidUser(InvalidUser::NotCompetent(_)))
        ),
        "{wrong_area:?}"
    );
    let per_area_admin = f
        .admin
        .add_user(
            &admin,
            doctors.authority.id,
            account(
                "tiago",
                access(&[("services", &[Role::AuthorityAdministrator])]),
            ),
        )
        .await;
    assert!(
        matches!(
            per_area_admin,
            Err(AdminError::InvalidUser(InvalidUser::EveryAreaRole { .. }))
        ),
        "{per_area_admin:?}"
    );
    let no_such_area = f
        .admin
        .add_user(
            &admin,
            doctors.authority.id,
            account("tiago", handler_in("Services!")),
        )
        .await;
    assert!(
        matches!(
            no_such_area,
            Err(AdminError::InvalidUser(InvalidUser::UnknownArea(_)))
        ),
        "{no_such_area:?}"
    );

    // Editing: roles, name, email, language.
    let edited = f
        .admin
        .edit_user(
            &admin,
            pedro.user.id,
            UserChanges {
                name: Some("  Pedro Alves  ".into()),
                email: Some("pedro.alves@ordem.example.pt".into()),
                language: Some(Language::En),
                access: Some(access(&[
                    ("services", &[Role::RequestHandler]),
                    ("professional-qualifications", &[Role::Allocator]),
                    ("*", &[]),
                ])),
            },
        )
        .await
        .unwrap();
    assert_eq!(edited.user.name, "Pedro Alves");
    assert_eq!(edited.user.language, Language::En);
    assert!(
        edited
            .user
            .roles_for("professional-qualifications")
            .contains(&Role::Allocator)
    );
    assert!(
        !edited.user.access.contains_key(ALL_AREAS),
        "empty entries are dropped"
    );
    assert_eq!(f.admin.user(pedro.user.id).unwrap(), edited);
    let bad_email = f
        .admin
        .edit_user(
            &admin,
            pedro.user.id,
            UserChanges {
                email: Some("pedro at home".into()),
                ..UserChanges::default()
            },
        )
        .await;
    assert!(
        matches!(
            bad_email,
            Err(AdminError::InvalidUser(InvalidUser::Email(_)))
        ),
        "{bad_email:?}"
    );
    // Users keep their own name and language, but not their roles.
    let own = f
        .admin
        .edit_user(
            &actor(&pedro),
            pedro.user.id,
            UserChanges {
                language: Some(Language::Pt),
                ..UserChanges::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(own.user.language, Language::Pt);
    assert_not_allowed(
        f.admin
            .edit_user(
                &actor(&pedro),
                pedro.user.id,
                UserChanges {
                    access: Some(access(&[("*", &[Role::AuthorityAdministrator])])),
                    ..UserChanges::default()
                },
            )
            .await,
        "holds neither role",
    );
    // Taking away a national role is the coordinator's too; keeping it is fine.
    assert_not_allowed(
        f.admin
            .edit_user(
                &admin,
                ines.user.id,
                UserChanges {
                    access: Some(Access::new()),
                    ..UserChanges::default()
                },
            )
            .await,
        "alert-coordinator",
    );
    f.admin
        .edit_user(
            &admin,
            ines.user.id,
            UserChanges {
                name: Some("Inês Moura".into()),
                ..UserChanges::default()
            },
        )
        .await
        .unwrap();
    // Nobody locks themselves out.
    assert_not_allowed(
        f.admin
            .edit_user(
                &admin,
                maria.user.id,
                UserChanges {
                    access: Some(handler_in("services")),
                    ..UserChanges::default()
                },
            )
            .await,
        "lock yourself out",
    );
    assert_not_allowed(
        f.admin.deactivate_user(&admin, maria.user.id).await,
        "lock yourself out",
    );
    // An authority administrator cannot touch a national coordinator.
    assert_not_allowed(
        f.admin.deactivate_user(&admin, f.coordinator.user.id).await,
        "your own authority only",
    );

    // Leavers are deactivated and can come back.
    let gone = f
        .admin
        .deactivate_user(&admin, pedro.user.id)
        .await
        .unwrap();
    assert!(!gone.user.active);
    assert_not_allowed(
        f.admin
            .add_user(
                &actor(&pedro),
                doctors.authority.id,
                account("tiago", Access::new()),
            )
            .await,
        "deactivated",
    );
    let back = f
        .admin
        .reactivate_user(&admin, pedro.user.id)
        .await
        .unwrap();
    assert!(back.user.active);
}

#[tokio::test]
async fn logins_are_unique_on_the_node_whatever_their_case() {
    let f = Fixture::new().await;
    let (doctors, maria) = f.active_authority("maria").await;
    let before = f.snapshot();
    let duplicate = f
        .admin
        .add_user(
            &actor(&maria),
            doctors.authority.id,
            account(" MARIA ", Access::new()),
        )
        .await;
    match duplicate {
        Err(err @ AdminError::DuplicateLogin(_)) => {
            assert!(
                err.to_string().contains("\"maria\" is already taken"),
                "{err}"
            );
        }
        other => panic!("expected a duplicate login, got {other:?}"),
    }
    // Also when the login comes with a new authority's registration.
    let registration = f
        .admin
        .register_authority(
            None,
            nurses_council(),
            Some(account("Maria", Access::new())),
        )
        .await;
    assert!(
        matches!(registration, Err(AdminError::DuplicateLogin(_))),
        "{registration:?}"
    );
    assert_eq!(
        f.snapshot(),
        before,
        "nothing of the refused steps is stored"
    );
    let bad = f
        .admin
        .add_user(
            &actor(&maria),
            doctors.authority.id,
            account("jo", Access::new()),
        )
        .await;
    assert!(
        matches!(bad, Err(AdminError::InvalidUser(InvalidUser::Login { .. }))),
        "{bad:?}"
    );
}

#[tokio::test]
async fn weak_passwords_are_refused_with_the_reason() {
    let f = Fixture::new().await;
    let (doctors, maria) = f.active_authority("maria").await;
    let before = f.snapshot();
    let mut new = account("pedro", Access::new());
    new.password = Password::from("pedro123");
    let weak = f
        .admin
        .add_user(&actor(&maria), doctors.authority.id, new)
        .await;
    match weak {
        Err(err @ AdminError::WeakPassword(WeakPassword::TooShort { chars: 8 })) => {
            assert_eq!(
                err.to_string(),
                "the password is too weak: it has 8 characters and needs at least 12; a few unrelated words in a row make a good one"
            );
        }
        other => panic!("expected a weak password, got {other:?}"),
    }
    let weak = f
        .admin
        .set_password(
            &actor(&maria),
            maria.user.id,
            Password::from("maria maria maria"),
        )
        .await;
    assert!(
        matches!(
            weak,
            Err(AdminError::WeakPassword(WeakPassword::ContainsLogin))
        ),
        "{weak:?}"
    );
    assert_eq!(f.snapshot(), before);
}

#[tokio::test]
async fn sign_in_needs_the_right_password_of_an_active_account() {
    let f = Fixture::new().await;
    let (doctors, maria) = f.active_authority("maria").await;
    let pedro = f
        .admin
        .add_user(
            &actor(&maria),
            doctors.authority.id,
            account("pedro", handler_in("services")),
        )
        .await
        .unwrap();
    assert_eq!(pedro.last_sign_in, None);

    f.advance_days(3);
    let signed_in = f
        .admin
        .verify_password(" Pedro ", &password_of("pedro"))
        .await
        .unwrap();
    assert_eq!(signed_in.user.id, pedro.user.id);
    assert_eq!(signed_in.last_sign_in, Some(f.now()));
    assert_eq!(
        f.admin.user(pedro.user.id).unwrap().last_sign_in,
        Some(f.now())
    );

    let wrong = f
        .admin
        .verify_password("pedro", "ordep keeps a long secret!")
        .await;
    let unknown = f
        .admin
        .verify_password("paulo", &password_of("pedro"))
        .await;
    assert!(
        matches!(wrong, Err(SignInError::WrongCredentials)),
        "{wrong:?}"
    );
    assert!(
        matches!(unknown, Err(SignInError::WrongCredentials)),
        "{unknown:?}"
    );

    // Only the hash is stored.
    let hash = f.stored_hash(pedro.user.id);
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(
        f.snapshot()
            .iter()
            .all(|(_, _, value)| !value.windows(6).any(|w| w == b"secret")),
        "the password text appears in the store"
    );

    // A new password replaces the old one; the user may set their own.
    f.admin
        .set_password(
            &actor(&pedro),
            pedro.user.id,
            Password::from("a brand new passphrase"),
        )
        .await
        .unwrap();
    assert!(matches!(
        f.admin
            .verify_password("pedro", &password_of("pedro"))
            .await,
        Err(SignInError::WrongCredentials)
    ));
    f.admin
        .verify_password("pedro", "a brand new passphrase")
        .await
        .unwrap();
    // But not someone else's, unless they administer them.
    let other = f
        .admin
        .add_user(
            &actor(&maria),
            doctors.authority.id,
            account("rita", handler_in("services")),
        )
        .await
        .unwrap();
    assert_not_allowed(
        f.admin
            .set_password(
                &actor(&pedro),
                other.user.id,
                Password::from("taken over account"),
            )
            .await,
        "holds neither role",
    );

    // A deactivated account is told so, but only with the right password.
    f.admin
        .deactivate_user(&actor(&maria), pedro.user.id)
        .await
        .unwrap();
    let deactivated = f
        .admin
        .verify_password("pedro", "a brand new passphrase")
        .await;
    assert!(
        matches!(deactivated, Err(SignInError::Deactivated)),
        "{deactivated:?}"
    );
    let guessed = f.admin.verify_password("pedro", "a wrong guess here").await;
    assert!(
        matches!(guessed, Err(SignInError::WrongCredentials)),
        "{guessed:?}"
    );
}

#[tokio::test]
async fn a_hash_made_with_other_settings_is_replaced_at_sign_in() {
    let f = Fixture::new().await;
    let id = f.coordinator.user.id;
    let minimal = f.stored_hash(id);
    assert!(minimal.contains("m=8,t=1,p=1"), "{minimal}");
    let standard = f.admin.clone().with_hash_cost(HashCost::Standard);
    standard
        .verify_password("nimic", "lisboa coordinates imi")
        .await
        .unwrap();
    let rehashed = f.stored_hash(id);
    assert!(rehashed.contains("m=19456,t=2,p=1"), "{rehashed}");
    standard
        .verify_password("nimic", "lisboa coordinates imi")
        .await
        .unwrap();
    assert_eq!(f.stored_hash(id), rehashed, "a current hash is kept");
}

#[tokio::test]
async fn the_substitute_warning_comes_and_goes_with_the_handlers() {
    let f = Fixture::new().await;
    let (doctors, maria) = f.active_authority("maria").await;
    let admin = actor(&maria);
    let id = doctors.authority.id;
    let fx = &f;
    let warnings_for_doctors = move || async move {
        fx.admin
            .substitute_warnings()
            .await
            .unwrap()
            .into_iter()
            .filter(|w| w.authority == id)
            .map(|w| (w.area.to_string(), w.handlers))
            .collect::<Vec<_>>()
    };
    // Only an administrator: nobody handles either area.
    assert_eq!(
        warnings_for_doctors().await,
        [
            ("professional-qualifications".to_owned(), 0),
            ("services".to_owned(), 0)
        ]
    );
    let pedro = f
        .admin
        .add_user(
            &admin,
            id,
            account("pedro", handler_in("professional-qualifications")),
        )
        .await
        .unwrap();
    assert_eq!(
        warnings_for_doctors().await,
        [
            ("professional-qualifications".to_owned(), 1),
            ("services".to_owned(), 0)
        ]
    );
    // An allocator for every area covers both.
    let rita = f
        .admin
        .add_user(
            &admin,
            id,
            account("rita", access(&[("*", &[Role::Allocator])])),
        )
        .await
        .unwrap();
    assert_eq!(warnings_for_doctors().await, [("services".to_owned(), 1)]);
    let warning = f
        .admin
        .substitute_warnings()
        .await
        .unwrap()
        .into_iter()
        .find(|w| w.authority == id)
        .unwrap();
    assert_eq!(
        warning.to_string(),
        "Ordem dos Médicos has only one active user handling requests in services; give a second user the request-handler or allocator role there, so someone can stand in"
    );
    f.admin
        .add_user(&admin, id, account("tiago", handler_in("services")))
        .await
        .unwrap();
    assert_eq!(warnings_for_doctors().await, []);
    // A leaver brings the warning back.
    f.admin
        .deactivate_user(&admin, pedro.user.id)
        .await
        .unwrap();
    assert_eq!(
        warnings_for_doctors().await,
        [("professional-qualifications".to_owned(), 1)]
    );
    f.admin
        .reactivate_user(&admin, pedro.user.id)
        .await
        .unwrap();
    assert_eq!(warnings_for_doctors().await, []);
    // Pending and deactivated authorities are not warned about.
    f.admin
        .deactivate_authority(&f.coordinator(), id, "merged")
        .await
        .unwrap();
    f.admin
        .deactivate_user(&f.coordinator(), rita.user.id)
        .await
        .unwrap();
    assert_eq!(warnings_for_doctors().await, []);
}

#[tokio::test]
async fn users_who_stopped_signing_in_are_listed_for_removal() {
    let f = Fixture::new().await;
    let (doctors, maria) = f.active_authority("maria").await;
    let admin = actor(&maria);
    let id = doctors.authority.id;
    let created = f.now();
    let pedro = f
        .admin
        .add_user(&admin, id, account("pedro", handler_in("services")))
        .await
        .unwrap();
    f.advance_days(100);
    f.admin
        .verify_password("maria", &password_of("maria"))
        .await
        .unwrap();
    let maria_seen = f.now();
    f.advance_days(100);
    f.admin
        .verify_password("nimic", "lisboa coordinates imi")
        .await
        .unwrap();
    let half_year = Duration::from_secs(180 * 86_400);
    let listed = |users: Vec<InactiveUser>| {
        users
            .into_iter()
            .map(|u| (u.account.user.login, u.idle_since))
            .collect::<Vec<_>>()
    };
    // Day 200: Pedro never signed in since his account was made on day 0.
    assert_eq!(
        listed(f.admin.inactive_users(half_year).await.unwrap()),
        [("pedro".to_owned(), created)]
    );
    // Day 300: Maria's sign-in on day 100 is 200 days ago too; longest idle first.
    f.advance_days(100);
    assert_eq!(
        listed(f.admin.inactive_users(half_year).await.unwrap()),
        [
            ("pedro".to_owned(), created),
            ("maria".to_owned(), maria_seen)
        ]
    );
    // Exactly the limit is not longer than it.
    assert_eq!(
        listed(
            f.admin
                .inactive_users(Duration::from_secs(300 * 86_400))
                .await
                .unwrap()
        ),
        []
    );
    // Once deactivated, a leaver is off the list.
    f.admin
        .deactivate_user(&admin, pedro.user.id)
        .await
        .unwrap();
    assert_eq!(
        listed(f.admin.inactive_users(half_year).await.unwrap()),
        [("maria".to_owned(), maria_seen)]
    );
}

#[tokio::test]
async fn authority_administrators_keep_the_description_but_not_the_areas() {
    let f = Fixture::new().await;
    let (doctors, maria) = f.active_authority("maria").await;
    let id = doctors.authority.id;
    let mut draft = doctors_chamber();
    draft.contact.phone = Some("+351 21 000 0000".into());
    draft
        .names
        .insert(Language::En, "Portuguese Medical Association".into());
    let updated = f
        .admin
        .update_authority(&actor(&maria), id, draft.clone())
        .await
        .unwrap();
    assert_eq!(
        updated.authority.contact.phone.as_deref(),
        Some("+351 21 000 0000")
    );
    assert_eq!(updated.authority.status, AuthorityStatus::Active);

    let before = f.snapshot();
    let mut wider = draft.clone();
    wider
        .competences
        .push(competence("solvit".parse().unwrap()));
    assert_not_allowed(
        f.admin
            .update_authority(&actor(&maria), id, wider.clone())
            .await,
        "granted by the national coordinator",
    );
    let mut blank = draft.clone();
    blank.names.insert(Language::Pt, " ".into());
    let invalid = f.admin.update_authority(&actor(&maria), id, blank).await;
    match invalid {
        Err(err @ AdminError::InvalidAuthority(InvalidAuthority::BlankName(Language::Pt))) => {
            assert!(
                err.to_string().contains("name of the authority is blank"),
                "{err}"
            );
        }
        other => panic!("expected an invalid authority, got {other:?}"),
    }
    let (_, rui) = f.active_authority("rui").await;
    let after_rui = f.snapshot();
    assert_ne!(after_rui, before);
    assert_not_allowed(
        f.admin.update_authority(&actor(&rui), id, draft).await,
        "only its own authority administrators",
    );
    assert_eq!(f.snapshot(), after_rui);
    let widened = f
        .admin
        .update_authority(&f.coordinator(), id, wider)
        .await
        .unwrap();
    assert!(
        widened
            .authority
            .is_competent_in(&"solvit".parse().unwrap())
    );
}

#[tokio::test]
async fn refused_steps_leave_the_store_unchanged() {
    let f = Fixture::new().await;
    let (doctors, maria) = f.active_authority("maria").await;
    let pedro = f
        .admin
        .add_user(
            &actor(&maria),
            doctors.authority.id,
            account("pedro", handler_in("services")),
        )
        .await
        .unwrap();
    let pending = f
        .admin
        .register_authority(None, nurses_council(), None)
        .await
        .unwrap()
        .authority
        .id;
    let before = f.snapshot();
    let admin = actor(&maria);
    let handler = actor(&pedro);
    let coordinator = f.coordinator();
    let unknown_authority = AuthorityId::new();
    let unknown_user = UserId::new();

    let mut invalid_draft = nurses_council();
    invalid_draft.competences.clear();
    let outcomes: Vec<(&str, Result<(), AdminError>)> = vec![
        (
            "a handler approves",
            f.admin.approve_authority(&handler, pending).await.map(drop),
        ),
        (
            "an unknown authority is approved",
            f.admin
                .approve_authority(&coordinator, unknown_authority)
                .await
                .map(drop),
        ),
        (
            "an authority without competences registers",
            f.admin
                .register_authority(None, invalid_draft, None)
                .await
                .map(drop),
        ),
        (
            "a self-registration asks for a national role",
            f.admin
                .register_authority(
                    None,
                    nurses_council(),
                    Some(account(
                        "joana",
                        access(&[("*", &[Role::NationalCoordinator])]),
                    )),
                )
                .await
                .map(drop),
        ),
        (
            "a handler registers an authority on its behalf",
            f.admin
                .register_authority(Some(&handler), nurses_council(), None)
                .await
                .map(drop),
        ),
        (
            "an administrator gives the coordinator role",
            f.admin
                .edit_user(
                    &admin,
                    pedro.user.id,
                    UserChanges {
                        access: Some(access(&[("*", &[Role::NationalCoordinator])])),
                        ..UserChanges::default()
                    },
                )
                .await
                .map(drop),
        ),
        (
            "an unknown user is deactivated",
            f.admin
                .deactivate_user(&admin, unknown_user)
                .await
                .map(drop),
        ),
        (
            "a handler deactivates a colleague",
            f.admin
                .deactivate_user(&handler, maria.user.id)
                .await
                .map(drop),
        ),
        (
            "a user is added to a pending authority by its non-member",
            f.admin
                .add_user(&admin, pending, account("joana", Access::new()))
                .await
                .map(drop),
        ),
        (
            "the observer role outside the Commission",
            f.admin
                .add_user(
                    &coordinator,
                    doctors.authority.id,
                    account("joana", access(&[("*", &[Role::CommissionObserver])])),
                )
                .await
                .map(drop),
        ),
        (
            "an over-long reason",
            f.admin
                .reject_authority(&coordinator, pending, &"x".repeat(2001))
                .await
                .map(drop),
        ),
    ];
    for (what, outcome) in outcomes {
        let err = outcome.expect_err(what);
        assert!(!err.to_string().is_empty(), "{what}");
        assert!(
            !matches!(err, AdminError::Store(_) | AdminError::Hashing(_)),
            "{what}: {err}"
        );
    }
    assert_eq!(f.snapshot(), before);
}

#[tokio::test]
async fn a_corrupt_record_is_reported_not_panicked_on() {
    let f = Fixture::new().await;
    let id = f.coordinator.user.id;
    f.store
        .write(move |tx| {
            tx.open_table(USERS)?
                .insert(id.to_bytes().as_slice(), [0xff_u8, 0xff, 0xff].as_slice())?;
            Ok(())
        })
        .await
        .unwrap();
    let read = f.admin.user(id);
    assert!(
        matches!(
            read,
            Err(AdminError::Store(StoreError::Corrupt { what: "user", .. }))
        ),
        "{read:?}"
    );
    let sign_in = f
        .admin
        .verify_password("nimic", "lisboa coordinates imi")
        .await;
    assert!(matches!(sign_in, Err(SignInError::Store(_))), "{sign_in:?}");
    assert!(f.admin.inactive_users(Duration::ZERO).await.is_err());
}

// ----- notification preferences ---------------------------------------------

fn daily_to(address: Option<&str>) -> NotificationPreference {
    NotificationPreference {
        task_emails: TaskEmails::DailySummary,
        address: address.map(str::to_owned),
    }
}

/// The doctors' chamber with its administrator Maria and the request
/// handler Pedro.
async fn doctors_with_pedro(f: &Fixture) -> (AuthorityRecord, UserAccount, UserAccount) {
    let (doctors, maria) = f.active_authority("maria").await;
    let pedro = f
        .admin
        .add_user(
            &actor(&maria),
            doctors.authority.id,
            account("pedro", handler_in("services")),
        )
        .await
        .unwrap();
    (doctors, maria, pedro)
}

#[tokio::test]
async fn a_user_who_never_chose_gets_an_email_for_each_task_at_the_account_address() {
    let f = Fixture::new().await;
    let (_, _, pedro) = doctors_with_pedro(&f).await;
    let id = pedro.user.id;
    assert_eq!(
        f.admin.notification_preference(id).unwrap(),
        NotificationPreference {
            task_emails: TaskEmails::EachTask,
            address: None,
        }
    );
    assert_eq!(
        f.admin.task_email(id).unwrap(),
        Some(TaskEmail {
            user: id,
            frequency: TaskEmails::EachTask,
            address: "pedro@example.pt".into(),
            language: Language::Pt,
        })
    );
    assert!(matches!(
        f.admin.notification_preference(UserId::new()),
        Err(AdminError::UnknownUser(_))
    ));
}

#[tokio::test]
async fn a_user_sets_their_own_email_notifications_and_blank_means_the_account_address() {
    let f = Fixture::new().await;
    let (_, _, pedro) = doctors_with_pedro(&f).await;
    let id = pedro.user.id;
    let saved = f
        .admin
        .set_notification_preference(
            &actor(&pedro),
            id,
            daily_to(Some(" pedro.alves@sns.example.pt ")),
        )
        .await
        .unwrap();
    assert_eq!(saved, daily_to(Some("pedro.alves@sns.example.pt")));
    assert_eq!(f.admin.notification_preference(id).unwrap(), saved);
    let email = f.admin.task_email(id).unwrap().unwrap();
    assert_eq!(email.frequency, TaskEmails::DailySummary);
    assert_eq!(email.address, "pedro.alves@sns.example.pt");

    f.admin
        .set_notification_preference(&actor(&pedro), id, daily_to(Some("   ")))
        .await
        .unwrap();
    assert_eq!(f.admin.notification_preference(id).unwrap(), daily_to(None));
    assert_eq!(
        f.admin.task_email(id).unwrap().unwrap().address,
        "pedro@example.pt"
    );

    // Never: nobody to email, the choice kept.
    let never = NotificationPreference {
        task_emails: TaskEmails::Never,
        address: None,
    };
    f.admin
        .set_notification_preference(&actor(&pedro), id, never.clone())
        .await
        .unwrap();
    assert_eq!(f.admin.task_email(id).unwrap(), None);
    assert_eq!(f.admin.notification_preference(id).unwrap(), never);
}

#[tokio::test]
async fn only_the_user_changes_their_own_email_notifications() {
    let f = Fixture::new().await;
    let (_, maria, pedro) = doctors_with_pedro(&f).await;
    let before = f.snapshot();
    // Neither their authority's administrator nor the national coordinator.
    for someone_else in [actor(&maria), f.coordinator()] {
        assert_not_allowed(
            f.admin
                .set_notification_preference(&someone_else, pedro.user.id, daily_to(None))
                .await,
            "each user chooses their own email notifications",
        );
    }
    // Nor someone claiming to be Pedro from another authority.
    let mut forged = actor(&pedro);
    forged.authority = AuthorityId::new();
    assert_not_allowed(
        f.admin
            .set_notification_preference(&forged, pedro.user.id, daily_to(None))
            .await,
        "another authority",
    );
    assert_eq!(f.snapshot(), before);
    assert_eq!(
        f.admin.notification_preference(pedro.user.id).unwrap(),
        NotificationPreference::default()
    );
}

#[tokio::test]
async fn a_malformed_notification_address_is_refused_and_the_stored_choice_stays() {
    let f = Fixture::new().await;
    let (_, _, pedro) = doctors_with_pedro(&f).await;
    let id = pedro.user.id;
    f.admin
        .set_notification_preference(&actor(&pedro), id, daily_to(Some("pedro@sns.example.pt")))
        .await
        .unwrap();
    let before = f.snapshot();
    for bad in [
        "pedro",
        "pedro@sns",
        "pedro@@sns.example.pt",
        "pedro @sns.example.pt",
    ] {
        let refused = f
            .admin
            .set_notification_preference(
                &actor(&pedro),
                id,
                NotificationPreference {
                    task_emails: TaskEmails::Never,
                    address: Some(bad.into()),
                },
            )
            .await;
        assert!(
            matches!(refused, Err(AdminError::InvalidUser(InvalidUser::Email(_)))),
            "{bad}: {refused:?}"
        );
    }
    assert_eq!(f.snapshot(), before);
    assert_eq!(
        f.admin.notification_preference(id).unwrap(),
        daily_to(Some("pedro@sns.example.pt"))
    );
}

#[tokio::test]
async fn deactivated_users_get_no_task_emails_and_find_their_choice_again_when_reactivated() {
    let f = Fixture::new().await;
    let (doctors, maria, pedro) = doctors_with_pedro(&f).await;
    let authority = doctors.authority.id;
    f.admin
        .set_notification_preference(&actor(&pedro), pedro.user.id, daily_to(None))
        .await
        .unwrap();
    let recipients = |admin: &Admin| -> Vec<(String, TaskEmails)> {
        admin
            .task_emails_of(authority)
            .unwrap()
            .into_iter()
            .map(|e| (e.address, e.frequency))
            .collect()
    };
    assert_eq!(
        recipients(&f.admin),
        [
            ("maria@example.pt".to_owned(), TaskEmails::EachTask),
            ("pedro@example.pt".to_owned(), TaskEmails::DailySummary),
        ]
    );

    f.admin
        .deactivate_user(&actor(&maria), pedro.user.id)
        .await
        .unwrap();
    assert_eq!(f.admin.task_email(pedro.user.id).unwrap(), None);
    assert_eq!(
        recipients(&f.admin),
        [("maria@example.pt".to_owned(), TaskEmails::EachTask)]
    );
    // A deactivated user cannot change it either.
    assert_not_allowed(
        f.admin
            .set_notification_preference(&actor(&pedro), pedro.user.id, daily_to(None))
            .await,
        "your account is deactivated",
    );

    f.admin
        .reactivate_user(&actor(&maria), pedro.user.id)
        .await
        .unwrap();
    assert_eq!(
        f.admin
            .task_email(pedro.user.id)
            .unwrap()
            .map(|e| e.frequency),
        Some(TaskEmails::DailySummary)
    );

    // An authority that is deactivated has nobody to email.
    f.admin
        .deactivate_authority(&f.coordinator(), authority, "merged into another order")
        .await
        .unwrap();
    assert!(recipients(&f.admin).is_empty());
    assert_eq!(f.admin.task_email(maria.user.id).unwrap(), None);
}

#[tokio::test]
async fn notification_preferences_survive_reopening_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let open = |store: Store| async move {
        Admin::open(store, Country::Pt)
            .await
            .unwrap()
            .with_hash_cost(HashCost::Minimal)
    };
    let admin = open(Store::open(&path).unwrap()).await;
    let coordinator = admin
        .create_first_coordinator(
            "nimic",
            "Ana Costa",
            "ana.costa@imi.example.pt",
            Password::from("lisboa coordinates imi"),
        )
        .await
        .unwrap();
    let id = coordinator.user.id;
    admin
        .set_notification_preference(
            &actor(&coordinator),
            id,
            daily_to(Some("nimic@imi.example.pt")),
        )
        .await
        .unwrap();
    drop(admin);

    // The writer thread lets the file go once the last handle is dropped.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let store = loop {
        match Store::open(&path) {
            Ok(store) => break store,
            Err(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(err) => panic!("{err}"),
        }
    };
    let admin = open(store).await;
    assert_eq!(
        admin.notification_preference(id).unwrap(),
        daily_to(Some("nimic@imi.example.pt"))
    );
    assert_eq!(
        admin.task_email(id).unwrap().map(|e| e.address),
        Some("nimic@imi.example.pt".to_owned())
    );
}

mod api_tokens;
