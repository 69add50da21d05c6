//! The node's side of the web UI: [`NodeUi`] implements the interface the
//! `web` crate owns ([`imi_web::NodeInterface`]) over the node's real
//! administration tables, replicated directory, search index and store.
//!
//! Rights are decided from the *stored* account on every call: a
//! deactivated user, or a user of an authority that is no longer active, is
//! refused at once, whatever their session says.

mod cases;
mod idempotency;
mod serve;
mod sessions;
#[cfg(test)]
mod tests;
mod users;

use std::sync::Arc;

use async_trait::async_trait;
use imi_protocol::{
    ALL_AREAS, AuthorityId, AuthorityStatus, Catalogue, Country, Language, Timestamp, UserId,
};
use imi_search::{Filters, Query};
use imi_web::{
    ApiTokenView, AuthorityPage, CompetenceView, EntryKind, HelpdeskContactView, HelpdeskView,
    IdempotencyClaim, KeptResponse, NewApiToken, NodeError, NodeInfo, NodeInterface,
    NodeStatusView, Official, PeerStatusView, RegisterView, SearchHit, SearchPage, SearchQuery,
    StoredSession,
};
use tracing::warn;

use crate::admin::{
    Admin, AdminError, ApiToken, ApiTokenId, NotificationPreference, Password, SignInError,
    TaskEmails, TokenError, UnknownTaskEmails, UserAccount, UserChanges,
};
use crate::cases::{CaseApp, CaseDesk};
use crate::directory::{Directory, Register};
use crate::index::DirectorySearch;
use crate::store::{Store, StoreError};

pub use serve::{UiServer, UiSetup, UiStartError};

/// What the UI shows about the node, beyond what the node itself knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiOptions {
    /// Pages say this is a training environment.
    pub training: bool,
    /// The language of the pages when nothing else chooses one.
    pub default_language: Language,
}

/// The web UI's view of a running node.
#[derive(Clone)]
pub struct NodeUi {
    info: NodeInfo,
    admin: Admin,
    directory: Directory,
    search: DirectorySearch,
    store: Store,
    cases: CaseDesk,
    catalogue: Arc<Catalogue>,
    net: crate::net::NetworkHandle,
}

impl std::fmt::Debug for NodeUi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeUi")
            .field("node", &self.info.address)
            .finish_non_exhaustive()
    }
}

impl NodeUi {
    /// The UI's view of `node`; creates the sessions and idempotency keys
    /// tables if needed.
    pub async fn new(
        node: &crate::node::Node<CaseApp>,
        options: UiOptions,
    ) -> Result<NodeUi, StoreError> {
        sessions::create_table(node.store()).await?;
        idempotency::create_table(node.store()).await?;
        Ok(NodeUi {
            info: NodeInfo {
                country: node.address().country,
                address: node.address().to_string(),
                training: options.training,
                default_language: options.default_language,
            },
            admin: node.admin().clone(),
            directory: node.directory().clone(),
            search: node.search().clone(),
            store: node.store().clone(),
            cases: node.cases(),
            catalogue: Arc::new(Catalogue::builtin().clone()),
            net: node.net().clone(),
        })
    }

    /// The stored account of a signed-in user.
    pub(super) fn account(&self, user: UserId) -> Result<UserAccount, NodeError> {
        stored_account(&self.admin, user)
    }

    /// The account, if it may use the UI now.
    pub(super) fn usable(&self, account: UserAccount) -> Result<Official, NodeError> {
        usable(&self.admin, account)
    }

    /// The local data administrator's side of the UI.
    fn users(&self) -> users::UserDesk {
        users::UserDesk::new(self.admin.clone(), self.info.country)
    }

    /// The user acting on their own account, if it may use the UI now (the
    /// roles are left out: the stored account decides).
    async fn own_actor(&self, user: UserId) -> Result<imi_protocol::Actor, NodeError> {
        let official = self.official(user).await?;
        Ok(imi_protocol::Actor {
            user: official.id,
            authority: official.authority,
            country: self.info.country,
            roles: Default::default(),
        })
    }

    fn register_url(&self, country: Country, id: &str) -> Option<String> {
        self.directory
            .registers_of(country)
            .into_iter()
            .find(|r| r.id == id)
            .map(|r| r.url)
    }
}

/// The stored account of a signed-in user.
fn stored_account(admin: &Admin, user: UserId) -> Result<UserAccount, NodeError> {
    admin.user(user).map_err(|err| match err {
        // A session of a removed account ends like a deactivated one.
        AdminError::UnknownUser(_) => NodeError::Deactivated,
        other => admin_error(other),
    })
}

/// The account, if it may use the UI now: active, of an active authority.
fn usable(admin: &Admin, account: UserAccount) -> Result<Official, NodeError> {
    if !account.user.active {
        return Err(NodeError::Deactivated);
    }
    let record = admin
        .authority(account.user.authority)
        .map_err(admin_error)?;
    if record.authority.status != AuthorityStatus::Active {
        return Err(NodeError::AuthorityNotActive);
    }
    let user = account.user;
    Ok(Official {
        id: user.id,
        login: user.login,
        name: user.name,
        email: user.email,
        language: user.language,
        authority: user.authority,
        authority_names: record.authority.names,
        areas: record
            .authority
            .competences
            .into_iter()
            .map(|c| c.area)
            .collect(),
        access: user.access,
        password_set: account.password_set,
    })
}

fn admin_error(err: AdminError) -> NodeError {
    match err {
        AdminError::NotAllowed { action, reason } => {
            NodeError::NotAllowed(format!("you may not {action}: {reason}"))
        }
        AdminError::UnknownAuthority(_) | AdminError::UnknownUser(_) => {
            NodeError::NotFound(err.to_string())
        }
        AdminError::WeakPassword(weak) => NodeError::WeakPassword(weak.to_string()),
        AdminError::InvalidAuthority(_)
        | AdminError::InvalidUser(_)
        | AdminError::DuplicateLogin(_)
        | AdminError::WrongStatus { .. }
        | AdminError::Reason(_)
        | AdminError::AlreadyInitialised => NodeError::Invalid(err.to_string()),
        AdminError::Hashing(_) | AdminError::Store(_) => NodeError::Unavailable(err.to_string()),
    }
}

fn sign_in_error(err: SignInError) -> NodeError {
    match err {
        SignInError::WrongCredentials => NodeError::WrongCredentials,
        SignInError::Deactivated => NodeError::Deactivated,
        SignInError::AuthorityNotActive(_) => NodeError::AuthorityNotActive,
        SignInError::Hashing(_) | SignInError::Store(_) => NodeError::Unavailable(err.to_string()),
    }
}

fn token_error(err: TokenError) -> NodeError {
    match err {
        TokenError::Name | TokenError::Expiry | TokenError::TooMany => {
            NodeError::Invalid(err.to_string())
        }
        TokenError::UnknownToken(_) => NodeError::NotFound(err.to_string()),
        // A session of a removed account ends like a deactivated one.
        TokenError::UnknownUser(_) | TokenError::Deactivated => NodeError::Deactivated,
        TokenError::AuthorityNotActive => NodeError::AuthorityNotActive,
        TokenError::NotValid => NodeError::WrongCredentials,
        TokenError::Store(_) => NodeError::Unavailable(err.to_string()),
    }
}

fn key_error(err: idempotency::KeyError) -> NodeError {
    match err {
        idempotency::KeyError::Refused(refused) => NodeError::Invalid(refused.to_string()),
        idempotency::KeyError::Store(err) => store_error(err),
    }
}

fn token_view(token: ApiToken) -> ApiTokenView {
    ApiTokenView {
        id: token.id.to_string(),
        name: token.name,
        created: token.created,
        expires: token.expires,
        last_used: token.last_used,
    }
}

fn store_error(err: impl std::fmt::Display) -> NodeError {
    NodeError::Unavailable(err.to_string())
}

fn register_view(register: Register) -> RegisterView {
    RegisterView {
        id: register.id,
        country: register.country,
        names: register.names,
        url: register.url,
        areas: register.areas.into_iter().collect(),
        professions: register.professions.into_iter().collect(),
        languages: register.languages,
    }
}

#[async_trait]
impl NodeInterface for NodeUi {
    fn info(&self) -> NodeInfo {
        self.info.clone()
    }

    fn catalogue(&self) -> Arc<Catalogue> {
        Arc::clone(&self.catalogue)
    }

    async fn sign_in(&self, login: &str, password: &str) -> Result<Official, NodeError> {
        let account = self
            .admin
            .verify_password(login, password)
            .await
            .map_err(sign_in_error)?;
        self.usable(account)
    }

    async fn official(&self, user: UserId) -> Result<Official, NodeError> {
        self.usable(self.account(user)?)
    }

    async fn change_password(
        &self,
        user: UserId,
        current: &str,
        new: &str,
    ) -> Result<(), NodeError> {
        let official = self.official(user).await?;
        let account = self
            .admin
            .verify_password(&official.login, current)
            .await
            .map_err(sign_in_error)?;
        let actor = account.user.actor_for(self.info.country, ALL_AREAS);
        self.admin
            .set_password(&actor, user, Password::new(new))
            .await
            .map_err(admin_error)
    }

    async fn set_language(&self, user: UserId, language: Language) -> Result<(), NodeError> {
        let actor = self.own_actor(user).await?;
        self.admin
            .edit_user(
                &actor,
                user,
                UserChanges {
                    language: Some(language),
                    ..UserChanges::default()
                },
            )
            .await
            .map(|_| ())
            .map_err(admin_error)
    }

    async fn task_emails(&self, user: UserId) -> Result<imi_web::TaskEmailChoice, NodeError> {
        self.official(user).await?;
        let preference = self
            .admin
            .notification_preference(user)
            .map_err(admin_error)?;
        Ok(imi_web::TaskEmailChoice {
            task_emails: preference.task_emails.as_str().to_owned(),
            address: preference.address,
        })
    }

    async fn set_task_emails(
        &self,
        user: UserId,
        task_emails: &str,
        address: Option<&str>,
    ) -> Result<(), NodeError> {
        let task_emails: TaskEmails = task_emails
            .parse()
            .map_err(|err: UnknownTaskEmails| NodeError::Invalid(err.to_string()))?;
        let actor = self.own_actor(user).await?;
        let preference = NotificationPreference {
            task_emails,
            address: address.map(str::to_owned),
        };
        self.admin
            .set_notification_preference(&actor, user, preference)
            .await
            .map(|_| ())
            .map_err(admin_error)
    }

    async fn search(&self, query: SearchQuery) -> Result<SearchPage, NodeError> {
        let filters = Filters {
            countries: query.countries,
            areas: query.areas,
            procedures: query.procedures,
            professions: query.professions,
            kind: query.kind.map(|kind| match kind {
                EntryKind::Authority => imi_search::EntryKind::Authority,
                EntryKind::Register => imi_search::EntryKind::Register,
            }),
        };
        let found = self
            .search
            .search(
                Query::new(query.text, query.language)
                    .with_filters(filters)
                    .page(query.offset, query.limit),
            )
            .await
            .map_err(|err| match err {
                crate::index::IndexError::Search(reason) if reason.contains("page") => {
                    NodeError::Invalid(reason)
                }
                other => store_error(other),
            })?;
        let hits = found
            .hits
            .into_iter()
            .map(|hit| {
                // Search ids name the country: `PT/<id>`, `register:PT/<id>`.
                let bare = |id: &str| -> String {
                    let id = id.strip_prefix("register:").unwrap_or(id);
                    id.split_once('/').map_or(id, |(_, id)| id).to_owned()
                };
                let (kind, id, url) = match hit.kind {
                    imi_search::EntryKind::Authority => (EntryKind::Authority, bare(&hit.id), None),
                    imi_search::EntryKind::Register => {
                        let id = bare(&hit.id);
                        let url = self.register_url(hit.country, &id);
                        (EntryKind::Register, id, url)
                    }
                };
                SearchHit {
                    kind,
                    id,
                    country: hit.country,
                    name: hit.display_name,
                    name_language: hit.display_language,
                    city: hit.city,
                    competences: hit.competences.into_iter().map(|c| c.label).collect(),
                    url,
                }
            })
            .collect();
        Ok(SearchPage {
            total: found.total,
            hits,
            countries: found.facets.countries,
            areas: found.facets.areas,
            countries_in_text: found.countries_in_text,
        })
    }

    async fn authority(
        &self,
        country: Country,
        id: AuthorityId,
    ) -> Result<AuthorityPage, NodeError> {
        let found = self
            .directory
            .authority(country, id)
            .ok_or_else(|| NodeError::NotFound(format!("authority {id}")))?;
        Ok(AuthorityPage {
            id: found.id,
            country: found.country,
            names: found.names,
            competences: found
                .competences
                .into_iter()
                .map(|c| CompetenceView {
                    area: c.area,
                    procedures: c.procedures.into_iter().collect(),
                    professions: c.professions.into_iter().collect(),
                    other: c.other,
                })
                .collect(),
            contact: found.contact,
            languages: found.languages,
            node: found.node.to_string(),
        })
    }

    async fn registers(&self, country: Option<Country>) -> Result<Vec<RegisterView>, NodeError> {
        let registers = match country {
            Some(country) => self.directory.registers_of(country),
            None => self.directory.registers(),
        };
        Ok(registers.into_iter().map(register_view).collect())
    }

    async fn helpdesks(&self) -> Result<Vec<HelpdeskView>, NodeError> {
        Ok(Country::ALL
            .iter()
            .filter_map(|country| {
                let desk = self.directory.helpdesk(*country)?;
                Some(HelpdeskView {
                    country: *country,
                    contacts: desk
                        .contacts
                        .into_iter()
                        .map(|c| HelpdeskContactView {
                            name: c.name,
                            email: c.email,
                            phone: c.phone,
                            hours: c.hours,
                            languages: c.languages,
                        })
                        .collect(),
                })
            })
            .collect())
    }

    async fn tasks(
        &self,
        user: UserId,
        query: imi_web::TaskQuery,
    ) -> Result<imi_web::TaskList, NodeError> {
        self.task_list(user, query).await
    }

    async fn case(
        &self,
        user: UserId,
        case: imi_protocol::CaseId,
    ) -> Result<imi_web::CaseView, NodeError> {
        self.case_view(user, case).await
    }

    async fn new_request(
        &self,
        user: UserId,
        request: imi_web::NewRequest,
    ) -> Result<imi_protocol::CaseId, NodeError> {
        self.open_request(user, request).await
    }

    async fn act(
        &self,
        user: UserId,
        case: imi_protocol::CaseId,
        action: imi_protocol::RequestAction,
        content: imi_protocol::Content,
    ) -> Result<(), NodeError> {
        self.take_step(user, case, action, content).await
    }

    async fn attachment(
        &self,
        user: UserId,
        case: imi_protocol::CaseId,
        step: imi_protocol::StepId,
        index: usize,
    ) -> Result<imi_protocol::Attachment, NodeError> {
        self.attachment_of(user, case, step, index).await
    }

    async fn api_tokens(&self, user: UserId) -> Result<Vec<ApiTokenView>, NodeError> {
        self.official(user).await?;
        let tokens = self.admin.api_tokens(user).map_err(token_error)?;
        Ok(tokens.into_iter().map(token_view).collect())
    }

    async fn create_api_token(
        &self,
        user: UserId,
        name: &str,
        expires: Timestamp,
    ) -> Result<NewApiToken, NodeError> {
        self.official(user).await?;
        let created = self
            .admin
            .create_api_token(user, name, expires)
            .await
            .map_err(token_error)?;
        Ok(NewApiToken {
            token: token_view(created.token),
            secret: created.secret,
        })
    }

    async fn revoke_api_token(&self, user: UserId, token: &str) -> Result<(), NodeError> {
        self.official(user).await?;
        let id: ApiTokenId = token.parse().map_err(|_| {
            NodeError::NotFound(format!("there is no API token {token:?} of yours"))
        })?;
        self.admin
            .revoke_own_api_token(user, id)
            .await
            .map(|_| ())
            .map_err(token_error)
    }

    async fn api_token_user(&self, secret: &str) -> Result<UserId, NodeError> {
        self.admin.api_token_user(secret).await.map_err(token_error)
    }

    async fn claim_idempotency_key(
        &self,
        user: UserId,
        key: &str,
        fingerprint: [u8; 32],
    ) -> Result<IdempotencyClaim, NodeError> {
        idempotency::claim(&self.store, user, key, fingerprint, now())
            .await
            .map_err(key_error)
    }

    async fn keep_idempotent_response(
        &self,
        user: UserId,
        key: &str,
        response: Option<KeptResponse>,
    ) -> Result<(), NodeError> {
        idempotency::keep(&self.store, user, key, response)
            .await
            .map_err(key_error)
    }

    async fn node_status(&self, user: UserId) -> Result<NodeStatusView, NodeError> {
        let official = self.official(user).await?;
        let coordinator = official
            .access
            .values()
            .any(|roles| roles.contains(&imi_protocol::Role::NationalCoordinator));
        if !coordinator {
            return Err(NodeError::NotAllowed(
                "the node's status is for its national coordinators".into(),
            ));
        }
        let store = self.store.clone();
        let status = tokio::task::spawn_blocking(move || crate::status::StoreStatus::of(&store))
            .await
            .map_err(|e| NodeError::Unavailable(e.to_string()))?
            .map_err(|e| NodeError::Unavailable(e.to_string()))?;
        let mut peers: Vec<PeerStatusView> = self
            .net
            .peers()
            .await
            .into_iter()
            .map(|p| PeerStatusView {
                node: p.address.to_string(),
                certificate_until: Timestamp::from_millis(p.valid_until_ms),
            })
            .collect();
        peers.sort_by(|a, b| a.node.cmp(&b.node));
        let refused = self
            .net
            .refusals()
            .await
            .into_iter()
            .map(|r| (r.peer.to_string(), r.reason))
            .collect();
        let store_bytes = std::fs::metadata(self.store.path()).map_or(0, |m| m.len());
        Ok(NodeStatusView {
            catalogue_version: self.catalogue.version().to_owned(),
            store_bytes,
            peers,
            refused,
            cases: status.cases.into_iter().collect(),
            sent: status.sent.into_iter().collect(),
            rejections: status.rejections.into_iter().collect(),
            received: status.received,
            outbox: status.outbox,
        })
    }

    async fn authority_users(&self, admin: UserId) -> Result<imi_web::AuthorityUsers, NodeError> {
        self.users().authority_users(admin).await
    }

    async fn add_user(&self, admin: UserId, user: imi_web::UserDraft) -> Result<UserId, NodeError> {
        self.users().add_user(admin, user).await
    }

    async fn set_user_roles(
        &self,
        admin: UserId,
        user: UserId,
        access: std::collections::BTreeMap<String, std::collections::BTreeSet<imi_protocol::Role>>,
    ) -> Result<(), NodeError> {
        self.users().set_roles(admin, user, access).await
    }

    async fn set_user_active(
        &self,
        admin: UserId,
        user: UserId,
        active: bool,
    ) -> Result<(), NodeError> {
        self.users().set_active(admin, user, active).await
    }

    async fn reset_password(
        &self,
        admin: UserId,
        user: UserId,
        password: &str,
    ) -> Result<(), NodeError> {
        self.users().reset_password(admin, user, password).await
    }

    async fn load_session(&self, id: &str) -> Result<Option<StoredSession>, NodeError> {
        let store = self.store.clone();
        let id = id.to_owned();
        let now = now();
        tokio::task::spawn_blocking(move || sessions::load(&store, &id, now))
            .await
            .map_err(store_error)?
            .map_err(store_error)
    }

    async fn save_session(&self, id: &str, session: StoredSession) -> Result<(), NodeError> {
        sessions::save(&self.store, id, session)
            .await
            .map_err(|err| match err {
                sessions::SessionRefused::Store(err) => store_error(err),
                refused => {
                    warn!(error = %refused, "web session refused");
                    NodeError::Invalid(refused.to_string())
                }
            })
    }

    async fn delete_session(&self, id: &str) -> Result<(), NodeError> {
        sessions::delete(&self.store, id).await.map_err(store_error)
    }

    async fn purge_sessions(&self, now: Timestamp) -> Result<usize, NodeError> {
        let sessions = sessions::purge(&self.store, now)
            .await
            .map_err(store_error)?;
        idempotency::purge(&self.store, now)
            .await
            .map_err(store_error)?;
        self.admin.purge_api_tokens().await.map_err(token_error)?;
        Ok(sessions)
    }
}

fn now() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}
