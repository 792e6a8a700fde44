//! Plans, creation types, price schedules and packs.

use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::domain::catalog::{Pack, Plan, TypeRange};
use crate::domain::money::{Cents, Credits};
use crate::domain::pricing::{CreationType, Illustrations, Rule, RuleKind, Schedule};

pub async fn plans(conn: &mut PgConnection) -> sqlx::Result<Vec<Plan>> {
    sqlx::query_as!(
        Plan,
        r#"SELECT id, name, price_cents AS "price_cents: Cents", credits_per_period, rollover_cap, features, allows_4k, allows_api,
                  daily_generations::bigint AS "daily_generations!", monthly_credits,
                  concurrent_renders::bigint AS "concurrent_renders!"
           FROM plans ORDER BY position"#
    )
    .fetch_all(conn)
    .await
}

pub async fn type_ranges(conn: &mut PgConnection) -> sqlx::Result<Vec<TypeRange>> {
    let rows =
        sqlx::query!("SELECT id, min_value, max_value FROM creation_types ORDER BY position")
            .fetch_all(conn)
            .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            Some(TypeRange {
                creation_type: CreationType::parse(&r.id)?,
                min: r.min_value.and_then(|v| u16::try_from(v).ok()),
                max: r.max_value.and_then(|v| u16::try_from(v).ok()),
            })
        })
        .collect())
}

/// Every version with its rules (a few dozen rows): the caller picks the one in force.
pub async fn schedules(conn: &mut PgConnection) -> sqlx::Result<Vec<Schedule>> {
    let versions =
        sqlx::query!("SELECT id, effective_from FROM price_schedules ORDER BY effective_from, id")
            .fetch_all(&mut *conn)
            .await?;
    let rules = sqlx::query!(
        "SELECT schedule_id, plan_id, creation_type, kind, up_to, variant, credits, percent FROM price_rules ORDER BY id"
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut schedules: Vec<Schedule> = versions
        .into_iter()
        .map(|v| Schedule {
            id: v.id,
            effective_from: v.effective_from,
            rules: Vec::new(),
        })
        .collect();
    for r in rules {
        let Some(creation_type) = CreationType::parse(&r.creation_type) else {
            continue;
        };
        let up_to = r.up_to.and_then(|v| u16::try_from(v).ok());
        let kind = match (r.kind.as_str(), r.credits, r.percent, r.variant.as_deref()) {
            ("tier", Some(credits), _, _) => RuleKind::Tier {
                up_to,
                credits: credits.into(),
            },
            ("surcharge_4k", Some(credits), _, _) => RuleKind::Surcharge4k {
                credits: credits.into(),
            },
            ("per_page", _, Some(percent), Some(variant)) => RuleKind::PerPage {
                illustrations: if variant == "riches" {
                    Illustrations::Rich
                } else {
                    Illustrations::Simple
                },
                percent: percent.into(),
            },
            // The table's CHECK constraints make other shapes impossible.
            _ => continue,
        };
        if let Some(schedule) = schedules.iter_mut().find(|s| s.id == r.schedule_id) {
            schedule.rules.push(Rule {
                plan: r.plan_id,
                creation_type,
                kind,
            });
        }
    }
    Ok(schedules)
}

/// The packs on sale: each pack's latest version, unless it retires the pack.
pub async fn packs(conn: &mut PgConnection) -> sqlx::Result<Vec<Pack>> {
    Ok(pack_versions(conn)
        .await?
        .into_iter()
        .filter(|v| v.on_sale)
        .map(|v| v.pack)
        .collect())
}

/// A pack as staff see it: its latest version, on sale or retired.
#[derive(Debug, Clone)]
pub struct PackVersion {
    pub version: i64,
    pub pack: Pack,
    pub on_sale: bool,
    pub created_at: OffsetDateTime,
}

/// Every pack's latest version, in the packs' order.
pub async fn pack_versions(conn: &mut PgConnection) -> sqlx::Result<Vec<PackVersion>> {
    let rows = sqlx::query!(
        r#"SELECT v.id, p.id AS pack_id, v.name, v.credits, v.price_cents, v.restricted_to, v.on_sale, v.created_at
           FROM packs p
           JOIN LATERAL (SELECT * FROM pack_versions v WHERE v.pack_id = p.id ORDER BY v.id DESC LIMIT 1) v ON true
           ORDER BY p.position"#
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| PackVersion {
            version: r.id,
            pack: Pack {
                id: r.pack_id,
                name: r.name,
                credits: Credits(r.credits),
                price_cents: Cents(r.price_cents),
                restricted_to: r.restricted_to.as_deref().and_then(CreationType::parse),
            },
            on_sale: r.on_sale,
            created_at: r.created_at,
        })
        .collect())
}

/// Whether `pack` is on sale now with this price and these credits (checked in the transaction
/// that takes an order, so a pack retired or repriced a moment ago on another instance is not
/// sold from a catalog kept in memory).
pub async fn pack_on_sale_as(conn: &mut PgConnection, pack: &Pack) -> sqlx::Result<bool> {
    let found = sqlx::query_scalar!(
        r#"SELECT (v.on_sale AND v.price_cents = $2 AND v.credits = $3) AS "ok!"
           FROM pack_versions v WHERE v.pack_id = $1 ORDER BY v.id DESC LIMIT 1"#,
        pack.id,
        pack.price_cents.0,
        pack.credits.0
    )
    .fetch_optional(conn)
    .await?;
    Ok(found == Some(true))
}

/// Locks the price schedules and packs against another staff edit until the transaction ends
/// (two versions published at once would each have read the same « before »).
pub async fn lock_for_edit(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query!("SELECT pg_advisory_xact_lock(hashtext('catalog-edit'))")
        .fetch_one(conn)
        .await?;
    Ok(())
}

/// A version of the schedule as staff list them.
pub struct VersionRow {
    pub id: i64,
    pub effective_from: OffsetDateTime,
    pub note: String,
    pub created_at: OffsetDateTime,
}

pub async fn versions(conn: &mut PgConnection) -> sqlx::Result<Vec<VersionRow>> {
    sqlx::query_as!(
        VersionRow,
        "SELECT id, effective_from, note, created_at FROM price_schedules ORDER BY effective_from DESC, id DESC"
    )
    .fetch_all(conn)
    .await
}

/// Publishes a version of the schedule with its rules; returns its id.
pub async fn insert_schedule(
    conn: &mut PgConnection,
    effective_from: OffsetDateTime,
    note: &str,
    rules: &[Rule],
    now: OffsetDateTime,
) -> sqlx::Result<i64> {
    let id = sqlx::query_scalar!(
        "INSERT INTO price_schedules (effective_from, note, created_at) VALUES ($1, $2, $3) RETURNING id",
        effective_from,
        note,
        now
    )
    .fetch_one(&mut *conn)
    .await?;
    for rule in rules {
        let (kind, up_to, variant, credits, percent): (&str, _, _, _, _) = match rule.kind {
            RuleKind::Tier { up_to, credits } => {
                ("tier", up_to.map(i32::from), None, Some(credits), None)
            }
            RuleKind::Surcharge4k { credits } => ("surcharge_4k", None, None, Some(credits), None),
            RuleKind::PerPage {
                illustrations,
                percent,
            } => (
                "per_page",
                None,
                Some(illustrations.id()),
                None,
                Some(percent),
            ),
        };
        // Values are bounded when parsed (domain::price_edit); out of range would break a CHECK.
        let credits = credits.and_then(|c| i32::try_from(c).ok());
        let percent = percent.and_then(|p| i32::try_from(p).ok());
        sqlx::query!(
            "INSERT INTO price_rules (schedule_id, plan_id, creation_type, kind, up_to, variant, credits, percent)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            id,
            rule.plan,
            rule.creation_type.id(),
            kind,
            up_to,
            variant,
            credits,
            percent
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(id)
}

/// Adds a pack (its first version); `false` when the id is taken.
pub async fn insert_pack(conn: &mut PgConnection, id: &str) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "INSERT INTO packs (id, position) SELECT $1, coalesce(max(position), 0) + 1 FROM packs
         ON CONFLICT (id) DO NOTHING",
        id
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn insert_pack_version(
    conn: &mut PgConnection,
    pack: &Pack,
    on_sale: bool,
    now: OffsetDateTime,
) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        "INSERT INTO pack_versions (pack_id, name, credits, price_cents, restricted_to, on_sale, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        pack.id,
        pack.name,
        pack.credits.0,
        pack.price_cents.0,
        pack.restricted_to.map(|t| t.id()),
        on_sale,
        now
    )
    .fetch_one(conn)
    .await
}
