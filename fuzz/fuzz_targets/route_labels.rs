//! Arbitrary runs-on labels (one per line; a first line `@NAME` is the runner group the job
//! runs on) routed over the bundled example's compiled policy and over one with patterns and
//! runner groups: never a panic, and the route does not depend on case, on what follows `--`
//! or `;`, on generic or hosted-runner labels, or on a runner group no provider serves.

#![no_main]

use gatehouse_fuzz::{example_policy, routing_policy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut labels: Vec<&str> = text.split('\n').collect();
    let group = match labels.first().and_then(|l| l.strip_prefix('@')) {
        Some(g) => {
            labels.remove(0);
            Some(g)
        }
        None => None,
    };
    for policy in [example_policy(), routing_policy()] {
        let route = policy.route_job(labels.iter().copied(), group);

        let upper: Vec<String> = labels.iter().map(|l| l.to_ascii_uppercase()).collect();
        let upper_group = group.map(str::to_ascii_uppercase);
        assert_eq!(
            route,
            policy.route_job(upper.iter().map(String::as_str), upper_group.as_deref()),
            "case changed the route"
        );

        // Anything after a `--` or a `;` is ignored: cutting a label there keeps its route.
        let cut: Vec<&str> = labels
            .iter()
            .map(|l| {
                let end = [l.find("--"), l.find(';')].into_iter().flatten().min();
                &l[..end.unwrap_or(l.len())]
            })
            .collect();
        assert_eq!(
            route,
            policy.route_job(cut.iter().copied(), group),
            "the suffix changed the route"
        );

        // Generic labels and GitHub's hosted runners' labels add nothing.
        let mut generic = labels.clone();
        generic.extend([
            "self-hosted",
            "linux",
            "x64",
            "windows",
            "ubuntu-latest",
            "windows-2022",
            "macos-14;x",
        ]);
        assert_eq!(
            route,
            policy.route_job(generic.iter().copied(), group),
            "a generic or hosted-runner label changed the route"
        );

        // A group no provider serves changes nothing; without a group, the labels decide.
        let by_labels = policy.route(labels.iter().copied());
        match group.map(|g| policy.route_group(g)) {
            None | Some(Ok(None)) => assert_eq!(route, by_labels, "an unmanaged group routed"),
            // A managed group: the labels' resource must be one of its own.
            Some(Ok(Some(served))) => {
                if by_labels == Ok(None) {
                    assert_eq!(route, Ok(Some(served)), "the group did not route");
                }
            }
            Some(Err(_)) => assert!(route.is_err() || by_labels.is_ok_and(|r| r.is_some())),
        }
    }
});
