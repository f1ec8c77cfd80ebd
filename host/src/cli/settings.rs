//! Settings of `run`, from flags, environment and an optional TOML file.
//!
//! Precedence: a flag (or its environment variable) beats the file, which
//! beats the default. Every setting of `run` can be given in the file; the
//! per-plugin tables (`[[plugin]]`) may override the worker and limit
//! settings for that plugin's worker. The defaults are stated once, here,
//! and the `--help` text of each flag names the same value.
//!
//! ```toml
//! url = "wss://my-project.livekit.cloud"
//! api_key = "APIxxxx"
//! api_secret = "..."          # or leave out and use LIVEKIT_API_SECRET
//! max_jobs = 200
//! admin_token = "change-me"
//!
//! [[plugin]]
//! path = "agents/support.wasm"
//! agent_name = "support"
//! memory_limit = "128MiB"
//! host_memory_limit = "32MiB"   # default 16MiB
//! job_cpu_limit = "0.5/10s"     # third-party plugin: half a core; default off
//! allow_http = ["api.openai.com", "*.deepgram.com:443"]
//! max_websockets = 4            # default 8; WebSockets reach allow_http only
//!
//! [[plugin.credential]]          # this plugin's; a plugin without any
//! destination = "api.openai.com" # uses the top-level `[[credential]]`s
//! header = "Authorization"
//! value = "Bearer {env:OPENAI_API_KEY}"   # or {file:/run/secrets/key}
//!
//! [[plugin]]
//! path = "agents/notetaker.wasm"
//! agent_name = "notetaker"
//! max_jobs = 50
//! ```

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use agent_host::config::job::CpuQuota;
use agent_host::{Credential, HttpRule};
use anyhow::{Context as _, Result, bail};
use serde::Deserialize;

use super::parse::parse_bytes;

/// Settings that one worker uses; each may be set globally or per plugin.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WorkerSettings {
    pub agent_name: Option<String>,
    pub job_type: Option<String>,
    pub deployment: Option<String>,
    pub max_jobs: Option<u32>,
    pub load_threshold: Option<f32>,
    #[serde(default, with = "opt_duration")]
    pub drain_timeout: Option<Duration>,
    pub max_retries: Option<u32>,
    #[serde(default, with = "opt_duration")]
    pub termination_grace: Option<Duration>,
    #[serde(default, with = "opt_duration")]
    pub ping_interval: Option<Duration>,
    #[serde(default, with = "opt_duration")]
    pub ping_timeout: Option<Duration>,
    pub hidden: Option<bool>,
    pub can_publish: Option<bool>,
    pub can_subscribe: Option<bool>,
    pub can_publish_data: Option<bool>,
    pub can_update_metadata: Option<bool>,
    #[serde(default, with = "opt_bytes")]
    pub memory_limit: Option<u64>,
    #[serde(default, with = "opt_bytes")]
    pub host_memory_limit: Option<u64>,
    #[serde(default, with = "opt_duration")]
    pub cpu_slice: Option<Duration>,
    #[serde(default, with = "opt_cpu_quota")]
    pub job_cpu_limit: Option<CpuQuota>,
    #[serde(default, with = "opt_duration")]
    pub wall_clock_limit: Option<Duration>,
    #[serde(default, with = "opt_rules")]
    pub allow_http: Option<Vec<HttpRule>>,
    pub allow_http_private: Option<bool>,
    /// `[[credential]]` tables (`destination`, `header`, `value`), read
    /// when the file is loaded.
    #[serde(default, with = "opt_credentials")]
    pub credential: Option<Vec<Credential>>,
    pub max_websockets: Option<u32>,
    #[serde(default, with = "opt_bytes")]
    pub websocket_message_limit: Option<u64>,
    #[serde(default, with = "opt_bytes")]
    pub websocket_buffer_limit: Option<u64>,
}

/// One `[[plugin]]` table.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PluginSettings {
    /// A `.wasm` component or a guest project directory, relative to the file.
    pub path: PathBuf,
    #[serde(flatten)]
    pub worker: WorkerSettings,
}

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub url: Option<String>,
    pub api_key: Option<String>,
    pub api_secret: Option<String>,
    pub http_host: Option<IpAddr>,
    pub http_port: Option<u16>,
    pub admin_token: Option<String>,
    pub watch: Option<bool>,
    pub cache_dir: Option<PathBuf>,
    /// LiveKit's client library (`--livekit-lib`).
    pub livekit_lib: Option<PathBuf>,
    /// Run without room I/O (`--no-room-io`).
    pub no_room_io: Option<bool>,
    /// LiveKit Cloud's worker token (`--worker-token`).
    pub worker_token: Option<String>,
    /// CA files to trust beside the built-in roots (`--ca-file`), relative
    /// to the file.
    pub ca_file: Option<Vec<PathBuf>>,
    #[serde(default)]
    pub plugin: Vec<PluginSettings>,
    #[serde(flatten)]
    pub worker: WorkerSettings,
}

impl FileSettings {
    /// Reads and checks a settings file; plugin paths become relative to
    /// the file's directory.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the config file {}", path.display()))?;
        let mut settings: FileSettings = toml::from_str(&text)
            .with_context(|| format!("in the config file {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for plugin in &mut settings.plugin {
            if plugin.path.is_relative() {
                plugin.path = base.join(&plugin.path);
            }
        }
        if let Some(lib) = settings.livekit_lib.as_mut().filter(|l| l.is_relative()) {
            *lib = base.join(&*lib);
        }
        for ca in settings.ca_file.iter_mut().flatten() {
            if ca.is_relative() {
                *ca = base.join(&*ca);
            }
        }
        Ok(settings)
    }
}

impl WorkerSettings {
    /// `self` where set, else `fallback`.
    pub fn or(&self, fallback: &WorkerSettings) -> WorkerSettings {
        macro_rules! pick {
            ($($field:ident),*) => {
                WorkerSettings { $($field: self.$field.clone().or_else(|| fallback.$field.clone()),)* }
            };
        }
        pick!(
            agent_name,
            job_type,
            deployment,
            max_jobs,
            load_threshold,
            drain_timeout,
            max_retries,
            termination_grace,
            ping_interval,
            ping_timeout,
            hidden,
            can_publish,
            can_subscribe,
            can_publish_data,
            can_update_metadata,
            memory_limit,
            host_memory_limit,
            cpu_slice,
            job_cpu_limit,
            wall_clock_limit,
            allow_http,
            allow_http_private,
            credential,
            max_websockets,
            websocket_message_limit,
            websocket_buffer_limit
        )
    }
}

/// A `--plugin` value: `PATH` or `NAME=PATH`.
pub fn parse_plugin_flag(value: &str) -> Result<(Option<String>, PathBuf), String> {
    match value.split_once('=') {
        Some((name, path)) if !name.is_empty() && !name.contains('/') => {
            Ok((Some(name.to_string()), PathBuf::from(path)))
        }
        _ if value.is_empty() => Err("empty plugin path".into()),
        _ => Ok((None, PathBuf::from(value))),
    }
}

/// Checks that every plugin gets its own agent name.
pub fn check_names<'a>(names: impl Iterator<Item = &'a str>) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for name in names {
        if !seen.insert(name) {
            let shown = if name.is_empty() {
                "(empty: automatic dispatch)"
            } else {
                name
            };
            bail!(
                "two plugins have the agent name {shown}; give each plugin its own (`--plugin NAME=PATH`)"
            );
        }
    }
    Ok(())
}

mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize as _, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| humantime::parse_duration(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

mod opt_rules {
    use agent_host::HttpRule;
    use serde::{Deserialize as _, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<HttpRule>>, D::Error> {
        let rules: Option<Vec<String>> = Option::deserialize(d)?;
        rules
            .map(|rules| {
                rules
                    .iter()
                    .map(|r| r.parse().map_err(serde::de::Error::custom))
                    .collect()
            })
            .transpose()
    }
}

mod opt_credentials {
    use agent_host::Credential;
    use serde::{Deserialize, Deserializer};

    /// One `[[credential]]` table.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Table {
        destination: String,
        header: String,
        value: String,
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<Credential>>, D::Error> {
        let tables: Option<Vec<Table>> = Option::deserialize(d)?;
        tables
            .map(|tables| {
                tables
                    .iter()
                    .map(|t| {
                        Credential::new(&t.destination, &t.header, &t.value)
                            .map_err(serde::de::Error::custom)
                    })
                    .collect()
            })
            .transpose()
    }
}

mod opt_cpu_quota {
    use agent_host::config::job::CpuQuota;
    use serde::{Deserialize as _, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<CpuQuota>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| t.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

mod opt_bytes {
    use serde::{Deserialize as _, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| super::parse_bytes(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_file() {
        let text = r#"
            url = "ws://localhost:7880"
            api_key = "devkey"
            max_jobs = 20
            memory_limit = "32MiB"
            drain_timeout = "5m"
            admin_token = "t"

            [[plugin]]
            path = "a.wasm"
            agent_name = "a"
            cpu_slice = "250ms"
            job_cpu_limit = "0.5/20s"
            host_memory_limit = "8MiB"
        "#;
        let s: FileSettings = toml::from_str(text).unwrap();
        assert_eq!(s.worker.max_jobs, Some(20));
        assert_eq!(s.worker.memory_limit, Some(32 << 20));
        assert_eq!(s.worker.drain_timeout, Some(Duration::from_secs(300)));
        let plugin = s.plugin[0].worker.or(&s.worker);
        assert_eq!(plugin.agent_name.as_deref(), Some("a"));
        assert_eq!(plugin.cpu_slice, Some(Duration::from_millis(250)));
        assert_eq!(plugin.job_cpu_limit, Some("0.5/20s".parse().unwrap()));
        assert_eq!(plugin.host_memory_limit, Some(8 << 20));
        assert_eq!(plugin.max_jobs, Some(20));
    }

    #[test]
    fn outbound_http_rules() {
        let text =
            "allow_http = [\"api.example.com\", \"10.0.0.0/8:443\"]\nallow_http_private = true";
        let s: FileSettings = toml::from_str(text).unwrap();
        let rules: Vec<String> = s
            .worker
            .allow_http
            .unwrap()
            .iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(rules, ["api.example.com", "10.0.0.0/8:443"]);
        assert_eq!(s.worker.allow_http_private, Some(true));
    }

    #[test]
    fn credential_tables_are_read_once_and_per_plugin() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, "sk-file\n").unwrap();
        let text = format!(
            r#"
            [[credential]]
            destination = "api.openai.com"
            header = "Authorization"
            value = "Bearer {{file:{key}}}"

            [[plugin]]
            path = "a.wasm"
            [[plugin.credential]]
            destination = "api.deepgram.com"
            header = "Authorization"
            value = "Token {{file:{key}}}"

            [[plugin]]
            path = "b.wasm"
            "#,
            key = key.display()
        );
        let s: FileSettings = toml::from_str(&text).unwrap();
        let destinations = |w: &WorkerSettings| -> Vec<String> {
            w.credential
                .iter()
                .flatten()
                .map(|c| c.destination().to_string())
                .collect()
        };
        assert_eq!(destinations(&s.worker), ["api.openai.com:443"]);
        // A plugin's own tables replace the top level's.
        assert_eq!(
            destinations(&s.plugin[0].worker.or(&s.worker)),
            ["api.deepgram.com:443"]
        );
        assert_eq!(
            destinations(&s.plugin[1].worker.or(&s.worker)),
            ["api.openai.com:443"]
        );
        assert!(!format!("{s:?}").contains("sk-file"), "{s:?}");
        let table = |value: &str| {
            format!(
                "[[credential]]\ndestination = \"x.com\"\nheader = \"A\"\nvalue = \"{value}\"\n"
            )
        };
        let err = toml::from_str::<FileSettings>(&table("{file:/nonexistent/k}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/k"), "{err}");
        let pasted = toml::from_str::<FileSettings>(&table("Bearer sk-pasted"));
        assert!(pasted.unwrap_err().to_string().contains("reads no secret"));
        let extra = format!(
            "{}extra = 1\n",
            table(&format!("{{file:{}}}", key.display()))
        );
        assert!(toml::from_str::<FileSettings>(&extra).is_err());
    }

    #[test]
    fn websocket_limits() {
        let text = "max_websockets = 2\nwebsocket_message_limit = \"64KiB\"\nwebsocket_buffer_limit = \"1MiB\"";
        let s: FileSettings = toml::from_str(text).unwrap();
        assert_eq!(s.worker.max_websockets, Some(2));
        assert_eq!(s.worker.websocket_message_limit, Some(64 << 10));
        assert_eq!(s.worker.websocket_buffer_limit, Some(1 << 20));
        #[derive(clap::Parser)]
        struct Flags {
            #[command(flatten)]
            limits: super::super::args::LimitArgs,
        }
        let flags = <Flags as clap::Parser>::parse_from(["run", "--max-websockets", "3"]);
        let limits = flags.limits.job_limits(&s.worker).unwrap();
        assert_eq!(limits.max_websockets, 3, "a flag beats the file");
        let flags = <Flags as clap::Parser>::parse_from(["run"]);
        let limits = flags.limits.job_limits(&s.worker).unwrap();
        assert_eq!(limits.max_websockets, 2);
        assert_eq!(limits.websocket_message_bytes, 64 << 10);
        assert_eq!(limits.websocket_buffer_bytes, 1 << 20);
    }

    #[test]
    fn room_io_settings_resolve_against_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent-host.toml");
        std::fs::write(
            &path,
            "livekit_lib = \"lib/liblivekit_ffi.so\"\nno_room_io = true\n",
        )
        .unwrap();
        let s = FileSettings::load(&path).unwrap();
        assert_eq!(
            s.livekit_lib,
            Some(dir.path().join("lib/liblivekit_ffi.so"))
        );
        assert_eq!(s.no_room_io, Some(true));
    }

    #[test]
    fn network_settings_resolve_against_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent-host.toml");
        std::fs::write(
            &path,
            "worker_token = \"cloud\"\nca_file = [\"certs/ca.pem\", \"/etc/other.pem\"]\n",
        )
        .unwrap();
        let s = FileSettings::load(&path).unwrap();
        assert_eq!(s.worker_token.as_deref(), Some("cloud"));
        assert_eq!(
            s.ca_file,
            Some(vec![
                dir.path().join("certs/ca.pem"),
                PathBuf::from("/etc/other.pem")
            ])
        );
    }

    #[test]
    fn refuses_unknown_keys_and_bad_values() {
        assert!(toml::from_str::<FileSettings>("max_job = 3").is_err());
        assert!(toml::from_str::<FileSettings>("memory_limit = \"lots\"").is_err());
        assert!(toml::from_str::<FileSettings>("drain_timeout = \"soon\"").is_err());
        assert!(toml::from_str::<FileSettings>("job_cpu_limit = \"2\"").is_err());
        assert!(toml::from_str::<FileSettings>("allow_http = [\"http://x\"]").is_err());
    }

    proptest::proptest! {
        /// Any text as a config file is parsed or refused with an error,
        /// never a panic.
        #[test]
        fn config_parsing_never_panics(text in "\\PC{0,200}") {
            let _ = toml::from_str::<FileSettings>(&text);
        }

        /// Durations and sizes written by people parse as they read.
        #[test]
        fn sizes_and_durations(mib in 1u64..4096, secs in 1u64..86_400) {
            let text = format!("memory_limit = \"{mib}MiB\"\ndrain_timeout = \"{secs}s\"");
            let s: FileSettings = toml::from_str(&text).unwrap();
            proptest::prop_assert_eq!(s.worker.memory_limit, Some(mib << 20));
            proptest::prop_assert_eq!(s.worker.drain_timeout, Some(Duration::from_secs(secs)));
        }
    }

    #[test]
    fn plugin_flags() {
        assert_eq!(parse_plugin_flag("a.wasm"), Ok((None, "a.wasm".into())));
        assert_eq!(
            parse_plugin_flag("x=b.wasm"),
            Ok((Some("x".into()), "b.wasm".into()))
        );
        assert_eq!(
            parse_plugin_flag("./k=v/c.wasm"),
            Ok((None, "./k=v/c.wasm".into()))
        );
        assert!(check_names(["a", "b"].into_iter()).is_ok());
        assert!(check_names(["a", "a"].into_iter()).is_err());
    }
}
