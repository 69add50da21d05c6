//! What cases wait for, indexed for "My tasks", the coordinators' list of
//! overdue requests and the data-protection clock.
//!
//! Every write of a case replaces its rows here in the same transaction
//! ([`reindex`]), from the case as this node shows it: its tasks
//! (`CaseState::tasks`), its running reply-by date and its closure date
//! (the clocks the state machine's effects set). Reading the tasks of a
//! user or an authority is a prefix scan: it costs what the tasks cost,
//! whatever the number of cases.

use imi_protocol::{
    Actor, CaseId, CaseState, Date, MessageKind, Party, Retention, Role, Task, TaskKind, TaskOwner,
    Timestamp,
};
use redb::{TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::{CaseDesk, CaseRecord, encode};
use crate::store::StoreError;

/// Tasks: owner ++ due ++ case id ++ task kind → [`TaskRow`].
const TASKS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("tasks-2");
/// The tasks in the form before rows named the case's parties; rebuilt
/// from the cases when found.
const TASKS_BEFORE_PARTIES: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("tasks-1");
/// Running reply-by dates: due day ++ case id → `()`.
const DEADLINES: TableDefinition<'_, &[u8], ()> = TableDefinition::new("deadlines-1");
/// Closed cases: closure time (ms, big-endian) ++ case id → `()`.
const RETENTION: TableDefinition<'_, &[u8], ()> = TableDefinition::new("retention-1");

pub(crate) fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    if tx.delete_table(TASKS_BEFORE_PARTIES)? {
        rebuild(tx)?;
    }
    tx.open_table(TASKS)?;
    tx.open_table(DEADLINES)?;
    tx.open_table(RETENTION)?;
    Ok(())
}

/// One task, as My tasks lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRow {
    /// The case.
    pub case: CaseId,
    /// Request, alert or notification.
    pub case_kind: MessageKind,
    /// The case's legislative area (catalogue key).
    pub area: String,
    /// What must be done.
    pub kind: TaskKind,
    /// Who must do it.
    pub owner: TaskOwner,
    /// By when, if there is a reply-by date.
    pub due: Option<Date>,
    /// The case's state in words.
    pub state: String,
    /// The case's state as a stable key (`"accepted"`).
    pub status: String,
    /// The authority that opened the case.
    pub from: Party,
    /// The authority a request is addressed to now.
    pub to: Option<Party>,
    /// When the case last changed.
    pub updated_at: Timestamp,
}

impl TaskRow {
    /// Whether the task is past its date on `today`.
    pub fn is_overdue(&self, today: Date) -> bool {
        self.due.is_some_and(|due| due < today)
    }
}

fn owner_key(owner: &TaskOwner) -> Vec<u8> {
    let mut key = Vec::with_capacity(40);
    match owner {
        TaskOwner::Authority(party) => {
            key.push(b'a');
            key.extend_from_slice(party.country.code().as_bytes());
            key.extend_from_slice(&party.authority.to_bytes());
        }
        TaskOwner::User(user) => {
            key.push(b'u');
            key.extend_from_slice(&user.to_bytes());
        }
        TaskOwner::Coordinators(country, role) => {
            key.push(b'c');
            key.extend_from_slice(country.code().as_bytes());
            key.extend_from_slice(role.as_str().as_bytes());
            key.push(b'/');
        }
    }
    key
}

fn day_key(due: Option<Date>) -> [u8; 8] {
    let days = due.map_or(u64::MAX, |d| (d.days_since_epoch() + (1 << 40)) as u64);
    days.to_be_bytes()
}

fn task_key(task: &Task, case: CaseId) -> Vec<u8> {
    let mut key = owner_key(&task.owner);
    key.extend_from_slice(&day_key(task.due));
    key.extend_from_slice(&case.to_bytes());
    key.extend_from_slice(task.kind.as_str().as_bytes());
    key
}

fn deadline_key(due: Date, case: CaseId) -> Vec<u8> {
    let mut key = day_key(Some(due)).to_vec();
    key.extend_from_slice(&case.to_bytes());
    key
}

fn retention_key(retention: Retention, case: CaseId) -> Vec<u8> {
    let mut key = retention.closed_at.as_millis().to_be_bytes().to_vec();
    key.extend_from_slice(&case.to_bytes());
    key
}

struct Indexed {
    case: CaseId,
    state: CaseState,
    deadline: Option<Date>,
    retention: Option<Retention>,
}

fn indexed(record: &CaseRecord) -> Indexed {
    let clocks = record.replica.clocks();
    let state = record.state();
    // Only a request owes an answer by a date.
    let deadline = match &state {
        CaseState::Request(r) if r.status().awaits_answer() => clocks.deadline,
        _ => None,
    };
    Indexed {
        case: record.replica.id(),
        state,
        deadline,
        retention: clocks.retention,
    }
}

/// Indexes every stored case again: the tasks table had an earlier form.
fn rebuild(tx: &WriteTransaction) -> Result<(), StoreError> {
    use redb::ReadableTable;
    let mut records = Vec::new();
    for row in tx.open_table(super::CASES)?.iter()? {
        let (_, value) = row?;
        records.push(
            postcard::from_bytes::<CaseRecord>(value.value())
                .map_err(|e| StoreError::corrupt("case", e))?,
        );
    }
    tx.delete_table(TASKS)?;
    tx.delete_table(DEADLINES)?;
    tx.delete_table(RETENTION)?;
    for record in &records {
        reindex(tx, None, Some(record))?;
    }
    tracing::info!(cases = records.len(), "tasks indexed again from the cases");
    Ok(())
}

/// Replaces the rows of a case: those of `before` go, those of `after`
/// come.
pub(crate) fn reindex(
    tx: &WriteTransaction,
    before: Option<&CaseRecord>,
    after: Option<&CaseRecord>,
) -> Result<(), StoreError> {
    let before = before.map(indexed);
    let after = after.map(indexed);
    let mut tasks = tx.open_table(TASKS)?;
    let mut deadlines = tx.open_table(DEADLINES)?;
    let mut retention = tx.open_table(RETENTION)?;
    if let Some(old) = &before {
        for task in old.state.tasks() {
            tasks.remove(task_key(&task, old.case).as_slice())?;
        }
        if let Some(due) = old.deadline {
            deadlines.remove(deadline_key(due, old.case).as_slice())?;
        }
        if let Some(r) = old.retention {
            retention.remove(retention_key(r, old.case).as_slice())?;
        }
    }
    if let Some(new) = &after {
        for task in new.state.tasks() {
            let row = TaskRow {
                case: new.case,
                case_kind: new.state.kind(),
                area: new.state.area().to_owned(),
                kind: task.kind,
                owner: task.owner,
                due: task.due,
                state: new.state.describe(),
                status: new.state.status_key().to_owned(),
                from: new.state.originator(),
                to: match &new.state {
                    CaseState::Request(r) => Some(r.responder()),
                    _ => None,
                },
                updated_at: new.state.updated_at(),
            };
            tasks.insert(
                task_key(&task, new.case).as_slice(),
                encode(&row).as_slice(),
            )?;
        }
        if let Some(due) = new.deadline {
            deadlines.insert(deadline_key(due, new.case).as_slice(), ())?;
        }
        if let Some(r) = new.retention {
            retention.insert(retention_key(r, new.case).as_slice(), ())?;
        }
    }
    Ok(())
}

/// Who a task may be waiting for, for `actor`: the actor as a user, their
/// authority, and the coordinators of their country whose roles they hold.
pub fn owners_of(actor: &Actor) -> Vec<TaskOwner> {
    let mut owners = vec![
        TaskOwner::User(actor.user),
        TaskOwner::Authority(Party::of(actor)),
    ];
    for role in [Role::AlertCoordinator, Role::NationalCoordinator] {
        if actor.has(role) {
            owners.push(TaskOwner::Coordinators(actor.country, role));
        }
    }
    owners
}

/// Cases by date, as the coordinators' lists read them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dated {
    /// The case.
    pub case: CaseId,
    /// Its reply-by date, or its closure time.
    pub when: Timestamp,
}

/// One page of a task list, with the counts of the whole list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskPage {
    /// Tasks in the list.
    pub total: usize,
    /// Tasks in the list past their date.
    pub overdue: usize,
    /// The page, soonest due first (tasks without a date last).
    pub rows: Vec<TaskRow>,
}

impl CaseDesk {
    /// One page of the tasks waiting for any of `owners`, soonest due
    /// first, counting the whole list and its tasks overdue on `today`;
    /// with `overdue_only`, only those. Only the page's rows are read in
    /// full: the counts and the order come from the keys.
    pub fn task_page(
        &self,
        owners: &[TaskOwner],
        today: Date,
        overdue_only: bool,
        offset: usize,
        limit: usize,
    ) -> Result<TaskPage, StoreError> {
        let read = self.store().read()?;
        let table = read.open_table(TASKS)?;
        let today_key = day_key(Some(today));
        let ranges = |table: &redb::ReadOnlyTable<&'static [u8], &'static [u8]>| {
            owners
                .iter()
                .map(|owner| {
                    let prefix = owner_key(owner);
                    let range = match prefix_end(&prefix) {
                        Some(end) => table.range(prefix.as_slice()..end.as_slice())?,
                        None => table.range(prefix.as_slice()..)?,
                    };
                    Ok((prefix.len(), range.peekable()))
                })
                .collect::<Result<Vec<_>, StoreError>>()
        };
        // Counts, from the keys alone: each key holds its due day.
        let (mut total, mut overdue) = (0, 0);
        for (prefix, range) in ranges(&table)? {
            for row in range {
                let (key, _) = row?;
                let late = key.value().get(prefix..prefix + 8) < Some(today_key.as_slice());
                overdue += usize::from(late);
                total += usize::from(late || !overdue_only);
            }
        }
        // The page: each owner's keys come sorted by due day, then case;
        // merge them until the page is full.
        let mut streams = ranges(&table)?;
        let mut rows = Vec::with_capacity(limit.min(total));
        let mut skipped = 0;
        while rows.len() < limit {
            // (stream, its prefix length, key) of the smallest head.
            let mut next: Option<(usize, usize, Vec<u8>)> = None;
            for (i, (prefix, stream)) in streams.iter_mut().enumerate() {
                let Some(head) = stream.peek() else { continue };
                let key = match head {
                    Ok((key, _)) => key.value(),
                    Err(_) => return Err(StoreError::corrupt("task", "a key could not be read")),
                };
                let rest = &key[*prefix..];
                if overdue_only && rest.get(..8) >= Some(today_key.as_slice()) {
                    continue;
                }
                let better = next
                    .as_ref()
                    .is_none_or(|(_, best_prefix, best)| rest < &best[*best_prefix..]);
                if better {
                    next = Some((i, *prefix, key.to_vec()));
                }
            }
            let Some((i, _, key)) = next else { break };
            let _ = streams[i].1.next();
            if skipped < offset {
                skipped += 1;
                continue;
            }
            if let Some(value) = table.get(key.as_slice())? {
                rows.push(
                    postcard::from_bytes::<TaskRow>(value.value())
                        .map_err(|e| StoreError::corrupt("task", e))?,
                );
            }
        }
        Ok(TaskPage {
            total,
            overdue,
            rows,
        })
    }

    /// The tasks waiting for any of `owners`, soonest due first (tasks
    /// without a date last). Reads only those owners' rows.
    pub fn tasks_of(&self, owners: &[TaskOwner]) -> Result<Vec<TaskRow>, StoreError> {
        let read = self.store().read()?;
        let table = read.open_table(TASKS)?;
        let mut rows = Vec::new();
        for owner in owners {
            let prefix = owner_key(owner);
            let range = match prefix_end(&prefix) {
                Some(end) => table.range(prefix.as_slice()..end.as_slice())?,
                None => table.range(prefix.as_slice()..)?,
            };
            for row in range {
                let (_, value) = row?;
                rows.push(
                    postcard::from_bytes::<TaskRow>(value.value())
                        .map_err(|e| StoreError::corrupt("task", e))?,
                );
            }
        }
        rows.sort_by_key(|r| (r.due.is_none(), r.due, r.case));
        Ok(rows)
    }

    /// The tasks of `actor`'s "My tasks": theirs, their authority's, and
    /// their country's coordinators' for the roles they hold.
    pub fn tasks_for(&self, actor: &Actor) -> Result<Vec<TaskRow>, StoreError> {
        self.tasks_of(&owners_of(actor))
    }

    /// Requests whose reply-by date is before `day` while an answer is
    /// still owed: the coordinators' list of overdue requests (with a later
    /// `day`, the soon-due ones too).
    pub fn due_before(&self, day: Date) -> Result<Vec<Dated>, StoreError> {
        let read = self.store().read()?;
        let table = read.open_table(DEADLINES)?;
        let end = day_key(Some(day));
        let mut cases = Vec::new();
        for row in table.range(..end.as_slice())? {
            let (key, _) = row?;
            let key = key.value();
            let days = u64::from_be_bytes(key[..8].try_into().expect("8 bytes")) as i64 - (1 << 40);
            let due = Date::from_days_since_epoch(days).unwrap_or(Date::MAX);
            cases.push(Dated {
                case: case_in(&key[8..]),
                when: due.start(),
            });
        }
        Ok(cases)
    }

    /// Cases closed before `time`, oldest first: with `time` six months
    /// ago, those whose personal data must be blocked; three years ago,
    /// deleted (Regulation 1024/2012, Art. 14).
    pub fn closed_before(&self, time: Timestamp) -> Result<Vec<Dated>, StoreError> {
        let read = self.store().read()?;
        let table = read.open_table(RETENTION)?;
        let end = time.as_millis().to_be_bytes();
        let mut cases = Vec::new();
        for row in table.range(..end.as_slice())? {
            let (key, _) = row?;
            let key = key.value();
            cases.push(Dated {
                case: case_in(&key[8..]),
                when: Timestamp::from_millis(u64::from_be_bytes(
                    key[..8].try_into().expect("8 bytes"),
                )),
            });
        }
        Ok(cases)
    }
}

/// The first key after every key that starts with `prefix`.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn case_in(bytes: &[u8]) -> CaseId {
    let mut id = [0u8; 16];
    id.copy_from_slice(&bytes[..16]);
    CaseId::from_bytes(id)
}
