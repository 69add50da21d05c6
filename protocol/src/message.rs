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
    /// Files that travel with the step, each with its SHA-256 digest.
    pub attachments: Vec<Attachment>,
}

/// Files a step may carry at most.
pub const MAX_ATTACHMENTS_PER_STEP: usize = 5;
/// The bytes of all the files of one step, at most (a node may allow less).
pub const MAX_STEP_ATTACHMENT_BYTES: usize = 4 * 1024 * 1024;
/// The bytes of all the files of one case, at most: a node that joins a
/// case late (a forward) receives them all in one message.
pub const MAX_CASE_ATTACHMENT_BYTES: usize = 6 * 1024 * 1024;
const MAX_NAME_CHARS: usize = 200;
const MAX_MEDIA_TYPE_CHARS: usize = 100;

/// A file attached to a step: a scanned diploma, a register extract.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The file's name as the official gave it (no folders).
    pub name: String,
    /// Its media type (`application/pdf`).
    pub media_type: String,
    /// The SHA-256 of `bytes`, computed where the file was attached; every
    /// node that receives the step checks it.
    pub digest: [u8; 32],
    /// The file.
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attachment")
            .field("name", &self.name)
            .field("media_type", &self.media_type)
            .field("digest", &self.digest_hex())
            .field("size", &self.bytes.len())
            .finish()
    }
}

/// Why an attachment cannot travel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttachmentError {
    /// The bytes are not those the digest was made of.
    #[error("the file {name:?} does not match its digest: it was changed or damaged on the way")]
    DigestMismatch {
        /// The file's name.
        name: String,
    },
    /// No name, a name with folders or control characters, or too long.
    #[error(
        "the file name {name:?} is not usable: give a name without folders, up to {MAX_NAME_CHARS} characters"
    )]
    BadName {
        /// The name given.
        name: String,
    },
    /// A media type that is not `type/subtype`.
    #[error("the file {name:?} has no usable media type ({media_type:?})")]
    BadMediaType {
        /// The file's name.
        name: String,
        /// The type given.
        media_type: String,
    },
    /// An empty file.
    #[error("the file {name:?} is empty")]
    Empty {
        /// The file's name.
        name: String,
    },
    /// More files than a step may carry.
    #[error("a step carries at most {MAX_ATTACHMENTS_PER_STEP} files, not {count}")]
    TooMany {
        /// The files given.
        count: usize,
    },
    /// More bytes than allowed.
    #[error("the files come to {size} bytes, more than the {limit} bytes allowed")]
    TooLarge {
        /// Their bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

impl Attachment {
    /// A file with the digest of its bytes.
    pub fn new(name: impl Into<String>, media_type: impl Into<String>, bytes: Vec<u8>) -> Self {
        Attachment {
            name: name.into(),
            media_type: media_type.into(),
            digest: Self::digest_of(&bytes),
            bytes,
        }
    }

    /// The SHA-256 of `bytes`.
    pub fn digest_of(bytes: &[u8]) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(bytes).into()
    }

    /// The digest as lower-case hex, as the history shows it.
    pub fn digest_hex(&self) -> String {
        self.digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Checks the name, the media type and the bytes against the digest.
    pub fn check(&self) -> Result<(), AttachmentError> {
        let name = &self.name;
        if name.trim().is_empty()
            || name.chars().count() > MAX_NAME_CHARS
            || name
                .chars()
                .any(|c| c.is_control() || c == '/' || c == '\\')
            || name == "."
            || name == ".."
        {
            return Err(AttachmentError::BadName { name: name.clone() });
        }
        let usable_type = self.media_type.chars().count() <= MAX_MEDIA_TYPE_CHARS
            && self.media_type.split_once('/').is_some_and(|(t, s)| {
                let token = |p: &str| {
                    !p.is_empty()
                        && p.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
                };
                token(t) && token(s)
            });
        if !usable_type {
            return Err(AttachmentError::BadMediaType {
                name: name.clone(),
                media_type: self.media_type.clone(),
            });
        }
        if self.bytes.is_empty() {
            return Err(AttachmentError::Empty { name: name.clone() });
        }
        if Self::digest_of(&self.bytes) != self.digest {
            return Err(AttachmentError::DigestMismatch { name: name.clone() });
        }
        Ok(())
    }
}

impl Content {
    /// The bytes of the content's files.
    pub fn attachment_bytes(&self) -> usize {
        self.attachments.iter().map(|a| a.bytes.len()).sum()
    }

    /// Checks every file and the step's limits; `limit` is the node's own
    /// limit for a step's files, capped at [`MAX_STEP_ATTACHMENT_BYTES`].
    pub fn check_attachments(&self, limit: usize) -> Result<(), AttachmentError> {
        if self.attachments.len() > MAX_ATTACHMENTS_PER_STEP {
            return Err(AttachmentError::TooMany {
                count: self.attachments.len(),
            });
        }
        let size = self.attachment_bytes();
        let limit = limit.min(MAX_STEP_ATTACHMENT_BYTES);
        if size > limit {
            return Err(AttachmentError::TooLarge { size, limit });
        }
        self.attachments.iter().try_for_each(Attachment::check)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn diploma() -> Attachment {
        Attachment::new(
            "diploma.pdf",
            "application/pdf",
            b"%PDF-1.7 diploma".to_vec(),
        )
    }

    #[test]
    fn a_file_changed_on_the_way_no_longer_matches_its_digest() {
        let good = diploma();
        assert_eq!(good.check(), Ok(()));
        let mut damaged = good.clone();
        damaged.bytes[0] ^= 1;
        assert_eq!(
            damaged.check(),
            Err(AttachmentError::DigestMismatch {
                name: "diploma.pdf".into()
            })
        );
        // The digest travels with the file and survives encoding.
        let content = Content {
            attachments: vec![good],
            ..Content::default()
        };
        let bytes = postcard::to_stdvec(&content).unwrap();
        assert_eq!(postcard::from_bytes::<Content>(&bytes).unwrap(), content);
    }

    #[test]
    fn names_with_folders_types_without_subtype_and_empty_files_are_refused() {
        for name in [
            "",
            "  ",
            "../diploma.pdf",
            "c:\\diploma.pdf",
            "a\nb.pdf",
            "..",
        ] {
            let file = Attachment::new(name, "application/pdf", b"x".to_vec());
            assert!(
                matches!(file.check(), Err(AttachmentError::BadName { .. })),
                "{name:?}"
            );
        }
        for media_type in ["", "pdf", "application/", "text/html; x"] {
            let file = Attachment::new("a.pdf", media_type, b"x".to_vec());
            assert!(
                matches!(file.check(), Err(AttachmentError::BadMediaType { .. })),
                "{media_type:?}"
            );
        }
        let empty = Attachment::new("a.pdf", "application/pdf", Vec::new());
        assert!(matches!(empty.check(), Err(AttachmentError::Empty { .. })));
    }

    #[test]
    fn a_step_carries_a_few_files_within_the_nodes_limit() {
        let files = |n: usize, size: usize| Content {
            attachments: (0..n)
                .map(|i| Attachment::new(format!("f{i}.txt"), "text/plain", vec![b'x'; size]))
                .collect(),
            ..Content::default()
        };
        assert_eq!(files(5, 100).check_attachments(1000), Ok(()));
        assert_eq!(
            files(6, 1).check_attachments(1000),
            Err(AttachmentError::TooMany { count: 6 })
        );
        assert_eq!(
            files(2, 600).check_attachments(1000),
            Err(AttachmentError::TooLarge {
                size: 1200,
                limit: 1000
            })
        );
        // A node cannot allow more than every node accepts.
        assert!(matches!(
            files(1, MAX_STEP_ATTACHMENT_BYTES + 1).check_attachments(usize::MAX),
            Err(AttachmentError::TooLarge { .. })
        ));
    }
}
