//! `ws-host run` settings: a TOML file can say everything the flags say,
//! and flags given on the command line override it. Paths in the file are
//! relative to the file's folder.
//!
//! ```toml
//! handler = "chat.wasm"        # upgrades on every other path
//! port = 8080
//! host = "127.0.0.1"
//! static = "public"
//! watch = true
//! log-format = "json"
//!
//! [routes]
//! "/echo" = "echo.wasm"
//!
//! [limits]                     # ws_host::Config
//! max-payload-bytes = 1048576
//! messages-before-auth = "queue"
//! [limits.sandbox]
//! event-deadline-ms = 500
//! ```

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use ws_host::Config;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// One readable line per event, coloured on a terminal (unless NO_COLOR is set).
    #[default]
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The settings a file may hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileSettings {
    pub handler: Option<PathBuf>,
    #[serde(default)]
    pub routes: BTreeMap<String, PathBuf>,
    #[serde(rename = "static")]
    pub static_dir: Option<PathBuf>,
    pub watch: Option<bool>,
    pub cache_dir: Option<PathBuf>,
    pub no_cache: Option<bool>,
    pub cluster: Option<String>,
    pub port: Option<u16>,
    pub host: Option<IpAddr>,
    pub log_format: Option<LogFormat>,
    pub limits: Option<Config>,
}

/// Where in `text` a parse error is, as `, line L, column C` (1-based);
/// toml's own rendering draws the line over several lines of output.
fn place(text: &str, error: &toml::de::Error) -> String {
    let Some(span) = error.span() else { return String::new() };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.chars().rev().take_while(|&c| c != '\n').count() + 1;
    format!(", line {line}, column {column}")
}

impl FileSettings {
    /// Reads a settings file; errors name the file and the line.
    pub fn read(path: &Path) -> anyhow::Result<FileSettings> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read the config file {}: {e}", path.display()))?;
        let mut settings: FileSettings = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}{}: {}", path.display(), place(&text, &e), e.message()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        settings.handler.iter_mut().for_each(resolve);
        settings.routes.values_mut().for_each(resolve);
        settings.static_dir.iter_mut().for_each(resolve);
        settings.cache_dir.iter_mut().for_each(resolve);
        for route in settings.routes.keys() {
            anyhow::ensure!(route.starts_with('/'), "{}: route {route:?} must start with `/`", path.display());
        }
        Ok(settings)
    }
}
