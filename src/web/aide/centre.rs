//! The help centre in memory: the guides, their pages rendered once into bytes (rebuilt
//! when the catalog behind their live tables changes), and views counted in memory and written
//! in batches, so reading never waits on the database.

use super::*;

pub struct StaticPage {
    pub(super) body: web::Bytes,
    pub(super) gzipped: web::Bytes,
    pub(super) etag: HeaderValue,
}

pub(super) struct RenderedGuides {
    fingerprint: u64,
    /// The schedule version in force when rendered: a version whose date comes changes the
    /// figures without changing the catalog.
    schedule: Option<i64>,
    /// By slug: the visitors' page, then the signed-in one.
    pub(super) pages: HashMap<String, Vec<StaticPage>>,
}

pub struct HelpCentre {
    /// Swapped as a whole when the guides are reloaded (development).
    library: RwLock<Arc<Library>>,
    rendered: RwLock<Option<Arc<RenderedGuides>>>,
    /// One counter per guide: reading a guide adds one without a lock held across workers.
    views: RwLock<HashMap<String, std::sync::atomic::AtomicI64>>,
    most_read: RwLock<Option<(Instant, Vec<String>)>>,
    /// The synonyms staff stored, built into the search index (`lexique`).
    pub(super) lexicon: super::lexique::Lexicon,
}

impl HelpCentre {
    pub fn new(library: Library) -> Self {
        Self {
            library: RwLock::new(Arc::new(library)),
            rendered: RwLock::new(None),
            views: RwLock::new(HashMap::new()),
            most_read: RwLock::new(None),
            lexicon: Default::default(),
        }
    }

    pub fn library(&self) -> Arc<Library> {
        match self.library.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the guides (development: after an edit) and drops the pages rendered from them;
    /// the synonyms staff stored stay in the search.
    pub fn replace_library(&self, library: Library) {
        let added = self.lexicon.added();
        let library = if added.is_empty() {
            library
        } else {
            match library.with_added_synonyms(&added) {
                Ok(with_added) => with_added,
                Err(error) => {
                    tracing::error!("stored synonyms left out of the search: {error}");
                    library
                }
            }
        };
        if let Ok(mut guard) = self.library.write() {
            *guard = Arc::new(library);
        }
        if let Ok(mut rendered) = self.rendered.write() {
            *rendered = None;
        }
    }

    /// Swaps in `new` (the same guides, another search index) if the library is still `base`;
    /// the rendered pages stay.
    pub(super) fn swap_library_if(&self, base: &Arc<Library>, new: Library) -> bool {
        match self.library.write() {
            Ok(mut guard) if Arc::ptr_eq(&guard, base) => {
                *guard = Arc::new(new);
                true
            }
            _ => false,
        }
    }

    pub(super) fn count_view(&self, slug: &str) {
        use std::sync::atomic::{AtomicI64, Ordering};
        if let Ok(views) = self.views.read()
            && let Some(counter) = views.get(slug)
        {
            counter.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if let Ok(mut views) = self.views.write() {
            views
                .entry(slug.to_owned())
                .or_insert_with(|| AtomicI64::new(0))
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Writes the views counted since the last call; on failure they are kept for the next one.
    pub async fn flush_views(&self, pool: &sqlx::PgPool) {
        use std::sync::atomic::Ordering;
        let batch: Vec<(String, i64)> = match self.views.read() {
            Ok(views) => views
                .iter()
                .map(|(slug, n)| (slug.clone(), n.swap(0, Ordering::Relaxed)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            Err(_) => return,
        };
        if batch.is_empty() {
            return;
        }
        let (slugs, counts): (Vec<String>, Vec<i64>) = batch.iter().cloned().unzip();
        if let Err(error) = crate::services::help::add_views(pool, &slugs, &counts).await {
            tracing::warn!("guide views not written yet: {error}");
            if let Ok(views) = self.views.read() {
                for (slug, n) in batch {
                    if let Some(counter) = views.get(&slug) {
                        counter.fetch_add(n, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    pub(super) async fn most_read(&self, pool: &sqlx::PgPool) -> Vec<String> {
        if let Ok(guard) = self.most_read.read()
            && let Some((at, slugs)) = guard.as_ref()
            && at.elapsed() < Duration::from_secs(60)
        {
            return slugs.clone();
        }
        let slugs = crate::services::help::most_read(pool, 5)
            .await
            .unwrap_or_default();
        if let Ok(mut guard) = self.most_read.write() {
            *guard = Some((Instant::now(), slugs.clone()));
        }
        slugs
    }

    pub(super) fn rendered(
        &self,
        state: &AppState,
        catalog: &Catalog,
    ) -> Result<Arc<RenderedGuides>, PageError> {
        let now = state.clock.now();
        let schedule = catalog.schedule_at(now).map(|s| s.id);
        if let Ok(guard) = self.rendered.read()
            && let Some(r) = guard
                .as_ref()
                .filter(|r| r.fingerprint == catalog.fingerprint && r.schedule == schedule)
        {
            return Ok(r.clone());
        }
        let mut pages = HashMap::new();
        let library = self.library();
        for guide in &library.guides {
            // Two variants of each page: for visitors, and with the header of someone signed in.
            let mut variants = Vec::with_capacity(2);
            for signed_in in [false, true] {
                let html = render_guide(state, &library, guide, catalog, signed_in, now)?;
                let etag = HeaderValue::from_str(&format!(
                    "\"{}\"",
                    hex::encode(&Sha256::digest(html.as_bytes())[..8])
                ))
                .map_err(|e| PageError::Internal(e.into()))?;
                let gzipped = web::Bytes::from(super::super::gzip(html.as_bytes()));
                variants.push(StaticPage {
                    body: web::Bytes::from(html),
                    gzipped,
                    etag,
                });
            }
            pages.insert(guide.slug.clone(), variants);
        }
        let rendered = Arc::new(RenderedGuides {
            fingerprint: catalog.fingerprint,
            schedule,
            pages,
        });
        if let Ok(mut guard) = self.rendered.write() {
            *guard = Some(rendered.clone());
        }
        Ok(rendered)
    }
}

/// Writes counted views every ten seconds until the process ends.
pub async fn flush_views_forever(state: web::Data<AppState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tick.tick().await;
        state.help.flush_views(&state.pool).await;
    }
}
