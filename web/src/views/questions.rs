//! The questions of a catalogue question set as form fields, and answers
//! as the reader reads them: labels from the catalogue in the reader's
//! language, answers checked against their question and kept in their
//! canonical form (`yes`/`no`, a choice key, `YYYY-MM-DD`, a number).

use imi_protocol::{AnswerType, Date, Language, Question, QuestionSet};

use crate::i18n::Tr;

/// The groups of a question set whose questions the requester answers
/// (who the professional is, which profession); the others are asked.
pub(crate) const PROVIDED_GROUPS: &[&str] = &["profession", "professional"];

/// One question as a form field.
pub(crate) struct Field {
    /// The form field's name and id (`q-full-name`).
    pub(crate) name: String,
    /// The question's key.
    pub(crate) key: String,
    /// The question in the reader's language.
    pub(crate) label: String,
    /// `text`, `yes-no`, `date`, `number`, `choice` or `attachment`.
    pub(crate) kind: &'static str,
    /// A choice's options: key, label, chosen.
    pub(crate) options: Vec<(String, String, bool)>,
    /// The value entered.
    pub(crate) value: String,
    /// Whether it must be answered.
    pub(crate) required: bool,
    /// Whether the answer is personal data.
    pub(crate) personal: bool,
    /// What to correct.
    pub(crate) error: Option<String>,
    /// Ticked to be asked (asked questions only).
    pub(crate) asked: bool,
}

fn kind(answer: &AnswerType) -> &'static str {
    match answer {
        AnswerType::Text => "text",
        AnswerType::YesNo => "yes-no",
        AnswerType::Date => "date",
        AnswerType::Number => "number",
        AnswerType::Choice { .. } => "choice",
        AnswerType::Attachment => "attachment",
    }
}

/// The question as a field named `prefix` + its key, holding `value`.
pub(crate) fn field(question: &Question, prefix: &str, value: &str, language: Language) -> Field {
    let options = match &question.answer {
        AnswerType::Choice { options } => options
            .iter()
            .map(|o| {
                (
                    o.key.clone(),
                    o.label.get(language).to_owned(),
                    o.key == value,
                )
            })
            .collect(),
        _ => vec![],
    };
    Field {
        name: format!("{prefix}{}", question.key.as_str()),
        key: question.key.as_str().to_owned(),
        label: question.label.get(language).to_owned(),
        kind: kind(&question.answer),
        options,
        value: value.to_owned(),
        required: question.required,
        personal: question.personal_data,
        error: None,
        asked: false,
    }
}

/// Checks `value` against its question: the message to show when it does
/// not fit. An empty value is checked by the caller.
pub(crate) fn check(question: &Question, value: &str, t: &Tr) -> Option<String> {
    let fits = match &question.answer {
        AnswerType::Text | AnswerType::Attachment => true,
        AnswerType::YesNo => matches!(value, "yes" | "no"),
        AnswerType::Date => value.parse::<Date>().is_ok(),
        AnswerType::Number => value.parse::<i64>().is_ok(),
        AnswerType::Choice { options } => options.iter().any(|o| o.key == value),
    };
    if fits {
        return None;
    }
    Some(t.get(match &question.answer {
        AnswerType::YesNo | AnswerType::Choice { .. } => "request-bad-choice",
        AnswerType::Date => "request-bad-date",
        _ => "request-bad-number",
    }))
}

/// An answer in the reader's language: yes/no and choices translated,
/// the rest as written.
pub(crate) fn shown(question: Option<&Question>, value: &str, t: &Tr) -> String {
    match question.map(|q| &q.answer) {
        Some(AnswerType::YesNo) => match value {
            "yes" => t.get("yes"),
            "no" => t.get("no"),
            other => other.to_owned(),
        },
        Some(AnswerType::Choice { options }) => {
            options.iter().find(|o| o.key == value).map_or_else(
                || value.to_owned(),
                |o| o.label.get(t.language()).to_owned(),
            )
        }
        _ => value.to_owned(),
    }
}

/// The question of `set` with `key`.
pub(crate) fn question<'a>(set: Option<&'a QuestionSet>, key: &str) -> Option<&'a Question> {
    set?.questions().find(|q| q.key.as_str() == key)
}

/// Where the question with `key` comes in `set` (unknown ones last).
pub(crate) fn position(set: Option<&QuestionSet>, key: &str) -> usize {
    set.and_then(|s| s.questions().position(|q| q.key.as_str() == key))
        .unwrap_or(usize::MAX)
}
