//! What the directory search indexes: authorities and registers.

use imi_protocol::{AreaKey, Country, Language, ProcedureKey, ProfessionKey};
use serde::{Deserialize, Serialize};

/// The longest id accepted, in bytes.
pub(crate) const MAX_ID_BYTES: usize = 256;

/// Whether an entry is a competent authority or a register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    /// A competent authority that takes part in exchanges.
    Authority,
    /// A public online register (of a profession, of companies…) that
    /// officials consult instead of asking.
    Register,
}

impl EntryKind {
    /// The kind as stored in the index (`"authority"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            EntryKind::Authority => "authority",
            EntryKind::Register => "register",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<EntryKind> {
        match text {
            "authority" => Some(EntryKind::Authority),
            "register" => Some(EntryKind::Register),
            _ => None,
        }
    }
}

/// One authority or register of the directory, as the search indexes it.
///
/// The search does not know where entries come from; the node builds them
/// from its replicated directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryEntry {
    /// The entry's id in the directory, unique across the federation.
    pub id: String,
    /// Authority or register.
    pub kind: EntryKind,
    /// The country (or the Commission) the entry belongs to.
    pub country: Country,
    /// The entry's names, in as many languages as it has (Belgian authorities
    /// in French, Dutch and German). The first is the default display name.
    pub names: Vec<(Language, String)>,
    /// Legislative areas the entry is competent for.
    #[serde(default)]
    pub areas: Vec<AreaKey>,
    /// Procedures the entry handles.
    #[serde(default)]
    pub procedures: Vec<ProcedureKey>,
    /// Regulated professions the entry is competent for.
    #[serde(default)]
    pub professions: Vec<ProfessionKey>,
    /// Competences outside the catalogue, in free text and the entry's own
    /// language ("vaccination records", "taxi licences").
    #[serde(default)]
    pub other_competences: Vec<String>,
    /// The city of the entry's seat.
    #[serde(default)]
    pub city: Option<String>,
    /// The region the entry covers, when it is not national.
    #[serde(default)]
    pub region: Option<String>,
    /// Languages the entry accepts requests in.
    #[serde(default)]
    pub languages: Vec<Language>,
    /// The entry's web site or, for a register, its search page.
    #[serde(default)]
    pub url: Option<String>,
}

impl DirectoryEntry {
    /// Checks what the index relies on: a usable id and at least one name.
    pub(crate) fn check(&self) -> Result<(), &'static str> {
        if self.id.trim().is_empty() {
            return Err("its id is empty");
        }
        if self.id.len() > MAX_ID_BYTES {
            return Err("its id is longer than 256 bytes");
        }
        if self.names.is_empty() {
            return Err("it has no name");
        }
        if self.names.iter().any(|(_, name)| name.trim().is_empty()) {
            return Err("one of its names is empty");
        }
        Ok(())
    }
}
