//! Arbitrary bytes as a grant file: parsing and checking never panic.

#![no_main]

use gatehouse_core::model::GrantFile;
use gatehouse_core::parse::parse_yaml;
use libfuzzer_sys::fuzz_target;

// Named after a project that is not in the fixed grants, so a valid file passes the name check.
const PATH: &str = "grants/numpy.yml";

fuzz_target!(|data: &[u8]| {
    if let Err(d) = parse_yaml::<GrantFile>(PATH, data) {
        assert_eq!(d.file, PATH);
        assert!(!d.message.is_empty());
    }
    gatehouse_fuzz::check_with(PATH, data);
});
