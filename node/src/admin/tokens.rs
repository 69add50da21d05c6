//! API tokens: the bearer secrets national systems use to call the JSON API
//! (`/api/v1`) as one of the node's users, with that user's rights.
//!
//! A user creates their tokens in *My profile* (the operator may with
//! `imi-node token create`) and revokes them there; each has a name, an
//! expiry at most [`MAX_TOKEN_DAYS`] days ahead, and a user holds at most
//! [`MAX_TOKENS_PER_USER`] that have not expired. The secret is
//! `imi_` followed by 32 random bytes in base64url without padding; it is
//! shown once and never stored: the table `api-tokens-1` is keyed by its
//! SHA-256 (a fast hash is right for 256 random bits, which no one can
//! guess or search for), and holds the token's id (a ULID, to list and
//! revoke it by), its user, name, creation, expiry and last use. The table
//! `user-api-tokens-1` (user id ++ token id → SHA-256 of the secret) lists
//! each user's tokens, oldest first.
//!
//! A token works only while it has not expired and its user's account is
//! active in an active authority (checked on every use, as a web session
//! is). Its last use is written at most once a minute, lazily, so that the
//! API does not wait for the disk on every call. Expired tokens are removed
//! by [`Admin::purge_api_tokens`], and by the creation of a new token of the
//! same user.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use imi_protocol::{AuthorityStatus, Timestamp, UserId};
use redb::{ReadableTable, Table, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::info;
use ulid::Ulid;

use super::{AUTHORITIES, Admin, AuthorityRecord, StoredUser, USERS, encode, get};
use crate::store::StoreError;

/// API tokens: SHA-256 of the secret → [`TokenRecord`].
pub(crate) const API_TOKENS: TableDefinition<'_, &[u8], &[u8]> =
    TableDefinition::new("api-tokens-1");
/// Each user's tokens: user id ++ token id → SHA-256 of the secret.
pub(crate) const USER_API_TOKENS: TableDefinition<'_, &[u8], &[u8]> =
    TableDefinition::new("user-api-tokens-1");

/// Most tokens a user holds at once (expired ones do not count).
pub const MAX_TOKENS_PER_USER: usize = 20;
/// Longest validity of a token, in days from its creation.
pub const MAX_TOKEN_DAYS: u64 = 366;
/// Longest token name, in characters (after trimming).
pub const MAX_TOKEN_NAME_CHARS: usize = 100;
/// The beginning of every secret, so that one is recognised when it leaks
/// (in a log, a repository).
pub const SECRET_PREFIX: &str = "imi_";
/// A token's last use is written again only when the stored one is at least
/// this old (milliseconds).
const LAST_USED_EVERY_MS: u64 = 60_000;
/// Length of a secret: the prefix and 32 bytes in base64url (43 characters).
const SECRET_LEN: usize = 4 + 43;

/// The id of an API token (a ULID): what lists show and revocation names,
/// never the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiTokenId(Ulid);

impl ApiTokenId {
    fn to_bytes(self) -> [u8; 16] {
        self.0.to_bytes()
    }

    fn from_bytes(bytes: [u8; 16]) -> ApiTokenId {
        ApiTokenId(Ulid::from_bytes(bytes))
    }
}

impl fmt::Display for ApiTokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A text that is not a token id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a token id; token ids are 26 characters, as `imi-node token list` shows them"
)]
pub struct BadTokenId(pub String);

impl FromStr for ApiTokenId {
    type Err = BadTokenId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ulid::from_string(text.trim())
            .map(ApiTokenId)
            .map_err(|_| BadTokenId(text.chars().take(40).collect()))
    }
}

/// An API token as stored and listed: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Its id.
    pub id: ApiTokenId,
    /// The user it acts for.
    pub user: UserId,
    /// The name its user gave it.
    pub name: String,
    /// When it was created.
    pub created: Timestamp,
    /// When it stops working.
    pub expires: Timestamp,
    /// When it was last used (written at most once a minute).
    pub last_used: Option<Timestamp>,
}

/// A token just created, with its secret: the only time the secret exists
/// outside its holder's hands.
#[derive(Clone, PartialEq, Eq)]
pub struct CreatedApiToken {
    /// The token.
    pub token: ApiToken,
    /// The bearer secret (`imi_…`).
    pub secret: String,
}

impl fmt::Debug for CreatedApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedApiToken")
            .field("token", &self.token)
            .field("secret", &"…")
            .finish()
    }
}

/// The stored form of a token (postcard).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TokenRecord {
    id: [u8; 16],
    user: UserId,
    name: String,
    created: Timestamp,
    expires: Timestamp,
    last_used: Option<Timestamp>,
}

impl TokenRecord {
    fn token(&self) -> ApiToken {
        ApiToken {
            id: ApiTokenId::from_bytes(self.id),
            user: self.user,
            name: self.name.clone(),
            created: self.created,
            expires: self.expires,
            last_used: self.last_used,
        }
    }
}

/// Why a token could not be created, revoked or used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The name is empty or too long.
    #[error("give the token a name of 1 to 100 characters, saying what uses it")]
    Name,
    /// The expiry is past, or too far ahead.
    #[error("a token must expire in the future and at most 366 days from now")]
    Expiry,
    /// The user holds as many tokens as allowed.
    #[error("you already hold 20 API tokens, the most a user may; revoke one you no longer use")]
    TooMany,
    /// No such token (of this user).
    #[error("there is no API token {0}; it may have been revoked already")]
    UnknownToken(ApiTokenId),
    /// No such user on the node.
    #[error("there is no user {0} on this node")]
    UnknownUser(String),
    /// The secret is unknown, revoked or expired.
    #[error("the API token is unknown, revoked or expired")]
    NotValid,
    /// The token's user is deactivated.
    #[error("the account is deactivated")]
    Deactivated,
    /// The token's user's authority is not active.
    #[error("the user's authority is not active")]
    AuthorityNotActive,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

// The redb errors met inside a write, as store failures.
impl From<redb::TableError> for TokenError {
    fn from(err: redb::TableError) -> Self {
        TokenError::Store(err.into())
    }
}

impl From<redb::StorageError> for TokenError {
    fn from(err: redb::StorageError) -> Self {
        TokenError::Store(err.into())
    }
}

/// The SHA-256 of a secret: the key it is stored under.
fn secret_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn index_key(user: UserId, id: ApiTokenId) -> [u8; 32] {
    let mut key = [0; 32];
    key[..16].copy_from_slice(&user.to_bytes());
    key[16..].copy_from_slice(&id.to_bytes());
    key
}

fn hash_of(value: &[u8]) -> Result<[u8; 32], StoreError> {
    value
        .try_into()
        .map_err(|_| StoreError::corrupt("API token index", "the hash is not 32 bytes"))
}

/// The user's tokens, oldest first, with the hash each is stored under.
fn tokens_of(
    index: &impl ReadableTable<&'static [u8], &'static [u8]>,
    tokens: &impl ReadableTable<&'static [u8], &'static [u8]>,
    user: UserId,
) -> Result<Vec<([u8; 32], TokenRecord)>, StoreError> {
    let from = index_key(user, ApiTokenId::from_bytes([0; 16]));
    let to = index_key(user, ApiTokenId::from_bytes([0xff; 16]));
    let mut found = Vec::new();
    for entry in index.range(from.as_slice()..=to.as_slice())? {
        let (_, hash) = entry?;
        let hash = hash_of(hash.value())?;
        if let Some(record) = get::<TokenRecord>(tokens, "API token", &hash)? {
            found.push((hash, record));
        }
    }
    Ok(found)
}

/// Removes a token and its index entry.
fn remove(
    index: &mut Table<'_, &'static [u8], &'static [u8]>,
    tokens: &mut Table<'_, &'static [u8], &'static [u8]>,
    hash: &[u8; 32],
    record: &TokenRecord,
) -> Result<(), StoreError> {
    tokens.remove(hash.as_slice())?;
    index.remove(index_key(record.user, ApiTokenId::from_bytes(record.id)).as_slice())?;
    Ok(())
}

/// Whether `user`'s stored account may act now: active, in an active
/// authority.
fn check_account(
    users: &impl ReadableTable<&'static [u8], &'static [u8]>,
    authorities: &impl ReadableTable<&'static [u8], &'static [u8]>,
    user: UserId,
) -> Result<(), TokenError> {
    let stored: StoredUser = get(users, "user", &user.to_bytes())?
        .ok_or_else(|| TokenError::UnknownUser(user.to_string()))?;
    if !stored.account.user.active {
        return Err(TokenError::Deactivated);
    }
    let status = get::<AuthorityRecord>(
        authorities,
        "authority",
        &stored.account.user.authority.to_bytes(),
    )?
    .map_or(AuthorityStatus::Deactivated, |r| r.authority.status);
    if status != AuthorityStatus::Active {
        return Err(TokenError::AuthorityNotActive);
    }
    Ok(())
}

/// Creates the token tables, so readers never meet a missing one.
pub(crate) fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(API_TOKENS)?;
    tx.open_table(USER_API_TOKENS)?;
    Ok(())
}

impl Admin {
    /// The tokens of user `id` that have not expired, newest first.
    pub fn api_tokens(&self, id: UserId) -> Result<Vec<ApiToken>, TokenError> {
        let now = self.now();
        let tx = self.store.read()?;
        let users = tx.open_table(USERS).map_err(StoreError::from)?;
        if users
            .get(id.to_bytes().as_slice())
            .map_err(StoreError::from)?
            .is_none()
        {
            return Err(TokenError::UnknownUser(id.to_string()));
        }
        let index = tx.open_table(USER_API_TOKENS).map_err(StoreError::from)?;
        let tokens = tx.open_table(API_TOKENS).map_err(StoreError::from)?;
        let mut found: Vec<ApiToken> = tokens_of(&index, &tokens, id)?
            .into_iter()
            .filter(|(_, record)| record.expires > now)
            .map(|(_, record)| record.token())
            .collect();
        found.reverse();
        Ok(found)
    }

    /// Creates a token for user `id`, valid until `expires`, and returns it
    /// with its secret (never stored). The user's account must be active in
    /// an active authority; the name (trimmed) must have 1 to 100
    /// characters, the expiry be in the future and at most 366 days ahead,
    /// and the user hold fewer than 20 tokens that have not expired (their
    /// expired ones are removed in the same write). Whoever calls this has
    /// checked that the caller may: the user themselves (the web UI), or the
    /// operator (`imi-node token create`). A refused token writes nothing.
    pub async fn create_api_token(
        &self,
        id: UserId,
        name: &str,
        expires: Timestamp,
    ) -> Result<CreatedApiToken, TokenError> {
        let name = name.trim().to_owned();
        if name.is_empty() || name.chars().count() > MAX_TOKEN_NAME_CHARS {
            return Err(TokenError::Name);
        }
        let now = self.now();
        if expires <= now || expires > now.plus_days(MAX_TOKEN_DAYS) {
            return Err(TokenError::Expiry);
        }
        let secret = format!(
            "{SECRET_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
        );
        let hash = secret_hash(&secret);
        let record = TokenRecord {
            id: Ulid::from_parts(now.as_millis(), rand::random()).to_bytes(),
            user: id,
            name,
            created: now,
            expires,
            last_used: None,
        };
        let stored = record.clone();
        self.store
            .try_write(move |tx| {
                {
                    let users = tx.open_table(USERS)?;
                    let authorities = tx.open_table(AUTHORITIES)?;
                    check_account(&users, &authorities, id)?;
                }
                let mut index = tx.open_table(USER_API_TOKENS)?;
                let mut tokens = tx.open_table(API_TOKENS)?;
                let mut live = 0;
                for (old_hash, old) in tokens_of(&index, &tokens, id)? {
                    if old.expires > now {
                        live += 1;
                    } else {
                        remove(&mut index, &mut tokens, &old_hash, &old)?;
                    }
                }
                if live >= MAX_TOKENS_PER_USER {
                    return Err(TokenError::TooMany);
                }
                tokens.insert(hash.as_slice(), encode(&stored).as_slice())?;
                index.insert(
                    index_key(id, ApiTokenId::from_bytes(stored.id)).as_slice(),
                    hash.as_slice(),
                )?;
                Ok(())
            })
            .await?;
        let token = record.token();
        info!(user = %id, token = %token.id, expires = %token.expires, "api token created");
        Ok(CreatedApiToken { token, secret })
    }

    /// Revokes token `token` of user `id` at once: a user revokes only their
    /// own tokens (another user's token is unknown to them).
    pub async fn revoke_own_api_token(
        &self,
        id: UserId,
        token: ApiTokenId,
    ) -> Result<ApiToken, TokenError> {
        self.revoke(Some(id), token).await
    }

    /// Revokes token `token` of whichever user holds it: for the operator
    /// (`imi-node token revoke`).
    pub async fn revoke_api_token(&self, token: ApiTokenId) -> Result<ApiToken, TokenError> {
        self.revoke(None, token).await
    }

    async fn revoke(
        &self,
        owner: Option<UserId>,
        token: ApiTokenId,
    ) -> Result<ApiToken, TokenError> {
        let revoked = self
            .store
            .try_write(move |tx| {
                let mut index = tx.open_table(USER_API_TOKENS)?;
                let mut tokens = tx.open_table(API_TOKENS)?;
                let key = match owner {
                    Some(user) => index_key(user, token).to_vec(),
                    None => {
                        // The operator names the token only: find its user.
                        let mut found = None;
                        for entry in index.iter()? {
                            let (key, _) = entry?;
                            if key.value().get(16..) == Some(token.to_bytes().as_slice()) {
                                found = Some(key.value().to_vec());
                                break;
                            }
                        }
                        found.ok_or(TokenError::UnknownToken(token))?
                    }
                };
                let hash = match index.get(key.as_slice())? {
                    Some(hash) => hash_of(hash.value())?,
                    None => return Err(TokenError::UnknownToken(token)),
                };
                let record: TokenRecord =
                    get(&tokens, "API token", &hash)?.ok_or(TokenError::UnknownToken(token))?;
                remove(&mut index, &mut tokens, &hash, &record)?;
                Ok(record.token())
            })
            .await?;
        info!(user = %revoked.user, token = %revoked.id, by_operator = owner.is_none(), "api token revoked");
        Ok(revoked)
    }

    /// The user a bearer secret acts for: an unknown, revoked or expired
    /// secret is [`TokenError::NotValid`], and a token of a deactivated
    /// user or of an authority that is not active does not work either.
    /// Notes the use, at most once a minute per token, without waiting for
    /// the disk.
    pub async fn api_token_user(&self, secret: &str) -> Result<UserId, TokenError> {
        // Anything else was never issued here: no need to hash it.
        if secret.len() != SECRET_LEN || !secret.starts_with(SECRET_PREFIX) {
            return Err(TokenError::NotValid);
        }
        let hash = secret_hash(secret);
        let now = self.now();
        let record = {
            let tx = self.store.read()?;
            let tokens = tx.open_table(API_TOKENS).map_err(StoreError::from)?;
            let record: TokenRecord =
                get(&tokens, "API token", &hash)?.ok_or(TokenError::NotValid)?;
            if record.expires <= now {
                return Err(TokenError::NotValid);
            }
            let users = tx.open_table(USERS).map_err(StoreError::from)?;
            let authorities = tx.open_table(AUTHORITIES).map_err(StoreError::from)?;
            check_account(&users, &authorities, record.user)?;
            record
        };
        let stale = move |last: Option<Timestamp>| {
            last.is_none_or(|last| {
                now.as_millis().saturating_sub(last.as_millis()) >= LAST_USED_EVERY_MS
            })
        };
        if stale(record.last_used) {
            self.store
                .write_lazy(move |tx| {
                    let mut tokens = tx.open_table(API_TOKENS)?;
                    // Revoked meanwhile, or noted by a concurrent call: leave it.
                    let Some(mut current) = get::<TokenRecord>(&tokens, "API token", &hash)? else {
                        return Ok(());
                    };
                    if stale(current.last_used) {
                        current.last_used = Some(now);
                        tokens.insert(hash.as_slice(), encode(&current).as_slice())?;
                    }
                    Ok(())
                })
                .await?;
        }
        Ok(record.user)
    }

    /// Removes every token that has expired; returns how many.
    pub async fn purge_api_tokens(&self) -> Result<usize, TokenError> {
        let now = self.now();
        let removed = self
            .store
            .write_lazy(move |tx| {
                let mut index = tx.open_table(USER_API_TOKENS)?;
                let mut tokens = tx.open_table(API_TOKENS)?;
                let mut expired = Vec::new();
                for entry in tokens.iter()? {
                    let (hash, value) = entry?;
                    let record: TokenRecord = super::decode("API token", value.value())?;
                    if record.expires <= now {
                        expired.push((hash_of(hash.value())?, record));
                    }
                }
                for (hash, record) in &expired {
                    remove(&mut index, &mut tokens, hash, record)?;
                }
                Ok(expired.len())
            })
            .await?;
        if removed > 0 {
            info!(removed, "expired api tokens removed");
        }
        Ok(removed)
    }
}
