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

mod catalogue;
mod country;
mod ids;
mod language;
mod roles;

pub use catalogue::{
    AnswerError, AnswerType, AnswerValue, AreaKey, Catalogue, CatalogueError, ChoiceOption,
    InvalidKey, Labels, LegislativeArea, Procedure, ProcedureKey, ProcedureKind, Profession,
    ProfessionKey, Question, QuestionGroup, QuestionKey, QuestionSet, QuestionSetKey,
};
pub use country::{Country, UnknownCountry};
pub use ids::{AuthorityId, CaseId, InvalidId, MessageId, UserId};
pub use language::{Language, UnknownLanguage};
pub use roles::{Actor, Role, UnknownRole};
