//! Whether the portal can do its work: the database answers.

use sqlx::PgPool;

use super::fault::Fault;

pub async fn database_answers(pool: &PgPool) -> Result<(), Fault> {
    crate::db::ping(pool).await?;
    Ok(())
}
