//! Reading the pinned `livekit` wheel's protocol schema.
//!
//! The wheel ships no `.proto` files, but each generated module
//! `livekit/rtc/_proto/<name>_pb2.py` embeds its serialized
//! `FileDescriptorProto` as a Python bytes literal passed to
//! `AddSerializedFile(b'...')`. `agent-host setup` collects them into one
//! `FileDescriptorSet` ([`super::DESCRIPTORS_FILE`]), which the schema check
//! compares with the host's protocol subset.

use prost::Message as _;
use prost_types::{FileDescriptorProto, FileDescriptorSet};

/// The serialized `FileDescriptorProto` embedded in one `_pb2.py` module.
pub fn descriptor_from_pb2(source: &str) -> Result<Vec<u8>, String> {
    const MARK: &str = "AddSerializedFile(b";
    let start = source
        .find(MARK)
        .ok_or("no AddSerializedFile(b'...') call")?
        + MARK.len();
    let mut chars = source[start..].chars();
    let quote = chars
        .next()
        .filter(|c| *c == '\'' || *c == '"')
        .ok_or("no bytes literal")?;
    let mut out = Vec::new();
    loop {
        let c = chars.next().ok_or("unterminated bytes literal")?;
        if c == quote {
            return Ok(out);
        }
        if c != '\\' {
            let c = u8::try_from(c).map_err(|_| "non-ASCII character in a bytes literal")?;
            out.push(c);
            continue;
        }
        let e = chars.next().ok_or("unterminated escape")?;
        match e {
            'n' => out.push(b'\n'),
            'r' => out.push(b'\r'),
            't' => out.push(b'\t'),
            'a' => out.push(0x07),
            'b' => out.push(0x08),
            'f' => out.push(0x0c),
            'v' => out.push(0x0b),
            '\\' | '\'' | '"' => out.push(e as u8),
            'x' => {
                let hex: String = chars.by_ref().take(2).collect();
                out.push(u8::from_str_radix(&hex, 16).map_err(|_| format!("bad escape \\x{hex}"))?);
            }
            '0'..='7' => {
                // Up to three octal digits.
                let mut value = e.to_digit(8).unwrap_or(0);
                let rest = chars.as_str();
                let digits = rest.chars().take(2).take_while(|c| c.is_digit(8)).count();
                for d in rest.chars().take(digits) {
                    value = value * 8 + d.to_digit(8).unwrap_or(0);
                }
                chars = rest[digits..].chars();
                out.push(u8::try_from(value).map_err(|_| "octal escape out of range")?);
            }
            other => return Err(format!("unknown escape \\{other}")),
        }
    }
}

/// A serialized `FileDescriptorSet` of the `_pb2.py` modules `sources`
/// (as `(file name, source)` pairs, for error messages).
pub fn descriptor_set(sources: &[(String, String)]) -> Result<Vec<u8>, String> {
    let mut set = FileDescriptorSet::default();
    for (name, source) in sources {
        let bytes = descriptor_from_pb2(source).map_err(|e| format!("{name}: {e}"))?;
        let file = FileDescriptorProto::decode(bytes.as_slice())
            .map_err(|e| format!("{name}: not a FileDescriptorProto: {e}"))?;
        set.file.push(file);
    }
    if set.file.is_empty() {
        return Err("no _pb2.py modules".into());
    }
    Ok(set.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_python_bytes_literals() {
        let src = r#"_descriptor_pool.Default().AddSerializedFile(b'\n\x0chandle.proto\x12\rlivekit.proto\"\x1c\'\\\t\101z')
"#;
        let bytes = descriptor_from_pb2(src).unwrap();
        let mut want = vec![b'\n', 0x0c];
        want.extend_from_slice(b"handle.proto");
        want.extend_from_slice(&[0x12, b'\r']);
        want.extend_from_slice(b"livekit.proto\"");
        want.extend_from_slice(&[0x1c, b'\'', b'\\', b'\t', b'A', b'z']);
        assert_eq!(bytes, want);
        assert!(descriptor_from_pb2("nothing here").is_err());
        assert!(descriptor_from_pb2("AddSerializedFile(b'abc").is_err());
    }
}
