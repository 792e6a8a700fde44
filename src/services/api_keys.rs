//! The Plan Réseau API's keys: created by an owner (`/compte/api`) or by staff
//! (`nanoclip api-key create`), shown once, stored as their SHA-256, revocable, each acting for
//! its organisation.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use sha2::{Digest, Sha256};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::credits::CreditError;
use crate::cache::{Caches, Key, Slot};
use crate::db;
use crate::db::generations::ApiKey;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the plan has no API")]
    PlanWithoutApi,
    #[error("a key needs a name of 1 to 80 characters")]
    BadName,
    /// The same form was sent again (a reload): the key it made (named), not a second one.
    #[error("the key {0:?} was made from this form already")]
    AlreadyCreated(String),
    #[error(transparent)]
    Credit(#[from] CreditError),
}

impl From<sqlx::Error> for KeyError {
    fn from(e: sqlx::Error) -> Self {
        KeyError::Credit(e.into())
    }
}

pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new key for the organisation (Plan Réseau only): its id and its secret, shown once.
/// `form_key`: the form's own key (`/compte/api`), so that the same form sent twice makes one
/// key (`AlreadyCreated`).
pub async fn create(
    pool: &PgPool,
    organisation: Uuid,
    allows_api: bool,
    name: &str,
    created_by: &str,
    form_key: Option<&str>,
    now: OffsetDateTime,
) -> Result<(Uuid, String), KeyError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 80 || name.chars().any(char::is_control) {
        return Err(KeyError::BadName);
    }
    if !allows_api {
        return Err(KeyError::PlanWithoutApi);
    }
    let secret = crate::random::api_key();
    let hint: String = secret
        .chars()
        .take(crate::random::API_KEY_PREFIX.len() + 4)
        .collect();
    let mut conn = pool.acquire().await?;
    let form_key = form_key.filter(|k| !k.is_empty());
    let id = db::generations::create_api_key(
        &mut conn,
        organisation,
        name,
        &hint,
        &hash(&secret),
        created_by,
        form_key,
        now,
    )
    .await?;
    let Some(id) = id else {
        let made = match form_key {
            Some(key) => db::generations::api_key_of_form(&mut conn, organisation, key).await?,
            None => None,
        };
        return Err(KeyError::AlreadyCreated(made.unwrap_or_default()));
    };
    Ok((id, secret))
}

pub async fn list(pool: &PgPool, organisation: Uuid) -> Result<Vec<ApiKey>, KeyError> {
    let mut conn = pool.acquire().await?;
    Ok(db::generations::api_keys(&mut conn, organisation).await?)
}

pub async fn revoke(
    pool: &PgPool,
    organisation: Uuid,
    id: Uuid,
    now: OffsetDateTime,
) -> Result<bool, KeyError> {
    let mut conn = pool.acquire().await?;
    Ok(db::generations::revoke_api_key(&mut conn, organisation, id, now).await?)
}

/// A key as the read cache keeps it, with the moment (Unix seconds) its use was last written.
struct Kept {
    key: ApiKey,
    noted_at: AtomicI64,
}

/// How often a key's date of last use is written, at most (per instance).
const USE_RESOLUTION_SECS: i64 = 60;

/// The key a bearer secret names, if it exists and is not revoked. Kept by the read cache
/// (`crate::cache`) until its organisation's access is touched (a member's write: a key
/// revoked, a plan changed; staff, payments, jobs and commands forget everything), so that an
/// API request usually costs no round trip before its own work. Its use is written at most once
/// a minute.
pub async fn authenticate(
    pool: &PgPool,
    caches: &Caches,
    secret: &str,
    now: OffsetDateTime,
) -> Result<Option<ApiKey>, KeyError> {
    if !secret.starts_with(crate::random::API_KEY_PREFIX) || secret.len() > 200 {
        return Ok(None);
    }
    let hash = hash(secret);
    let slot = Slot::ApiKey(hash.clone());
    let kept = match caches.get::<Kept>(&slot, now) {
        Some(kept) => kept,
        None => {
            let ticket = caches.ticket();
            let mut conn = pool.acquire().await?;
            let Some(key) = db::generations::api_key_by_hash(&mut conn, &hash).await? else {
                return Ok(None);
            };
            let kept = Arc::new(Kept {
                noted_at: AtomicI64::new(
                    key.last_used_at.map_or(i64::MIN, |at| at.unix_timestamp()),
                ),
                key,
            });
            if let Some(ticket) = ticket {
                let keys = vec![Key::Access(kept.key.organisation_id)];
                caches.put(slot, ticket, keys, kept.clone(), now, None);
            }
            kept
        }
    };
    let noted = kept.noted_at.load(Ordering::Acquire);
    let at = now.unix_timestamp();
    if at.saturating_sub(noted) > USE_RESOLUTION_SECS
        && kept
            .noted_at
            .compare_exchange(noted, at, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    {
        let mut conn = pool.acquire().await?;
        db::generations::note_api_key_use(&mut conn, kept.key.id, now).await?;
    }
    Ok(Some(kept.key.clone()))
}
