//! Readable numbers, spelled the same in every message tend writes (`250ms`, `3.2s`,
//! `2m5s`, `1.5 KiB`), whichever crate writes it.

use std::fmt::Write as _;
use std::time::Duration;

/// `250ms`, `1s`, `3.2s`, `1m`, `2m5s`, `1h1m1s`.
#[must_use]
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    if ms < 60_000 {
        let tenths = ms / 100;
        return if tenths.is_multiple_of(10) {
            format!("{}s", tenths / 10)
        } else {
            format!("{}.{}s", tenths / 10, tenths % 10)
        };
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if m > 0 {
        let _ = write!(out, "{m}m");
    }
    if s > 0 {
        let _ = write!(out, "{s}s");
    }
    out
}

/// `512 B`, `1.5 KiB`, `600.0 MiB`, `2.0 GiB`.
#[must_use]
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    // Display only: the precision lost by the float is far below the one decimal shown.
    #[allow(clippy::cast_precision_loss)]
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for (ms, want) in [
            (0, "0ms"),
            (250, "250ms"),
            (2000, "2s"),
            (3200, "3.2s"),
            (60_000, "1m"),
            (125_000, "2m5s"),
            (300_000, "5m"),
            (3_661_000, "1h1m1s"),
        ] {
            assert_eq!(duration(Duration::from_millis(ms)), want);
        }
    }

    #[test]
    fn sizes() {
        for (n, want) in [
            (0, "0 B"),
            (1023, "1023 B"),
            (1536, "1.5 KiB"),
            (512 * 1024 * 1024, "512.0 MiB"),
            (3 * 1024 * 1024 * 1024, "3.0 GiB"),
        ] {
            assert_eq!(bytes(n), want);
        }
    }
}
