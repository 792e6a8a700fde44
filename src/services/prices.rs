//! Staff's changes to prices: a new version of the price schedule (dated today or later), packs
//! added, changed (a new version) or retired. Nothing is edited in place (the tables refuse it);
//! each change and its audit entry (who, why, before, after) are one transaction.

use serde_json::json;
use sqlx::PgPool;
use time::{Date, OffsetDateTime};

use super::fault::Fault;
use crate::db;
use crate::db::audit::Entry;
use crate::domain::catalog::Pack;
use crate::domain::price_edit::{Problem, Problems, paris_midnight};
use crate::domain::pricing::{Rule, RuleKind, Schedule};

#[derive(Debug, thiserror::Error)]
pub enum PriceError {
    #[error("refused")]
    Refused(Problems),
    #[error("unknown pack")]
    UnknownPack,
    #[error(transparent)]
    Fault(#[from] Fault),
}

impl From<sqlx::Error> for PriceError {
    fn from(error: sqlx::Error) -> Self {
        Self::Fault(error.into())
    }
}

/// A rule as the audit log keeps it.
fn rule_json(rule: &Rule) -> serde_json::Value {
    let (kind, up_to, variant, value) = match rule.kind {
        RuleKind::Tier { up_to, credits } => ("tier", up_to, None, credits),
        RuleKind::Surcharge4k { credits } => ("surcharge_4k", None, None, credits),
        RuleKind::PerPage {
            illustrations,
            percent,
        } => ("per_page", None, Some(illustrations.id()), percent),
    };
    json!({
        "plan": rule.plan,
        "type": rule.creation_type.id(),
        "kind": kind,
        "up_to": up_to,
        "variant": variant,
        "value": value,
    })
}

fn schedule_json(schedule: &Schedule) -> serde_json::Value {
    json!({
        "version": schedule.id,
        "effective_from": schedule.effective_from.unix_timestamp(),
        "rules": schedule.rules.iter().map(rule_json).collect::<Vec<_>>(),
    })
}

/// Publishes a version taking effect on `date` (Europe/Paris, today or later) with `rules`.
/// `base` is the version the form was filled from: when another was published since, the form
/// is stale and refused. Returns the new version's id.
#[allow(clippy::too_many_arguments)]
pub async fn publish_schedule(
    pool: &PgPool,
    actor: &str,
    reason: &str,
    base: i64,
    date: Date,
    rules: &[Rule],
    today: Date,
    now: OffsetDateTime,
) -> Result<i64, PriceError> {
    if date < today {
        return Err(PriceError::Refused(vec![(
            "date".into(),
            Problem::DatePast,
        )]));
    }
    let mut tx = pool.begin().await.map_err(Fault::from)?;
    db::catalog::lock_for_edit(&mut tx).await?;
    let schedules = db::catalog::schedules(&mut tx).await?;
    let latest = schedules.iter().max_by_key(|s| s.id);
    if latest.map(|s| s.id) != Some(base) {
        return Err(PriceError::Refused(vec![("base".into(), Problem::Stale)]));
    }
    // Before: the version that was to apply on that date.
    let effective_from = paris_midnight(date);
    let before = Schedule::in_force(&schedules, effective_from).map(schedule_json);
    let id = db::catalog::insert_schedule(&mut tx, effective_from, reason, rules, now).await?;
    let after = schedule_json(&Schedule {
        id,
        effective_from,
        rules: rules.to_vec(),
    });
    db::audit::record(
        &mut tx,
        Entry {
            actor,
            organisation: None,
            action: "prices.schedule",
            reason,
            before,
            after: Some(after),
            now,
        },
    )
    .await?;
    tx.commit().await.map_err(Fault::from)?;
    Ok(id)
}

/// Adds a pack, on sale at once.
pub async fn add_pack(
    pool: &PgPool,
    actor: &str,
    reason: &str,
    pack: &Pack,
    now: OffsetDateTime,
) -> Result<(), PriceError> {
    let mut tx = pool.begin().await.map_err(Fault::from)?;
    db::catalog::lock_for_edit(&mut tx).await?;
    if !db::catalog::insert_pack(&mut tx, &pack.id).await? {
        return Err(PriceError::Refused(vec![("id".into(), Problem::IdTaken)]));
    }
    db::catalog::insert_pack_version(&mut tx, pack, true, now).await?;
    db::audit::record(
        &mut tx,
        Entry {
            actor,
            organisation: None,
            action: "prices.pack_add",
            reason,
            before: None,
            after: Some(json!({ "pack": pack, "on_sale": true })),
            now,
        },
    )
    .await?;
    tx.commit().await.map_err(Fault::from)?;
    Ok(())
}

/// A new version of a pack (`on_sale`: true for a change, false to retire it). Orders already
/// made keep the label, price and credits they copied; credits already granted are untouched.
async fn new_pack_version(
    pool: &PgPool,
    actor: &str,
    reason: &str,
    id: &str,
    change: Option<&Pack>,
    now: OffsetDateTime,
) -> Result<(), PriceError> {
    let mut tx = pool.begin().await.map_err(Fault::from)?;
    db::catalog::lock_for_edit(&mut tx).await?;
    let current = db::catalog::pack_versions(&mut tx)
        .await?
        .into_iter()
        .find(|v| v.pack.id == id)
        .ok_or(PriceError::UnknownPack)?;
    let (pack, on_sale, action) = match change {
        Some(pack) => (pack, true, "prices.pack_change"),
        None => (&current.pack, false, "prices.pack_retire"),
    };
    db::catalog::insert_pack_version(&mut tx, pack, on_sale, now).await?;
    db::audit::record(
        &mut tx,
        Entry {
            actor,
            organisation: None,
            action,
            reason,
            before: Some(json!({ "pack": current.pack, "on_sale": current.on_sale })),
            after: Some(json!({ "pack": pack, "on_sale": on_sale })),
            now,
        },
    )
    .await?;
    tx.commit().await.map_err(Fault::from)?;
    Ok(())
}

/// Changes a pack: its next version (name, credits, price, restriction), on sale.
pub async fn change_pack(
    pool: &PgPool,
    actor: &str,
    reason: &str,
    pack: &Pack,
    now: OffsetDateTime,
) -> Result<(), PriceError> {
    new_pack_version(pool, actor, reason, &pack.id, Some(pack), now).await
}

/// Retires a pack: no longer sold; credits bought with it are unaffected.
pub async fn retire_pack(
    pool: &PgPool,
    actor: &str,
    reason: &str,
    id: &str,
    now: OffsetDateTime,
) -> Result<(), PriceError> {
    new_pack_version(pool, actor, reason, id, None, now).await
}

/// What the prices page lists.
pub struct PricesFile {
    pub versions: Vec<db::catalog::VersionRow>,
    /// The latest version published: the form starts from its values.
    pub latest: Option<Schedule>,
    pub packs: Vec<db::catalog::PackVersion>,
}

pub async fn file(pool: &PgPool) -> Result<PricesFile, Fault> {
    let mut conn = pool.acquire().await?;
    let versions = db::catalog::versions(&mut conn).await?;
    let latest = db::catalog::schedules(&mut conn)
        .await?
        .into_iter()
        .max_by_key(|s| s.id);
    let packs = db::catalog::pack_versions(&mut conn).await?;
    Ok(PricesFile {
        versions,
        latest,
        packs,
    })
}
