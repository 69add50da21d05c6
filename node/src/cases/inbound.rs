//! Received case messages, and the fan-out of the sequencer's log.
//!
//! [`CaseApp`] applies a received [`CaseMessage`] to this node's replica of
//! the case inside the transaction that stores the envelope and its
//! receipt. When this node is the case's sequencer and logs a proposal,
//! the entries every other holder must get are written, in that same
//! transaction, to the fan-out table; the fan-out task seals them into
//! envelopes and hands them to delivery right after. A crash between the
//! two loses nothing: the table is read again at start.

use std::sync::{Arc, Mutex};

use imi_protocol::{
    Author, CaseId, CaseMessage, Destination, LogError, MAX_CASE_ATTACHMENT_BYTES,
    MAX_STEP_ATTACHMENT_BYTES, MessageKind, NodeAddress, Opened, Outgoing, Replica, Step,
    TransitionError,
};
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tracing::{info, warn};

use super::{CASES, CaseRecord, encode, read_case, resolver, seal_outgoing, write_case};
use crate::delivery::{Inbound, Rejection};
use crate::node::Outlet;
use crate::routes::{self, ROUTES, RouteKey};
use crate::store::StoreError;

/// Log entries waiting to be sealed for other holders: `u64` → [`FanOut`].
const FAN_OUT: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("case-fan-out-1");

/// Messages the sequencer must send about a case, waiting to be sealed.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FanOut {
    case: CaseId,
    kind: MessageKind,
    author: Author,
    to: NodeAddress,
    message: CaseMessage,
}

pub(crate) fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(FAN_OUT)?;
    Ok(())
}

/// The application of received case steps.
#[derive(Debug)]
pub struct CaseApp {
    me: NodeAddress,
    fan_out: Arc<Notify>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl CaseApp {
    /// The application of node `me`.
    pub fn new(me: NodeAddress) -> CaseApp {
        CaseApp {
            me,
            fan_out: Arc::new(Notify::new()),
            task: Mutex::new(None),
        }
    }

    /// Whether this node serves a party or an addressed country of the case.
    fn serves<T>(&self, routes: &T, record: &CaseRecord) -> bool
    where
        T: ReadableTable<&'static [u8], &'static str>,
    {
        // Only a route to this very authority or country counts here, not
        // the fallback to a country's node that sending uses.
        let is_me = |key: RouteKey| {
            routes::lookup(routes, key)
                .ok()
                .flatten()
                .is_some_and(|node| node == self.me)
        };
        record.state().holders().iter().any(|d| match d {
            Destination::Authority(party) => is_me(RouteKey::Authority(*party)),
            Destination::Country(country) => {
                *country == self.me.country && is_me(RouteKey::Country(*country))
            }
        })
    }
}

/// Every file of every step the message carries must match its digest
/// and fit the limits all nodes keep; otherwise the whole message is
/// refused and nothing of it is stored.
fn check_files(message: &CaseMessage) -> Result<(), Rejection> {
    let steps: Vec<&Step> = match message {
        CaseMessage::Propose { step, .. } => vec![step.as_ref()],
        CaseMessage::Log { opening, entries } => opening
            .iter()
            .flat_map(|o| o.entries.iter())
            .chain(entries)
            .map(|e| &e.step)
            .collect(),
    };
    let mut total = 0;
    for step in steps {
        step.content
            .check_attachments(MAX_STEP_ATTACHMENT_BYTES)
            .map_err(|e| Rejection::new("bad-attachment", e.to_string()))?;
        total += step.content.attachment_bytes();
    }
    if total > MAX_CASE_ATTACHMENT_BYTES {
        return Err(Rejection::new(
            "bad-attachment",
            format!(
                "the files come to {total} bytes, more than the {MAX_CASE_ATTACHMENT_BYTES} bytes a case may carry"
            ),
        ));
    }
    Ok(())
}

fn rejection(err: &LogError) -> Rejection {
    let code = match err {
        LogError::NotSequencer { .. } => "not-sequencer",
        LogError::NotFromSequencer { .. } => "not-from-sequencer",
        LogError::Unknown(_) => "unknown-case",
        LogError::Incoherent { .. } => "incoherent-case",
        LogError::Refused { error, .. } => match error {
            TransitionError::NotAllowed { .. } => "forbidden-transition",
            TransitionError::WrongSide { .. } => "wrong-side",
            TransitionError::MissingRole { .. } => "missing-role",
            TransitionError::Invalid { .. } => "invalid-argument",
        },
        LogError::ForeignActor { .. } => "foreign-actor",
        LogError::Mismatch(_) => "case-mismatch",
    };
    Rejection::new(code, err.to_string())
}

impl Inbound for CaseApp {
    type Body = CaseMessage;

    fn apply(&self, tx: &WriteTransaction, message: &Opened<CaseMessage>) -> Result<(), Rejection> {
        let header = &message.header;
        check_files(&message.body)?;
        let internal =
            |e: StoreError| Rejection::new("store", format!("the case could not be stored: {e}"));
        let existing = read_case(tx, header.case).map_err(internal)?;
        let routes = tx.open_table(ROUTES).map_err(|e| internal(e.into()))?;
        let (record, outgoing) = match &existing {
            Some(record) => {
                let mut replica = record.replica.clone();
                let resolve = resolver(&routes, Some(record));
                let outgoing = replica
                    .receive(&header.sender, message.body.clone(), &resolve)
                    .map_err(|e| rejection(&e))?;
                let mut record = record.clone();
                record.replica = replica;
                (record, outgoing)
            }
            None => {
                let replica = Replica::from_message(
                    self.me.clone(),
                    header.case,
                    &header.sender,
                    message.body.clone(),
                )
                .map_err(|e| rejection(&e))?;
                let record = CaseRecord {
                    replica,
                    carried: Default::default(),
                    created: None,
                };
                if !self.serves(&routes, &record) {
                    return Err(Rejection::new(
                        "not-served-here",
                        format!(
                            "node {} serves none of the authorities or countries of this case",
                            self.me
                        ),
                    ));
                }
                (record, vec![])
            }
        };
        drop(routes);
        let state = record.state();
        if state.kind() != header.kind {
            return Err(Rejection::new(
                "wrong-kind",
                format!(
                    "the envelope says {} but the case is a {}",
                    header.kind,
                    state.kind()
                ),
            ));
        }
        state
            .check()
            .map_err(|reason| Rejection::new("incoherent-case", reason))?;
        write_case(tx, existing.as_ref(), &record).map_err(internal)?;
        if !outgoing.is_empty() {
            queue_fan_out(tx, header.case, state.kind(), &header.author, outgoing)
                .map_err(internal)?;
            self.fan_out.notify_one();
        }
        info!(case = %header.case, from = %header.sender, state = %state.describe(), "case step applied");
        Ok(())
    }

    fn started(&self, outlet: Outlet) {
        let notify = self.fan_out.clone();
        let me = self.me.clone();
        // Whatever a crash left in the table goes out first.
        notify.notify_one();
        let task = tokio::spawn(async move {
            loop {
                notify.notified().await;
                let key = outlet.key.clone();
                let me = me.clone();
                let sealed = outlet
                    .store
                    .write(move |tx| seal_fan_out(tx, &key, &me))
                    .await;
                match sealed {
                    Ok(queued) => outlet.delivery.enqueued(queued).await,
                    Err(err) => {
                        warn!(error = %err, "the case log could not be passed on; will try again")
                    }
                }
            }
        });
        *self.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
    }

    fn stopping(&self) {
        if let Some(task) = self.task.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
    }
}

impl crate::node::Node<CaseApp> {
    /// How many log messages wait to be sealed for other holders (the
    /// fan-out runs right after each commit, so this is usually zero).
    pub fn fan_out_waiting(&self) -> Result<u64, StoreError> {
        use redb::ReadableTableMetadata;
        Ok(self.store().read()?.open_table(FAN_OUT)?.len()?)
    }
}

fn queue_fan_out(
    tx: &WriteTransaction,
    case: CaseId,
    kind: MessageKind,
    author: &Author,
    outgoing: Vec<Outgoing>,
) -> Result<(), StoreError> {
    let mut table = tx.open_table(FAN_OUT)?;
    let first = table.last()?.map(|(k, _)| k.value() + 1).unwrap_or(0);
    for (next, out) in (first..).zip(outgoing) {
        let item = FanOut {
            case,
            kind,
            author: author.clone(),
            to: out.to,
            message: out.message,
        };
        table.insert(next, encode(&item).as_slice())?;
    }
    Ok(())
}

/// Seals everything in the fan-out table, records the messages on their
/// cases, and empties the table.
fn seal_fan_out(
    tx: &WriteTransaction,
    key: &imi_protocol::SigningKey,
    me: &NodeAddress,
) -> Result<Vec<crate::delivery::Queued>, StoreError> {
    let items: Vec<(u64, FanOut)> = {
        let table = tx.open_table(FAN_OUT)?;
        table
            .iter()?
            .map(|row| {
                let (k, v) = row?;
                let item: FanOut = postcard::from_bytes(v.value())
                    .map_err(|e| StoreError::corrupt("fan-out", e))?;
                Ok((k.value(), item))
            })
            .collect::<Result<_, StoreError>>()?
    };
    let mut queued = Vec::new();
    for (k, item) in items {
        let sent = seal_outgoing(
            tx,
            key,
            me,
            item.case,
            item.kind,
            &item.author,
            &[Outgoing {
                to: item.to,
                message: item.message.clone(),
            }],
        )?;
        if let CaseMessage::Log { entries, .. } = &item.message
            && let Some(mut record) = read_case(tx, item.case)?
        {
            for entry in entries {
                record
                    .carried
                    .entry(entry.step.id)
                    .or_default()
                    .extend(sent.iter().map(|q| q.id));
            }
            tx.open_table(CASES)?
                .insert(item.case.to_bytes().as_slice(), encode(&record).as_slice())?;
        }
        tx.open_table(FAN_OUT)?.remove(k)?;
        queued.extend(sent);
    }
    Ok(queued)
}
