//! Consistency of the Kafka security setup (`[kafka.librdkafka]`), explained in terms of what
//! to change.
//!
//! - [`static_findings`] need nothing but the configuration: librdkafka's own check of every
//!   property (offline), the protocol, the SASL mechanism and its credentials, SSL client
//!   certificate and key. Their errors are configuration errors for every command
//!   ([`super::Config::validate`]): a client would certainly fail.
//! - [`file_findings`] look at the files the properties name (CA, certificate, key, keytab):
//!   `check-config`, run where the service runs, reports a missing or unreadable one.

use std::fmt;
use std::path::Path;

use super::secrets::CreateClient as _;
use super::KafkaConfig;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// A client cannot work this way.
    Error,
    /// Probably not what was meant, or unsafe.
    Warning,
}

/// One problem of the security setup, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Error or warning.
    pub level: Level,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = match self.level {
            Level::Error => "error",
            Level::Warning => "warning",
        };
        write!(f, "{l}: {}", self.message)
    }
}

const PROTOCOLS: [&str; 4] = ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];
const MECHANISMS: [&str; 5] = [
    "PLAIN",
    "SCRAM-SHA-256",
    "SCRAM-SHA-512",
    "OAUTHBEARER",
    "GSSAPI",
];

/// The properties that name a file or directory librdkafka reads.
fn is_path_property(name: &str) -> bool {
    name.ends_with(".location")
        || name == "sasl.kerberos.keytab"
        || (name.ends_with(".file") && super::secrets::is_librdkafka_property(name))
}

/// Whether this build of librdkafka has `feature` (`builtin.features`, e.g. `sasl_gssapi`).
fn builtin(feature: &str) -> bool {
    rdkafka::config::ClientConfig::new()
        .create_native_config()
        .ok()
        .and_then(|c| c.get("builtin.features").ok())
        .is_some_and(|f| f.split(',').any(|x| x == feature))
}

/// Findings from the configuration alone (see the module docs).
pub fn static_findings(k: &KafkaConfig) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut error = |m: String| {
        out.push(Finding {
            level: Level::Error,
            message: m,
        })
    };
    let l = &k.librdkafka;
    let get = |name: &str| l.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());

    if let Err(e) = k.client_config().check_properties() {
        error(format!("librdkafka: {e}"));
    }

    let protocol = get("security.protocol").unwrap_or("PLAINTEXT");
    let proto = protocol.to_ascii_uppercase();
    if !PROTOCOLS.contains(&proto.as_str()) {
        error(format!(
            "\"security.protocol\" = \"{protocol}\" is not a protocol: use SASL_SSL (user and \
             password over TLS), SSL (TLS, optionally with a client certificate), PLAINTEXT \
             (no security) or SASL_PLAINTEXT"
        ));
    }
    let sasl = proto.starts_with("SASL_");
    let ssl = proto == "SSL" || proto == "SASL_SSL";
    let mut warn = Vec::new();

    let mechanism = match (get("sasl.mechanisms"), get("sasl.mechanism")) {
        (Some(a), Some(b)) if a != b => {
            error(format!(
                "both \"sasl.mechanisms\" = \"{a}\" and its alias \"sasl.mechanism\" = \"{b}\" \
                 are set: keep one"
            ));
            Some(a)
        }
        (a, b) => a.or(b),
    };
    let has_user = get("sasl.username").is_some();
    let has_password = get("sasl.password").is_some();
    const SET_PASSWORD: &str = "set \"sasl.password\" (better from a secret: \
        \"sasl.password.file\" = \"/run/secrets/kafka_password\", or the environment variable \
        CXSTREAM_KAFKA__LIBRDKAFKA__SASL_PASSWORD)";

    if sasl {
        match mechanism {
            None if builtin("sasl_gssapi") => warn.push(format!(
                "\"security.protocol\" is {proto} without \"sasl.mechanisms\": librdkafka then \
                 uses GSSAPI (Kerberos); set \"sasl.mechanisms\" explicitly (PLAIN, \
                 SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER or GSSAPI)"
            )),
            None => error(format!(
                "\"security.protocol\" is {proto} but \"sasl.mechanisms\" is not set, so \
                 librdkafka would use GSSAPI (Kerberos), which this build does not include: set \
                 \"sasl.mechanisms\" to the broker's mechanism, e.g. \"SCRAM-SHA-512\", \
                 \"SCRAM-SHA-256\" or \"PLAIN\" (with \"sasl.username\" and \"sasl.password\"), \
                 or \"OAUTHBEARER\""
            )),
            Some(m) if !MECHANISMS.contains(&m) => {
                let hint = if MECHANISMS.contains(&m.to_ascii_uppercase().as_str()) {
                    format!("write it in capitals: \"{}\"", m.to_ascii_uppercase())
                } else {
                    format!("use one of {}", MECHANISMS.join(", "))
                };
                error(format!(
                    "\"sasl.mechanisms\" = \"{m}\" is not a SASL mechanism librdkafka knows: {hint}"
                ));
            }
            Some("GSSAPI") if !builtin("sasl_gssapi") => error(
                "\"sasl.mechanisms\" is GSSAPI (Kerberos), which this build of librdkafka does \
                 not include: use PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER"
                    .to_string(),
            ),
            Some(m @ ("PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512")) => {
                if !has_user {
                    error(format!(
                        "\"sasl.mechanisms\" is {m} but \"sasl.username\" is not set: set the \
                         user cxstream authenticates as"
                    ));
                }
                if !has_password {
                    error(format!(
                        "\"sasl.mechanisms\" is {m} but \"sasl.password\" is not set: {SET_PASSWORD}"
                    ));
                }
                if m == "PLAIN" && !ssl {
                    warn.push(
                        "SASL PLAIN over SASL_PLAINTEXT sends the password in clear: use \
                         \"security.protocol\" = \"SASL_SSL\""
                            .to_string(),
                    );
                }
            }
            Some("OAUTHBEARER") => oauthbearer(k, &mut error),
            Some(_) => {}
        }
    } else {
        let set: Vec<&str> = [
            "sasl.mechanisms",
            "sasl.mechanism",
            "sasl.username",
            "sasl.password",
        ]
        .into_iter()
        .filter(|p| get(p).is_some())
        .collect();
        if !set.is_empty() && PROTOCOLS.contains(&proto.as_str()) {
            let (names, it) = quoted(&set);
            warn.push(format!(
                "{names} set but \"security.protocol\" is {proto}, which does not authenticate, \
                 so {it} ignored: set \"security.protocol\" = \"SASL_SSL\" (or SASL_PLAINTEXT)"
            ));
        }
    }

    let cert = get("ssl.certificate.location").or(get("ssl.certificate.pem"));
    let key = get("ssl.key.location").or(get("ssl.key.pem"));
    let keystore = get("ssl.keystore.location");
    if ssl {
        match (cert, key) {
            (Some(_), None) if keystore.is_none() => error(
                "a client certificate is set (\"ssl.certificate.location\") without its private \
                 key: set \"ssl.key.location\" (and \"ssl.key.password\" if the key is \
                 encrypted)"
                    .to_string(),
            ),
            (None, Some(_)) if keystore.is_none() => error(
                "a private key is set (\"ssl.key.location\") without its client certificate: \
                 set \"ssl.certificate.location\""
                    .to_string(),
            ),
            _ => {}
        }
        if get("ssl.key.password").is_some() && key.is_none() {
            warn.push(
                "\"ssl.key.password\" is set but no private key (\"ssl.key.location\"): it is \
                 unused; for a PKCS#12 keystore use \"ssl.keystore.password\""
                    .to_string(),
            );
        }
        if get("enable.ssl.certificate.verification").is_some_and(|v| !is_true(v)) {
            warn.push(
                "\"enable.ssl.certificate.verification\" = false: the broker's certificate is \
                 not checked, anyone in the path can impersonate it; give the CA with \
                 \"ssl.ca.location\" instead"
                    .to_string(),
            );
        }
        if get("ssl.endpoint.identification.algorithm").is_some_and(|v| v == "none") {
            warn.push(
                "\"ssl.endpoint.identification.algorithm\" = none: the broker's host name is \
                 not checked against its certificate; remove it (default https)"
                    .to_string(),
            );
        }
    } else if PROTOCOLS.contains(&proto.as_str()) {
        let set: Vec<&str> = [
            "ssl.ca.location",
            "ssl.certificate.location",
            "ssl.key.location",
            "ssl.key.password",
            "ssl.keystore.location",
        ]
        .into_iter()
        .filter(|p| get(p).is_some())
        .collect();
        if !set.is_empty() {
            let (names, it) = quoted(&set);
            warn.push(format!(
                "{names} set but \"security.protocol\" is {proto}, which does not use TLS, so \
                 {it} ignored: set \"security.protocol\" = \"{}\"",
                if sasl { "SASL_SSL" } else { "SSL" }
            ));
        }
    }
    out.extend(warn.into_iter().map(|m| Finding {
        level: Level::Warning,
        message: m,
    }));
    out
}

/// OAUTHBEARER: cxstream has no token callback, so librdkafka must get tokens itself.
fn oauthbearer(k: &KafkaConfig, error: &mut impl FnMut(String)) {
    let l = &k.librdkafka;
    let get = |name: &str| l.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let method = get("sasl.oauthbearer.method").unwrap_or("default");
    if method.eq_ignore_ascii_case("oidc") {
        let jwt_bearer =
            get("sasl.oauthbearer.grant.type").is_some_and(|g| g.contains("jwt-bearer"));
        let mut missing = vec![];
        for p in [
            "sasl.oauthbearer.token.endpoint.url",
            "sasl.oauthbearer.client.id",
        ] {
            if get(p).is_none() {
                missing.push(p);
            }
        }
        if !jwt_bearer && get("sasl.oauthbearer.client.secret").is_none() {
            missing.push("sasl.oauthbearer.client.secret");
        }
        if !missing.is_empty() {
            error(format!(
                "\"sasl.oauthbearer.method\" is oidc but {} not set: set the identity \
                 provider's token URL and the client's credentials (the secret preferably from \
                 a file: \"sasl.oauthbearer.client.secret.file\")",
                quoted(&missing).0
            ));
        }
    } else if !get("enable.sasl.oauthbearer.unsecure.jwt").is_some_and(is_true) {
        let what = if builtin("oidc") {
            "set \"sasl.oauthbearer.method\" = \"oidc\" with \
             \"sasl.oauthbearer.token.endpoint.url\", \"sasl.oauthbearer.client.id\" and \
             \"sasl.oauthbearer.client.secret\""
        } else {
            "this build of librdkafka has no OIDC support (it needs libcurl) either, so use \
             SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN"
        };
        error(format!(
            "\"sasl.mechanisms\" is OAUTHBEARER with the default method, which needs a token \
             callback cxstream does not have: {what} (\"enable.sasl.oauthbearer.unsecure.jwt\" = \
             \"true\" works for tests only)"
        ));
    }
}

/// librdkafka's reading of a boolean.
fn is_true(v: &str) -> bool {
    ["true", "t", "1"].iter().any(|t| v.eq_ignore_ascii_case(t))
}

/// `"a" is` / `"a", "b" are`, and `it is` / `they are`.
fn quoted(names: &[&str]) -> (String, &'static str) {
    let q: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    match q.len() {
        1 => (format!("{} is", q[0]), "it is"),
        _ => (format!("{} are", q.join(", ")), "they are"),
    }
}

/// Findings about the files the properties name: each must exist and be readable here.
pub fn file_findings(k: &KafkaConfig) -> Vec<Finding> {
    let mut out = Vec::new();
    for (name, value) in &k.librdkafka {
        let v = value.trim();
        if !is_path_property(name) || v.is_empty() || v == "probe" {
            continue;
        }
        let path = Path::new(v);
        let problem = match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("does not exist".into()),
            Err(e) => Some(format!("cannot be read: {e}")),
            Ok(m) if m.is_file() => std::fs::File::open(path)
                .err()
                .map(|e| format!("cannot be read: {e}")),
            Ok(_) => None,
        };
        if let Some(p) = problem {
            out.push(Finding {
                level: Level::Error,
                message: format!(
                    "\"{name}\" = \"{v}\": the file {p}; mount it there (readable by this user) \
                     or fix the path"
                ),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kafka(props: &[(&str, &str)]) -> KafkaConfig {
        KafkaConfig {
            librdkafka: props
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..KafkaConfig::default()
        }
    }

    fn messages(f: &[Finding], level: Level) -> Vec<&str> {
        f.iter()
            .filter(|x| x.level == level)
            .map(|x| x.message.as_str())
            .collect()
    }

    fn errors(props: &[(&str, &str)]) -> Vec<String> {
        messages(&static_findings(&kafka(props)), Level::Error)
            .into_iter()
            .map(String::from)
            .collect()
    }

    fn warnings(props: &[(&str, &str)]) -> Vec<String> {
        messages(&static_findings(&kafka(props)), Level::Warning)
            .into_iter()
            .map(String::from)
            .collect()
    }

    #[test]
    fn consistent_setups_pass() {
        assert!(static_findings(&kafka(&[])).is_empty());
        let scram = [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanisms", "SCRAM-SHA-512"),
            ("sasl.username", "cx"),
            ("sasl.password", "pw"),
        ];
        assert_eq!(static_findings(&kafka(&scram)), vec![]);
        let oidc = [
            ("security.protocol", "sasl_ssl"),
            ("sasl.mechanism", "OAUTHBEARER"),
            ("sasl.oauthbearer.method", "oidc"),
            ("sasl.oauthbearer.token.endpoint.url", "https://idp/token"),
            ("sasl.oauthbearer.client.id", "cx"),
            ("sasl.oauthbearer.client.secret", "s"),
        ];
        let f = static_findings(&kafka(&oidc));
        if builtin("oidc") {
            assert_eq!(f, vec![]);
        } else {
            // librdkafka's own check: this build has no OIDC.
            assert_eq!(f.len(), 1, "{f:?}");
            assert!(
                f[0].message.contains("not supported in this build"),
                "{f:?}"
            );
        }
    }

    #[test]
    fn sasl_without_mechanism() {
        let e = errors(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.username", "cx"),
            ("sasl.password", "pw"),
        ]);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("\"sasl.mechanisms\" is not set"), "{e:?}");
        assert!(e[0].contains("SCRAM-SHA-512"), "{e:?}");
    }

    #[test]
    fn sasl_without_credentials() {
        let e = errors(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanisms", "PLAIN"),
        ]);
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].contains("\"sasl.username\" is not set"), "{e:?}");
        assert!(e[1].contains("\"sasl.password\" is not set"), "{e:?}");
        assert!(e[1].contains("sasl.password.file"), "{e:?}");
        let e = errors(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanisms", "scram-sha-256"),
        ]);
        assert!(
            e.iter().any(|m| m.contains("write it in capitals")),
            "{e:?}"
        );
        let e = errors(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanisms", "OAUTHBEARER"),
        ]);
        assert!(
            e[0].contains("OAUTHBEARER with the default method"),
            "{e:?}"
        );
    }

    #[test]
    fn unknown_protocol() {
        let e = errors(&[("security.protocol", "TLS")]);
        assert!(
            e.iter().any(|m| m.contains("\"TLS\" is not a protocol")),
            "{e:?}"
        );
        // librdkafka's own check says so too.
        assert!(
            e.iter().any(|m| m.contains("Invalid value")),
            "librdkafka: {e:?}"
        );
    }

    #[test]
    fn ignored_and_unsafe_settings_warn() {
        let w = warnings(&[("sasl.username", "cx"), ("sasl.password", "pw")]);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("ignored") && w[0].contains("SASL_SSL"),
            "{w:?}"
        );
        assert!(!w[0].contains("pw\""), "{w:?}");
        let w = warnings(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanisms", "PLAIN"),
            ("sasl.username", "cx"),
            ("sasl.password", "pw"),
            ("ssl.ca.location", "/ca.pem"),
        ]);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("in clear"), "{w:?}");
        assert!(w[1].contains("does not use TLS"), "{w:?}");
    }

    #[test]
    fn client_certificate_needs_its_key() {
        let e = errors(&[
            ("security.protocol", "SSL"),
            ("ssl.certificate.location", "/c.pem"),
        ]);
        assert!(e[0].contains("\"ssl.key.location\""), "{e:?}");
    }

    #[test]
    fn files_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "x").unwrap();
        let missing = dir.path().join("client.pem");
        let k = kafka(&[
            ("security.protocol", "SSL"),
            ("ssl.ca.location", &ca.display().to_string()),
            ("ssl.certificate.location", &missing.display().to_string()),
            ("ssl.key.location", &missing.display().to_string()),
        ]);
        let f = file_findings(&k);
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(f[0].message.contains("does not exist"), "{f:?}");
        assert!(
            f[0].message.contains(&missing.display().to_string()),
            "{f:?}"
        );
        assert!(file_findings(&kafka(&[("ssl.ca.location", "probe")])).is_empty());
    }
}
