//! GitHub-hosted larger runners in a `runner-group` provider's group: `apply` sets each one's
//! `maximum_runners` from the ledger's caps (the resources whose labels name it), level-based
//! against the loopback GitHub (`PATCH /orgs/{org}/actions/hosted-runners/{id}`, only where the
//! value differs), leaves alone the runners gatehouse has no cap for, and reports a GitHub error
//! naming the runner while the rest of the provider is applied.

use crate::support::world::{GROUP_ID, World, world};

const LIST: &str = "GET /orgs/conda-forge/actions/hosted-runners";
const PATCH: &str = "PATCH /orgs/conda-forge/actions/hosted-runners/";

/// The bodies of the `PATCH`es to larger runners so far, with their paths.
fn patches(w: &World) -> Vec<(String, serde_json::Value)> {
    w.github
        .gate
        .requests()
        .into_iter()
        .filter(|c| format!("{} {}", c.method, c.path).starts_with(PATCH))
        .map(|c| (c.path, c.body.unwrap_or_default()))
        .collect()
}

/// A cap on the resource whose label is a larger runner's name becomes that runner's
/// `maximum_runners`, shown by `plan --online` before and said by `apply` when set; a second
/// apply makes no mutating call; raising or lowering the cap moves the limit both ways (the
/// ledger's cap wins over a value set by hand in GitHub's settings); without a cap the runner is
/// left alone, not even read. Runners no resource names, and runners of another group, are
/// never touched.
#[test]
fn apply_sets_a_larger_runner_s_maximum_runners_from_the_cap_and_a_second_apply_makes_no_call() {
    let w = world(2);
    let gpu = w.github.add_hosted_runner("gpu-runner", GROUP_ID, 10);
    w.github.add_hosted_runner("ubuntu-64core", GROUP_ID, 10);
    w.github.add_hosted_runner("other-16core", GROUP_ID + 1, 10);

    // No cap anywhere: apply does not even list the larger runners.
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(w.github.gate.count_exact(LIST), 0);

    w.cap_gpu_runner("quota: { concurrency: 4 }\n");
    // The dry run is offline and says so; `plan --online` reads and shows the change.
    let dry = w.run(&["apply"]);
    assert_eq!(dry.code, Some(0), "{dry}");
    assert!(
        dry.stdout
            .contains("gpu-pool: GitHub-hosted runners not read; `gatehouse plan --online`"),
        "{dry}"
    );
    let mutations = w.mutations();
    let plan = w.run(&["plan", "--online"]);
    assert_eq!(plan.code, Some(0), "{plan}");
    let change = "~ gpu-pool: set maximum_runners of GitHub-hosted runner `gpu-runner` from 10 to 4 (the concurrency cap of gpu-runner)";
    assert!(
        plan.stdout.contains(&format!("limits:\n  {change}\n")),
        "{plan}"
    );
    assert!(!plan.stdout.contains("not read"), "{plan}");
    let json = w.run(&["plan", "--online", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["limits"][0]["runner"], "gpu-runner", "{json}");
    assert_eq!(doc["limits"][0]["to"], 4, "{json}");
    assert_eq!(w.mutations(), mutations, "planning changes nothing");

    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stderr.contains(change), "{run}");
    assert!(
        run.stderr
            .contains("gpu-pool (runner-group): 1 limit(s) set"),
        "{run}"
    );
    assert_eq!(w.github.hosted_runner_maximum("gpu-runner"), Some(4));
    assert_eq!(
        patches(&w),
        [(
            format!("/orgs/conda-forge/actions/hosted-runners/{gpu}"),
            serde_json::json!({ "maximum_runners": 4 })
        )]
    );
    for untouched in ["ubuntu-64core", "other-16core"] {
        assert_eq!(w.github.hosted_runner_maximum(untouched), Some(10));
    }

    // Again: read, found equal, nothing sent.
    let mutations = w.mutations();
    let again = w.run(&["apply", "--confirm"]);
    assert_eq!(again.code, Some(0), "{again}");
    assert_eq!(w.mutations(), mutations, "{again}");
    assert!(
        again.stderr.contains("gpu-pool (runner-group): up to date"),
        "{again}"
    );

    // A raised cap raises the limit; a limit lowered by hand is put back to the ledger's.
    w.cap_gpu_runner("quota: { concurrency: 6 }\n");
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(w.github.hosted_runner_maximum("gpu-runner"), Some(6));
    w.github.set_hosted_runner_maximum(gpu, 2);
    let audit = w.run(&["audit", "--online", "--format", "json"]);
    assert!(
        audit
            .stdout
            .contains("limit differs from the ledger's caps")
            && audit.stdout.contains("from 2 to 6"),
        "{audit}"
    );
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stderr.contains("from 2 to 6"), "{run}");
    assert_eq!(w.github.hosted_runner_maximum("gpu-runner"), Some(6));

    // No cap: gatehouse has no say; what an owner sets stays, and the runners are not read.
    w.cap_gpu_runner("");
    w.github.set_hosted_runner_maximum(gpu, 3);
    w.github.gate.reset_calls();
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(w.github.hosted_runner_maximum("gpu-runner"), Some(3));
    assert_eq!(w.github.gate.count_exact(LIST), 0);
}

/// The provider's `max_concurrency` bounds a runner whose resources' caps add up to more, and
/// stands alone for a resource without a cap.
#[test]
fn max_concurrency_bounds_a_runner_s_limit() {
    let w = world(1);
    w.github.add_hosted_runner("gpu-runner", GROUP_ID, 10);
    let settings = std::fs::read_to_string(w.path().join("gatehouse.yml")).unwrap();
    w.commit_file(
        "gatehouse.yml",
        &settings.replace("group: gpu }", "group: gpu, max_concurrency: 3 }"),
    );
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stderr
            .contains("from 10 to 3 (`gpu-pool`'s max_concurrency)"),
        "{run}"
    );
    assert_eq!(w.github.hosted_runner_maximum("gpu-runner"), Some(3));
    w.cap_gpu_runner("quota: { concurrency: 2 }\n");
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(w.github.hosted_runner_maximum("gpu-runner"), Some(2));
}

/// GitHub refusing one runner's limit fails the provider with a message that names the runner
/// and what was not set (as `apply` reports any provider's failure, remembered for the next
/// run), while the grant's membership change and the other runner's limit are made; the next
/// run sets what is left.
#[test]
fn a_github_error_names_the_runner_and_leaves_the_rest_applied() {
    let w = world(1);
    let gpu = w.github.add_hosted_runner("gpu-runner", GROUP_ID, 10);
    w.github.add_hosted_runner("gpu-big", GROUP_ID, 10);
    w.cap_gpu_runner("quota: { concurrency: 4 }\n");
    w.commit_file(
        "resources/gpu-big.yml",
        "name: gpu-big\nprovider: gpu-pool\nlabels: [gpu-big]\nquota: { concurrency: 2 }\n",
    );
    w.request(
        "x",
        "action: grant\nprojects: [x]\nresources: [gpu-runner]\n",
    );
    w.github.gate.fault(
        &format!("{PATCH}{gpu}"),
        &[gatehouse_fake::Fault::Status(422)],
    );

    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr.contains(&format!(
            "gpu-pool (runner-group): failed: 1 of 2 change(s) failed: GitHub-hosted runner `gpu-runner` (id {gpu}): maximum_runners not set from 10 to 4: "
        )),
        "{run}"
    );
    assert!(run.stderr.contains("422"), "{run}");
    assert_eq!(
        w.holds("x"),
        (false, false, true),
        "the membership is applied"
    );
    assert_eq!(w.github.hosted_runner_maximum("gpu-big"), Some(2));
    assert_eq!(w.github.hosted_runner_maximum("gpu-runner"), Some(10));
    let failing = &w.state()["failing"]["gpu-pool"]["error"];
    assert!(
        failing.as_str().unwrap().contains("`gpu-runner`"),
        "{failing}"
    );

    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(w.github.hosted_runner_maximum("gpu-runner"), Some(4));
    assert!(w.state()["failing"].get("gpu-pool").is_none());
    assert_eq!(
        patches(&w).len(),
        3,
        "one each, and the retry of the refused one"
    );
}
