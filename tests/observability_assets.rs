//! The static observability assets: Prometheus configuration, recording and alerting rules
//! (and their promtool unit tests), the Grafana dashboard and provisioning, docker-compose.yml.
//!
//! - Metric names and label names used by every rule and dashboard expression must be those of
//!   SPEC §6 and §7 (histograms through `_bucket`/`_sum`/`_count`), `up`, or a recording rule
//!   of `config/prometheus/rules/`.
//! - `promtool check config`, `promtool check rules` and `promtool test rules` must pass; every
//!   dashboard query must parse (checked by promtool as a recording rule).
//! - A real Prometheus scrapes two synthetic instances (each with every SPEC §6/§7 metric, the
//!   per-partition series on partitions of its own), evaluates the rules, and answers every
//!   dashboard and rule expression through its query API: an expression that only works with
//!   one instance (many-to-many matching) fails there.
//! - Every alert has severity, summary, description and a runbook section, and promtool tests
//!   with a firing and a not-firing case.
//! - Every file docker-compose.yml mounts or builds from exists (the cxstream services and
//!   what Prometheus scrapes: tests/compose_layout.rs).
//!
//! External programs: promtool (`$CXSTREAM_PROMTOOL` or PATH) and prometheus
//! (`$CXSTREAM_PROMETHEUS` or PATH). When one is missing the test prints
//! "SKIPPED: ... not found" and passes, unless `CXSTREAM_REQUIRE_EXTERNAL=1`: then it fails.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

mod common;
use common::external::find_program;

const PROMETHEUS_INSTALL: &str =
    "scripts/install-test-deps.sh, or Debian: apt-get install prometheus";

/// `GET path` on `addr`: (status, body).
fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    common::external::http_get(addr, path, Duration::from_secs(30))
}

// ------------------------------------------------------------------------------------------
// SPEC §6 and §7

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
    /// Quantile gauges (`cxstream_window_*_seconds{window,quantile}`), exposed as summaries.
    Summary,
}

const TCP: &[&str] = &["team", "channel", "priority"];

/// Every metric of SPEC §6 and §7 with its labels.
const SPEC_METRICS: &[(&str, Kind, &[&str])] = &[
    ("cxstream_tickets_created_total", Kind::Counter, TCP),
    ("cxstream_tickets_solved_total", Kind::Counter, TCP),
    ("cxstream_tickets_first_solved_total", Kind::Counter, TCP),
    ("cxstream_tickets_fcr_total", Kind::Counter, TCP),
    ("cxstream_tickets_reopened_total", Kind::Counter, TCP),
    ("cxstream_tickets_escalated_total", Kind::Counter, TCP),
    ("cxstream_first_response_seconds", Kind::Histogram, TCP),
    ("cxstream_resolution_seconds", Kind::Histogram, TCP),
    ("cxstream_handle_seconds", Kind::Histogram, &["channel"]),
    (
        "cxstream_sla_achieved_total",
        Kind::Counter,
        &["sla", "team", "priority"],
    ),
    (
        "cxstream_sla_breached_total",
        Kind::Counter,
        &["sla", "team", "priority"],
    ),
    (
        "cxstream_csat_responses_total",
        Kind::Counter,
        &["team", "score"],
    ),
    ("cxstream_nps_responses_total", Kind::Counter, &["class"]),
    ("cxstream_ces_responses_total", Kind::Counter, &["score"]),
    ("cxstream_orders_total", Kind::Counter, &[]),
    ("cxstream_order_revenue_total", Kind::Counter, &[]),
    ("cxstream_returns_total", Kind::Counter, &[]),
    ("cxstream_warranty_claims_total", Kind::Counter, &[]),
    (
        "cxstream_customers_churned_total",
        Kind::Counter,
        &["signalled"],
    ),
    ("cxstream_churn_signals_total", Kind::Counter, &[]),
    (
        "cxstream_churn_signal_outcomes_total",
        Kind::Counter,
        &["outcome"],
    ),
    ("cxstream_recovery_cases_total", Kind::Counter, &["outcome"]),
    ("cxstream_recovery_answer_seconds", Kind::Histogram, &[]),
    (
        "cxstream_post_service_outcomes_total",
        Kind::Counter,
        &["outcome", "csat_band"],
    ),
    ("cxstream_open_tickets", Kind::Gauge, &["team", "priority"]),
    (
        "cxstream_sla_breached_open_tickets",
        Kind::Gauge,
        &["sla", "team", "priority"],
    ),
    ("cxstream_customers_at_risk", Kind::Gauge, &[]),
    ("cxstream_recovery_open_cases", Kind::Gauge, &[]),
    (
        "cxstream_window_first_response_seconds",
        Kind::Summary,
        &["window"],
    ),
    (
        "cxstream_window_resolution_seconds",
        Kind::Summary,
        &["window"],
    ),
    ("cxstream_window_fcr_ratio", Kind::Gauge, &["window"]),
    ("cxstream_window_csat_ratio", Kind::Gauge, &["window"]),
    ("cxstream_window_nps", Kind::Gauge, &["window"]),
    ("cxstream_events_total", Kind::Counter, &["type"]),
    ("cxstream_events_invalid_total", Kind::Counter, &["reason"]),
    ("cxstream_events_duplicate_total", Kind::Counter, &[]),
    ("cxstream_events_late_total", Kind::Counter, &[]),
    ("cxstream_events_orphan_total", Kind::Counter, &[]),
    ("cxstream_output_records_total", Kind::Counter, &["type"]),
    (
        "cxstream_consumer_lag",
        Kind::Gauge,
        &["topic", "partition"],
    ),
    ("cxstream_watermark_seconds", Kind::Gauge, &[]),
    ("cxstream_processing_seconds", Kind::Histogram, &[]),
    ("cxstream_state_tickets", Kind::Gauge, &[]),
    ("cxstream_state_customers", Kind::Gauge, &[]),
    ("cxstream_label_overflow_total", Kind::Counter, &["label"]),
    // SPEC §7: durability and scale-out.
    ("cxstream_checkpoint_seconds", Kind::Histogram, &[]),
    ("cxstream_checkpoint_bytes_total", Kind::Counter, &[]),
    ("cxstream_restore_seconds", Kind::Histogram, &[]),
    ("cxstream_restored_partitions_total", Kind::Counter, &[]),
    ("cxstream_merge_pending_windows", Kind::Gauge, &[]),
    (
        "cxstream_partition_watermark_seconds",
        Kind::Gauge,
        &["partition"],
    ),
    (
        "cxstream_checkpoint_age_seconds",
        Kind::Gauge,
        &["partition"],
    ),
];

/// Labels Prometheus attaches to every scraped series.
const TARGET_LABELS: &[&str] = &["job", "instance"];

/// Series names an expression may select, with the label names each may be matched on.
fn allowed_series() -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    let with = |labels: &[&str], extra: &[&str]| -> BTreeSet<String> {
        labels
            .iter()
            .chain(extra)
            .chain(TARGET_LABELS)
            .map(|s| s.to_string())
            .collect()
    };
    for (name, kind, labels) in SPEC_METRICS {
        match kind {
            Kind::Counter | Kind::Gauge => {
                out.insert(name.to_string(), with(labels, &[]));
            }
            Kind::Histogram => {
                out.insert(format!("{name}_bucket"), with(labels, &["le"]));
                out.insert(format!("{name}_sum"), with(labels, &[]));
                out.insert(format!("{name}_count"), with(labels, &[]));
            }
            Kind::Summary => {
                out.insert(name.to_string(), with(labels, &["quantile"]));
                out.insert(format!("{name}_sum"), with(labels, &[]));
                out.insert(format!("{name}_count"), with(labels, &[]));
            }
        }
    }
    out.insert("up".into(), with(&[], &[]));
    out
}

// ------------------------------------------------------------------------------------------
// Files

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn prom_dir() -> PathBuf {
    root().join("config/prometheus")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The `*.yml`/`*.yaml` files directly in `dir`, sorted.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.is_file()
                && matches!(
                    p.extension().and_then(|x| x.to_str()),
                    Some("yml") | Some("yaml")
                )
        })
        .collect();
    v.sort();
    v
}

fn rule_files() -> Vec<PathBuf> {
    let v = yaml_files(&prom_dir().join("rules"));
    assert!(!v.is_empty(), "no rule files in config/prometheus/rules");
    v
}

fn rule_test_files() -> Vec<PathBuf> {
    let v = yaml_files(&prom_dir().join("rules/tests"));
    assert!(
        !v.is_empty(),
        "no rule tests in config/prometheus/rules/tests"
    );
    v
}

fn yaml(path: &Path) -> Yaml {
    serde_yaml::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn dashboard() -> Json {
    let p = root().join("config/grafana/dashboards/cxstream.json");
    serde_json::from_str(&read(&p)).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn ystr<'a>(v: &'a Yaml, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Yaml::as_str)
}

/// One rule of a rules file.
struct Rule {
    file: String,
    group: String,
    /// `alert` or `record` name.
    name: String,
    is_alert: bool,
    expr: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

fn str_map(v: Option<&Yaml>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(Yaml::Mapping(m)) = v {
        for (k, v) in m {
            let v = match v {
                Yaml::String(s) => s.clone(),
                other => serde_yaml::to_string(other).unwrap().trim().to_string(),
            };
            out.insert(k.as_str().unwrap().to_string(), v);
        }
    }
    out
}

fn rules() -> Vec<Rule> {
    let mut out = Vec::new();
    for f in rule_files() {
        let doc = yaml(&f);
        let groups = doc["groups"].as_sequence().expect("groups");
        for g in groups {
            let group = ystr(g, "name").expect("group name").to_string();
            for r in g["rules"].as_sequence().expect("rules") {
                let (name, is_alert) = match (ystr(r, "alert"), ystr(r, "record")) {
                    (Some(a), None) => (a, true),
                    (None, Some(rec)) => (rec, false),
                    _ => panic!("{}: rule is neither alert nor record: {r:?}", f.display()),
                };
                out.push(Rule {
                    file: f.file_name().unwrap().to_string_lossy().into_owned(),
                    group: group.clone(),
                    name: name.to_string(),
                    is_alert,
                    expr: ystr(r, "expr").expect("expr").to_string(),
                    labels: str_map(r.get("labels")),
                    annotations: str_map(r.get("annotations")),
                });
            }
        }
    }
    out
}

// ------------------------------------------------------------------------------------------
// Dashboard

/// Every panel, rows' nested panels included.
fn panels(d: &Json) -> Vec<&Json> {
    fn walk<'a>(list: &'a Json, out: &mut Vec<&'a Json>) {
        for p in list.as_array().into_iter().flatten() {
            out.push(p);
            if let Some(inner) = p.get("panels") {
                walk(inner, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&d["panels"], &mut out);
    out
}

/// (panel title, refId, expr) of every query of the dashboard.
fn dashboard_queries(d: &Json) -> Vec<(String, String, String)> {
    dashboard_targets(d)
        .into_iter()
        .map(|(title, refid, expr, _)| (title, refid, expr))
        .collect()
}

/// (panel title, refId, expr, legendFormat) of every query of the dashboard.
fn dashboard_targets(d: &Json) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for p in panels(d) {
        if p["type"] == "row" {
            continue;
        }
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push((
                p["title"].as_str().unwrap_or("?").to_string(),
                t["refId"].as_str().unwrap_or("?").to_string(),
                t["expr"].as_str().unwrap_or("").to_string(),
                t["legendFormat"].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    out
}

/// The query of each template variable.
fn variable_queries(d: &Json) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        if v["type"] != "query" {
            continue;
        }
        let q = match &v["query"] {
            Json::String(s) => s.clone(),
            q => q["query"].as_str().unwrap_or("").to_string(),
        };
        out.push((v["name"].as_str().unwrap_or("?").to_string(), q));
    }
    out
}

/// Replaces Grafana variables by values Prometheus accepts: `$__rate_interval`, `$__interval`
/// and `$__range` by durations, any other `$name` / `${name}` (template variables, used in
/// regex matchers) by `.*`.
fn substitute_grafana_vars(expr: &str) -> String {
    let mut out = String::new();
    let b = expr.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            let ch = expr[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
            continue;
        }
        let (name, next) = if b.get(i + 1) == Some(&b'{') {
            let end = expr[i..].find('}').map(|e| i + e).expect("unclosed ${");
            (
                expr[i + 2..end].split(':').next().unwrap().to_string(),
                end + 1,
            )
        } else {
            let mut j = i + 1;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                j += 1;
            }
            (expr[i + 1..j].to_string(), j)
        };
        out.push_str(match name.as_str() {
            "__rate_interval" | "__interval" => "1m",
            "__range" => "1h",
            _ => ".*",
        });
        i = next;
    }
    out
}

// ------------------------------------------------------------------------------------------
// A small PromQL scanner: enough to find the metric names, their label matchers and the
// labels of grouping clauses. (Syntax itself is checked by promtool and Prometheus.)

#[derive(Debug, Default)]
struct Refs {
    /// (metric name, label names in its matchers)
    selectors: Vec<(String, Vec<String>)>,
    /// Label names in by/without/on/ignoring/group_left/group_right lists.
    grouping_labels: Vec<String>,
    /// Matchers without a metric name (`{job="x"}`).
    bare_matchers: Vec<Vec<String>>,
}

const KEYWORDS: &[&str] = &[
    "and", "or", "unless", "bool", "offset", "inf", "nan", "atan2", "start", "end",
];
const GROUPING: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];

fn scan_promql(expr: &str) -> Refs {
    let c: Vec<char> = expr.chars().collect();
    let n = c.len();
    let mut refs = Refs::default();
    let mut i = 0;
    let skip_ws = |mut j: usize| {
        while j < n && c[j].is_whitespace() {
            j += 1;
        }
        j
    };
    let skip_string = |j: usize| -> usize {
        let q = c[j];
        let mut k = j + 1;
        while k < n && c[k] != q {
            if c[k] == '\\' && q != '`' {
                k += 1;
            }
            k += 1;
        }
        k + 1
    };
    // Parses `{ name op "value", ... }` starting at `{`; returns (label names, index after `}`).
    let matchers = |j: usize| -> (Vec<String>, usize) {
        let mut names = Vec::new();
        let mut k = j + 1;
        loop {
            k = skip_ws(k);
            if k >= n {
                panic!("unclosed {{ in {expr}");
            }
            match c[k] {
                '}' => return (names, k + 1),
                ',' => k += 1,
                '"' | '\'' | '`' => k = skip_string(k),
                ch if ch.is_alphabetic() || ch == '_' => {
                    let s = k;
                    while k < n && (c[k].is_alphanumeric() || c[k] == '_') {
                        k += 1;
                    }
                    names.push(c[s..k].iter().collect());
                }
                _ => k += 1, // operators = != =~ !~
            }
        }
    };
    while i < n {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '"' || ch == '\'' || ch == '`' {
            i = skip_string(i);
        } else if ch == '#' {
            while i < n && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '[' {
            while i < n && c[i] != ']' {
                i += 1;
            }
            i += 1;
        } else if ch == '{' {
            let (names, next) = matchers(i);
            refs.bare_matchers.push(names);
            i = next;
        } else if ch.is_ascii_digit() || (ch == '.' && i + 1 < n && c[i + 1].is_ascii_digit()) {
            // number or duration (1.5, 1e3, 0x1f, 5m, 1h30m)
            while i < n && (c[i].is_ascii_alphanumeric() || c[i] == '.' || c[i] == '_') {
                i += 1;
            }
        } else if ch.is_alphabetic() || ch == '_' || ch == ':' {
            let s = i;
            while i < n && (c[i].is_alphanumeric() || c[i] == '_' || c[i] == ':') {
                i += 1;
            }
            let word: String = c[s..i].iter().collect();
            let j = skip_ws(i);
            let lower = word.to_ascii_lowercase();
            if GROUPING.contains(&lower.as_str()) {
                if j < n && c[j] == '(' {
                    let end = j + c[j..].iter().position(|&x| x == ')').expect("unclosed (");
                    let list: String = c[j + 1..end].iter().collect();
                    refs.grouping_labels.extend(
                        list.split(',')
                            .map(|s| s.trim().to_string())
                            .filter(|s| !s.is_empty()),
                    );
                    i = end + 1;
                }
            } else if KEYWORDS.contains(&lower.as_str())
                || AGGREGATIONS.contains(&lower.as_str())
                || (j < n && c[j] == '(')
            {
                // keyword, aggregation or function call
            } else {
                let mut names = Vec::new();
                if j < n && c[j] == '{' {
                    let (m, next) = matchers(j);
                    names = m;
                    i = next;
                }
                refs.selectors.push((word, names));
            }
        } else {
            i += 1;
        }
    }
    refs
}

/// Checks the names used by `expr` (from `origin`); returns the problems found.
fn check_names(
    origin: &str,
    expr: &str,
    need_metric: bool,
    allowed: &BTreeMap<String, BTreeSet<String>>,
    recorded: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let refs = scan_promql(expr);
    let all_labels: BTreeSet<String> = allowed
        .values()
        .chain(recorded.values())
        .flatten()
        .cloned()
        .collect();
    if need_metric && refs.selectors.is_empty() {
        problems.push(format!("{origin}: no metric in `{expr}`"));
    }
    for (name, labels) in &refs.selectors {
        let known = if let Some(l) = allowed.get(name) {
            l
        } else if let Some(l) = recorded.get(name) {
            l
        } else {
            problems.push(format!(
                "{origin}: `{name}` is neither a SPEC §6/§7 series nor a recording rule"
            ));
            continue;
        };
        for l in labels {
            if !known.contains(l) {
                problems.push(format!("{origin}: `{name}` has no label `{l}`"));
            }
        }
    }
    for l in refs
        .grouping_labels
        .iter()
        .chain(refs.bare_matchers.iter().flatten())
    {
        if !all_labels.contains(l) {
            problems.push(format!("{origin}: unknown label `{l}` in `{expr}`"));
        }
    }
    problems
}

/// Recording rule names with the labels their series can carry (the rule's `labels`, the
/// grouping labels of its expression, and the labels of the series it selects, which
/// `without (...)` and plain functions keep: a generous upper bound).
fn recorded_series(rules: &[Rule]) -> BTreeMap<String, BTreeSet<String>> {
    let allowed = allowed_series();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // Twice, so that a rule reading a recording rule defined after it gets its labels too.
    for _ in 0..2 {
        for r in rules.iter().filter(|r| !r.is_alert) {
            let refs = scan_promql(&r.expr);
            let mut labels: BTreeSet<String> = r.labels.keys().cloned().collect();
            labels.extend(refs.grouping_labels.iter().cloned());
            labels.extend(TARGET_LABELS.iter().map(|s| s.to_string()));
            for (name, _) in &refs.selectors {
                if let Some(l) = allowed.get(name).or_else(|| out.get(name)) {
                    labels.extend(l.iter().cloned());
                }
            }
            out.entry(r.name.clone()).or_default().extend(labels);
        }
    }
    out
}

// ------------------------------------------------------------------------------------------
// External programs

fn promtool() -> Option<PathBuf> {
    find_program("CXSTREAM_PROMTOOL", "promtool", PROMETHEUS_INSTALL)
}

fn run_promtool(promtool: &Path, args: &[&str], paths: &[PathBuf]) {
    let out = Command::new(promtool)
        .args(args)
        .args(paths)
        .current_dir(root())
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("promtool {} ...\n{text}", args.join(" "));
    assert!(
        out.status.success(),
        "promtool {} {:?} failed:\n{text}",
        args.join(" "),
        paths
    );
}

// ------------------------------------------------------------------------------------------
// promtool

#[test]
fn promtool_check_config() {
    let Some(promtool) = promtool() else { return };
    // Resolves rule_files (rules/*.yml) relative to the file and checks them too; the scrape
    // target cxstream:9464 is not resolved.
    run_promtool(
        &promtool,
        &["check", "config"],
        &[prom_dir().join("prometheus.yml")],
    );
}

#[test]
fn promtool_check_rules() {
    let Some(promtool) = promtool() else { return };
    run_promtool(&promtool, &["check", "rules"], &rule_files());
}

/// One promtool per test file, in parallel (the day-long scenarios take several seconds each).
#[test]
fn promtool_test_rules() {
    let Some(promtool) = promtool() else { return };
    let files = rule_test_files();
    let handles: Vec<_> = files
        .into_iter()
        .map(|f| {
            let promtool = promtool.clone();
            thread::spawn(move || run_promtool(&promtool, &["test", "rules"], &[f]))
        })
        .collect();
    let failed = handles
        .into_iter()
        .map(|h| h.join())
        .filter(Result::is_err)
        .count();
    assert_eq!(
        failed, 0,
        "{failed} promtool rule test file(s) failed, see above"
    );
}

/// Every dashboard query must parse: promtool checks them as recording rules.
#[test]
fn dashboard_queries_parse() {
    let Some(promtool) = promtool() else { return };
    let d = dashboard();
    let mut rules = Vec::new();
    for (i, (title, refid, expr)) in dashboard_queries(&d).iter().enumerate() {
        let mut rule = serde_yaml::Mapping::new();
        rule.insert(
            "record".into(),
            format!("dashboard:query_{i}:{refid}").into(),
        );
        rule.insert("expr".into(), substitute_grafana_vars(expr).into());
        rule.insert("labels".into(), {
            let mut l = serde_yaml::Mapping::new();
            l.insert("panel".into(), title.clone().into());
            l.into()
        });
        rules.push(Yaml::Mapping(rule));
    }
    let doc = serde_yaml::to_string(&serde_yaml::Mapping::from_iter([(
        Yaml::from("groups"),
        Yaml::Sequence(vec![Yaml::Mapping(serde_yaml::Mapping::from_iter([
            (Yaml::from("name"), Yaml::from("dashboard")),
            (Yaml::from("rules"), Yaml::Sequence(rules)),
        ]))]),
    )]))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dashboard-queries.yml");
    fs::write(&path, doc).unwrap();
    run_promtool(&promtool, &["check", "rules"], &[path]);
}

// ------------------------------------------------------------------------------------------
// Names, annotations, runbook, tests

#[test]
fn every_expression_uses_spec_metric_names() {
    let rules = rules();
    let allowed = allowed_series();
    let recorded = recorded_series(&rules);
    let mut problems = Vec::new();
    for r in &rules {
        let origin = format!("{} {}/{}", r.file, r.group, r.name);
        // A recording rule may be a constant (`vector(0.95)`).
        problems.extend(check_names(
            &origin, &r.expr, r.is_alert, &allowed, &recorded,
        ));
    }
    let d = dashboard();
    for (title, refid, expr) in dashboard_queries(&d) {
        let origin = format!("dashboard panel {title:?} {refid}");
        problems.extend(check_names(&origin, &expr, true, &allowed, &recorded));
    }
    for (name, q) in variable_queries(&d) {
        // label_values(<metric>, <label>)
        let inner = q
            .strip_prefix("label_values(")
            .and_then(|s| s.strip_suffix(')'))
            .unwrap_or_else(|| panic!("variable {name}: unsupported query {q:?}"));
        let (metric, label) = inner.rsplit_once(',').expect("label_values(metric, label)");
        let origin = format!("dashboard variable {name}");
        problems.extend(check_names(&origin, metric, true, &allowed, &recorded));
        let metric = metric.trim().split('{').next().unwrap();
        if !allowed
            .get(metric)
            .is_some_and(|l| l.contains(label.trim()))
        {
            problems.push(format!(
                "{origin}: `{metric}` has no label `{}`",
                label.trim()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_promql_scanner_finds_names_and_labels() {
    let r = scan_promql(
        r#"histogram_quantile(0.9, sum by (team, le) (rate(a_bucket{team=~"$team", x="}"}[5m] offset 1h)))
           > on (priority) group_left () b:rec{sla="first_response"} and 1e3 < c unless absent(up{job="x"})"#,
    );
    let names: Vec<_> = r
        .selectors
        .iter()
        .map(|(n, l)| (n.as_str(), l.clone()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("a_bucket", vec!["team".to_string(), "x".to_string()]),
            ("b:rec", vec!["sla".to_string()]),
            ("c", vec![]),
            ("up", vec!["job".to_string()]),
        ]
    );
    assert_eq!(r.grouping_labels, vec!["team", "le", "priority"]);
    assert_eq!(
        substitute_grafana_vars(r#"rate(x{team=~"$team", w=~"${window}"}[$__rate_interval])"#),
        r#"rate(x{team=~".*", w=~".*"}[1m])"#
    );
}

/// GitHub-style anchors of the markdown headings of `text`.
fn anchors(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| {
            l.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

#[test]
fn every_alert_is_documented_and_unit_tested() {
    let rules = rules();
    let alerts: Vec<&Rule> = rules.iter().filter(|r| r.is_alert).collect();
    assert!(
        alerts.len() >= 15,
        "expected the alerts of issue 4, found {}",
        alerts.len()
    );
    let runbook_path = root().join("docs/runbook.md");
    let runbook_anchors = anchors(&read(&runbook_path));

    // Alert name -> (has a firing case, has a not-firing case), over all rule tests.
    let mut cases: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    for f in rule_test_files() {
        let doc = yaml(&f);
        for t in doc["tests"].as_sequence().expect("tests") {
            for a in t["alert_rule_test"].as_sequence().into_iter().flatten() {
                let name = ystr(a, "alertname").expect("alertname").to_string();
                let firing = a["exp_alerts"].as_sequence().is_some_and(|v| !v.is_empty());
                let e = cases.entry(name).or_default();
                if firing {
                    e.0 = true;
                } else {
                    e.1 = true;
                }
            }
        }
    }

    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for a in &alerts {
        let n = &a.name;
        if !seen.insert(n.clone()) {
            problems.push(format!("{n}: defined twice"));
        }
        match a.labels.get("severity").map(String::as_str) {
            Some("critical") | Some("warning") => {}
            other => problems.push(format!("{n}: severity {other:?}, want critical|warning")),
        }
        if !a.labels.contains_key("area") {
            problems.push(format!("{n}: no `area` label"));
        }
        for key in ["summary", "description", "runbook"] {
            if a.annotations.get(key).is_none_or(|v| v.trim().is_empty()) {
                problems.push(format!("{n}: no `{key}` annotation"));
            }
        }
        if let Some(rb) = a.annotations.get("runbook") {
            match rb.split_once('#') {
                Some(("docs/runbook.md", anchor)) if runbook_anchors.contains(anchor) => {}
                _ => problems.push(format!(
                    "{n}: runbook {rb:?} is not docs/runbook.md#<a section anchor>"
                )),
            }
            if rb.split_once('#').map(|x| x.1) != Some(n.to_lowercase().as_str()) {
                problems.push(format!(
                    "{n}: runbook anchor should be #{}",
                    n.to_lowercase()
                ));
            }
        }
        match cases.get(n) {
            Some((true, true)) => {}
            Some((f, nf)) => problems.push(format!(
                "{n}: promtool tests need a firing and a not-firing case (firing: {f}, not firing: {nf})"
            )),
            None => problems.push(format!("{n}: no promtool test")),
        }
    }
    for name in cases.keys() {
        if !seen.contains(name) {
            problems.push(format!("rule tests name an unknown alert {name}"));
        }
    }
    // Rule tests must load the rules with paths that exist.
    for f in rule_test_files() {
        let doc = yaml(&f);
        for rf in doc["rule_files"].as_sequence().expect("rule_files") {
            let p = f.parent().unwrap().join(rf.as_str().unwrap());
            if !p.is_file() {
                problems.push(format!(
                    "{}: rule file {} missing",
                    f.display(),
                    p.display()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ------------------------------------------------------------------------------------------
// Dashboard and provisioning

#[test]
fn dashboard_panels_have_queries() {
    let d = dashboard();
    assert_eq!(d["uid"], "cxstream");
    let ds_uid = {
        let p = root().join("config/grafana/provisioning/datasources/prometheus.yml");
        let doc = yaml(&p);
        let ds = &doc["datasources"][0];
        assert_eq!(ystr(ds, "type"), Some("prometheus"));
        ystr(ds, "uid").expect("datasource uid").to_string()
    };
    let mut problems = Vec::new();
    let mut ids = BTreeSet::new();
    let mut rows = Vec::new();
    for p in panels(&d) {
        let title = p["title"].as_str().unwrap_or("?");
        if !ids.insert(p["id"].as_u64().expect("panel id")) {
            problems.push(format!("{title}: duplicate panel id {}", p["id"]));
        }
        if p["type"] == "row" {
            rows.push(title.to_string());
            continue;
        }
        if p["datasource"]["uid"] != ds_uid.as_str() {
            problems.push(format!("{title}: datasource is not uid {ds_uid}"));
        }
        let targets = p["targets"].as_array().cloned().unwrap_or_default();
        if targets.is_empty() {
            problems.push(format!("{title}: no targets"));
        }
        for t in &targets {
            if t["expr"].as_str().is_none_or(|e| e.trim().is_empty()) {
                problems.push(format!("{title}: target {} has an empty expr", t["refId"]));
            }
            if t["datasource"]["uid"] != ds_uid.as_str() {
                problems.push(format!("{title}: target datasource is not uid {ds_uid}"));
            }
        }
    }
    for want in [
        "SLA overview",
        "First response and resolution times",
        "Tickets, first contact resolution and backlog",
        "Customer experience: CSAT, NPS, CES",
        "After-sales: churn risk, service recovery, repurchase",
        "Last minute and last hour (all tickets, all instances)",
        "Pipeline health",
        "State and recovery",
    ] {
        if !rows.iter().any(|r| r == want) {
            problems.push(format!("missing row {want:?}"));
        }
    }
    let vars: Vec<String> = variable_queries(&d).into_iter().map(|v| v.0).collect();
    for want in ["team", "priority"] {
        if !vars.iter().any(|v| v == want) {
            problems.push(format!("missing template variable ${want}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn grafana_provisioning_points_at_the_dashboards() {
    let compose = yaml(&root().join("docker-compose.yml"));
    let p = root().join("config/grafana/provisioning/dashboards/cxstream.yml");
    let doc = yaml(&p);
    let path = ystr(&doc["providers"][0]["options"], "path").expect("provider path");
    // The provider path is where docker-compose.yml mounts config/grafana/dashboards.
    let mounts = volumes(&compose["services"]["grafana"]);
    assert!(
        mounts
            .iter()
            .any(|(src, dst)| src == "./config/grafana/dashboards" && dst == path),
        "grafana must mount ./config/grafana/dashboards at {path}: {mounts:?}"
    );
    assert!(root()
        .join("config/grafana/dashboards/cxstream.json")
        .is_file());
}

// ------------------------------------------------------------------------------------------
// docker-compose.yml

/// (source, target) of the short-syntax volumes of a service.
fn volumes(service: &Yaml) -> Vec<(String, String)> {
    service["volumes"]
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|v| {
            let s = v.as_str().expect("short volume syntax");
            let mut parts = s.split(':');
            let src = parts.next().unwrap().to_string();
            let dst = parts.next().expect("volume target").to_string();
            (src, dst)
        })
        .collect()
}

#[test]
fn docker_compose_references_exist() {
    let compose = yaml(&root().join("docker-compose.yml"));
    let services = compose["services"].as_mapping().expect("services");
    let names: BTreeSet<String> = services
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    for want in ["kafka", "kafka-init", "generator", "prometheus", "grafana"] {
        assert!(names.contains(want), "service {want} missing: {names:?}");
    }
    // The cxstream replicas (`cxstream-1`, `cxstream-2`, ...): their commands, configuration
    // and scrape targets are checked by tests/compose_layout.rs.
    assert!(
        names.iter().filter(|n| n.starts_with("cxstream")).count() >= 2,
        "expected at least two cxstream services: {names:?}"
    );
    let mut problems = Vec::new();
    let local = |p: &str| p.starts_with("./") || p.starts_with("../") || p == ".";
    for (name, svc) in services {
        let name = name.as_str().unwrap();
        if svc.get("image").is_none() && svc.get("build").is_none() {
            problems.push(format!("{name}: neither image nor build"));
        }
        for (src, _) in volumes(svc) {
            if local(&src) && !root().join(&src).exists() {
                problems.push(format!("{name}: mounts {src}, which does not exist"));
            }
        }
        if let Some(b) = svc.get("build") {
            let (ctx, dockerfile) = match b {
                Yaml::String(s) => (s.clone(), "Dockerfile".to_string()),
                b => (
                    ystr(b, "context").unwrap_or(".").to_string(),
                    ystr(b, "dockerfile").unwrap_or("Dockerfile").to_string(),
                ),
            };
            if !root().join(&ctx).join(&dockerfile).is_file() {
                problems.push(format!("{name}: build {ctx}/{dockerfile} missing"));
            }
        }
        for f in svc["env_file"].as_sequence().into_iter().flatten() {
            if let Some(f) = f.as_str() {
                if !root().join(f).is_file() {
                    problems.push(format!("{name}: env_file {f} missing"));
                }
            }
        }
        if let Some(deps) = svc.get("depends_on") {
            let dep_names: Vec<String> = match deps {
                Yaml::Sequence(v) => v.iter().map(|d| d.as_str().unwrap().to_string()).collect(),
                Yaml::Mapping(m) => m.keys().map(|d| d.as_str().unwrap().to_string()).collect(),
                _ => vec![],
            };
            for d in dep_names {
                if !names.contains(&d) {
                    problems.push(format!("{name}: depends on unknown service {d}"));
                }
            }
        }
    }
    // The mounted config directories hold what the services load.
    for (svc, file) in [
        ("cxstream", "config/cxstream.toml"),
        ("prometheus", "config/prometheus/prometheus.yml"),
        (
            "grafana",
            "config/grafana/provisioning/datasources/prometheus.yml",
        ),
        (
            "grafana",
            "config/grafana/provisioning/dashboards/cxstream.yml",
        ),
    ] {
        if !root().join(file).is_file() {
            problems.push(format!("{svc}: {file} missing"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ------------------------------------------------------------------------------------------
// A real Prometheus evaluates everything

/// A Prometheus text exposition with every SPEC §6 and §7 metric, values growing with `n` (the
/// scrape number) so that rates are non-zero. `instance` (0, 1, …) picks the input partitions
/// the instance owns (three each), as in a consumer group: its per-partition series are its own.
fn synthetic_exposition(instance: u64, n: u64, now_s: f64) -> String {
    let mut s = String::new();
    let teams = ["billing", "returns"];
    let channels = ["email", "chat"];
    let priorities = ["urgent", "high", "normal", "low"];
    let k = n as f64;
    let counter = |s: &mut String, name: &str, labels: &str, per_scrape: f64| {
        let lbl = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        s.push_str(&format!("{name}{lbl} {}\n", per_scrape * k));
    };
    let histogram = |s: &mut String, name: &str, labels: &str, bounds: &[f64]| {
        // k observations per bound: cumulative counts grow with the bound index.
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in bounds.iter().enumerate() {
            s.push_str(&format!(
                "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {}\n",
                k * (i as f64 + 1.0)
            ));
        }
        let total = k * (bounds.len() as f64 + 1.0);
        s.push_str(&format!(
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {total}\n"
        ));
        let lbl = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        s.push_str(&format!("{name}_sum{lbl} {}\n", total * 100.0));
        s.push_str(&format!("{name}_count{lbl} {total}\n"));
    };
    let durations = [
        60.0, 300.0, 900.0, 1800.0, 3600.0, 14400.0, 28800.0, 86400.0, 259200.0, 604800.0,
    ];

    for what in [
        "created",
        "solved",
        "first_solved",
        "fcr",
        "reopened",
        "escalated",
    ] {
        let name = format!("cxstream_tickets_{what}_total");
        s.push_str(&format!("# TYPE {name} counter\n"));
        for t in teams {
            for c in channels {
                for p in priorities {
                    counter(
                        &mut s,
                        &name,
                        &format!("team=\"{t}\",channel=\"{c}\",priority=\"{p}\""),
                        2.0,
                    );
                }
            }
        }
    }
    for name in [
        "cxstream_first_response_seconds",
        "cxstream_resolution_seconds",
    ] {
        s.push_str(&format!("# TYPE {name} histogram\n"));
        for t in teams {
            for c in channels {
                for p in priorities {
                    histogram(
                        &mut s,
                        name,
                        &format!("team=\"{t}\",channel=\"{c}\",priority=\"{p}\""),
                        &durations,
                    );
                }
            }
        }
    }
    s.push_str("# TYPE cxstream_handle_seconds histogram\n");
    for c in channels {
        histogram(
            &mut s,
            "cxstream_handle_seconds",
            &format!("channel=\"{c}\""),
            &[30.0, 300.0, 1800.0],
        );
    }
    for (name, per) in [
        ("cxstream_sla_achieved_total", 9.0),
        ("cxstream_sla_breached_total", 1.0),
    ] {
        s.push_str(&format!("# TYPE {name} counter\n"));
        for sla in ["first_response", "resolution"] {
            for t in teams {
                for p in priorities {
                    counter(
                        &mut s,
                        name,
                        &format!("sla=\"{sla}\",team=\"{t}\",priority=\"{p}\""),
                        per,
                    );
                }
            }
        }
    }
    s.push_str("# TYPE cxstream_csat_responses_total counter\n");
    for t in teams.iter().chain(&["none"]) {
        for score in 1..=5 {
            counter(
                &mut s,
                "cxstream_csat_responses_total",
                &format!("team=\"{t}\",score=\"{score}\""),
                score as f64,
            );
        }
    }
    s.push_str("# TYPE cxstream_nps_responses_total counter\n");
    for (class, per) in [("promoter", 3.0), ("passive", 2.0), ("detractor", 1.0)] {
        counter(
            &mut s,
            "cxstream_nps_responses_total",
            &format!("class=\"{class}\""),
            per,
        );
    }
    s.push_str("# TYPE cxstream_ces_responses_total counter\n");
    for score in 1..=7 {
        counter(
            &mut s,
            "cxstream_ces_responses_total",
            &format!("score=\"{score}\""),
            1.0,
        );
    }
    for name in [
        "cxstream_orders_total",
        "cxstream_order_revenue_total",
        "cxstream_returns_total",
        "cxstream_warranty_claims_total",
        "cxstream_churn_signals_total",
        "cxstream_events_duplicate_total",
        "cxstream_events_late_total",
        "cxstream_events_orphan_total",
    ] {
        s.push_str(&format!("# TYPE {name} counter\n"));
        counter(&mut s, name, "", 1.0);
    }
    let labelled = [
        (
            "cxstream_customers_churned_total",
            "signalled",
            &["true", "false"][..],
        ),
        (
            "cxstream_churn_signal_outcomes_total",
            "outcome",
            &["confirmed", "expired_without_churn"][..],
        ),
        (
            "cxstream_recovery_cases_total",
            "outcome",
            &["opened", "answered", "overdue"][..],
        ),
        (
            "cxstream_events_total",
            "type",
            &["ticket.created", "ticket.message", "survey.csat"][..],
        ),
        (
            "cxstream_events_invalid_total",
            "reason",
            &["invalid_json", "unknown_type"][..],
        ),
        (
            "cxstream_output_records_total",
            "type",
            &["kpi.window", "sla.breached"][..],
        ),
        (
            "cxstream_label_overflow_total",
            "label",
            &["team", "channel"][..],
        ),
    ];
    for (name, label, values) in labelled {
        s.push_str(&format!("# TYPE {name} counter\n"));
        for v in values {
            counter(&mut s, name, &format!("{label}=\"{v}\""), 10.0);
        }
    }
    s.push_str("# TYPE cxstream_recovery_answer_seconds histogram\n");
    histogram(
        &mut s,
        "cxstream_recovery_answer_seconds",
        "",
        &[60.0, 3600.0, 86400.0],
    );
    s.push_str("# TYPE cxstream_post_service_outcomes_total counter\n");
    for band in ["satisfied", "neutral", "dissatisfied", "unrated"] {
        for outcome in ["converted", "expired"] {
            counter(
                &mut s,
                "cxstream_post_service_outcomes_total",
                &format!("outcome=\"{outcome}\",csat_band=\"{band}\""),
                1.0,
            );
        }
    }
    s.push_str("# TYPE cxstream_open_tickets gauge\n");
    s.push_str("# TYPE cxstream_sla_breached_open_tickets gauge\n");
    for t in teams {
        for p in priorities {
            s.push_str(&format!(
                "cxstream_open_tickets{{team=\"{t}\",priority=\"{p}\"}} 7\n"
            ));
            for sla in ["first_response", "resolution"] {
                s.push_str(&format!(
                    "cxstream_sla_breached_open_tickets{{sla=\"{sla}\",team=\"{t}\",priority=\"{p}\"}} 1\n"
                ));
            }
        }
    }
    for (name, v) in [
        ("cxstream_customers_at_risk", 3.0),
        ("cxstream_recovery_open_cases", 2.0),
        ("cxstream_watermark_seconds", now_s - 40.0),
        ("cxstream_state_tickets", 1000.0),
        ("cxstream_state_customers", 500.0),
    ] {
        s.push_str(&format!("# TYPE {name} gauge\n{name} {v}\n"));
    }
    // The last-closed-window series of a size are exported by one instance only: the owner of
    // the parts-topic partition that merges that size's `{}` group (SPEC §7). Here instance 0
    // merges the 1m windows, instance 1 the 1h ones.
    let own_windows: &[&str] = match instance {
        0 => &["1m"],
        1 => &["1h"],
        _ => &[],
    };
    for name in [
        "cxstream_window_first_response_seconds",
        "cxstream_window_resolution_seconds",
    ] {
        s.push_str(&format!("# TYPE {name} summary\n"));
        for w in own_windows {
            for q in ["0.5", "0.9", "0.99"] {
                s.push_str(&format!("{name}{{window=\"{w}\",quantile=\"{q}\"}} 120\n"));
            }
            s.push_str(&format!(
                "{name}_sum{{window=\"{w}\"}} 1200\n{name}_count{{window=\"{w}\"}} 10\n"
            ));
        }
    }
    for (name, v) in [
        ("cxstream_window_fcr_ratio", 0.7),
        ("cxstream_window_csat_ratio", 0.85),
        ("cxstream_window_nps", 12.5),
    ] {
        s.push_str(&format!("# TYPE {name} gauge\n"));
        for w in own_windows {
            s.push_str(&format!("{name}{{window=\"{w}\"}} {v}\n"));
        }
    }
    let partitions = 3 * instance..3 * instance + 3;
    s.push_str("# TYPE cxstream_consumer_lag gauge\n");
    for p in partitions.clone() {
        s.push_str(&format!(
            "cxstream_consumer_lag{{topic=\"cx.events\",partition=\"{p}\"}} {}\n",
            10 * n
        ));
    }
    // SPEC §7. The first partition of each instance is 20 minutes behind the others.
    for name in ["cxstream_checkpoint_seconds", "cxstream_restore_seconds"] {
        s.push_str(&format!("# TYPE {name} histogram\n"));
        histogram(&mut s, name, "", &[0.01, 0.1, 1.0, 10.0]);
    }
    for (name, per) in [
        ("cxstream_checkpoint_bytes_total", 4096.0),
        ("cxstream_restored_partitions_total", 1.0),
    ] {
        s.push_str(&format!("# TYPE {name} counter\n"));
        counter(&mut s, name, "", per);
    }
    s.push_str("# TYPE cxstream_merge_pending_windows gauge\ncxstream_merge_pending_windows 4\n");
    s.push_str("# TYPE cxstream_partition_watermark_seconds gauge\n");
    s.push_str("# TYPE cxstream_checkpoint_age_seconds gauge\n");
    for (i, p) in partitions.enumerate() {
        let behind = if i == 0 { 1200.0 } else { 30.0 };
        s.push_str(&format!(
            "cxstream_partition_watermark_seconds{{partition=\"{p}\"}} {}\n\
             cxstream_checkpoint_age_seconds{{partition=\"{p}\"}} {}\n",
            now_s - behind,
            (n + p) % 10
        ));
    }
    s.push_str("# TYPE cxstream_processing_seconds histogram\n");
    histogram(
        &mut s,
        "cxstream_processing_seconds",
        "",
        &[0.001, 0.01, 0.1],
    );
    s
}

/// Serves `synthetic_exposition` of one instance on a loopback port until dropped.
struct FakeExporter {
    addr: String,
    stop: Arc<AtomicBool>,
}

impl FakeExporter {
    fn start(instance: u64) -> FakeExporter {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let scrapes = Arc::new(AtomicU64::new(0));
        let stop2 = stop.clone();
        thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        conn.set_nonblocking(false).unwrap();
                        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                        let mut req = Vec::new();
                        let mut buf = [0u8; 4096];
                        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                            match conn.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(k) => req.extend_from_slice(&buf[..k]),
                            }
                        }
                        let n = scrapes.fetch_add(1, Ordering::Relaxed) + 1;
                        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
                        let body = synthetic_exposition(instance, n, now.as_secs_f64());
                        let _ = write!(
                            conn,
                            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
                             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    Err(_) => thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        FakeExporter { addr, stop }
    }
}

impl Drop for FakeExporter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A Prometheus process, killed when dropped.
struct Prometheus {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Instant query; Ok(number of result series) or Err(error text).
fn query(addr: &str, expr: &str) -> Result<usize, String> {
    query_series(addr, expr).map(|v| v.len())
}

/// Instant query; Ok(the result series: `{"metric": {...}, "value": [...]}`; a scalar or string
/// result as one element) or Err(error text).
fn query_series(addr: &str, expr: &str) -> Result<Vec<Json>, String> {
    let (status, body) = http_get(addr, &format!("/api/v1/query?query={}", url_encode(expr)))
        .map_err(|e| e.to_string())?;
    let doc: Json =
        serde_json::from_str(&body).map_err(|e| format!("HTTP {status}: {e}: {body}"))?;
    if doc["status"] != "success" {
        return Err(format!("{}: {}", doc["errorType"], doc["error"]));
    }
    let data = &doc["data"];
    Ok(match (data["resultType"].as_str(), &data["result"]) {
        (Some("vector") | Some("matrix"), Json::Array(v)) => v.clone(),
        (_, r) => vec![r.clone()], // scalar or string
    })
}

fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(200));
    }
}

fn start_prometheus(bin: &Path, targets: &[&str]) -> Prometheus {
    let dir = tempfile::tempdir().unwrap();
    let rule_list: Vec<String> = rule_files()
        .iter()
        .map(|p| format!("  - {:?}\n", p.display().to_string()))
        .collect();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n{}\
         scrape_configs:\n  - job_name: cxstream\n    static_configs:\n      - targets: [{}]\n",
        rule_list.concat(),
        targets
            .iter()
            .map(|t| format!("{t:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let config_path = dir.path().join("prometheus.yml");
    fs::write(&config_path, config).unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let log = fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let child = Command::new(bin)
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start prometheus");
    let p = Prometheus {
        child,
        addr,
        _dir: dir,
    };
    wait_for("prometheus /-/ready", Duration::from_secs(60), || {
        http_get(&p.addr, "/-/ready").is_ok_and(|(s, _)| s == 200)
    });
    p
}

/// The issue's acceptance test for the assets: every expression of the rules and the dashboard
/// is sent to a running Prometheus and must evaluate without error; with every SPEC §6/§7
/// metric present on two instances, every dashboard query and recording rule must also return
/// data.
#[test]
fn every_expression_evaluates_on_a_real_prometheus() {
    let Some(bin) = find_program("CXSTREAM_PROMETHEUS", "prometheus", PROMETHEUS_INSTALL) else {
        return;
    };
    // Two instances of one consumer group, so that every expression meets the series of both.
    let exporters = [FakeExporter::start(0), FakeExporter::start(1)];
    let prom = start_prometheus(&bin, &[&exporters[0].addr, &exporters[1].addr]);
    let a = prom.addr.clone();
    // Enough samples of both instances for rate() over every range, and every recording rule
    // evaluated (its group may run after the others).
    wait_for(
        "two scrapes of both instances",
        Duration::from_secs(60),
        || {
            query(
                &a,
                "count(count by (instance) (rate(cxstream_events_total[1m]))) == 2",
            )
            .is_ok_and(|n| n > 0)
        },
    );
    let rules = rules();
    // (No panic on timeout: the checks below name the rules without data.)
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60)
        && !rules
            .iter()
            .filter(|r| !r.is_alert)
            .all(|r| query(&a, &r.name).is_ok_and(|n| n > 0))
    {
        thread::sleep(Duration::from_millis(200));
    }

    let mut problems = Vec::new();
    for r in &rules {
        // With two instances, a rule that keeps `instance` gives one series (or alert) per
        // instance: only an alert whose annotations name the instance may (CxstreamDown).
        let per_instance_ok = r.is_alert
            && r.annotations
                .values()
                .any(|a| a.contains("$labels.instance"));
        match query_series(&a, &r.expr) {
            Err(e) => problems.push(format!("rule {}: {e}", r.name)),
            Ok(v) if v.is_empty() && !r.is_alert => {
                problems.push(format!("recording rule {}: no data", r.name))
            }
            Ok(v) => {
                if !per_instance_ok && v.iter().any(|s| s["metric"].get("instance").is_some()) {
                    problems.push(format!(
                        "rule {}: one series per instance: aggregate over `instance` \
                         (sum/max/min without (instance) or by (...))",
                        r.name
                    ));
                }
            }
        }
    }
    // The last-closed-window series are exported by one instance each: aggregated, there is
    // exactly one series per window size (and quantile).
    for (expr, want) in [
        ("cxstream:window_fcr_ratio:max", 2),
        ("cxstream:window_first_response_seconds:max", 6),
    ] {
        match query_series(&a, expr) {
            Ok(v) if v.len() == want => {}
            other => problems.push(format!("{expr}: expected {want} series, got {other:?}")),
        }
    }
    let d = dashboard();
    // With two instances, a query that does not aggregate over `instance` returns one series
    // per instance: only panels that show instances on purpose (legend `{{instance}}`) may.
    for (title, refid, expr, legend) in dashboard_targets(&d) {
        match query_series(&a, &substitute_grafana_vars(&expr)) {
            Err(e) => problems.push(format!("panel {title:?} {refid}: {e}\n  {expr}")),
            Ok(v) if v.is_empty() => {
                problems.push(format!("panel {title:?} {refid}: no data\n  {expr}"))
            }
            Ok(v) => {
                if !legend.contains("{{instance}}")
                    && v.iter().any(|s| s["metric"].get("instance").is_some())
                {
                    problems.push(format!(
                        "panel {title:?} {refid}: one series per instance: aggregate over \
                         `instance` (sum/max/min without (instance) or by (...))\n  {expr}"
                    ));
                }
            }
        }
    }
    for (name, q) in variable_queries(&d) {
        let inner = q
            .strip_prefix("label_values(")
            .and_then(|s| s.strip_suffix(')'))
            .unwrap();
        let (metric, _) = inner.rsplit_once(',').unwrap();
        if !query(&a, metric).is_ok_and(|n| n > 0) {
            problems.push(format!("variable {name}: {metric} has no data"));
        }
    }
    // Sanity: the rules loaded, and a synthetic value came through exactly.
    let (_, body) = http_get(&a, "/api/v1/rules").unwrap();
    let doc: Json = serde_json::from_str(&body).unwrap();
    let loaded: usize = doc["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["rules"].as_array().unwrap().len())
        .sum();
    if loaded != rules.len() {
        problems.push(format!(
            "Prometheus loaded {loaded} rules, the files have {}",
            rules.len()
        ));
    }
    for g in doc["data"]["groups"].as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            if r["health"] == "err" {
                problems.push(format!("rule {} health: {}", r["name"], r["lastError"]));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
