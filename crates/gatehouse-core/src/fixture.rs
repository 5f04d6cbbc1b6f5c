//! A deterministic generator of conda-forge-scale access repositories, for scale tests and
//! benchmarks (`gatehouse gen-fixture`).
//!
//! At scale 1 it writes 25,000 project names' worth of requests and grants over 30 resources:
//! 2,000 grants, 500 pending requests and 5,000 ToS entries. The same seed and scale always give
//! byte-identical files, and the result passes `gatehouse check`.

use std::collections::HashSet;
use std::fmt::Write;

use jiff::civil::Date;

/// Sizes at scale 1.
pub const PROJECTS: usize = 25_000;
pub const RESOURCES: usize = 30;
pub const GRANTS: usize = 2_000;
pub const REQUESTS: usize = 500;
pub const TOS: usize = 5_000;

#[derive(Clone, Copy, Debug)]
pub struct FixtureSpec {
    pub seed: u64,
    pub scale: usize,
    /// Dates are generated around this day, so the repository is valid on it.
    pub today: Date,
}

/// The terms-of-service list conda-forge's Cirun policies read (see
/// fixtures/conda-forge/cirun-access.yml).
pub const CIRUN_USERS_JSON: &str = "https://raw.githubusercontent.com/Quansight/open-gpu-server/main/access/conda-forge-users.json";

/// The generated files, as `(path, contents)`, sorted by path.
pub fn generate(spec: FixtureSpec) -> Vec<(String, String)> {
    let scale = spec.scale.max(1);
    let mut rng = fastrand::Rng::with_seed(spec.seed);
    let mut files = Vec::new();

    files.push((
        "gatehouse.yml".to_string(),
        // As at conda-forge, Cirun reads the ToS list from one URL: without it every policy
        // entry would repeat every login, and the rendered policy would run to tens of MB.
        format!(
            "org: conda-forge\nrepo_suffix: \"-feedstock\"\nreviewers: {{ teams: [core], min_approvals: 1 }}\nguard: {{ mode: enforce }}\nproviders:\n  cirun: {{ kind: cirun, access_repo: .cirun, users_from_json: \"{CIRUN_USERS_JSON}\" }}\n  namespace: {{ kind: github-app, installation_id: 12345 }}\n  gpu-pool: {{ kind: runner-group, group: gpu }}\n"
        ),
    ));

    let providers = ["cirun", "namespace", "gpu-pool"];
    let kinds = ["gpu", "cpu", "mem", "long", "win", "osx"];
    let resources: Vec<String> = (0..RESOURCES * scale)
        .map(|i| format!("gen-{}-{i:04}", kinds[i % kinds.len()]))
        .collect();
    for (i, name) in resources.iter().enumerate() {
        let mut y = String::new();
        let _ = writeln!(y, "name: {name}");
        let _ = writeln!(y, "provider: {}", providers[i % providers.len()]);
        let _ = writeln!(y, "labels: [{name}]");
        let _ = writeln!(y, "description: generated resource {i}");
        let _ = writeln!(
            y,
            "specs: {{ cpu: {}, memory_gb: {}, disk_gb: 60 }}",
            4 << (i % 3),
            8 << (i % 4)
        );
        let _ = writeln!(y, "max_duration: 1y");
        let _ = writeln!(
            y,
            "users: {{ roles: [admin, maintain, write], require_tos: {} }}",
            i % 2 == 0
        );
        let _ = writeln!(
            y,
            "quota: {{ project_minutes_per_month: 3000, minutes_per_month: 20000, concurrency: 4 }}"
        );
        files.push((format!("resources/{name}.yml"), y));
    }

    let projects = project_names(&mut rng, PROJECTS * scale);
    let logins: Vec<String> = (0..TOS * scale).map(|i| format!("user-{i:06}")).collect();

    // Grants: pick projects until the total is reached; each holds 1-3 distinct resources.
    let mut held: HashSet<(usize, usize)> = HashSet::new();
    let mut by_project: Vec<(usize, Vec<usize>)> = Vec::new();
    let mut total = 0;
    let mut chosen: HashSet<usize> = HashSet::new();
    while total < GRANTS * scale {
        let p = rng.usize(..projects.len());
        if !chosen.insert(p) {
            continue;
        }
        let want = (1 + rng.usize(..3)).min(GRANTS * scale - total);
        let mut list = Vec::new();
        while list.len() < want {
            let r = rng.usize(..resources.len());
            if held.insert((p, r)) {
                list.push(r);
            }
        }
        total += list.len();
        by_project.push((p, list));
    }
    let mut holders: Vec<(usize, usize)> = Vec::new();
    for (p, list) in &by_project {
        let mut y = String::new();
        let _ = writeln!(y, "project: {}", projects[*p]);
        let _ = writeln!(y, "grants:");
        for r in list {
            let granted = spec.today - jiff::Span::new().days(rng.i64(0..300));
            let expires =
                (granted + jiff::Span::new().years(1)) - jiff::Span::new().days(rng.i64(0..30));
            let _ = writeln!(y, "  - resource: {}", resources[*r]);
            let pull_request = rng.bool();
            let _ = writeln!(y, "    pull_request: {pull_request}");
            // A quarter of the pull-request grants refuse forks; decided from the date, not a
            // new draw, so the rest of the fixture stays as it was.
            if pull_request && granted.day() % 4 == 0 {
                let _ = writeln!(y, "    forks: false");
            }
            let _ = writeln!(y, "    granted: {granted}");
            let _ = writeln!(y, "    expires: {expires}");
            let _ = writeln!(
                y,
                "    request: https://github.com/conda-forge/admin-requests/pull/{}",
                1000 + rng.u32(..90_000)
            );
            let _ = writeln!(y, "    approved_by: [reviewer-{}]", rng.u8(..20));
            if rng.u8(..10) == 0 {
                let a = &logins[rng.usize(..logins.len())];
                let b = &logins[rng.usize(..logins.len())];
                let _ = writeln!(y, "    users: {{ users: [{a}, {b}] }}");
            }
            holders.push((*p, *r));
        }
        files.push((format!("grants/{}.yml", projects[*p]), y));
    }

    // Requests: most ask for something new; some revoke or renew what is held.
    let mut requested: HashSet<(usize, usize)> = HashSet::new();
    let mut made = 0;
    while made < REQUESTS * scale {
        let roll = rng.u8(..10);
        let (p, r, action) = if roll < 7 {
            let p = rng.usize(..projects.len());
            let r = rng.usize(..resources.len());
            if held.contains(&(p, r)) {
                continue;
            }
            (p, r, "grant")
        } else {
            let (p, r) = holders[rng.usize(..holders.len())];
            (p, r, if roll < 9 { "revoke" } else { "renew" })
        };
        if !requested.insert((p, r)) {
            continue;
        }
        let mut y = String::new();
        if action == "grant" && rng.bool() && resources[r].contains("gpu") {
            let _ = writeln!(y, "action: cirun");
            let _ = writeln!(y, "feedstocks: [{}]", projects[p]);
            let _ = writeln!(y, "resources: [{}]", resources[r]);
            let _ = writeln!(y, "pull_request: false\nrevoke: false\nsend_pr: true");
        } else {
            let _ = writeln!(y, "action: {action}");
            let _ = writeln!(y, "projects: [{}]", projects[p]);
            let _ = writeln!(y, "resources: [{}]", resources[r]);
            if action == "grant" {
                let _ = writeln!(y, "pull_request: {}", rng.bool());
                let _ = writeln!(y, "reason: generated request {made}");
            }
        }
        files.push((format!("requests/{made:06}-{}.yml", projects[p]), y));
        made += 1;
    }

    let mut tos = String::with_capacity(TOS * scale * 48);
    for (i, login) in logins.iter().enumerate() {
        let day = spec.today - jiff::Span::new().days(rng.i64(1..1000));
        let _ = writeln!(
            tos,
            "- {{ github: {login}, id: {}, accepted: {day} }}",
            1_000_000 + i * 7
        );
    }
    files.push(("people/tos.yml".to_string(), tos));

    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}

/// `count` distinct names that look like package names.
fn project_names(rng: &mut fastrand::Rng, count: usize) -> Vec<String> {
    const SYLLABLES: &[&str] = &[
        "py", "torch", "lib", "arrow", "num", "sci", "jax", "cuda", "tensor", "flow", "magma",
        "ray", "node", "mongo", "onnx", "runtime", "xform", "flash", "attn", "boost", "gdal",
        "proj", "geo", "vtk", "qt", "gtk", "r", "base", "cpp", "rs", "go", "blas", "fft", "zmq",
    ];
    let mut seen = HashSet::with_capacity(count);
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let a = SYLLABLES[rng.usize(..SYLLABLES.len())];
        let b = SYLLABLES[rng.usize(..SYLLABLES.len())];
        let name = match rng.u8(..4) {
            0 => format!("{a}{b}"),
            1 => format!("{a}-{b}"),
            2 => format!("{a}{b}-{}", rng.u16(..1000)),
            _ => format!("{a}-{b}{}", rng.u16(..10000)),
        };
        if seen.insert(name.clone()) {
            out.push(name);
        }
    }
    out
}
