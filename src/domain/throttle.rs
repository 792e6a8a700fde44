//! How many tries a client made "in the last window", from two fixed windows.
//!
//! Counting only the current fixed window forgets every try at its boundary: five failed logins
//! at 14:59:59 and five more at 15:00:00 would all pass a limit of five per quarter hour. The
//! previous window's tries still count, weighted by how much of it is within one window of now
//! (the sliding-window counter), rounded up so that a limit just reached stays reached.

/// The tries of the current and the previous fixed window, and how far into the current one we
/// are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Windows {
    pub previous: i64,
    pub current: i64,
    /// Seconds elapsed in the current window, in `0.0..length`.
    pub elapsed: f64,
    /// The windows' length in seconds.
    pub length: i64,
}

impl Windows {
    /// The tries counted in the last `length` seconds.
    pub fn count(&self) -> i64 {
        self.current + weighted(self.previous, self.remaining_share())
    }

    /// Seconds to wait before the count falls below `max` (at least 1), so that one more try is
    /// within it.
    pub fn wait_below(&self, max: i64) -> i64 {
        let length = self.length.max(1) as f64;
        let elapsed = self.elapsed.clamp(0.0, length);
        let room = max - 1;
        let wait = if self.current <= room {
            // Within this window, once enough of the previous one has slid out.
            elapsed_for(self.previous, room - self.current, length) - elapsed
        } else {
            // Next window: the current one becomes the previous.
            (length - elapsed) + elapsed_for(self.current, room, length)
        };
        (wait.ceil() as i64).max(1)
    }

    fn remaining_share(&self) -> f64 {
        let length = self.length.max(1) as f64;
        1.0 - self.elapsed.clamp(0.0, length) / length
    }
}

fn weighted(tries: i64, share: f64) -> i64 {
    // A hair under so that 5 × 0.8 computed as 4.000…1 still counts 4.
    (tries as f64 * share - 1e-9).ceil().max(0.0) as i64
}

/// How far into a window the previous window's `tries` weigh `room` or less.
fn elapsed_for(tries: i64, room: i64, length: f64) -> f64 {
    if room < 0 {
        return length;
    }
    if tries <= room {
        return 0.0;
    }
    length * (1.0 - room as f64 / tries as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(previous: i64, current: i64, elapsed: f64) -> Windows {
        Windows {
            previous,
            current,
            elapsed,
            length: 900,
        }
    }

    #[test]
    fn tries_just_before_the_boundary_still_count_just_after_it() {
        assert_eq!(at(5, 0, 0.5).count(), 5);
        assert_eq!(at(5, 0, 899.0).count(), 1);
        assert_eq!(at(0, 5, 10.0).count(), 5);
    }

    #[test]
    fn the_previous_window_weighs_what_is_left_of_it_rounded_up() {
        assert_eq!(at(4, 1, 450.0).count(), 3);
        assert_eq!(at(5, 1, 450.0).count(), 4);
    }

    #[test]
    fn the_wait_ends_when_one_more_try_is_within_the_limit() {
        // Five failures just before the boundary: one more is allowed once a fifth of the
        // previous window has slid out.
        let windows = at(5, 0, 1.0);
        let wait = windows.wait_below(5);
        assert_eq!(wait, 179);
        assert!(at(5, 0, 1.0 + wait as f64).count() < 5);
        assert!(at(5, 0, wait as f64 - 1.0).count() >= 5);
        // Five in this window: wait for the next one, and some of it.
        let windows = at(0, 5, 100.0);
        assert_eq!(windows.wait_below(5), 800 + 180);
        // Nothing counted: no wait beyond a second.
        assert_eq!(at(0, 0, 3.0).wait_below(5), 1);
        // A limit of one: wait for the previous window to slide out entirely.
        assert_eq!(at(1, 0, 300.0).wait_below(1), 600);
    }
}
