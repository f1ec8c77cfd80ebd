//! The protocol types: the subset of LiveKit's FFI protocol the host uses.
//!
//! Why a `.proto` subset rather than hand-written `prost` derives: the
//! subset (`host/proto/livekit_ffi.proto`) is compiled by `host/build.rs`
//! with `protox` (pure Rust, no system `protoc`) and `prost-build`, so the
//! same descriptors that generate these types are available to the schema
//! check below, which compares every message, field and enum value of the
//! subset with the descriptors embedded in the pinned wheel (name, number,
//! type, label, type name, oneof). A version bump that changes any of them
//! fails that test instead of corrupting messages at run time. Fields and
//! variants the host does not use are left out: protobuf decoding skips
//! them.

// Generated code: names and shapes follow the protocol, not our lints.
#![allow(clippy::large_enum_variant, clippy::enum_variant_names)]

include!(concat!(env!("OUT_DIR"), "/livekit.proto.rs"));

#[cfg(test)]
mod schema {
    use std::collections::HashMap;

    use prost::Message as _;
    use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorSet};

    use agent_host_capability::{Capability, require};

    use super::super::library::{DESCRIPTORS_FILE, cache_dir};

    const SUBSET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/livekit_ffi_subset.bin"));

    #[derive(Default)]
    struct Index<'a> {
        messages: HashMap<String, &'a DescriptorProto>,
        enums: HashMap<String, &'a EnumDescriptorProto>,
    }

    fn index<'a>(set: &'a FileDescriptorSet) -> Index<'a> {
        fn walk<'a>(prefix: &str, m: &'a DescriptorProto, idx: &mut Index<'a>) {
            let name = format!("{prefix}.{}", m.name());
            for e in &m.enum_type {
                idx.enums.insert(format!("{name}.{}", e.name()), e);
            }
            for n in &m.nested_type {
                walk(&name, n, idx);
            }
            idx.messages.insert(name, m);
        }
        let mut idx = Index::default();
        for file in &set.file {
            let prefix = format!(".{}", file.package());
            for e in &file.enum_type {
                idx.enums.insert(format!("{prefix}.{}", e.name()), e);
            }
            for m in &file.message_type {
                walk(&prefix, m, &mut idx);
            }
        }
        idx
    }

    fn oneof(m: &DescriptorProto, f: &prost_types::FieldDescriptorProto) -> Option<String> {
        f.oneof_index
            .and_then(|i| m.oneof_decl.get(i as usize))
            .map(|o| o.name().to_string())
    }

    /// Every difference between the subset and the wheel.
    fn differences(subset: &FileDescriptorSet, wheel: &FileDescriptorSet) -> Vec<String> {
        let (ours, theirs) = (index(subset), index(wheel));
        let mut problems = Vec::new();
        for (name, m) in &ours.messages {
            let Some(w) = theirs.messages.get(name) else {
                problems.push(format!("message {name} is not in the wheel"));
                continue;
            };
            for f in &m.field {
                let Some(wf) = w.field.iter().find(|wf| wf.name() == f.name()) else {
                    problems.push(format!("field {name}.{} is not in the wheel", f.name()));
                    continue;
                };
                let ours = (
                    f.number(),
                    f.r#type(),
                    f.label(),
                    f.type_name(),
                    oneof(m, f),
                );
                let theirs = (
                    wf.number(),
                    wf.r#type(),
                    wf.label(),
                    wf.type_name(),
                    oneof(w, wf),
                );
                if ours != theirs {
                    problems.push(format!(
                        "field {name}.{}: ours (number, type, label, type name, oneof) = {ours:?}, the wheel's = {theirs:?}",
                        f.name()
                    ));
                }
            }
        }
        for (name, e) in &ours.enums {
            let Some(w) = theirs.enums.get(name) else {
                problems.push(format!("enum {name} is not in the wheel"));
                continue;
            };
            for v in &e.value {
                match w.value.iter().find(|wv| wv.name() == v.name()) {
                    Some(wv) if wv.number() == v.number() => {}
                    Some(wv) => problems.push(format!(
                        "enum value {name}.{}: ours = {}, the wheel's = {}",
                        v.name(),
                        v.number(),
                        wv.number()
                    )),
                    None => problems.push(format!(
                        "enum value {name}.{} is not in the wheel",
                        v.name()
                    )),
                }
            }
        }
        problems.sort();
        problems
    }

    fn subset() -> FileDescriptorSet {
        FileDescriptorSet::decode(SUBSET).expect("build.rs wrote a descriptor set")
    }

    #[test]
    #[cfg_attr(
        not(has_livekit_lib),
        ignore = "needs LiveKit's client library: run `agent-host setup`"
    )]
    fn subset_matches_the_pinned_wheel() {
        require(Capability::LivekitLib);
        // `agent-host setup` writes the wheel's descriptors into its cache
        // beside the library.
        let path = cache_dir()
            .expect("no cache directory (HOME unset): run `agent-host setup` with a HOME")
            .join(DESCRIPTORS_FILE);
        let bytes = std::fs::read(&path).unwrap_or_else(|err| {
            panic!(
                "cannot read the wheel's descriptors {}: {err} (run `agent-host setup`)",
                path.display()
            )
        });
        let wheel = FileDescriptorSet::decode(bytes.as_slice())
            .expect("setup writes a valid descriptor set");
        let subset = subset();
        let problems = differences(&subset, &wheel);
        assert!(
            problems.is_empty(),
            "the protocol subset (host/proto/livekit_ffi.proto) does not match the wheel's schema ({}):\n{}",
            path.display(),
            problems.join("\n")
        );
        // The check really compares something.
        let idx = index(&subset);
        assert!(idx.messages.len() > 50, "{} messages", idx.messages.len());
    }

    #[test]
    fn a_changed_field_is_reported() {
        let subset = subset();
        let mut changed = subset.clone();
        let connect = changed
            .file
            .iter_mut()
            .flat_map(|f| f.message_type.iter_mut())
            .find(|m| m.name() == "ConnectRequest")
            .expect("ConnectRequest is in the subset");
        connect.field[0].number = Some(7);
        connect.field[1].set_type(prost_types::field_descriptor_proto::Type::Bytes);
        let problems = differences(&subset, &changed);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("ConnectRequest.token"), "{problems:?}");
        assert!(problems[1].contains("ConnectRequest.url"), "{problems:?}");
        assert!(differences(&subset, &subset).is_empty());
    }
}
