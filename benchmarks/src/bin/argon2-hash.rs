//! One argon2id hash of the policy (m=19456 KiB, t=2, p=1), as the hashing pool computes
//! it (the service's hasher, reusing one memory block). Prints the median of N runs in ms.
//! Usage: argon2-hash [N]

use shared::domain::hasher::{Argon2Hasher, HashMemory, PasswordHasher};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs: usize = std::env::args().nth(1).map(|n| n.parse()).transpose()?.unwrap_or(21);
    let hasher = Argon2Hasher::new();
    let mut memory = HashMemory::default();
    hasher.hash_in("Warm-Up-Pass-1", &mut memory)?;
    let mut times: Vec<f64> = (0..runs.max(1))
        .map(|n| {
            let start = Instant::now();
            let _ = hasher.hash_in(&format!("Bench-Pass-{n}"), &mut memory);
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!("{:.1}", times[times.len() / 2]);
    Ok(())
}
