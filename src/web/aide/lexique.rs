//! The search lexicon staff add to from the back office: the synonyms stored in PostgreSQL join
//! the seed (`content/synonymes.toml`) in a search index rebuilt and swapped in while the
//! portal serves. Every instance polls the stored lexicon's version (`keep_lexicon_current`),
//! so a synonym added on one is searched on all within a few seconds, without a restart.

use super::*;

/// How often an instance looks for synonyms added elsewhere.
pub const LEXICON_POLL: Duration = Duration::from_secs(3);

#[derive(Default)]
pub struct Lexicon {
    /// The version (`db::help_quality::lexicon_version`) the index was built with; `None`
    /// before the first read. Held during a rebuild, so that two never race.
    applied: tokio::sync::Mutex<Option<(i64, i64)>>,
    /// The stored synonyms (query, word) in the current index: a guide reload keeps them.
    added: RwLock<Vec<(String, String)>>,
}

impl Lexicon {
    pub fn added(&self) -> Vec<(String, String)> {
        match self.added.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl HelpCentre {
    /// Rebuilds the search index with the stored synonyms if they changed since the last
    /// build, and swaps it in (the guides' pages stay); returns whether it did. The new index
    /// comes with an empty answer cache, so no answer from before is served again.
    pub async fn refresh_lexicon(&self, pool: &sqlx::PgPool) -> anyhow::Result<bool> {
        let mut applied = self.lexicon.applied.lock().await;
        let mut conn = pool.acquire().await.context("acquire")?;
        let version = crate::db::help_quality::lexicon_version(&mut conn).await?;
        if *applied == Some(version) {
            return Ok(false);
        }
        let added: Vec<(String, String)> = crate::db::help_quality::synonyms(&mut conn)
            .await?
            .into_iter()
            .map(|s| (s.query, s.word))
            .collect();
        drop(conn);
        let base = self.library();
        if applied.is_none() && added.is_empty() {
            *applied = Some(version);
            return Ok(false);
        }
        let (from, words) = (base.clone(), added.clone());
        let started = Instant::now();
        let rebuilt = tokio::task::spawn_blocking(move || from.with_added_synonyms(&words))
            .await
            .context("rebuilding the search index")??;
        // Swapped only if the guides did not change meanwhile (a reload in development): the
        // next poll builds on the new ones.
        if !self.swap_library_if(&base, rebuilt) {
            return Ok(false);
        }
        if let Ok(mut guard) = self.lexicon.added.write() {
            *guard = added;
        }
        *applied = Some(version);
        tracing::info!(
            synonyms = self.lexicon.added().len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "search index rebuilt with the stored synonyms"
        );
        Ok(true)
    }
}

/// Keeps this instance's search index up to date with the stored lexicon, for as long as the
/// process runs (the first look at start-up).
pub async fn keep_lexicon_current(state: web::Data<AppState>) {
    let mut tick = tokio::time::interval(LEXICON_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match state.help.refresh_lexicon(&state.pool).await {
            Ok(_) => {}
            Err(error) => tracing::warn!("search lexicon not refreshed: {error:#}"),
        }
    }
}
