//! keepalived's rise and fall for script trackers: a script's health changes only after
//! `rise` consecutive successes (or `fall` consecutive failures); the first result counts
//! at once.

/// The health of one script tracker as its runs come in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct RiseFall {
    /// `None` before the first result.
    healthy: Option<bool>,
    /// Consecutive results that disagree with `healthy`.
    streak: u32,
}

impl RiseFall {
    /// Take one run's result. Returns the health after it, and, while a change is under
    /// way but not reached, how far it got (" (1 of 3 failures before failing)").
    pub fn observe(&mut self, ok: bool, rise: u32, fall: u32) -> (bool, Option<String>) {
        match self.healthy {
            None => self.healthy = Some(ok),
            Some(h) if h == ok => self.streak = 0,
            Some(_) => {
                self.streak += 1;
                let (needed, what, becoming) = if ok {
                    (rise, "successes", "healthy")
                } else {
                    (fall, "failures", "failing")
                };
                if self.streak >= needed {
                    self.healthy = Some(ok);
                    self.streak = 0;
                } else {
                    return (
                        !ok,
                        Some(format!(
                            " ({} of {needed} {what} before {becoming})",
                            self.streak
                        )),
                    );
                }
            }
        }
        (self.healthy == Some(true), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_result_counts_at_once() {
        let mut r = RiseFall::default();
        assert_eq!(r.observe(false, 3, 3), (false, None));
        let mut r = RiseFall::default();
        assert_eq!(r.observe(true, 3, 3), (true, None));
    }

    #[test]
    fn fall_and_rise_need_consecutive_results() {
        let mut r = RiseFall::default();
        r.observe(true, 2, 3);
        assert_eq!(
            r.observe(false, 2, 3),
            (true, Some(" (1 of 3 failures before failing)".into()))
        );
        assert!(r.observe(false, 2, 3).0, "still healthy");
        // A success in between starts the count again.
        assert_eq!(r.observe(true, 2, 3), (true, None));
        assert!(r.observe(false, 2, 3).0, "still healthy");
        assert!(r.observe(false, 2, 3).0, "still healthy");
        assert_eq!(r.observe(false, 2, 3), (false, None));
        assert_eq!(
            r.observe(true, 2, 3),
            (false, Some(" (1 of 2 successes before healthy)".into()))
        );
        assert_eq!(r.observe(true, 2, 3), (true, None));
    }

    #[test]
    fn rise_and_fall_of_1_follow_every_result() {
        let mut r = RiseFall::default();
        for ok in [true, false, false, true, false] {
            assert_eq!(r.observe(ok, 1, 1), (ok, None));
        }
    }
}
