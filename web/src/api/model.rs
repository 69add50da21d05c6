//! The JSON shapes of the API, each with an example for its schema.
//!
//! Keys of the catalogue (areas, procedures, professions, question sets,
//! questions), countries (`PT`) and languages (`pt`) are written as the
//! catalogue and ISO write them; dates as `YYYY-MM-DD`, moments as RFC 3339
//! in UTC.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// An authority of a country, named in the reader's language where it has
/// a name in it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"country": "PT", "authority": "ordem-dos-medicos", "name": "Ordem dos Médicos", "language": "pt"}))]
pub(crate) struct PartyOut {
    /// Its country.
    pub(crate) country: String,
    /// Its id in its country.
    pub(crate) authority: String,
    /// Its name (its id when the directory does not know it).
    pub(crate) name: String,
    /// The language of the name.
    pub(crate) language: String,
}

/// An authority named by country and id.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"country": "PT", "authority": "ordem-dos-medicos"}))]
pub(crate) struct PartyRef {
    /// Its country (`PT`).
    pub(crate) country: String,
    /// Its id in its country.
    pub(crate) authority: String,
}

/// A message in its writer's language.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"language": "fi", "text": "Pyydämme vahvistamaan tutkinnon."}))]
pub(crate) struct TextOut {
    /// The language it is written in.
    pub(crate) language: String,
    /// The text, as written.
    pub(crate) text: String,
}

/// A file to attach to a step.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "diploma.pdf", "media_type": "application/pdf", "content_base64": "JVBERi0xLjQK"}))]
pub(crate) struct FileIn {
    /// Its name, without folders.
    pub(crate) name: String,
    /// Its media type (`application/pdf`).
    pub(crate) media_type: String,
    /// Its bytes, in standard base64.
    pub(crate) content_base64: String,
}

/// A file of a step.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"name": "diploma.pdf", "media_type": "application/pdf", "size": 48213, "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "href": "/api/v1/cases/01JDXAMPLE0000000000000000/files/01JDXAMPLE0000000000000001/0"}))]
pub(crate) struct FileOut {
    /// Its name.
    pub(crate) name: String,
    /// Its media type.
    pub(crate) media_type: String,
    /// Its size in bytes.
    pub(crate) size: usize,
    /// Its SHA-256, in hex, checked by every node it reached.
    pub(crate) sha256: String,
    /// Where to download it.
    pub(crate) href: String,
}

/// A page of search results.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"total": 1, "items": [{"kind": "authority", "id": "ordem-dos-medicos", "country": "PT", "name": "Ordem dos Médicos", "name_language": "pt", "city": "Lisboa", "competences": ["Lääkäri"], "url": null, "href": "/api/v1/authorities/PT/ordem-dos-medicos"}], "next_cursor": null, "countries": [{"key": "PT", "count": 1}], "areas": [{"key": "professional-qualifications", "count": 1}], "countries_in_text": ["PT"]}))]
pub(crate) struct SearchResults {
    /// Matching entries in all.
    pub(crate) total: usize,
    /// This page.
    pub(crate) items: Vec<SearchHitOut>,
    /// The cursor of the next page, when there is one.
    pub(crate) next_cursor: Option<String>,
    /// Matching entries per country, most first.
    pub(crate) countries: Vec<Count>,
    /// Matching entries per legislative area, most first.
    pub(crate) areas: Vec<Count>,
    /// Countries named in the text, which restricted the search.
    pub(crate) countries_in_text: Vec<String>,
}

/// How many entries have a value.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"key": "PT", "count": 12}))]
pub(crate) struct Count {
    /// The value (a country, an area key).
    pub(crate) key: String,
    /// Entries with it.
    pub(crate) count: u64,
}

/// One search result.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"kind": "authority", "id": "ordem-dos-medicos", "country": "PT", "name": "Ordem dos Médicos", "name_language": "pt", "city": "Lisboa", "competences": ["Doctor"], "url": null, "href": "/api/v1/authorities/PT/ordem-dos-medicos"}))]
pub(crate) struct SearchHitOut {
    /// `authority` or `register`.
    pub(crate) kind: String,
    /// Its id.
    pub(crate) id: String,
    /// Its country.
    pub(crate) country: String,
    /// Its name in the reader's language where it has one.
    pub(crate) name: String,
    /// The language of the name.
    pub(crate) name_language: String,
    /// Its city.
    pub(crate) city: Option<String>,
    /// The competences the query matched, in the reader's language.
    pub(crate) competences: Vec<String>,
    /// A register's address.
    pub(crate) url: Option<String>,
    /// An authority's page in the API.
    pub(crate) href: Option<String>,
}

/// The query of a search.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct SearchParams {
    /// Free text in any language: a name, a profession, a city.
    #[param(example = "Lääkäri Portugali")]
    pub(crate) q: Option<String>,
    /// The reader's language (`fi`); the profile's by default.
    #[param(example = "fi", pattern = "^[a-z]{2}$")]
    pub(crate) lang: Option<String>,
    /// Only these countries, comma-separated (`PT,ES`).
    #[param(example = "PT", pattern = "^[A-Z]{2}(,[A-Z]{2})*$")]
    pub(crate) country: Option<String>,
    /// Only entries competent in these areas, comma-separated.
    #[param(example = "professional-qualifications")]
    pub(crate) area: Option<String>,
    /// Only entries handling these procedures, comma-separated.
    pub(crate) procedure: Option<String>,
    /// Only entries competent for these professions, comma-separated.
    pub(crate) profession: Option<String>,
    /// Only `authority` or only `register` entries.
    #[param(example = "authority")]
    pub(crate) kind: Option<String>,
    /// Where to go on: `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
    /// Results per page, 1 to 100 (20).
    #[param(example = 20, minimum = 1, maximum = 100)]
    pub(crate) limit: Option<usize>,
}

/// An authority of the directory, as its country published it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"id": "ordem-dos-medicos", "country": "PT", "names": {"pt": "Ordem dos Médicos", "en": "Portuguese Medical Association"}, "competences": [{"area": "professional-qualifications", "procedures": ["pq-information-request"], "professions": ["doctor"], "other": []}], "contact": {"city": "Lisboa", "email": "imi@example.pt"}, "languages": ["pt", "en"], "node": "PT/lisboa-1"}))]
pub(crate) struct AuthorityOut {
    /// Its id in its country.
    pub(crate) id: String,
    /// Its country.
    pub(crate) country: String,
    /// Its names, per language.
    pub(crate) names: BTreeMap<String, String>,
    /// What it is competent for, per legislative area.
    pub(crate) competences: Vec<CompetenceOut>,
    /// How to reach it.
    pub(crate) contact: ContactOut,
    /// The languages it accepts requests in.
    pub(crate) languages: Vec<String>,
    /// The node that serves it.
    pub(crate) node: String,
}

/// An authority's competence in one legislative area.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"area": "professional-qualifications", "procedures": ["pq-information-request"], "professions": ["doctor"], "other": []}))]
pub(crate) struct CompetenceOut {
    /// The area (catalogue key).
    pub(crate) area: String,
    /// Procedures it handles there.
    pub(crate) procedures: Vec<String>,
    /// Professions it is competent for.
    pub(crate) professions: Vec<String>,
    /// Other competences, as written.
    pub(crate) other: Vec<String>,
}

/// How to reach an authority.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"address": "Av. Almirante Gago Coutinho 151", "postal_code": "1749-084", "city": "Lisboa", "region": null, "email": "imi@example.pt", "phone": "+351 21 000 0000", "website": "https://ordem.example.pt"}))]
pub(crate) struct ContactOut {
    /// Street address.
    pub(crate) address: Option<String>,
    /// Postal code.
    pub(crate) postal_code: Option<String>,
    /// City.
    pub(crate) city: Option<String>,
    /// Region.
    pub(crate) region: Option<String>,
    /// Email address.
    pub(crate) email: Option<String>,
    /// Telephone.
    pub(crate) phone: Option<String>,
    /// Website.
    pub(crate) website: Option<String>,
}

/// A public online register.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"id": "pt-medical-register", "country": "PT", "names": {"pt": "Registo de médicos"}, "url": "https://register.example.pt", "areas": ["professional-qualifications"], "professions": ["doctor"], "languages": ["pt"]}))]
pub(crate) struct RegisterOut {
    /// Its id.
    pub(crate) id: String,
    /// Its country.
    pub(crate) country: String,
    /// Its names, per language.
    pub(crate) names: BTreeMap<String, String>,
    /// Where it is looked up.
    pub(crate) url: String,
    /// Legislative areas it serves.
    pub(crate) areas: Vec<String>,
    /// Professions it lists.
    pub(crate) professions: Vec<String>,
    /// The languages it can be read in.
    pub(crate) languages: Vec<String>,
}

/// Which registers to list.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct RegistersParams {
    /// Only this country's (`PT`).
    #[param(example = "PT", pattern = "^[A-Z]{2}$")]
    pub(crate) country: Option<String>,
}

/// A country's national IMI helpdesk.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"country": "FI", "contacts": [{"name": "IMI helpdesk", "email": "imi@example.fi", "phone": "+358 29 000 0000", "hours": "Mon–Fri 9–16", "languages": ["fi", "sv", "en"]}]}))]
pub(crate) struct HelpdeskOut {
    /// The country.
    pub(crate) country: String,
    /// Its contacts.
    pub(crate) contacts: Vec<HelpdeskContactOut>,
}

/// One contact of a helpdesk.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"name": "IMI helpdesk", "email": "imi@example.fi", "phone": "+358 29 000 0000", "hours": "Mon–Fri 9–16", "languages": ["fi", "sv", "en"]}))]
pub(crate) struct HelpdeskContactOut {
    /// Name.
    pub(crate) name: String,
    /// Email address.
    pub(crate) email: Option<String>,
    /// Telephone.
    pub(crate) phone: Option<String>,
    /// Opening hours.
    pub(crate) hours: Option<String>,
    /// Languages spoken.
    pub(crate) languages: Vec<String>,
}

/// The language to read the catalogue in.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct LanguageParams {
    /// The language (`pt`); the profile's by default.
    #[param(example = "pt", pattern = "^[a-z]{2}$")]
    pub(crate) lang: Option<String>,
}

/// The catalogue in one language: legislative areas, their procedures and
/// question sets, and professions.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"version": "2026.11", "language": "pt", "areas": [{"key": "professional-qualifications", "label": "Qualificações profissionais", "legal_basis": "Directive 2005/36/EC", "procedures": [{"key": "pq-information-request", "kind": "information-request", "label": "Pedido de informações", "reply_days": null, "question_sets": [{"key": "pq-general", "label": "Perguntas gerais", "href": "/api/v1/catalogue/question-sets/pq-general"}]}], "professions": [{"key": "doctor", "label": "Médico", "sectoral": true}]}]}))]
pub(crate) struct CatalogueOut {
    /// The catalogue's version.
    pub(crate) version: String,
    /// The language of the labels.
    pub(crate) language: String,
    /// Every legislative area.
    pub(crate) areas: Vec<AreaOut>,
}

/// A legislative area.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"key": "professional-qualifications", "label": "Professional qualifications", "legal_basis": "Directive 2005/36/EC", "procedures": [], "professions": [{"key": "doctor", "label": "Doctor", "sectoral": true}]}))]
pub(crate) struct AreaOut {
    /// Its key.
    pub(crate) key: String,
    /// Its name.
    pub(crate) label: String,
    /// The law it applies.
    pub(crate) legal_basis: String,
    /// Its procedures.
    pub(crate) procedures: Vec<ProcedureOut>,
    /// Its professions.
    pub(crate) professions: Vec<ProfessionOut>,
}

/// A procedure of an area.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"key": "pq-information-request", "kind": "information-request", "label": "Request for information", "reply_days": 14, "question_sets": [{"key": "pq-doctor", "label": "Doctor: verification of qualifications", "href": "/api/v1/catalogue/question-sets/pq-doctor"}]}))]
pub(crate) struct ProcedureOut {
    /// Its key.
    pub(crate) key: String,
    /// `information-request`, `alert`, `notification`, `repository` or
    /// `public-case`.
    pub(crate) kind: String,
    /// Its name.
    pub(crate) label: String,
    /// Days to reply, when the law sets them.
    pub(crate) reply_days: Option<u16>,
    /// Its question sets.
    pub(crate) question_sets: Vec<QuestionSetRef>,
}

/// A question set, named.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"key": "pq-general", "label": "General questions", "href": "/api/v1/catalogue/question-sets/pq-general"}))]
pub(crate) struct QuestionSetRef {
    /// Its key.
    pub(crate) key: String,
    /// Its name.
    pub(crate) label: String,
    /// Its questions in the API.
    pub(crate) href: String,
}

/// A profession.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"key": "doctor", "label": "Doctor", "sectoral": true}))]
pub(crate) struct ProfessionOut {
    /// Its key.
    pub(crate) key: String,
    /// Its name.
    pub(crate) label: String,
    /// A sectoral profession (automatic recognition).
    pub(crate) sectoral: bool,
}

/// A question set with its questions, in one language.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"key": "pq-general", "procedure": "pq-information-request", "area": "professional-qualifications", "label": "General questions", "groups": [{"key": "professional", "label": "Professional", "given_by_requester": true, "questions": [{"key": "date-of-birth", "label": "Date of birth", "answer": "date", "options": [], "personal_data": true, "required": true}]}, {"key": "qualification", "label": "Qualification", "given_by_requester": false, "questions": [{"key": "legally-established", "label": "Is the professional legally established?", "answer": "yes-no", "options": [], "personal_data": false, "required": false}]}]}))]
pub(crate) struct QuestionSetOut {
    /// Its key.
    pub(crate) key: String,
    /// Its procedure.
    pub(crate) procedure: String,
    /// Its legislative area.
    pub(crate) area: String,
    /// Its name.
    pub(crate) label: String,
    /// Its groups of questions, in order.
    pub(crate) groups: Vec<QuestionGroupOut>,
}

/// A group of questions.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"key": "qualification", "label": "Qualification", "given_by_requester": false, "questions": [{"key": "date-of-award", "label": "Date of award", "answer": "date", "options": [], "personal_data": false, "required": false}]}))]
pub(crate) struct QuestionGroupOut {
    /// Its key.
    pub(crate) key: String,
    /// Its name.
    pub(crate) label: String,
    /// Whether the requester gives these (`details` of a new request), or
    /// asks them (`questions`).
    pub(crate) given_by_requester: bool,
    /// Its questions.
    pub(crate) questions: Vec<QuestionOut>,
}

/// One question.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"key": "date-of-birth", "label": "Date of birth", "answer": "date", "options": [], "personal_data": true, "required": true}))]
pub(crate) struct QuestionOut {
    /// Its key.
    pub(crate) key: String,
    /// The question.
    pub(crate) label: String,
    /// `text`, `yes-no` (`yes` or `no`), `date` (`YYYY-MM-DD`), `number`,
    /// `choice` (one of `options`) or `attachment`.
    pub(crate) answer: String,
    /// The options of a choice.
    pub(crate) options: Vec<OptionOut>,
    /// Whether the answer is personal data.
    pub(crate) personal_data: bool,
    /// Whether it must be answered.
    pub(crate) required: bool,
}

/// An option of a choice.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"key": "full-time", "label": "Full time"}))]
pub(crate) struct OptionOut {
    /// Its key (the answer given).
    pub(crate) key: String,
    /// The option.
    pub(crate) label: String,
}

/// Which tasks to list.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct TaskParams {
    /// `all` (the user's, their authority's and their coordinator roles'),
    /// `overdue` or `mine` (waiting for the user themselves).
    #[param(example = "all")]
    pub(crate) filter: Option<String>,
    /// `due` (soonest due first, the default) or `updated` (most recently
    /// changed first).
    #[param(example = "due")]
    pub(crate) order: Option<String>,
    /// Where to go on: `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
    /// Tasks per page, 1 to 100 (20).
    #[param(example = 20, minimum = 1, maximum = 100)]
    pub(crate) limit: Option<usize>,
}

/// A page of My tasks.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"items": [{"case": "01JDXAMPLE0000000000000000", "case_kind": "request", "area": "professional-qualifications", "task": "answer", "personal": false, "due": "2026-12-17", "status": "accepted", "updated_at": "2026-12-03T09:30:00.000Z", "counterpart": {"country": "FI", "authority": "valvira", "name": "Valvira", "language": "fi"}, "href": "/api/v1/cases/01JDXAMPLE0000000000000000"}], "total": 1, "overdue": 0, "today": "2026-12-03", "next_cursor": null}))]
pub(crate) struct TaskPage {
    /// This page.
    pub(crate) items: Vec<TaskOut>,
    /// Tasks the filter lists in all.
    pub(crate) total: usize,
    /// Tasks of the user past their date.
    pub(crate) overdue: usize,
    /// Today on the node.
    pub(crate) today: String,
    /// The cursor of the next page, when there is one.
    pub(crate) next_cursor: Option<String>,
}

/// One task.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"case": "01JDXAMPLE0000000000000000", "case_kind": "request", "area": "professional-qualifications", "task": "answer", "personal": false, "due": "2026-12-17", "status": "accepted", "updated_at": "2026-12-03T09:30:00.000Z", "counterpart": {"country": "FI", "authority": "valvira", "name": "Valvira", "language": "fi"}, "href": "/api/v1/cases/01JDXAMPLE0000000000000000"}))]
pub(crate) struct TaskOut {
    /// The case.
    pub(crate) case: String,
    /// `request`, `alert`, `notification` or `public-case`.
    pub(crate) case_kind: String,
    /// The case's legislative area.
    pub(crate) area: String,
    /// What must be done (`answer`).
    pub(crate) task: String,
    /// Waiting for the user themselves, not for their authority.
    pub(crate) personal: bool,
    /// By when.
    pub(crate) due: Option<String>,
    /// The case's state.
    pub(crate) status: String,
    /// When the case last changed.
    pub(crate) updated_at: String,
    /// The other authority of a request.
    pub(crate) counterpart: Option<PartyOut>,
    /// The case in the API.
    pub(crate) href: String,
}

/// A new request.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "to": {"country": "PT", "authority": "ordem-dos-medicos"},
    "question_set": "pq-doctor",
    "details": {"family-name": "Silva", "given-names": "Ana", "date-of-birth": "1984-05-12"},
    "questions": ["diploma-genuine", "right-to-practise"],
    "message": "Pyydämme vahvistamaan tutkinnon.",
    "reply_by": "2026-12-17",
    "send": true,
    "attachments": []
}))]
pub(crate) struct NewRequestIn {
    /// The authority asked.
    pub(crate) to: PartyRef,
    /// The question set (catalogue key), one the user's areas and the
    /// authority's allow.
    pub(crate) question_set: String,
    /// The details given: question key → answer, for the questions of the
    /// set's groups the requester gives.
    #[serde(default)]
    pub(crate) details: BTreeMap<String, String>,
    /// The questions asked: keys of the set's other questions.
    #[serde(default)]
    pub(crate) questions: Vec<String>,
    /// A message to the authority.
    pub(crate) message: Option<String>,
    /// The language of the message (`fi`); the profile's by default.
    pub(crate) language: Option<String>,
    /// The proposed reply-by date, today or later; needed to send.
    pub(crate) reply_by: Option<String>,
    /// Send at once (`true`) or keep a draft (`false`).
    #[serde(default)]
    pub(crate) send: bool,
    /// Files, at most 5 (and the node's size limit).
    #[serde(default)]
    pub(crate) attachments: Vec<FileIn>,
}

/// A case as the reader's authority sees it. Its `version` is its `ETag`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "01JDXAMPLE0000000000000000",
    "version": "3f9a1c0d7e2b4a6c8d1e0f2a",
    "status": "answered",
    "area": "professional-qualifications",
    "question_set": "pq-general",
    "requester": {"country": "FI", "authority": "valvira", "name": "Valvira", "language": "fi"},
    "responder": {"country": "PT", "authority": "ordem-dos-medicos", "name": "Ordem dos Médicos", "language": "pt"},
    "reader_is_requester": true,
    "reply_by": "2026-12-17",
    "deadline_proposal": null,
    "information_requested": false,
    "rating": null,
    "handler": null,
    "details": {"full-name": "Ana Sofia Martins", "date-of-birth": "1984-05-17"},
    "questions": [{"key": "legally-established", "answer": "yes"}],
    "message": {"language": "fi", "text": "Pyydämme vahvistamaan tutkinnon."},
    "history": [{"step": "01JDXAMPLE0000000000000001", "at": "2026-12-03T09:30:00.000Z", "action": "send", "date": "2026-12-17", "party": {"country": "FI", "authority": "valvira", "name": "Valvira", "language": "fi"}, "user": "Aino Virtanen", "message": null, "fields": {}, "files": [], "fate": "applied", "overtaken_by": null, "node": "FI/helsinki-1", "deliveries": [{"node": "PT/lisboa-1", "state": "delivered", "reason": null}]}],
    "allowed": ["close", "reopen"],
    "forward_to": [],
    "handlers": [],
    "today": "2026-12-05"
}))]
pub(crate) struct CaseOut {
    /// The case's id, its reference for good.
    pub(crate) id: String,
    /// Its version: send it as `If-Match` with a step.
    pub(crate) version: String,
    /// The case's state (`accepted`).
    pub(crate) status: String,
    /// The legislative area.
    pub(crate) area: String,
    /// The question set.
    pub(crate) question_set: Option<String>,
    /// The requesting authority.
    pub(crate) requester: PartyOut,
    /// The authority asked now.
    pub(crate) responder: PartyOut,
    /// Whether the reader's authority is the requester.
    pub(crate) reader_is_requester: bool,
    /// The reply-by date.
    pub(crate) reply_by: Option<String>,
    /// A reply-by date the responder proposed, not yet settled.
    pub(crate) deadline_proposal: Option<String>,
    /// Whether the responder asked for more information.
    pub(crate) information_requested: bool,
    /// The requester's rating, once closed.
    pub(crate) rating: Option<RatingIo>,
    /// The official the request is allocated to, when the reader's node
    /// knows them.
    pub(crate) handler: Option<String>,
    /// The details the requester gave: question key → answer.
    pub(crate) details: BTreeMap<String, String>,
    /// The questions asked, each with its latest answer.
    pub(crate) questions: Vec<QuestionAnswer>,
    /// The requester's message.
    pub(crate) message: Option<TextOut>,
    /// Every step, oldest first.
    pub(crate) history: Vec<StepOut>,
    /// The steps the reader may take now (`accept`).
    pub(crate) allowed: Vec<String>,
    /// Where the request may be forwarded, when it may be.
    pub(crate) forward_to: Vec<PartyOut>,
    /// The request handlers it may be allocated to, when it may be.
    pub(crate) handlers: Vec<HandlerOut>,
    /// Today on the node.
    pub(crate) today: String,
}

/// A question asked and its latest answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"key": "diploma-genuine", "answer": "yes"}))]
pub(crate) struct QuestionAnswer {
    /// The question's key.
    pub(crate) key: String,
    /// Its latest answer.
    pub(crate) answer: Option<String>,
}

/// A request handler of the responder.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"id": "01JDXAMPLE0000000000000002", "name": "Maria Silva"}))]
pub(crate) struct HandlerOut {
    /// The user's id.
    pub(crate) id: String,
    /// Their name.
    pub(crate) name: String,
}

/// A requester's rating of the answer, 1 to 5 each.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"timeliness": 5, "effort": 4}))]
pub(crate) struct RatingIo {
    /// How timely the answer was.
    #[schema(minimum = 1, maximum = 5)]
    pub(crate) timeliness: u8,
    /// How much effort it showed.
    #[schema(minimum = 1, maximum = 5)]
    pub(crate) effort: u8,
}

/// One step of a case's history.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"step": "01JDXAMPLE0000000000000005", "at": "2026-12-05T14:02:00.000Z", "action": "answer", "date": null, "party": {"country": "PT", "authority": "ordem-dos-medicos", "name": "Ordem dos Médicos", "language": "pt"}, "user": null, "message": {"language": "pt", "text": "Em anexo o extrato do registo."}, "fields": {"legally-established": "yes"}, "files": [{"name": "extrato.txt", "media_type": "text/plain", "size": 51, "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "href": "/api/v1/cases/01JDXAMPLE0000000000000000/files/01JDXAMPLE0000000000000005/0"}], "fate": "applied", "overtaken_by": null, "node": "PT/lisboa-1", "deliveries": [{"node": "FI/helsinki-1", "state": "delivered", "reason": null}]}))]
pub(crate) struct StepOut {
    /// The step's id.
    pub(crate) step: String,
    /// When it was taken.
    pub(crate) at: String,
    /// The step (`accept`).
    pub(crate) action: String,
    /// A date it set.
    pub(crate) date: Option<String>,
    /// The authority that took it.
    pub(crate) party: PartyOut,
    /// The official, when they are a user of this node.
    pub(crate) user: Option<String>,
    /// What it said.
    pub(crate) message: Option<TextOut>,
    /// The answers or details it carried.
    pub(crate) fields: BTreeMap<String, String>,
    /// The files it carried.
    pub(crate) files: Vec<FileOut>,
    /// `applied`, `overtaken` (another step came first) or `pending`.
    pub(crate) fate: String,
    /// For an overtaken step: the step that came first, and why.
    pub(crate) overtaken_by: Option<String>,
    /// The node it was taken on.
    pub(crate) node: String,
    /// The messages this node sent for it.
    pub(crate) deliveries: Vec<DeliveryOut>,
}

/// Where a message that carried a step stands.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"node": "PT/lisboa-1", "state": "delivered", "reason": null}))]
pub(crate) struct DeliveryOut {
    /// The recipient node.
    pub(crate) node: String,
    /// `queued`, `delivered` (signed receipt) or `rejected`.
    pub(crate) state: String,
    /// Why it was rejected.
    pub(crate) reason: Option<String>,
}

/// A step to take in a request.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"action": "propose-deadline", "reply_by": "2026-12-31", "message": "Tarvitsemme lisäaikaa."}))]
pub(crate) struct StepIn {
    /// One of the case's `allowed` steps: `send`, `discard-draft`,
    /// `withdraw`, `accept`, `decline`, `forward`, `propose-deadline`,
    /// `accept-deadline`, `refuse-deadline`, `request-information`,
    /// `provide-information`, `answer`, `answer-part`, `close`, `reopen`,
    /// `allocate`.
    pub(crate) action: String,
    /// The date of `send`, `propose-deadline` and `reopen`.
    pub(crate) reply_by: Option<String>,
    /// The authority of `forward`.
    pub(crate) to: Option<PartyRef>,
    /// The handler (user id) of `allocate`.
    pub(crate) handler: Option<String>,
    /// The answers of `answer` and `answer-part`: question key → answer.
    #[serde(default)]
    pub(crate) answers: BTreeMap<String, String>,
    /// The rating of `close`.
    pub(crate) rating: Option<RatingIo>,
    /// A message with the step.
    pub(crate) message: Option<String>,
    /// The language of the message; the profile's by default.
    pub(crate) language: Option<String>,
    /// Files of `answer`, `answer-part`, `request-information` and
    /// `provide-information`.
    #[serde(default)]
    pub(crate) attachments: Vec<FileIn>,
}

/// The token's user.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"id": "01JDXAMPLE0000000000000003", "login": "fi-handler", "name": "Aino Virtanen", "email": "aino.virtanen@example.fi", "language": "fi", "authority": {"country": "FI", "authority": "valvira", "name": "Valvira", "language": "fi"}, "areas": ["professional-qualifications"], "roles": {"*": ["request-handler"]}, "password_set": "2026-11-02T09:30:00.000Z"}))]
pub(crate) struct MeOut {
    /// The user's id.
    pub(crate) id: String,
    /// Sign-in name.
    pub(crate) login: String,
    /// Full name.
    pub(crate) name: String,
    /// Email address.
    pub(crate) email: String,
    /// The profile's language.
    pub(crate) language: String,
    /// Their authority.
    pub(crate) authority: PartyOut,
    /// The legislative areas the authority is competent in.
    pub(crate) areas: Vec<String>,
    /// Roles per legislative area (`*` for every area).
    pub(crate) roles: BTreeMap<String, Vec<String>>,
    /// When the password was last set.
    pub(crate) password_set: String,
}

/// A language to use.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"language": "pt"}))]
pub(crate) struct LanguageIn {
    /// One of the 24 languages (`pt`).
    pub(crate) language: String,
}

/// Email notifications of new tasks.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"task_emails": "daily-summary", "address": null}))]
pub(crate) struct NotificationsIo {
    /// `each-task`, `daily-summary` or `never`.
    pub(crate) task_emails: String,
    /// The address to use instead of the account's.
    pub(crate) address: Option<String>,
}

/// A change of the user's own password.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"current": "correct horse battery", "new": "a longer passphrase of mine"}))]
pub(crate) struct PasswordIn {
    /// The current password.
    pub(crate) current: String,
    /// The new one.
    pub(crate) new: String,
}

/// An API token, never its secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"id": "01JDXAMPLE0000000000000004", "name": "Case system", "created": "2026-12-03T09:30:00.000Z", "expires": "2027-03-03T09:30:00.000Z", "last_used": null}))]
pub(crate) struct TokenOut {
    /// Its id.
    pub(crate) id: String,
    /// Its name.
    pub(crate) name: String,
    /// When it was created.
    pub(crate) created: String,
    /// When it stops working.
    pub(crate) expires: String,
    /// When it was last used, to the minute.
    pub(crate) last_used: Option<String>,
}

/// A token to create.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Case system", "days": 90}))]
pub(crate) struct NewTokenIn {
    /// What it is for.
    pub(crate) name: String,
    /// Days it works, 1 to 366 (90).
    #[schema(minimum = 1, maximum = 366)]
    pub(crate) days: Option<u16>,
}

/// A token just created, with its secret: shown this once.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"token": {"id": "01JDXAMPLE0000000000000004", "name": "Case system", "created": "2026-12-03T09:30:00.000Z", "expires": "2027-03-03T09:30:00.000Z", "last_used": null}, "secret": "imi_3Jq9xExampleSecretShownOnce"}))]
pub(crate) struct NewTokenOut {
    /// The token.
    pub(crate) token: TokenOut,
    /// The bearer secret; it is not shown again.
    pub(crate) secret: String,
}

/// The node's status, for its national coordinators.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"catalogue_version": "2025.1", "store_bytes": 290816, "peers": [{"node": "PT/pt-1", "certificate_until": "2027-12-03T20:41:00.000Z"}], "refused": [], "cases": {"sent": 3}, "sent": {"accepted": 12}, "rejections": {}, "received": 9, "outbox": 0}))]
pub(crate) struct NodeStatusOut {
    /// The catalogue's version.
    pub(crate) catalogue_version: String,
    /// The store file's size in bytes.
    pub(crate) store_bytes: u64,
    /// The nodes linked now.
    pub(crate) peers: Vec<PeerOut>,
    /// Nodes refused admission since the node started: peer id and why.
    pub(crate) refused: Vec<RefusedOut>,
    /// Cases by state.
    pub(crate) cases: BTreeMap<String, u64>,
    /// Messages sent, by status.
    pub(crate) sent: BTreeMap<String, u64>,
    /// Messages other nodes rejected, by the code of their reason.
    pub(crate) rejections: BTreeMap<String, u64>,
    /// Messages received.
    pub(crate) received: u64,
    /// Messages waiting for their receipt.
    pub(crate) outbox: u64,
}

/// A node linked now.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"node": "PT/pt-1", "certificate_until": "2027-12-03T20:41:00.000Z"}))]
pub(crate) struct PeerOut {
    /// Its address.
    pub(crate) node: String,
    /// When its certificate ends.
    pub(crate) certificate_until: String,
}

/// A node refused admission.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"peer": "12D3KooWExample", "reason": "its certificate is revoked"}))]
pub(crate) struct RefusedOut {
    /// Its libp2p peer id.
    pub(crate) peer: String,
    /// Why.
    pub(crate) reason: String,
}
