//! Cases: requests, alerts and notifications as this node keeps them.
//!
//! Every case is stored with its current state (from `protocol`'s state
//! machines) and its history of steps. A local step is applied through the
//! state machine, and the new state is committed together with one signed
//! envelope per node that must hear of it ([`Node::act`]). A received step
//! is applied by [`CaseApp`] to this node's copy of the case inside the
//! transaction that stores the envelope and its receipt.
//!
//! Which node serves an authority or a country comes from the routes table
//! (`crate::routes`, filled from the directory), and, within a case, from
//! the node that spoke for that authority; either way only a node of the
//! authority's own country.

use std::collections::BTreeMap;

use imi_protocol::{
    Actor, Alert, Author, AuthorityId, CaseAction, CaseId, CaseStep, Content, Country, Destination,
    Effect, MessageKind, NodeAddress, Notification, Opened, Party, Request, Timestamp, Transition,
    TransitionError,
};
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::delivery::{Inbound, Rejection, now_ms};
use crate::node::{Node, SendCaseError};
use crate::store::StoreError;

/// Cases: case id → [`CaseRecord`].
pub(crate) const CASES: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("cases-1");

/// The state of a case, of any kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CaseState {
    /// A request between two authorities.
    Request(Request),
    /// An alert to many countries.
    Alert(Alert),
    /// A notification to many countries.
    Notification(Notification),
}

impl CaseState {
    /// The case id.
    pub fn id(&self) -> CaseId {
        match self {
            CaseState::Request(r) => r.id(),
            CaseState::Alert(a) => a.id(),
            CaseState::Notification(n) => n.id(),
        }
    }

    /// How many transitions the case has been through.
    pub fn sequence(&self) -> u64 {
        match self {
            CaseState::Request(r) => r.sequence(),
            CaseState::Alert(a) => a.sequence(),
            CaseState::Notification(n) => n.sequence(),
        }
    }

    /// The state in words (`"accepted"`).
    pub fn describe(&self) -> String {
        match self {
            CaseState::Request(r) => r.describe(),
            CaseState::Alert(a) => format!("{:?}", a.status()).to_lowercase(),
            CaseState::Notification(n) => format!("{:?}", n.status()).to_lowercase(),
        }
    }

    fn kind(&self) -> MessageKind {
        match self {
            CaseState::Request(_) => MessageKind::Request,
            CaseState::Alert(_) => MessageKind::Alert,
            CaseState::Notification(_) => MessageKind::Notification,
        }
    }

    /// The authorities taking part.
    fn parties(&self) -> Vec<Party> {
        match self {
            CaseState::Request(r) => {
                let mut parties = vec![r.requester(), r.responder()];
                parties.extend_from_slice(r.forwarded_from());
                parties
            }
            CaseState::Alert(a) => vec![a.sender()],
            CaseState::Notification(n) => vec![n.sender()],
        }
    }

    /// The recipient countries of an alert or notification.
    fn recipient_countries(&self) -> Vec<Country> {
        match self {
            CaseState::Request(_) => vec![],
            CaseState::Alert(a) => a.recipients().iter().copied().collect(),
            CaseState::Notification(n) => n.recipients().iter().copied().collect(),
        }
    }

    fn check(&self) -> Result<(), String> {
        let result = match self {
            CaseState::Request(r) => r.check(),
            CaseState::Alert(a) => a.check(),
            CaseState::Notification(n) => n.check(),
        };
        result.map_err(|e| e.to_string())
    }
}

/// One step in a case's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When it was taken.
    pub at: Timestamp,
    /// Who took it.
    pub actor: Actor,
    /// The action's name (`"accept the request"`).
    pub action: String,
    /// What it said.
    pub content: Content,
    /// The node where it was taken.
    pub node: NodeAddress,
}

/// A case as this node keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseRecord {
    /// The current state.
    pub state: CaseState,
    /// Every step, oldest first.
    pub history: Vec<HistoryEntry>,
    /// The node that speaks for each authority of the case.
    pub nodes: BTreeMap<AuthorityId, NodeAddress>,
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).expect("records always encode")
}

/// Creates the case tables.
pub(crate) fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(CASES)?;
    crate::routes::create_tables(tx)
}

fn read_case(tx: &WriteTransaction, case: CaseId) -> Result<Option<CaseRecord>, StoreError> {
    let table = tx.open_table(CASES)?;
    let value = table.get(case.to_bytes().as_slice())?;
    value
        .map(|v| postcard::from_bytes(v.value()).map_err(|e| StoreError::corrupt("case", e)))
        .transpose()
}

fn write_case(tx: &WriteTransaction, record: &CaseRecord) -> Result<(), StoreError> {
    tx.open_table(CASES)?.insert(
        record.state.id().to_bytes().as_slice(),
        encode(record).as_slice(),
    )?;
    Ok(())
}

fn rejection(err: &TransitionError) -> Rejection {
    let code = match err {
        TransitionError::NotAllowed { .. } => "forbidden-transition",
        TransitionError::WrongSide { .. } => "wrong-side",
        TransitionError::MissingRole { .. } => "missing-role",
        TransitionError::Invalid { .. } => "invalid-argument",
    };
    Rejection::new(code, err.to_string())
}

/// Applies `action` to `state` (or to the opening state it carries).
fn apply_action(
    state: Option<CaseState>,
    actor: &Actor,
    at: Timestamp,
    action: &CaseAction,
) -> Result<(CaseState, Vec<Effect>), Rejection> {
    fn unknown() -> Rejection {
        Rejection::new(
            "unknown-case",
            "this node does not know the case and the message does not carry it",
        )
    }
    fn finish<S>(
        result: Result<Transition<S>, TransitionError>,
        wrap: fn(S) -> CaseState,
    ) -> Result<(CaseState, Vec<Effect>), Rejection> {
        result
            .map(|t| (wrap(t.state), t.effects))
            .map_err(|e| rejection(&e))
    }
    let mismatch = || {
        Rejection::new(
            "wrong-kind",
            "the step is for another kind of case than the one stored here",
        )
    };
    match (state, action) {
        (Some(CaseState::Request(r)), CaseAction::Request { action, .. }) => {
            finish(r.apply(actor, at, action), CaseState::Request)
        }
        (None, CaseAction::Request { action, before }) => {
            let before = before.as_deref().ok_or_else(unknown)?;
            finish(before.apply(actor, at, action), CaseState::Request)
        }
        (Some(CaseState::Alert(a)), CaseAction::Alert { action, .. }) => {
            finish(a.apply(actor, at, action), CaseState::Alert)
        }
        (None, CaseAction::Alert { action, before }) => {
            let before = before.as_deref().ok_or_else(unknown)?;
            finish(before.apply(actor, at, action), CaseState::Alert)
        }
        (Some(CaseState::Notification(n)), CaseAction::Notification { action, .. }) => {
            finish(n.apply(actor, at, action), CaseState::Notification)
        }
        (None, CaseAction::Notification { action, before }) => {
            let before = before.as_deref().ok_or_else(unknown)?;
            finish(before.apply(actor, at, action), CaseState::Notification)
        }
        _ => Err(mismatch()),
    }
}

/// The application of received case steps.
#[derive(Debug)]
pub struct CaseApp {
    me: NodeAddress,
}

impl CaseApp {
    /// The application of node `me`.
    pub fn new(me: NodeAddress) -> CaseApp {
        CaseApp { me }
    }

    /// Whether this node serves a party or recipient of `state`.
    fn serves(&self, tx: &WriteTransaction, state: &CaseState) -> Result<bool, StoreError> {
        crate::routes::serves(tx, &self.me, &state.parties(), &state.recipient_countries())
    }
}

impl Inbound for CaseApp {
    type Body = CaseStep;

    fn apply(&self, tx: &WriteTransaction, message: &Opened<CaseStep>) -> Result<(), Rejection> {
        let header = &message.header;
        let step = &message.body;
        let internal =
            |e: StoreError| Rejection::new("store", format!("the case could not be read: {e}"));
        if step.actor.country != header.sender.country {
            return Err(Rejection::new(
                "foreign-actor",
                format!(
                    "node {} may only speak for actors of {}, not of {}",
                    header.sender, header.sender.country, step.actor.country
                ),
            ));
        }
        if let Some(opening) = step.action.opening_case()
            && opening != header.case
        {
            return Err(Rejection::new(
                "case-mismatch",
                "the case carried in the message is not the case named in its header",
            ));
        }
        let existing = read_case(tx, header.case).map_err(internal)?;
        let (state, _effects) = apply_action(
            existing.as_ref().map(|r| r.state.clone()),
            &step.actor,
            step.at,
            &step.action,
        )?;
        if state.kind() != header.kind {
            return Err(Rejection::new(
                "wrong-kind",
                format!(
                    "the envelope says {} but carries another kind of step",
                    header.kind
                ),
            ));
        }
        state
            .check()
            .map_err(|reason| Rejection::new("incoherent-case", reason))?;
        if !self.serves(tx, &state).map_err(internal)? {
            return Err(Rejection::new(
                "not-served-here",
                format!(
                    "node {} serves none of the authorities or countries of this case",
                    self.me
                ),
            ));
        }
        let mut record = existing.unwrap_or(CaseRecord {
            state: state.clone(),
            history: vec![],
            nodes: BTreeMap::new(),
        });
        record.state = state;
        record
            .nodes
            .insert(step.actor.authority, header.sender.clone());
        record.history.push(HistoryEntry {
            at: step.at,
            actor: step.actor.clone(),
            action: step.action.name().to_owned(),
            content: step.content.clone(),
            node: header.sender.clone(),
        });
        write_case(tx, &record).map_err(internal)?;
        info!(case = %header.case, from = %header.sender, action = step.action.name(), state = %record.state.describe(), "case step applied");
        Ok(())
    }
}

/// A local step could not be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaseError {
    /// No such case on this node.
    #[error("case {0} does not exist on this node")]
    NotFound(CaseId),
    /// The state machine refused the step.
    #[error(transparent)]
    Refused(#[from] TransitionError),
    /// The step is of another kind than the case.
    #[error("{0}")]
    WrongKind(String),
    /// No node is known for a party that must hear of the step.
    #[error("no node is known that serves {0}; the directory has no route for it")]
    NoRoute(String),
    /// Someone else changed the case at the same moment.
    #[error("case {0} changed while the step was being taken; reload it and try again")]
    Conflict(CaseId),
    /// The store failed.
    #[error("the step could not be stored: {0}")]
    Store(String),
}

impl From<StoreError> for CaseError {
    fn from(err: StoreError) -> Self {
        CaseError::Store(err.to_string())
    }
}

impl From<redb::TableError> for CaseError {
    fn from(err: redb::TableError) -> Self {
        StoreError::from(err).into()
    }
}

impl From<redb::StorageError> for CaseError {
    fn from(err: redb::StorageError) -> Self {
        StoreError::from(err).into()
    }
}

impl Node<CaseApp> {
    /// The case as stored here.
    pub fn case(&self, case: CaseId) -> Result<Option<CaseRecord>, StoreError> {
        let read = self.store().read()?;
        let table = read.open_table(CASES)?;
        let value = table.get(case.to_bytes().as_slice())?;
        value
            .map(|v| postcard::from_bytes(v.value()).map_err(|e| StoreError::corrupt("case", e)))
            .transpose()
    }

    /// How many cases are stored here.
    pub fn case_count(&self) -> Result<u64, StoreError> {
        use redb::ReadableTableMetadata;
        Ok(self.store().read()?.open_table(CASES)?.len()?)
    }

    /// Stores a new case (a draft made with the state machine's `draft`).
    pub async fn create(&self, state: CaseState, actor: Actor) -> Result<CaseId, CaseError> {
        let id = state.id();
        let me = self.address().clone();
        self.store()
            .write(move |tx| {
                if read_case(tx, id)?.is_some() {
                    return Ok(Err(CaseError::Conflict(id)));
                }
                let mut nodes = BTreeMap::new();
                nodes.insert(actor.authority, me.clone());
                let record = CaseRecord {
                    history: vec![HistoryEntry {
                        at: Timestamp::from_millis(now_ms()),
                        actor,
                        action: "create the draft".into(),
                        content: Content::default(),
                        node: me,
                    }],
                    state,
                    nodes,
                };
                write_case(tx, &record)?;
                Ok(Ok(id))
            })
            .await?
    }

    /// Takes a step in `case` as `actor`: applies it through the state
    /// machine, then commits the new state together with a signed envelope
    /// to every node that must hear of it.
    pub async fn act(
        &self,
        case: CaseId,
        actor: Actor,
        action: CaseAction,
        content: Content,
    ) -> Result<CaseRecord, CaseError> {
        let record = self.case(case)?.ok_or(CaseError::NotFound(case))?;
        let at = Timestamp::from_millis(now_ms());
        let before = record.state.clone();
        let Ok((state, effects)) = apply_action(Some(before.clone()), &actor, at, &action) else {
            return Err(refusal(&before, &actor, at, &action));
        };
        let kind = state.kind();
        // The step travels with the case as it stood, so a node that does
        // not know the case yet can start its copy.
        let action = with_before(action, &before);
        let step = CaseStep {
            actor: actor.clone(),
            at,
            action,
            content: content.clone(),
        };
        let mut new_record = record.clone();
        new_record.state = state;
        new_record.history.push(HistoryEntry {
            at,
            actor: actor.clone(),
            action: step.action.name().to_owned(),
            content,
            node: self.address().clone(),
        });
        let me = self.address().clone();
        // Resolve the recipients with a read of the routes.
        let destinations: Vec<Destination> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::Deliver(d) => Some(*d),
                _ => None,
            })
            .collect();
        let recipients = {
            let record = new_record.clone();
            let store = self.store().clone();
            let read = store.read()?;
            let routes = read.open_table(crate::routes::ROUTES)?;
            let mut out: Vec<NodeAddress> = Vec::new();
            for destination in &destinations {
                let resolved = crate::routes::resolve(&routes, &record.nodes, destination)?;
                let Some(node) = resolved else {
                    return Err(CaseError::NoRoute(match destination {
                        Destination::Authority(p) => p.to_string(),
                        Destination::Country(c) => format!("country {c}"),
                    }));
                };
                if node != me && !out.contains(&node) {
                    out.push(node);
                }
            }
            out
        };
        let expected_sequence = record.state.sequence();
        let stored = new_record.clone();
        let author = Author {
            authority: actor.authority,
            user: Some(actor.user),
        };
        let result = self
            .send(recipients, case, kind, author, step, move |tx| {
                let current =
                    read_case(tx, case).map_err(|e| SendCaseError::Store(e.to_string()))?;
                if current.map(|r| r.state.sequence()) != Some(expected_sequence) {
                    return Err(SendCaseError::Refused(
                        CaseError::Conflict(case).to_string(),
                    ));
                }
                write_case(tx, &stored).map_err(|e| SendCaseError::Store(e.to_string()))?;
                Ok(())
            })
            .await;
        match result {
            Ok(_) => Ok(new_record),
            Err(SendCaseError::Refused(_)) => Err(CaseError::Conflict(case)),
            Err(err) => Err(CaseError::Store(err.to_string())),
        }
    }
}

fn refusal(before: &CaseState, actor: &Actor, at: Timestamp, action: &CaseAction) -> CaseError {
    let result = match (before, action) {
        (CaseState::Request(r), CaseAction::Request { action, .. }) => {
            r.apply(actor, at, action).map(|_| ())
        }
        (CaseState::Alert(a), CaseAction::Alert { action, .. }) => {
            a.apply(actor, at, action).map(|_| ())
        }
        (CaseState::Notification(n), CaseAction::Notification { action, .. }) => {
            n.apply(actor, at, action).map(|_| ())
        }
        _ => {
            return CaseError::WrongKind(format!(
                "cannot {} in a case of another kind",
                action.name()
            ));
        }
    };
    match result {
        Err(err) => CaseError::Refused(err),
        Ok(()) => CaseError::WrongKind("the step could not be applied".into()),
    }
}

fn with_before(action: CaseAction, before: &CaseState) -> CaseAction {
    match (action, before) {
        (CaseAction::Request { action, .. }, CaseState::Request(r)) => CaseAction::Request {
            action,
            before: Some(Box::new(r.clone())),
        },
        (CaseAction::Alert { action, .. }, CaseState::Alert(a)) => CaseAction::Alert {
            action,
            before: Some(Box::new(a.clone())),
        },
        (CaseAction::Notification { action, .. }, CaseState::Notification(n)) => {
            CaseAction::Notification {
                action,
                before: Some(Box::new(n.clone())),
            }
        }
        (action, _) => action,
    }
}
