//! The web UI's view of cases: My tasks, a request with its history and
//! the delivery state of every message, new requests and steps.
//!
//! Every call decides rights from the stored account: an official sees and
//! acts only in requests their authority takes part in, with the roles
//! they hold in the request's legislative area (the state machine checks
//! each step again).

use std::collections::BTreeMap;

use imi_protocol::{
    Actor, CaseAction, CaseId, CaseState, Content, Date, Party, Rating, Request, RequestAction,
    TaskOwner, Timestamp,
};
use imi_web::{
    CaseView, DeliveryView, HistoryItem, NewRequest, NodeError, PartyName, RequestActionKey,
    StepFate, TaskFilter, TaskList, TaskQuery, TaskView,
};
use tracing::info;

use imi_web::NodeInterface;

use super::{NodeUi, admin_error, now, store_error};
use crate::cases::tasks::{TaskPage, owners_of};
use crate::cases::{CaseError, CaseRecord, StepOutcome};
use crate::delivery::{self, MessageStatus};
use crate::store::StoreError;

impl NodeUi {
    /// The user as an actor in `area`, with the roles they hold there.
    pub(super) fn actor(&self, user: imi_protocol::UserId, area: &str) -> Result<Actor, NodeError> {
        let account = self.admin.user(user).map_err(admin_error)?;
        Ok(account.user.actor_for(self.info.country, area))
    }

    /// The authority's name in the reader's language, else any.
    pub(super) fn party_name(&self, party: Party, reader: imi_protocol::Language) -> PartyName {
        let names = self
            .directory
            .authority(party.country, party.authority)
            .map(|a| a.names)
            .or_else(|| {
                // The node's own authorities, even before they are published.
                (party.country == self.info.country)
                    .then(|| self.admin.authority(party.authority).ok())
                    .flatten()
                    .map(|r| r.authority.names)
            })
            .unwrap_or_default();
        let (language, name) = names
            .get_key_value(&reader)
            .or_else(|| names.iter().next())
            .map_or((reader, party.authority.to_string()), |(l, n)| {
                (*l, n.clone())
            });
        PartyName {
            party,
            name,
            language,
        }
    }

    pub(super) async fn task_list(
        &self,
        user: imi_protocol::UserId,
        query: TaskQuery,
    ) -> Result<TaskList, NodeError> {
        // One read of the account for both who they are and what they hold.
        let account = self.account(user)?;
        let actor = account
            .user
            .actor_for(self.info.country, imi_protocol::ALL_AREAS);
        let official = self.usable(account)?;
        let mine = Party::of(&actor);
        let today = now().date();
        let owners = match query.filter {
            TaskFilter::Mine => vec![TaskOwner::User(user)],
            _ => owners_of(&actor),
        };
        let cases = self.cases.clone();
        let page = tokio::task::spawn_blocking(move || -> Result<TaskPage, StoreError> {
            let overdue_only = query.filter == TaskFilter::Overdue;
            if !query.by_update {
                return cases.task_page(&owners, today, overdue_only, query.offset, query.limit);
            }
            // Most recently changed first: every row is read.
            let mut rows = cases.tasks_of(&owners)?;
            let overdue = rows.iter().filter(|r| r.is_overdue(today)).count();
            rows.retain(|r| !overdue_only || r.is_overdue(today));
            rows.sort_by_key(|r| std::cmp::Reverse(r.updated_at));
            Ok(TaskPage {
                total: rows.len(),
                overdue,
                rows: rows
                    .into_iter()
                    .skip(query.offset)
                    .take(query.limit)
                    .collect(),
            })
        })
        .await
        .map_err(store_error)?
        .map_err(store_error)?;
        let mut names: BTreeMap<Party, PartyName> = BTreeMap::new();
        let tasks = page
            .rows
            .into_iter()
            .map(|row| {
                let other = match row.to {
                    Some(to) if row.from == mine => Some(to),
                    Some(_) => Some(row.from),
                    None if row.from != mine => Some(row.from),
                    None => None,
                };
                let counterpart = other.map(|p| {
                    names
                        .entry(p)
                        .or_insert_with(|| self.party_name(p, official.language))
                        .clone()
                });
                TaskView {
                    case: row.case,
                    case_kind: row.case_kind,
                    area: row.area,
                    kind: row.kind,
                    personal: matches!(row.owner, TaskOwner::User(_)),
                    due: row.due,
                    status: row.status,
                    updated_at: row.updated_at,
                    counterpart,
                }
            })
            .collect();
        Ok(TaskList {
            tasks,
            total: page.total,
            overdue: page.overdue,
            today,
        })
    }

    /// The stored request and the user as an actor in it, if their
    /// authority takes part.
    fn readable(
        &self,
        user: imi_protocol::UserId,
        case: CaseId,
    ) -> Result<(CaseRecord, Request, Actor), NodeError> {
        let record = self
            .cases
            .case(case)
            .map_err(store_error)?
            .ok_or_else(|| NodeError::NotFound(format!("case {case}")))?;
        let state = record.state();
        let CaseState::Request(request) = state else {
            return Err(NodeError::NotFound(format!("request {case}")));
        };
        let actor = self.actor(user, request.area())?;
        let party = Party::of(&actor);
        if !CaseState::Request(request.clone())
            .parties()
            .contains(&party)
        {
            info!(user = %user, %case, "a case of another authority was refused");
            return Err(NodeError::NotAllowed(
                "this request is not one of your authority's".into(),
            ));
        }
        Ok((record, request, actor))
    }

    pub(super) async fn case_view(
        &self,
        user: imi_protocol::UserId,
        case: CaseId,
    ) -> Result<CaseView, NodeError> {
        let official = self.official(user).await?;
        let reader = official.language;
        let (record, request, actor) = self.readable(user, case)?;
        let mut sent = Content::default();
        let mut was_sent = false;
        let mut answers = BTreeMap::new();
        let mut history = Vec::new();
        for entry in record.history() {
            let CaseAction::Request(action) = &entry.act else {
                continue;
            };
            let applied = entry.outcome == StepOutcome::Applied;
            let first_send = matches!(action, RequestAction::Send { .. }) && !was_sent;
            if applied && (first_send || matches!(action, RequestAction::ModifyDraft { .. })) {
                sent = entry.content.clone();
                was_sent |= first_send;
            }
            if applied && matches!(action, RequestAction::Answer { .. }) {
                for (key, value) in &entry.content.fields {
                    if !value.is_empty() {
                        answers.insert(key.clone(), value.clone());
                    }
                }
            }
            let fate = match &entry.outcome {
                StepOutcome::Applied => StepFate::Applied,
                StepOutcome::Pending => StepFate::Pending,
                StepOutcome::Overtaken {
                    by_act,
                    by_actor,
                    reason,
                    ..
                } => StepFate::Overtaken {
                    by: match by_act {
                        Some(CaseAction::Request(a)) => Some(a.key()),
                        _ => None,
                    },
                    by_party: by_actor
                        .as_ref()
                        .map(|a| self.party_name(Party::of(a), reader)),
                    reason: reason.clone(),
                },
            };
            let user_name = (entry.actor.country == self.info.country)
                .then(|| self.admin.user(entry.actor.user).ok())
                .flatten()
                .map(|a| a.user.name);
            history.push(HistoryItem {
                step: entry.step,
                at: entry.at,
                action: action.key(),
                date: action.date(),
                party: self.party_name(Party::of(&entry.actor), reader),
                user: user_name,
                content: entry.content.clone(),
                fate,
                node: entry.node.to_string(),
                deliveries: entry
                    .messages
                    .iter()
                    .filter_map(|id| delivery::message(self.cases.store(), *id).ok().flatten())
                    .map(|m| {
                        let state = match &m.status {
                            MessageStatus::Pending => DeliveryView::Queued,
                            MessageStatus::Accepted => DeliveryView::Delivered,
                            MessageStatus::Rejected { reason, .. } => DeliveryView::Rejected {
                                reason: reason.clone(),
                            },
                        };
                        (m.peer.to_string(), state)
                    })
                    .collect(),
            });
        }
        let today = now().date();
        let allowed = allowed(&request, &actor, today);
        let forward_to = if allowed.contains(&"forward") {
            let parties = CaseState::Request(request.clone()).parties();
            let mut found: Vec<PartyName> = self
                .directory
                .authorities_of(request.responder().country)
                .into_iter()
                .filter(|a| {
                    a.competences
                        .iter()
                        .any(|c| c.area.as_str() == request.area())
                })
                .map(|a| Party {
                    authority: a.id,
                    country: a.country,
                })
                .filter(|p| !parties.contains(p))
                .map(|p| self.party_name(p, reader))
                .collect();
            found.sort_by(|a, b| a.name.cmp(&b.name));
            found
        } else {
            vec![]
        };
        let handlers = if allowed.contains(&"allocate") {
            self.handlers_for(&request)?
                .into_iter()
                .filter(|(id, _)| Some(*id) != request.handler())
                .collect()
        } else {
            vec![]
        };
        let handler = request
            .handler()
            .filter(|_| request.responder().country == self.info.country)
            .and_then(|id| self.admin.user(id).ok())
            .map(|a| a.user.name);
        Ok(CaseView {
            forward_to,
            handler,
            handlers,
            requester: self.party_name(request.requester(), reader),
            responder: self.party_name(request.responder(), reader),
            reader_is_requester: request.requester() == Party::of(&actor),
            state: CaseState::Request(request),
            request: sent,
            answers,
            history,
            allowed,
            today,
        })
    }

    pub(super) async fn open_request(
        &self,
        user: imi_protocol::UserId,
        new: NewRequest,
    ) -> Result<CaseId, NodeError> {
        self.official(user).await?;
        let actor = self.actor(user, &new.area)?;
        if self
            .directory
            .authority(new.to.country, new.to.authority)
            .is_none()
        {
            return Err(NodeError::NotFound(format!(
                "authority {} of {}",
                new.to.authority, new.to.country
            )));
        }
        let draft = Request::draft(CaseId::new(), &actor, &new.area, new.to, now())
            .map_err(|e| NodeError::Invalid(e.to_string()))?;
        let id = draft.id();
        let state = CaseState::Request(draft);
        match new.send {
            Some(reply_by) => {
                self.cases
                    .open_case(
                        state,
                        actor,
                        CaseAction::Request(RequestAction::Send { reply_by }),
                        new.content,
                    )
                    .await
                    .map_err(case_error)?;
                info!(user = %user, case = %id, to = %new.to, "request sent from the web UI");
            }
            None => {
                // The draft keeps what was written, as the content of its
                // first step; sending it later carries that content.
                let keep = RequestAction::ModifyDraft {
                    area: new.area.clone(),
                    responder: new.to,
                };
                self.cases
                    .open_case(state, actor, CaseAction::Request(keep), new.content)
                    .await
                    .map_err(case_error)?;
                info!(user = %user, case = %id, "draft request saved from the web UI");
            }
        }
        Ok(id)
    }

    /// The active request handlers of the responding authority in the
    /// request's area, by name: who an allocator may give it to.
    fn handlers_for(
        &self,
        request: &Request,
    ) -> Result<Vec<(imi_protocol::UserId, String)>, NodeError> {
        let mut found: Vec<(imi_protocol::UserId, String)> = self
            .admin
            .users_of(request.responder().authority)
            .map_err(admin_error)?
            .into_iter()
            .filter(|a| {
                a.user.active
                    && a.user
                        .roles_for(request.area())
                        .contains(&imi_protocol::Role::RequestHandler)
            })
            .map(|a| (a.user.id, a.user.name))
            .collect();
        found.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(found)
    }

    pub(super) async fn attachment_of(
        &self,
        user: imi_protocol::UserId,
        case: CaseId,
        step: imi_protocol::StepId,
        index: usize,
    ) -> Result<imi_protocol::Attachment, NodeError> {
        self.official(user).await?;
        let (record, _, _) = self.readable(user, case)?;
        record
            .history()
            .into_iter()
            .find(|e| e.step == step)
            .and_then(|e| e.content.attachments.into_iter().nth(index))
            .ok_or_else(|| NodeError::NotFound(format!("file {index} of step {step}")))
    }

    pub(super) async fn take_step(
        &self,
        user: imi_protocol::UserId,
        case: CaseId,
        action: RequestAction,
        content: Content,
    ) -> Result<(), NodeError> {
        self.official(user).await?;
        let (record, request, actor) = self.readable(user, case)?;
        let key = action.key();
        // The state machine cannot know the responder's officials; this
        // node can: a request goes only to one of its request handlers.
        if let RequestAction::Allocate { handler } = &action
            && !self
                .handlers_for(&request)?
                .iter()
                .any(|(id, _)| id == handler)
        {
            info!(user = %user, %case, %handler, "allocation to an official who is not a request handler here refused");
            return Err(NodeError::Invalid(
                "the request can only be allocated to an active request handler of your authority in its area".into(),
            ));
        }
        // Sending a draft carries what the draft holds.
        let content = match (&action, content == Content::default()) {
            (RequestAction::Send { .. }, true) => record
                .history()
                .into_iter()
                .rev()
                .find(|e| {
                    matches!(
                        e.act,
                        CaseAction::Request(RequestAction::ModifyDraft { .. })
                    )
                })
                .map(|e| e.content)
                .unwrap_or_default(),
            _ => content,
        };
        self.cases
            .act(case, actor, CaseAction::Request(action), content)
            .await
            .map_err(case_error)?;
        info!(user = %user, %case, action = key, "request step taken in the web UI");
        Ok(())
    }
}

fn case_error(err: CaseError) -> NodeError {
    match err {
        CaseError::NotFound(case) => NodeError::NotFound(format!("case {case}")),
        CaseError::Refused(refused) => NodeError::Invalid(refused.to_string()),
        CaseError::NoRoute(_) | CaseError::Conflict(_) => NodeError::Invalid(err.to_string()),
        CaseError::Attachment(err) => NodeError::Invalid(err.to_string()),
        CaseError::Store(reason) => NodeError::Unavailable(reason),
    }
}

/// The steps `actor` may take now, tried against the state machine with
/// representative arguments.
fn allowed(request: &Request, actor: &Actor, today: Date) -> Vec<RequestActionKey> {
    let later = today.checked_add_days(14).unwrap_or(today);
    let other = Party {
        authority: imi_protocol::AuthorityId::from_bytes([0xff; 16]),
        country: request.responder().country,
    };
    let proposal = match request.reply_by() {
        Some(current) if current == later => today.checked_add_days(15).unwrap_or(later),
        _ => later,
    };
    let candidates = [
        RequestAction::Send { reply_by: later },
        RequestAction::DiscardDraft,
        RequestAction::Withdraw,
        RequestAction::Accept,
        RequestAction::Decline,
        RequestAction::Forward { to: other },
        RequestAction::ProposeDeadline { reply_by: proposal },
        RequestAction::AcceptDeadline,
        RequestAction::RefuseDeadline,
        RequestAction::RequestInformation,
        RequestAction::ProvideInformation,
        RequestAction::Answer { complete: false },
        RequestAction::Answer { complete: true },
        RequestAction::Close {
            rating: Rating {
                timeliness: 3,
                effort: 3,
            },
        },
        RequestAction::Reopen { reply_by: later },
        RequestAction::Allocate {
            handler: imi_protocol::UserId::from_bytes([0xff; 16]),
        },
    ];
    let at: Timestamp = today.start();
    candidates
        .iter()
        .filter(|action| request.apply(actor, at, action).is_ok())
        .map(RequestAction::key)
        .collect()
}
