//! How sizes and durations are written: the way limit messages and the
//! docs show them (`64 MiB`, `250 ms`), and the way flags take them
//! (`64MiB`, `250ms`). One wording for every limit the host reports, and
//! one for every default `--help` shows.

use std::time::Duration;

/// A byte count the way limit messages show it (`64 MiB`, `512 KiB`).
pub fn human_bytes(bytes: u64) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{} {unit}", bytes >> shift);
        }
    }
    format!("{bytes} bytes")
}

/// A duration the way limit messages show it (`1 s`, `250 ms`).
pub fn human_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// A byte count the way `--memory-limit` and the config file take it
/// (`64MiB`): what `--help` and the README show as a default.
pub fn flag_bytes(bytes: u64) -> String {
    human_bytes(bytes).replace(' ', "").replace("bytes", "")
}

/// A duration the way duration flags take it (`1h`, `7s 500ms`, humantime's
/// format): what `--help` and the README show as a default.
pub fn flag_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(64 << 20), "64 MiB");
        assert_eq!(human_bytes(3 << 30), "3 GiB");
        assert_eq!(human_bytes(1536), "1536 bytes");
        assert_eq!(human_bytes(512 << 10), "512 KiB");
        assert_eq!(human_duration(Duration::from_secs(1)), "1 s");
        assert_eq!(human_duration(Duration::from_millis(250)), "250 ms");
    }

    #[test]
    fn flag_units_parse_back() {
        assert_eq!(flag_bytes(64 << 20), "64MiB");
        assert_eq!(flag_bytes(1536), "1536");
        assert_eq!(flag_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(flag_duration(Duration::from_millis(7500)), "7s 500ms");
        for d in [Duration::from_secs(3600), Duration::from_millis(2500)] {
            assert_eq!(humantime::parse_duration(&flag_duration(d)), Ok(d));
        }
    }
}
