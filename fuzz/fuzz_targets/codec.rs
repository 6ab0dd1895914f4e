#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| isakmp_fuzz::codec(data));
