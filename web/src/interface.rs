//! The interface `web` needs from a node, and the types it speaks in.
//!
//! `web` owns this trait; the node implements it in an adapter
//! (`node/src/ui/`), and `imi-node run` hands the adapter to [`crate::serve`].
//! Nothing here names the node's store, links or replication: only domain
//! types of `imi-protocol` and plain data. Further areas (tasks, cases) add
//! methods here.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use imi_protocol::{
    AreaKey, Attachment, AuthorityId, CaseId, CaseState, Catalogue, Contact, Content, Country,
    Date, Language, MessageKind, Party, ProcedureKey, ProfessionKey, RequestAction, Role, StepId,
    TaskKind, Timestamp, UserId,
};

/// What the UI shows about the node that serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// The node's country.
    pub country: Country,
    /// The node's address in the federation (`FI/helsinki-1`).
    pub address: String,
    /// A training environment: every page says so.
    pub training: bool,
    /// The language of the pages when nothing else chooses one.
    pub default_language: Language,
}

/// A signed-in official, as their stored account says now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Official {
    /// The user.
    pub id: UserId,
    /// Sign-in name.
    pub login: String,
    /// Full name, as written.
    pub name: String,
    /// Email address.
    pub email: String,
    /// The language the user chose in their profile.
    pub language: Language,
    /// Their authority.
    pub authority: AuthorityId,
    /// The authority's names, per language.
    pub authority_names: BTreeMap<Language, String>,
    /// The legislative areas the authority is competent in.
    pub areas: Vec<AreaKey>,
    /// Roles per legislative area (`*` for every area).
    pub access: BTreeMap<String, BTreeSet<Role>>,
    /// When the password was last set.
    pub password_set: Timestamp,
}

/// Whether and how often a user is emailed about new tasks for them or
/// their authority (read only by the profile page, not by every page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskEmailChoice {
    /// The node's stable name of the choice: `"each-task"` (the default),
    /// `"daily-summary"` or `"never"`.
    pub task_emails: String,
    /// The address those emails go to when it is not the account's
    /// `email`.
    pub address: Option<String>,
}

/// Which kind of directory entry a search hit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A competent authority.
    Authority,
    /// A public online register (the registers directory).
    Register,
}

/// A search of the directory of every country.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// Free text in any language.
    pub text: String,
    /// The reader's language.
    pub language: Language,
    /// Only these countries (none: all).
    pub countries: Vec<Country>,
    /// Only entries competent in these areas.
    pub areas: Vec<AreaKey>,
    /// Only entries handling these procedures.
    pub procedures: Vec<ProcedureKey>,
    /// Only entries competent for these professions.
    pub professions: Vec<ProfessionKey>,
    /// Only authorities, or only registers.
    pub kind: Option<EntryKind>,
    /// Results to skip.
    pub offset: usize,
    /// Results per page.
    pub limit: usize,
}

/// One page of search results with the facet counts of all of them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchPage {
    /// Matching entries in all.
    pub total: usize,
    /// This page.
    pub hits: Vec<SearchHit>,
    /// Matching entries per country, most first.
    pub countries: Vec<(Country, u64)>,
    /// Matching entries per legislative area, most first.
    pub areas: Vec<(AreaKey, u64)>,
    /// Countries named in the text, which restricted the search.
    pub countries_in_text: Vec<Country>,
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    /// Authority or register.
    pub kind: EntryKind,
    /// The authority's id, or the register's.
    pub id: String,
    /// Its country.
    pub country: Country,
    /// Its name in the reader's language where it has one.
    pub name: String,
    /// The language of `name`.
    pub name_language: Language,
    /// Its city.
    pub city: Option<String>,
    /// The competences the query matched, labelled in the reader's language.
    pub competences: Vec<String>,
    /// A register's address.
    pub url: Option<String>,
}

/// An authority of the directory, as its country published it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorityPage {
    /// Its id.
    pub id: AuthorityId,
    /// Its country.
    pub country: Country,
    /// Its names, per language, as written.
    pub names: BTreeMap<Language, String>,
    /// Competences per legislative area.
    pub competences: Vec<CompetenceView>,
    /// How to reach it.
    pub contact: Contact,
    /// The languages it accepts requests in.
    pub languages: BTreeSet<Language>,
    /// The node that serves it (`PT/lisboa-1`).
    pub node: String,
}

/// An authority's competence in one legislative area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompetenceView {
    /// The area.
    pub area: AreaKey,
    /// Procedures it handles there.
    pub procedures: Vec<ProcedureKey>,
    /// Professions it is competent for.
    pub professions: Vec<ProfessionKey>,
    /// Other competences, as written.
    pub other: Vec<String>,
}

/// A public online register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterView {
    /// Its id.
    pub id: String,
    /// Its country.
    pub country: Country,
    /// Its names, per language.
    pub names: BTreeMap<Language, String>,
    /// Where it is looked up.
    pub url: String,
    /// Legislative areas it serves.
    pub areas: Vec<AreaKey>,
    /// Professions it lists.
    pub professions: Vec<ProfessionKey>,
    /// The languages it can be read in.
    pub languages: BTreeSet<Language>,
}

/// A country's national IMI helpdesk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelpdeskView {
    /// The country.
    pub country: Country,
    /// Its contacts.
    pub contacts: Vec<HelpdeskContactView>,
}

/// One contact of a helpdesk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelpdeskContactView {
    /// Name, as written.
    pub name: String,
    /// Email address.
    pub email: Option<String>,
    /// Telephone.
    pub phone: Option<String>,
    /// Opening hours, as written.
    pub hours: Option<String>,
    /// Languages spoken.
    pub languages: BTreeSet<Language>,
}

/// An authority named in the reader's language where it has a name in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartyName {
    /// The authority and its country.
    pub party: Party,
    /// Its name (its id when the directory does not know it).
    pub name: String,
    /// The language of `name`.
    pub language: Language,
}

/// One task of My tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskView {
    /// The case, whose id is its reference for good.
    pub case: CaseId,
    /// Request, alert or notification.
    pub case_kind: MessageKind,
    /// The case's legislative area (catalogue key).
    pub area: String,
    /// What must be done.
    pub kind: TaskKind,
    /// Waiting for the user themselves, not for their authority.
    pub personal: bool,
    /// By when.
    pub due: Option<Date>,
    /// The case's state (`"accepted"`).
    pub status: String,
    /// When the case last changed.
    pub updated_at: Timestamp,
    /// The other authority of a request.
    pub counterpart: Option<PartyName>,
}

/// Which tasks My tasks lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TaskFilter {
    /// The user's, their authority's and their coordinator roles'.
    #[default]
    All,
    /// Only those past their date.
    Overdue,
    /// Only those waiting for the user themselves.
    Mine,
}

/// A page of My tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskQuery {
    /// Which tasks.
    pub filter: TaskFilter,
    /// Most recently changed first, instead of soonest due first.
    pub by_update: bool,
    /// Tasks to skip.
    pub offset: usize,
    /// Tasks per page.
    pub limit: usize,
}

/// A page of a user's tasks, the counts of the whole list, and today's
/// date on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskList {
    /// The page: soonest due first (undated last), or most recently
    /// changed first.
    pub tasks: Vec<TaskView>,
    /// Tasks the filter lists in all.
    pub total: usize,
    /// Tasks of the user past their date (whatever the filter).
    pub overdue: usize,
    /// Today, for overdue marking.
    pub today: Date,
}

/// A new request, as the requester wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRequest {
    /// The authority asked.
    pub to: Party,
    /// The legislative area (catalogue key).
    pub area: String,
    /// The question set, the details given and the questions asked, and
    /// the requester's message.
    pub content: Content,
    /// Send at once with this reply-by date; `None` keeps a draft.
    pub send: Option<Date>,
}

/// What became of a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepFate {
    /// It changed the case.
    Applied,
    /// Another step came first.
    Overtaken {
        /// The step that came first.
        by: Option<RequestActionKey>,
        /// The authority that took it.
        by_party: Option<PartyName>,
        /// Why the case no longer allowed it (in English, from the node).
        reason: String,
    },
    /// Taken on this node; the case's sequencer has not logged it yet.
    Pending,
}

/// A stable key for a request action (`"accept"`), for the words each
/// language gives it.
pub type RequestActionKey = &'static str;

/// Where a message that carried a step stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryView {
    /// Waiting for the other node's receipt.
    Queued,
    /// The other node signed its receipt.
    Delivered,
    /// The other node refused it, with its reason.
    Rejected {
        /// The reason, as the receipt gives it.
        reason: String,
    },
}

/// One step of a case's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryItem {
    /// The step's id (its files are fetched by it).
    pub step: StepId,
    /// When.
    pub at: Timestamp,
    /// The step (`"accept"`).
    pub action: RequestActionKey,
    /// A date the step set (reply-by, proposed date).
    pub date: Option<Date>,
    /// The authority that took it.
    pub party: PartyName,
    /// The official's name, when they are a user of this node.
    pub user: Option<String>,
    /// What it said.
    pub content: Content,
    /// Applied, overtaken or pending.
    pub fate: StepFate,
    /// The node it was taken on.
    pub node: String,
    /// The messages this node sent for it: recipient node and state.
    pub deliveries: Vec<(String, DeliveryView)>,
}

/// A case as a signed-in official of one of its authorities sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseView {
    /// The case.
    pub state: CaseState,
    /// The requesting authority.
    pub requester: PartyName,
    /// The authority asked now.
    pub responder: PartyName,
    /// Whether the reader's authority is the requester.
    pub reader_is_requester: bool,
    /// The request as sent: question set, details given, questions asked
    /// (empty values), message.
    pub request: Content,
    /// The answers given so far, latest per question.
    pub answers: std::collections::BTreeMap<String, String>,
    /// Every step, oldest first.
    pub history: Vec<HistoryItem>,
    /// The actions the reader may take now.
    pub allowed: Vec<RequestActionKey>,
    /// The authorities the request may be forwarded to (the responder's
    /// country's, competent in the request's area), when it may be.
    pub forward_to: Vec<PartyName>,
    /// The name of the official the request is allocated to, when the
    /// reader's node knows them (the responder's node does).
    pub handler: Option<String>,
    /// The request handlers the reader may allocate the request to, when
    /// they may: id and name.
    pub handlers: Vec<(UserId, String)>,
    /// Today on the node.
    pub today: Date,
}

/// A stored web session: opaque data and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// The session's data, as `web` wrote it.
    pub data: Vec<u8>,
    /// When it expires.
    pub expires: Timestamp,
}

/// An API token of a user, as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenView {
    /// The token's id (not the secret), to revoke it by.
    pub id: String,
    /// The name the user gave it ("medical register's case system").
    pub name: String,
    /// When it was created.
    pub created: Timestamp,
    /// When it stops working.
    pub expires: Timestamp,
    /// When it was last used, to the minute.
    pub last_used: Option<Timestamp>,
}

/// A token just created: its listing and its secret, shown once and
/// stored only as a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiToken {
    /// The listing.
    pub token: ApiTokenView,
    /// The bearer secret (`imi_…`).
    pub secret: String,
}

/// A response of the JSON API kept for an `Idempotency-Key`, replayed to a
/// client that retries the same request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptResponse {
    /// The HTTP status.
    pub status: u16,
    /// The `Location` header, when the response had one.
    pub location: Option<String>,
    /// The JSON body.
    pub body: Vec<u8>,
}

/// What the node knows of an `Idempotency-Key` when a request claims it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// Unused: the request goes ahead, and its response is kept with
    /// [`NodeInterface::keep_idempotent_response`].
    Claimed,
    /// A request with this key is still being handled.
    InProgress,
    /// A request with this key was handled: its response.
    Replay(KeptResponse),
    /// The key was used for a different request.
    Mismatch,
}

/// The node as its national coordinator watches it: the nodes it is
/// linked to and until when their certificates hold, what its store
/// holds, and what other nodes refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatusView {
    /// The catalogue's version.
    pub catalogue_version: String,
    /// The store file's size in bytes.
    pub store_bytes: u64,
    /// The nodes linked now, admitted both ways.
    pub peers: Vec<PeerStatusView>,
    /// Nodes refused admission since the node started, with the reason.
    pub refused: Vec<(String, String)>,
    /// Cases by state, in words.
    pub cases: Vec<(String, u64)>,
    /// Messages sent, by status (`pending`, `accepted`, `rejected`).
    pub sent: Vec<(String, u64)>,
    /// Messages other nodes rejected, by the code of their reason.
    pub rejections: Vec<(String, u64)>,
    /// Messages received.
    pub received: u64,
    /// Messages waiting for their receipt.
    pub outbox: u64,
}

/// A node linked now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatusView {
    /// Its address (`PT/pt-1`).
    pub node: String,
    /// When its certificate stops being valid.
    pub certificate_until: Timestamp,
}

/// A user of an authority, as its administrator sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedUser {
    /// The user.
    pub id: UserId,
    /// Sign-in name.
    pub login: String,
    /// Full name, as written.
    pub name: String,
    /// Email address.
    pub email: String,
    /// The language of their pages.
    pub language: Language,
    /// Roles per legislative area (`*` for every area).
    pub access: BTreeMap<String, BTreeSet<Role>>,
    /// Whether they may sign in.
    pub active: bool,
    /// When the account was created.
    pub created: Timestamp,
    /// Their last sign-in, if any.
    pub last_sign_in: Option<Timestamp>,
}

/// A legislative area of the authority where fewer than two active users
/// handle requests: nobody stands in for the one who does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubstituteGap {
    /// The area.
    pub area: AreaKey,
    /// Active users holding the request-handler or allocator role there.
    pub handlers: usize,
}

/// The users of the administrator's authority and what needs their care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorityUsers {
    /// The authority.
    pub authority: AuthorityId,
    /// Its names, per language.
    pub authority_names: BTreeMap<Language, String>,
    /// The legislative areas it is competent in, the only ones its users
    /// hold roles in.
    pub areas: Vec<AreaKey>,
    /// Every account, active or not, oldest first.
    pub users: Vec<ManagedUser>,
    /// Areas lacking a substitute.
    pub gaps: Vec<SubstituteGap>,
    /// Active users who have not signed in for [`INACTIVE_DAYS`] days (or,
    /// never signed in, were created longer ago), longest idle first.
    pub inactive: Vec<UserId>,
}

/// After how many days without a sign-in a user is listed as inactive.
pub const INACTIVE_DAYS: u64 = 90;

/// A user account an administrator creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserDraft {
    /// Sign-in name.
    pub login: String,
    /// Full name.
    pub name: String,
    /// Email address.
    pub email: String,
    /// The language of their pages.
    pub language: Language,
    /// Roles per legislative area (`*` for every area).
    pub access: BTreeMap<String, BTreeSet<Role>>,
    /// Their first password, which they then change.
    pub password: String,
}

/// Why the node refused a user form: which field is at fault, so the page
/// can say so next to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserRefusal {
    /// The login is taken by another account of the node.
    DuplicateLogin,
    /// The login is not one the node accepts.
    BadLogin,
    /// The name is blank or too long.
    BadName,
    /// The email address is not one.
    BadEmail,
    /// The password does not meet the node's policy.
    WeakPassword,
    /// Roles the authority cannot hold (an area it is not competent in, a
    /// role only the national coordinator gives).
    BadRoles,
    /// The administrator would lock themselves out (deactivating their own
    /// account, removing their own administrator role).
    OwnAccount,
}

/// Why the node could not do what the UI asked. The one error of this
/// boundary; [`crate::WebError`] maps it to HTTP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// Unknown login or wrong password.
    #[error("the login or the password is wrong")]
    WrongCredentials,
    /// The account is deactivated.
    #[error("the account is deactivated")]
    Deactivated,
    /// The user's authority is not active.
    #[error("the user's authority is not active")]
    AuthorityNotActive,
    /// What was asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A new password that the policy refuses.
    #[error("the password is too weak: {0}")]
    WeakPassword(String),
    /// The user may not do this.
    #[error("not allowed: {0}")]
    NotAllowed(String),
    /// Input the node refuses, with the reason.
    #[error("{0}")]
    Invalid(String),
    /// The node could not answer (store or index failure).
    #[error("the node could not answer: {0}")]
    Unavailable(String),
    /// A user form the node refuses, naming what is wrong; nothing was
    /// changed.
    #[error("{reason}")]
    UserRefused {
        /// What is wrong, for the field it belongs to.
        refusal: UserRefusal,
        /// The node's words (English), for the log.
        reason: String,
    },
}

/// What `web` needs from the node that serves it.
#[async_trait]
pub trait NodeInterface: Send + Sync + 'static {
    /// The node, for the page header.
    fn info(&self) -> NodeInfo;

    /// The catalogue every label comes from.
    fn catalogue(&self) -> Arc<Catalogue>;

    /// Checks a login and password; on success the account as it is now.
    async fn sign_in(&self, login: &str, password: &str) -> Result<Official, NodeError>;

    /// The signed-in user's account as it is now: deactivated accounts and
    /// accounts of inactive authorities give an error, so a session ends at
    /// once.
    async fn official(&self, user: UserId) -> Result<Official, NodeError>;

    /// Sets the user's own password after checking the current one.
    async fn change_password(
        &self,
        user: UserId,
        current: &str,
        new: &str,
    ) -> Result<(), NodeError>;

    /// Sets the language of the user's profile.
    async fn set_language(&self, user: UserId, language: Language) -> Result<(), NodeError>;

    /// The user's own email notifications.
    async fn task_emails(&self, user: UserId) -> Result<TaskEmailChoice, NodeError>;

    /// Sets the user's own email notifications: `task_emails` is one of the
    /// names [`Official::task_emails`] speaks in, `address` the address to
    /// use instead of the account's (`None`: the account's). An unknown
    /// choice or an address that is not one is [`NodeError::Invalid`] and
    /// changes nothing.
    async fn set_task_emails(
        &self,
        user: UserId,
        task_emails: &str,
        address: Option<&str>,
    ) -> Result<(), NodeError>;

    /// Searches the directory of every country.
    async fn search(&self, query: SearchQuery) -> Result<SearchPage, NodeError>;

    /// One authority of the directory.
    async fn authority(
        &self,
        country: Country,
        id: AuthorityId,
    ) -> Result<AuthorityPage, NodeError>;

    /// The registers directory, of one country or all.
    async fn registers(&self, country: Option<Country>) -> Result<Vec<RegisterView>, NodeError>;

    /// The national helpdesks of every country that published one.
    async fn helpdesks(&self) -> Result<Vec<HelpdeskView>, NodeError>;

    /// A page of everything waiting for the user and their authority (My
    /// tasks), read from the node's task index.
    async fn tasks(&self, user: UserId, query: TaskQuery) -> Result<TaskList, NodeError>;

    /// A request, if the user's authority takes part in it (else
    /// [`NodeError::NotAllowed`]).
    async fn case(&self, user: UserId, case: CaseId) -> Result<CaseView, NodeError>;

    /// Writes a new request of the user's authority, and sends it if asked.
    async fn new_request(&self, user: UserId, request: NewRequest) -> Result<CaseId, NodeError>;

    /// Takes a step in a request as the user.
    async fn act(
        &self,
        user: UserId,
        case: CaseId,
        action: RequestAction,
        content: Content,
    ) -> Result<(), NodeError>;

    /// File `index` of a step of a request, if the user's authority takes
    /// part in it.
    async fn attachment(
        &self,
        user: UserId,
        case: CaseId,
        step: StepId,
        index: usize,
    ) -> Result<Attachment, NodeError>;

    /// The user's API tokens, newest first (revoked ones are gone).
    async fn api_tokens(&self, user: UserId) -> Result<Vec<ApiTokenView>, NodeError>;

    /// Creates an API token for the user, acting with their rights until
    /// `expires`; a name that is empty or too long, or an expiry in the
    /// past or more than a year ahead, is [`NodeError::Invalid`].
    async fn create_api_token(
        &self,
        user: UserId,
        name: &str,
        expires: Timestamp,
    ) -> Result<NewApiToken, NodeError>;

    /// Revokes one of the user's own tokens, at once.
    async fn revoke_api_token(&self, user: UserId, token: &str) -> Result<(), NodeError>;

    /// The user a bearer secret acts for, noting its use; an unknown,
    /// revoked or expired secret is [`NodeError::WrongCredentials`].
    async fn api_token_user(&self, secret: &str) -> Result<UserId, NodeError>;

    /// Claims an `Idempotency-Key` of the user for a request whose method,
    /// path and body hash to `fingerprint`. Keys are kept 24 hours.
    async fn claim_idempotency_key(
        &self,
        user: UserId,
        key: &str,
        fingerprint: [u8; 32],
    ) -> Result<IdempotencyClaim, NodeError>;

    /// Keeps the response of a claimed key, or (`None`) releases the key
    /// when the request had no effect and may be tried again.
    async fn keep_idempotent_response(
        &self,
        user: UserId,
        key: &str,
        response: Option<KeptResponse>,
    ) -> Result<(), NodeError>;

    /// The node's status, for a national coordinator of its country (else
    /// [`NodeError::NotAllowed`]).
    async fn node_status(&self, user: UserId) -> Result<NodeStatusView, NodeError>;
    /// The users of `admin`'s authority, the areas where nobody stands in
    /// for a request handler, and who has not signed in for
    /// [`INACTIVE_DAYS`] days. Only a local data administrator (authority
    /// administrator role) may read them ([`NodeError::NotAllowed`]).
    async fn authority_users(&self, admin: UserId) -> Result<AuthorityUsers, NodeError>;

    /// Creates a user of `admin`'s authority with a first password; the
    /// node's refusals of the form are [`NodeError::UserRefused`], and
    /// nothing is created.
    async fn add_user(&self, admin: UserId, user: UserDraft) -> Result<UserId, NodeError>;

    /// Replaces the roles of a user of `admin`'s authority.
    async fn set_user_roles(
        &self,
        admin: UserId,
        user: UserId,
        access: BTreeMap<String, BTreeSet<Role>>,
    ) -> Result<(), NodeError>;

    /// Deactivates (a leaver: they can no longer sign in and their
    /// sessions end) or reactivates a user of `admin`'s authority.
    async fn set_user_active(
        &self,
        admin: UserId,
        user: UserId,
        active: bool,
    ) -> Result<(), NodeError>;

    /// Sets a new password for a user of `admin`'s authority (a reset),
    /// which the administrator hands over and the user then changes.
    async fn reset_password(
        &self,
        admin: UserId,
        user: UserId,
        password: &str,
    ) -> Result<(), NodeError>;

    /// A stored session, unless missing or expired.
    async fn load_session(&self, id: &str) -> Result<Option<StoredSession>, NodeError>;

    /// Stores a session (creating or replacing it).
    async fn save_session(&self, id: &str, session: StoredSession) -> Result<(), NodeError>;

    /// Removes a session.
    async fn delete_session(&self, id: &str) -> Result<(), NodeError>;

    /// Removes every session that expired before `now`, and every kept
    /// idempotency key older than 24 hours; returns how many sessions.
    async fn purge_sessions(&self, now: Timestamp) -> Result<usize, NodeError>;
}
