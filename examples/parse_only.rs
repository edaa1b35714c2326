//! The physical limit of decode-bound work (issue 10): a bare typed serde parse of each line of
//! a JSON Lines file of events — every field of SPEC §1 into a borrowed struct, no validation,
//! no KPIs, no output. Replay figures are quoted as multiples of this one, measured in the
//! same run on the same file.
//!
//! ```sh
//! cargo run --release --example parse_only -- /work/baseline/e1m.jsonl
//! ```
//!
//! Prints `parsed N lines (E errors) in S s (R lines/s)` on stdout.

use std::borrow::Cow;
use std::io::BufRead;
use std::time::Instant;

use serde::Deserialize;

/// Every field any event type has (SPEC §1), typed, strings borrowed where they have no
/// escapes. Unknown fields are skipped, as the real decoder does.
#[derive(Deserialize)]
#[allow(dead_code)]
struct Ev<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow, rename = "type")]
    ty: Cow<'a, str>,
    #[serde(borrow)]
    time: Cow<'a, str>,
    #[serde(borrow)]
    customer: Cow<'a, str>,
    #[serde(borrow, default)]
    ticket: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    channel: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    priority: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    team: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    category: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    author: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    agent: Option<Cow<'a, str>>,
    #[serde(default)]
    public: Option<bool>,
    #[serde(default)]
    handle_seconds: Option<f64>,
    #[serde(default)]
    score: Option<i64>,
    #[serde(borrow, default)]
    order: Option<Cow<'a, str>>,
    #[serde(default)]
    amount: Option<f64>,
    #[serde(borrow, default)]
    reason: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    product: Option<Cow<'a, str>>,
}

fn main() -> std::io::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/work/baseline/e1m.jsonl".into());
    let started = Instant::now();
    let mut input = std::io::BufReader::with_capacity(1 << 16, std::fs::File::open(&path)?);
    let mut line = Vec::with_capacity(1024);
    let (mut n, mut errors, mut checksum) = (0u64, 0u64, 0usize);
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        n += 1;
        match serde_json::from_slice::<Ev<'_>>(&line) {
            // Touch the result so that nothing is optimised away.
            Ok(ev) => checksum += ev.id.len() + ev.ty.len() + ev.customer.len(),
            Err(_) => errors += 1,
        }
    }
    let s = started.elapsed().as_secs_f64();
    println!(
        "parsed {n} lines ({errors} errors) in {s:.3} s ({:.0} lines/s) [checksum {checksum}]",
        n as f64 / s
    );
    Ok(())
}
