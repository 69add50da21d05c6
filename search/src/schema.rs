//! The Tantivy schema of the directory index.
//!
//! | field | content | analysis |
//! |---|---|---|
//! | `id`, `kind`, `country` | the entry's id, `authority`/`register`, country code | raw, stored |
//! | `name` | every name of the entry | folded, stored (one value per name) |
//! | `name_lang` | the language tag of each name, same order | stored only |
//! | `name_stem` | stems of each name word, by the name's own language's stemmer | pre-tokenized |
//! | `name_prefix` | edge prefixes of the folded name words | edge prefixes |
//! | `name_exact` | each whole folded name | raw |
//! | `other` | free-text competences, city, region | folded, stored |
//! | `city` | the city, for display | stored only |
//! | `competence` | `area:…`, `procedure:…`, `profession:…` keys | raw, stored |
//! | `facet` | `/country/PT`, `/area/…` | facet |
//! | `sort` | the folded first name | fast, for browsing in name order |
//! | `prior` | what the entry adds to any score, in thousandths | fast |
//!
//! Any change to this table or to the analysis chains must raise
//! [`SCHEMA_VERSION`], which makes every node rebuild its index on start.

use tantivy::schema::{
    FAST, FacetOptions, Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing,
    TextOptions,
};

use crate::analysis::{FOLDED, PREFIXES};

/// The version of the schema and analysis; stored next to the index.
pub const SCHEMA_VERSION: u32 = 1;

/// The fields of the directory index.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields {
    pub(crate) id: Field,
    pub(crate) kind: Field,
    pub(crate) country: Field,
    pub(crate) name: Field,
    pub(crate) name_lang: Field,
    pub(crate) name_stem: Field,
    pub(crate) name_prefix: Field,
    pub(crate) name_exact: Field,
    pub(crate) other: Field,
    pub(crate) city: Field,
    pub(crate) competence: Field,
    pub(crate) facet: Field,
    pub(crate) sort: Field,
    pub(crate) prior: Field,
}

fn indexed(tokenizer: &str, option: IndexRecordOption, fieldnorms: bool) -> TextOptions {
    TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(tokenizer)
            .set_index_option(option)
            .set_fieldnorms(fieldnorms),
    )
}

/// Builds the schema.
pub(crate) fn build() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let fields = Fields {
        id: builder.add_text_field("id", STRING | STORED),
        kind: builder.add_text_field("kind", STRING | STORED),
        country: builder.add_text_field("country", STRING | STORED),
        name: builder.add_text_field(
            "name",
            indexed(FOLDED, IndexRecordOption::WithFreqs, true).set_stored(),
        ),
        name_lang: builder.add_text_field("name_lang", STORED),
        name_stem: builder.add_text_field(
            "name_stem",
            indexed("raw", IndexRecordOption::WithFreqs, true),
        ),
        name_prefix: builder.add_text_field(
            "name_prefix",
            indexed(PREFIXES, IndexRecordOption::Basic, false),
        ),
        name_exact: builder.add_text_field("name_exact", STRING),
        other: builder.add_text_field(
            "other",
            indexed(FOLDED, IndexRecordOption::WithFreqs, true).set_stored(),
        ),
        city: builder.add_text_field("city", STORED),
        competence: builder.add_text_field(
            "competence",
            indexed("raw", IndexRecordOption::WithFreqs, true).set_stored(),
        ),
        facet: builder.add_facet_field("facet", FacetOptions::default()),
        sort: builder.add_text_field("sort", TextOptions::default().set_fast("raw")),
        prior: builder.add_u64_field("prior", FAST),
    };
    (builder.build(), fields)
}
