//! Plans, creation types, price schedules and packs.

use sqlx::PgConnection;

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
        sqlx::query!("SELECT id, effective_from FROM price_schedules ORDER BY effective_from")
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

pub async fn packs(conn: &mut PgConnection) -> sqlx::Result<Vec<Pack>> {
    let rows = sqlx::query!("SELECT id, name, credits, price_cents, restricted_to FROM packs WHERE active ORDER BY position")
        .fetch_all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| Pack {
            id: r.id,
            name: r.name,
            credits: Credits(r.credits),
            price_cents: Cents(r.price_cents),
            restricted_to: r.restricted_to.as_deref().and_then(CreationType::parse),
        })
        .collect())
}
