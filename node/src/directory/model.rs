//! What the directory holds, and how it is laid out in the Automerge
//! documents (the layout is described in `docs/DIRECTORY.md`).
//!
//! Every document starts from the same *genesis* change, made with a fixed
//! actor and time so that each node computes it byte for byte: the root
//! containers (`authorities`, `registers`, …) exist from the start and two
//! nodes never create them concurrently (which would make one of the two
//! maps, and everything written into it, lose).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, Automerge, AutomergeError, ObjId, ObjType, ReadDoc, ScalarValue, Value};
use imi_protocol::{
    AreaKey, Authority, AuthorityId, Competence, Contact, Country, Language, NodeAddress,
    ProfessionKey,
};
use serde::{Deserialize, Serialize};

/// Longest text accepted in any field of a directory entry.
pub(crate) const MAX_TEXT: usize = 2_000;
/// Most items accepted in any list or map of a directory entry.
pub(crate) const MAX_ITEMS: usize = 200;
/// Longest register id.
pub(crate) const MAX_REGISTER_ID: usize = 100;
/// Longest certificate or revocation list (PEM) in the Commission's document.
pub(crate) const MAX_PEM: usize = 64 * 1024;

pub(crate) const AUTHORITIES: &str = "authorities";
pub(crate) const REGISTERS: &str = "registers";
pub(crate) const HELPDESK: &str = "helpdesk";
pub(crate) const ROSTER: &str = "roster";
pub(crate) const REVOCATIONS: &str = "revocations";
pub(crate) const CATALOGUE_VERSION: &str = "catalogue_version";

/// An authority as the directory publishes it: only its public fields, and
/// the node that serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedAuthority {
    /// Its id, the same on every node.
    pub id: AuthorityId,
    /// Its country.
    pub country: Country,
    /// Its names, per language.
    pub names: BTreeMap<Language, String>,
    /// What it is competent for, one entry per legislative area, sorted by area.
    pub competences: Vec<Competence>,
    /// How it is reached.
    pub contact: Contact,
    /// The languages its officials read and write.
    pub languages: BTreeSet<Language>,
    /// The node that receives its requests.
    pub node: NodeAddress,
}

impl PublishedAuthority {
    /// The public part of `authority`, served by `node`.
    pub fn from_authority(authority: &Authority, node: NodeAddress) -> PublishedAuthority {
        let mut competences = authority.competences.clone();
        competences.sort_by(|a, b| a.area.cmp(&b.area));
        PublishedAuthority {
            id: authority.id,
            country: authority.country,
            names: authority.names.clone(),
            competences,
            contact: authority.contact.clone(),
            languages: authority.languages.clone(),
            node,
        }
    }

    /// Its name in `language`, or else in its first language.
    pub fn name_in(&self, language: Language) -> &str {
        self.names
            .get(&language)
            .or_else(|| self.names.values().next())
            .map(String::as_str)
            .unwrap_or_default()
    }
}

/// One public online register (the registers directory): officials look a
/// professional up there instead of asking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Register {
    /// Its id within its country (`pt-ordem-dos-medicos`).
    pub id: String,
    /// The country that publishes it.
    pub country: Country,
    /// Its names, per language.
    pub names: BTreeMap<Language, String>,
    /// Where it is consulted.
    pub url: String,
    /// The legislative areas it serves.
    pub areas: BTreeSet<AreaKey>,
    /// The professions it covers.
    pub professions: BTreeSet<ProfessionKey>,
    /// What can be looked up in it ("registration", "disciplinary measures", …).
    pub lookups: Vec<String>,
    /// The languages it can be consulted in.
    pub languages: BTreeSet<Language>,
}

/// A country's national helpdesk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Helpdesk {
    /// Its contacts, in the order the country lists them.
    pub contacts: Vec<HelpdeskContact>,
}

/// One contact of a national helpdesk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelpdeskContact {
    /// Who (a service or a coordinator's office).
    pub name: String,
    /// Email address.
    pub email: Option<String>,
    /// Telephone.
    pub phone: Option<String>,
    /// Opening hours, in words.
    pub hours: Option<String>,
    /// The languages it answers in.
    pub languages: BTreeSet<Language>,
}

/// A node certificate published by the Commission (the roster).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterEntry {
    /// The node's address.
    pub address: NodeAddress,
    /// Its libp2p PeerId (base58).
    pub peer_id: String,
    /// Its certificate chain, PEM, node certificate first.
    pub certificate_pem: String,
}

/// A revocation list published by the Commission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedRevocationList {
    /// Who issued it: a country for its national CA, `EU` for the root.
    pub issuer: Country,
    /// Its number (a newer list has a higher one).
    pub number: u64,
    /// The list, PEM.
    pub list_pem: String,
    /// The issuing national CA's certificate, PEM (none for the root's list).
    pub issuer_pem: Option<String>,
}

/// What the Commission publishes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommissionDirectory {
    /// The version of the shared catalogue in force.
    pub catalogue_version: Option<String>,
    /// The node certificates, by node address.
    pub roster: BTreeMap<NodeAddress, RosterEntry>,
    /// The revocation lists, by issuer.
    pub revocation_lists: BTreeMap<Country, PublishedRevocationList>,
}

/// A change to the directory, as the change feed announces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryChange {
    /// An authority was published or its entry changed.
    AuthorityUpserted(PublishedAuthority),
    /// An authority was withdrawn from the directory.
    AuthorityRemoved {
        /// Its country.
        country: Country,
        /// Its id.
        id: AuthorityId,
    },
    /// A register was published or its entry changed.
    RegisterUpserted(Register),
    /// A register was withdrawn.
    RegisterRemoved {
        /// Its country.
        country: Country,
        /// Its id.
        id: String,
    },
    /// A country's helpdesk changed.
    HelpdeskChanged {
        /// The country.
        country: Country,
        /// The new helpdesk.
        helpdesk: Helpdesk,
    },
    /// The Commission's document changed (catalogue version, roster or
    /// revocation lists).
    CommissionChanged,
    /// So many entries of a country changed at once (a first sync) that
    /// they are not announced one by one: read the country again.
    CountryReloaded(Country),
}

/// An entry that cannot be published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEntry {
    /// A required field is empty.
    #[error("the {0} must not be empty")]
    Empty(&'static str),
    /// A field is too long.
    #[error("the {what} is longer than {max} characters")]
    TooLong {
        /// Which field.
        what: &'static str,
        /// The limit.
        max: usize,
    },
    /// A list is too long.
    #[error("the {what} has more than {max} items")]
    TooMany {
        /// Which list.
        what: &'static str,
        /// The limit.
        max: usize,
    },
    /// Two competences for one area.
    #[error("the legislative area {0} is listed twice")]
    DuplicateArea(AreaKey),
    /// The serving node is of another country.
    #[error("authority {id} of {country} cannot be served by node {node} of another country")]
    ForeignNode {
        /// The authority.
        id: AuthorityId,
        /// Its country.
        country: Country,
        /// The node given.
        node: NodeAddress,
    },
}

fn check_text(what: &'static str, text: &str) -> Result<(), InvalidEntry> {
    if text.chars().count() > MAX_TEXT {
        return Err(InvalidEntry::TooLong {
            what,
            max: MAX_TEXT,
        });
    }
    Ok(())
}

fn check_count(what: &'static str, count: usize) -> Result<(), InvalidEntry> {
    if count > MAX_ITEMS {
        return Err(InvalidEntry::TooMany {
            what,
            max: MAX_ITEMS,
        });
    }
    Ok(())
}

impl PublishedAuthority {
    /// Checks that the entry can be published.
    pub fn validate(&self) -> Result<(), InvalidEntry> {
        if self.names.is_empty() || self.names.values().any(|n| n.trim().is_empty()) {
            return Err(InvalidEntry::Empty("authority name"));
        }
        if self.node.country != self.country {
            return Err(InvalidEntry::ForeignNode {
                id: self.id,
                country: self.country,
                node: self.node.clone(),
            });
        }
        check_count("names", self.names.len())?;
        check_count("competences", self.competences.len())?;
        let mut areas = BTreeSet::new();
        for name in self.names.values() {
            check_text("authority name", name)?;
        }
        for competence in &self.competences {
            if !areas.insert(&competence.area) {
                return Err(InvalidEntry::DuplicateArea(competence.area.clone()));
            }
            check_count("procedures", competence.procedures.len())?;
            check_count("professions", competence.professions.len())?;
            check_count("other competences", competence.other.len())?;
            for other in &competence.other {
                check_text("competence", other)?;
            }
        }
        for field in contact_fields(&self.contact).into_iter().flatten() {
            check_text("contact", field.1)?;
        }
        Ok(())
    }
}

fn contact_fields(contact: &Contact) -> [Option<(&'static str, &str)>; 7] {
    [
        contact.address.as_deref().map(|v| ("address", v)),
        contact.postal_code.as_deref().map(|v| ("postal_code", v)),
        contact.city.as_deref().map(|v| ("city", v)),
        contact.region.as_deref().map(|v| ("region", v)),
        contact.email.as_deref().map(|v| ("email", v)),
        contact.phone.as_deref().map(|v| ("phone", v)),
        contact.website.as_deref().map(|v| ("website", v)),
    ]
}

impl Register {
    /// Checks that the entry can be published.
    pub fn validate(&self) -> Result<(), InvalidEntry> {
        check_register_id(&self.id)?;
        if self.url.trim().is_empty() {
            return Err(InvalidEntry::Empty("register URL"));
        }
        if self.names.is_empty() || self.names.values().any(|n| n.trim().is_empty()) {
            return Err(InvalidEntry::Empty("register name"));
        }
        check_text("register URL", &self.url)?;
        check_count("names", self.names.len())?;
        check_count("areas", self.areas.len())?;
        check_count("professions", self.professions.len())?;
        check_count("lookups", self.lookups.len())?;
        for text in self.names.values().chain(&self.lookups) {
            check_text("register text", text)?;
        }
        Ok(())
    }
}

pub(crate) fn check_register_id(id: &str) -> Result<(), InvalidEntry> {
    if id.trim().is_empty() {
        return Err(InvalidEntry::Empty("register id"));
    }
    if id.chars().count() > MAX_REGISTER_ID {
        return Err(InvalidEntry::TooLong {
            what: "register id",
            max: MAX_REGISTER_ID,
        });
    }
    Ok(())
}

impl Helpdesk {
    /// Checks that the helpdesk can be published.
    pub fn validate(&self) -> Result<(), InvalidEntry> {
        check_count("helpdesk contacts", self.contacts.len())?;
        for contact in &self.contacts {
            if contact.name.trim().is_empty() {
                return Err(InvalidEntry::Empty("helpdesk contact name"));
            }
            for text in [&Some(contact.name.clone()), &contact.email, &contact.phone]
                .into_iter()
                .chain([&contact.hours])
                .flatten()
            {
                check_text("helpdesk contact", text)?;
            }
        }
        Ok(())
    }
}

/// Which root containers a document has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DocKind {
    Country,
    Commission,
}

impl DocKind {
    pub(crate) fn of(country: Country) -> DocKind {
        if country.is_commission() {
            DocKind::Commission
        } else {
            DocKind::Country
        }
    }
}

/// The genesis document of `country`: the same change on every node.
pub(crate) fn genesis(country: Country) -> Automerge {
    let actor = ActorId::from(format!("imi-directory-genesis-{}", country.code()).into_bytes());
    let mut doc = Automerge::new().with_actor(actor);
    let mut tx = doc.transaction();
    let made: Result<(), AutomergeError> = (|| {
        tx.put(automerge::ROOT, "country", country.code())?;
        match DocKind::of(country) {
            DocKind::Country => {
                tx.put_object(automerge::ROOT, AUTHORITIES, ObjType::Map)?;
                tx.put_object(automerge::ROOT, REGISTERS, ObjType::Map)?;
                tx.put_object(automerge::ROOT, HELPDESK, ObjType::Map)?;
            }
            DocKind::Commission => {
                tx.put_object(automerge::ROOT, ROSTER, ObjType::Map)?;
                tx.put_object(automerge::ROOT, REVOCATIONS, ObjType::Map)?;
            }
        }
        Ok(())
    })();
    made.expect("writing into a new document cannot fail");
    tx.commit_with(CommitOptions::default().with_time(0));
    doc
}

/// The id of a root container, which genesis created.
pub(crate) fn root_map<R: ReadDoc>(doc: &R, key: &str) -> Option<ObjId> {
    match doc.get(automerge::ROOT, key).ok()?? {
        (Value::Object(ObjType::Map), id) => Some(id),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Writing
//
// An entry is one map of scalar strings; composite fields (names per
// language, competences, contact, lists) are JSON text. A field is written
// only when it differs, so concurrent edits of different fields of one
// entry both survive, and Automerge keeps few objects (reading and loading
// a document costs in proportion to its objects and operations).

fn existing_map<T: Transactable>(tx: &T, obj: &ObjId, key: &str) -> Option<ObjId> {
    match tx.get(obj, key).ok()?? {
        (Value::Object(ObjType::Map), id) => Some(id),
        _ => None,
    }
}

fn ensure_map<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    key: &str,
) -> Result<ObjId, AutomergeError> {
    match existing_map(tx, obj, key) {
        Some(id) => Ok(id),
        None => tx.put_object(obj, key, ObjType::Map),
    }
}

fn current_str<T: ReadDoc>(doc: &T, obj: &ObjId, key: &str) -> Option<String> {
    match doc.get(obj, key).ok()?? {
        (Value::Scalar(s), _) => s.as_str().map(str::to_owned),
        _ => None,
    }
}

/// Puts `value` at `key` unless it is already there; `None` deletes.
fn put_str<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    key: &str,
    value: Option<&str>,
) -> Result<(), AutomergeError> {
    let current = current_str(tx, obj, key);
    match value {
        Some(value) if current.as_deref() != Some(value) => tx.put(obj, key, value),
        None if tx.get(obj, key)?.is_some() => tx.delete(obj, key),
        _ => Ok(()),
    }
}

fn put_json<T: Transactable, V: Serialize>(
    tx: &mut T,
    obj: &ObjId,
    key: &str,
    value: &V,
) -> Result<(), AutomergeError> {
    let json = serde_json::to_string(value).expect("directory fields always encode");
    put_str(tx, obj, key, Some(&json))
}

fn put_u64<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    key: &str,
    value: u64,
) -> Result<(), AutomergeError> {
    let current = match tx.get(obj, key)? {
        Some((Value::Scalar(s), _)) => s.as_u64(),
        _ => None,
    };
    if current != Some(value) {
        tx.put(obj, key, ScalarValue::Uint(value))?;
    }
    Ok(())
}

/// Writes `entry` under `authorities`, touching only the fields that differ.
pub(crate) fn write_authority<T: Transactable>(
    tx: &mut T,
    authorities: &ObjId,
    entry: &PublishedAuthority,
) -> Result<(), AutomergeError> {
    let obj = ensure_map(tx, authorities, &entry.id.to_string())?;
    let mut competences = entry.competences.clone();
    competences.sort_by(|a, b| a.area.cmp(&b.area));
    put_str(tx, &obj, "id", Some(&entry.id.to_string()))?;
    put_str(tx, &obj, "country", Some(entry.country.code()))?;
    put_str(tx, &obj, "node", Some(&entry.node.to_string()))?;
    put_json(tx, &obj, "names", &entry.names)?;
    put_json(tx, &obj, "competences", &competences)?;
    put_json(tx, &obj, "contact", &entry.contact)?;
    put_json(tx, &obj, "languages", &entry.languages)?;
    Ok(())
}

/// Writes `register` under `registers`.
pub(crate) fn write_register<T: Transactable>(
    tx: &mut T,
    registers: &ObjId,
    register: &Register,
) -> Result<(), AutomergeError> {
    let obj = ensure_map(tx, registers, &register.id)?;
    put_str(tx, &obj, "id", Some(&register.id))?;
    put_str(tx, &obj, "country", Some(register.country.code()))?;
    put_json(tx, &obj, "names", &register.names)?;
    put_str(tx, &obj, "url", Some(&register.url))?;
    put_json(tx, &obj, "areas", &register.areas)?;
    put_json(tx, &obj, "professions", &register.professions)?;
    put_json(tx, &obj, "lookups", &register.lookups)?;
    put_json(tx, &obj, "languages", &register.languages)?;
    Ok(())
}

/// Replaces the helpdesk's contacts.
pub(crate) fn write_helpdesk<T: Transactable>(
    tx: &mut T,
    helpdesk: &ObjId,
    value: &Helpdesk,
) -> Result<(), AutomergeError> {
    put_json(tx, helpdesk, "contacts", &value.contacts)
}

/// Sets the catalogue version in the Commission's document.
pub(crate) fn write_catalogue_version<T: Transactable>(
    tx: &mut T,
    version: &str,
) -> Result<(), AutomergeError> {
    put_str(tx, &automerge::ROOT, CATALOGUE_VERSION, Some(version))
}

/// Writes a roster entry in the Commission's document.
pub(crate) fn write_roster_entry<T: Transactable>(
    tx: &mut T,
    roster: &ObjId,
    entry: &RosterEntry,
) -> Result<(), AutomergeError> {
    let obj = ensure_map(tx, roster, &entry.address.to_string())?;
    put_str(tx, &obj, "address", Some(&entry.address.to_string()))?;
    put_str(tx, &obj, "peer_id", Some(&entry.peer_id))?;
    put_str(tx, &obj, "certificate", Some(&entry.certificate_pem))?;
    Ok(())
}

/// Writes a revocation list in the Commission's document.
pub(crate) fn write_revocation_list<T: Transactable>(
    tx: &mut T,
    revocations: &ObjId,
    list: &PublishedRevocationList,
) -> Result<(), AutomergeError> {
    let obj = ensure_map(tx, revocations, list.issuer.code())?;
    put_str(tx, &obj, "issuer", Some(list.issuer.code()))?;
    put_u64(tx, &obj, "number", list.number)?;
    put_str(tx, &obj, "list", Some(&list.list_pem))?;
    put_str(tx, &obj, "issuer_certificate", list.issuer_pem.as_deref())?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Reading

/// The scalar fields of the map `obj`.
struct Fields(HashMap<String, ScalarValue>);

impl Fields {
    fn of<R: ReadDoc>(doc: &R, obj: &ObjId) -> Fields {
        Fields(
            doc.map_range(obj, ..)
                .filter_map(|item| match item.value {
                    automerge::ValueRef::Scalar(s) => Some((item.key.into_owned(), s.into())),
                    _ => None,
                })
                .collect(),
        )
    }

    fn str(&self, key: &str) -> Option<&str> {
        self.0.get(key)?.as_str()
    }

    fn u64(&self, key: &str) -> Option<u64> {
        self.0.get(key)?.as_u64()
    }

    fn json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        serde_json::from_str(self.str(key)?).ok()
    }
}

/// The entries of the map `parent`: key and object id of each map in it.
pub(crate) fn entries<R: ReadDoc>(doc: &R, parent: &ObjId) -> Vec<(String, ObjId)> {
    doc.map_range(parent, ..)
        .filter(|item| matches!(item.value, automerge::ValueRef::Object(ObjType::Map)))
        .map(|item| (item.key.to_string(), item.id()))
        .collect()
}

/// The map at `key` in `parent`.
pub(crate) fn entry<R: ReadDoc>(doc: &R, parent: &ObjId, key: &str) -> Option<ObjId> {
    match doc.get(parent, key).ok()?? {
        (Value::Object(ObjType::Map), id) => Some(id),
        _ => None,
    }
}

/// Reads the authority in map `obj` (at `key`); `None` if unusable: an
/// entry of another country than the document's, a node of another
/// country, a missing or malformed field.
///
/// An entry that claims another country than its document's, or names a
/// node of another country as the one serving it, is refused: a country's
/// document speaks only for that country's authorities, served by that
/// country's nodes.
pub(crate) fn read_authority<R: ReadDoc>(
    doc: &R,
    obj: &ObjId,
    key: &str,
    country: Country,
) -> Result<PublishedAuthority, EntryRefused> {
    let f = Fields::of(doc, obj);
    let unreadable = EntryRefused::Unreadable;
    let id: AuthorityId = f
        .str("id")
        .and_then(|id| id.parse().ok())
        .ok_or(unreadable("id"))?;
    if id.to_string() != key {
        return Err(unreadable("id (not the entry's key)"));
    }
    let claimed: Country = f
        .str("country")
        .and_then(|c| c.parse().ok())
        .ok_or(unreadable("country"))?;
    if claimed != country {
        return Err(EntryRefused::ForeignCountry {
            document: country,
            claimed,
        });
    }
    let node: NodeAddress = f
        .str("node")
        .and_then(|n| n.parse().ok())
        .ok_or(unreadable("node"))?;
    if node.country != country {
        return Err(EntryRefused::ForeignNode {
            document: country,
            node,
        });
    }
    let mut competences: Vec<Competence> =
        f.json("competences").ok_or(unreadable("competences"))?;
    competences.sort_by(|a, b| a.area.cmp(&b.area));
    Ok(PublishedAuthority {
        id,
        country,
        names: f.json("names").ok_or(unreadable("names"))?,
        competences,
        contact: f.json("contact").ok_or(unreadable("contact"))?,
        languages: f.json("languages").ok_or(unreadable("languages"))?,
        node,
    })
}

/// Why an entry of a document is not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryRefused {
    /// A field is missing or does not parse.
    #[error("its {0} is missing or unreadable")]
    Unreadable(&'static str),
    /// The entry claims another country than its document's.
    #[error(
        "it claims to be an authority of {claimed}, but only {claimed}'s document speaks for {claimed}'s authorities, not {document}'s"
    )]
    ForeignCountry {
        /// The document's country.
        document: Country,
        /// The country the entry claims.
        claimed: Country,
    },
    /// The entry names a node of another country as the one serving it.
    #[error(
        "it names {node}, a node of another country, as the node serving an authority of {document}; only nodes of {document} serve {document}'s authorities"
    )]
    ForeignNode {
        /// The document's country.
        document: Country,
        /// The node named.
        node: NodeAddress,
    },
}

/// Reads the register in map `obj` (at `key`).
pub(crate) fn read_register<R: ReadDoc>(
    doc: &R,
    obj: &ObjId,
    key: &str,
    country: Country,
) -> Option<Register> {
    let f = Fields::of(doc, obj);
    let id = f.str("id")?;
    let entry_country: Country = f.str("country")?.parse().ok()?;
    if id != key || entry_country != country {
        return None;
    }
    Some(Register {
        id: id.to_owned(),
        country,
        names: f.json("names")?,
        url: f.str("url")?.to_owned(),
        areas: f.json("areas")?,
        professions: f.json("professions")?,
        lookups: f.json("lookups")?,
        languages: f.json("languages")?,
    })
}

/// Reads the helpdesk.
pub(crate) fn read_helpdesk<R: ReadDoc>(doc: &R, helpdesk: &ObjId) -> Option<Helpdesk> {
    let contacts = Fields::of(doc, helpdesk).json("contacts")?;
    Some(Helpdesk { contacts })
}

/// Reads the Commission's document.
pub(crate) fn read_commission<R: ReadDoc>(doc: &R) -> CommissionDirectory {
    let catalogue_version = current_str(doc, &automerge::ROOT, CATALOGUE_VERSION);
    let mut roster = BTreeMap::new();
    if let Some(map) = root_map(doc, ROSTER) {
        for (key, obj) in entries(doc, &map) {
            let f = Fields::of(doc, &obj);
            let entry = (|| {
                let address: NodeAddress = f.str("address")?.parse().ok()?;
                (address.to_string() == key).then_some(())?;
                Some(RosterEntry {
                    address,
                    peer_id: f.str("peer_id")?.to_owned(),
                    certificate_pem: f.str("certificate")?.to_owned(),
                })
            })();
            if let Some(entry) = entry {
                roster.insert(entry.address.clone(), entry);
            }
        }
    }
    let mut revocation_lists = BTreeMap::new();
    if let Some(map) = root_map(doc, REVOCATIONS) {
        for (key, obj) in entries(doc, &map) {
            let f = Fields::of(doc, &obj);
            let entry = (|| {
                let issuer: Country = f.str("issuer")?.parse().ok()?;
                (issuer.code() == key).then_some(())?;
                Some(PublishedRevocationList {
                    issuer,
                    number: f.u64("number")?,
                    list_pem: f.str("list")?.to_owned(),
                    issuer_pem: f.str("issuer_certificate").map(str::to_owned),
                })
            })();
            if let Some(entry) = entry {
                revocation_lists.insert(entry.issuer, entry);
            }
        }
    }
    CommissionDirectory {
        catalogue_version,
        roster,
        revocation_lists,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample(country: Country, node: &str) -> PublishedAuthority {
        PublishedAuthority {
            id: AuthorityId::new(),
            country,
            names: [
                (Language::Pt, "Ordem dos Médicos".to_owned()),
                (Language::En, "Medical Association".to_owned()),
            ]
            .into(),
            competences: vec![Competence {
                area: "professional-qualifications".parse().unwrap(),
                procedures: BTreeSet::new(),
                professions: ["doctor".parse().unwrap()].into(),
                other: vec!["registo de médicos".into()],
            }],
            contact: Contact {
                city: Some("Lisboa".into()),
                email: Some("imi@example.pt".into()),
                ..Contact::default()
            },
            languages: [Language::Pt, Language::En].into(),
            node: node.parse().unwrap(),
        }
    }

    #[test]
    fn genesis_is_the_same_change_everywhere() {
        assert_eq!(
            genesis(Country::Pt).get_heads(),
            genesis(Country::Pt).get_heads()
        );
        assert_ne!(
            genesis(Country::Pt).get_heads(),
            genesis(Country::Fi).get_heads()
        );
    }

    #[test]
    fn an_authority_reads_back_as_written() {
        let mut doc = genesis(Country::Pt);
        let authorities = root_map(&doc, AUTHORITIES).unwrap();
        let entry = sample(Country::Pt, "PT/pt-1");
        let mut tx = doc.transaction();
        write_authority(&mut tx, &authorities, &entry).unwrap();
        tx.commit();
        let key = entry.id.to_string();
        let obj = super::entry(&doc, &authorities, &key).unwrap();
        assert_eq!(
            read_authority(&doc, &obj, &key, Country::Pt),
            Ok(entry.clone())
        );
        // Writing the same entry again makes no change at all.
        let mut tx = doc.transaction();
        write_authority(&mut tx, &authorities, &entry).unwrap();
        assert_eq!(tx.pending_ops(), 0);
        tx.rollback();
        // An entry read from another country's document is refused.
        assert_eq!(
            read_authority(&doc, &obj, &key, Country::Fi),
            Err(EntryRefused::ForeignCountry {
                document: Country::Fi,
                claimed: Country::Pt
            })
        );
    }

    #[test]
    fn concurrent_edits_of_different_fields_both_survive() {
        let mut base = genesis(Country::De);
        let authorities = root_map(&base, AUTHORITIES).unwrap();
        let mut entry = sample(Country::De, "DE/de-1");
        let mut tx = base.transaction();
        write_authority(&mut tx, &authorities, &entry).unwrap();
        tx.commit();
        let mut one = base.fork();
        let mut two = base.fork();
        let mut renamed = entry.clone();
        renamed
            .names
            .insert(Language::De, "Ärztekammer Berlin".into());
        let mut tx = one.transaction();
        write_authority(&mut tx, &authorities, &renamed).unwrap();
        tx.commit();
        let mut moved = entry.clone();
        moved.contact.city = Some("Berlin".into());
        let mut tx = two.transaction();
        write_authority(&mut tx, &authorities, &moved).unwrap();
        tx.commit();
        one.merge(&mut two).unwrap();
        entry
            .names
            .insert(Language::De, "Ärztekammer Berlin".into());
        entry.contact.city = Some("Berlin".into());
        let key = entry.id.to_string();
        let obj = super::entry(&one, &authorities, &key).unwrap();
        assert_eq!(read_authority(&one, &obj, &key, Country::De), Ok(entry));
    }

    #[test]
    fn registers_helpdesk_and_commission_read_back() {
        let mut doc = genesis(Country::Pt);
        let registers = root_map(&doc, REGISTERS).unwrap();
        let helpdesk_obj = root_map(&doc, HELPDESK).unwrap();
        let register = Register {
            id: "pt-omd".into(),
            country: Country::Pt,
            names: [(Language::Pt, "Registo da Ordem dos Médicos".to_owned())].into(),
            url: "https://example.pt/registo".into(),
            areas: ["professional-qualifications".parse().unwrap()].into(),
            professions: ["doctor".parse().unwrap()].into(),
            lookups: vec!["inscrição".into(), "sanções disciplinares".into()],
            languages: [Language::Pt].into(),
        };
        let helpdesk = Helpdesk {
            contacts: vec![HelpdeskContact {
                name: "Coordenador nacional IMI".into(),
                email: Some("imi@example.pt".into()),
                phone: None,
                hours: Some("9h–17h".into()),
                languages: [Language::Pt, Language::En].into(),
            }],
        };
        let mut tx = doc.transaction();
        write_register(&mut tx, &registers, &register).unwrap();
        write_helpdesk(&mut tx, &helpdesk_obj, &helpdesk).unwrap();
        tx.commit();
        let obj = super::entry(&doc, &registers, "pt-omd").unwrap();
        assert_eq!(
            read_register(&doc, &obj, "pt-omd", Country::Pt),
            Some(register)
        );
        assert_eq!(read_helpdesk(&doc, &helpdesk_obj), Some(helpdesk));

        let mut eu = genesis(Country::Eu);
        let roster = root_map(&eu, ROSTER).unwrap();
        let revocations = root_map(&eu, REVOCATIONS).unwrap();
        let entry = RosterEntry {
            address: "FI/fi-1".parse().unwrap(),
            peer_id: "12D3KooW".into(),
            certificate_pem: "-----BEGIN CERTIFICATE-----".into(),
        };
        let list = PublishedRevocationList {
            issuer: Country::Fi,
            number: 3,
            list_pem: "-----BEGIN X509 CRL-----".into(),
            issuer_pem: Some("-----BEGIN CERTIFICATE-----".into()),
        };
        let mut tx = eu.transaction();
        write_catalogue_version(&mut tx, "2026.11").unwrap();
        write_roster_entry(&mut tx, &roster, &entry).unwrap();
        write_revocation_list(&mut tx, &revocations, &list).unwrap();
        tx.commit();
        let commission = read_commission(&eu);
        assert_eq!(commission.catalogue_version.as_deref(), Some("2026.11"));
        assert_eq!(commission.roster.values().next(), Some(&entry));
        assert_eq!(commission.revocation_lists.get(&Country::Fi), Some(&list));
    }

    #[test]
    fn invalid_entries_are_refused() {
        let mut entry = sample(Country::Pt, "PT/pt-1");
        entry.node = "FI/fi-1".parse().unwrap();
        assert!(matches!(
            entry.validate(),
            Err(InvalidEntry::ForeignNode { .. })
        ));
        let mut entry = sample(Country::Pt, "PT/pt-1");
        entry.names.clear();
        assert_eq!(entry.validate(), Err(InvalidEntry::Empty("authority name")));
        let mut entry = sample(Country::Pt, "PT/pt-1");
        entry.competences.push(entry.competences[0].clone());
        assert!(matches!(
            entry.validate(),
            Err(InvalidEntry::DuplicateArea(_))
        ));
    }
}
