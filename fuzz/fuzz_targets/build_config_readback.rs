//! kbuild's parser of bash's read-back of build.config variables
//! (`name\0value\0` pairs, `kbuild/src/config/readback.rs`).
//! (Fuzzing `kbuild::evaluate` instead would run bash on every input.)
//!
//! Asserts: no panic; an error is always `ConfigError::Readback` with a
//! message; a parse succeeds exactly for UTF-8 that is empty or ends in NUL
//! with an even number of fields; and printing the parsed map back as
//! `name\0value\0` (what `printf '%s\0%s\0'` does) parses to the same map.

#![no_main]

use libfuzzer_sys::fuzz_target;

use kbuild::config::readback;
use kbuild::error::ConfigError;

fuzz_target!(|data: &[u8]| {
    let parsed = readback::parse(data);
    let expected_ok = match std::str::from_utf8(data) {
        Err(_) => false,
        Ok("") => true,
        Ok(text) => text
            .strip_suffix('\0')
            .is_some_and(|body| body.split('\0').count() % 2 == 0),
    };
    match parsed {
        Err(ConfigError::Readback { detail }) => {
            assert!(!expected_ok, "valid read-back refused: {detail}");
            assert!(!detail.is_empty());
        }
        Err(other) => panic!("read-back parse gave a non-read-back error: {other}"),
        Ok(vars) => {
            assert!(expected_ok, "malformed read-back accepted: {vars:?}");
            let mut printed = Vec::new();
            for (name, value) in &vars {
                assert!(!name.contains('\0') && !value.contains('\0'));
                printed.extend_from_slice(name.as_bytes());
                printed.push(0);
                printed.extend_from_slice(value.as_bytes());
                printed.push(0);
            }
            let again = readback::parse(&printed).expect("re-printed read-back parses");
            assert_eq!(again, vars, "read-back does not survive a print/parse");
        }
    }
});
