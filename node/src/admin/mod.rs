//! Local administration: the authorities and users a country keeps on its
//! own node.
//!
//! An authority registers (through the public form, or on the invitation of
//! the national coordinator) and waits, *pending*, until the national
//! coordinator approves or rejects it; approved authorities are *active*,
//! published in the replicated directory, and their users may sign in. Each
//! authority's administrators keep its description and its users up to date:
//! roles per legislative area, at least two active users handling each area
//! (substitutes), leavers removed.
//!
//! [`Admin`] is the one entry point the web layer and the CLI call. Every
//! change names the acting user as an [`Actor`]; the acting user's *stored*
//! account decides what they may do (the roles claimed in the `Actor` are not
//! trusted). Every check happens inside the write transaction that makes the
//! change, so two administrators acting at once cannot slip past a check, and
//! a refused change writes nothing.
//!
//! Passwords are stored only as Argon2id PHC strings, hashed on the blocking
//! pool. Each user's email notifications of new tasks are kept beside the
//! accounts ([`NotificationPreference`]), changed only by the user, and read
//! by whoever emails new tasks ([`Admin::task_email`]).
//!
//! ```no_run
//! # async fn demo(store: imi_node::store::Store) -> Result<(), imi_node::admin::AdminError> {
//! use imi_node::admin::{Admin, Password};
//! use imi_protocol::Country;
//!
//! let admin = Admin::open(store, Country::Pt).await?;
//! let coordinator = admin
//!     .create_first_coordinator("nimic", "Ana Costa", "ana.costa@example.pt",
//!         Password::from("a long and private passphrase"))
//!     .await?;
//! let pending = admin.list_authorities(Some(imi_protocol::AuthorityStatus::Pending)).await?;
//! # Ok(()) }
//! ```

mod password;
mod preferences;
#[cfg(test)]
mod tests;
mod tokens;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use imi_protocol::{
    ALL_AREAS, Actor, AreaKey, Authority, AuthorityId, AuthorityStatus, Catalogue, Competence,
    Contact, Country, InvalidAuthority, Language, Role, Timestamp, User, UserId,
};
use redb::{ReadableTable, Table, TableDefinition, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tracing::info;

use crate::store::{Store, StoreError};

pub use password::{
    HashCost, HashingFailed, MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, Password, WeakPassword,
    check_password_policy,
};
pub use preferences::{NotificationPreference, TaskEmail, TaskEmails, UnknownTaskEmails};
pub use tokens::{
    ApiToken, ApiTokenId, BadTokenId, CreatedApiToken, MAX_TOKEN_DAYS, MAX_TOKEN_NAME_CHARS,
    MAX_TOKENS_PER_USER, SECRET_PREFIX, TokenError,
};

/// Authorities of this node: authority id → [`AuthorityRecord`].
pub(crate) const AUTHORITIES: TableDefinition<'_, &[u8], &[u8]> =
    TableDefinition::new("authorities-1");
/// User accounts: user id → the account and its password hash.
pub(crate) const USERS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("users-1");
/// Sign-in names: login (lower case) → user id.
pub(crate) const LOGINS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("logins-1");
/// Users of each authority: authority id ++ user id → ().
pub(crate) const AUTHORITY_USERS: TableDefinition<'_, &[u8], ()> =
    TableDefinition::new("authority-users-1");

/// Creates the administration tables, so readers never meet a missing one.
pub(crate) fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(AUTHORITIES)?;
    tx.open_table(USERS)?;
    tx.open_table(LOGINS)?;
    tx.open_table(AUTHORITY_USERS)?;
    tx.open_table(preferences::PREFERENCES)?;
    tokens::create_tables(tx)?;
    Ok(())
}

/// Roles per legislative area: an area key, or [`ALL_AREAS`] (`"*"`) for
/// roles in every area, mapped to the roles held there.
pub type Access = BTreeMap<String, BTreeSet<Role>>;

/// The roles that handle requests: each competence area of an authority
/// needs two active users holding one of them.
pub const HANDLING_ROLES: [Role; 2] = [Role::RequestHandler, Role::Allocator];

/// The roles only the national coordinator gives or takes away.
pub const NATIONAL_ROLES: [Role; 3] = [
    Role::NationalCoordinator,
    Role::AlertCoordinator,
    Role::CommissionObserver,
];

/// The roles that are held for every area (under [`ALL_AREAS`]) or not at
/// all.
const EVERY_AREA_ROLES: [Role; 3] = [
    Role::AuthorityAdministrator,
    Role::NationalCoordinator,
    Role::CommissionObserver,
];

/// Longest user name and email address, in characters.
const MAX_TEXT_CHARS: usize = 200;
/// Longest reason for a rejection or deactivation, in characters.
const MAX_REASON_CHARS: usize = 2000;
/// Room in the change notification channel.
const EVENT_CAPACITY: usize = 1024;

/// Where the time comes from (milliseconds since the Unix epoch). The system
/// clock in production; tests set their own.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The description of an authority, as its registration form or its
/// administrator gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorityDraft {
    /// Its names, in one or more languages.
    pub names: BTreeMap<Language, String>,
    /// What it is competent for, per legislative area.
    pub competences: Vec<Competence>,
    /// How it is reached.
    pub contact: Contact,
    /// The languages its officials read and write.
    pub languages: BTreeSet<Language>,
}

/// A decision of the national coordinator on an authority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    /// The status it set.
    pub status: AuthorityStatus,
    /// When.
    pub at: Timestamp,
    /// The coordinator who decided.
    pub by: UserId,
    /// Why (rejections and deactivations).
    pub reason: Option<String>,
}

/// An authority as this node keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorityRecord {
    /// The authority, with its current status.
    pub authority: Authority,
    /// When it registered.
    pub registered: Timestamp,
    /// The coordinator who registered it on its behalf (an invitation);
    /// `None` when it registered itself.
    pub registered_by: Option<UserId>,
    /// When its description last changed.
    pub updated: Timestamp,
    /// The coordinator's latest decision on it.
    pub last_decision: Option<StatusChange>,
}

/// A user account to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// Sign-in name: 3 to 64 of `a-z 0-9 . _ - @`, starting with a letter or
    /// digit; stored in lower case.
    pub login: String,
    /// Full name.
    pub name: String,
    /// Email address.
    pub email: String,
    /// Interface language.
    pub language: Language,
    /// Roles per legislative area.
    pub access: Access,
}

/// A new account with its initial password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    /// The account.
    pub user: NewUser,
    /// Its first password.
    pub password: Password,
}

/// Changes to a user account; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserChanges {
    /// New full name.
    pub name: Option<String>,
    /// New email address.
    pub email: Option<String>,
    /// New interface language.
    pub language: Option<Language>,
    /// New roles per area (replaces all of them).
    pub access: Option<Access>,
}

/// A user account as the rest of the node sees it (never with its password
/// hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserAccount {
    /// The user.
    pub user: User,
    /// When the account was created.
    pub created: Timestamp,
    /// The last successful sign-in.
    pub last_sign_in: Option<Timestamp>,
    /// When the password was last set.
    pub password_set: Timestamp,
}

impl UserAccount {
    /// Since when the account has not been used: its last sign-in, or its
    /// creation if it never signed in.
    pub fn idle_since(&self) -> Timestamp {
        self.last_sign_in.unwrap_or(self.created)
    }
}

/// An account with its password hash, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredUser {
    account: UserAccount,
    /// Argon2id PHC string.
    password_hash: String,
}

/// An authority that lacks a substitute in one of its areas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubstituteWarning {
    /// The authority.
    pub authority: AuthorityId,
    /// Its name (in its first language).
    pub name: String,
    /// The legislative area.
    pub area: AreaKey,
    /// How many active users handle requests in that area (fewer than two).
    pub handlers: usize,
}

impl fmt::Display for SubstituteWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let users = match self.handlers {
            0 => "no active user".to_owned(),
            1 => "only one active user".to_owned(),
            n => format!("{n} active users"),
        };
        write!(
            f,
            "{} has {users} handling requests in {}; give a second user the request-handler or allocator role there, so someone can stand in",
            self.name, self.area
        )
    }
}

/// A user who has not signed in for a long time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InactiveUser {
    /// The account.
    pub account: UserAccount,
    /// Since when it has not been used.
    pub idle_since: Timestamp,
}

/// A committed change, for the modules that publish or cache what this one
/// keeps (the directory, sessions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminEvent {
    /// An authority was registered, changed, approved, rejected or
    /// deactivated; read it again to see its state.
    AuthorityChanged(AuthorityId),
    /// A user account was created or changed (roles, password, activation).
    UserChanged(UserId),
}

/// A user account that cannot be saved as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidUser {
    /// The login is not usable.
    #[error("the login {login:?} {reason}")]
    Login {
        /// The login as given.
        login: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The name is blank or too long.
    #[error("the user's name must not be blank and may have at most 200 characters")]
    Name,
    /// The email address does not look like one.
    #[error("{0:?} is not an email address like name@example.org")]
    Email(String),
    /// An access key is neither an area of the catalogue nor `*`.
    #[error("{0:?} is not a legislative area of the catalogue (or * for every area)")]
    UnknownArea(String),
    /// Roles in an area the authority is not competent in.
    #[error("the authority is not competent in {0}, so no one there can hold roles for it")]
    NotCompetent(AreaKey),
    /// A role that exists only for every area, given for one area.
    #[error("the {role} role is held for every area; give it under * instead of {area}")]
    EveryAreaRole {
        /// The role.
        role: Role,
        /// The area it was given for.
        area: String,
    },
    /// The observer role outside the Commission's node.
    #[error("the commission-observer role exists only on the Commission's node")]
    ObserverOutsideCommission,
}

/// An administration step that was refused or failed. Refused steps change
/// nothing.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The acting user may not make this change.
    #[error("you may not {action}: {reason}")]
    NotAllowed {
        /// What was attempted (`"approve the registration of …"`).
        action: String,
        /// Why not.
        reason: String,
    },
    /// No authority with this id on the node.
    #[error("there is no authority {0} on this node")]
    UnknownAuthority(AuthorityId),
    /// No user with this id or login on the node.
    #[error("there is no user {0} on this node")]
    UnknownUser(String),
    /// The login is taken.
    #[error("the login {0:?} is already taken on this node; choose another one")]
    DuplicateLogin(String),
    /// The password does not meet the policy.
    #[error("the password is too weak: {0}")]
    WeakPassword(WeakPassword),
    /// The authority's description is not usable.
    #[error("the authority cannot be saved as described: {0}")]
    InvalidAuthority(InvalidAuthority),
    /// The account's description is not usable.
    #[error("the user cannot be saved as described: {0}")]
    InvalidUser(InvalidUser),
    /// The authority is not in a status that allows the step.
    #[error("cannot {action} {name}: its registration is {status}")]
    WrongStatus {
        /// What was attempted (`"approve"`).
        action: &'static str,
        /// The authority's name.
        name: String,
        /// Its status, in words.
        status: &'static str,
    },
    /// A rejection or deactivation without a reason.
    #[error(
        "give a reason (at most 2000 characters) when you {0}, so the authority knows what to do"
    )]
    Reason(&'static str),
    /// The first coordinator exists already.
    #[error(
        "this node already has users; the first national coordinator is created only once, on a new store"
    )]
    AlreadyInitialised,
    /// A password could not be hashed.
    #[error(transparent)]
    Hashing(#[from] HashingFailed),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

// Not `#[from]`: the reason is already in the message, and a source would
// repeat it in error chains.
impl From<InvalidAuthority> for AdminError {
    fn from(err: InvalidAuthority) -> Self {
        AdminError::InvalidAuthority(err)
    }
}

impl From<WeakPassword> for AdminError {
    fn from(err: WeakPassword) -> Self {
        AdminError::WeakPassword(err)
    }
}

impl From<InvalidUser> for AdminError {
    fn from(err: InvalidUser) -> Self {
        AdminError::InvalidUser(err)
    }
}

/// A sign-in that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Unknown login or wrong password (deliberately not told apart).
    #[error("the login or the password is wrong; check both and try again")]
    WrongCredentials,
    /// The account is deactivated.
    #[error("this account is deactivated; ask your authority's administrator to reactivate it")]
    Deactivated,
    /// The user's authority is not active.
    #[error("{}", authority_not_active(*.0))]
    AuthorityNotActive(AuthorityStatus),
    /// A password could not be checked.
    #[error(transparent)]
    Hashing(#[from] HashingFailed),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn authority_not_active(status: AuthorityStatus) -> &'static str {
    match status {
        AuthorityStatus::Pending => {
            "your authority's registration is waiting for the national coordinator's approval; you can sign in once it is approved"
        }
        AuthorityStatus::Rejected => {
            "your authority's registration was rejected; contact your national IMI coordinator"
        }
        AuthorityStatus::Deactivated | AuthorityStatus::Active => {
            "your authority is deactivated; contact your national IMI coordinator"
        }
    }
}

/// An authority status in words.
pub fn status_word(status: AuthorityStatus) -> &'static str {
    match status {
        AuthorityStatus::Pending => "pending",
        AuthorityStatus::Active => "active",
        AuthorityStatus::Rejected => "rejected",
        AuthorityStatus::Deactivated => "deactivated",
    }
}

/// The authorities and users of one country's node.
///
/// Cheap to clone; every clone works on the same store and sends to the same
/// change notification channel.
#[derive(Clone)]
pub struct Admin {
    store: Store,
    country: Country,
    catalogue: Arc<Catalogue>,
    clock: Clock,
    cost: HashCost,
    events: broadcast::Sender<AdminEvent>,
    /// A hash checked when the login is unknown, so a wrong login takes as
    /// long as a wrong password.
    decoy: Arc<OnceLock<String>>,
}

impl fmt::Debug for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admin")
            .field("store", &self.store)
            .field("country", &self.country)
            .field("cost", &self.cost)
            .finish_non_exhaustive()
    }
}

/// What the acting user may do, from their stored account.
struct Acting {
    account: UserAccount,
    coordinator: bool,
    administrator: bool,
}

impl Acting {
    fn user(&self) -> &User {
        &self.account.user
    }

    /// Whether the acting user administers `authority`'s users and data.
    fn administers(&self, authority: AuthorityId) -> bool {
        self.coordinator || (self.administrator && self.user().authority == authority)
    }
}

impl Admin {
    /// Administration of `country`'s node on `store`, with the built-in
    /// catalogue, the system clock and standard password hashing. The tables
    /// must exist (`create_tables` at start-up).
    pub fn new(store: Store, country: Country) -> Admin {
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        Admin {
            store,
            country,
            catalogue: Arc::new(Catalogue::builtin().clone()),
            clock: Arc::new(|| Timestamp::from_system_time(std::time::SystemTime::now())),
            cost: HashCost::Standard,
            events,
            decoy: Arc::new(OnceLock::new()),
        }
    }

    /// Like [`Admin::new`], after creating the administration tables when
    /// they are missing (for the CLI and tests, which do not start a node).
    pub async fn open(store: Store, country: Country) -> Result<Admin, StoreError> {
        store.write(create_tables).await?;
        Ok(Admin::new(store, country))
    }

    /// Uses `clock` for every time this module records or compares.
    pub fn with_clock(mut self, clock: Clock) -> Admin {
        self.clock = clock;
        self
    }

    /// Hashes new passwords at `cost`.
    pub fn with_hash_cost(mut self, cost: HashCost) -> Admin {
        self.cost = cost;
        self.decoy = Arc::new(OnceLock::new());
        self
    }

    /// Checks competences and access against `catalogue` (the Commission's
    /// current one) instead of the built-in catalogue.
    pub fn with_catalogue(mut self, catalogue: Arc<Catalogue>) -> Admin {
        self.catalogue = catalogue;
        self
    }

    /// The node's country.
    pub fn country(&self) -> Country {
        self.country
    }

    /// Subscribes to committed changes. A receiver that falls more than 1024
    /// changes behind is told it lagged and should read everything again.
    pub fn subscribe(&self) -> broadcast::Receiver<AdminEvent> {
        self.events.subscribe()
    }

    fn now(&self) -> Timestamp {
        (self.clock)()
    }

    fn notify(&self, event: AdminEvent) {
        // No subscriber is not an error: nobody needs to hear of it yet.
        let _ = self.events.send(event);
    }

    /// Runs `change` in the next write transaction. `change` must check
    /// everything before it writes: its `AdminError` leaves the store as it
    /// was.
    async fn write<T, F>(&self, mut change: F) -> Result<T, AdminError>
    where
        T: Send + 'static,
        F: FnMut(&WriteTransaction) -> Result<T, AdminError> + Send + 'static,
    {
        self.store
            .write(move |tx| match change(tx) {
                Err(AdminError::Store(err)) => Err(err),
                other => Ok(other),
            })
            .await?
    }

    /// Runs a read over a snapshot on the blocking pool (whole-table scans).
    async fn scan<T, F>(&self, read: F) -> Result<T, AdminError>
    where
        T: Send + 'static,
        F: FnOnce(&redb::ReadTransaction) -> Result<T, AdminError> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || read(&store.read()?))
            .await
            .map_err(|err| AdminError::Store(StoreError::corrupt("read task", err)))?
    }

    // ----- bootstrap -------------------------------------------------------

    /// Creates the national coordinators' authority (active, competent in
    /// every area of the catalogue) and its first user, who holds the
    /// national-coordinator and authority-administrator roles for every
    /// area. Refused once any user exists. For `imi-node init`.
    pub async fn create_first_coordinator(
        &self,
        login: &str,
        name: &str,
        email: &str,
        password: Password,
    ) -> Result<UserAccount, AdminError> {
        let country = self.country;
        let language = country
            .official_languages()
            .first()
            .copied()
            .unwrap_or(Language::En);
        let mut languages: BTreeSet<Language> =
            country.official_languages().iter().copied().collect();
        languages.insert(Language::En);
        let authority = Authority {
            id: AuthorityId::new(),
            country,
            names: [(
                Language::En,
                format!("National IMI coordinator, {}", country.english_name()),
            )]
            .into(),
            competences: self
                .catalogue
                .areas()
                .iter()
                .map(|area| Competence {
                    area: area.key.clone(),
                    procedures: BTreeSet::new(),
                    professions: BTreeSet::new(),
                    other: vec![],
                })
                .collect(),
            contact: Contact {
                email: Some(email.trim().to_owned()),
                ..Contact::default()
            },
            languages,
            status: AuthorityStatus::Active,
        };
        authority.validate(&self.catalogue)?;
        let access: Access = [(
            ALL_AREAS.to_owned(),
            [Role::NationalCoordinator, Role::AuthorityAdministrator].into(),
        )]
        .into();
        let user = checked_user(
            &authority,
            NewUser {
                login: login.to_owned(),
                name: name.to_owned(),
                email: email.to_owned(),
                language,
                access,
            },
            &self.catalogue,
        )?;
        check_password_policy(&password, &user.login)?;
        let hash = password::hash(self.cost, password).await?;
        let now = self.now();
        let authority_id = authority.id;
        let account = self
            .write(move |tx| {
                let mut t = Tables::open(tx)?;
                if t.users.first().map_err(StoreError::from)?.is_some() {
                    return Err(AdminError::AlreadyInitialised);
                }
                let record = AuthorityRecord {
                    authority: authority.clone(),
                    registered: now,
                    registered_by: None,
                    updated: now,
                    last_decision: None,
                };
                t.put_authority(&record)?;
                t.insert_user(user.clone(), hash.clone(), now)
            })
            .await?;
        info!(country = %country, login = %account.user.login, "first national coordinator created");
        self.notify(AdminEvent::AuthorityChanged(authority_id));
        self.notify(AdminEvent::UserChanged(account.user.id));
        Ok(account)
    }

    // ----- authorities -----------------------------------------------------

    /// Registers an authority, pending until the national coordinator decides.
    ///
    /// `by` is `None` when the authority registers itself (the public form),
    /// or the national coordinator who registers it on its behalf. With
    /// `administrator`, its first user is created in the same step, holding
    /// the authority-administrator role for every area; they can sign in once
    /// the authority is approved.
    pub async fn register_authority(
        &self,
        by: Option<&Actor>,
        draft: AuthorityDraft,
        administrator: Option<NewAccount>,
    ) -> Result<AuthorityRecord, AdminError> {
        let authority = Authority {
            id: AuthorityId::new(),
            country: self.country,
            names: draft.names,
            competences: draft.competences,
            contact: draft.contact,
            languages: draft.languages,
            status: AuthorityStatus::Pending,
        };
        authority.validate(&self.catalogue)?;
        let first_user = match administrator {
            Some(NewAccount { mut user, password }) => {
                user.access
                    .entry(ALL_AREAS.to_owned())
                    .or_default()
                    .insert(Role::AuthorityAdministrator);
                let user = checked_user(&authority, user, &self.catalogue)?;
                check_password_policy(&password, &user.login)?;
                let hash = password::hash(self.cost, password).await?;
                Some((user, hash))
            }
            None => None,
        };
        let by = by.cloned();
        let country = self.country;
        let now = self.now();
        let (record, user_id) = self
            .write(move |tx| {
                let mut t = Tables::open(tx)?;
                let name = display_name(&authority);
                let registered_by = match &by {
                    Some(actor) => {
                        let action = format!("register {name} on its behalf");
                        let acting = t.acting(country, actor, &action)?;
                        if !acting.coordinator {
                            return Err(not_coordinator(action, country));
                        }
                        Some(acting.user().id)
                    }
                    None => None,
                };
                if let Some((user, _)) = &first_user {
                    t.check_login_free(&user.login)?;
                    let granted = national_roles(&user.access);
                    if !granted.is_empty() && registered_by.is_none() {
                        return Err(AdminError::NotAllowed {
                            action: format!("give the {} role", role_list(&granted)),
                            reason: format!(
                                "only the national coordinator of {} gives it",
                                country.english_name()
                            ),
                        });
                    }
                }
                let record = AuthorityRecord {
                    authority: authority.clone(),
                    registered: now,
                    registered_by,
                    updated: now,
                    last_decision: None,
                };
                t.put_authority(&record)?;
                let user_id = match first_user.clone() {
                    Some((user, hash)) => Some(t.insert_user(user, hash, now)?.user.id),
                    None => None,
                };
                Ok((record, user_id))
            })
            .await?;
        info!(authority = %record.authority.id, "authority registered, pending approval");
        self.notify(AdminEvent::AuthorityChanged(record.authority.id));
        if let Some(user) = user_id {
            self.notify(AdminEvent::UserChanged(user));
        }
        Ok(record)
    }

    /// Approves a registration (or reactivates a deactivated or rejected
    /// authority): it becomes active and is published. Only the national
    /// coordinator of this node's country may.
    pub async fn approve_authority(
        &self,
        coordinator: &Actor,
        id: AuthorityId,
    ) -> Result<AuthorityRecord, AdminError> {
        self.decide(coordinator, id, AuthorityStatus::Active, None)
            .await
    }

    /// Rejects a pending registration, saying why. Only the national
    /// coordinator may.
    pub async fn reject_authority(
        &self,
        coordinator: &Actor,
        id: AuthorityId,
        reason: &str,
    ) -> Result<AuthorityRecord, AdminError> {
        let reason = checked_reason(reason, "reject a registration")?;
        self.decide(coordinator, id, AuthorityStatus::Rejected, Some(reason))
            .await
    }

    /// Deactivates an active authority (merged, dissolved), saying why: it
    /// leaves the directory and its users can no longer sign in. Only the
    /// national coordinator may, and not for their own authority.
    pub async fn deactivate_authority(
        &self,
        coordinator: &Actor,
        id: AuthorityId,
        reason: &str,
    ) -> Result<AuthorityRecord, AdminError> {
        let reason = checked_reason(reason, "deactivate an authority")?;
        self.decide(coordinator, id, AuthorityStatus::Deactivated, Some(reason))
            .await
    }

    async fn decide(
        &self,
        coordinator: &Actor,
        id: AuthorityId,
        to: AuthorityStatus,
        reason: Option<String>,
    ) -> Result<AuthorityRecord, AdminError> {
        let actor = coordinator.clone();
        let country = self.country;
        let catalogue = Arc::clone(&self.catalogue);
        let now = self.now();
        let record = self
            .write(move |tx| {
                let mut t = Tables::open(tx)?;
                let mut record = t.authority(id)?;
                let name = display_name(&record.authority);
                let verb = match to {
                    AuthorityStatus::Active => "approve",
                    AuthorityStatus::Rejected => "reject",
                    AuthorityStatus::Deactivated | AuthorityStatus::Pending => "deactivate",
                };
                let action = format!("{verb} {name}");
                let acting = t.acting(country, &actor, &action)?;
                if !acting.coordinator {
                    return Err(not_coordinator(action, country));
                }
                let from = record.authority.status;
                let allowed = match to {
                    AuthorityStatus::Active => from != AuthorityStatus::Active,
                    AuthorityStatus::Rejected => from == AuthorityStatus::Pending,
                    AuthorityStatus::Deactivated => from == AuthorityStatus::Active,
                    AuthorityStatus::Pending => false,
                };
                if !allowed {
                    return Err(AdminError::WrongStatus {
                        action: verb,
                        name,
                        status: status_word(from),
                    });
                }
                if to == AuthorityStatus::Deactivated && acting.user().authority == id {
                    return Err(AdminError::NotAllowed {
                        action,
                        reason: "it is your own authority; another coordinator's authority cannot take over its work".into(),
                    });
                }
                if to == AuthorityStatus::Active {
                    // The catalogue may have changed since it registered.
                    record.authority.validate(&catalogue)?;
                }
                record.authority.status = to;
                record.last_decision = Some(StatusChange {
                    status: to,
                    at: now,
                    by: acting.user().id,
                    reason: reason.clone(),
                });
                t.put_authority(&record)?;
                Ok(record)
            })
            .await?;
        info!(authority = %id, status = status_word(to), "authority status changed");
        self.notify(AdminEvent::AuthorityChanged(id));
        Ok(record)
    }

    /// Replaces an authority's description (names, competences, contact,
    /// languages); its status stays. Its own administrators may change
    /// everything except the list of legislative areas, which only the
    /// national coordinator extends; the coordinator may change any pending
    /// or active authority.
    pub async fn update_authority(
        &self,
        actor: &Actor,
        id: AuthorityId,
        draft: AuthorityDraft,
    ) -> Result<AuthorityRecord, AdminError> {
        let actor = actor.clone();
        let country = self.country;
        let catalogue = Arc::clone(&self.catalogue);
        let now = self.now();
        let record = self
            .write(move |tx| {
                let mut t = Tables::open(tx)?;
                let mut record = t.authority(id)?;
                let name = display_name(&record.authority);
                let action = format!("change the description of {name}");
                let acting = t.acting(country, &actor, &action)?;
                if !acting.administers(id) {
                    return Err(AdminError::NotAllowed {
                        action,
                        reason: "only its own authority administrators and the national coordinator change it".into(),
                    });
                }
                let status = record.authority.status;
                if !matches!(status, AuthorityStatus::Pending | AuthorityStatus::Active) {
                    return Err(AdminError::WrongStatus {
                        action: "change",
                        name,
                        status: status_word(status),
                    });
                }
                let mut updated = record.authority.clone();
                updated.names = draft.names.clone();
                updated.competences = draft.competences.clone();
                updated.contact = draft.contact.clone();
                updated.languages = draft.languages.clone();
                updated.validate(&catalogue)?;
                if !acting.coordinator {
                    let added: Vec<String> = updated
                        .competences
                        .iter()
                        .filter(|c| !record.authority.is_competent_in(&c.area))
                        .map(|c| c.area.to_string())
                        .collect();
                    if !added.is_empty() {
                        return Err(AdminError::NotAllowed {
                            action: format!("add {} to the areas of {name}", added.join(", ")),
                            reason: "access to a new legislative area is granted by the national coordinator; ask them".into(),
                        });
                    }
                }
                record.authority = updated;
                record.updated = now;
                t.put_authority(&record)?;
                Ok(record)
            })
            .await?;
        self.notify(AdminEvent::AuthorityChanged(id));
        Ok(record)
    }

    /// One authority of this node.
    pub fn authority(&self, id: AuthorityId) -> Result<AuthorityRecord, AdminError> {
        let tx = self.store.read()?;
        let table = tx.open_table(AUTHORITIES).map_err(StoreError::from)?;
        get::<AuthorityRecord>(&table, "authority", &id.to_bytes())?
            .ok_or(AdminError::UnknownAuthority(id))
    }

    /// The authorities of this node, all or those with `status`, in order of
    /// registration.
    pub async fn list_authorities(
        &self,
        status: Option<AuthorityStatus>,
    ) -> Result<Vec<AuthorityRecord>, AdminError> {
        self.scan(move |tx| {
            let table = tx.open_table(AUTHORITIES).map_err(StoreError::from)?;
            let mut found = Vec::new();
            for entry in table.iter().map_err(StoreError::from)? {
                let (_, value) = entry.map_err(StoreError::from)?;
                let record: AuthorityRecord = decode("authority", value.value())?;
                if status.is_none_or(|s| s == record.authority.status) {
                    found.push(record);
                }
            }
            Ok(found)
        })
        .await
    }

    /// The active authorities, as the replicated directory publishes them
    /// (every field of an [`Authority`] is public).
    pub async fn published_authorities(&self) -> Result<Vec<Authority>, AdminError> {
        Ok(self
            .list_authorities(Some(AuthorityStatus::Active))
            .await?
            .into_iter()
            .map(|record| record.authority)
            .collect())
    }

    // ----- users -----------------------------------------------------------

    /// Creates a user account of `authority`. Its administrators and the
    /// national coordinator may; the roles of [`NATIONAL_ROLES`] only the
    /// coordinator gives. The authority must be active or pending.
    pub async fn add_user(
        &self,
        actor: &Actor,
        authority: AuthorityId,
        account: NewAccount,
    ) -> Result<UserAccount, AdminError> {
        let NewAccount { user, password } = account;
        let login = normalise_login(&user.login);
        check_login(&login)?;
        check_password_policy(&password, &login)?;
        // Cheap checks first; those that need the authority run in the
        // transaction below.
        check_name(&user.name)?;
        check_email(&user.email)?;
        let hash = password::hash(self.cost, password).await?;
        let actor = actor.clone();
        let country = self.country;
        let catalogue = Arc::clone(&self.catalogue);
        let now = self.now();
        let account = self
            .write(move |tx| {
                let mut t = Tables::open(tx)?;
                let record = t.authority(authority)?;
                let name = display_name(&record.authority);
                let action = format!("add users to {name}");
                let acting = t.acting(country, &actor, &action)?;
                if !acting.administers(authority) {
                    return Err(not_administrator(action, &acting));
                }
                let status = record.authority.status;
                if !matches!(status, AuthorityStatus::Pending | AuthorityStatus::Active) {
                    return Err(AdminError::WrongStatus {
                        action: "add users to",
                        name,
                        status: status_word(status),
                    });
                }
                let user = checked_user(&record.authority, user.clone(), &catalogue)?;
                check_grant(&acting, &Access::new(), &user.access, country)?;
                t.check_login_free(&user.login)?;
                t.insert_user(user, hash.clone(), now)
            })
            .await?;
        info!(user = %account.user.id, authority = %authority, "user added");
        self.notify(AdminEvent::UserChanged(account.user.id));
        Ok(account)
    }

    /// Changes a user's name, email, language or roles. The user's authority
    /// administrators and the national coordinator may; users may change
    /// their own name, email and language, not their roles; nobody removes
    /// their own administrator or coordinator role.
    pub async fn edit_user(
        &self,
        actor: &Actor,
        id: UserId,
        changes: UserChanges,
    ) -> Result<UserAccount, AdminError> {
        if let Some(name) = &changes.name {
            check_name(name)?;
        }
        if let Some(email) = &changes.email {
            check_email(email)?;
        }
        let actor = actor.clone();
        let country = self.country;
        let catalogue = Arc::clone(&self.catalogue);
        let account = self
            .write(move |tx| {
                let mut t = Tables::open(tx)?;
                let own = match t.acting(country, &actor, "change your account") {
                    Ok(acting) if acting.user().id == id && changes.access.is_none() => {
                        Some(acting)
                    }
                    _ => None,
                };
                let (mut stored, acting) = match own {
                    Some(acting) => (t.user(id)?, acting),
                    None => t.target(country, &actor, id, "change the account of")?,
                };
                let record = t.authority(stored.account.user.authority)?;
                let user = &mut stored.account.user;
                let old_access = user.access.clone();
                if let Some(name) = &changes.name {
                    user.name = name.trim().to_owned();
                }
                if let Some(email) = &changes.email {
                    user.email = email.trim().to_owned();
                }
                if let Some(language) = changes.language {
                    user.language = language;
                }
                if let Some(access) = changes.access.clone() {
                    user.access = checked_access(&record.authority, access, &catalogue)?;
                    check_grant(&acting, &old_access, &user.access, country)?;
                    if user.id == acting.user().id {
                        for role in [Role::AuthorityAdministrator, Role::NationalCoordinator] {
                            if holds_everywhere(&old_access, role)
                                && !holds_everywhere(&user.access, role)
                            {
                                return Err(AdminError::NotAllowed {
                                    action: format!("remove your own {role} role"),
                                    reason: "you would lock yourself out; ask another administrator to do it".into(),
                                });
                            }
                        }
                    }
                }
                t.put_user(&stored)?;
                Ok(stored.account)
            })
            .await?;
        self.notify(AdminEvent::UserChanged(id));
        Ok(account)
    }

    /// Sets a user's password: the user themselves (the web layer asks for
    /// the current password first), their authority's administrators (a
    /// reset) or the national coordinator.
    pub async fn set_password(
        &self,
        actor: &Actor,
        id: UserId,
        password: Password,
    ) -> Result<(), AdminError> {
        let target = self.user(id)?;
        check_password_policy(&password, &target.user.login)?;
        let hash = password::hash(self.cost, password).await?;
        let actor = actor.clone();
        let country = self.country;
        let now = self.now();
        self.write(move |tx| {
            let mut t = Tables::open(tx)?;
            let mut stored = match t.acting(country, &actor, "change this password") {
                Ok(acting) if acting.user().id == id => t.user(id)?,
                _ => t.target(country, &actor, id, "set the password of")?.0,
            };
            stored.password_hash = hash.clone();
            stored.account.password_set = now;
            Ok(t.put_user(&stored)?)
        })
        .await?;
        info!(user = %id, "password set");
        self.notify(AdminEvent::UserChanged(id));
        Ok(())
    }

    /// Deactivates a user (a leaver): they can no longer sign in. Not one's
    /// own account.
    pub async fn deactivate_user(
        &self,
        actor: &Actor,
        id: UserId,
    ) -> Result<UserAccount, AdminError> {
        self.set_active(actor, id, false).await
    }

    /// Reactivates a deactivated user.
    pub async fn reactivate_user(
        &self,
        actor: &Actor,
        id: UserId,
    ) -> Result<UserAccount, AdminError> {
        self.set_active(actor, id, true).await
    }

    async fn set_active(
        &self,
        actor: &Actor,
        id: UserId,
        active: bool,
    ) -> Result<UserAccount, AdminError> {
        let actor = actor.clone();
        let country = self.country;
        let account = self
            .write(move |tx| {
                let mut t = Tables::open(tx)?;
                let verb = if active { "reactivate" } else { "deactivate" };
                let (mut stored, acting) = t.target(country, &actor, id, verb)?;
                if !active && acting.user().id == id {
                    return Err(AdminError::NotAllowed {
                        action: "deactivate your own account".into(),
                        reason: "you would lock yourself out; ask another administrator to do it"
                            .into(),
                    });
                }
                if active {
                    let record = t.authority(stored.account.user.authority)?;
                    let status = record.authority.status;
                    if !matches!(status, AuthorityStatus::Pending | AuthorityStatus::Active) {
                        return Err(AdminError::WrongStatus {
                            action: "reactivate users of",
                            name: display_name(&record.authority),
                            status: status_word(status),
                        });
                    }
                }
                stored.account.user.active = active;
                t.put_user(&stored)?;
                Ok(stored.account)
            })
            .await?;
        info!(user = %id, active, "user activation changed");
        self.notify(AdminEvent::UserChanged(id));
        Ok(account)
    }

    /// Signs a user in: checks the password, then that the account and its
    /// authority are active, and records the time. An unknown login and a
    /// wrong password give the same answer after the same work.
    pub async fn verify_password(
        &self,
        login: &str,
        password: &str,
    ) -> Result<UserAccount, SignInError> {
        let login = normalise_login(login);
        let found = self.sign_in_record(&login)?;
        let Some((stored, status)) = found else {
            let decoy = self.decoy_hash().await?;
            let _ = password::verify(password.to_owned(), decoy).await?;
            return Err(SignInError::WrongCredentials);
        };
        if password.chars().count() > MAX_PASSWORD_CHARS
            || !password::verify(password.to_owned(), stored.password_hash.clone()).await?
        {
            return Err(SignInError::WrongCredentials);
        }
        if !stored.account.user.active {
            return Err(SignInError::Deactivated);
        }
        if status != AuthorityStatus::Active {
            return Err(SignInError::AuthorityNotActive(status));
        }
        let rehash = if password::needs_rehash(&stored.password_hash, self.cost) {
            Some(password::hash(self.cost, Password::from(password)).await?)
        } else {
            None
        };
        let id = stored.account.user.id;
        let checked_hash = stored.password_hash;
        let now = self.now();
        let result = self
            .store
            .write(move |tx| {
                let mut t = Tables::open(tx)?;
                let Some(mut stored) = get::<StoredUser>(&t.users, "user", &id.to_bytes())? else {
                    return Ok(Err(SignInError::WrongCredentials));
                };
                // Changed in the meantime: judge by the new state.
                if stored.password_hash != checked_hash {
                    return Ok(Err(SignInError::WrongCredentials));
                }
                if !stored.account.user.active {
                    return Ok(Err(SignInError::Deactivated));
                }
                stored.account.last_sign_in = Some(now);
                if let Some(hash) = &rehash {
                    stored.password_hash = hash.clone();
                }
                t.put_user(&stored)?;
                Ok(Ok(stored.account))
            })
            .await??;
        info!(user = %result.user.id, "signed in");
        Ok(result)
    }

    fn sign_in_record(
        &self,
        login: &str,
    ) -> Result<Option<(StoredUser, AuthorityStatus)>, StoreError> {
        let tx = self.store.read()?;
        let logins = tx.open_table(LOGINS)?;
        let Some(id) = logins.get(login)?.map(|v| v.value().to_vec()) else {
            return Ok(None);
        };
        let users = tx.open_table(USERS)?;
        let Some(stored) = get::<StoredUser>(&users, "user", &id)? else {
            return Ok(None);
        };
        let authorities = tx.open_table(AUTHORITIES)?;
        let status = get::<AuthorityRecord>(
            &authorities,
            "authority",
            &stored.account.user.authority.to_bytes(),
        )?
        .map_or(AuthorityStatus::Deactivated, |r| r.authority.status);
        Ok(Some((stored, status)))
    }

    async fn decoy_hash(&self) -> Result<String, HashingFailed> {
        if let Some(hash) = self.decoy.get() {
            return Ok(hash.clone());
        }
        let hash =
            password::hash(self.cost, Password::from("no such user, no such password")).await?;
        Ok(self.decoy.get_or_init(|| hash).clone())
    }

    /// One user account.
    pub fn user(&self, id: UserId) -> Result<UserAccount, AdminError> {
        let tx = self.store.read()?;
        let users = tx.open_table(USERS).map_err(StoreError::from)?;
        get::<StoredUser>(&users, "user", &id.to_bytes())?
            .map(|stored| stored.account)
            .ok_or_else(|| AdminError::UnknownUser(id.to_string()))
    }

    /// The account with this login (any case).
    pub fn user_by_login(&self, login: &str) -> Result<UserAccount, AdminError> {
        let login = normalise_login(login);
        let tx = self.store.read()?;
        let logins = tx.open_table(LOGINS).map_err(StoreError::from)?;
        let id = logins
            .get(login.as_str())
            .map_err(StoreError::from)?
            .map(|v| v.value().to_vec())
            .ok_or_else(|| AdminError::UnknownUser(format!("{login:?}")))?;
        let users = tx.open_table(USERS).map_err(StoreError::from)?;
        get::<StoredUser>(&users, "user", &id)?
            .map(|stored| stored.account)
            .ok_or_else(|| AdminError::UnknownUser(format!("{login:?}")))
    }

    /// The accounts of an authority (active or not), oldest first.
    pub fn users_of(&self, authority: AuthorityId) -> Result<Vec<UserAccount>, AdminError> {
        let tx = self.store.read()?;
        Ok(stored_users_of(&tx, authority)?
            .into_iter()
            .map(|stored| stored.account)
            .collect())
    }

    // ----- warnings --------------------------------------------------------

    /// Active authorities lacking a substitute: for each of their legislative
    /// areas where fewer than two active users hold a handling role
    /// ([`HANDLING_ROLES`]), one warning naming the authority, the area and
    /// the count.
    pub async fn substitute_warnings(&self) -> Result<Vec<SubstituteWarning>, AdminError> {
        self.scan(|tx| {
            let authorities = tx.open_table(AUTHORITIES).map_err(StoreError::from)?;
            let mut active: BTreeMap<AuthorityId, (Authority, BTreeMap<AreaKey, usize>)> =
                BTreeMap::new();
            for entry in authorities.iter().map_err(StoreError::from)? {
                let (_, value) = entry.map_err(StoreError::from)?;
                let record: AuthorityRecord = decode("authority", value.value())?;
                if record.authority.status == AuthorityStatus::Active {
                    let counts = record
                        .authority
                        .competences
                        .iter()
                        .map(|c| (c.area.clone(), 0))
                        .collect();
                    active.insert(record.authority.id, (record.authority, counts));
                }
            }
            let users = tx.open_table(USERS).map_err(StoreError::from)?;
            for entry in users.iter().map_err(StoreError::from)? {
                let (_, value) = entry.map_err(StoreError::from)?;
                let stored: StoredUser = decode("user", value.value())?;
                let user = &stored.account.user;
                if !user.active {
                    continue;
                }
                let Some((_, counts)) = active.get_mut(&user.authority) else {
                    continue;
                };
                for (area, count) in counts.iter_mut() {
                    let roles = user.roles_for(area.as_str());
                    if HANDLING_ROLES.iter().any(|r| roles.contains(r)) {
                        *count += 1;
                    }
                }
            }
            let mut warnings = Vec::new();
            for (id, (authority, counts)) in active {
                for competence in &authority.competences {
                    let handlers = counts.get(&competence.area).copied().unwrap_or_default();
                    if handlers < 2 {
                        warnings.push(SubstituteWarning {
                            authority: id,
                            name: display_name(&authority),
                            area: competence.area.clone(),
                            handlers,
                        });
                    }
                }
            }
            Ok(warnings)
        })
        .await
    }

    /// Active users of active authorities who have not signed in for longer
    /// than `since` (or, never signed in, were created longer ago), longest
    /// idle first: candidates for removal.
    pub async fn inactive_users(&self, since: Duration) -> Result<Vec<InactiveUser>, AdminError> {
        let since_ms = u64::try_from(since.as_millis()).unwrap_or(u64::MAX);
        let cutoff = self.now().as_millis().saturating_sub(since_ms);
        self.scan(move |tx| {
            let authorities = tx.open_table(AUTHORITIES).map_err(StoreError::from)?;
            let users = tx.open_table(USERS).map_err(StoreError::from)?;
            let mut status = BTreeMap::new();
            let mut found = Vec::new();
            for entry in users.iter().map_err(StoreError::from)? {
                let (_, value) = entry.map_err(StoreError::from)?;
                let stored: StoredUser = decode("user", value.value())?;
                let account = stored.account;
                let idle_since = account.idle_since();
                if !account.user.active || idle_since.as_millis() >= cutoff {
                    continue;
                }
                let authority = account.user.authority;
                let authority_status = match status.get(&authority) {
                    Some(s) => *s,
                    None => {
                        let s = get::<AuthorityRecord>(
                            &authorities,
                            "authority",
                            &authority.to_bytes(),
                        )?
                        .map(|r| r.authority.status);
                        status.insert(authority, s);
                        s
                    }
                };
                if authority_status == Some(AuthorityStatus::Active) {
                    found.push(InactiveUser {
                        account,
                        idle_since,
                    });
                }
            }
            found.sort_by_key(|u| (u.idle_since, u.account.user.id));
            Ok(found)
        })
        .await
    }
}

/// The tables of one write transaction.
struct Tables<'t> {
    authorities: Table<'t, &'static [u8], &'static [u8]>,
    users: Table<'t, &'static [u8], &'static [u8]>,
    logins: Table<'t, &'static str, &'static [u8]>,
    authority_users: Table<'t, &'static [u8], ()>,
}

impl<'t> Tables<'t> {
    fn open(tx: &'t WriteTransaction) -> Result<Tables<'t>, StoreError> {
        Ok(Tables {
            authorities: tx.open_table(AUTHORITIES)?,
            users: tx.open_table(USERS)?,
            logins: tx.open_table(LOGINS)?,
            authority_users: tx.open_table(AUTHORITY_USERS)?,
        })
    }

    fn authority(&self, id: AuthorityId) -> Result<AuthorityRecord, AdminError> {
        get(&self.authorities, "authority", &id.to_bytes())?.ok_or(AdminError::UnknownAuthority(id))
    }

    fn user(&self, id: UserId) -> Result<StoredUser, AdminError> {
        get(&self.users, "user", &id.to_bytes())?
            .ok_or_else(|| AdminError::UnknownUser(id.to_string()))
    }

    fn put_authority(&mut self, record: &AuthorityRecord) -> Result<(), StoreError> {
        self.authorities.insert(
            record.authority.id.to_bytes().as_slice(),
            encode(record).as_slice(),
        )?;
        Ok(())
    }

    fn put_user(&mut self, stored: &StoredUser) -> Result<(), StoreError> {
        self.users.insert(
            stored.account.user.id.to_bytes().as_slice(),
            encode(stored).as_slice(),
        )?;
        Ok(())
    }

    fn check_login_free(&self, login: &str) -> Result<(), AdminError> {
        if self.logins.get(login).map_err(StoreError::from)?.is_some() {
            return Err(AdminError::DuplicateLogin(login.to_owned()));
        }
        Ok(())
    }

    /// Stores a new, already checked account (the login must be free).
    fn insert_user(
        &mut self,
        user: User,
        password_hash: String,
        now: Timestamp,
    ) -> Result<UserAccount, AdminError> {
        let stored = StoredUser {
            account: UserAccount {
                user,
                created: now,
                last_sign_in: None,
                password_set: now,
            },
            password_hash,
        };
        let user = &stored.account.user;
        self.logins
            .insert(user.login.as_str(), user.id.to_bytes().as_slice())
            .map_err(StoreError::from)?;
        self.authority_users
            .insert(index_key(user.authority, user.id).as_slice(), ())
            .map_err(StoreError::from)?;
        self.put_user(&stored)?;
        Ok(stored.account)
    }

    /// The acting user's stored account and what it allows.
    fn acting(&self, country: Country, actor: &Actor, action: &str) -> Result<Acting, AdminError> {
        let refuse = |reason: String| AdminError::NotAllowed {
            action: action.to_owned(),
            reason,
        };
        if actor.country != country {
            return Err(refuse(format!(
                "you act for {}, and this node keeps the authorities and users of {}",
                actor.country.english_name(),
                country.english_name()
            )));
        }
        let Some(stored) = get::<StoredUser>(&self.users, "user", &actor.user.to_bytes())? else {
            return Err(refuse("your account is not known on this node".into()));
        };
        let user = &stored.account.user;
        if user.authority != actor.authority {
            return Err(refuse(
                "your account belongs to another authority than the one you act for".into(),
            ));
        }
        if !user.active {
            return Err(refuse("your account is deactivated".into()));
        }
        let status =
            get::<AuthorityRecord>(&self.authorities, "authority", &user.authority.to_bytes())?
                .map_or(AuthorityStatus::Deactivated, |r| r.authority.status);
        if status != AuthorityStatus::Active {
            return Err(refuse(format!("your authority is {}", status_word(status))));
        }
        let coordinator = holds_everywhere(&user.access, Role::NationalCoordinator);
        let administrator = holds_everywhere(&user.access, Role::AuthorityAdministrator);
        Ok(Acting {
            account: stored.account,
            coordinator,
            administrator,
        })
    }

    /// The account `id` and the acting user, when the actor administers it.
    fn target(
        &self,
        country: Country,
        actor: &Actor,
        id: UserId,
        verb: &str,
    ) -> Result<(StoredUser, Acting), AdminError> {
        let stored = self.user(id)?;
        let action = format!("{verb} {}", stored.account.user.login);
        let acting = self.acting(country, actor, &action)?;
        if !acting.administers(stored.account.user.authority) {
            return Err(not_administrator(action, &acting));
        }
        if holds_everywhere(&stored.account.user.access, Role::NationalCoordinator)
            && !acting.coordinator
        {
            return Err(AdminError::NotAllowed {
                action,
                reason: "they are a national coordinator, whose account only a national coordinator manages".into(),
            });
        }
        Ok((stored, acting))
    }
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).expect("records always encode")
}

fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|err| StoreError::corrupt(what, err))
}

fn get<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    what: &'static str,
    key: &[u8],
) -> Result<Option<T>, StoreError> {
    match table.get(key)? {
        Some(value) => decode(what, value.value()).map(Some),
        None => Ok(None),
    }
}

fn index_key(authority: AuthorityId, user: UserId) -> [u8; 32] {
    let mut key = [0; 32];
    key[..16].copy_from_slice(&authority.to_bytes());
    key[16..].copy_from_slice(&user.to_bytes());
    key
}

/// The stored users of an authority (active or not), oldest first.
fn stored_users_of(
    tx: &redb::ReadTransaction,
    authority: AuthorityId,
) -> Result<Vec<StoredUser>, StoreError> {
    let index = tx.open_table(AUTHORITY_USERS)?;
    let users = tx.open_table(USERS)?;
    let mut to = [0xff; 32];
    to[..16].copy_from_slice(&authority.to_bytes());
    let from = index_key(authority, UserId::from_bytes([0; 16]));
    let mut found = Vec::new();
    for entry in index.range(from.as_slice()..=to.as_slice())? {
        let (key, _) = entry?;
        let user_key = key.value().get(16..).unwrap_or_default().to_vec();
        found.extend(get::<StoredUser>(&users, "user", &user_key)?);
    }
    Ok(found)
}

fn display_name(authority: &Authority) -> String {
    authority
        .names
        .values()
        .next()
        .cloned()
        .unwrap_or_else(|| authority.id.to_string())
}

fn holds_everywhere(access: &Access, role: Role) -> bool {
    access
        .get(ALL_AREAS)
        .is_some_and(|roles| roles.contains(&role))
}

/// The national roles held anywhere in `access`, with where.
fn national_roles(access: &Access) -> BTreeSet<(String, Role)> {
    access
        .iter()
        .flat_map(|(area, roles)| {
            roles
                .iter()
                .filter(|r| NATIONAL_ROLES.contains(r))
                .map(move |r| (area.clone(), *r))
        })
        .collect()
}

fn role_list(roles: &BTreeSet<(String, Role)>) -> String {
    let names: BTreeSet<&str> = roles.iter().map(|(_, r)| r.as_str()).collect();
    names.into_iter().collect::<Vec<_>>().join(", ")
}

fn not_coordinator(action: String, country: Country) -> AdminError {
    AdminError::NotAllowed {
        action,
        reason: format!(
            "only the national IMI coordinator of {} decides this, and your account does not hold the national-coordinator role",
            country.english_name()
        ),
    }
}

fn not_administrator(action: String, acting: &Acting) -> AdminError {
    let reason = if acting.administrator {
        "you administer the users of your own authority only".to_owned()
    } else {
        "only the authority's administrators and the national coordinator manage its users, and your account holds neither role".to_owned()
    };
    AdminError::NotAllowed { action, reason }
}

/// Refuses a change of national roles by someone who is not the national
/// coordinator.
fn check_grant(
    acting: &Acting,
    old: &Access,
    new: &Access,
    country: Country,
) -> Result<(), AdminError> {
    if acting.coordinator {
        return Ok(());
    }
    let before = national_roles(old);
    let after = national_roles(new);
    let changed: BTreeSet<(String, Role)> = before.symmetric_difference(&after).cloned().collect();
    if changed.is_empty() {
        return Ok(());
    }
    Err(AdminError::NotAllowed {
        action: format!("give or take the {} role", role_list(&changed)),
        reason: format!(
            "only the national IMI coordinator of {} does",
            country.english_name()
        ),
    })
}

fn normalise_login(login: &str) -> String {
    login.trim().to_lowercase()
}

fn check_login(login: &str) -> Result<(), InvalidUser> {
    let refuse = |reason| InvalidUser::Login {
        login: login.chars().take(80).collect(),
        reason,
    };
    let chars = login.chars().count();
    if !(3..=64).contains(&chars) {
        return Err(refuse("must have 3 to 64 characters"));
    }
    if !login
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-_@".contains(c))
    {
        return Err(refuse(
            "may contain only letters a-z, digits and the signs . - _ @",
        ));
    }
    if !login.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(refuse("must start with a letter or a digit"));
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), InvalidUser> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_TEXT_CHARS {
        return Err(InvalidUser::Name);
    }
    Ok(())
}

fn check_email(email: &str) -> Result<(), InvalidUser> {
    let email = email.trim();
    let bad = || InvalidUser::Email(email.chars().take(80).collect());
    if email.chars().count() > MAX_TEXT_CHARS || email.chars().any(char::is_whitespace) {
        return Err(bad());
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err(bad());
    };
    if local.is_empty()
        || domain.contains('@')
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
    {
        return Err(bad());
    }
    Ok(())
}

fn checked_reason(reason: &str, action: &'static str) -> Result<String, AdminError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(AdminError::Reason(action));
    }
    Ok(reason.to_owned())
}

/// Checks the roles per area against the authority and the catalogue; drops
/// areas without roles.
fn checked_access(
    authority: &Authority,
    access: Access,
    catalogue: &Catalogue,
) -> Result<Access, InvalidUser> {
    let mut checked = Access::new();
    for (area, roles) in access {
        if roles.is_empty() {
            continue;
        }
        if area != ALL_AREAS {
            let key: AreaKey = area
                .parse()
                .map_err(|_| InvalidUser::UnknownArea(area.clone()))?;
            if catalogue.area(&key).is_none() {
                return Err(InvalidUser::UnknownArea(area));
            }
            if !authority.is_competent_in(&key) {
                return Err(InvalidUser::NotCompetent(key));
            }
            if let Some(role) = roles.iter().find(|r| EVERY_AREA_ROLES.contains(r)) {
                return Err(InvalidUser::EveryAreaRole { role: *role, area });
            }
        }
        if roles.contains(&Role::CommissionObserver) && authority.country != Country::Eu {
            return Err(InvalidUser::ObserverOutsideCommission);
        }
        checked.insert(area, roles);
    }
    Ok(checked)
}

/// A new user of `authority`, checked (the login's uniqueness aside).
fn checked_user(
    authority: &Authority,
    new: NewUser,
    catalogue: &Catalogue,
) -> Result<User, InvalidUser> {
    let login = normalise_login(&new.login);
    check_login(&login)?;
    check_name(&new.name)?;
    check_email(&new.email)?;
    Ok(User {
        id: UserId::new(),
        authority: authority.id,
        login,
        name: new.name.trim().to_owned(),
        email: new.email.trim().to_owned(),
        language: new.language,
        access: checked_access(authority, new.access, catalogue)?,
        active: true,
    })
}
