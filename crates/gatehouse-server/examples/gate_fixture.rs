//! Role facts for every granted project of an access repository, stored in a guard's database
//! as its collaborator fetches would have stored them: the input of the offline-admission
//! benchmark (docs/BENCHMARKS.md, "gatehouse gate").
//!
//! ```sh
//! cargo run --release -p gatehouse-server --example gate_fixture -- DIR sqlite:///tmp/roles.db
//! ```
//!
//! Each repository gets the people a conda-forge feedstock lists: the `core` team (15 people,
//! admin on every feedstock, the same accounts everywhere) and its own 10 maintainers.

use std::collections::BTreeSet;

use anyhow::Context;
use gatehouse_server::store::{Store, Write};
use serde_json::json;

const CORE: i64 = 15;
const MAINTAINERS: i64 = 10;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: gate_fixture DIR DB_URL";
    let dir = std::path::PathBuf::from(args.next().context(usage)?);
    let db = args.next().context(usage)?;
    let repo = gatehouse_core::repo::load_dir(&dir)
        .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    let settings = repo
        .settings
        .as_ref()
        .context("the repository has no gatehouse.yml")?;
    let (org, suffix) = (&settings.value.org.value, &settings.value.repo_suffix.value);
    let projects: BTreeSet<String> = repo
        .grants
        .iter()
        .map(|g| g.value.project.value.clone())
        .collect();
    let store = Store::connect(&db).await?;
    let now = jiff::Timestamp::now().to_string();
    let mut writes = Vec::new();
    for (n, project) in projects.iter().enumerate() {
        let core = (0..CORE)
            .map(|i| json!({"login": format!("core-{i}"), "id": 1_000 + i, "role": "admin"}));
        let own = (0..MAINTAINERS).map(|i| {
            let id = 10_000_000 + n as i64 * MAINTAINERS + i;
            json!({"login": format!("maintainer-{id}"), "id": id, "role": "maintain"})
        });
        let people: Vec<_> = core.chain(own).collect();
        writes.push(Write::RoleFacts {
            repository: format!("{org}/{project}{suffix}").to_lowercase(),
            people: serde_json::to_string(&people)?,
            etag: None,
            fetched_at: now.clone(),
            changed_at: now.clone(),
        });
    }
    let n = writes.len();
    for chunk in writes.chunks(500) {
        store.commit(chunk.to_vec()).await?;
    }
    println!("stored the roles of {n} repositories in {db}");
    Ok(())
}
