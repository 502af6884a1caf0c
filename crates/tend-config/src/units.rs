//! Durations (`"500ms"`, `"10s"`, `"5m"`, `"30d"`) and sizes (`"10MiB"`).

use std::time::Duration;

/// Parses a human duration such as `"500ms"`, `"10s"`, `"5m"`, `"1h 30m"`, `"30d"`.
/// A bare `"0"` is zero.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(t)
        .map_err(|_| format!("{s:?} is not a duration (examples: \"500ms\", \"30s\", \"5m\")"))
}

/// Parses a byte size such as `"10MiB"`, `"512 KiB"`, `"1GB"` or `"0"`.
///
/// Written here rather than taken from a crate because the accepted spellings are part of
/// tend's config contract: IEC units (`KiB`, `MiB`, `GiB`, `TiB`) are powers of 1024, SI
/// units (`KB`, `MB`, `GB`, `TB`) powers of 1000, a bare number or `B` is bytes, and
/// nothing else is guessed at.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || format!("{s:?} is not a size (examples: \"512KiB\", \"10MiB\", \"1GiB\", \"0\")");
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num.parse().map_err(|_| bad())?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return Err(bad()),
    };
    #[allow(clippy::cast_precision_loss)]
    let bytes = num * mult as f64;
    if !bytes.is_finite() || bytes > 2f64.powi(62) {
        return Err(bad());
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(bytes.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86400)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(
            parse_duration("5x").unwrap_err(),
            "\"5x\" is not a duration (examples: \"500ms\", \"30s\", \"5m\")"
        );
        assert!(parse_duration("10").is_err(), "a unit is required");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10MiB"), Ok(10 << 20));
        assert_eq!(parse_size("1 GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1.5KiB"), Ok(1536));
        assert_eq!(parse_size("2kb"), Ok(2000));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("123"), Ok(123));
        for bad in ["", "MiB", "10 furlongs", "-1MiB", "1e3", "99999999999TiB"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }
}
