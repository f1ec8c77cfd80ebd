//! The host's WIT (`wit/`) as embedded in the binary, for the guest SDK
//! toolchains that build Python and JavaScript projects against it.
//!
//! Invariant: this is every file of `wit/`, byte for byte (a test walks the
//! directory), so a guest built by this binary binds exactly the contract
//! the binary implements; each SDK writes these files under its own
//! directory ([`files_under`]).

/// Every file of `wit/`: (path relative to `wit/`, contents).
pub(crate) const WIT_FILES: &[(&str, &str)] = &[
    ("agent.wit", include_str!("../../../wit/agent.wit")),
    ("deps/cli.wit", include_str!("../../../wit/deps/cli.wit")),
    (
        "deps/clocks.wit",
        include_str!("../../../wit/deps/clocks.wit"),
    ),
    (
        "deps/filesystem.wit",
        include_str!("../../../wit/deps/filesystem.wit"),
    ),
    ("deps/http.wit", include_str!("../../../wit/deps/http.wit")),
    ("deps/io.wit", include_str!("../../../wit/deps/io.wit")),
    (
        "deps/random.wit",
        include_str!("../../../wit/deps/random.wit"),
    ),
    (
        "deps/sockets.wit",
        include_str!("../../../wit/deps/sockets.wit"),
    ),
];

/// [`WIT_FILES`] with their paths under `prefix` (e.g. `"wit/"`).
pub(crate) fn files_under(prefix: &str) -> impl Iterator<Item = (String, &'static str)> + '_ {
    WIT_FILES
        .iter()
        .map(move |(path, text)| (format!("{prefix}{path}"), *text))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::{Path, PathBuf};

    use super::*;

    #[test]
    fn every_file_of_the_wit_dir_is_embedded_as_it_is() {
        let wit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
        let mut on_disk: Vec<(String, String)> = walk(&wit)
            .into_iter()
            .map(|path| {
                let name = path
                    .strip_prefix(&wit)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                (name, fs::read_to_string(&path).unwrap())
            })
            .collect();
        on_disk.sort();
        let mut embedded: Vec<(String, String)> = WIT_FILES
            .iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect();
        embedded.sort();
        assert_eq!(
            embedded.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            on_disk.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            "WIT_FILES must embed every file of wit/"
        );
        assert!(embedded == on_disk);
    }

    #[test]
    fn files_under_prefixes_every_path() {
        let files: Vec<String> = files_under("sdk/wit/").map(|(p, _)| p).collect();
        assert_eq!(files.len(), WIT_FILES.len());
        assert!(files.contains(&"sdk/wit/agent.wit".to_string()));
        assert!(files.contains(&"sdk/wit/deps/http.wit".to_string()));
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.extend(walk(&path));
            } else {
                files.push(path);
            }
        }
        files
    }
}
