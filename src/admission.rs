//! Which answers are worth keeping: those asked a second time. A query asked once and never
//! again (most distinct searches, most simulator questions) would only push a kept answer out
//! of its cache, and its insertion is not free (a key copied, a cache's bookkeeping, an old
//! entry dropped): the caches keep an answer from its second asking on. TinyLFU's
//! « doorkeeper », as a fixed table of recent keys' fingerprints rather than a Bloom filter.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct SecondAsk {
    /// A fingerprint per slot (0: empty); a key's fingerprint picks its slot, and a newer key
    /// of the same slot takes it.
    slots: Box<[AtomicU64]>,
}

impl SecondAsk {
    /// Remembers about the last `keys` distinct keys offered (fewer when two share a slot).
    pub fn new(keys: usize) -> Self {
        Self {
            slots: (0..keys.max(1)).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Whether `key` was offered before and is still remembered; remembers it either way.
    pub fn asked_before(&self, key: &str) -> bool {
        // Never 0, which marks an empty slot.
        let fingerprint = rustc_hash::FxBuildHasher.hash_one(key) | 1;
        let slot = (fingerprint >> 1) as usize % self.slots.len();
        self.slots[slot].swap(fingerprint, Ordering::Relaxed) == fingerprint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_admitted_from_its_second_asking_while_remembered() {
        let seen = SecondAsk::new(64);
        assert!(!seen.asked_before("credits expirent"), "first asking");
        assert!(seen.asked_before("credits expirent"), "second asking");
        assert!(seen.asked_before("credits expirent"), "and after");
        assert!(!seen.asked_before("facture"));
        // Many other keys later, it is forgotten: a list of distinct queries longer than the
        // table, cycled through, is (almost) never admitted.
        let cycle: Vec<String> = (0..1_000).map(|n| format!("question {n}")).collect();
        for _ in 0..3 {
            let admitted = cycle.iter().filter(|q| seen.asked_before(q)).count();
            assert!(admitted < 10, "{admitted} of a cycle of 1,000 admitted");
        }
    }
}
