//! Role facts for every granted project of an access repository, stored in a guard's database
//! as its collaborator fetches would have stored them: the input of the offline-admission
//! benchmark (docs/BENCHMARKS.md, "gatehouse gate").
//!
//! ```sh
//! cargo run --release -p gatehouse-server --example gate_fixture -- DIR sqlite:///tmp/roles.db
//! ```
//!
//! Each repository gets the people a conda-forge feedstock lists: the `core` team (15 people,
//! admin on every feedstock, the same accounts everywhere) and its own 10 maintainers, all
//! taken from the repository's terms-of-service list (so that their jobs can be admitted).

use std::collections::BTreeSet;

use anyhow::Context;
use gatehouse_server::store::{Store, Write};
use serde_json::json;

const CORE: usize = 15;
const MAINTAINERS: usize = 10;

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
    let projects: BTreeSet<String> = repo
        .grants
        .iter()
        .map(|g| g.value.project.value.clone())
        .collect();
    let people: Vec<(String, i64)> = repo
        .tos
        .as_ref()
        .map(|t| {
            t.value
                .iter()
                .map(|e| (e.github.value.clone(), e.id.value.0))
                .collect()
        })
        .unwrap_or_default();
    anyhow::ensure!(
        people.len() > CORE + MAINTAINERS,
        "people/tos.yml lists {} people; at least {} are needed",
        people.len(),
        CORE + MAINTAINERS + 1
    );
    let store = Store::connect(&db).await?;
    let now = jiff::Timestamp::now().to_string();
    let mut writes = Vec::new();
    for (n, project) in projects.iter().enumerate() {
        let person = |(login, id): &(String, i64), role: &str| json!({"login": login, "id": id, "role": role});
        let core = people[..CORE].iter().map(|p| person(p, "admin"));
        let others = people.len() - CORE;
        let own = (0..MAINTAINERS)
            .map(|i| person(&people[CORE + (n * MAINTAINERS + i) % others], "maintain"));
        let listed: Vec<_> = core.chain(own).collect();
        writes.push(Write::RoleFacts {
            repository: settings.value.repository_of(project).to_lowercase(),
            people: serde_json::to_string(&listed)?,
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
