//! The guest's `accept` checked against what LiveKit enforces when the
//! agent joins its room.
//!
//! Policy: an accept the server would refuse at join time (or whose answer
//! frame it would refuse outright) is not sent as an accept: the offer
//! fails with a reason naming the field and its limit, and the worker
//! declines it. The limits are those of the open-source server
//! (`config.go` `LimitConfig`, checked in `roommanager.go` on join):
//! identity and name 256 bytes each, metadata 512 KiB, attributes 64 KiB
//! (keys and values together).

use crate::bindings::types::AcceptOptions;

pub use crate::config::rooms::{MAX_ATTRIBUTES, MAX_IDENTITY, MAX_METADATA, MAX_NAME};

/// `Err` naming the first field of `options` over LiveKit's join limits.
pub(crate) fn check(options: &AcceptOptions) -> Result<(), String> {
    let attributes: usize = options
        .attributes
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum();
    let fields = [
        ("identity", options.identity.len(), MAX_IDENTITY),
        ("name", options.name.len(), MAX_NAME),
        ("metadata", options.metadata.len(), MAX_METADATA),
        ("attributes", attributes, MAX_ATTRIBUTES),
    ];
    for (field, len, max) in fields {
        if len > max {
            return Err(format!(
                "the agent accepted with a participant {field} of {len} bytes; LiveKit lets an agent join with at most {max}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> AcceptOptions {
        AcceptOptions {
            identity: "a".repeat(MAX_IDENTITY),
            name: "n".repeat(MAX_NAME),
            metadata: "m".repeat(MAX_METADATA),
            attributes: vec![("k".into(), "v".repeat(MAX_ATTRIBUTES - 1))],
        }
    }

    #[test]
    fn at_the_limits_is_accepted() {
        assert_eq!(check(&options()), Ok(()));
    }

    #[test]
    fn one_byte_over_any_limit_is_refused() {
        let mut o = options();
        o.identity.push('a');
        assert!(check(&o).unwrap_err().contains("identity of 257 bytes"));
        let mut o = options();
        o.name.push('n');
        assert!(check(&o).unwrap_err().contains("name of 257 bytes"));
        let mut o = options();
        o.metadata.push('m');
        assert!(check(&o).unwrap_err().contains("metadata of 524289 bytes"));
        let mut o = options();
        // Keys count too.
        o.attributes.push(("x".into(), String::new()));
        assert!(check(&o).unwrap_err().contains("attributes of 65537 bytes"));
    }
}
