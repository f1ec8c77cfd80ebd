//! The root `Cargo.toml` says truly who uses each shared dependency: every
//! `Used by:` comment in `[workspace.dependencies]` names exactly the
//! members whose manifests take the dependencies below it.

use std::collections::BTreeSet;
use std::path::Path;

/// Members by the short name the comments use.
const MEMBERS: &[(&str, &str)] = &[
    ("host", "host"),
    ("guest-sdk", "guest-sdk"),
    ("tests", "tests"),
    ("fake-livekit", "tests/fake-livekit"),
    ("webrtc-double", "tests/webrtc-double"),
    ("capability", "tests/capability"),
    ("server-support", "tests/server-support"),
    ("legacy", "tests/guests/legacy"),
    ("faulty", "examples/faulty"),
    ("http-fetch", "examples/http-fetch"),
    ("assistant", "examples/assistant"),
    ("voice", "examples/voice"),
    ("frontend", "tests/guests/frontend"),
    ("prewarm-faulty", "tests/guests/prewarm-faulty"),
];

/// Whether the manifest takes `dep` from the workspace.
fn takes(manifest: &str, dep: &str) -> bool {
    manifest.lines().any(|line| {
        let line = line.trim_start();
        line.strip_prefix(dep).is_some_and(|rest| {
            rest.starts_with(".workspace") || rest.trim_start().starts_with("= { workspace")
        })
    })
}

/// The workspace's `members` list, as written in the root manifest.
fn workspace_members(workspace: &str) -> Vec<String> {
    let list = workspace
        .split_once("members = [")
        .and_then(|(_, rest)| rest.split_once(']'))
        .expect("the root manifest lists its members")
        .0;
    list.split(',')
        .map(|m| m.trim().trim_matches('"').to_string())
        .filter(|m| !m.is_empty())
        .collect()
}

#[test]
fn every_member_that_takes_a_workspace_dependency_is_checked() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let workspace = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let known: BTreeSet<&str> = MEMBERS.iter().map(|(_, dir)| *dir).collect();
    for member in workspace_members(&workspace) {
        let manifest = std::fs::read_to_string(root.join(&member).join("Cargo.toml")).unwrap();
        // Only lines of a `[...dependencies]` table count (not
        // `version.workspace = true` and the like in `[package]`).
        let mut in_dependencies = false;
        let takes_any = manifest.lines().any(|line| {
            let line = line.trim();
            if line.starts_with('[') {
                in_dependencies = line.trim_end_matches(']').ends_with("dependencies");
                return false;
            }
            in_dependencies
                && (line.contains(".workspace = true") || line.contains("{ workspace = true"))
        });
        assert!(
            !takes_any || known.contains(member.as_str()),
            "workspace member `{member}` takes workspace dependencies but is not in MEMBERS, \
             so the `Used by:` comments are not checked against it"
        );
    }
}

#[test]
fn used_by_comments_name_the_members_that_use_each_dependency() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let read = |path: &Path| {
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let workspace = read(&root.join("Cargo.toml"));
    let manifests: Vec<(&str, String)> = MEMBERS
        .iter()
        .map(|(name, dir)| (*name, read(&root.join(dir).join("Cargo.toml"))))
        .collect();
    let mut claimed: Option<BTreeSet<String>> = None;
    let mut in_comment = false;
    let mut checked = 0;
    for line in workspace.lines() {
        if let Some(comment) = line.strip_prefix('#') {
            if !in_comment {
                // A new comment starts a new group, claimed or not.
                claimed = None;
            }
            in_comment = true;
            if let Some((_, names)) = comment.split_once("Used by:") {
                let names = names.trim().trim_end_matches('.');
                claimed = Some(names.split(',').map(|n| n.trim().to_string()).collect());
            }
            continue;
        }
        in_comment = false;
        if line.trim().is_empty() || line.starts_with('[') {
            claimed = None;
            continue;
        }
        let (Some(claimed), Some((dep, _))) = (&claimed, line.split_once(" = ")) else {
            continue;
        };
        let users: BTreeSet<String> = manifests
            .iter()
            .filter(|(_, manifest)| takes(manifest, dep))
            .map(|(name, _)| name.to_string())
            .collect();
        assert_eq!(
            &users, claimed,
            "root Cargo.toml: `{dep}` is said to be used by {claimed:?}, but these members take it: {users:?}"
        );
        checked += 1;
    }
    assert!(
        checked >= 15,
        "only {checked} dependencies under `Used by:` comments"
    );
}
