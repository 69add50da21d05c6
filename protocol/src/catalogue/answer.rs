//! Answers to catalogue questions and their checks.

use serde::{Deserialize, Serialize};

use super::{AnswerType, Question, QuestionKey};

/// An answer given to one question of a question set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AnswerValue {
    /// Free text.
    Text(String),
    /// Yes (`true`) or no (`false`).
    YesNo(bool),
    /// A calendar date.
    Date {
        /// The year (`2024`).
        year: i32,
        /// The month, 1 to 12.
        month: u8,
        /// The day of the month, from 1.
        day: u8,
    },
    /// A whole number.
    Number(i64),
    /// The key of one of the question's options.
    Choice(String),
    /// A file, referred to by its digest; the bytes travel separately.
    Attachment {
        /// The file name as the user gave it.
        name: String,
        /// The media type (`application/pdf`).
        media_type: String,
        /// The SHA-256 digest of the bytes.
        sha256: [u8; 32],
        /// The size in bytes.
        size: u64,
    },
}

impl AnswerValue {
    /// What kind of answer this is, in words (`"a date"`).
    pub fn kind_name(&self) -> &'static str {
        match self {
            AnswerValue::Text(_) => "a text",
            AnswerValue::YesNo(_) => "a yes or no",
            AnswerValue::Date { .. } => "a date",
            AnswerValue::Number(_) => "a number",
            AnswerValue::Choice(_) => "a choice",
            AnswerValue::Attachment { .. } => "an attachment",
        }
    }
}

impl AnswerType {
    /// What kind of answer the type expects, in words (`"a date"`).
    pub fn kind_name(&self) -> &'static str {
        match self {
            AnswerType::Text => "a text",
            AnswerType::YesNo => "a yes or no",
            AnswerType::Date => "a date",
            AnswerType::Number => "a number",
            AnswerType::Choice { .. } => "a choice",
            AnswerType::Attachment => "an attachment",
        }
    }
}

/// Why an answer does not fit its question.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// The answer is of another kind than the question asks for.
    #[error("the answer to question {question} must be {expected}, not {found}")]
    TypeMismatch {
        /// The question answered.
        question: QuestionKey,
        /// The kind the question asks for (`"a date"`).
        expected: &'static str,
        /// The kind given (`"a text"`).
        found: &'static str,
    },
    /// A choice names an option the question does not offer.
    #[error(
        "the answer to question {question} chooses {option:?}, which is not one of its options ({known}); pick one of those"
    )]
    UnknownOption {
        /// The question answered.
        question: QuestionKey,
        /// The option given.
        option: String,
        /// The options offered, comma-separated.
        known: String,
    },
    /// A date that is not on the calendar.
    #[error(
        "the answer to question {question} is not a valid date: {year:04}-{month:02}-{day:02} does not exist"
    )]
    InvalidDate {
        /// The question answered.
        question: QuestionKey,
        /// The year given.
        year: i32,
        /// The month given.
        month: u8,
        /// The day given.
        day: u8,
    },
    /// A required question answered with blank text.
    #[error("question {question} is required, so its answer must not be empty")]
    EmptyRequired {
        /// The question answered.
        question: QuestionKey,
    },
    /// An attachment without a usable name or media type.
    #[error("the attachment answering question {question} is not usable: {reason}")]
    InvalidAttachment {
        /// The question answered.
        question: QuestionKey,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// The earliest and latest years a date answer may have.
const YEARS: std::ops::RangeInclusive<i32> = 1..=9999;

/// The number of days in `month` of `year` in the proleptic Gregorian
/// calendar, or 0 for a month that does not exist.
fn days_in_month(year: i32, month: u8) -> u8 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => 0,
    }
}

impl Question {
    /// Checks that `value` answers this question: it has the question's type,
    /// names one of its options, is a real date, is not blank when required,
    /// and an attachment has a name and a media type.
    pub fn check_answer(&self, value: &AnswerValue) -> Result<(), AnswerError> {
        let question = || self.key.clone();
        match (&self.answer, value) {
            (AnswerType::Text, AnswerValue::Text(text)) => {
                if self.required && text.trim().is_empty() {
                    return Err(AnswerError::EmptyRequired {
                        question: question(),
                    });
                }
            }
            (AnswerType::YesNo, AnswerValue::YesNo(_))
            | (AnswerType::Number, AnswerValue::Number(_)) => {}
            (AnswerType::Date, &AnswerValue::Date { year, month, day }) => {
                if !YEARS.contains(&year) || day == 0 || day > days_in_month(year, month) {
                    return Err(AnswerError::InvalidDate {
                        question: question(),
                        year,
                        month,
                        day,
                    });
                }
            }
            (AnswerType::Choice { options }, AnswerValue::Choice(chosen)) => {
                if !options.iter().any(|option| option.key == *chosen) {
                    return Err(AnswerError::UnknownOption {
                        question: question(),
                        option: chosen.clone(),
                        known: options
                            .iter()
                            .map(|option| option.key.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                }
            }
            (
                AnswerType::Attachment,
                AnswerValue::Attachment {
                    name, media_type, ..
                },
            ) => {
                let reason = if name.trim().is_empty() {
                    Some("it has no file name")
                } else if !is_media_type(media_type) {
                    Some("its media type is not of the form type/subtype")
                } else {
                    None
                };
                if let Some(reason) = reason {
                    return Err(AnswerError::InvalidAttachment {
                        question: question(),
                        reason,
                    });
                }
            }
            (expected, found) => {
                return Err(AnswerError::TypeMismatch {
                    question: question(),
                    expected: expected.kind_name(),
                    found: found.kind_name(),
                });
            }
        }
        Ok(())
    }
}

/// Whether `text` looks like a media type: `type/subtype`, optionally with
/// parameters, without spaces in the type.
fn is_media_type(text: &str) -> bool {
    let essence = text.split(';').next().unwrap_or_default();
    let mut parts = essence.split('/');
    let token = |part: Option<&str>| {
        part.is_some_and(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
        })
    };
    token(parts.next()) && token(parts.next()) && parts.next().is_none()
}
