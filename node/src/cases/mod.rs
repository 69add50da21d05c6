//! Cases: requests, alerts and notifications as this node keeps them.
//!
//! Each case is stored as a [`Replica`] of `protocol`'s case log (see
//! `protocol::case::log` and docs/STATE_MACHINES.md): the node where a case
//! was written is its sequencer, whose log of steps is final; every other
//! node that holds the case proposes its officials' steps to the sequencer
//! and follows its log, so every party ends in the same state with the same
//! history.
//!
//! - A local step ([`Node::act`]) goes through the replica, and the new
//!   replica is committed together with the signed envelopes that carry
//!   its messages, the case's tasks, deadline and retention dates.
//! - A received message is applied by [`CaseApp`] inside the transaction
//!   that stores the envelope and its receipt. When the sequencer logs a
//!   proposal, the entries it must pass on to the other holders are
//!   written to a fan-out table in that same transaction and sealed by the
//!   fan-out task right after ([`inbound`]).
//! - Tasks (My tasks), deadlines and data-protection dates are indexed in
//!   the same write as the case ([`tasks`]).

mod desk;
mod inbound;
pub mod tasks;

use std::collections::BTreeMap;

pub use imi_protocol::CaseState;
use imi_protocol::{
    Actor, AttachmentError, Author, CaseAction, CaseId, Content, Destination, Effect, Entry,
    Header, MAX_CASE_ATTACHMENT_BYTES, MAX_STEP_ATTACHMENT_BYTES, MessageId, MessageKind,
    NodeAddress, Outcome, Outgoing, PROTOCOL_VERSION, Replica, Step, StepId, Timestamp,
    TransitionError, seal,
};
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use tracing::info;

pub use self::desk::CaseDesk;
pub use self::inbound::CaseApp;
use crate::delivery::{self, Queued, now_ms};
use crate::routes::{self, ROUTES};
use crate::store::StoreError;

/// Cases: case id → [`CaseRecord`].
pub(crate) const CASES: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("cases-3");
/// Earlier forms of the cases table, with why this version cannot read
/// them; a store that still holds one is refused at start (see
/// docs/STORE.md).
const EARLIER_CASES: [(&str, &str); 2] = [
    ("cases-1", "written before every case had a sequencer"),
    (
        "cases-2",
        "written before requests could be allocated to a handler and steps carry attachments",
    ),
];

/// A case as this node keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseRecord {
    /// This node's copy of the case's log.
    pub replica: Replica,
    /// The messages that carried each of this node's steps (to the
    /// sequencer, or from the sequencer to the other holders), for their
    /// delivery state in the history.
    pub carried: BTreeMap<StepId, Vec<MessageId>>,
    /// Who wrote the case and when (the sequencer only knows).
    pub created: Option<(Actor, Timestamp)>,
}

/// What became of a step, as the history shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepOutcome {
    /// Logged by the sequencer: it changed the case.
    Applied,
    /// Logged by the sequencer, but another step came first.
    Overtaken {
        /// The step that came first (`"withdraw the request"`), if any.
        by_action: Option<String>,
        /// That step's action.
        by_act: Option<CaseAction>,
        /// Who took it.
        by_actor: Option<Actor>,
        /// Why the case no longer allowed the step.
        reason: String,
    },
    /// Taken here, not yet logged by the sequencer.
    Pending,
}

/// One step in a case's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The step's id.
    pub step: StepId,
    /// When it was taken.
    pub at: Timestamp,
    /// Who took it.
    pub actor: Actor,
    /// The action's name (`"accept the request"`).
    pub action: String,
    /// The action.
    pub act: CaseAction,
    /// What it said.
    pub content: Content,
    /// The node where it was taken.
    pub node: NodeAddress,
    /// Applied, overtaken or pending.
    pub outcome: StepOutcome,
    /// The messages this node sent for it.
    pub messages: Vec<MessageId>,
}

impl CaseRecord {
    /// The bytes of every file the case's steps carry (logged and pending).
    pub fn attachment_bytes(&self) -> usize {
        let logged: usize = self
            .replica
            .log()
            .iter()
            .map(|e| e.step.content.attachment_bytes())
            .sum();
        let pending: usize = self
            .replica
            .pending()
            .iter()
            .map(|p| p.step.content.attachment_bytes())
            .sum();
        logged + pending
    }

    /// The case as this node shows it (the log and this node's pending
    /// steps).
    pub fn state(&self) -> CaseState {
        self.replica.view()
    }

    /// Every step, in the sequencer's order, then this node's pending ones.
    pub fn history(&self) -> Vec<HistoryEntry> {
        let log = self.replica.log();
        let carried = |id: &StepId| self.carried.get(id).cloned().unwrap_or_default();
        let mut history: Vec<HistoryEntry> = log
            .iter()
            .map(|entry: &Entry| {
                let outcome = match &entry.outcome {
                    Outcome::Applied => StepOutcome::Applied,
                    Outcome::Overtaken { by, reason } => {
                        let first = by
                            .and_then(|p| p.checked_sub(1))
                            .and_then(|i| log.get(i as usize));
                        StepOutcome::Overtaken {
                            by_action: first.map(|e| e.step.action.name().to_owned()),
                            by_act: first.map(|e| e.step.action.clone()),
                            by_actor: first.map(|e| e.step.actor.clone()),
                            reason: reason.clone(),
                        }
                    }
                };
                HistoryEntry {
                    step: entry.step.id,
                    at: entry.step.at,
                    actor: entry.step.actor.clone(),
                    action: entry.step.action.name().to_owned(),
                    act: entry.step.action.clone(),
                    content: entry.step.content.clone(),
                    node: entry.node.clone(),
                    outcome,
                    messages: carried(&entry.step.id),
                }
            })
            .collect();
        history.extend(self.replica.pending().iter().map(|p| HistoryEntry {
            step: p.step.id,
            at: p.step.at,
            actor: p.step.actor.clone(),
            action: p.step.action.name().to_owned(),
            act: p.step.action.clone(),
            content: p.step.content.clone(),
            node: self.replica.sequencer().clone(),
            outcome: StepOutcome::Pending,
            messages: carried(&p.step.id),
        }));
        history
    }
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).expect("records always encode")
}

/// Creates the case tables; refuses a store with cases in an earlier form.
pub(crate) fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    use redb::ReadableTableMetadata;
    for (name, why) in EARLIER_CASES {
        let earlier: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new(name);
        if tx.open_table(earlier)?.len()? > 0 {
            return Err(StoreError::corrupt(
                "cases",
                format!(
                    "this store holds cases {why} (table {name}); it cannot be read by this \
                     version: start from a new store"
                ),
            ));
        }
        tx.delete_table(earlier)?;
    }
    tx.open_table(CASES)?;
    routes::create_tables(tx)?;
    tasks::create_tables(tx)?;
    inbound::create_tables(tx)?;
    Ok(())
}

pub(crate) fn read_case(
    tx: &WriteTransaction,
    case: CaseId,
) -> Result<Option<CaseRecord>, StoreError> {
    let table = tx.open_table(CASES)?;
    let value = table.get(case.to_bytes().as_slice())?;
    value
        .map(|v| postcard::from_bytes(v.value()).map_err(|e| StoreError::corrupt("case", e)))
        .transpose()
}

/// Writes `record` with its tasks, deadline and retention dates, replacing
/// those of `before`.
pub(crate) fn write_case(
    tx: &WriteTransaction,
    before: Option<&CaseRecord>,
    record: &CaseRecord,
) -> Result<(), StoreError> {
    tx.open_table(CASES)?.insert(
        record.replica.id().to_bytes().as_slice(),
        encode(record).as_slice(),
    )?;
    tasks::reindex(tx, before, Some(record))
}

fn delete_case(tx: &WriteTransaction, before: &CaseRecord) -> Result<(), StoreError> {
    tx.open_table(CASES)?
        .remove(before.replica.id().to_bytes().as_slice())?;
    tasks::reindex(tx, Some(before), None)
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
    /// No node is known for a party that must hear of the step.
    #[error("no node is known that serves {0}; the directory has no route for it")]
    NoRoute(String),
    /// Someone else changed the case at the same moment.
    #[error("case {0} changed while the step was being taken; reload it and try again")]
    Conflict(CaseId),
    /// The step's files cannot travel.
    #[error(transparent)]
    Attachment(#[from] AttachmentError),
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

/// Finds the node of a party or addressed country: the node that spoke
/// for the authority in the case, else the routes table.
pub(crate) fn resolver<'a, T>(
    routes: &'a T,
    record: Option<&'a CaseRecord>,
) -> impl Fn(&Destination) -> Option<NodeAddress> + 'a
where
    T: ReadableTable<&'static [u8], &'static str>,
{
    // The node that spoke for each authority in the case's log.
    let known: BTreeMap<imi_protocol::AuthorityId, NodeAddress> = record
        .map(|r| {
            r.replica
                .log()
                .iter()
                .map(|e| (e.step.actor.authority, e.node.clone()))
                .collect()
        })
        .unwrap_or_default();
    move |destination: &Destination| match destination {
        // The authority that wrote the case is served by its sequencer.
        Destination::Authority(party)
            if record.is_some_and(|r| r.replica.initial().originator() == *party) =>
        {
            record
                .map(|r| r.replica.sequencer().clone())
                .filter(|node| node.country == party.country)
        }
        _ => routes::resolve(routes, &known, destination).ok().flatten(),
    }
}

fn header(
    me: &NodeAddress,
    author: &Author,
    case: CaseId,
    kind: MessageKind,
    to: &NodeAddress,
    sequence: u64,
    now: u64,
) -> Header {
    Header {
        version: PROTOCOL_VERSION,
        id: MessageId::new(),
        sender: me.clone(),
        author: author.clone(),
        recipients: vec![to.clone()],
        case,
        sequence,
        timestamp_ms: now,
        kind,
    }
}

/// Seals each outgoing case message in its own envelope inside `tx`, with
/// the case's next sequence number towards its recipient, and puts it in
/// the outbox. Returns what delivery must be told after the commit.
pub(crate) fn seal_outgoing(
    tx: &WriteTransaction,
    key: &imi_protocol::SigningKey,
    me: &NodeAddress,
    case: CaseId,
    kind: MessageKind,
    author: &Author,
    outgoing: &[Outgoing],
) -> Result<Vec<Queued>, StoreError> {
    let mut queued = Vec::with_capacity(outgoing.len());
    let now = now_ms();
    for out in outgoing {
        let sequence = delivery::last_sequence_in(tx, case, &out.to)? + 1;
        let envelope = seal(
            header(me, author, case, kind, &out.to, sequence, now),
            &out.message,
            key,
        )
        .map_err(|e| StoreError::corrupt("envelope", e))?;
        delivery::claim_sequence(tx, case, &out.to, sequence)?;
        queued.push(delivery::enqueue(tx, &out.to, &envelope)?);
    }
    Ok(queued)
}

impl CaseDesk {
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

    /// Stores a new case (a draft made with the state machine's `draft`);
    /// this node becomes the case's sequencer.
    pub async fn create(&self, state: CaseState, actor: Actor) -> Result<CaseId, CaseError> {
        let id = state.id();
        let record = CaseRecord {
            replica: Replica::create(self.address().clone(), state),
            carried: BTreeMap::new(),
            created: Some((actor, Timestamp::from_millis(now_ms()))),
        };
        self.store()
            .try_write(move |tx| {
                if read_case(tx, id)?.is_some() {
                    return Err(CaseError::Conflict(id));
                }
                write_case(tx, None, &record)?;
                Ok(id)
            })
            .await
    }

    /// Takes a step in `case` as `actor`: checked against the case as this
    /// node shows it, then committed with the envelopes that carry it (to
    /// the sequencer, or from the sequencer to every other holder), the
    /// case's tasks and its clocks.
    pub async fn act(
        &self,
        case: CaseId,
        actor: Actor,
        action: CaseAction,
        content: Content,
    ) -> Result<CaseRecord, CaseError> {
        self.step(case, None, actor, action, content).await
    }

    /// Writes a new case and takes its first step (sending a draft) in one
    /// transaction: if the step is refused, nothing is stored, so no draft
    /// is left behind.
    pub async fn open_case(
        &self,
        state: CaseState,
        actor: Actor,
        action: CaseAction,
        content: Content,
    ) -> Result<CaseRecord, CaseError> {
        let case = state.id();
        let record = CaseRecord {
            replica: Replica::create(self.address().clone(), state),
            carried: BTreeMap::new(),
            created: Some((actor.clone(), Timestamp::from_millis(now_ms()))),
        };
        self.step(case, Some(record), actor, action, content).await
    }

    /// Takes a step on the stored case, or on `new` (a case not stored
    /// yet). The step is checked and its envelopes sealed outside the
    /// store's writer, under the case's turn to send; the write then checks
    /// that the case is still as it was read, and commits the case, its
    /// tasks and its envelopes together. A received message that changed
    /// the case meanwhile makes it start again with the case as it now is.
    async fn step(
        &self,
        case: CaseId,
        new: Option<CaseRecord>,
        actor: Actor,
        action: CaseAction,
        content: Content,
    ) -> Result<CaseRecord, CaseError> {
        content.check_attachments(MAX_STEP_ATTACHMENT_BYTES)?;
        let step = Step {
            id: StepId::new(),
            actor: actor.clone(),
            at: Timestamp::from_millis(now_ms()),
            action,
            content,
        };
        let author = Author {
            authority: actor.authority,
            user: Some(actor.user),
        };
        let mut attempts = 0;
        loop {
            attempts += 1;
            let turn = self.delivery().turns().take(case).await;
            match self.try_step(case, new.clone(), &step, &author).await {
                Err(CaseError::Conflict(_)) if attempts < 5 && new.is_none() => {
                    drop(turn);
                    continue;
                }
                Err(err) => return Err(err),
                Ok((queued, stored)) => {
                    drop(turn);
                    info!(%case, action = step.action.name(), "case step taken");
                    self.delivery().enqueued(queued).await;
                    return Ok(stored);
                }
            }
        }
    }

    async fn try_step(
        &self,
        case: CaseId,
        new: Option<CaseRecord>,
        step: &Step,
        author: &Author,
    ) -> Result<(Vec<Queued>, CaseRecord), CaseError> {
        // The case as stored, and its bytes: the write checks that they
        // are still the same.
        let (stored_bytes, stored) = {
            let read = self.store().read()?;
            let table = read.open_table(CASES)?;
            let bytes = table
                .get(case.to_bytes().as_slice())?
                .map(|v| v.value().to_vec());
            let stored = bytes
                .as_deref()
                .map(postcard::from_bytes::<CaseRecord>)
                .transpose()
                .map_err(|e| StoreError::corrupt("case", e))?;
            (bytes, stored)
        };
        let (before, record) = match (stored, new) {
            (Some(_), Some(_)) => return Err(CaseError::Conflict(case)),
            (None, None) => return Err(CaseError::NotFound(case)),
            (Some(record), None) => (Some(record.clone()), record),
            (None, Some(record)) => (None, record),
        };
        let files = step.content.attachment_bytes();
        if files > 0 {
            let size = record.attachment_bytes() + files;
            if size > MAX_CASE_ATTACHMENT_BYTES {
                return Err(AttachmentError::TooLarge {
                    size,
                    limit: MAX_CASE_ATTACHMENT_BYTES,
                }
                .into());
            }
        }
        let mut replica = record.replica.clone();
        let acted = {
            let read = self.store().read()?;
            let routes = read.open_table(ROUTES)?;
            take_step(
                &mut replica,
                step.clone(),
                &resolver(&routes, Some(&record)),
            )?
        };
        let forget = acted.effects.contains(&Effect::Forget);
        let kind = acted.view.kind();
        let now = now_ms();
        let me = self.address().clone();
        let mut envelopes = Vec::with_capacity(acted.outgoing.len());
        for out in &acted.outgoing {
            let sequence = delivery::last_sequence(self.store(), case, &out.to)? + 1;
            let envelope = seal(
                header(&me, author, case, kind, &out.to, sequence, now),
                &out.message,
                self.signing_key(),
            )
            .map_err(|e| CaseError::Store(format!("the message could not be sealed: {e}")))?;
            envelopes.push((out.to.clone(), envelope));
        }
        let mut new_record = record;
        new_record.replica = replica;
        if !envelopes.is_empty() {
            new_record.carried.insert(
                step.id,
                envelopes.iter().map(|(_, e)| e.header().id).collect(),
            );
        }
        let new_record = std::sync::Arc::new(new_record);
        let written = std::sync::Arc::clone(&new_record);
        let queued = self
            .store()
            .try_write(move |tx| {
                let unchanged = {
                    let table = tx.open_table(CASES)?;
                    let now = table.get(case.to_bytes().as_slice())?;
                    now.as_ref().map(|v| v.value()) == stored_bytes.as_deref()
                };
                if !unchanged {
                    return Err(CaseError::Conflict(case));
                }
                if forget {
                    if let Some(before) = &before {
                        delete_case(tx, before)?;
                    }
                    return Ok(vec![]);
                }
                let mut queued = Vec::with_capacity(envelopes.len());
                for (to, envelope) in &envelopes {
                    // The fan-out may have taken the number meanwhile.
                    if delivery::last_sequence_in(tx, case, to)? + 1 != envelope.header().sequence {
                        return Err(CaseError::Conflict(case));
                    }
                    delivery::claim_sequence(tx, case, to, envelope.header().sequence)?;
                    queued.push(delivery::enqueue(tx, to, envelope)?);
                }
                write_case(tx, before.as_ref(), &written)?;
                Ok(queued)
            })
            .await?;
        Ok((queued, std::sync::Arc::unwrap_or_clone(new_record)))
    }
}

/// Takes `step` on `replica`, refusing it when a holder of the case after
/// the step has no known node.
fn take_step(
    replica: &mut Replica,
    step: Step,
    resolve: &impl Fn(&Destination) -> Option<NodeAddress>,
) -> Result<imi_protocol::Acted, CaseError> {
    let after = replica.view().apply(&step.actor, step.at, &step.action)?;
    if replica.is_sequencer() {
        for destination in after.state.holders() {
            if resolve(&destination).is_none() {
                return Err(CaseError::NoRoute(match destination {
                    Destination::Authority(p) => p.to_string(),
                    Destination::Country(c) => format!("country {c}"),
                }));
            }
        }
    }
    Ok(replica.act(step, resolve)?)
}

#[cfg(test)]
mod tests {
    use redb::TableDefinition;

    use super::create_tables;
    use crate::store::Store;

    #[tokio::test]
    async fn a_store_with_cases_of_an_earlier_form_is_refused_and_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.redb")).unwrap();
        const EARLIER: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("cases-2");
        store
            .write(|tx| {
                tx.open_table(EARLIER)?
                    .insert([7u8; 16].as_slice(), b"a case".as_slice())?;
                Ok(())
            })
            .await
            .unwrap();

        let refused = store.write(create_tables).await.unwrap_err();
        let reason = refused.to_string();
        assert!(
            reason.contains("cases-2") && reason.contains("start from a new store"),
            "{reason}"
        );
        let tx = store.read().unwrap();
        let table = tx.open_table(EARLIER).unwrap();
        let kept = table.get([7u8; 16].as_slice()).unwrap().unwrap();
        assert_eq!(kept.value(), b"a case");
    }
}
