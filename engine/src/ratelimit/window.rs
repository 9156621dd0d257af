//! Calendar-aligned UTC windows.

/// A rate-limit window. Windows are aligned to the UTC calendar: a minute resets at :00, an
/// hour at the top of the hour, a day at 00:00 UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Window {
    /// One second.
    Second,
    /// One minute.
    Minute,
    /// One hour.
    Hour,
    /// One day.
    Day,
}

impl Window {
    /// Every window, in the order messages list them.
    pub const ALL: [(&'static str, Window); 4] = [
        ("second", Window::Second),
        ("minute", Window::Minute),
        ("hour", Window::Hour),
        ("day", Window::Day),
    ];

    /// The window's length in seconds.
    pub fn seconds(self) -> u64 {
        match self {
            Window::Second => 1,
            Window::Minute => 60,
            Window::Hour => 3_600,
            Window::Day => 86_400,
        }
    }

    /// The window's name in the policy language.
    pub fn name(self) -> &'static str {
        match self {
            Window::Second => "second",
            Window::Minute => "minute",
            Window::Hour => "hour",
            Window::Day => "day",
        }
    }

    /// The start (Unix seconds) of the window containing `now` (Unix seconds).
    pub fn start(self, now: u64) -> u64 {
        now - now % self.seconds()
    }

    /// Whole seconds from `now_nanos` until the window containing it ends (at least 1).
    pub fn seconds_left(self, now_nanos: u64) -> u64 {
        let len = self.seconds().saturating_mul(1_000_000_000);
        let into = now_nanos % len;
        (len - into).div_ceil(1_000_000_000).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_align_to_the_utc_calendar() {
        // 2026-11-25T10:31:12Z
        let t = 1_795_602_672u64;
        assert_eq!(Window::Minute.start(t), t - 12);
        assert_eq!(Window::Hour.start(t), t - 31 * 60 - 12);
        assert_eq!(Window::Day.start(t) % 86_400, 0);
        assert_eq!(Window::Second.start(t), t);
        assert_eq!(Window::Minute.seconds_left(t * 1_000_000_000), 48);
        assert_eq!(Window::Minute.seconds_left(t * 1_000_000_000 + 1), 48);
        assert_eq!(
            Window::Second.seconds_left(t * 1_000_000_000 + 999_999_999),
            1
        );
        assert_eq!(Window::Minute.seconds_left((t - 12) * 1_000_000_000), 60);
    }
}
