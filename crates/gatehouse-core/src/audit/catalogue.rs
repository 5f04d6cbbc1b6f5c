//! Cirun's runner catalogue (`.cirun.global.yml` in the organisation's `.cirun` repository,
//! docs.cirun.io "Organization Runners Config") against the resources of a Cirun provider.
//!
//! Cirun's access policy names catalogue runners by their `name` (`access_control[].resource`,
//! docs.cirun.io "Access Control"), and gatehouse renders one entry per resource of the
//! provider under the resource's name. A catalogue runner that no resource names is a runner
//! nobody's grant governs: the ledger cannot grant or revoke it, and the guard does not decide
//! its jobs (its labels are not managed). Not for a project's own `.cirun.yml`: see
//! `audit-own-cirun-runner`.

use std::collections::BTreeSet;

use crate::Repo;
use crate::diag::Diagnostic;
use crate::import::cirun::GlobalFile;
use crate::parse::parse_yaml;
use crate::span::Spanned;

/// Where Cirun reads the catalogue in the access repository.
pub const CATALOGUE_FILE: &str = ".cirun.global.yml";

/// The runners of catalogue `text` (read as `file`) that no resource of provider `provider`
/// names, in catalogue order, each with its place in the file.
pub fn unnamed_runners(
    repo: &Repo,
    provider: &str,
    file: &str,
    text: &[u8],
) -> Result<Vec<Spanned<String>>, Diagnostic> {
    let catalogue: GlobalFile = parse_yaml(file, text)?;
    let named: BTreeSet<&str> = repo
        .resources
        .iter()
        .filter(|r| r.value.provider.as_str() == provider)
        .map(|r| r.value.name.value.as_str())
        .collect();
    Ok(catalogue
        .runners
        .into_iter()
        .map(|r| r.name)
        .filter(|name| !named.contains(name.value.as_str()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// conda-forge's real catalogue.
    const REAL: &str = include_str!("../../../../fixtures/conda-forge/cirun-global.yml");

    fn repo(resources: &[&str]) -> Repo {
        let mut sources = vec![(
            "gatehouse.yml".to_string(),
            "org: conda-forge\nrepo_suffix: -feedstock\nreviewers: { teams: [core] }\n\
             providers:\n  cirun: { kind: cirun, access_repo: .cirun }\n  \
             other: { kind: cirun, access_repo: .other }\n"
                .to_string(),
        )];
        for (i, name) in resources.iter().enumerate() {
            // The last one is served by another provider: it names nothing of `cirun`'s.
            let provider = if i + 1 == resources.len() {
                "other"
            } else {
                "cirun"
            };
            sources.push((
                format!("resources/{name}.yml"),
                format!("name: {name}\nprovider: {provider}\nlabels: [{name}]\n"),
            ));
        }
        Repo::from_sources(sources)
    }

    #[test]
    fn catalogue_runners_no_resource_of_the_provider_names_are_found_at_their_line() {
        let names = [
            "cirun-openstack-gpu-large",
            "cirun-openstack-gpu-2xlarge",
            "cirun-openstack-gpu-4xlarge",
            "cirun-openstack-cpu-medium",
            "cirun-openstack-cpu-large",
            "cirun-openstack-cpu-xlarge",
            "cirun-openstack-cpu-2xlarge",
            "cirun-openstack-cpu-4xlarge",
            "cirun-azure-windows-2xlarge",
            // Served by `other`, so not a name of `cirun`'s.
            "cirun-azure-windows-4xlarge",
        ];
        let found = unnamed_runners(&repo(&names), "cirun", CATALOGUE_FILE, REAL.as_bytes())
            .expect("the real catalogue parses");
        let found: Vec<(&str, u32)> = found
            .iter()
            .map(|r| (r.value.as_str(), r.span.line))
            .collect();
        assert_eq!(
            found,
            [
                ("cirun-openstack-gpu-xlarge", 14),
                ("cirun-azure-windows-4xlarge", 107)
            ]
        );
    }

    #[test]
    fn a_broken_catalogue_is_an_error_naming_the_file() {
        let err = unnamed_runners(
            &repo(&["x"]),
            "cirun",
            "cf/.cirun/.cirun.global.yml",
            b"runners: 3\n",
        )
        .unwrap_err();
        assert_eq!(err.file, "cf/.cirun/.cirun.global.yml");
    }
}
