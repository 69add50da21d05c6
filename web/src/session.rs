//! Web sessions kept in the node's store, through [`NodeInterface`].
//!
//! tower-sessions manages the cookie (HttpOnly, SameSite=Lax, Secure when
//! the UI is served over HTTPS) and the idle timeout; this store hands each
//! session record to the node as opaque bytes with its expiry, so sessions
//! survive a restart and the node's one store owns them.

use std::sync::Arc;

use async_trait::async_trait;
use imi_protocol::{Language, Timestamp, UserId};
use tower_sessions::Session;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};
use tracing::warn;

use crate::interface::{NodeInterface, StoredSession};

/// The session key of the signed-in user's id.
const USER: &str = "user";
/// The session key of the language chosen with the switcher.
const LANGUAGE: &str = "lang";

/// A [`SessionStore`] over the node's store.
#[derive(Clone)]
pub struct NodeSessions {
    node: Arc<dyn NodeInterface>,
}

impl std::fmt::Debug for NodeSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeSessions").finish_non_exhaustive()
    }
}

impl NodeSessions {
    /// Sessions kept by `node`.
    pub fn new(node: Arc<dyn NodeInterface>) -> NodeSessions {
        NodeSessions { node }
    }
}

fn backend(err: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(err.to_string())
}

/// A session whose data did not change is written again only when its
/// expiry moved this much: an idle timeout counts to the minute, and a page
/// view does not cost a write.
const EXPIRY_SLACK_SECS: i64 = 60;

#[async_trait]
impl SessionStore for NodeSessions {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // A new id that collides with a stored session gets another one.
        while self
            .node
            .load_session(&record.id.to_string())
            .await
            .map_err(backend)?
            .is_some()
        {
            record.id = Id::default();
        }
        self.save(record).await
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        if let Some(stored) = self.load(&record.id).await?
            && stored.data == record.data
            && (record.expiry_date - stored.expiry_date).whole_seconds() < EXPIRY_SLACK_SECS
            && record.expiry_date >= stored.expiry_date
        {
            return Ok(());
        }
        let data =
            serde_json::to_vec(record).map_err(|e| session_store::Error::Encode(e.to_string()))?;
        let expires_ms = record.expiry_date.unix_timestamp().max(0) as u64 * 1000;
        self.node
            .save_session(
                &record.id.to_string(),
                StoredSession {
                    data,
                    expires: Timestamp::from_millis(expires_ms),
                },
            )
            .await
            .map_err(backend)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let Some(stored) = self
            .node
            .load_session(&id.to_string())
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        match serde_json::from_slice::<Record>(&stored.data) {
            Ok(record) => Ok(Some(record)),
            Err(err) => {
                // A session that cannot be read is as good as none.
                warn!(error = %err, "unreadable web session dropped");
                Ok(None)
            }
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.node
            .delete_session(&id.to_string())
            .await
            .map_err(backend)
    }
}

/// The signed-in user of a session, if any.
pub(crate) async fn user(session: &Session) -> Option<UserId> {
    let text: String = session.get(USER).await.ok().flatten()?;
    text.parse().ok()
}

/// Signs `user` in: a new session id (no fixation), keeping the language.
pub(crate) async fn sign_in(session: &Session, user: UserId) -> Result<(), String> {
    session.cycle_id().await.map_err(|e| e.to_string())?;
    session
        .insert(USER, user.to_string())
        .await
        .map_err(|e| e.to_string())
}

/// Ends the session: its data and its cookie go.
pub(crate) async fn sign_out(session: &Session) {
    if let Err(err) = session.flush().await {
        warn!(error = %err, "session not removed");
    }
}

/// The language chosen with the switcher in this session.
pub(crate) async fn language(session: &Session) -> Option<Language> {
    let text: String = session.get(LANGUAGE).await.ok().flatten()?;
    text.parse().ok()
}

/// Remembers the language chosen with the switcher.
pub(crate) async fn set_language(session: &Session, language: Language) -> Result<(), String> {
    session
        .insert(LANGUAGE, language.tag())
        .await
        .map_err(|e| e.to_string())
}
