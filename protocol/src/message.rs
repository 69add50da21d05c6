//! What case envelopes carry: one step of a request, alert or notification.
//!
//! A step names the actor who took it, when, and the action of the state
//! machine; the receiving node applies the very same action to its copy of
//! the case, so both sides agree on the state. The first step a node
//! receives for a case (sending, forwarding, broadcasting) also carries the
//! case as it stood before the step, so the node can start its copy.
//!
//! Content travels as catalogue keys where it can (question set, question
//! and answer keys), so each side reads it in its own language; free text
//! keeps its original language.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    Actor, Alert, AlertAction, CaseId, Language, Notification, NotificationAction, Request,
    RequestAction, Timestamp,
};

/// Text written by a person, in the language it was written in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreeText {
    /// The language of the original.
    pub language: Language,
    /// The text as written.
    pub text: String,
}

/// What a step says besides its action.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    /// The question set the request is built from (catalogue key).
    pub question_set: Option<String>,
    /// Selected questions or given answers, by catalogue question key; the
    /// value is the answer in its canonical form (a choice key, a date as
    /// `YYYY-MM-DD`, a number, `yes`/`no`) or empty for a question asked.
    pub fields: BTreeMap<String, String>,
    /// A message in the writer's language.
    pub text: Option<FreeText>,
}

/// One step of a case, as sent between nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseStep {
    /// Who took the step; the sending node vouches for the actor's roles,
    /// and may only speak for actors of its own country.
    pub actor: Actor,
    /// When the step was taken.
    pub at: Timestamp,
    /// The state machine's action and, for a node's first step of the case,
    /// the case before it.
    pub action: CaseAction,
    /// What the step says.
    pub content: Content,
}

/// The action of a step, by kind of case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CaseAction {
    /// A request step.
    Request {
        /// The action.
        action: RequestAction,
        /// The request before the action, when the receiver may not know it.
        before: Option<Box<Request>>,
    },
    /// An alert step.
    Alert {
        /// The action.
        action: AlertAction,
        /// The alert before the action, when the receiver may not know it.
        before: Option<Box<Alert>>,
    },
    /// A notification step.
    Notification {
        /// The action.
        action: NotificationAction,
        /// The notification before the action, when the receiver may not know it.
        before: Option<Box<Notification>>,
    },
}

impl CaseAction {
    /// The case the opening state belongs to, if one is carried.
    pub fn opening_case(&self) -> Option<CaseId> {
        match self {
            CaseAction::Request { before, .. } => before.as_ref().map(|r| r.id()),
            CaseAction::Alert { before, .. } => before.as_ref().map(|a| a.id()),
            CaseAction::Notification { before, .. } => before.as_ref().map(|n| n.id()),
        }
    }

    /// The action's name (`"accept the request"`).
    pub fn name(&self) -> &'static str {
        match self {
            CaseAction::Request { action, .. } => action.name(),
            CaseAction::Alert { action, .. } => action.name(),
            CaseAction::Notification { action, .. } => action.name(),
        }
    }
}
