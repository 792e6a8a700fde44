//! The back office's use cases that are not another service's: finding organisations and
//! reading everything about one. Actions go through the services that own them (credits
//! adjustments, refunds), with the staff member as the actor: the same as the operator commands.

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::accounts::AccountError;
use crate::db;

/// What staff see of an organisation.
pub struct OrganisationFile {
    pub organisation: db::admin::OrganisationRow,
    pub members: Vec<db::admin::Member>,
    pub overview: Option<super::credits::Overview>,
    pub ledger: Vec<db::credits::Entry>,
    pub orders: Vec<db::billing::Order>,
}

pub async fn search(
    pool: &PgPool,
    query: &str,
) -> Result<Vec<db::admin::OrganisationRow>, AccountError> {
    let mut conn = pool.acquire().await?;
    Ok(db::admin::search(&mut conn, query.trim(), 100).await?)
}

pub async fn organisation(
    pool: &PgPool,
    id: Uuid,
    now: OffsetDateTime,
) -> Result<Option<OrganisationFile>, AccountError> {
    let mut conn = pool.acquire().await?;
    let Some(organisation) = db::admin::organisation(&mut conn, id).await? else {
        return Ok(None);
    };
    let members = db::admin::members(&mut conn, id).await?;
    let overview = super::credits::overview_in(&mut conn, id, now).await.ok();
    let ledger = db::credits::history(
        &mut conn,
        id,
        &db::credits::HistoryFilter::default(),
        None,
        0,
        20,
    )
    .await?;
    let orders = db::billing::orders(&mut conn, id, 50).await?;
    Ok(Some(OrganisationFile {
        organisation,
        members,
        overview,
        ledger,
        orders,
    }))
}
