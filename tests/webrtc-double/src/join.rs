//! Decoding the `join_request` query parameter of `/rtc/v1`.
//!
//! Wire format (livekit-signaling): URL-safe base64 of a protobuf
//! `WrappedJoinRequest{compression, join_request}`, where `join_request` is
//! a protobuf `JoinRequest`, gzip-compressed when `compression == GZIP`.
//! Padding is optional and the standard alphabet is accepted too.
//! Decompression is capped at [`MAX_JOIN_REQUEST`] bytes.

use std::io::Read;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use flate2::read::GzDecoder;
use livekit_protocol::{JoinRequest, WrappedJoinRequest, wrapped_join_request::Compression};
use prost::Message as _;

/// Largest decoded `JoinRequest` accepted (the real one is about 15 kB).
pub const MAX_JOIN_REQUEST: usize = 1 << 20;

/// Why a join request could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// Not base64.
    #[error("join_request is not base64: {0}")]
    Base64(String),
    /// Not a protobuf `WrappedJoinRequest` / `JoinRequest`.
    #[error("join_request is not a valid protobuf: {0}")]
    Protobuf(String),
    /// Gzip failed, or the result exceeds [`MAX_JOIN_REQUEST`].
    #[error("join_request does not decompress: {0}")]
    Gzip(String),
    /// An unknown compression value.
    #[error("unknown join_request compression {0}")]
    Compression(i32),
}

/// Decodes the parameter value (already percent-decoded).
pub fn decode(param: &str) -> Result<JoinRequest, JoinError> {
    let normalized: String = param
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' | ' ' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    let wrapped = URL_SAFE_NO_PAD
        .decode(normalized.as_bytes())
        .map_err(|e| JoinError::Base64(e.to_string()))?;
    let wrapped = WrappedJoinRequest::decode(wrapped.as_slice())
        .map_err(|e| JoinError::Protobuf(e.to_string()))?;
    let raw = match Compression::try_from(wrapped.compression) {
        Ok(Compression::None) => wrapped.join_request,
        Ok(Compression::Gzip) => {
            let mut out = Vec::new();
            GzDecoder::new(wrapped.join_request.as_slice())
                .take(MAX_JOIN_REQUEST as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| JoinError::Gzip(e.to_string()))?;
            if out.len() > MAX_JOIN_REQUEST {
                return Err(JoinError::Gzip("too large".into()));
            }
            out
        }
        Err(_) => return Err(JoinError::Compression(wrapped.compression)),
    };
    JoinRequest::decode(raw.as_slice()).map_err(|e| JoinError::Protobuf(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    use flate2::write::GzEncoder;
    use livekit_protocol::{ClientInfo, SessionDescription};

    use super::*;

    fn sample() -> JoinRequest {
        JoinRequest {
            client_info: Some(ClientInfo {
                protocol: 18,
                ..Default::default()
            }),
            publisher_offer: Some(SessionDescription {
                r#type: "offer".into(),
                sdp: "v=0\r\n".repeat(100),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn wrap(compression: Compression, join: &JoinRequest) -> Vec<u8> {
        let raw = join.encode_to_vec();
        let join_request = match compression {
            Compression::None => raw,
            Compression::Gzip => {
                let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::default());
                enc.write_all(&raw).unwrap();
                enc.finish().unwrap()
            }
        };
        WrappedJoinRequest {
            compression: compression as i32,
            join_request,
        }
        .encode_to_vec()
    }

    #[test]
    fn decodes_gzip_and_plain_in_every_base64_flavour() {
        let join = sample();
        for c in [Compression::Gzip, Compression::None] {
            let bytes = wrap(c, &join);
            for text in [
                URL_SAFE_NO_PAD.encode(&bytes),
                URL_SAFE.encode(&bytes),
                STANDARD.encode(&bytes),
            ] {
                assert_eq!(decode(&text).unwrap(), join);
            }
        }
    }

    #[test]
    fn refuses_garbage() {
        assert!(matches!(decode("!!!"), Err(JoinError::Base64(_))));
        assert!(matches!(
            decode(&URL_SAFE_NO_PAD.encode([0xff, 0xff, 0xff])),
            Err(JoinError::Protobuf(_))
        ));
        let bad_gzip = WrappedJoinRequest {
            compression: Compression::Gzip as i32,
            join_request: b"not gzip".to_vec(),
        }
        .encode_to_vec();
        assert!(matches!(
            decode(&URL_SAFE_NO_PAD.encode(bad_gzip)),
            Err(JoinError::Gzip(_))
        ));
        let odd = WrappedJoinRequest {
            compression: 7,
            join_request: vec![],
        }
        .encode_to_vec();
        assert_eq!(
            decode(&URL_SAFE_NO_PAD.encode(odd)),
            Err(JoinError::Compression(7))
        );
    }

    #[test]
    fn caps_decompressed_size() {
        let big = JoinRequest {
            metadata: "x".repeat(MAX_JOIN_REQUEST + 10),
            ..Default::default()
        };
        let text = URL_SAFE_NO_PAD.encode(wrap(Compression::Gzip, &big));
        assert!(matches!(decode(&text), Err(JoinError::Gzip(_))));
    }
}
