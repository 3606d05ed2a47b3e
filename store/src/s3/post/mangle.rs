//! Inputs for the parsers' never-panic tests: a good input truncated, with bytes flipped, or
//! replaced by noise, in turn.

use rand::Rng;

/// The `round`th variant of `good`: truncated, a few bytes changed, or random bytes.
pub fn mangled(rng: &mut impl Rng, good: &[u8], round: usize) -> Vec<u8> {
    let mut out = good.to_vec();
    match round % 3 {
        0 => out.truncate(rng.random_range(0..=out.len())),
        1 => {
            for _ in 0..rng.random_range(1..9) {
                let at = rng.random_range(0..out.len());
                out[at] = rng.random();
            }
        }
        _ => {
            out = (0..rng.random_range(0..300))
                .map(|_| rng.random())
                .collect()
        }
    }
    out
}
