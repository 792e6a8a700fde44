//! The offer (plans, ranges, price schedules, packs) read from the database and kept in memory
//! for a few seconds: every simulator request and every live table in a guide reads it, and
//! staff edits show within `TTL`. All schedule versions are kept, so the switch to a new version
//! happens exactly at its effective date.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use time::OffsetDateTime;

use crate::db;
use crate::domain::catalog::{Pack, Plan, TypeRange};
use crate::domain::pricing::Schedule;

const TTL: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct Catalog {
    /// Changes when any of the data changes: pages built from the catalog are rebuilt then.
    pub fingerprint: u64,
    pub plans: Vec<Plan>,
    pub ranges: Vec<TypeRange>,
    pub schedules: Vec<Schedule>,
    pub packs: Vec<Pack>,
}

impl Catalog {
    pub fn plan(&self, id: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.id == id)
    }

    pub fn plan_ids(&self) -> Vec<&str> {
        self.plans.iter().map(|p| p.id.as_str()).collect()
    }

    /// The first plan: the default of the public simulator.
    pub fn default_plan(&self) -> &str {
        self.plans
            .first()
            .map(|p| p.id.as_str())
            .unwrap_or("eglise")
    }

    pub fn schedule_at(&self, now: OffsetDateTime) -> Option<&Schedule> {
        Schedule::in_force(&self.schedules, now)
    }
}

/// After a failed reload, the last catalog is served this long before the next try.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

#[derive(Default)]
pub struct CatalogCache {
    /// The catalog, and when it was loaded or last found unreloadable.
    cached: RwLock<Option<(Instant, Arc<Catalog>)>>,
}

impl CatalogCache {
    /// Drops the catalog kept in memory: the next read loads it again (after a staff edit, so
    /// that this instance shows it at once; others within `TTL`).
    pub fn invalidate(&self) {
        if let Ok(mut guard) = self.cached.write() {
            *guard = None;
        }
    }

    /// The catalog, reloaded every `TTL`. While the database is unreachable the last one loaded
    /// is served (guides and the simulator keep working), and a reload is tried every few
    /// seconds; with none loaded yet, the fault is returned.
    pub async fn get(&self, pool: &PgPool) -> Result<Arc<Catalog>, super::fault::Fault> {
        let last = self.cached.read().ok().and_then(|guard| guard.clone());
        if let Some((at, catalog)) = &last
            && at.elapsed() < TTL
        {
            return Ok(catalog.clone());
        }
        match load(pool).await {
            Ok(catalog) => {
                let catalog = Arc::new(catalog);
                if let Ok(mut guard) = self.cached.write() {
                    *guard = Some((Instant::now(), catalog.clone()));
                }
                Ok(catalog)
            }
            Err(error) if crate::db::is_unavailable(&error) => {
                let Some((_, catalog)) = last else {
                    return Err(error.into());
                };
                tracing::warn!("catalog not reloaded, the last one is served: {error}");
                // Tried again once RETRY_AFTER_FAILURE has passed.
                let retry_from = Instant::now()
                    .checked_sub(TTL - RETRY_AFTER_FAILURE)
                    .unwrap_or_else(Instant::now);
                if let Ok(mut guard) = self.cached.write() {
                    *guard = Some((retry_from, catalog.clone()));
                }
                Ok(catalog)
            }
            Err(error) => Err(error.into()),
        }
    }
}

async fn load(pool: &PgPool) -> Result<Catalog, sqlx::Error> {
    // One snapshot: a repeatable-read transaction, so plans and rules agree.
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    let mut catalog = Catalog {
        fingerprint: 0,
        plans: db::catalog::plans(&mut tx).await?,
        ranges: db::catalog::type_ranges(&mut tx).await?,
        schedules: db::catalog::schedules(&mut tx).await?,
        packs: db::catalog::packs(&mut tx).await?,
    };
    tx.commit().await?;
    let mut hasher = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(
        &format!(
            "{:?}{:?}{:?}{:?}",
            catalog.plans, catalog.ranges, catalog.schedules, catalog.packs
        ),
        &mut hasher,
    );
    catalog.fingerprint = std::hash::Hasher::finish(&hasher);
    Ok(catalog)
}
