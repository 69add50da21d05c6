//! The pure core of imi.
//!
//! Owns the domain types (countries, languages, ids, authorities, users and
//! their roles), the catalogue of legislative areas, procedures, professions
//! and question sets with its translations, signed envelopes and receipts with
//! their canonical encoding, and the request, alert and notification state
//! machines as pure functions. It does no I/O and must not know tokio, redb,
//! libp2p or axum, so every rule here is testable without a network or disk.
//!
//! ```
//! use imi_protocol::{Country, Language};
//!
//! let pt: Country = "PT".parse().unwrap();
//! assert_eq!(pt.native_names()[0], (Language::Pt, "Portugal"));
//! ```

mod alert;
mod authority;
pub mod case;
mod catalogue;
mod country;
mod envelope;
mod ids;
mod language;
mod message;
mod notification;
mod request;
mod roles;
mod time;
mod transition;

pub use alert::{Alert, AlertAction, AlertStatus};
pub use authority::{
    ALL_AREAS, Authority, AuthorityStatus, Competence, Contact, InvalidAuthority, User,
};
pub use case::log::{
    Acted, CaseMessage, Clocks, Entry, LogError, Opening, Outcome, Outgoing, Pending, Replica,
    Resolve, Step,
};
pub use case::{CaseState, Retention, Task, TaskKind, TaskOwner};
pub use catalogue::{
    AnswerError, AnswerType, AnswerValue, AreaKey, Catalogue, CatalogueError, ChoiceOption,
    InvalidKey, Labels, LegislativeArea, Procedure, ProcedureKey, ProcedureKind, Profession,
    ProfessionKey, Question, QuestionGroup, QuestionKey, QuestionSet, QuestionSetKey,
};
pub use country::{Country, UnknownCountry};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
pub use envelope::{
    Author, ENVELOPE_MAGIC, EncodeError, Header, InvalidNodeAddress, InvalidNodeName,
    MAX_NODE_NAME_LEN, MessageKind, NodeAddress, NodeName, Opened, PROTOCOL_VERSION, RECEIPT_MAGIC,
    ReceiptBody, ReceiptMismatch, ReceiptOutcome, SenderKeys, SignedEnvelope, SignedReceipt,
    VerifyContext, VerifyError, open, open_receipt, peek_header, seal, seal_receipt,
    signing_key_from_seed, wire_digest,
};
pub use ids::{AuthorityId, CaseId, InvalidId, MessageId, StepId, UserId};
pub use language::{Language, UnknownLanguage};
pub use message::{
    Attachment, AttachmentError, CaseAction, Content, FreeText, MAX_ATTACHMENTS_PER_STEP,
    MAX_CASE_ATTACHMENT_BYTES, MAX_STEP_ATTACHMENT_BYTES,
};
pub use notification::{Notification, NotificationAction, NotificationStatus};
pub use request::{Rating, Request, RequestAction, RequestStatus};
pub use roles::{Actor, Role, UnknownRole};
pub use time::{Date, InvalidDate, Timestamp, Weekday};
pub use transition::{
    Audience, Destination, Effect, IncoherentState, InvalidArgument, Party, Side, Transition,
    TransitionError,
};
