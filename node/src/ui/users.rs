//! The local data administrator's side of the web UI: the users of their
//! own authority, the areas where nobody stands in for a request handler,
//! who has not signed in for a long time, and the changes the administrator
//! makes (add, roles, deactivate and reactivate, password reset).
//!
//! Every call checks, from the stored accounts, that the caller may use the
//! UI now, holds the authority administrator role for every area, and that
//! the user changed belongs to the caller's own authority; [`Admin`] then
//! checks its own rules again inside the write that makes the change, so a
//! refused change writes nothing.
//!
//! [`Admin`]: crate::admin::Admin

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use imi_protocol::{ALL_AREAS, Actor, Country, Role, UserId};
use imi_web::{
    AuthorityUsers, INACTIVE_DAYS, ManagedUser, NodeError, Official, SubstituteGap, UserDraft,
    UserRefusal,
};
use tracing::info;

use super::{admin_error, stored_account, usable};
use crate::admin::{
    Admin, AdminError, InvalidUser, NATIONAL_ROLES, NewAccount, NewUser, Password, UserAccount,
    UserChanges,
};

/// Roles per legislative area, as the interface speaks of them.
type Access = BTreeMap<String, BTreeSet<Role>>;

/// The users of an authority as its local data administrator manages
/// them, over the node's administration.
pub(super) struct UserDesk {
    admin: Admin,
    country: Country,
}

impl UserDesk {
    pub(super) fn new(admin: Admin, country: Country) -> UserDesk {
        UserDesk { admin, country }
    }

    /// The signed-in administrator and the actor they are, if they may use
    /// the UI now and administer their authority's users.
    async fn administrator(&self, admin: UserId) -> Result<(Official, Actor), NodeError> {
        let official = usable(&self.admin, stored_account(&self.admin, admin)?)?;
        let administers = official
            .access
            .get(ALL_AREAS)
            .is_some_and(|roles| roles.contains(&Role::AuthorityAdministrator));
        if !administers {
            return Err(NodeError::NotAllowed(
                "only your authority's local data administrators manage its users, and your account does not hold that role".into(),
            ));
        }
        let actor = Actor {
            user: official.id,
            authority: official.authority,
            country: self.country,
            roles: Default::default(),
        };
        Ok((official, actor))
    }

    /// A user of the administrator's own authority.
    fn own_authority_user(
        &self,
        official: &Official,
        user: UserId,
    ) -> Result<UserAccount, NodeError> {
        let account = self.admin.user(user).map_err(admin_error)?;
        if account.user.authority != official.authority {
            return Err(NodeError::NotAllowed(
                "you manage the users of your own authority only".into(),
            ));
        }
        Ok(account)
    }

    pub(super) async fn authority_users(&self, admin: UserId) -> Result<AuthorityUsers, NodeError> {
        let (official, _) = self.administrator(admin).await?;
        let authority = official.authority;
        let users = self
            .admin
            .users_of(authority)
            .map_err(admin_error)?
            .into_iter()
            .map(managed_user)
            .collect();
        let gaps = self
            .admin
            .substitute_warnings()
            .await
            .map_err(admin_error)?
            .into_iter()
            .filter(|w| w.authority == authority)
            .map(|w| SubstituteGap {
                area: w.area,
                handlers: w.handlers,
            })
            .collect();
        let inactive = self
            .admin
            .inactive_users(Duration::from_secs(INACTIVE_DAYS * 24 * 60 * 60))
            .await
            .map_err(admin_error)?
            .into_iter()
            .filter(|u| u.account.user.authority == authority)
            .map(|u| u.account.user.id)
            .collect();
        Ok(AuthorityUsers {
            authority,
            authority_names: official.authority_names,
            areas: official.areas,
            users,
            gaps,
            inactive,
        })
    }

    pub(super) async fn add_user(
        &self,
        admin: UserId,
        draft: UserDraft,
    ) -> Result<UserId, NodeError> {
        let (official, actor) = self.administrator(admin).await?;
        check_no_national_roles(&draft.access)?;
        let account = NewAccount {
            user: NewUser {
                login: draft.login,
                name: draft.name,
                email: draft.email,
                language: draft.language,
                access: draft.access,
            },
            password: Password::new(draft.password),
        };
        let added = self
            .admin
            .add_user(&actor, official.authority, account)
            .await
            .map_err(refused)?;
        info!(admin = %admin, user = %added.user.id, "user added in the web UI");
        Ok(added.user.id)
    }

    pub(super) async fn set_roles(
        &self,
        admin: UserId,
        user: UserId,
        access: Access,
    ) -> Result<(), NodeError> {
        let (official, actor) = self.administrator(admin).await?;
        self.own_authority_user(&official, user)?;
        check_no_national_roles(&access)?;
        let keeps_administrator = access
            .get(ALL_AREAS)
            .is_some_and(|roles| roles.contains(&Role::AuthorityAdministrator));
        if user == admin && !keeps_administrator {
            return Err(NodeError::UserRefused {
                refusal: UserRefusal::OwnAccount,
                reason: "you may not remove your own administrator role: ask another administrator to do it".into(),
            });
        }
        let changes = UserChanges {
            access: Some(access),
            ..UserChanges::default()
        };
        self.admin
            .edit_user(&actor, user, changes)
            .await
            .map_err(refused)?;
        info!(admin = %admin, user = %user, "roles changed in the web UI");
        Ok(())
    }

    pub(super) async fn set_active(
        &self,
        admin: UserId,
        user: UserId,
        active: bool,
    ) -> Result<(), NodeError> {
        let (official, actor) = self.administrator(admin).await?;
        self.own_authority_user(&official, user)?;
        if user == admin && !active {
            return Err(NodeError::UserRefused {
                refusal: UserRefusal::OwnAccount,
                reason:
                    "you may not deactivate your own account: ask another administrator to do it"
                        .into(),
            });
        }
        let changed = if active {
            self.admin.reactivate_user(&actor, user).await
        } else {
            self.admin.deactivate_user(&actor, user).await
        };
        changed.map_err(refused)?;
        info!(admin = %admin, user = %user, active, "user activation changed in the web UI");
        Ok(())
    }

    pub(super) async fn reset_password(
        &self,
        admin: UserId,
        user: UserId,
        password: &str,
    ) -> Result<(), NodeError> {
        let (official, actor) = self.administrator(admin).await?;
        self.own_authority_user(&official, user)?;
        self.admin
            .set_password(&actor, user, Password::new(password))
            .await
            .map_err(refused)?;
        info!(admin = %admin, user = %user, "password reset in the web UI");
        Ok(())
    }
}

fn managed_user(account: UserAccount) -> ManagedUser {
    let user = account.user;
    ManagedUser {
        id: user.id,
        login: user.login,
        name: user.name,
        email: user.email,
        language: user.language,
        access: user.access,
        active: user.active,
        created: account.created,
        last_sign_in: account.last_sign_in,
    }
}

/// Refuses the roles only the national coordinator gives, which the
/// administrator's forms do not offer.
fn check_no_national_roles(access: &Access) -> Result<(), NodeError> {
    let national = access
        .values()
        .flatten()
        .any(|role| NATIONAL_ROLES.contains(role));
    if national {
        return Err(NodeError::UserRefused {
            refusal: UserRefusal::BadRoles,
            reason: "only the national coordinator gives the national roles".into(),
        });
    }
    Ok(())
}

/// The administration's refusal of a user form, naming the field at fault;
/// other errors as every call maps them.
fn refused(err: AdminError) -> NodeError {
    let refusal = match &err {
        AdminError::DuplicateLogin(_) => UserRefusal::DuplicateLogin,
        AdminError::WeakPassword(_) => UserRefusal::WeakPassword,
        AdminError::InvalidUser(InvalidUser::Login { .. }) => UserRefusal::BadLogin,
        AdminError::InvalidUser(InvalidUser::Name) => UserRefusal::BadName,
        AdminError::InvalidUser(InvalidUser::Email(_)) => UserRefusal::BadEmail,
        AdminError::InvalidUser(_) => UserRefusal::BadRoles,
        _ => return admin_error(err),
    };
    NodeError::UserRefused {
        refusal,
        reason: err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use imi_protocol::{Competence, Contact, Language};

    use super::*;
    use crate::admin::{AuthorityDraft, HashCost};
    use crate::store::Store;

    const PQ: &str = "professional-qualifications";

    struct Fixture {
        _dir: tempfile::TempDir,
        admin: Admin,
        desk: UserDesk,
        coordinator: Actor,
    }

    impl Fixture {
        async fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(&dir.path().join("store.redb")).unwrap();
            let admin = Admin::open(store, Country::Fi)
                .await
                .unwrap()
                .with_hash_cost(HashCost::Minimal);
            let coordinator = admin
                .create_first_coordinator(
                    "nimic",
                    "Kansallinen koordinaattori",
                    "nimic@imi.example.fi",
                    Password::from("helsinki coordinates imi"),
                )
                .await
                .unwrap()
                .user
                .actor_for(Country::Fi, ALL_AREAS);
            Fixture {
                _dir: dir,
                desk: UserDesk::new(admin.clone(), Country::Fi),
                admin,
                coordinator,
            }
        }

        /// An approved authority competent in professional qualifications
        /// with its administrator `login`.
        async fn authority(&self, name: &str, login: &str) -> UserId {
            let draft = AuthorityDraft {
                names: [(Language::Fi, name.to_owned())].into(),
                competences: vec![Competence {
                    area: PQ.parse().unwrap(),
                    procedures: BTreeSet::new(),
                    professions: BTreeSet::new(),
                    other: vec![],
                }],
                contact: Contact::default(),
                languages: [Language::Fi].into(),
            };
            let record = self
                .admin
                .register_authority(Some(&self.coordinator), draft, None)
                .await
                .unwrap();
            let id = record.authority.id;
            self.admin
                .approve_authority(&self.coordinator, id)
                .await
                .unwrap();
            let access: Access =
                [(ALL_AREAS.to_owned(), [Role::AuthorityAdministrator].into())].into();
            self.admin
                .add_user(&self.coordinator, id, new_account(login, access))
                .await
                .unwrap()
                .user
                .id
        }

        /// A request handler of the administrator `of`'s authority.
        async fn handler(&self, of: UserId, login: &str) -> UserId {
            self.desk.add_user(of, draft(login)).await.unwrap()
        }
    }

    fn handler_access() -> Access {
        [(PQ.to_owned(), [Role::RequestHandler].into())].into()
    }

    fn new_account(login: &str, access: Access) -> NewAccount {
        NewAccount {
            user: NewUser {
                login: login.to_owned(),
                name: format!("Virkailija {login}"),
                email: format!("{login}@example.fi"),
                language: Language::Fi,
                access,
            },
            password: Password::from("a long and private passphrase"),
        }
    }

    fn draft(login: &str) -> UserDraft {
        UserDraft {
            login: login.to_owned(),
            name: format!("Virkailija {login}"),
            email: format!("{login}@example.fi"),
            language: Language::Fi,
            access: handler_access(),
            password: "a long and private passphrase".to_owned(),
        }
    }

    fn assert_not_allowed<T: std::fmt::Debug>(result: Result<T, NodeError>) {
        assert!(
            matches!(result, Err(NodeError::NotAllowed(_))),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn the_administrator_sees_the_missing_substitute_until_a_second_handler_is_added() {
        let f = Fixture::new().await;
        let valvira = f.authority("Valvira", "valvira-admin").await;
        f.authority("Fimea", "fimea-admin").await;
        let users = f.desk.authority_users(valvira).await.unwrap();
        assert_eq!(users.users.len(), 1, "only Valvira's own users");
        assert_eq!(users.gaps.len(), 1);
        assert_eq!(users.gaps[0].handlers, 0);
        f.handler(valvira, "aino").await;
        let users = f.desk.authority_users(valvira).await.unwrap();
        assert_eq!(users.gaps[0].handlers, 1);
        f.handler(valvira, "eero").await;
        let users = f.desk.authority_users(valvira).await.unwrap();
        assert!(users.gaps.is_empty(), "{:?}", users.gaps);
        assert_eq!(users.users.len(), 3);
    }

    #[tokio::test]
    async fn another_authoritys_administrator_a_request_handler_and_a_deactivated_administrator_are_refused()
     {
        let f = Fixture::new().await;
        let valvira = f.authority("Valvira", "valvira-admin").await;
        let fimea = f.authority("Fimea", "fimea-admin").await;
        let aino = f.handler(valvira, "aino").await;
        let before = f
            .admin
            .users_of(f.admin.user(valvira).unwrap().user.authority);

        // The administrator of another authority: not Valvira's users.
        assert_not_allowed(f.desk.set_active(fimea, aino, false).await);
        assert_not_allowed(f.desk.set_roles(fimea, aino, Access::new()).await);
        assert_not_allowed(
            f.desk
                .reset_password(fimea, aino, "another long passphrase")
                .await,
        );

        // A request handler: no users page, no changes.
        assert_not_allowed(f.desk.authority_users(aino).await);
        assert_not_allowed(f.desk.add_user(aino, draft("eero")).await);
        assert_not_allowed(f.desk.set_active(aino, valvira, false).await);

        // A deactivated administrator: their session ends.
        let second = f
            .admin
            .add_user(
                &f.coordinator,
                f.admin.user(valvira).unwrap().user.authority,
                new_account(
                    "valvira-admin-2",
                    [(ALL_AREAS.to_owned(), [Role::AuthorityAdministrator].into())].into(),
                ),
            )
            .await
            .unwrap()
            .user
            .id;
        f.desk.set_active(valvira, second, false).await.unwrap();
        assert_eq!(
            f.desk.authority_users(second).await.unwrap_err(),
            NodeError::Deactivated
        );
        assert_eq!(
            f.desk.add_user(second, draft("eero")).await.unwrap_err(),
            NodeError::Deactivated
        );
        assert!(f.admin.user_by_login("eero").is_err(), "nothing created");
        let after = f
            .admin
            .users_of(f.admin.user(valvira).unwrap().user.authority);
        let active = |users: &[UserAccount], id| {
            users
                .iter()
                .find(|u| u.user.id == id)
                .map(|u| u.user.active)
        };
        assert_eq!(active(&before.unwrap(), aino), Some(true));
        assert_eq!(active(&after.unwrap(), aino), Some(true));
    }

    #[tokio::test]
    async fn refusals_name_the_field_and_change_nothing() {
        let f = Fixture::new().await;
        let valvira = f.authority("Valvira", "valvira-admin").await;
        f.handler(valvira, "aino").await;
        fn refusal<T: std::fmt::Debug>(result: Result<T, NodeError>) -> UserRefusal {
            match result {
                Err(NodeError::UserRefused { refusal, .. }) => refusal,
                other => panic!("not a refusal: {other:?}"),
            }
        }
        assert_eq!(
            refusal(f.desk.add_user(valvira, draft("AINO")).await),
            UserRefusal::DuplicateLogin
        );
        let weak = UserDraft {
            password: "short".into(),
            ..draft("eero")
        };
        assert_eq!(
            refusal(f.desk.add_user(valvira, weak).await),
            UserRefusal::WeakPassword
        );
        let national = UserDraft {
            access: [(ALL_AREAS.to_owned(), [Role::NationalCoordinator].into())].into(),
            ..draft("eero")
        };
        assert_eq!(
            refusal(f.desk.add_user(valvira, national).await),
            UserRefusal::BadRoles
        );
        assert!(f.admin.user_by_login("eero").is_err(), "nothing created");
        assert_eq!(
            refusal(f.desk.set_active(valvira, valvira, false).await),
            UserRefusal::OwnAccount
        );
        assert_eq!(
            refusal(f.desk.set_roles(valvira, valvira, handler_access()).await),
            UserRefusal::OwnAccount
        );
        assert!(f.admin.user(valvira).unwrap().user.active);
    }
}
