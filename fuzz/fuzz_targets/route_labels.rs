//! Arbitrary runs-on labels (one per line) routed over the bundled example's compiled policy:
//! never a panic, and the route does not depend on case or on what follows `--`.

#![no_main]

use gatehouse_fuzz::example_policy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let policy = example_policy();
    let text = String::from_utf8_lossy(data);
    let labels: Vec<&str> = text.split('\n').collect();
    let route = policy.route(labels.iter().copied());

    let upper: Vec<String> = labels.iter().map(|l| l.to_ascii_uppercase()).collect();
    assert_eq!(
        route,
        policy.route(upper.iter().map(String::as_str)),
        "case changed the route"
    );

    // Anything after a `--` is ignored: cutting a label there keeps its route.
    let cut: Vec<&str> = labels
        .iter()
        .map(|l| match l.find("--") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect();
    assert_eq!(
        route,
        policy.route(cut.iter().copied()),
        "the suffix changed the route"
    );

    // Generic labels add nothing.
    let mut generic = labels.clone();
    generic.extend(["self-hosted", "linux", "x64", "windows"]);
    assert_eq!(
        route,
        policy.route(generic.iter().copied()),
        "a generic label changed the route"
    );
});
