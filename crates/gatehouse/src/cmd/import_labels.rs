//! `gatehouse import labels --projects PATH`: before migrating, which feedstocks already use a
//! managed label (a workflow's `runs-on`, `recipe/conda_build_config.yaml`'s
//! `github_actions_labels`) that the ledger gives them no grant of: they would lose access
//! the day the guard enforces. The same reading and routing as `gatehouse audit --projects`,
//! kept to those findings and summed up per feedstock.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use gatehouse_policy::compile;
use jiff::civil::Date;

use crate::cli::ImportLabelsArgs;
use crate::report::{self, Format};
use gatehouse_apply::audit::{PolicyLedger, audit_projects, relocate};

pub fn run(args: ImportLabelsArgs, today: Date) -> anyhow::Result<ExitCode> {
    let repo = super::load_repo_warn(&args.dir, today)?;
    let policy = compile(&repo, today);
    let ledger = PolicyLedger {
        policy: &policy,
        repo: &repo,
        today,
    };
    let found: Vec<_> = audit_projects(&ledger, &args.projects)?
        .sorted()
        .into_iter()
        .filter(|d| d.code == "audit-no-grant")
        .collect();
    let mut by_feedstock: BTreeMap<String, usize> = BTreeMap::new();
    for d in &found {
        let feedstock = d.file.split('/').next().unwrap_or_default().to_string();
        *by_feedstock.entry(feedstock).or_default() += 1;
    }
    let shown: Vec<_> = found
        .into_iter()
        .map(|d| relocate(d, &args.projects))
        .collect();
    if !shown.is_empty() {
        report::print(Format::Human, Path::new(""), &shown)?;
    }
    if by_feedstock.is_empty() {
        println!("every managed label the projects use is covered by a grant");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} feedstock(s) use managed labels without a grant and would lose access:",
        by_feedstock.len()
    );
    for (feedstock, n) in &by_feedstock {
        println!("  {feedstock}: {n} use(s)");
    }
    Ok(ExitCode::from(1))
}
