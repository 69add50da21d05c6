//! Passwords: the policy a new password must meet, and Argon2id hashing.
//!
//! Hashes are PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$…`), so each one
//! carries its own parameters: a hash made with other settings still
//! verifies, and is replaced by one with the current settings at the next
//! successful sign-in. Hashing runs on tokio's blocking pool.

use std::fmt;

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};

/// The fewest characters a password may have.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The most characters a password may have.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// A password as typed. Its `Debug` output hides the text, so it never ends
/// up in a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps the text of a password.
    pub fn new(text: impl Into<String>) -> Password {
        Password(text.into())
    }

    /// The password's text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(hidden)")
    }
}

impl From<String> for Password {
    fn from(text: String) -> Self {
        Password(text)
    }
}

impl From<&str> for Password {
    fn from(text: &str) -> Self {
        Password(text.to_owned())
    }
}

/// Why a new password is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeakPassword {
    /// Fewer characters than [`MIN_PASSWORD_CHARS`].
    #[error(
        "it has {chars} characters and needs at least {MIN_PASSWORD_CHARS}; a few unrelated words in a row make a good one"
    )]
    TooShort {
        /// How many characters it has.
        chars: usize,
    },
    /// More characters than [`MAX_PASSWORD_CHARS`].
    #[error("it has {chars} characters and may have at most {MAX_PASSWORD_CHARS}")]
    TooLong {
        /// How many characters it has.
        chars: usize,
    },
    /// The password contains the login.
    #[error("it contains the login; choose one that does not")]
    ContainsLogin,
    /// One character repeated.
    #[error("it repeats a single character; choose one with more variety")]
    OneCharacter,
}

/// Checks a new password for `login` against the policy.
pub fn check_password_policy(password: &Password, login: &str) -> Result<(), WeakPassword> {
    let text = password.expose();
    let chars = text.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(WeakPassword::TooShort { chars });
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(WeakPassword::TooLong { chars });
    }
    let mut all = text.chars();
    let first = all.next();
    if all.all(|c| Some(c) == first) {
        return Err(WeakPassword::OneCharacter);
    }
    let login = login.trim().to_lowercase();
    if !login.is_empty() && text.to_lowercase().contains(&login) {
        return Err(WeakPassword::ContainsLogin);
    }
    Ok(())
}

/// How much work and memory one password hash costs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HashCost {
    /// The `argon2` crate's recommended parameters (19 MiB, 2 passes, one
    /// lane): what every production node uses.
    #[default]
    Standard,
    /// The smallest parameters Argon2 allows (8 KiB, 1 pass). Only for tests
    /// and throw-away training networks, where thousands of accounts are made
    /// and the passwords protect nothing.
    Minimal,
}

impl HashCost {
    fn params(self) -> Params {
        match self {
            HashCost::Standard => Params::DEFAULT,
            HashCost::Minimal => Params::new(Params::MIN_M_COST, Params::MIN_T_COST, 1, None)
                .expect("the minimal argon2 parameters are valid"),
        }
    }

    fn hasher(self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params())
    }
}

/// A password could not be hashed or checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the password could not be hashed: {0}")]
pub struct HashingFailed(pub(crate) String);

/// Hashes `password` on the blocking pool; returns the PHC string.
pub(crate) async fn hash(cost: HashCost, password: Password) -> Result<String, HashingFailed> {
    tokio::task::spawn_blocking(move || {
        cost.hasher()
            .hash_password(password.expose().as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|err| HashingFailed(err.to_string()))
    })
    .await
    .map_err(|err| HashingFailed(err.to_string()))?
}

/// Whether `password` matches the PHC string `phc`, checked on the blocking
/// pool with the parameters stored in `phc`.
pub(crate) async fn verify(password: String, phc: String) -> Result<bool, HashingFailed> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&phc).map_err(|err| HashingFailed(err.to_string()))?;
        match Argon2::default().verify_password(password.as_bytes(), &parsed) {
            Ok(()) => Ok(true),
            Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
            Err(err) => Err(HashingFailed(err.to_string())),
        }
    })
    .await
    .map_err(|err| HashingFailed(err.to_string()))?
}

/// Whether the PHC string `phc` was made with other settings than `cost`
/// (and so should be replaced after the next successful sign-in).
pub(crate) fn needs_rehash(phc: &str, cost: HashCost) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return true;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return true;
    };
    let wanted = cost.params();
    parsed.algorithm.as_str() != argon2::ARGON2ID_IDENT.as_str()
        || parsed.version != Some(Version::V0x13 as u32)
        || params.m_cost() != wanted.m_cost()
        || params.t_cost() != wanted.t_cost()
        || params.p_cost() != wanted.p_cost()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_what_is_wrong() {
        let check = |p: &str| check_password_policy(&Password::from(p), "maria.silva");
        assert_eq!(
            check("short pass"),
            Err(WeakPassword::TooShort { chars: 10 })
        );
        // Characters, not bytes: twelve accented letters are enough.
        assert_eq!(check("ááááááéééééé"), Ok(()));
        assert_eq!(check("aaaaaaaaaaaaaaaa"), Err(WeakPassword::OneCharacter));
        assert_eq!(
            check("my name is Maria.Silva!"),
            Err(WeakPassword::ContainsLogin)
        );
        assert_eq!(
            check(&"x y".repeat(400)),
            Err(WeakPassword::TooLong { chars: 1200 })
        );
        assert_eq!(check("correct horse battery"), Ok(()));
        let message = check("short").unwrap_err().to_string();
        assert!(message.contains("at least 12"), "{message}");
    }

    #[test]
    fn passwords_never_show_in_debug_output() {
        let shown = format!("{:?}", Password::from("correct horse battery"));
        assert!(!shown.contains("horse"), "{shown}");
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let phc = hash(HashCost::Minimal, Password::from("correct horse battery"))
            .await
            .unwrap();
        assert!(phc.starts_with("$argon2id$v=19$"), "{phc}");
        assert!(!phc.contains("horse"));
        assert!(
            verify("correct horse battery".into(), phc.clone())
                .await
                .unwrap()
        );
        assert!(
            !verify("correct horse battery!".into(), phc.clone())
                .await
                .unwrap()
        );
        assert!(!needs_rehash(&phc, HashCost::Minimal));
        assert!(needs_rehash(&phc, HashCost::Standard));
        assert!(verify("x".into(), "not a hash".into()).await.is_err());
    }
}
