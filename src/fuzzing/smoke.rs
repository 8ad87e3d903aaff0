//! Stable stand-in for `scripts/fuzz.sh`: runs every fuzz target (`wsbroker::fuzzing`) over its
//! committed seed corpus (`fuzz/corpus/<target>/`) and over deterministic mutations of it (bit
//! flips, byte inserts/deletes, splices), failing on the first panic with the input in hex.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use super as fuzzing;

/// Mutated inputs per target (keep the whole test well under 10 s in debug builds);
/// `FUZZ_SMOKE_MUTATIONS` overrides it for a longer local run.
const MUTATIONS: usize = 20_000;
/// Longest mutated input.
const MAX_LEN: usize = 4096;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let inputs: Vec<Vec<u8>> = files
        .iter()
        .map(|p| std::fs::read(p).expect("corpus file"))
        .collect();
    assert!(!inputs.is_empty(), "empty corpus for {target}");
    inputs
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

fn run_one(target: &str, f: fn(&[u8]), data: &[u8]) {
    if catch_unwind(AssertUnwindSafe(|| f(data))).is_err() {
        panic!(
            "fuzz target {target} panicked on input (hex): {}",
            hex(data)
        );
    }
}

fn mutate(rng: &mut XorShift, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seeds[rng.below(seeds.len())].clone();
    for _ in 0..rng.below(4) + 1 {
        let len = data.len();
        match rng.below(6) {
            0 | 1 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            2 => {
                let i = rng.below(len + 1);
                let interesting = [0, 0xff, 0x80, 0x7f, b'\n', b'\r', b':', b'\\', 126, 127];
                let b = if rng.below(2) == 0 {
                    interesting[rng.below(interesting.len())]
                } else {
                    rng.next() as u8
                };
                data.insert(i, b);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = (rng.below(8) + 1).min(len - i);
                data.drain(i..i + n);
            }
            4 => {
                // Splice: a prefix of this input with a suffix of another.
                let other = &seeds[rng.below(seeds.len())];
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
            _ if len > 0 => {
                // Overwrite the selector byte / a random byte with a random value.
                let i = if rng.below(2) == 0 { 0 } else { rng.below(len) };
                data[i] = rng.next() as u8;
            }
            _ => {}
        }
    }
    data.truncate(MAX_LEN);
    data
}

fn smoke(target: &str, f: fn(&[u8]), seed: u64) {
    let seeds = corpus(target);
    for input in &seeds {
        run_one(target, f, input);
    }
    let mutations = std::env::var("FUZZ_SMOKE_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(MUTATIONS);
    let mut rng = XorShift(seed);
    for _ in 0..mutations {
        let input = mutate(&mut rng, &seeds);
        run_one(target, f, &input);
    }
}

#[test]
fn ws_decoder() {
    smoke("ws_decoder", fuzzing::ws_decoder, 0x9E37_79B9_7F4A_7C15);
}

#[test]
fn ws_handshake() {
    smoke("ws_handshake", fuzzing::ws_handshake, 0xD1B5_4A32_D192_ED03);
}

#[test]
fn stomp_decoder() {
    smoke(
        "stomp_decoder",
        fuzzing::stomp_decoder,
        0x2545_F491_4F6C_DD1D,
    );
}

#[test]
fn stomp_encoder() {
    smoke(
        "stomp_encoder",
        fuzzing::stomp_encoder,
        0x6A09_E667_F3BC_C908,
    );
}

#[test]
fn stomp_session() {
    smoke(
        "stomp_session",
        fuzzing::stomp_session,
        0xA076_1D64_78BD_642F,
    );
}

#[test]
fn sockjs_frame() {
    smoke("sockjs_frame", fuzzing::sockjs_frame, 0xE703_7ED1_A0B4_28DB);
}
