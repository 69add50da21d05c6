//! Authorities, their competences, and users with their access rights.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::{AreaKey, AuthorityId, Country, Language, ProcedureKey, ProfessionKey, Role, UserId};

/// What an authority is competent for in one legislative area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Competence {
    /// The legislative area.
    pub area: AreaKey,
    /// The procedures of the area it takes part in (empty: all).
    pub procedures: BTreeSet<ProcedureKey>,
    /// The professions it is competent for (professional qualifications).
    pub professions: BTreeSet<ProfessionKey>,
    /// Other competences in words, in the authority's languages.
    pub other: Vec<String>,
}

/// How an authority is reached.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Street address.
    pub address: Option<String>,
    /// Postal code.
    pub postal_code: Option<String>,
    /// City or town.
    pub city: Option<String>,
    /// Region (NUTS region, Land, voivodeship, …).
    pub region: Option<String>,
    /// Functional email address.
    pub email: Option<String>,
    /// Telephone.
    pub phone: Option<String>,
    /// Website.
    pub website: Option<String>,
}

/// Where an authority stands in its registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthorityStatus {
    /// Registered (or invited), waiting for the national coordinator.
    Pending,
    /// Approved: published in the directory, its users may work.
    Active,
    /// The coordinator refused the registration.
    Rejected,
    /// No longer active (merged, dissolved).
    Deactivated,
}

/// A competent authority (or coordinator) of a country.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authority {
    /// Its id, the same on every node.
    pub id: AuthorityId,
    /// Its country.
    pub country: Country,
    /// Its names, in one or more languages (Belgian authorities in French,
    /// Dutch and German).
    pub names: BTreeMap<Language, String>,
    /// What it is competent for, per legislative area.
    pub competences: Vec<Competence>,
    /// How it is reached.
    pub contact: Contact,
    /// The languages its officials read and write.
    pub languages: BTreeSet<Language>,
    /// Where it stands.
    pub status: AuthorityStatus,
}

/// An authority description that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAuthority {
    /// No name at all.
    #[error("an authority needs a name in at least one language")]
    NoName,
    /// A name is blank.
    #[error("the {0} name of the authority is blank")]
    BlankName(Language),
    /// No competence.
    #[error("an authority needs a competence in at least one legislative area")]
    NoCompetence,
    /// Two competences for the same area.
    #[error("the legislative area {0} is listed twice")]
    DuplicateArea(AreaKey),
    /// A competence the catalogue does not know.
    #[error("{0} is not in the catalogue")]
    UnknownKey(String),
    /// No working language.
    #[error("an authority needs at least one working language")]
    NoLanguage,
}

impl Authority {
    /// Checks the description against the catalogue.
    pub fn validate(&self, catalogue: &crate::Catalogue) -> Result<(), InvalidAuthority> {
        if self.names.is_empty() {
            return Err(InvalidAuthority::NoName);
        }
        if let Some((language, _)) = self.names.iter().find(|(_, n)| n.trim().is_empty()) {
            return Err(InvalidAuthority::BlankName(*language));
        }
        if self.competences.is_empty() {
            return Err(InvalidAuthority::NoCompetence);
        }
        if self.languages.is_empty() {
            return Err(InvalidAuthority::NoLanguage);
        }
        let mut seen = BTreeSet::new();
        for competence in &self.competences {
            if !seen.insert(competence.area.clone()) {
                return Err(InvalidAuthority::DuplicateArea(competence.area.clone()));
            }
            if catalogue.area(&competence.area).is_none() {
                return Err(InvalidAuthority::UnknownKey(format!(
                    "legislative area {}",
                    competence.area
                )));
            }
            for procedure in &competence.procedures {
                if catalogue.procedure(procedure).is_none() {
                    return Err(InvalidAuthority::UnknownKey(format!(
                        "procedure {procedure}"
                    )));
                }
            }
            for profession in &competence.professions {
                if catalogue.profession(profession).is_none() {
                    return Err(InvalidAuthority::UnknownKey(format!(
                        "profession {profession}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The name to show a reader of `language`: that language's name, else
    /// the first name the authority has.
    pub fn name_in(&self, language: Language) -> &str {
        self.names
            .get(&language)
            .or_else(|| self.names.values().next())
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// Whether the authority is competent in `area`.
    pub fn is_competent_in(&self, area: &AreaKey) -> bool {
        self.competences.iter().any(|c| &c.area == area)
    }
}

/// A user account of an official on a country's node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Its id.
    pub id: UserId,
    /// The authority the user works for.
    pub authority: AuthorityId,
    /// Sign-in name, unique on the node.
    pub login: String,
    /// Full name.
    pub name: String,
    /// Email address (for task notifications).
    pub email: String,
    /// Interface language.
    pub language: Language,
    /// Roles per legislative area; the key `*` holds roles for every area
    /// (authority administrator, national coordinator).
    pub access: BTreeMap<String, BTreeSet<Role>>,
    /// Whether the account may sign in.
    pub active: bool,
}

/// The key of [`User::access`] that holds roles for every area.
pub const ALL_AREAS: &str = "*";

impl User {
    /// The user's roles for `area` (including those for every area).
    pub fn roles_for(&self, area: &str) -> BTreeSet<Role> {
        let mut roles = self.access.get(area).cloned().unwrap_or_default();
        if let Some(all) = self.access.get(ALL_AREAS) {
            roles.extend(all.iter().copied());
        }
        roles
    }

    /// The actor this user is when working on a case of `area`.
    pub fn actor_for(&self, country: Country, area: &str) -> crate::Actor {
        crate::Actor {
            user: self.id,
            authority: self.authority,
            country,
            roles: self.roles_for(area),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Catalogue;

    fn doctors_chamber() -> Authority {
        Authority {
            id: AuthorityId::new(),
            country: Country::Pt,
            names: [(Language::Pt, "Ordem dos Médicos".to_owned())].into(),
            competences: vec![Competence {
                area: "professional-qualifications".parse().unwrap(),
                procedures: BTreeSet::new(),
                professions: ["doctor".parse().unwrap()].into(),
                other: vec![],
            }],
            contact: Contact {
                city: Some("Lisboa".into()),
                ..Contact::default()
            },
            languages: [Language::Pt, Language::En].into(),
            status: AuthorityStatus::Active,
        }
    }

    #[test]
    fn a_real_looking_authority_is_valid() {
        let authority = doctors_chamber();
        authority.validate(Catalogue::builtin()).unwrap();
        assert_eq!(authority.name_in(Language::Fi), "Ordem dos Médicos");
        assert!(authority.is_competent_in(&"professional-qualifications".parse().unwrap()));
    }

    #[test]
    fn descriptions_that_cannot_be_used_are_refused_with_the_reason() {
        let catalogue = Catalogue::builtin();
        let mut a = doctors_chamber();
        a.names.clear();
        assert_eq!(a.validate(catalogue), Err(InvalidAuthority::NoName));
        let mut a = doctors_chamber();
        a.names.insert(Language::En, "  ".into());
        assert_eq!(
            a.validate(catalogue),
            Err(InvalidAuthority::BlankName(Language::En))
        );
        let mut a = doctors_chamber();
        a.competences[0]
            .professions
            .insert("astronaut".parse().unwrap());
        assert!(
            matches!(a.validate(catalogue), Err(InvalidAuthority::UnknownKey(k)) if k.contains("astronaut"))
        );
        let mut a = doctors_chamber();
        a.competences.push(a.competences[0].clone());
        assert!(matches!(
            a.validate(catalogue),
            Err(InvalidAuthority::DuplicateArea(_))
        ));
        let mut a = doctors_chamber();
        a.languages.clear();
        assert_eq!(a.validate(catalogue), Err(InvalidAuthority::NoLanguage));
    }

    #[test]
    fn roles_for_every_area_apply_to_each_area() {
        let user = User {
            id: UserId::new(),
            authority: AuthorityId::new(),
            login: "maria".into(),
            name: "Maria Silva".into(),
            email: "maria@example.pt".into(),
            language: Language::Pt,
            access: [
                (
                    "professional-qualifications".to_owned(),
                    [Role::RequestHandler].into(),
                ),
                (ALL_AREAS.to_owned(), [Role::AuthorityAdministrator].into()),
            ]
            .into(),
            active: true,
        };
        let roles = user.roles_for("professional-qualifications");
        assert!(
            roles.contains(&Role::RequestHandler) && roles.contains(&Role::AuthorityAdministrator)
        );
        let roles = user.roles_for("services");
        assert!(
            !roles.contains(&Role::RequestHandler) && roles.contains(&Role::AuthorityAdministrator)
        );
        assert_eq!(user.actor_for(Country::Pt, "services").roles, roles);
    }
}
