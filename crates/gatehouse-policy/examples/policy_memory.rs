//! How much memory the compiled policy of a conda-forge-scale repository holds (issue 3's
//! target: under 50 MB), next to what Cedar holds for the same ledger.
//!
//! A counting global allocator tracks the bytes live on the heap; the policy's size is what is
//! live after `compile` minus what was live before (the repository itself stays alive and is
//! not counted). Cedar's entities are counted the same way, with the rendered JSON they are
//! built from already freed.
//!
//! `cargo run --release -p gatehouse-policy --example policy_memory [SCALE]`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use gatehouse_core::Repo;
use gatehouse_core::fixture::{FixtureSpec, generate};
use gatehouse_policy::compile;
use gatehouse_policy::render::cedar;
use jiff::civil::date;

/// The system allocator, counting the bytes currently allocated.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged; the counter only observes sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(new_size, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() {
    let scale = match std::env::args().nth(1) {
        None => 1,
        Some(arg) => arg.parse().unwrap_or_else(|_| {
            eprintln!("usage: policy_memory [SCALE], SCALE a positive number, not `{arg}`");
            std::process::exit(2);
        }),
    };
    let today = date(2026, 11, 28);
    let spec = FixtureSpec {
        seed: 42,
        scale,
        today,
    };
    let repo = Repo::from_sources(generate(spec));
    for d in repo.load_errors.iter() {
        // At scale 10 the ToS list is over the size limit and refused: no ToS ids then.
        eprintln!(
            "note: `{}` did not load ({}), so it is left out",
            d.file, d.code
        );
    }
    let before = live();
    let policy = compile(&repo, today);
    let policy_bytes = live() - before;

    let (schema, _) = cedar_policy::Schema::from_cedarschema_str(cedar::SCHEMA)
        .unwrap_or_else(|e| panic!("the Cedar schema does not parse: {e:?}"));
    let before = live();
    let entities = {
        let rendered = cedar::render(&repo, today);
        cedar_policy::Entities::from_json_value(rendered.entities, Some(&schema))
            .unwrap_or_else(|e| panic!("the Cedar entities do not load: {e:?}"))
    };
    let entities_bytes = live() - before;

    let grants = policy.grants().count();
    let resources = policy.resources().count();
    println!("scale {scale}: {resources} resources, {grants} grants");
    println!(
        "compiled policy: {policy_bytes} bytes ({:.2} MiB)",
        mib(policy_bytes)
    );
    println!(
        "Cedar entities:  {entities_bytes} bytes ({:.2} MiB)",
        mib(entities_bytes)
    );
    drop((policy, entities));
}
