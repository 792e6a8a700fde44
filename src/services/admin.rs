//! The back office's use cases that are not another service's: finding organisations, reading
//! everything about one, opening one for a church, suspending it, and the contact messages.
//! Other actions go through the services that own them (credits adjustments, limit raises,
//! refunds), with the staff member as the actor: the same as the operator commands. Every action
//! writes its audit line in its own transaction.

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::accounts::AccountError;
use super::fault::Fault;
use crate::db;

/// Ledger lines per page of the organisation's file.
pub const LEDGER_PAGE: i64 = 20;

/// What staff see of an organisation.
pub struct OrganisationFile {
    pub organisation: db::admin::OrganisationRow,
    pub members: Vec<db::admin::Member>,
    pub subscription: Option<db::credits::Subscription>,
    pub overview: Option<super::credits::Overview>,
    /// The raise recorded last (in force, to come or over), if any.
    pub raise: Option<db::generations::Raise>,
    /// A page of the ledger (newest first) and the number of lines in all.
    pub ledger: Vec<db::credits::Entry>,
    pub ledger_total: i64,
    pub generations: Vec<db::generations::Generation>,
    pub orders: Vec<db::billing::Order>,
    pub contacts: Vec<db::admin::ContactMessage>,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("unknown organisation")]
    UnknownOrganisation,
    #[error("an account already uses this address")]
    EmailTaken,
    #[error(transparent)]
    Fault(#[from] Fault),
}

impl From<sqlx::Error> for AdminError {
    fn from(e: sqlx::Error) -> Self {
        AdminError::Fault(e.into())
    }
}

impl From<AccountError> for AdminError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Fault(f) => AdminError::Fault(f),
            AccountError::EmailTaken => AdminError::EmailTaken,
            other => AdminError::Fault(Fault::Internal(other.into())),
        }
    }
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
    ledger_page: i64,
    now: OffsetDateTime,
) -> Result<Option<OrganisationFile>, AccountError> {
    let mut conn = pool.acquire().await?;
    let Some(organisation) = db::admin::organisation(&mut conn, id).await? else {
        return Ok(None);
    };
    let members = db::admin::members(&mut conn, id).await?;
    let subscription = db::credits::subscription(&mut conn, id).await?;
    let overview = super::credits::overview_in(&mut conn, id, now).await.ok();
    let raise = db::admin::current_raise(&mut conn, id).await?;
    let everything = db::credits::HistoryFilter::default();
    let ledger = db::credits::history(
        &mut conn,
        id,
        &everything,
        None,
        (ledger_page.max(1) - 1) * LEDGER_PAGE,
        LEDGER_PAGE,
    )
    .await?;
    let ledger_total = db::credits::history_count(&mut conn, id, &everything).await?;
    let generations = db::generations::list(&mut conn, id, None, true, 20).await?;
    let orders = db::billing::orders(&mut conn, id, 50).await?;
    let contacts = db::admin::contact_messages(&mut conn, false, Some(id), None, 0, 20).await?;
    Ok(Some(OrganisationFile {
        organisation,
        members,
        subscription,
        overview,
        raise,
        ledger,
        ledger_total,
        generations,
        orders,
        contacts,
    }))
}

/// A church to open by hand: its name, plan (one of the catalogue's), owner's address, and why
/// (for the audit log).
pub struct Opening<'a> {
    pub name: &'a str,
    pub plan: &'a str,
    pub owner_email: &'a str,
    pub reason: &'a str,
    /// The staff member (the inviter) and the audit actor (`staff:<email>`).
    pub staff: Uuid,
    pub actor: &'a str,
}

/// Opens an organisation on `plan` (the same as the demo and fixtures: its subscription starts
/// now, unpaid until its first renewal charges it) and invites its owner by e-mail, in one
/// transaction with the audit line.
pub async fn open_church(
    pool: &PgPool,
    public_url: &str,
    opening: Opening<'_>,
    now: OffsetDateTime,
) -> Result<Uuid, AdminError> {
    let mut tx = pool.begin().await?;
    if db::accounts::user_by_email(&mut tx, opening.owner_email)
        .await?
        .is_some()
    {
        return Err(AdminError::EmailTaken);
    }
    let organisation =
        super::accounts::open_organisation(&mut tx, opening.name, opening.plan, now).await?;
    super::accounts::invite_first_owner(
        &mut tx,
        public_url,
        organisation,
        opening.name,
        opening.owner_email,
        opening.staff,
        now,
    )
    .await?;
    db::audit::record(
        &mut tx,
        db::audit::Entry {
            actor: opening.actor,
            organisation: Some(organisation),
            action: "organisation.open",
            reason: opening.reason,
            before: None,
            after: Some(serde_json::json!({
                "name": opening.name, "plan": opening.plan, "owner_invited": opening.owner_email,
            })),
            now,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(organisation)
}

/// Suspends (`suspend`) or reactivates the organisation, audited; false when it was so already
/// (nothing recorded).
pub async fn set_suspended(
    pool: &PgPool,
    organisation: Uuid,
    suspend: bool,
    actor: &str,
    reason: &str,
    now: OffsetDateTime,
) -> Result<bool, AdminError> {
    let mut tx = pool.begin().await?;
    let before = db::admin::set_suspended(&mut tx, organisation, suspend.then_some(now))
        .await?
        .ok_or(AdminError::UnknownOrganisation)?;
    if before.is_some() == suspend {
        return Ok(false);
    }
    db::audit::record(
        &mut tx,
        db::audit::Entry {
            actor,
            organisation: Some(organisation),
            action: if suspend {
                "organisation.suspend"
            } else {
                "organisation.reactivate"
            },
            reason,
            before: Some(serde_json::json!({ "suspended": !suspend })),
            after: Some(serde_json::json!({ "suspended": suspend })),
            now,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Whether staff have suspended the organisation (an unknown one is not).
pub async fn is_suspended(pool: &PgPool, organisation: Uuid) -> Result<bool, Fault> {
    let mut conn = pool.acquire().await?;
    Ok(db::admin::suspended(&mut conn, organisation)
        .await?
        .unwrap_or(false))
}

/// Contact messages per page of the list.
pub const MESSAGES_PAGE: i64 = 50;

/// A page of contact messages (the new ones only, or all), and how many are new.
pub async fn contact_messages(
    pool: &PgPool,
    only_new: bool,
    page: i64,
) -> Result<(Vec<db::admin::ContactMessage>, i64), AdminError> {
    let mut conn = pool.acquire().await?;
    let list = db::admin::contact_messages(
        &mut conn,
        only_new,
        None,
        None,
        (page.max(1) - 1) * MESSAGES_PAGE,
        MESSAGES_PAGE + 1,
    )
    .await?;
    let new = db::admin::new_contact_count(&mut conn).await?;
    Ok((list, new))
}

pub async fn contact_message(
    pool: &PgPool,
    id: i64,
) -> Result<Option<db::admin::ContactMessage>, AdminError> {
    let mut conn = pool.acquire().await?;
    Ok(db::admin::contact_message(&mut conn, id).await?)
}

/// Marks a message answered, audited; false when it was already (nothing recorded), `None`:
/// no such message.
pub async fn mark_answered(
    pool: &PgPool,
    id: i64,
    actor: &str,
    reason: &str,
    now: OffsetDateTime,
) -> Result<Option<bool>, AdminError> {
    let mut tx = pool.begin().await?;
    let Some(message) = db::admin::contact_message(&mut tx, id).await? else {
        return Ok(None);
    };
    if !db::admin::mark_answered(&mut tx, id, actor, now).await? {
        return Ok(Some(false));
    }
    db::audit::record(
        &mut tx,
        db::audit::Entry {
            actor,
            organisation: message.organisation_id,
            action: "contact.answered",
            reason,
            before: Some(serde_json::json!({ "message": id, "status": "new" })),
            after: Some(serde_json::json!({ "message": id, "status": "answered" })),
            now,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Some(true))
}
