//! The session store behind actix-session: one row per session, keyed by the SHA-256 of the
//! cookie's key. Expired rows are never loaded; the `purge-sessions` job (`src/jobs/`) deletes
//! them.

use std::collections::HashMap;
use std::sync::Arc;

use actix_session::storage::{
    LoadError, SaveError, SessionKey, SessionStore, UpdateError, generate_session_key,
};
use actix_web::cookie::time::Duration;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::cache::{Caches, Key, Slot};

type State = HashMap<String, String>;

#[derive(Clone)]
pub struct PgSessionStore {
    pool: PgPool,
    /// Sessions read are kept there until one is written or deleted (by any instance).
    caches: Arc<Caches>,
}

impl PgSessionStore {
    pub fn new(pool: PgPool, caches: Arc<Caches>) -> Self {
        Self { pool, caches }
    }

    /// After a write of the session `hash` is committed.
    fn written(&self, hash: String) {
        self.caches.touch(&[Key::Session(hash)]);
    }
}

/// A session as kept in memory: its state, and when it expires (the database's clock, which
/// is the real time's).
struct Kept {
    state: State,
    expires_at: OffsetDateTime,
}

fn hash(key: &SessionKey) -> String {
    hex::encode(Sha256::digest(key.as_ref().as_bytes()))
}

/// The one key of the state `load` gives when the database is unreachable. actix-session turns
/// every store error into a bare 500 outside the error pages; this state lets the middleware just
/// inside it (`web::error::session_store_down`) answer the French 503 instead. It is never saved:
/// that middleware answers before any handler could change the session.
pub const UNAVAILABLE_KEY: &str = "__store_unavailable";

fn store_error(error: sqlx::Error) -> anyhow::Error {
    anyhow::Error::new(error).context("session store")
}

fn seconds(ttl: &Duration) -> f64 {
    ttl.as_seconds_f64()
}

impl SessionStore for PgSessionStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<State>, LoadError> {
        let hash = hash(key);
        let slot = Slot::Session(hash.clone());
        let now = OffsetDateTime::now_utc();
        if let Some(kept) = self.caches.get::<Kept>(&slot, now) {
            return Ok((kept.expires_at > now).then(|| kept.state.clone()));
        }
        let ticket = self.caches.ticket();
        let row = sqlx::query!(
            "SELECT state, expires_at FROM sessions WHERE key_hash = $1 AND expires_at > now()",
            hash
        )
        .fetch_optional(&self.pool)
        .await;
        let row = match row {
            Ok(row) => row,
            Err(error) if super::is_unavailable(&error) => {
                tracing::warn!("session store: database unavailable: {error}");
                return Ok(Some(State::from([(
                    UNAVAILABLE_KEY.to_owned(),
                    "true".to_owned(),
                )])));
            }
            Err(error) => return Err(LoadError::Other(store_error(error))),
        };
        let Some(row) = row else {
            return Ok(None);
        };
        let state: State =
            serde_json::from_value(row.state).map_err(|e| LoadError::Deserialization(e.into()))?;
        if let Some(ticket) = ticket {
            let kept = Arc::new(Kept {
                state: state.clone(),
                expires_at: row.expires_at,
            });
            let keys = vec![Key::Session(hash)];
            self.caches.put(slot, ticket, keys, kept, now, None);
        }
        Ok(Some(state))
    }

    async fn save(&self, state: State, ttl: &Duration) -> Result<SessionKey, SaveError> {
        let json = serde_json::to_value(&state).map_err(|e| SaveError::Serialization(e.into()))?;
        let key = generate_session_key();
        sqlx::query!(
            "INSERT INTO sessions (key_hash, state, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3))",
            hash(&key),
            json,
            seconds(ttl)
        )
        .execute(&self.pool)
        .await
        .map_err(|e| SaveError::Other(store_error(e)))?;
        self.written(hash(&key));
        Ok(key)
    }

    async fn update(
        &self,
        key: SessionKey,
        state: State,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let json =
            serde_json::to_value(&state).map_err(|e| UpdateError::Serialization(e.into()))?;
        let updated = sqlx::query!(
            "UPDATE sessions SET state = $2, expires_at = now() + make_interval(secs => $3)
             WHERE key_hash = $1 AND expires_at > now()",
            hash(&key),
            json,
            seconds(ttl)
        )
        .execute(&self.pool)
        .await
        .map_err(|e| UpdateError::Other(store_error(e)))?;
        self.written(hash(&key));
        if updated.rows_affected() == 1 {
            return Ok(key);
        }
        // The session vanished (expired, revoked): start a new one rather than resurrect it.
        self.save(state, ttl).await.map_err(|e| match e {
            SaveError::Serialization(e) => UpdateError::Serialization(e),
            SaveError::Other(e) => UpdateError::Other(e),
        })
    }

    async fn update_ttl(&self, key: &SessionKey, ttl: &Duration) -> anyhow::Result<()> {
        sqlx::query!(
            "UPDATE sessions SET expires_at = now() + make_interval(secs => $2) WHERE key_hash = $1",
            hash(key),
            seconds(ttl)
        )
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        self.written(hash(key));
        Ok(())
    }

    async fn delete(&self, key: &SessionKey) -> anyhow::Result<()> {
        sqlx::query!("DELETE FROM sessions WHERE key_hash = $1", hash(key))
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        self.written(hash(key));
        Ok(())
    }
}

/// Removes the sessions expired at `now` (the `purge-sessions` job); returns how many.
pub async fn purge_expired(
    conn: &mut sqlx::PgConnection,
    now: time::OffsetDateTime,
) -> sqlx::Result<u64> {
    Ok(
        sqlx::query!("DELETE FROM sessions WHERE expires_at <= $1", now)
            .execute(conn)
            .await?
            .rows_affected(),
    )
}
