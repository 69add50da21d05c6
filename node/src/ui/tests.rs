use imi_protocol::Timestamp;
use imi_web::StoredSession;

use super::sessions;
use crate::store::Store;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store.redb")).unwrap();
    (dir, store)
}

fn session(data: &[u8], expires_ms: u64) -> StoredSession {
    StoredSession {
        data: data.to_vec(),
        expires: Timestamp::from_millis(expires_ms),
    }
}

#[tokio::test]
async fn sessions_survive_in_the_store_until_they_expire() {
    let (_dir, store) = store();
    sessions::create_table(&store).await.unwrap();
    sessions::save(&store, "abc", session(b"{\"user\":1}", 2_000))
        .await
        .unwrap();
    sessions::save(&store, "old", session(b"{}", 500))
        .await
        .unwrap();
    let now = Timestamp::from_millis(1_000);
    assert_eq!(
        sessions::load(&store, "abc", now).unwrap(),
        Some(session(b"{\"user\":1}", 2_000))
    );
    // An expired session is never handed out, then purged.
    assert_eq!(sessions::load(&store, "old", now).unwrap(), None);
    assert_eq!(sessions::purge(&store, now).await.unwrap(), 1);
    assert_eq!(sessions::purge(&store, now).await.unwrap(), 0);
    sessions::delete(&store, "abc").await.unwrap();
    assert_eq!(sessions::load(&store, "abc", now).unwrap(), None);
}

#[tokio::test]
async fn oversized_sessions_are_refused_and_nothing_is_stored() {
    let (_dir, store) = store();
    sessions::create_table(&store).await.unwrap();
    let big = vec![b'x'; 17 * 1024];
    assert!(matches!(
        sessions::save(&store, "abc", session(&big, 2_000)).await,
        Err(sessions::SessionRefused::TooLarge(_))
    ));
    let long_id = "i".repeat(65);
    assert!(matches!(
        sessions::save(&store, &long_id, session(b"{}", 2_000)).await,
        Err(sessions::SessionRefused::Id)
    ));
    let now = Timestamp::from_millis(1_000);
    assert_eq!(sessions::load(&store, "abc", now).unwrap(), None);
}
