//! The `.cwasm` file format: a plugin compiled ahead of time by
//! `agent-host compile`.
//!
//! Layout: the 8-byte magic [`MAGIC`], a little-endian `u32` length, a JSON
//! [`Header`] of that length, then wasmtime's serialized component
//! (`Component::serialize`, as the compile cache stores it).
//!
//! Policy and invariants:
//! - the header binds the file to the agent-host version and the engine's
//!   compatibility key (the compile cache's key: wasmtime version, target,
//!   every setting that changes compiled code); a file whose header does not
//!   match this host is refused *before* wasmtime sees the code, with one
//!   line saying to recompile. wasmtime then checks its own version and
//!   configuration header again when deserializing;
//! - the header carries the digest and version markers of the component the
//!   file was compiled from, so a precompiled plugin has the same identity as
//!   its `.wasm` (`check` prints the same digest; hot swap dedups across the
//!   two forms). Compiled code keeps no custom sections, hence the header;
//! - the header is not authenticated: a `.cwasm` is native code and must
//!   come from a trusted build (see SECURITY.md, "Ahead-of-time plugins").

use serde::{Deserialize, Serialize};

/// First bytes of every `.cwasm` written by `agent-host compile`. Not
/// `\0asm` (WebAssembly) nor `\x7fELF` (a bare wasmtime artifact), so the
/// three are told apart by their first bytes.
pub(crate) const MAGIC: &[u8; 8] = b"AHCWASM\0";

/// Longest header accepted (it holds a few short strings; this only bounds
/// what a damaged file can make the host allocate).
const MAX_HEADER: usize = 64 << 10;

/// What a `.cwasm` says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Header {
    /// The agent-host version that compiled it.
    pub agent_host: String,
    /// The engine compatibility key it was compiled with.
    pub engine: String,
    /// SHA-256 of the component it was compiled from, hex.
    pub digest: String,
    /// The component's SDK (WIT version) marker, if any.
    pub sdk: Option<String>,
    /// The component's guest-version marker, if any.
    pub guest: Option<String>,
}

/// Whether `bytes` start like a `.cwasm` written by `agent-host compile`.
pub(crate) fn is_precompiled(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// Writes a `.cwasm`: magic, header, then the serialized component.
pub(crate) fn encode(header: &Header, artifact: &[u8]) -> Vec<u8> {
    let json = serde_json::to_vec(header).expect("a header of strings serializes");
    let len = u32::try_from(json.len()).expect("the header is a few short strings");
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + json.len() + artifact.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(artifact);
    out
}

/// Splits a `.cwasm` into its header and the serialized component. The
/// error says what is damaged, for "not a valid .cwasm: ...".
pub(crate) fn decode(bytes: &[u8]) -> Result<(Header, &[u8]), String> {
    let rest = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or("missing the agent-host header")?;
    let (len, rest) = rest
        .split_first_chunk::<4>()
        .ok_or("truncated in its header")?;
    let len = u32::from_le_bytes(*len) as usize;
    if len > MAX_HEADER || len > rest.len() {
        return Err("truncated in its header".into());
    }
    let (json, artifact) = rest.split_at(len);
    let header = serde_json::from_slice(json).map_err(|e| format!("unreadable header: {e}"))?;
    Ok((header, artifact))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            agent_host: "1.2.3".into(),
            engine: "00ff".into(),
            digest: "ab".repeat(32),
            sdk: Some("0.1.1".into()),
            guest: None,
        }
    }

    #[test]
    fn round_trips() {
        let bytes = encode(&header(), b"\x7fELF code");
        assert!(is_precompiled(&bytes));
        let (decoded, artifact) = decode(&bytes).unwrap();
        assert_eq!(decoded, header());
        assert_eq!(artifact, b"\x7fELF code");
    }

    #[test]
    fn damaged_files_are_errors() {
        let bytes = encode(&header(), b"code");
        for cut in [0, 4, MAGIC.len() + 2, MAGIC.len() + 10] {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&huge).is_err());
        let mut garbage = MAGIC.to_vec();
        garbage.extend_from_slice(&3u32.to_le_bytes());
        garbage.extend_from_slice(b"{{{");
        assert!(decode(&garbage).unwrap_err().contains("unreadable header"));
    }
}
