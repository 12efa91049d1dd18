//! Time arithmetic that cannot panic. Event times come from senders and windows from
//! configuration: `DateTime - Duration` panics when the result leaves chrono's range (a time
//! such as `-262143-01-01T00:00:00Z` minus a day), and `Duration::days(n)` panics for a large
//! `n`. These saturate at the ends of the range instead.

use chrono::{DateTime, Duration, Utc};

/// `n` minutes, saturating at [`Duration::MAX`] / [`Duration::MIN`].
pub fn minutes(n: i64) -> Duration {
    Duration::try_minutes(n).unwrap_or(if n < 0 { Duration::MIN } else { Duration::MAX })
}

/// `n` days, saturating.
pub fn days(n: i64) -> Duration {
    Duration::try_days(n).unwrap_or(if n < 0 { Duration::MIN } else { Duration::MAX })
}

/// `n` seconds, saturating.
pub fn seconds(n: i64) -> Duration {
    Duration::try_seconds(n).unwrap_or(if n < 0 { Duration::MIN } else { Duration::MAX })
}

/// `t - d`, or the earliest representable time.
pub fn before(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t.checked_sub_signed(d).unwrap_or(if d > Duration::zero() {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

/// `t + d`, or the latest representable time.
pub fn after(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t.checked_add_signed(d).unwrap_or(if d > Duration::zero() {
        DateTime::<Utc>::MAX_UTC
    } else {
        DateTime::<Utc>::MIN_UTC
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifts_saturate_at_the_ends_of_the_range_instead_of_panicking() {
        let first: DateTime<Utc> = "-262143-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(before(first, days(1)), DateTime::<Utc>::MIN_UTC);
        assert_eq!(
            after(DateTime::<Utc>::MAX_UTC, minutes(5)),
            DateTime::<Utc>::MAX_UTC
        );
        assert_eq!(before(first, days(i64::MAX)), DateTime::<Utc>::MIN_UTC);
        assert_eq!(after(first, days(i64::MIN)), DateTime::<Utc>::MIN_UTC);
        let t: DateTime<Utc> = "2026-11-02T02:00:00Z".parse().unwrap();
        assert_eq!(
            before(t, minutes(60)),
            "2026-11-02T01:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(
            after(t, seconds(30)),
            "2026-11-02T02:00:30Z".parse::<DateTime<Utc>>().unwrap()
        );
    }
}
