//! Wall-clock time, injectable so hourly/daily rotation and `max_age` can be tested without
//! sleeping, plus the few time formats the log files use.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Datelike, FixedOffset, Local, NaiveDate, NaiveDateTime, Timelike};
use tend_core::RotateEvery;

/// Where the log pipeline gets the current local time from.
///
/// The offset is part of the answer because every time the log files show (line prefixes,
/// rotated names, hour/day boundaries) is local time.
pub trait Clock: Send + Sync + 'static {
    /// The current time with the local UTC offset in effect now.
    fn now(&self) -> DateTime<FixedOffset>;
}

/// The real clock in the machine's local time zone.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<FixedOffset> {
        Local::now().fixed_offset()
    }
}

/// A clock that only moves when told to: for tests of time-based rotation and retention,
/// here and in the supervisor.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<FixedOffset>>,
}

impl ManualClock {
    /// A clock standing at `start`.
    #[must_use]
    pub fn new(start: DateTime<FixedOffset>) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock to `t` (backwards too).
    pub fn set(&self, t: DateTime<FixedOffset>) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = t;
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        let step = chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        *now = now.checked_add_signed(step).unwrap_or(*now);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<FixedOffset> {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Length of a line's timestamp prefix, trailing space included:
/// `2026-11-21T14:05:09.123+01:00 `.
pub(crate) const TS_LEN: usize = 30;

/// Writes `v` as exactly `width` decimal digits (the high digits are dropped if it is wider,
/// which only a year past 9999 could make happen).
fn put_digits(out: &mut [u8], at: usize, mut v: u32, width: usize) {
    for i in (0..width).rev() {
        out[at + i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Milliseconds of a local time, with a leap second (nanos past 1e9) kept inside `.999`.
fn millis(t: &NaiveDateTime) -> u32 {
    (t.nanosecond() / 1_000_000).min(999)
}

fn year(t: &NaiveDateTime) -> u32 {
    u32::try_from(t.year().clamp(0, 9999)).unwrap_or(0)
}

/// Formats the RFC 3339 prefix by hand: this runs once per millisecond of output at most,
/// but `chrono`'s formatter allocates and interprets a format string each time.
pub(crate) fn format_ts(t: &DateTime<FixedOffset>, out: &mut [u8; TS_LEN]) {
    let l = t.naive_local();
    put_digits(out, 0, year(&l), 4);
    out[4] = b'-';
    put_digits(out, 5, l.month(), 2);
    out[7] = b'-';
    put_digits(out, 8, l.day(), 2);
    out[10] = b'T';
    put_digits(out, 11, l.hour(), 2);
    out[13] = b':';
    put_digits(out, 14, l.minute(), 2);
    out[16] = b':';
    put_digits(out, 17, l.second(), 2);
    out[19] = b'.';
    put_digits(out, 20, millis(&l), 3);
    let off = t.offset().local_minus_utc();
    out[23] = if off < 0 { b'-' } else { b'+' };
    let off = off.unsigned_abs();
    put_digits(out, 24, off / 3600, 2);
    out[26] = b':';
    put_digits(out, 27, off % 3600 / 60, 2);
    out[29] = b' ';
}

/// The local time as it appears in rotated file names: `2026-11-21T14-05-09.123` (no `:`,
/// which Windows forbids in file names; fixed width so names sort by time).
pub(crate) fn format_stamp(t: &NaiveDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}-{:02}-{:02}.{:03}",
        year(t),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        millis(t)
    )
}

/// Length of [`format_stamp`]'s output.
pub(crate) const STAMP_LEN: usize = 23;

/// Parses [`format_stamp`]'s output; anything else is `None`.
pub(crate) fn parse_stamp(s: &str) -> Option<NaiveDateTime> {
    let b = s.as_bytes();
    if b.len() != STAMP_LEN {
        return None;
    }
    for (i, &c) in b.iter().enumerate() {
        let ok = match i {
            4 | 7 | 13 | 16 => c == b'-',
            10 => c == b'T',
            19 => c == b'.',
            _ => c.is_ascii_digit(),
        };
        if !ok {
            return None;
        }
    }
    let num = |from: usize, to: usize| -> u32 {
        b[from..to]
            .iter()
            .fold(0, |acc, &c| acc * 10 + u32::from(c - b'0'))
    };
    let year = i32::try_from(num(0, 4)).ok()?;
    NaiveDate::from_ymd_opt(year, num(5, 7), num(8, 10))?.and_hms_milli_opt(
        num(11, 13),
        num(14, 16),
        num(17, 19),
        num(20, 23),
    )
}

/// Which rotation period a local time falls in; two times in the same period give the same
/// key. `None` when rotation by time is off.
pub(crate) fn period_key(t: &NaiveDateTime, every: RotateEvery) -> Option<i64> {
    let day = (i64::from(t.year()) * 100 + i64::from(t.month())) * 100 + i64::from(t.day());
    match every {
        RotateEvery::Never => None,
        RotateEvery::Daily => Some(day),
        RotateEvery::Hourly => Some(day * 100 + i64::from(t.hour())),
    }
}

/// How long until the next local hour/day boundary. Approximate across DST changes, which is
/// fine because the caller re-checks at least every minute anyway.
pub(crate) fn until_next_boundary(t: &NaiveDateTime, every: RotateEvery) -> Option<Duration> {
    let into_hour_ms = u64::from(t.minute() * 60 + t.second()) * 1000 + u64::from(millis(t));
    let (period_ms, into_ms) = match every {
        RotateEvery::Never => return None,
        RotateEvery::Hourly => (3_600_000, into_hour_ms),
        RotateEvery::Daily => (86_400_000, u64::from(t.hour()) * 3_600_000 + into_hour_ms),
    };
    Some(Duration::from_millis(period_ms - into_ms.min(period_ms)))
}

#[cfg(test)]
mod tests {
    use super::*;
    fn at(rfc3339: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(rfc3339).unwrap()
    }

    #[test]
    fn timestamp_prefix_is_rfc3339_local_with_millis() {
        let mut out = [0; TS_LEN];
        format_ts(&at("2026-11-21T14:05:09.123+01:00"), &mut out);
        assert_eq!(&out, b"2026-11-21T14:05:09.123+01:00 ");
        format_ts(&at("2026-01-02T03:04:05.006-05:30"), &mut out);
        assert_eq!(&out, b"2026-01-02T03:04:05.006-05:30 ");
        format_ts(&at("2026-01-02T03:04:05.000+00:00"), &mut out);
        assert_eq!(&out, b"2026-01-02T03:04:05.000+00:00 ");
    }

    #[test]
    fn stamp_round_trips_and_rejects_garbage() {
        let t = at("2026-11-21T14:05:09.123+01:00").naive_local();
        let s = format_stamp(&t);
        assert_eq!(s, "2026-11-21T14-05-09.123");
        assert_eq!(parse_stamp(&s), Some(t));
        for bad in [
            "",
            "2026-11-21T14-05-09.12",
            "2026-11-21T14:05:09.123",
            "2026-13-21T14-05-09.123",
            "out.2026-11-21T14-05",
        ] {
            assert_eq!(parse_stamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn periods_and_boundaries() {
        let a = at("2026-11-21T10:59:59.500+00:00").naive_local();
        let b = at("2026-11-21T11:00:00.000+00:00").naive_local();
        assert_ne!(
            period_key(&a, RotateEvery::Hourly),
            period_key(&b, RotateEvery::Hourly)
        );
        assert_eq!(
            period_key(&a, RotateEvery::Daily),
            period_key(&b, RotateEvery::Daily)
        );
        assert_eq!(period_key(&a, RotateEvery::Never), None);
        assert_eq!(
            until_next_boundary(&a, RotateEvery::Hourly),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            until_next_boundary(&b, RotateEvery::Daily),
            Some(Duration::from_secs(13 * 3600))
        );
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(at("2026-01-01T00:00:00.000+00:00"));
        assert_eq!(c.now(), c.now());
        c.advance(Duration::from_millis(1500));
        assert_eq!(c.now(), at("2026-01-01T00:00:01.500+00:00"));
    }
}
