//! The multilingual search of the imi directory.
//!
//! Owns the Tantivy schema and the per-language analysis of authorities and
//! registers, cross-language matching of competences through the catalogue,
//! facets and ranking. It must not know where its documents come from.

mod analysis;
