#![no_main]
// The harness lives in the library (smbdensity::fuzzing) so that tests/fuzz_corpus.rs replays the
// committed corpus through the same code on the stable toolchain.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| smbdensity::fuzzing::body(data));
