#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wsbroker::fuzzing::stomp_encoder(data));
