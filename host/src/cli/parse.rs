//! Value parsers of flags and config-file entries: one grammar per kind
//! of value, shared by the flags and the TOML file.

use agent_host::config::job::CpuQuota;
use agent_host::{Credential, HttpRule};

/// Parses an `--allow-http` rule.
pub fn parse_http_rule(text: &str) -> Result<HttpRule, String> {
    text.parse()
}

/// Parses a `--credential` (`DESTINATION=HEADER: VALUE`), reading its
/// secret now.
pub fn parse_credential(text: &str) -> Result<Credential, String> {
    text.parse()
        .map_err(|err: agent_host::net::credential::CredentialError| err.to_string())
}

/// Parses a `--job-cpu-limit` quota.
pub fn parse_cpu_quota(text: &str) -> Result<CpuQuota, String> {
    text.parse()
}

/// Parses a byte size: a number with an optional unit (`B`, `KiB`, `MiB`,
/// `GiB`, or `K`, `M`, `G`, all powers of two).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size like 64MiB"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        other => return Err(format!("unknown size unit `{other}` (use KiB, MiB or GiB)")),
    };
    number
        .checked_mul(1 << shift)
        .filter(|b| *b > 0)
        .ok_or_else(|| format!("`{text}` is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("64MiB"), Ok(64 << 20));
        assert_eq!(parse_bytes("1g"), Ok(1 << 30));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("5 parsecs").is_err());
        assert!(parse_bytes("0").is_err());
    }
}
