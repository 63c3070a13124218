//! `--watch`: swap a handler when its `.wasm` file is rewritten or atomically
//! replaced. Changes are debounced; a half-written file fails to compile and
//! is refused (the running version keeps serving), and the write that
//! completes it triggers the next attempt. An unchanged file is skipped.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use crate::runtime::{Handler, digest};

/// Quiet time after the last change before the file is read.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// Watches a handler's file while alive.
pub struct FileWatcher {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FileWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts watching `path` (its folder, to see atomic renames) and swaps
/// `handler` on each settled change. Must be called inside a tokio runtime.
pub fn watch_file(handler: Handler, path: &Path) -> notify::Result<FileWatcher> {
    let path = path.canonicalize().map_err(|e| notify::Error::io(e).add_path(path.to_owned()))?;
    let folder = path.parent().map(Path::to_owned).unwrap_or_else(|| PathBuf::from("."));
    let (changes, mut changed) = mpsc::unbounded_channel();
    let changed_before = changes.clone();
    let file_name = path.file_name().map(ToOwned::to_owned);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !event.kind.is_access()
            && event.paths.iter().any(|p| p.file_name() == file_name.as_deref())
        {
            let _ = changes.send(());
        }
    })?;
    watcher.watch(&folder, RecursiveMode::NonRecursive)?;
    tracing::info!(handler = %handler.name(), file = %path.display(), "watching for new versions");
    // What the file holds now, read before this returns: a change made
    // after that is one the watcher sees. One made since the handler was
    // loaded from it (before the watch began) is swapped in at once.
    let mut last = std::fs::read(&path).ok();
    if last.as_deref().is_some_and(|bytes| digest(bytes) != handler.version().digest) {
        last = None;
        let _ = changed_before.send(());
    }
    let task = tokio::spawn(async move {
        while changed.recv().await.is_some() {
            while tokio::time::timeout(DEBOUNCE, changed.recv()).await.is_ok_and(|c| c.is_some()) {}
            let Ok(bytes) = tokio::fs::read(&path).await else { continue };
            if last.as_ref() == Some(&bytes) {
                continue;
            }
            last = Some(bytes.clone());
            tracing::debug!(handler = %handler.name(), file = %path.display(), "the file changed: swapping");
            // The swap logs its outcome (swapped, or refused and why).
            let _ = handler.swap(bytes).await;
        }
    });
    Ok(FileWatcher { _watcher: watcher, task })
}
