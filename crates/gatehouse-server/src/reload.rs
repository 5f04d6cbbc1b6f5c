//! Loading the access repository again, on `POST /admin/reload` and when its files change,
//! and what follows a good reload: the roles of projects granted since, and the ledger's pages.

use std::sync::{Arc, Weak};
use std::time::Duration;

use jiff::Timestamp;

use crate::source::{fingerprint, load_policy};
use crate::state::AppState;

impl AppState {
    /// Loads the access repository again. A repository that fails `check` leaves the current
    /// policy in place; the reason is logged, kept for `/healthz` and returned.
    pub async fn reload(&self) -> Result<(), String> {
        match load_policy(self.config.repo_dir.clone()).await {
            Ok(loaded) => {
                self.policy.store(loaded.policy);
                self.source.store(loaded.source);
                {
                    let mut status = self.status();
                    status.loaded_at = Timestamp::now();
                    status.repo_mode = loaded.mode;
                    status.last_reload_error = None;
                }
                tracing::info!("policy reloaded");
                // Projects granted since need their roles; the ledger's pages render again.
                if let Some(state) = self.me() {
                    let warm = state.clone();
                    tokio::spawn(
                        async move { crate::pending::refresh_granted(&state, None).await },
                    );
                    tokio::spawn(async move { crate::site_routes::warm(&warm).await });
                }
                Ok(())
            }
            Err(e) => {
                let reason = format!("{e:#}");
                tracing::error!(reason, "reload refused; keeping the previous policy");
                self.status().last_reload_error = Some(reason.clone());
                Err(reason)
            }
        }
    }
}

/// Watches the access repository and reloads the policy when its files change: every
/// `interval` it compares a fingerprint of the files the policy is read from (YAML, CODEOWNERS: path, size, modification time;
/// `.git` left out), and reloads once a change has held still for one more interval, so a checkout
/// half-way through writing is not read. Polling works on every file system (bind mounts,
/// network disks) and costs one `stat` per file per interval. Ends when the state is dropped.
pub(crate) fn spawn_watcher(state: &Arc<AppState>, interval: Duration) {
    let weak: Weak<AppState> = Arc::downgrade(state);
    let dir = state.config.repo_dir.clone();
    let mut seen = state.loaded_fingerprint;
    tokio::spawn(async move {
        let fingerprint = |dir: std::path::PathBuf| async move {
            tokio::task::spawn_blocking(move || fingerprint(&dir))
                .await
                .unwrap_or(0)
        };
        let mut pending = false;
        loop {
            tokio::time::sleep(interval).await;
            let Some(state) = weak.upgrade() else { return };
            let now = fingerprint(dir.clone()).await;
            if now != seen {
                // Changed since the last look: wait for it to hold still.
                seen = now;
                pending = true;
                continue;
            }
            if pending {
                pending = false;
                tracing::info!(dir = %dir.display(), "the access repository changed: reloading");
                // A refused reload is logged and shown in /healthz by `reload` itself.
                let _ = state.reload().await;
            }
        }
    });
}
