//! The current time, read in one place. Services and jobs take `now` as an argument; the edges
//! (handlers, the job scheduler, commands) read it from the application's `Clock`, which tests
//! can set and move, so that expiries, renewals and timeouts are checked at any date without
//! sleeping.

use std::sync::{Arc, RwLock};

use time::{Duration, OffsetDateTime};

#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Added to the system time (zero in production); tests move it.
    offset: Arc<RwLock<Duration>>,
}

impl Clock {
    /// The system's time.
    pub fn system() -> Self {
        Self::default()
    }

    pub fn now(&self) -> OffsetDateTime {
        let offset = self.offset.read().map(|o| *o).unwrap_or(Duration::ZERO);
        OffsetDateTime::now_utc() + offset
    }

    /// Moves this clock (and every copy of it) forward by `by` (tests).
    pub fn advance(&self, by: Duration) {
        if let Ok(mut offset) = self.offset.write() {
            *offset += by;
        }
    }

    /// Sets this clock to `at`, from which it goes on ticking (tests).
    pub fn set(&self, at: OffsetDateTime) {
        if let Ok(mut offset) = self.offset.write() {
            *offset = at - OffsetDateTime::now_utc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_moves_with_its_copies_and_keeps_ticking() {
        let clock = Clock::system();
        let copy = clock.clone();
        let before = copy.now();
        clock.advance(Duration::days(30));
        let moved = copy.now() - before;
        assert!(moved >= Duration::days(30) && moved < Duration::days(30) + Duration::seconds(5));
        let at = time::macros::datetime!(2027-01-31 23:30 UTC);
        clock.set(at);
        let now = copy.now();
        assert!(now >= at && now < at + Duration::seconds(5), "{now}");
    }
}
