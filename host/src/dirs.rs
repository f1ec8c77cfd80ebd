//! Where agent-host keeps files of its own: `<user cache>/agent-host/<part>`.
//!
//! Policy: the user's cache directory is `$XDG_CACHE_HOME`, else
//! `$HOME/.cache`, as the XDG Base Directory specification defines it. A
//! variable that is empty or holds a relative path counts as unset (the
//! specification says to ignore both): either would otherwise put the cache
//! (compiled code, loaded with unsafe deserialisation, and LiveKit's client
//! library, loaded as native code) under whatever the working directory
//! happens to be. Without a usable variable there is no cache directory.
//!
//! Every cache of the host goes through [`cache_dir`], so they all agree.

use std::ffi::OsString;
use std::path::PathBuf;

/// `<user cache>/agent-host/<part>`; `None` when neither `XDG_CACHE_HOME`
/// nor `HOME` names an absolute directory.
pub(crate) fn cache_dir(part: &str) -> Option<PathBuf> {
    let base = user_cache(std::env::var_os("XDG_CACHE_HOME"), std::env::var_os("HOME"))?;
    Some(base.join("agent-host").join(part))
}

/// The user's cache directory from the values of `XDG_CACHE_HOME` and
/// `HOME` (apart from the environment, so tests need not change it).
fn user_cache(xdg_cache_home: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    absolute(xdg_cache_home).or_else(|| absolute(home).map(|home| home.join(".cache")))
}

/// The variable's value as a path, if it is an absolute one.
fn absolute(value: Option<OsString>) -> Option<PathBuf> {
    value.map(PathBuf::from).filter(|path| path.is_absolute())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(xdg: Option<&str>, home: Option<&str>) -> Option<PathBuf> {
        user_cache(xdg.map(OsString::from), home.map(OsString::from))
    }

    #[test]
    fn xdg_cache_home_wins_over_home() {
        assert_eq!(
            cache(Some("/var/cache/me"), Some("/home/me")),
            Some(PathBuf::from("/var/cache/me"))
        );
        assert_eq!(
            cache(None, Some("/home/me")),
            Some(PathBuf::from("/home/me/.cache"))
        );
    }

    #[test]
    fn empty_or_relative_values_count_as_unset() {
        // An empty XDG_CACHE_HOME once put compiled code in the working
        // directory; it now falls back to HOME, as the XDG spec says.
        for xdg in ["", "cache", "./cache"] {
            assert_eq!(
                cache(Some(xdg), Some("/home/me")),
                Some(PathBuf::from("/home/me/.cache")),
                "XDG_CACHE_HOME={xdg:?}"
            );
        }
        for home in ["", "me"] {
            assert_eq!(cache(Some(""), Some(home)), None, "HOME={home:?}");
            assert_eq!(cache(None, Some(home)), None, "HOME={home:?}");
        }
        assert_eq!(cache(None, None), None);
    }

    #[test]
    fn every_cache_is_under_the_same_root() {
        let Some(components) = cache_dir("components") else {
            // No HOME in this environment: nothing to compare, and the
            // function said so rather than inventing a directory.
            assert!(
                user_cache(std::env::var_os("XDG_CACHE_HOME"), std::env::var_os("HOME")).is_none()
            );
            return;
        };
        let ffi = cache_dir("livekit-ffi").expect("same environment, same answer");
        assert_eq!(components.parent(), ffi.parent());
        assert!(components.ends_with("agent-host/components"));
    }
}
