//! Wrong passwords, timed: the login operation of the service (the embedded store, the
//! hashing pool, throttles off) for an unknown email, for an argon2id account and for an
//! account imported from the relay (its bcrypt hash of the relay's cost, not yet
//! upgraded), interleaved, N each; beside them one argon2id verification of the policy and
//! one bcrypt verification of the relay's cost, the work a failed check was made of.
//! Prints one line per case, `NAME MEDIAN_MS`.
//! Usage: wrong-passwords DATA_DIR [N]

use shared::config::parse_reset_url;
use shared::domain::accounts;
use shared::domain::hasher::{Argon2Hasher, HashMemory, PasswordHasher, RELAY_BCRYPT_COST};
use shared::domain::settings::Settings;
use std::time::Instant;

const PASSWORD: &str = "Dragon-Hoard-2026";
const WRONG: &str = "Dragon-Hoard-2027";

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times.get(times.len() / 2).copied().unwrap_or(f64::NAN)
}

fn ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let data = std::path::PathBuf::from(args.next().ok_or("usage: wrong-passwords DATA_DIR [N]")?);
    let runs: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(20).max(1);
    let reset_url = parse_reset_url("http://localhost:3000/reset-password")?;
    let mut settings = Settings::from_lookup(reset_url, &|_| None)?;
    settings.throttling = None;
    let app = shared::embedded::build_app(&data, &data.join("outbox"), "no-reply@localhost", settings)?;

    let argon2 = accounts::register(&app, "argon2@example.com", PASSWORD, None).await?.user;
    let relay = accounts::register(&app, "relay@example.com", PASSWORD, None).await?.user;
    let relay_hash = bcrypt::hash(PASSWORD, RELAY_BCRYPT_COST)?;
    app.store.set_password(&relay, &relay_hash, app.clock.now()).await?;
    let cases = [
        ("unknown email", "nobody@example.com"),
        ("argon2id account", &argon2.email),
        ("relay bcrypt account", &relay.email),
    ];

    let mut times = vec![Vec::with_capacity(runs); cases.len()];
    for run in 0..=runs {
        for (n, (_, email)) in cases.iter().enumerate() {
            let start = Instant::now();
            let refused = accounts::login(&app, email, WRONG, None).await.is_err();
            let elapsed = ms(start);
            if !refused {
                return Err(format!("a wrong password for {} was accepted", cases[n].0).into());
            }
            // The first round warms up.
            if run > 0 {
                times[n].push(elapsed);
            }
        }
    }
    for ((name, _), times) in cases.iter().zip(times) {
        println!("{name}\t{:.1}", median(times));
    }

    let hasher = Argon2Hasher::new();
    let mut memory = HashMemory::default();
    let policy_hash = hasher.hash_in(PASSWORD, &mut memory)?;
    for (name, phc) in
        [("one argon2id verification (policy)", &policy_hash), ("one bcrypt verification (cost 10)", &relay_hash)]
    {
        hasher.verify_in(WRONG, phc, &mut memory);
        let times = (0..runs)
            .map(|_| {
                let start = Instant::now();
                hasher.verify_in(WRONG, phc, &mut memory);
                ms(start)
            })
            .collect();
        println!("{name}\t{:.1}", median(times));
    }
    Ok(())
}
