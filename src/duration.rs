//! Durations as people read them.

use std::time::Duration;

/// Human form of a duration, to the second: `3m12s`.
pub fn short_duration(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs()))
        .to_string()
        .replace(' ', "")
}
