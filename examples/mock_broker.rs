//! librdkafka's mock cluster as a broker process, for long load runs on a machine whose real
//! broker cannot hold them.
//!
//! `scripts/soak.py --broker mock` uses it for the 1-hour soak at 20,000 events/s: Tansu
//! (the real broker of the tests) keeps every message in memory and has no retention, so an
//! hour at that rate needs about 65 GB. The mock cluster speaks the Kafka protocol (produce,
//! fetch, groups, offsets, idempotent producer) from librdkafka's own code, and keeps at most
//! the last 5 MB (or 100,000 messages) of each partition: its memory stays bounded, and a
//! consumer that falls further behind than that finds its offset out of range (the soak's lag
//! shows it). It does not create topics through the admin API: they are given here.
//!
//! ```sh
//! cargo run --release --example mock_broker -- --topic soak.events:6 --topic soak.kpi:6
//! ```
//!
//! Prints the bootstrap servers on the first line of stdout, then runs until killed (SIGTERM
//! or SIGINT end it; it keeps nothing worth a clean shutdown).

use std::io::Write as _;

use rdkafka::mocking::MockCluster;

const USAGE: &str = "usage: mock_broker [--brokers N] --topic NAME:PARTITIONS [--topic …]";

fn main() {
    if let Err(e) = run() {
        eprintln!("mock_broker: {e}\n{USAGE}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let mut brokers = 1;
    let mut topics: Vec<(String, i32)> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--brokers" => brokers = value()?.parse().map_err(|e| format!("--brokers: {e}"))?,
            "--topic" => {
                let v = value()?;
                let (name, n) = v
                    .rsplit_once(':')
                    .ok_or(format!("--topic {v}: expected NAME:PARTITIONS"))?;
                let n: i32 = n.parse().map_err(|e| format!("--topic {v}: {e}"))?;
                topics.push((name.to_string(), n));
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let cluster = MockCluster::new(brokers).map_err(|e| format!("cannot start: {e}"))?;
    for (name, n) in &topics {
        cluster
            .create_topic(name, *n, 1)
            .map_err(|e| format!("cannot create topic {name}: {e}"))?;
    }
    let mut out = std::io::stdout();
    writeln!(out, "{}", cluster.bootstrap_servers()).map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    loop {
        std::thread::park();
    }
}
