//! The `.cwasm` file format: a plugin compiled ahead of time by
//! `agent-host compile`.
//!
//! Layout: wasmtime's serialized component (`Component::serialize`, as the
//! compile cache stores it), then a JSON [`Header`], its length as a
//! little-endian `u32`, and the 8-byte magic [`MAGIC`]. The header comes
//! last so that the file itself is a wasmtime artifact that can be mapped
//! as it is (`Component::deserialize_file`, as the cache does): no copy of
//! its code or data, and pages are read only when used.
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

use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::engine::MAX_PRECOMPILED_HEADER;

/// Last bytes of every `.cwasm` written by `agent-host compile`; a bare
/// wasmtime artifact (`wasmtime compile`) lacks them.
pub(crate) const MAGIC: &[u8; 8] = b"AHCWASM\0";

/// Bytes after the header: its length and the magic.
pub(crate) const TRAILER: usize = 4 + MAGIC.len();

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
    /// Core instances one instance of the component creates (the pool's
    /// accounting needs the component's bytes, which a `.cwasm` lacks);
    /// absent in files of older releases, which count as the maximum.
    #[serde(default)]
    pub core_instances: Option<u32>,
}

/// Whether `bytes` end like a `.cwasm` written by `agent-host compile`.
pub(crate) fn is_precompiled(bytes: &[u8]) -> bool {
    bytes.ends_with(MAGIC)
}

/// Writes a `.cwasm`: the serialized component, then the header.
pub(crate) fn encode(header: &Header, artifact: &[u8]) -> Vec<u8> {
    let json = serde_json::to_vec(header).expect("a header of strings serializes");
    let len = u32::try_from(json.len()).expect("the header is a few short strings");
    let mut out = Vec::with_capacity(artifact.len() + json.len() + TRAILER);
    out.extend_from_slice(artifact);
    out.extend_from_slice(&json);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(MAGIC);
    out
}

/// The header's length, from the trailer (the last [`TRAILER`] bytes).
pub(crate) fn header_len(trailer: &[u8; TRAILER]) -> Result<usize, String> {
    let (len, magic) = trailer.split_at(4);
    if magic != MAGIC {
        return Err("missing the agent-host header".into());
    }
    let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
    if len > MAX_PRECOMPILED_HEADER {
        return Err("header too long".into());
    }
    Ok(len)
}

/// Parses the header's JSON.
pub(crate) fn parse_header(json: &[u8]) -> Result<Header, String> {
    serde_json::from_slice(json).map_err(|e| format!("unreadable header: {e}"))
}

/// The header of the `.cwasm` at `path`, reading only its end; `None` if
/// the file does not end like one.
pub(crate) fn read_file_header(path: &Path) -> std::io::Result<Option<Result<Header, String>>> {
    let mut file = File::open(path)?;
    let size = file.metadata()?.len();
    if size < TRAILER as u64 {
        return Ok(None);
    }
    let mut trailer = [0; TRAILER];
    file.seek(SeekFrom::End(-(TRAILER as i64)))?;
    file.read_exact(&mut trailer)?;
    if !trailer.ends_with(MAGIC) {
        return Ok(None);
    }
    let len = match header_len(&trailer) {
        Ok(len) if (len + TRAILER) as u64 <= size => len,
        Ok(_) => return Ok(Some(Err("truncated in its header".into()))),
        Err(err) => return Ok(Some(Err(err))),
    };
    let mut json = vec![0; len];
    file.seek(SeekFrom::End(-((len + TRAILER) as i64)))?;
    file.read_exact(&mut json)?;
    Ok(Some(parse_header(&json)))
}

/// Splits a `.cwasm` into its header and the serialized component. The
/// error says what is damaged, for "not a valid .cwasm: ...".
pub(crate) fn decode(bytes: &[u8]) -> Result<(Header, &[u8]), String> {
    let (rest, trailer) = bytes
        .split_last_chunk::<TRAILER>()
        .ok_or("truncated in its header")?;
    let len = header_len(trailer)?;
    if len > rest.len() {
        return Err("truncated in its header".into());
    }
    let (artifact, json) = rest.split_at(rest.len() - len);
    Ok((parse_header(json)?, artifact))
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
            core_instances: Some(3),
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
        for cut in [1, 5, TRAILER + 3, bytes.len()] {
            assert!(
                decode(&bytes[..bytes.len() - cut]).is_err(),
                "last {cut} bytes cut"
            );
        }
        let mut huge = u32::MAX.to_le_bytes().to_vec();
        huge.extend_from_slice(MAGIC);
        assert!(decode(&huge).is_err());
        let mut garbage = b"{{{".to_vec();
        garbage.extend_from_slice(&3u32.to_le_bytes());
        garbage.extend_from_slice(MAGIC);
        assert!(decode(&garbage).unwrap_err().contains("unreadable header"));
    }
}
