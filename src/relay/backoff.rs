//! Reconnect delays: exponential from an initial delay up to a cap, with jitter so that many
//! wsbroker instances that lost the same broker do not all knock at the same instant.

use std::time::Duration;

/// Exponential backoff with a cap and up to 20 % random reduction.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
    seed: u64,
}

impl Backoff {
    /// Starts at `initial`, doubles after each attempt, never exceeds `max`.
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64)
            | 1;
        Backoff {
            initial,
            max,
            next: initial,
            seed,
        }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        // xorshift: enough randomness for jitter without a dependency.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let jitter_permille = self.seed % 200;
        base - base * jitter_permille as u32 / 1000
    }

    /// After a successful connection: the next failure starts from the initial delay again.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_bounded_jitter_and_resets() {
        let initial = Duration::from_millis(100);
        let max = Duration::from_millis(1000);
        let mut backoff = Backoff::new(initial, max);
        let mut expected = initial;
        for _ in 0..8 {
            let delay = backoff.next_delay();
            assert!(delay <= expected, "{delay:?} > {expected:?}");
            assert!(
                delay >= expected * 8 / 10,
                "{delay:?} too short for {expected:?}"
            );
            expected = (expected * 2).min(max);
        }
        backoff.reset();
        assert!(backoff.next_delay() <= initial);
    }
}
