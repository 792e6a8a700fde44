//! The prompt checks as the requests see them: read after the portal starts listening.
//!
//! The rules (`content/prompt-rules.toml`) and the statistical model (`content/prompt-model.tsv`,
//! some 440,000 features) take about 20 and 170 ms of CPU to read, more than the rest of
//! start-up together. They are read on a thread of their own, at a lower priority, started once
//! the guides are loaded, while the portal already serves the guides, the search and the
//! account pages; a request that checks a prompt (a simulation, a launch) waits for them. Rules
//! or a model that cannot be read are logged, and answered 503 by those requests alone (the
//! test suite reads `content/` as it is shipped).

use std::sync::Arc;

use tokio::sync::watch;

use crate::domain::prompt::PromptRules;

#[derive(Clone)]
enum Loading {
    Pending,
    Ready(Arc<PromptRules>),
    Failed,
}

/// The rules with their model, once read.
#[derive(Clone)]
pub struct PromptChecks {
    loaded: watch::Receiver<Loading>,
}

impl PromptChecks {
    /// The prompt checks that `read` reads, on a thread of its own whose priority is lowered
    /// (the pages served meanwhile come first).
    pub fn load(read: impl FnOnce() -> anyhow::Result<PromptRules> + Send + 'static) -> Self {
        let (done, loaded) = watch::channel(Loading::Pending);
        let started = std::time::Instant::now();
        let reader = move || {
            crate::services::cpu::lower_priority("prompt-model");
            let outcome = match read() {
                Ok(rules) => {
                    tracing::info!(
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "prompt checks loaded"
                    );
                    Loading::Ready(Arc::new(rules))
                }
                Err(error) => {
                    tracing::error!(
                        error = format!("{error:#}"),
                        "the prompt checks cannot be read: simulations and launches answer 503"
                    );
                    Loading::Failed
                }
            };
            // Nobody left to tell when the portal stopped meanwhile.
            let _ = done.send(outcome);
        };
        if let Err(error) = std::thread::Builder::new()
            .name("prompt-model".into())
            .spawn(reader)
        {
            // The closure (and the sender in it) is dropped: `get` answers an error.
            tracing::error!(error = %error, "cannot start the prompt checks' reading");
        }
        Self { loaded }
    }

    /// Whether the prompt checks could not be read (`/healthz` then answers 503: a deployment
    /// whose `content/` is broken is not taken for a healthy one). False while they are read.
    pub fn failed(&self) -> bool {
        // Closed: the reading thread is gone (its value is final, or it panicked before one).
        let closed = self.loaded.has_changed().is_err();
        match *self.loaded.borrow() {
            Loading::Failed => true,
            Loading::Ready(_) => false,
            Loading::Pending => closed,
        }
    }

    /// The rules with their model, waiting for them while they are read; `Unread` (a 503, by
    /// `PageError` and `ApiError`) when they could not be read.
    pub async fn get(&self) -> Result<Arc<PromptRules>, Unread> {
        let mut loaded = self.loaded.clone();
        let ready = loaded
            .wait_for(|l| !matches!(l, Loading::Pending))
            .await
            .map_err(|_| Unread)?;
        match &*ready {
            Loading::Ready(rules) => Ok(rules.clone()),
            Loading::Pending | Loading::Failed => Err(Unread),
        }
    }
}

/// The prompt checks could not be read (the cause is in the log).
#[derive(Debug, thiserror::Error)]
#[error("the prompt checks could not be read")]
pub struct Unread;

impl From<Unread> for super::error::PageError {
    fn from(unread: Unread) -> Self {
        Self::Unavailable(unread.into())
    }
}

impl From<Unread> for super::api_error::ApiError {
    fn from(unread: Unread) -> Self {
        Self::Unavailable(unread.into())
    }
}
