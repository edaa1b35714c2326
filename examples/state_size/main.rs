//! Memory per unit of engine state (issues 10 and 12): how many bytes one open ticket, one
//! customer, one remembered event id, one scheduled timer and one open window aggregate cost,
//! measured by feeding an engine events designed to grow one kind of state at a time.
//!
//! ```sh
//! cargo run --release --example state_size                          # N = 200,000
//! cargo run --release --example state_size -- --n 1000000 --json target/state-size.json
//! cargo run --release --example state_size -- --pairs 1000000       # docs/perf-log.md's shape
//! cxstream generate -n 3600000 --seed 1 --customers 200000 --tickets-per-hour 100000 \
//!   | target/release/examples/state_size --soak-shape 1200          # soak.py's stream, no Kafka
//! ```
//!
//! **Method.** Each scenario builds a fresh [`Engine`] (library API, as `benches/state.rs`
//! does), feeds a warm-up of the same events, then N more, and takes the difference of two
//! readings, each after a trim (`cxstream::alloc::trim`): the heap in use (jemalloc's
//! `stats.allocated`, size-class rounding included) and the process RSS (`/proc/self/statm`).
//! Records are drained and dropped every 4,096 events. Every scenario's counts (tickets,
//! customers, scheduled items, aggregates, inputs not applied) are printed, so what grew is
//! visible.
//!
//! | scenario | N events | grows | other state |
//! |---|---|---|---|
//! | `ids` | `contact.handled`, one customer | N event ids | — |
//! | `customers` | `contact.handled`, N customers | N customers + N ids | — |
//! | `tickets` | `ticket.created`, one customer, SLA targets 1 s | N tickets + N ids | timers fire as the watermark passes (lateness 1 s) |
//! | `tickets+timers` | the same with SLA targets 30 d | N tickets + N ids + 2N timers | — |
//! | `customers+ticket` | `ticket.created`, N customers, SLA targets 30 d (no breach, so no after-sales state) | N tickets + N customers (one ticket each) + N ids + 2N timers | — |
//! | `customers+breach` | the same with SLA targets 1 s: every ticket breaches, so every customer gets after-sales state | as `customers+ticket`, timers fired | after-sales timers, if any (counted) |
//! | `aggregates` | `contact.handled` one minute apart, lateness 3650 d | N windows × `{}` open | N ids |
//! | `dense` | 200 `contact.handled` per minute, handle 1 s–20 min | N/200 aggregates with a dense HDR summary | N ids |
//!
//! Event ids are also kept in a hashbrown table of 21-byte buckets (96-bit key, 8-byte time,
//! control byte), and tickets and customers in indexes of 5-byte buckets (a `u32` slab handle
//! and its control byte; their 16-byte key is in the slab slot): a power of two at a load of at
//! most 7/8, so one entry costs 8/7–16/7 buckets depending on where N falls. Each figure is
//! therefore split into the entity's fixed part and its bucket: fixed id = (`ids` − table) ÷ N
//! (≈ 0); customer = (`customers` − `ids` − index) ÷ N; ticket = (`tickets` − `ids` − index) ÷
//! N; timer = (`tickets+timers` − `tickets`) ÷ 2N; customer with a ticket =
//! (`customers+ticket` − `ids` − 2 indexes) ÷ N − ticket − 2 timers; after-sales state =
//! (`customers+breach` − `ids` − 2 indexes) ÷ N − ticket − customer with a ticket − its
//! scheduled items at a timer's size; aggregate = (`aggregates` − table) ÷
//! N; a dense duration summary = (`dense` − its ids' table) per aggregate − one sparse
//! aggregate. Identifiers have the generator's lengths
//! (`e` + 10 digits, `c` + 7, `t` + 10).
//!
//! `--pairs N` replays the shape of docs/perf-log.md's memory test (N `ticket.created` by N
//! customers 3 ms apart, each followed by a customer message; default configuration: N
//! tickets + N customers + 2N ids + 2N timers) and prints the measured growth beside the sum
//! of the per-entity sizes.
//!
//! `--soak-shape S` reads `scripts/soak.py`'s stream from standard input, S seconds' worth
//! at `--rate` (default 3,000 events/s), through 6 partitions (split by customer, as the
//! generator's Kafka key does) with soak.py's configuration, the Prometheus observer and a
//! checkpoint of every partition every 10 s of input — `run` without Kafka — and prints a CSV
//! sample every 10 s of input: state counts, the event ids in the dedup memory (followed from
//! outside: applied events per partition, swept as the engine sweeps), heap and RSS (no
//! trim: as a running process holds them), and each checkpoint's records, bytes and the heap
//! they take while held; `heap_mid_mb` and `rss_mid_mb` are read half-way between two
//! checkpoints, when the change log holds half an interval of changes (soak_predict's model
//! H). The generator runs in its own process, as in the soak:
//!
//! ```sh
//! cxstream generate -n 10800000 --seed 1 --customers 200000 --tickets-per-hour 100000 \
//!   | target/release/examples/state_size --soak-shape 3600 > target/soak-shape.csv
//! ```

mod mem;
mod soak_shape;

use std::sync::Arc;

use cxstream::config::Config;
use cxstream::engine::{Disposition, Engine};
use cxstream::event::SourcePos;
use cxstream::source;
use cxstream::ts::format_ms;

use mem::{reading, Reading};

/// 2026-11-22T08:00:00Z, the generator's default start.
const START: i64 = 1_795_852_800_000;

/// What a scenario left in the engine.
#[derive(Debug, Default)]
struct Counts {
    tickets: usize,
    customers: usize,
    scheduled: usize,
    aggregates: usize,
    not_applied: usize,
}

/// Feeds `warm` then `n` lines from `line(i)` into a fresh single-partition engine under
/// `cfg`; the growth between the two, and the counts at the end.
fn grow(cfg: &str, warm: usize, n: usize, line: impl Fn(usize, &mut String)) -> (Reading, Counts) {
    let cfg = Config::from_toml_with_env(cfg, &[]).expect("the scenario's configuration");
    let mut e = Engine::new(Arc::new(cfg));
    e.assign(0);
    let mut buf = String::new();
    let mut counts = Counts::default();
    let mut before = Reading::default();
    for i in 0..warm + n {
        if i == warm {
            e.drain().for_each(drop);
            before = reading();
        }
        buf.clear();
        line(i, &mut buf);
        let fed = source::feed(&mut e, 0, buf.as_bytes(), || SourcePos::File {
            file: "state_size".into(),
            line: i as u64,
        });
        counts.not_applied += (fed.disposition != Disposition::Applied) as usize;
        if i % 4096 == 0 {
            e.drain().for_each(drop);
        }
    }
    e.drain().for_each(drop);
    let grown = reading() - before;
    counts.tickets = e.tickets_held();
    counts.customers = e.customers_held();
    counts.scheduled = e.scheduled_items();
    counts.aggregates = e.open_window_aggregates();
    drop(e);
    (grown, counts)
}

fn handled(buf: &mut String, i: usize, customer: usize, t: i64, seconds: usize) {
    use std::fmt::Write;
    let _ = write!(
        buf,
        r#"{{"id":"e{i:010}","type":"contact.handled","time":"{}","customer":"c{customer:07}","agent":"a0001","channel":"phone","handle_seconds":{seconds}}}"#,
        format_ms(t)
    );
}

fn created(buf: &mut String, i: usize, customer: usize, t: i64) {
    use std::fmt::Write;
    const PRIORITIES: [&str; 4] = ["urgent", "high", "normal", "low"];
    let _ = write!(
        buf,
        r#"{{"id":"e{i:010}","type":"ticket.created","time":"{}","customer":"c{customer:07}","ticket":"t{i:010}","channel":"email","priority":"{}","team":"billing","category":"question"}}"#,
        format_ms(t),
        PRIORITIES[i % 4]
    );
}

fn sla(target: &str) -> String {
    let mut s = String::new();
    for kind in ["first_response", "resolution"] {
        s.push_str(&format!("[sla.{kind}]\n"));
        for p in ["urgent", "high", "normal", "low"] {
            s.push_str(&format!("{p} = \"{target}\"\n"));
        }
    }
    s
}

/// Bytes of one bucket of the dedup memory's hash table: the event id's 96-bit key and its
/// 8-byte time in 4-byte words, plus one control byte.
const SLOT: f64 = 21.0;

/// Bytes of one bucket of the ticket and customer indexes: a `u32` slab handle (the key is in
/// the slab's slot, counted in the entity's fixed part) plus one control byte.
const INDEX_SLOT: f64 = 5.0;

/// Buckets of a hashbrown table after `items` inserts: a power of two holding them at a load
/// of at most 7/8 (tables never shrink, so after evictions this is the high-water mark's).
fn buckets(items: usize) -> usize {
    let mut b = 4;
    while (if b < 8 { b - 1 } else { b / 8 * 7 }) < items {
        b *= 2;
    }
    b
}

/// Hash-table bytes added by growing a table from `warm` to `warm + n` entries.
fn table(n: usize, warm: usize) -> Reading {
    table_of(SLOT, n, warm)
}

/// Index bytes added by growing a ticket or customer index from `warm` to `warm + n` entries.
fn index(n: usize, warm: usize) -> Reading {
    table_of(INDEX_SLOT, n, warm)
}

fn table_of(slot: f64, n: usize, warm: usize) -> Reading {
    let bytes = slot * (buckets(n + warm) - buckets(warm)) as f64;
    Reading {
        heap: bytes,
        rss: bytes,
    }
}

/// Per-entity sizes, in bytes: `*_fixed` without the entity's hash-table bucket(s), `at_n`
/// with them at the load factor of N entries.
#[derive(Debug, Default)]
struct Sizes {
    n: usize,
    baseline: Reading,
    id_fixed: Reading,
    customer_fixed: Reading,
    ticket_fixed: Reading,
    customer_with_ticket_fixed: Reading,
    /// What a customer's after-sales state adds (its first breached ticket's signals).
    aftersales: Reading,
    timer: Reading,
    aggregate: Reading,
    dense_summary: Reading,
    /// Dedup-table bytes per entry at N (21 B ÷ load).
    slot_at_n: f64,
    /// Ticket or customer index bytes per entry at N (5 B ÷ load).
    index_at_n: f64,
}

fn scenario(name: &str, r: Reading, c: &Counts) {
    eprintln!(
        "  {name:<17} grew heap {:>8.1} MB, RSS {:>8.1} MB; held: {} tickets, {} customers, {} scheduled, {} aggregates; {} not applied",
        r.heap / 1e6,
        r.rss / 1e6,
        c.tickets,
        c.customers,
        c.scheduled,
        c.aggregates,
        c.not_applied
    );
}

fn measure(n: usize) -> Sizes {
    let warm = 1000;
    let nf = n as f64;
    let ms = |i: usize, step: i64| START + i as i64 * step;
    let base_cfg = "";
    let quick = format!(
        "[engine]\nallowed_lateness = \"1s\"\n[signals]\nrepeat_contact_window = \"1s\"\n{}",
        sla("1s")
    );
    let long = format!(
        "[engine]\nallowed_lateness = \"1s\"\n[signals]\nrepeat_contact_window = \"1s\"\n{}",
        sla("30d")
    );
    let open = "[engine]\nwindows = [\"1m\"]\ngroup_by = [[]]\nallowed_lateness = \"3650d\"\n";

    let mut s = Sizes {
        n,
        slot_at_n: table(n, warm).rss / nf,
        index_at_n: index(n, warm).rss / nf,
        ..Default::default()
    };
    {
        let cfg = Config::from_toml_with_env(base_cfg, &[]).expect("defaults");
        let mut e = Engine::new(Arc::new(cfg));
        e.assign(0);
        let mut buf = String::new();
        for i in 0..100 {
            buf.clear();
            handled(&mut buf, i, i, ms(i, 10), 60);
            source::feed(&mut e, 0, buf.as_bytes(), || SourcePos::File {
                file: "state_size".into(),
                line: i as u64,
            });
        }
        e.drain().for_each(drop);
        s.baseline = reading();
    }
    eprintln!("N = {n} (warm-up {warm}); growth of each scenario:");
    let t = table(n, warm);
    let x = index(n, warm);

    let (ids, c) = grow(base_cfg, warm, n, |i, b| handled(b, i, 1, ms(i, 10), 60));
    scenario("ids", ids, &c);
    s.id_fixed = (ids - t).per(nf);

    let (r, c) = grow(base_cfg, warm, n, |i, b| handled(b, i, i, ms(i, 10), 60));
    scenario("customers", r, &c);
    s.customer_fixed = (r - ids - x).per(nf);

    let (tickets, c) = grow(&quick, warm, n, |i, b| created(b, i, 1, ms(i, 100)));
    scenario("tickets", tickets, &c);
    s.ticket_fixed = (tickets - ids - x).per(nf);

    let (r, c) = grow(&long, warm, n, |i, b| created(b, i, 1, ms(i, 100)));
    scenario("tickets+timers", r, &c);
    s.timer = (r - tickets).per(2.0 * nf);

    let (r, c) = grow(&long, warm, n, |i, b| created(b, i, i, ms(i, 100)));
    scenario("customers+ticket", r, &c);
    s.customer_with_ticket_fixed = (r - ids - x - x)
        .per(nf)
        .minus(s.ticket_fixed, 1.0)
        .minus(s.timer, 2.0);

    // The same with SLA targets of 1 s: each ticket breaches as the watermark passes its due,
    // which feeds the customer's churn-risk score — its after-sales state is allocated. What
    // remains scheduled (after-sales timers) is counted at the timer's size.
    let (r, c) = grow(&quick, warm, n, |i, b| created(b, i, i, ms(i, 100)));
    scenario("customers+breach", r, &c);
    s.aftersales = (r - ids - x - x)
        .per(nf)
        .minus(s.ticket_fixed, 1.0)
        .minus(s.customer_with_ticket_fixed, 1.0)
        .minus(s.timer, c.scheduled as f64 / nf);

    // At most 200,000 (≈ 300 MB): the size per aggregate does not depend on their number.
    let na = n.min(200_000);
    let (r, c) = grow(open, warm, na, |i, b| handled(b, i, 1, ms(i, 60_000), 60));
    scenario("aggregates", r, &c);
    s.aggregate = (r - table(na, warm)).per(na as f64);

    // 200 values per window, 1 s .. 20 min: a materialized HDR histogram (values up to 2^21 ms).
    let per = 200;
    let windows = (n / 200).clamp(100, 2000);
    let (r, c) = grow(open, warm * per / 10, windows * per, |i, b| {
        let t = START + (i / per) as i64 * 60_000 + (i % per) as i64;
        handled(b, i, 1, t, 1 + (i % per) * 1199 / (per - 1))
    });
    scenario("dense", r, &c);
    s.dense_summary = (r - table(windows * per, warm * per / 10))
        .per(windows as f64)
        .minus(s.aggregate, 1.0);
    s
}

fn print_sizes(s: &Sizes) {
    let (slot, index) = (s.slot_at_n, s.index_at_n);
    println!(
        "| state | fixed bytes (RSS) | hash-table bytes at N = {} | RSS bytes each at N | heap bytes each at N |",
        s.n
    );
    println!("|---|---:|---:|---:|---:|");
    let rows = [
        (
            "ticket (without its timers and event id)",
            s.ticket_fixed,
            index,
        ),
        ("customer (no after-sales state)", s.customer_fixed, index),
        (
            "customer with one recent ticket",
            s.customer_with_ticket_fixed,
            index,
        ),
        (
            "+ a customer's after-sales state (one breached ticket)",
            s.aftersales,
            0.0,
        ),
        ("remembered event id (dedup)", s.id_fixed, slot),
        ("scheduled timer", s.timer, 0.0),
        ("open window aggregate (sparse)", s.aggregate, 0.0),
        (
            "+ each dense duration summary (values ≤ 20 min)",
            s.dense_summary,
            0.0,
        ),
    ];
    for (what, r, table) in rows {
        println!(
            "| {what} | {:.0} | {:.0} | {:.0} | {:.0} |",
            r.rss,
            table,
            r.rss + table,
            r.heap + table
        );
    }
    println!(
        "| fixed baseline (this process with an engine, after trim) | {:.1} MB | | | {:.1} MB |",
        s.baseline.rss / 1e6,
        s.baseline.heap / 1e6
    );
    println!(
        "Hash-table buckets: {SLOT} bytes (event ids), {INDEX_SLOT} bytes (ticket and customer indexes); at N {:.1} and {:.1} bytes per entry (load {:.2}); between 8/7 and 16/7 buckets per entry as the load goes from 7/8 down to 7/16 after a doubling.",
        slot,
        index,
        SLOT / slot,
    );
}

fn json(s: &Sizes) -> String {
    let kv =
        |k: &str, r: Reading| format!("\"{k}\":{{\"heap\":{:.1},\"rss\":{:.1}}}", r.heap, r.rss);
    format!(
        "{{\"n\":{},\"slot\":{SLOT},\"slot_at_n\":{:.2},\"index_slot\":{INDEX_SLOT},\"index_at_n\":{:.2},{},{},{},{},{},{},{},{},{}}}\n",
        s.n,
        s.slot_at_n,
        s.index_at_n,
        kv("baseline", s.baseline),
        kv("ticket_fixed", s.ticket_fixed),
        kv("customer_fixed", s.customer_fixed),
        kv("customer_with_ticket_fixed", s.customer_with_ticket_fixed),
        kv("aftersales", s.aftersales),
        kv("event_id_fixed", s.id_fixed),
        kv("timer", s.timer),
        kv("aggregate", s.aggregate),
        kv("dense_summary", s.dense_summary),
    )
}

/// docs/perf-log.md's memory test: N tickets by N customers + a customer message each.
fn pairs(n: usize, s: &Sizes) {
    use std::fmt::Write;
    let (r, c) = grow("", 0, 2 * n, |i, b| {
        let k = i / 2;
        let t = START + 3 * k as i64;
        if i % 2 == 0 {
            let _ = write!(
                b,
                r#"{{"id":"e{i:09}","type":"ticket.created","time":"{}","customer":"c{k:07}","ticket":"t{k:09}","channel":"chat","priority":"normal","team":"billing","category":"question"}}"#,
                format_ms(t)
            );
        } else {
            let _ = write!(
                b,
                r#"{{"id":"e{i:09}","type":"ticket.message","time":"{}","customer":"c{k:07}","ticket":"t{k:09}","author":"customer"}}"#,
                format_ms(t)
            );
        }
    });
    scenario("pairs", r, &c);
    let tables = 2.0 * index(n, 0).rss + table(2 * n, 0).rss;
    let model = |f: fn(&Reading) -> f64| {
        c.tickets as f64 * f(&s.ticket_fixed)
            + c.customers as f64 * f(&s.customer_with_ticket_fixed)
            + 2.0 * n as f64 * f(&s.id_fixed)
            + c.scheduled as f64 * f(&s.timer)
            + tables
    };
    println!(
        "{n} tickets + {n} customers + {} ids + {} scheduled: grew heap {:.1} MB, RSS {:.1} MB (process RSS {:.1} MB); sum of per-entity sizes: heap {:.1} MB, RSS {:.1} MB",
        2 * n,
        c.scheduled,
        r.heap / 1e6,
        r.rss / 1e6,
        mem::rss() as f64 / 1e6,
        model(|r| r.heap) / 1e6,
        model(|r| r.rss) / 1e6
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut n = 200_000;
    let mut json_path = None;
    let mut pairs_n = None;
    let mut soak = None;
    let mut rate = 3000;
    let mut config = None;
    let mut trim = 0;
    let mut it = args.iter();
    let num = |v: Option<&String>, what: &str| -> usize {
        match v.and_then(|v| v.replace('_', "").parse().ok()) {
            Some(x) if x > 0 => x,
            _ => {
                eprintln!("{what} needs a positive number");
                std::process::exit(2)
            }
        }
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--n" => n = num(it.next(), "--n"),
            "--json" => json_path = it.next().cloned(),
            "--pairs" => pairs_n = Some(num(it.next(), "--pairs")),
            "--soak-shape" => soak = Some(num(it.next(), "--soak-shape")),
            "--rate" => rate = num(it.next(), "--rate"),
            "--config" => config = it.next().cloned(),
            "--trim" => trim = num(it.next(), "--trim"),
            _ => {
                eprintln!("usage: state_size [--n N] [--json FILE] [--pairs N] | --soak-shape SECONDS [--rate R] [--config FILE] [--trim SECONDS]");
                std::process::exit(2)
            }
        }
    }
    if let Some(seconds) = soak {
        let text = match config {
            Some(path) => match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("{path}: {e}");
                    std::process::exit(2)
                }
            },
            None => soak_shape::SOAK_CONFIG.to_string(),
        };
        if let Err(e) = Config::from_toml_with_env(&text, &[]) {
            eprintln!("configuration: {e:#}");
            std::process::exit(2)
        }
        soak_shape::soak_shape(seconds, rate, &text, trim);
        return;
    }
    let s = measure(n);
    print_sizes(&s);
    if let Some(path) = json_path {
        if let Err(e) = std::fs::write(&path, json(&s)) {
            eprintln!("{path}: {e}");
            std::process::exit(1)
        }
    }
    if let Some(p) = pairs_n {
        pairs(p, &s);
    }
}
