//! docker-compose.yml read as data (issue 11), shared by the tests that check the layout
//! (compose_layout.rs) and the one that runs it as plain processes against a broker
//! (scale_out.rs): every cxstream service as what a local process needs
//! ([`cxstream_services`]: arguments with the mounted files' host paths, environment, metrics
//! port) and the topics `kafka-init` creates ([`created_topics`]).
//!
//! Included with `#[path = "common/compose.rs"] mod compose;` (not through `mod common`:
//! the tests that need it do not all need the rest).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use cxstream::config::Config;
use serde_yaml::Value as Yaml;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn yaml(path: &Path) -> Yaml {
    let text =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn compose() -> Yaml {
    yaml(&root().join("docker-compose.yml"))
}

/// A string list (`["a", "b"]`) or a single string split on whitespace (Compose's two forms).
pub fn string_list(v: &Yaml) -> Vec<String> {
    match v {
        Yaml::Sequence(items) => items
            .iter()
            .map(|i| match i {
                Yaml::String(s) => s.clone(),
                other => serde_yaml::to_string(other).unwrap().trim().to_string(),
            })
            .collect(),
        Yaml::String(s) => s.split_whitespace().map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

/// A service's `environment`, in either of Compose's forms (mapping, or `KEY=value` list).
pub fn environment(service: &Yaml) -> Vec<(String, String)> {
    let scalar = |v: &Yaml| match v {
        Yaml::String(s) => s.clone(),
        Yaml::Null => String::new(),
        other => serde_yaml::to_string(other).unwrap().trim().to_string(),
    };
    match service.get("environment") {
        Some(Yaml::Mapping(m)) => m.iter().map(|(k, v)| (scalar(k), scalar(v))).collect(),
        Some(Yaml::Sequence(items)) => items
            .iter()
            .filter_map(|i| i.as_str())
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (kv.to_string(), String::new()),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// (host source, container target) of the short-syntax volumes of a service.
pub fn volumes(service: &Yaml) -> Vec<(String, String)> {
    service["volumes"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
        .filter_map(|s| {
            let mut parts = s.split(':');
            Some((parts.next()?.to_string(), parts.next()?.to_string()))
        })
        .collect()
}

/// (host port, container port) of a service's `ports` (`"9465:9464"`, `"127.0.0.1:9465:9464"`).
pub fn ports(service: &Yaml) -> Vec<(u16, u16)> {
    service["ports"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|p| match p {
            Yaml::String(s) => Some(s.clone()),
            Yaml::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .filter_map(|s| {
            let parts: Vec<&str> = s.split('/').next()?.split(':').collect();
            let container = parts.last()?.parse().ok()?;
            let host = match parts.len() {
                1 => container,
                n => parts[n - 2].parse().ok()?,
            };
            Some((host, container))
        })
        .collect()
}

/// The value after `flag` in `args` (`--flag value`, or `--flag=value`).
pub fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter().enumerate().find_map(|(i, a)| {
        if a == flag {
            args.get(i + 1).map(String::as_str)
        } else {
            a.strip_prefix(flag)?.strip_prefix('=')
        }
    })
}

/// One cxstream service of docker-compose.yml, as a plain process would run it.
#[derive(Debug, Clone)]
pub struct Service {
    /// The Compose service name (also its host name in the compose network).
    pub name: String,
    /// The command's arguments (`run --config ... --metrics-listen 0.0.0.0:9464`), with every
    /// path inside a mounted file or directory replaced by its host path.
    pub args: Vec<String>,
    /// The service's `environment` (`CXSTREAM_KAFKA__BOOTSTRAP_SERVERS=kafka:9092`, ...).
    pub env: Vec<(String, String)>,
    /// Host path of the configuration file the command names (`--config`).
    pub config: PathBuf,
    /// The port `--metrics-listen` binds inside the container.
    pub metrics_port: u16,
    /// Host ports that publish `metrics_port`.
    pub host_ports: Vec<u16>,
    /// The service as written, for checks beyond the above.
    pub raw: Yaml,
}

impl Service {
    /// `args` with `--metrics-listen` set to `listen` (e.g. a free loopback port), to run the
    /// service as a local process.
    pub fn args_with_metrics_listen(&self, listen: &str) -> Vec<String> {
        let mut out = self.args.clone();
        if let Some(i) = out.iter().position(|a| a == "--metrics-listen") {
            if let Some(v) = out.get_mut(i + 1) {
                *v = listen.to_string();
            }
        } else if let Some(a) = out.iter_mut().find(|a| a.starts_with("--metrics-listen=")) {
            *a = format!("--metrics-listen={listen}");
        }
        out
    }

    /// The effective configuration: the configuration file with the service's `CXSTREAM_*`
    /// overrides applied, as `run` loads it.
    pub fn config(&self) -> Config {
        let text = fs::read_to_string(&self.config).unwrap_or_else(|e| {
            panic!("{}: cannot read {}: {e}", self.name, self.config.display())
        });
        let overrides: Vec<(String, String)> = self
            .env
            .iter()
            .filter(|(k, _)| k.starts_with("CXSTREAM_") && k.contains("__"))
            .cloned()
            .collect();
        Config::from_toml_with_env(&text, &overrides)
            .unwrap_or_else(|e| panic!("{}: invalid configuration: {e:#}", self.name))
    }
}

/// Every cxstream pipeline service of docker-compose.yml (image `cxstream:local` or built from
/// the repository, command `run ...`), in file order. Panics with a message when one is
/// malformed (no `--config`, a configuration that is not mounted, no `--metrics-listen`).
pub fn cxstream_services() -> Vec<Service> {
    let doc = compose();
    let services = doc["services"]
        .as_mapping()
        .expect("docker-compose.yml: services");
    let mut out = Vec::new();
    for (name, svc) in services {
        let name = name.as_str().expect("service name").to_string();
        let ours = svc["image"].as_str() == Some("cxstream:local") || svc.get("build").is_some();
        let command = string_list(&svc["command"]);
        if !ours || command.first().map(String::as_str) != Some("run") {
            continue;
        }
        let mounts = volumes(svc);
        // Container paths to host paths, the longest mount target first.
        let mut local: Vec<(String, PathBuf)> = mounts
            .iter()
            .filter(|(src, _)| src.starts_with("./") || src.starts_with("../"))
            .map(|(src, dst)| (dst.clone(), root().join(src.trim_start_matches("./"))))
            .collect();
        local.sort_by_key(|(dst, _)| std::cmp::Reverse(dst.len()));
        let to_host = |arg: &str| -> String {
            for (dst, host) in &local {
                if arg == dst {
                    return host.display().to_string();
                }
                if let Some(rest) = arg.strip_prefix(&format!("{dst}/")) {
                    return host.join(rest).display().to_string();
                }
            }
            arg.to_string()
        };
        let args: Vec<String> = command.iter().map(|a| to_host(a)).collect();
        let config_in_container = flag_value(&command, "--config")
            .or_else(|| flag_value(&command, "-c"))
            .unwrap_or_else(|| panic!("{name}: the command names no --config: {command:?}"));
        let config = PathBuf::from(to_host(config_in_container));
        assert!(
            config.is_absolute() && config.is_file(),
            "{name}: --config {config_in_container} is not a mounted file of the repository \
             (volumes: {mounts:?})"
        );
        let listen = flag_value(&command, "--metrics-listen")
            .unwrap_or_else(|| panic!("{name}: the command has no --metrics-listen: {command:?}"));
        let metrics_port: u16 = listen
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or_else(|| panic!("{name}: --metrics-listen {listen}: no port"));
        let host_ports = ports(svc)
            .into_iter()
            .filter(|(_, c)| *c == metrics_port)
            .map(|(h, _)| h)
            .collect();
        out.push(Service {
            name,
            args,
            env: environment(svc),
            config,
            metrics_port,
            host_ports,
            raw: svc.clone(),
        });
    }
    out
}

/// One `kafka-topics.sh --create` of the kafka-init service.
#[derive(Debug, Default)]
pub struct TopicCreate {
    pub partitions: Option<u32>,
    pub configs: BTreeMap<String, String>,
}

/// The topics kafka-init creates, by name.
pub fn created_topics() -> BTreeMap<String, TopicCreate> {
    let doc = compose();
    let init = &doc["services"]["kafka-init"];
    let script = string_list(&init["command"]).join(" ");
    let mut out = BTreeMap::new();
    for step in script.split("&&") {
        let words: Vec<String> = step.split_whitespace().map(str::to_string).collect();
        if !words.iter().any(|w| w == "--create") {
            continue;
        }
        let topic = flag_value(&words, "--topic")
            .unwrap_or_else(|| panic!("kafka-init: --create without --topic: {step}"))
            .to_string();
        let mut t = TopicCreate {
            partitions: flag_value(&words, "--partitions").and_then(|p| p.parse().ok()),
            ..Default::default()
        };
        for (i, w) in words.iter().enumerate() {
            if w == "--config" {
                if let Some((k, v)) = words.get(i + 1).and_then(|kv| kv.split_once('=')) {
                    t.configs.insert(k.to_string(), v.to_string());
                }
            }
        }
        out.insert(topic, t);
    }
    out
}
