//! Arbitrary bytes as a request file: parsing, normalising and checking never panic.

#![no_main]

use gatehouse_core::model::RequestFile;
use gatehouse_core::parse::parse_yaml;
use libfuzzer_sys::fuzz_target;

const PATH: &str = "requests/fuzz.yml";

fuzz_target!(|data: &[u8]| {
    match parse_yaml::<RequestFile>(PATH, data) {
        Ok(file) => {
            let _ = file.normalize();
        }
        Err(d) => {
            assert_eq!(d.file, PATH);
            assert!(!d.message.is_empty());
        }
    }
    gatehouse_fuzz::check_with(PATH, data);
});
