//! Turns per organisation, inside the process: the launches of one organisation wait here,
//! first come first served, before they take a database connection.
//!
//! They are serialised by the organisation's account row anyway (`FOR UPDATE`). Waiting for
//! that lock inside the database would hold a pooled connection for the whole wait: a burst
//! of launches on one organisation would take every connection of the pool, and the
//! requests behind it, of every organisation, would give up (« pool timed out »). Waiting
//! here costs no connection: one launch per organisation and per process holds one while it
//! waits for the row (the other processes' launches of that organisation).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use tokio::sync::OwnedMutexGuard;
use uuid::Uuid;

/// The queues, one per organisation that has a launch under way; an organisation's queue goes
/// away with its last launch (swept as the map grows).
#[derive(Debug, Default)]
pub struct Turns {
    queues: Mutex<Queues>,
}

#[derive(Debug, Default)]
struct Queues {
    by_organisation: HashMap<Uuid, Weak<tokio::sync::Mutex<()>>>,
    /// Sweep the finished queues when the map reaches this size.
    sweep_at: usize,
}

/// An organisation's turn: the next one waits until this is dropped.
pub type Turn = OwnedMutexGuard<()>;

const FIRST_SWEEP: usize = 1024;

impl Turns {
    /// Waits for `organisation`'s turn (tokio's mutex is fair: in the order of arrival).
    pub async fn wait(&self, organisation: Uuid) -> Turn {
        let queue = {
            let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
            let queues = &mut *queues;
            if queues.by_organisation.len() >= queues.sweep_at.max(FIRST_SWEEP) {
                queues.by_organisation.retain(|_, q| q.strong_count() > 0);
                queues.sweep_at = 2 * queues.by_organisation.len();
            }
            match queues
                .by_organisation
                .get(&organisation)
                .and_then(Weak::upgrade)
            {
                Some(queue) => queue,
                None => {
                    let queue = Arc::new(tokio::sync::Mutex::new(()));
                    queues
                        .by_organisation
                        .insert(organisation, Arc::downgrade(&queue));
                    queue
                }
            }
        };
        queue.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_turn_at_a_time_per_organisation_and_none_between_two() {
        let turns = Arc::new(Turns::default());
        let a = Uuid::new_v4();
        let b = Uuid::new_v4();
        let first = turns.wait(a).await;
        // Another organisation is not kept waiting.
        let other = tokio::time::timeout(std::time::Duration::from_secs(1), turns.wait(b)).await;
        assert!(other.is_ok());
        let waiting = {
            let turns = Arc::clone(&turns);
            tokio::spawn(async move { turns.wait(a).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(
            !waiting.is_finished(),
            "the second turn waits for the first"
        );
        drop(first);
        let second = tokio::time::timeout(std::time::Duration::from_secs(1), waiting).await;
        assert!(matches!(second, Ok(Ok(_))));
    }

    #[tokio::test]
    async fn finished_queues_are_swept() {
        let turns = Turns::default();
        for _ in 0..(3 * FIRST_SWEEP) {
            drop(turns.wait(Uuid::new_v4()).await);
        }
        let left = turns
            .queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_organisation
            .len();
        assert!(left <= FIRST_SWEEP, "{left} queues kept");
    }
}
