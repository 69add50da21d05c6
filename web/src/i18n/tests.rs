use std::collections::{BTreeMap, BTreeSet};

use fluent_syntax::ast;

use super::*;

/// Message id → the variables its value uses, from Fluent source.
fn messages(source: &str) -> BTreeMap<String, BTreeSet<String>> {
    let resource = fluent_syntax::parser::parse(source).unwrap_or_else(|(_, errors)| {
        panic!("syntax errors: {errors:?}");
    });
    let mut found = BTreeMap::new();
    for entry in resource.body {
        if let ast::Entry::Message(message) = entry {
            let mut variables = BTreeSet::new();
            if let Some(pattern) = &message.value {
                pattern_variables(pattern, &mut variables);
            }
            assert!(
                found
                    .insert(message.id.name.to_owned(), variables)
                    .is_none(),
                "message {} appears twice",
                message.id.name
            );
        }
    }
    found
}

fn pattern_variables(pattern: &ast::Pattern<&str>, out: &mut BTreeSet<String>) {
    for element in &pattern.elements {
        if let ast::PatternElement::Placeable { expression } = element {
            expression_variables(expression, out);
        }
    }
}

fn expression_variables(expression: &ast::Expression<&str>, out: &mut BTreeSet<String>) {
    match expression {
        ast::Expression::Select { selector, variants } => {
            inline_variables(selector, out);
            for variant in variants {
                pattern_variables(&variant.value, out);
            }
        }
        ast::Expression::Inline(inline) => inline_variables(inline, out),
    }
}

fn inline_variables(inline: &ast::InlineExpression<&str>, out: &mut BTreeSet<String>) {
    match inline {
        ast::InlineExpression::VariableReference { id } => {
            out.insert(id.name.to_owned());
        }
        ast::InlineExpression::Placeable { expression } => expression_variables(expression, out),
        _ => {}
    }
}

fn values(source: &str) -> BTreeMap<String, String> {
    let resource = fluent_syntax::parser::parse(source).expect("parses");
    resource
        .body
        .iter()
        .filter_map(|entry| match entry {
            ast::Entry::Message(m) => Some((
                m.id.name.to_owned(),
                m.value
                    .as_ref()
                    .map(|p| format!("{p:?}"))
                    .unwrap_or_default(),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn every_language_has_every_message_with_the_same_variables() {
    let english = messages(SOURCES[0].1);
    assert!(english.len() > 50, "the English reference is loaded");
    let eu: BTreeSet<Language> = Language::EU.into_iter().collect();
    let covered: BTreeSet<Language> = SOURCES.iter().map(|(l, _)| *l).collect();
    assert_eq!(covered, eu, "one message file per EU language");
    for (language, source) in &SOURCES[1..] {
        let translated = messages(source);
        for (id, variables) in &english {
            let Some(theirs) = translated.get(id) else {
                panic!("{language}: message {id} is missing");
            };
            assert_eq!(
                theirs, variables,
                "{language}: message {id} has other variables"
            );
        }
        for id in translated.keys() {
            assert!(
                english.contains_key(id),
                "{language}: message {id} is not in English"
            );
        }
    }
}

#[test]
fn nothing_is_left_untranslated_in_english() {
    let english = values(SOURCES[0].1);
    let mut untranslated = vec![];
    for (language, source) in &SOURCES[1..] {
        for (id, value) in values(source) {
            if english.get(&id) == Some(&value) {
                untranslated.push(format!("{language}: {id}"));
            }
        }
    }
    assert!(
        untranslated.is_empty(),
        "still in English: {untranslated:?}"
    );
}

#[test]
fn every_message_the_pages_use_exists() {
    let english = messages(SOURCES[0].1);
    for (name, text) in crate::views::TEMPLATE_SOURCES {
        for call in [
            "t.get(\"",
            "t.with(\"",
            "t.with2(\"",
            "t.count(\"",
            "t.count2(\"",
        ] {
            for (at, _) in text.match_indices(call) {
                let rest = &text[at + call.len()..];
                let id = &rest[..rest.find('"').expect("closing quote")];
                assert!(english.contains_key(id), "{name} uses missing message {id}");
            }
        }
    }
    for id in crate::views::dynamic_message_ids() {
        assert!(english.contains_key(&id), "pages use missing message {id}");
    }
    for id in crate::error::MESSAGE_IDS {
        assert!(english.contains_key(*id), "errors use missing message {id}");
    }
}

#[test]
fn messages_format_without_isolation_marks() {
    let tr = Locales::builtin().tr(Language::Fi);
    let text = tr.with("signed-in-as", "name", "Aino Virtanen");
    assert!(text.contains("Aino Virtanen"), "{text}");
    assert!(!text.contains('\u{2068}'), "{text:?}");
    let en = Locales::builtin().tr(Language::En);
    assert_eq!(en.count("search-results", "count", 1), "1 result");
    assert_eq!(en.count("search-results", "count", 3), "3 results");
}

#[test]
fn an_explicit_choice_wins_then_the_profile_then_the_browser_then_the_node() {
    let browser = Some("pt-PT,pt;q=0.9,en;q=0.8");
    assert_eq!(
        negotiate(
            Some(Language::Fi),
            Some(Language::Sv),
            browser,
            Language::De
        ),
        Language::Fi
    );
    assert_eq!(
        negotiate(None, Some(Language::Sv), browser, Language::De),
        Language::Sv
    );
    assert_eq!(negotiate(None, None, browser, Language::De), Language::Pt);
    assert_eq!(negotiate(None, None, None, Language::De), Language::De);
    // Languages without pages are passed over.
    assert_eq!(
        negotiate(Some(Language::Is), Some(Language::No), None, Language::Is),
        Language::En
    );
}

#[test]
fn accept_language_follows_quality_then_order() {
    assert_eq!(
        from_accept_language("en;q=0.5, fi;q=0.9, sv"),
        Some(Language::Sv)
    );
    assert_eq!(from_accept_language("fi-FI, en"), Some(Language::Fi));
    assert_eq!(from_accept_language("xx, de;q=0.1"), Some(Language::De));
    assert_eq!(from_accept_language("fr;q=0, it;q=0.2"), Some(Language::It));
    assert_eq!(from_accept_language("*"), None);
    assert_eq!(from_accept_language("fi;q=banana"), None);
    assert_eq!(from_accept_language(""), None);
}
