//! Where `liblivekit_ffi.so` comes from: the pinned wheel, and the places
//! the host looks for the library.
//!
//! Policy: an explicit path (`--livekit-lib`) wins, then `LIVEKIT_LIB_PATH`
//! (the variable the Python SDK honours too), then agent-host's cache, where
//! `agent-host setup` puts it:
//! `$XDG_CACHE_HOME/agent-host/livekit-ffi/<version>/` (else
//! `~/.cache/agent-host/livekit-ffi/<version>/`). A path that is named
//! explicitly must exist; the cache is only used when it holds the library.

use std::path::{Path, PathBuf};

/// The version of the `livekit` wheel whose library and schema the host is
/// written against.
pub const WHEEL_VERSION: &str = "1.2.1";

/// File name of the pinned wheel (x86-64 Linux, glibc >= 2.28).
pub const WHEEL_FILE: &str = "livekit-1.2.1-py3-none-manylinux_2_28_x86_64.whl";

/// SHA-256 of [`WHEEL_FILE`], as published on PyPI.
pub const WHEEL_SHA256: &str = "c9a0269cc23a889e20f716405a59fbae375a0248ea3d2d043da103cfb0b71711";

/// File name of the library.
pub const LIBRARY_FILE: &str = "liblivekit_ffi.so";

/// File name of the library's licence (Apache-2.0 plus third-party notices).
pub const LICENSE_FILE: &str = "LICENSE.md";

/// File name of the wheel's protocol descriptors (a serialized
/// `google.protobuf.FileDescriptorSet`), read by the schema check.
pub const DESCRIPTORS_FILE: &str = "livekit_ffi_descriptors.pb";

/// The environment variable naming the library.
pub const LIBRARY_ENV: &str = "LIVEKIT_LIB_PATH";

/// How to get the library, for error messages.
pub const INSTALL_HINT: &str = "run `agent-host setup` to install LiveKit's client library, or point --livekit-lib / LIVEKIT_LIB_PATH at a liblivekit_ffi.so";

/// Why the FFI transport is not available.
#[derive(Debug, thiserror::Error)]
pub enum FfiError {
    /// No library in any of the places the host looks.
    #[error(
        "LiveKit's client library ({LIBRARY_FILE}) was not found (looked in {searched}): {INSTALL_HINT}"
    )]
    NotFound {
        /// The places looked in, for people.
        searched: String,
    },
    /// A named library does not exist.
    #[error("{path} does not exist: {INSTALL_HINT}")]
    Missing {
        /// The path named.
        path: PathBuf,
    },
    /// The library exists but could not be loaded.
    #[error("loading LiveKit's client library {path}: {reason}")]
    Load {
        /// The library.
        path: PathBuf,
        /// What the loader said.
        reason: String,
    },
    /// The process already uses another copy of the library (there is one
    /// FFI client per process).
    #[error(
        "this process already uses LiveKit's client library from {loaded}; it cannot also load {requested}"
    )]
    OtherLibrary {
        /// The library in use.
        loaded: PathBuf,
        /// The library asked for.
        requested: PathBuf,
    },
}

/// `$XDG_CACHE_HOME/agent-host/livekit-ffi/<WHEEL_VERSION>`, else
/// `~/.cache/agent-host/livekit-ffi/<WHEEL_VERSION>`; `None` without a home
/// (an empty or relative value counts as unset).
pub fn cache_dir() -> Option<PathBuf> {
    Some(crate::dirs::cache_dir("livekit-ffi")?.join(WHEEL_VERSION))
}

/// The library to load: `explicit`, else `LIVEKIT_LIB_PATH`, else the
/// cache. Named paths must exist; the error says how to install it.
pub fn find_library(explicit: Option<&Path>) -> Result<PathBuf, FfiError> {
    let named = explicit.map(Path::to_path_buf).or_else(|| {
        std::env::var_os(LIBRARY_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    if let Some(path) = named {
        return if path.is_file() {
            Ok(path)
        } else {
            Err(FfiError::Missing { path })
        };
    }
    match cache_dir() {
        Some(dir) if dir.join(LIBRARY_FILE).is_file() => Ok(dir.join(LIBRARY_FILE)),
        Some(dir) => Err(FfiError::NotFound {
            searched: format!("{LIBRARY_ENV} (unset), {}", dir.display()),
        }),
        None => Err(FfiError::NotFound {
            searched: format!("{LIBRARY_ENV} (unset); no cache directory (HOME unset)"),
        }),
    }
}
