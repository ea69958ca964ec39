//! Durations: parsed from flags and the environment, shown in messages, and
//! turned into deadlines.
//!
//! Every duration tfsync accepts is bounded when it is parsed, at
//! [`MAX`] (one year), so no later `now + d` or `now - d` can overflow:
//! a `--wait 18446744073709551615` is a usage error (exit 2), not a panic.
//! One year is longer than any lock wait anyone means (a CI job waits
//! minutes), it still admits any lock age worth asking for with
//! `--older-than` (a lower bound: `1y` also finds every older lock), and it
//! is many orders of magnitude below the range of `Instant` and `chrono`.

use std::time::Duration;

/// The longest duration accepted: one year, as humantime counts it (`1y`,
/// 365.25 days).
pub const MAX: Duration = Duration::from_secs(31_557_600);

/// How [`MAX`] is written in messages.
pub const MAX_TEXT: &str = "1 year (1y, 8766h)";

/// Durations as Terraform writes them: `0s`, `30s`, `5m`, `1h30m`; a bare
/// number is seconds. At most [`MAX`].
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let d = match s.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(s)
            .map_err(|e| format!("invalid duration {s:?} ({e}); use e.g. 30s, 5m, 1h30m"))?,
    };
    if d > MAX {
        return Err(format!(
            "duration {s:?} is longer than the limit of {MAX_TEXT}; give at most 1y"
        ));
    }
    Ok(d)
}

/// Human form of a duration, to the second: `3m12s`.
pub fn short_duration(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs()))
        .to_string()
        .replace(' ', "")
}

/// The instant `wait` from now, saturating instead of overflowing (a
/// library caller may pass any `Duration`; parsed ones are already bounded).
pub fn deadline_after(wait: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(wait)
        .or_else(|| now.checked_add(MAX))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_terraform_durations() {
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration(" 1h30m "), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn bounded_at_one_year() {
        assert_eq!(parse_duration("1y"), Ok(MAX));
        assert_eq!(parse_duration("31557600"), Ok(MAX));
        assert_eq!(
            parse_duration("365d"),
            Ok(Duration::from_secs(365 * 86_400))
        );
        for too_long in [
            "31557601",
            "1y 1s",
            "2y",
            "18446744073709551615",
            "9223372036854775807s",
            "99999999999999999999999",
        ] {
            let e = parse_duration(too_long).expect_err(too_long);
            assert!(
                e.contains("1 year") || e.contains("invalid duration"),
                "{too_long}: {e}"
            );
        }
        let e = parse_duration("18446744073709551615").expect_err("u64::MAX");
        assert!(e.contains("limit of 1 year"), "{e}");
    }

    #[test]
    fn short_form() {
        assert_eq!(short_duration(Duration::from_millis(192_700)), "3m12s");
        assert_eq!(short_duration(Duration::ZERO), "0s");
        assert_eq!(short_duration(MAX), "1year");
    }

    #[tokio::test]
    async fn deadlines_saturate() {
        let now = tokio::time::Instant::now();
        assert!(deadline_after(Duration::MAX) >= now);
        let d = deadline_after(Duration::from_secs(60));
        assert!(d >= now + Duration::from_secs(60));
    }
}
