//! What can go wrong below every use case, whatever it is: the database is unreachable (a 503,
//! and the pool recovers by itself) or something unexpected happened (a 500, logged with its
//! chain). Each service's error enum wraps a `Fault`; the web layer maps it in one place.

#[derive(Debug, thiserror::Error)]
pub enum Fault {
    #[error("database unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl From<sqlx::Error> for Fault {
    fn from(error: sqlx::Error) -> Self {
        if crate::db::is_unavailable(&error) {
            Fault::Unavailable(error.into())
        } else {
            Fault::Internal(error.into())
        }
    }
}

impl From<anyhow::Error> for Fault {
    fn from(error: anyhow::Error) -> Self {
        match error.downcast::<sqlx::Error>() {
            Ok(error) => error.into(),
            Err(other) => Fault::Internal(other),
        }
    }
}
