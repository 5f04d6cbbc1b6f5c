//! Which resource a runner serves, from its own configuration (never from the job): its pool
//! (`--pool`, a name of gatehouse.yml's `gate.pools`), the resource itself (`--resource`), or
//! the labels the runner was given when it was provisioned (`--labels`), routed to a resource
//! as the guard routes a job's `runs-on` labels. Labels that select no managed resource, or two,
//! are refused: a runner serves one resource.

use gatehouse_policy::Policy;

use crate::snapshot::Pool;

/// How a runner's configuration names what it serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Serves {
    Pool(String),
    Resource(String),
    /// The runner's own labels, as given at provisioning.
    Labels(Vec<String>),
}

impl Serves {
    /// The resource named outright (`--resource`), or the resource the labels select in
    /// `policy` (the resources alone are read); `None` for a pool, whose resource is its
    /// settings'.
    pub fn resource_in(&self, policy: &Policy) -> Result<Option<String>, String> {
        match self {
            Serves::Pool(_) => Ok(None),
            Serves::Resource(name) => Ok(Some(name.clone())),
            Serves::Labels(labels) => {
                let shown = || {
                    labels
                        .iter()
                        .map(|l| format!("`{l}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                match policy.route_job(labels.iter().map(String::as_str), None) {
                    Ok(Some(id)) => Ok(Some(policy.resource(id).name.to_string())),
                    Ok(None) => Err(format!(
                        "the runner's labels {} select no managed resource, so the gate cannot tell which resource it serves; give the runner the labels of one resource of the access repository, or name it with --resource",
                        shown()
                    )),
                    Err((a, b)) => Err(format!(
                        "the runner's labels {} select two resources, `{}` and `{}`; a runner serves one: give it the labels of one resource, or name it with --resource",
                        shown(),
                        policy.resource(a).name,
                        policy.resource(b).name
                    )),
                }
            }
        }
    }

    /// The pool settings the gate decides with: the named pool's, or for a resource (named or
    /// selected by the labels, in `policy`) the pools of gatehouse.yml that serve it, which
    /// let jobs run when nothing can decide only if every one of them says so.
    pub fn settings(&self, pools: &[Pool], policy: &Policy) -> Result<Pool, String> {
        let resource =
            match self.resource_in(policy)? {
                None => {
                    let Serves::Pool(name) = self else {
                        unreachable!("only a pool names no resource")
                    };
                    return pools.iter().find(|p| &p.name == name).cloned().ok_or_else(|| {
                    format!("the runner pool `{name}` is not in the access repository's gate.pools")
                });
                }
                Some(resource) => resource,
            };
        if policy.resource_by_name(&resource).is_none() {
            return Err(format!(
                "the runner serves `{resource}`, which is no resource of the access repository"
            ));
        }
        let serving: Vec<&Pool> = pools.iter().filter(|p| p.resource == resource).collect();
        if serving.is_empty() {
            return Err(format!(
                "no runner pool of the access repository's gate.pools serves `{resource}`; add one (its settings say what the gate does when the guard cannot be reached)"
            ));
        }
        Ok(Pool {
            name: serving
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            resource,
            allow_when_unreachable: serving.iter().all(|p| p.allow_when_unreachable),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_policy::compile;

    fn policy() -> Policy {
        let files = vec![
            (
                "gatehouse.yml",
                "org: o\nreviewers: { teams: [t] }\nproviders:\n  c: { kind: cirun, access_repo: .cirun }\n",
            ),
            (
                "resources/gpu.yml",
                "name: gpu\nprovider: c\nlabels: [gpu-large]\n",
            ),
            (
                "resources/cpu.yml",
                "name: cpu\nprovider: c\nlabels: [cpu-large]\n",
            ),
        ];
        compile(
            &gatehouse_core::Repo::from_sources(files),
            jiff::civil::date(2026, 1, 1),
        )
    }

    fn pool(name: &str, resource: &str, open: bool) -> Pool {
        Pool {
            name: name.into(),
            resource: resource.into(),
            allow_when_unreachable: open,
        }
    }

    #[test]
    fn labels_of_one_resource_name_it_and_its_pools_settings() {
        let pools = [
            pool("gpu-a", "gpu", true),
            pool("gpu-b", "gpu", false),
            pool("cpu", "cpu", true),
        ];
        let labels = Serves::Labels(vec![
            "self-hosted".into(),
            "linux".into(),
            "gpu-large--8075232475".into(),
        ]);
        let got = labels.settings(&pools, &policy()).unwrap();
        assert_eq!(got.resource, "gpu");
        // Two pools serve it and one fails closed: so does the runner.
        assert!(!got.allow_when_unreachable);
        let cpu = Serves::Resource("cpu".into())
            .settings(&pools, &policy())
            .unwrap();
        assert!(cpu.allow_when_unreachable);
        let named = Serves::Pool("gpu-a".into())
            .settings(&pools, &policy())
            .unwrap();
        assert_eq!(named, pools[0]);
    }

    #[test]
    fn labels_of_two_resources_or_none_are_refused_with_the_reason() {
        let pools = [pool("gpu", "gpu", false), pool("cpu", "cpu", false)];
        let two = Serves::Labels(vec!["gpu-large".into(), "cpu-large".into()])
            .settings(&pools, &policy())
            .unwrap_err();
        assert!(
            two.contains("select two resources") && two.contains("`gpu`") && two.contains("`cpu`"),
            "{two}"
        );
        let none = Serves::Labels(vec!["self-hosted".into(), "linux".into()])
            .settings(&pools, &policy())
            .unwrap_err();
        assert!(none.contains("select no managed resource"), "{none}");
        let unknown = Serves::Resource("tpu".into())
            .settings(&pools, &policy())
            .unwrap_err();
        assert!(unknown.contains("no resource"), "{unknown}");
        let unpooled = Serves::Resource("cpu".into())
            .settings(&[pool("gpu", "gpu", false)], &policy())
            .unwrap_err();
        assert!(unpooled.contains("no runner pool"), "{unpooled}");
        let no_pool = Serves::Pool("nope".into())
            .settings(&pools, &policy())
            .unwrap_err();
        assert!(
            no_pool.contains("not in the access repository's gate.pools"),
            "{no_pool}"
        );
    }
}
