//! docker-compose.yml as a layout of cxstream processes (issue 11): several `cxstream run`
//! replicas in one consumer group, Prometheus scraping each, the topics they need.
//!
//! No Docker engine runs here, so the file is read as data (tests/common/compose.rs, shared
//! with tests/scale_out.rs, which runs the same layout as plain processes against a broker):
//! - [`cxstream_services`] turns every cxstream service into what a plain process needs
//!   (arguments with the mounted files' host paths, environment, metrics port);
//! - every cxstream service runs `run` with a mounted configuration, a metrics port of its
//!   own on the host, JSON logs, after the topics exist, and all of them are one consumer
//!   group;
//! - the real binary's `check-config` accepts each service's configuration with the
//!   service's environment applied;
//! - Prometheus (config/prometheus/prometheus.yml) scrapes exactly the cxstream services'
//!   metrics ports;
//! - `kafka-init` creates the input, output, dead-letter and parts topics, the parts topic
//!   (`<output_topic>.parts`, SPEC §7) with the input's partition count, `delete` cleanup and
//!   a retention of at least the longest window plus the allowed lateness.

#[path = "common/compose.rs"]
mod compose;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use compose::*;
use cxstream::config::Config;
use serde_yaml::Value as Yaml;

#[test]
fn compose_runs_several_cxstream_replicas_of_one_group() {
    let services = cxstream_services();
    let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
    assert!(
        services.len() >= 2,
        "docker-compose.yml must run at least two cxstream replicas, found {names:?}"
    );
    let mut problems = Vec::new();
    let mut host_ports = BTreeMap::new();
    let configs: Vec<(String, Config)> = services
        .iter()
        .map(|s| (s.name.clone(), s.config()))
        .collect();
    for s in &services {
        let n = &s.name;
        // As a local process, on a port of its own.
        let local = s.args_with_metrics_listen("127.0.0.1:0");
        if flag_value(&local, "--metrics-listen") != Some("127.0.0.1:0") || local[0] != "run" {
            problems.push(format!("{n}: cannot set --metrics-listen in {local:?}"));
        }
        let listen = flag_value(&s.args, "--metrics-listen").unwrap_or("");
        if !listen.starts_with("0.0.0.0:") {
            problems.push(format!(
                "{n}: --metrics-listen {listen}: must bind 0.0.0.0 in a container"
            ));
        }
        if s.host_ports.is_empty() {
            problems.push(format!(
                "{n}: metrics port {} is not published on the host",
                s.metrics_port
            ));
        }
        for p in &s.host_ports {
            if let Some(other) = host_ports.insert(*p, n.clone()) {
                problems.push(format!("{n} and {other} both publish host port {p}"));
            }
        }
        let env: BTreeMap<&str, &str> = s
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let json_logs = env.get("CXSTREAM_LOG_FORMAT") == Some(&"json")
            || flag_value(&s.args, "--log-format") == Some("json");
        if !json_logs {
            problems.push(format!(
                "{n}: logs must be JSON (--log-format json or CXSTREAM_LOG_FORMAT=json)"
            ));
        }
        if env.get("CXSTREAM_KAFKA__BOOTSTRAP_SERVERS") != Some(&"kafka:9092") {
            problems.push(format!(
                "{n}: CXSTREAM_KAFKA__BOOTSTRAP_SERVERS must point at kafka:9092"
            ));
        }
        let init_done = s.raw["depends_on"]["kafka-init"]["condition"].as_str();
        if init_done != Some("service_completed_successfully") {
            problems.push(format!(
                "{n}: must start after kafka-init completed successfully (the topics exist)"
            ));
        }
        if s.raw["restart"].as_str().is_none() {
            problems.push(format!(
                "{n}: no restart policy (a crashed replica should come back)"
            ));
        }
    }
    // One consumer group, reading and writing the same topics.
    let (first_name, first) = &configs[0];
    for (n, c) in &configs[1..] {
        for (what, a, b) in [
            ("group_id", &first.kafka.group_id, &c.kafka.group_id),
            (
                "output_topic",
                &first.kafka.output_topic,
                &c.kafka.output_topic,
            ),
            (
                "deadletter_topic",
                &first.kafka.deadletter_topic,
                &c.kafka.deadletter_topic,
            ),
            (
                "bootstrap_servers",
                &first.kafka.bootstrap_servers,
                &c.kafka.bootstrap_servers,
            ),
        ] {
            if a != b {
                problems.push(format!("{n}: kafka.{what} {b:?}, {first_name} has {a:?}"));
            }
        }
        if first.kafka.input_topics != c.kafka.input_topics {
            problems.push(format!(
                "{n}: kafka.input_topics {:?}, {first_name} has {:?}",
                c.kafka.input_topics, first.kafka.input_topics
            ));
        }
        // The results of every instance must be mergeable: same shaping configuration.
        if first.fingerprint() != c.fingerprint() {
            problems.push(format!(
                "{n}: [engine]/[sla]/[signals]/[input] differ from {first_name}'s"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The real binary's `check-config` on each replica's configuration, with only that service's
/// environment (`CXSTREAM_*` of this process removed).
#[test]
fn check_config_accepts_every_cxstream_service() {
    let bin = env!("CARGO_BIN_EXE_cxstream");
    let mut problems = Vec::new();
    for s in cxstream_services() {
        let mut cmd = Command::new(bin);
        for (k, _) in std::env::vars() {
            if k.starts_with("CXSTREAM_") {
                cmd.env_remove(&k);
            }
        }
        cmd.envs(s.env.iter().map(|(k, v)| (k, v)));
        let config = s.config.display().to_string();
        let out = cmd
            .args(["--config", &config, "check-config"])
            .output()
            .expect("run cxstream check-config");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            problems.push(format!(
                "{}: cxstream --config {config} check-config failed ({}):\n{stdout}{stderr}",
                s.name, out.status
            ));
            continue;
        }
        // The service's environment reached the effective configuration.
        if !stdout.contains("kafka:9092") {
            problems.push(format!(
                "{}: check-config does not show bootstrap servers kafka:9092:\n{stdout}",
                s.name
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn prometheus_scrapes_every_cxstream_service() {
    let prom = yaml(&root().join("config/prometheus/prometheus.yml"));
    let jobs = prom["scrape_configs"]
        .as_sequence()
        .expect("scrape_configs");
    let job = jobs
        .iter()
        .find(|j| j["job_name"].as_str() == Some("cxstream"))
        .expect("prometheus.yml: job cxstream");
    let path = job["metrics_path"].as_str().unwrap_or("/metrics");
    assert_eq!(path, "/metrics", "job cxstream: metrics_path");
    let targets: BTreeSet<String> = job["static_configs"]
        .as_sequence()
        .into_iter()
        .flatten()
        .flat_map(|sc| string_list(&sc["targets"]))
        .collect();
    let want: BTreeSet<String> = cxstream_services()
        .iter()
        .map(|s| format!("{}:{}", s.name, s.metrics_port))
        .collect();
    assert_eq!(
        targets, want,
        "job cxstream must scrape every cxstream service's metrics port, and nothing else"
    );
    // Prometheus starts after them.
    let doc = compose();
    let deps: BTreeSet<String> = match &doc["services"]["prometheus"]["depends_on"] {
        Yaml::Mapping(m) => m
            .keys()
            .filter_map(|k| k.as_str())
            .map(String::from)
            .collect(),
        other => string_list(other).into_iter().collect(),
    };
    for s in cxstream_services() {
        assert!(
            deps.contains(&s.name),
            "prometheus should depend on {}: {deps:?}",
            s.name
        );
    }
}

#[test]
fn kafka_init_creates_the_topics_of_every_service() {
    let topics = created_topics();
    let mut problems = Vec::new();
    for s in cxstream_services() {
        let c = s.config();
        let k = &c.kafka;
        let n = &s.name;
        let mut input_partitions = BTreeSet::new();
        for t in &k.input_topics {
            match topics.get(t) {
                Some(tc) => {
                    input_partitions.extend(tc.partitions);
                }
                None => problems.push(format!("{n}: input topic {t} is not created")),
            }
        }
        if input_partitions.len() != 1 {
            problems.push(format!(
                "{n}: input topics must have one partition count (co-partitioned): {input_partitions:?}"
            ));
        }
        for (what, t) in [
            ("output", &k.output_topic),
            ("dead-letter", &k.deadletter_topic),
        ] {
            match topics.get(t.as_str()) {
                None => problems.push(format!("{n}: {what} topic {t} is not created")),
                Some(tc) => {
                    if tc
                        .configs
                        .get("cleanup.policy")
                        .is_some_and(|p| p.contains("compact"))
                    {
                        problems.push(format!(
                            "{n}: {what} topic {t} must not be compacted (SPEC §7)"
                        ));
                    }
                }
            }
        }
        // The parts topic: `<output_topic>.parts` by default (kafka.parts_topic).
        let parts = k.parts_topic();
        match topics.get(&parts) {
            None => problems.push(format!("{n}: parts topic {parts} is not created")),
            Some(tc) => {
                if let (Some(p), Some(&inp)) = (tc.partitions, input_partitions.first()) {
                    if p != inp {
                        problems.push(format!(
                            "{n}: parts topic {parts} has {p} partitions, the input {inp}"
                        ));
                    }
                }
                if tc.configs.get("cleanup.policy").map(String::as_str) != Some("delete") {
                    problems.push(format!(
                        "{n}: parts topic {parts} needs cleanup.policy=delete: {:?}",
                        tc.configs
                    ));
                }
                // Parts must outlive the longest window plus the allowed lateness (and the
                // outage to survive: the README's "Scaling out").
                let longest = c.engine.windows.iter().map(|w| w.0).max().unwrap_or(0);
                let need = longest + c.engine.allowed_lateness.0;
                match tc
                    .configs
                    .get("retention.ms")
                    .and_then(|r| r.parse::<i64>().ok())
                {
                    Some(r) if r == -1 || r >= need => {}
                    r => problems.push(format!(
                        "{n}: parts topic {parts}: retention.ms {r:?} is shorter than the \
                         longest window + allowed lateness ({need} ms)"
                    )),
                }
            }
        }
        if let Some(tc) = topics.get(&k.state_topic()) {
            if tc.configs.get("cleanup.policy").map(String::as_str) != Some("compact") {
                problems.push(format!(
                    "{n}: state topic {} must be compacted",
                    k.state_topic()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_helper_reads_both_compose_forms() {
    let svc: Yaml = serde_yaml::from_str(
        "environment: [\"A=1\", \"B=x=y\"]\nports: [\"127.0.0.1:9465:9464\", 9090]\n\
         volumes: [\"./config:/etc/c:ro\"]\ncommand: run --config /etc/c/x.toml",
    )
    .unwrap();
    assert_eq!(
        environment(&svc),
        vec![("A".into(), "1".into()), ("B".into(), "x=y".into())]
    );
    assert_eq!(ports(&svc), vec![(9465, 9464), (9090, 9090)]);
    assert_eq!(volumes(&svc), vec![("./config".into(), "/etc/c".into())]);
    let cmd = string_list(&svc["command"]);
    assert_eq!(flag_value(&cmd, "--config"), Some("/etc/c/x.toml"));
    let args = vec!["--metrics-listen=0.0.0.0:1".to_string()];
    assert_eq!(flag_value(&args, "--metrics-listen"), Some("0.0.0.0:1"));
}
