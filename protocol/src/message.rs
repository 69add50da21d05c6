//! What a step of a case says: the action of the state machine and its
//! content. Steps travel inside the case messages of `case::log`.
//!
//! Content travels as catalogue keys where it can (question set, question
//! and answer keys), so each side reads it in its own language; free text
//! keeps its original language.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{AlertAction, Language, NotificationAction, RequestAction};

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

/// The action of a step, by kind of case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CaseAction {
    /// A request step.
    Request(RequestAction),
    /// An alert step.
    Alert(AlertAction),
    /// A notification step.
    Notification(NotificationAction),
}

impl CaseAction {
    /// The action's name (`"accept the request"`).
    pub fn name(&self) -> &'static str {
        match self {
            CaseAction::Request(action) => action.name(),
            CaseAction::Alert(action) => action.name(),
            CaseAction::Notification(action) => action.name(),
        }
    }
}
