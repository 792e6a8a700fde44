//! Development: the guides reloaded when a file under `content/` changes.

use super::*;

/// Development: reloads the guides when a file under `content/` changes (polled every second,
/// no extra dependency). A broken edit is logged with its file and line, and the last good
/// version stays online.
pub async fn reload_on_change(state: web::Data<AppState>) {
    let dir = state.config.content_dir.clone();
    let stamp = |dir: &std::path::Path| -> Option<(usize, std::time::SystemTime)> {
        let entries: Vec<_> = std::fs::read_dir(dir)
            .ok()?
            .filter_map(Result::ok)
            .collect();
        let newest = entries
            .iter()
            .filter_map(|e| e.metadata().ok()?.modified().ok())
            .max()?;
        Some((entries.len(), newest))
    };
    let mut last = stamp(&dir);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let now = stamp(&dir);
        if now == last {
            continue;
        }
        last = now;
        match Library::load(&dir) {
            Ok(library) => {
                state.help.replace_library(library);
                tracing::info!("guides reloaded from {}", dir.display());
            }
            Err(errors) => tracing::error!("guides not reloaded:\n{errors}"),
        }
    }
}
