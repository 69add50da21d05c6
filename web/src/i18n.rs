//! The 24 EU languages of the pages: Project Fluent messages per language,
//! and the choice of a language for each request.
//!
//! Messages live in `web/locales/<tag>.ftl`, compiled into the binary.
//! English is the reference: every language has every English message with
//! the same variables (the completeness test checks it). A message missing
//! at run time falls back to English and is logged.

use std::sync::{Arc, OnceLock};

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use imi_protocol::Language;
use tracing::warn;

/// The Fluent sources of every UI language, English first.
pub(crate) const SOURCES: [(Language, &str); 24] = [
    (Language::En, include_str!("../locales/en.ftl")),
    (Language::Bg, include_str!("../locales/bg.ftl")),
    (Language::Cs, include_str!("../locales/cs.ftl")),
    (Language::Da, include_str!("../locales/da.ftl")),
    (Language::De, include_str!("../locales/de.ftl")),
    (Language::El, include_str!("../locales/el.ftl")),
    (Language::Es, include_str!("../locales/es.ftl")),
    (Language::Et, include_str!("../locales/et.ftl")),
    (Language::Fi, include_str!("../locales/fi.ftl")),
    (Language::Fr, include_str!("../locales/fr.ftl")),
    (Language::Ga, include_str!("../locales/ga.ftl")),
    (Language::Hr, include_str!("../locales/hr.ftl")),
    (Language::Hu, include_str!("../locales/hu.ftl")),
    (Language::It, include_str!("../locales/it.ftl")),
    (Language::Lt, include_str!("../locales/lt.ftl")),
    (Language::Lv, include_str!("../locales/lv.ftl")),
    (Language::Mt, include_str!("../locales/mt.ftl")),
    (Language::Nl, include_str!("../locales/nl.ftl")),
    (Language::Pl, include_str!("../locales/pl.ftl")),
    (Language::Pt, include_str!("../locales/pt.ftl")),
    (Language::Ro, include_str!("../locales/ro.ftl")),
    (Language::Sk, include_str!("../locales/sk.ftl")),
    (Language::Sl, include_str!("../locales/sl.ftl")),
    (Language::Sv, include_str!("../locales/sv.ftl")),
];

type Bundle = FluentBundle<FluentResource>;

/// Every language's messages, parsed once.
pub struct Locales {
    bundles: Vec<(Language, Bundle)>,
}

impl std::fmt::Debug for Locales {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locales")
            .field("languages", &self.bundles.len())
            .finish()
    }
}

impl Locales {
    /// The built-in messages of the 24 languages.
    pub fn builtin() -> Arc<Locales> {
        static LOCALES: OnceLock<Arc<Locales>> = OnceLock::new();
        LOCALES
            .get_or_init(|| {
                let bundles = SOURCES
                    .iter()
                    .map(|(language, source)| (*language, bundle(*language, source)))
                    .collect();
                Arc::new(Locales { bundles })
            })
            .clone()
    }

    fn bundle(&self, language: Language) -> &Bundle {
        self.bundles
            .iter()
            .find(|(l, _)| *l == language)
            .or_else(|| self.bundles.first())
            .map(|(_, b)| b)
            .expect("English messages are built in")
    }

    /// The translator for `language` (English for a language without UI
    /// messages).
    pub fn tr(self: &Arc<Self>, language: Language) -> Tr {
        let language = if is_ui_language(language) {
            language
        } else {
            Language::En
        };
        Tr {
            locales: Arc::clone(self),
            language,
        }
    }
}

fn bundle(language: Language, source: &str) -> Bundle {
    let resource = match FluentResource::try_new(source.to_owned()) {
        Ok(resource) => resource,
        Err((resource, errors)) => {
            warn!(language = %language, ?errors, "messages with syntax errors were skipped");
            resource
        }
    };
    let tag = language
        .tag()
        .parse()
        .unwrap_or_else(|_| unic_langid::LanguageIdentifier::default());
    let mut bundle = FluentBundle::new_concurrent(vec![tag]);
    // Pages are HTML: no Unicode isolation marks around placeables.
    bundle.set_use_isolating(false);
    if let Err(errors) = bundle.add_resource(resource) {
        warn!(language = %language, ?errors, "duplicate messages were skipped");
    }
    bundle
}

/// Whether the pages exist in `language` (the 24 EU languages).
pub(crate) fn is_ui_language(language: Language) -> bool {
    language.is_eu_official()
}

/// Messages in one language, for one page.
#[derive(Clone)]
pub struct Tr {
    locales: Arc<Locales>,
    language: Language,
}

impl std::fmt::Debug for Tr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tr")
            .field("language", &self.language)
            .finish()
    }
}

impl Tr {
    /// The language of the messages.
    pub fn language(&self) -> Language {
        self.language
    }

    /// The message `id`.
    pub fn get(&self, id: &str) -> String {
        self.format(id, None)
    }

    /// The name of a case's status as the node names it (`accepted`), as
    /// the case page shows it.
    pub fn status(&self, status: &str) -> String {
        self.get(&crate::views::status_message(status))
    }

    /// What a task asks for, as My tasks shows it.
    pub fn task(&self, kind: imi_protocol::TaskKind) -> String {
        self.get(crate::views::task_message(kind))
    }

    /// The message `id` with one variable.
    pub fn with(&self, id: &str, name: &str, value: &str) -> String {
        let mut args = FluentArgs::new();
        args.set(name.to_owned(), FluentValue::from(value.to_owned()));
        self.format(id, Some(&args))
    }

    /// The message `id` with two variables.
    pub fn with2(&self, id: &str, a: &str, a_value: &str, b: &str, b_value: &str) -> String {
        let mut args = FluentArgs::new();
        args.set(a.to_owned(), FluentValue::from(a_value.to_owned()));
        args.set(b.to_owned(), FluentValue::from(b_value.to_owned()));
        self.format(id, Some(&args))
    }

    /// The message `id` with one number (plural forms follow it).
    pub fn count(&self, id: &str, name: &str, value: impl Number) -> String {
        let mut args = FluentArgs::new();
        args.set(name.to_owned(), FluentValue::from(value.number()));
        self.format(id, Some(&args))
    }

    /// The message `id` with two numbers.
    pub fn count2(
        &self,
        id: &str,
        a: &str,
        a_value: impl Number,
        b: &str,
        b_value: impl Number,
    ) -> String {
        let mut args = FluentArgs::new();
        args.set(a.to_owned(), FluentValue::from(a_value.number()));
        args.set(b.to_owned(), FluentValue::from(b_value.number()));
        self.format(id, Some(&args))
    }

    fn format(&self, id: &str, args: Option<&FluentArgs<'_>>) -> String {
        for language in [self.language, Language::En] {
            let bundle = self.locales.bundle(language);
            if let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) {
                let mut errors = vec![];
                let text = bundle.format_pattern(pattern, args, &mut errors);
                if !errors.is_empty() {
                    warn!(message = id, language = %language, ?errors, "message formatted with errors");
                }
                return text.into_owned();
            }
            warn!(message = id, language = %language, "message missing");
        }
        id.to_owned()
    }
}

/// A count given to a message (templates pass numbers by reference).
pub trait Number {
    /// The count.
    fn number(&self) -> usize;
}

impl Number for usize {
    fn number(&self) -> usize {
        *self
    }
}

impl Number for &usize {
    fn number(&self) -> usize {
        **self
    }
}

/// The language of a page: an explicit choice, then the user's profile,
/// then the browser's `Accept-Language`, then the node's default. Only the
/// 24 UI languages are chosen.
pub fn negotiate(
    explicit: Option<Language>,
    profile: Option<Language>,
    accept_language: Option<&str>,
    default: Language,
) -> Language {
    explicit
        .filter(|l| is_ui_language(*l))
        .or(profile.filter(|l| is_ui_language(*l)))
        .or_else(|| accept_language.and_then(from_accept_language))
        .unwrap_or(if is_ui_language(default) {
            default
        } else {
            Language::En
        })
}

/// The UI language the browser prefers most, from an `Accept-Language`
/// header (`fi-FI,fi;q=0.9,en;q=0.8`).
pub fn from_accept_language(header: &str) -> Option<Language> {
    let mut ranked: Vec<(u16, usize, Language)> = header
        .split(',')
        .take(32)
        .enumerate()
        .filter_map(|(position, item)| {
            let mut parts = item.split(';');
            let tag = parts.next()?.trim();
            let primary = tag.split(['-', '_']).next()?.to_ascii_lowercase();
            let quality = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(Some(1000), parse_quality)?;
            let language = primary.parse::<Language>().ok()?;
            (quality > 0 && is_ui_language(language)).then_some((quality, position, language))
        })
        .collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    ranked.first().map(|(_, _, language)| *language)
}

/// A quality value (`0.8`) in thousandths; `None` when malformed.
fn parse_quality(text: &str) -> Option<u16> {
    let value: f32 = text.trim().parse().ok()?;
    (0.0..=1.0)
        .contains(&value)
        .then(|| (value * 1000.0).round() as u16)
}

#[cfg(test)]
mod tests;
