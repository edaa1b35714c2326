//! Secrets in `[kafka.librdkafka]`: properties read from files (mounted secrets), masking in
//! everything cxstream prints, and librdkafka client creation whose errors never echo a secret.
//!
//! - **Secret properties** ([`is_secret`]): `sasl.password`, `ssl.key.password`,
//!   `sasl.oauthbearer.client.secret`, any name containing `password` or `secret` (any case),
//!   and the inline private keys and OAUTHBEARER configuration (`ssl.key.pem`,
//!   `sasl.oauthbearer.config`, `sasl.oauthbearer.assertion.private.key.pem`). Their values
//!   show as [`MASK`] in the configuration's `Debug` (`check-config`), in client-creation
//!   errors, and — through [`scrub`] — in every log line and in the error `main` prints.
//! - **File properties**: `"<property>.file" = "<path>"` sets `<property>` to the content of
//!   the file, trailing newlines trimmed (`"sasl.password.file" = "/run/secrets/kafka_password"`).
//!   The value is masked whatever the property's name. librdkafka's own properties that end in
//!   `.file` (`sasl.oauthbearer.assertion.file`, ...) are passed through unchanged.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use anyhow::{anyhow, bail, Result};
use rdkafka::config::{ClientConfig, FromClientConfig, FromClientConfigAndContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaConfRes;
use rdkafka::ClientContext;
use serde::{Deserialize, Deserializer};

/// What a masked value shows as.
pub const MASK: &str = "***";

/// The suffix of a property read from a file.
pub const FILE_SUFFIX: &str = ".file";

/// Secret properties whose names say neither `password` nor `secret`.
const SENSITIVE: &[&str] = &[
    "ssl.key.pem",
    "ssl_key",
    "sasl.oauthbearer.config",
    "sasl.oauthbearer.assertion.private.key.pem",
];

/// Whether the librdkafka property `name`'s value is a secret (see the module docs).
pub fn is_secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("password") || n.contains("secret") || SENSITIVE.contains(&n.as_str())
}

/// Whether librdkafka knows the property `name` (independently of a value).
pub fn is_librdkafka_property(name: &str) -> bool {
    let mut cc = ClientConfig::new();
    cc.set(name, "");
    !matches!(
        cc.create_native_config(),
        Err(KafkaError::ClientConfig(
            RDKafkaConfRes::RD_KAFKA_CONF_UNKNOWN,
            ..
        ))
    )
}

/// `[kafka.librdkafka]`: librdkafka properties, passed to consumer and producer. A map of
/// property → value (through `Deref`) that remembers which values came from files, and whose
/// `Debug` masks secrets.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Librdkafka {
    props: BTreeMap<String, String>,
    files: BTreeMap<String, PathBuf>,
}

impl Librdkafka {
    /// Whether `name`'s value is masked: a secret property, or one read from a file.
    pub fn is_masked(&self, name: &str) -> bool {
        is_secret(name) || self.files.contains_key(name)
    }

    /// The file `name`'s value was read from.
    pub fn source_file(&self, name: &str) -> Option<&Path> {
        self.files.get(name).map(PathBuf::as_path)
    }

    /// The properties with masked values, for display.
    pub fn masked(&self) -> BTreeMap<&str, String> {
        self.props
            .iter()
            .map(|(k, v)| {
                let shown = match self.files.get(k) {
                    Some(p) => format!("{MASK} (from {})", p.display()),
                    None if is_secret(k) => MASK.to_string(),
                    None => v.clone(),
                };
                (k.as_str(), shown)
            })
            .collect()
    }

    /// The values that must not be printed.
    pub fn secret_values(&self) -> impl Iterator<Item = &str> {
        self.props
            .iter()
            .filter(|(k, _)| self.is_masked(k))
            .map(|(_, v)| v.as_str())
    }

    /// Replaces every `"<property>.file" = path` that librdkafka does not know by
    /// `<property>` = the file's content (trailing newlines trimmed). Errors name the file,
    /// never its content.
    pub fn resolve_files(&mut self) -> Result<()> {
        let keys: Vec<String> = self
            .props
            .keys()
            .filter(|k| k.ends_with(FILE_SUFFIX) && !is_librdkafka_property(k))
            .cloned()
            .collect();
        for key in keys {
            let path = PathBuf::from(self.props.remove(&key).unwrap_or_default());
            let prop = &key[..key.len() - FILE_SUFFIX.len()];
            if prop.is_empty() {
                bail!("kafka.librdkafka.\"{key}\": name the property before \".file\", e.g. \"sasl.password.file\"");
            }
            if self.props.contains_key(prop) {
                bail!(
                    "kafka.librdkafka: both \"{prop}\" and \"{key}\" are set (in the file or the \
                     environment): keep one"
                );
            }
            let text = std::fs::read_to_string(&path).map_err(|e| {
                anyhow!(
                    "kafka.librdkafka.\"{key}\": cannot read {} for {prop}: {e} (mount the \
                     secret there or fix the path)",
                    path.display()
                )
            })?;
            let value = text.trim_end_matches(['\n', '\r']);
            if value.is_empty() {
                bail!(
                    "kafka.librdkafka.\"{key}\": {} is empty: it should hold the value of {prop}",
                    path.display()
                );
            }
            self.props.insert(prop.to_string(), value.to_string());
            self.files.insert(prop.to_string(), path);
        }
        Ok(())
    }
}

impl Deref for Librdkafka {
    type Target = BTreeMap<String, String>;
    fn deref(&self) -> &Self::Target {
        &self.props
    }
}

impl DerefMut for Librdkafka {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.props
    }
}

impl<'a> IntoIterator for &'a Librdkafka {
    type Item = (&'a String, &'a String);
    type IntoIter = std::collections::btree_map::Iter<'a, String, String>;
    fn into_iter(self) -> Self::IntoIter {
        self.props.iter()
    }
}

impl From<BTreeMap<String, String>> for Librdkafka {
    fn from(props: BTreeMap<String, String>) -> Self {
        Librdkafka {
            props,
            files: BTreeMap::new(),
        }
    }
}

impl FromIterator<(String, String)> for Librdkafka {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        BTreeMap::from_iter(iter).into()
    }
}

impl fmt::Debug for Librdkafka {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.masked()).finish()
    }
}

/// Values are strings; numbers and booleans are taken as their text (`"linger.ms" = 5`).
/// Errors name the property, never the value.
impl<'de> Deserialize<'de> for Librdkafka {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Not a map straight away: serde's "invalid type" error would quote the value.
        let toml::Value::Table(raw) = toml::Value::deserialize(d)? else {
            return Err(serde::de::Error::custom(
                "kafka.librdkafka must be a table of properties: a [kafka.librdkafka] section \
                 with \"name\" = \"value\" lines, or CXSTREAM_KAFKA__LIBRDKAFKA__<NAME> \
                 environment variables (e.g. CXSTREAM_KAFKA__LIBRDKAFKA__SASL_PASSWORD sets \
                 sasl.password)",
            ));
        };
        let mut props = BTreeMap::new();
        for (k, v) in raw {
            let s = match v {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(x) => x.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Datetime(t) => t.to_string(),
                toml::Value::Array(_) | toml::Value::Table(_) => {
                    return Err(serde::de::Error::custom(format!(
                        "kafka.librdkafka.\"{k}\" must be a string, e.g. \"{k}\" = \"...\" (a \
                         librdkafka property name with dots is quoted; from the environment: \
                         CXSTREAM_KAFKA__LIBRDKAFKA__SASL_PASSWORD sets sasl.password)"
                    )))
                }
            };
            props.insert(k, s);
        }
        Ok(props.into())
    }
}

/// Shorter secrets are not scrubbed from free text (they would mangle it); they are still
/// masked wherever cxstream knows the property's name.
const MIN_SCRUB_LEN: usize = 4;

static REGISTERED: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Registers secret values for [`scrub`]: as they are, and as JSON and Rust `Debug` escape
/// them (so a JSON log line or a `{:?}` cannot show them either).
pub fn register<'a>(values: impl IntoIterator<Item = &'a str>) {
    let Ok(mut reg) = REGISTERED.write() else {
        return;
    };
    for v in values {
        if v.len() < MIN_SCRUB_LEN {
            continue;
        }
        let json = serde_json::to_string(v).unwrap_or_default();
        let debug = format!("{v:?}");
        for form in [
            v.to_string(),
            json[1..json.len() - 1].to_string(),
            debug[1..debug.len() - 1].to_string(),
        ] {
            if !reg.contains(&form) {
                reg.push(form);
            }
        }
    }
    // Longest first, so a secret containing another is replaced whole.
    reg.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// `text` with every registered secret value replaced by [`MASK`].
pub fn scrub(text: &str) -> Cow<'_, str> {
    let Ok(reg) = REGISTERED.read() else {
        return Cow::Borrowed(text);
    };
    scrub_with(text, reg.iter().map(String::as_str))
}

fn scrub_with<'a, 'b>(text: &'a str, secrets: impl Iterator<Item = &'b str>) -> Cow<'a, str> {
    let mut out = Cow::Borrowed(text);
    for s in secrets {
        if !s.is_empty() && out.contains(s) {
            out = Cow::Owned(out.replace(s, MASK));
        }
    }
    out
}

/// A librdkafka client that could not be created; the message never holds a secret value.
#[derive(Debug)]
pub struct ClientError(String);

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ClientError {}

/// The hint for an unknown property name.
const NAME_HINT: &str = "librdkafka property names are lower case with dots, e.g. \
                         \"sasl.password\"; from the environment, CXSTREAM_KAFKA__LIBRDKAFKA__SASL_PASSWORD \
                         sets sasl.password (`_` for `.`, `__` for `_`)";

/// `e`, an error of creating a client from `cc`, without secret values: the value of a secret
/// or unknown property is not shown, and every secret value of `cc` and every registered one
/// is scrubbed from librdkafka's text.
pub fn client_error(e: &KafkaError, cc: &ClientConfig) -> ClientError {
    let mut hidden: Vec<&str> = cc
        .config_map()
        .keys()
        .filter(|k| is_secret(k))
        .filter_map(|k| cc.get(k))
        .collect();
    let text = match e {
        KafkaError::ClientConfig(RDKafkaConfRes::RD_KAFKA_CONF_UNKNOWN, desc, _, value) => {
            hidden.push(value);
            format!("{desc} (its value is not shown): {NAME_HINT}")
        }
        KafkaError::ClientConfig(_, desc, key, value) if is_secret(key) => {
            hidden.push(value);
            format!("invalid value for \"{key}\" (not shown): {desc}")
        }
        KafkaError::ClientConfig(_, desc, ..) => desc.clone(),
        other => other.to_string(),
    };
    hidden.retain(|s| s.len() >= MIN_SCRUB_LEN);
    hidden.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let text = scrub_with(&text, hidden.into_iter()).into_owned();
    ClientError(scrub(&text).into_owned())
}

/// Creating librdkafka clients with errors that never show a secret ([`client_error`]).
pub trait CreateClient {
    /// `ClientConfig::create`, masked.
    fn create_masked<T: FromClientConfig>(&self) -> Result<T, ClientError>;
    /// `ClientConfig::create_with_context`, masked.
    fn create_masked_with<C: ClientContext, T: FromClientConfigAndContext<C>>(
        &self,
        context: C,
    ) -> Result<T, ClientError>;
    /// Checks every property with librdkafka without creating a client (no connection).
    fn check_properties(&self) -> Result<(), ClientError>;
}

impl CreateClient for ClientConfig {
    fn create_masked<T: FromClientConfig>(&self) -> Result<T, ClientError> {
        self.create().map_err(|e| client_error(&e, self))
    }

    fn create_masked_with<C: ClientContext, T: FromClientConfigAndContext<C>>(
        &self,
        context: C,
    ) -> Result<T, ClientError> {
        self.create_with_context(context)
            .map_err(|e| client_error(&e, self))
    }

    fn check_properties(&self) -> Result<(), ClientError> {
        self.create_native_config()
            .map(drop)
            .map_err(|e| client_error(&e, self))
    }
}

/// A TOML syntax error without the source snippet `toml` prints: the line is shown only when
/// it holds no secret (a secret property's value is masked, a line that may continue a
/// multi-line value is left out).
pub fn toml_syntax_error(e: &toml::de::Error, text: &str) -> anyhow::Error {
    let message = e.message().trim();
    let Some(start) = e
        .span()
        .map(|s| s.start)
        .filter(|s| text.is_char_boundary(*s))
    else {
        return anyhow!("{message}");
    };
    let before = &text[..start];
    let line_no = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..start].chars().count() + 1;
    let line = text[line_start..].lines().next().unwrap_or("").trim_end();
    let shown = match line.split_once('=') {
        _ if line.trim_start().starts_with('[') || line.trim_start().starts_with('#') => {
            line.to_string()
        }
        Some((key, _)) if is_secret(key) => format!("{}= {MASK}", key),
        Some(_) => line.to_string(),
        None => "(line not shown: it may continue a value)".to_string(),
    };
    anyhow!("line {line_no}, column {column}: {message}\n    {shown}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names() {
        for n in [
            "sasl.password",
            "ssl.key.password",
            "sasl.oauthbearer.client.secret",
            "ssl.keystore.password",
            "My.Secret.Thing",
            "PASSWORD",
            "ssl.key.pem",
            "sasl.oauthbearer.config",
        ] {
            assert!(is_secret(n), "{n}");
        }
        for n in [
            "sasl.username",
            "security.protocol",
            "ssl.ca.location",
            "ssl.key.location",
        ] {
            assert!(!is_secret(n), "{n}");
        }
    }

    #[test]
    fn librdkafka_knows_its_own_file_properties() {
        assert!(is_librdkafka_property("sasl.oauthbearer.assertion.file"));
        assert!(is_librdkafka_property("sasl.password"));
        assert!(!is_librdkafka_property("sasl.password.file"));
        assert!(!is_librdkafka_property("sasl_password"));
    }

    #[test]
    fn debug_masks() {
        let mut l: Librdkafka = [
            ("sasl.password", "hunter2"),
            ("sasl.username", "cx"),
            ("my.Secret", "s3cr3t-value"),
            ("ssl.key.pem", "-----BEGIN PRIVATE KEY-----"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        l.files.insert("sasl.username".into(), "/run/u".into());
        let s = format!("{l:?} {l:#?}");
        for v in ["hunter2", "s3cr3t-value", "BEGIN", "\"cx\""] {
            assert!(!s.contains(v), "{v} in {s}");
        }
        assert!(s.contains("\"sasl.password\": \"***\""), "{s}");
        assert!(s.contains("*** (from /run/u)"), "{s}");
    }

    #[test]
    fn files_are_read_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kafka_password");
        std::fs::write(&p, "hunter2\n").unwrap();
        let mut l: Librdkafka = [
            ("sasl.password.file".to_string(), p.display().to_string()),
            (
                "sasl.oauthbearer.assertion.file".to_string(),
                "/x".to_string(),
            ),
        ]
        .into_iter()
        .collect();
        l.resolve_files().unwrap();
        assert_eq!(l.get("sasl.password").map(String::as_str), Some("hunter2"));
        assert!(!l.contains_key("sasl.password.file"));
        // librdkafka's own `.file` property is kept as it is.
        assert_eq!(
            l.get("sasl.oauthbearer.assertion.file").map(String::as_str),
            Some("/x")
        );
        assert_eq!(l.source_file("sasl.password"), Some(p.as_path()));
        assert_eq!(l.secret_values().collect::<Vec<_>>(), vec!["hunter2"]);
    }

    #[test]
    fn file_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let mut l: Librdkafka = [(
            "sasl.password.file".to_string(),
            missing.display().to_string(),
        )]
        .into_iter()
        .collect();
        let e = l.resolve_files().unwrap_err().to_string();
        assert!(e.contains(&missing.display().to_string()), "{e}");
        assert!(e.contains("sasl.password"), "{e}");

        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let mut l: Librdkafka = [("x.file".to_string(), empty.display().to_string())]
            .into_iter()
            .collect();
        assert!(l.resolve_files().unwrap_err().to_string().contains("empty"));

        let p = dir.path().join("pw");
        std::fs::write(&p, "hunter2").unwrap();
        let mut l: Librdkafka = [
            ("sasl.password".to_string(), "a".to_string()),
            ("sasl.password.file".to_string(), p.display().to_string()),
        ]
        .into_iter()
        .collect();
        let e = l.resolve_files().unwrap_err().to_string();
        assert!(e.contains("keep one") && !e.contains("hunter2"), "{e}");
    }

    #[test]
    fn client_errors_do_not_echo_secrets() {
        // The issue's case: an unknown property holding a password.
        let mut cc = ClientConfig::new();
        cc.set("sasl_password", "hunter2-unknown");
        let raw = cc.create_native_config().err().unwrap().to_string();
        assert!(
            raw.contains("hunter2-unknown"),
            "librdkafka echoes it: {raw}"
        );
        let e = cc.check_properties().unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(
            e.contains("sasl_password") && e.contains("sasl.password"),
            "{e}"
        );

        // An invalid value of a known, non-secret property is shown (it helps).
        let mut cc = ClientConfig::new();
        cc.set("security.protocol", "SASL_SSLX");
        let e = cc.check_properties().unwrap_err().to_string();
        assert!(e.contains("SASL_SSLX"), "{e}");

        // Client creation fails for a reason that is not a property: still scrubbed.
        let mut cc = ClientConfig::new();
        cc.set("sasl.password", "hunter2-known");
        cc.set("socket.timeout.ms", "hunter2-known");
        let e = client_error(&KafkaError::ClientCreation("x hunter2-known".into()), &cc);
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn scrubbing() {
        register(["registered-s3cret", "q\"uote", "abc"]);
        assert_eq!(scrub("a registered-s3cret b"), "a *** b");
        assert_eq!(scrub(r#"{"m":"q\"uote"}"#), r#"{"m":"***"}"#);
        assert_eq!(scrub("abc"), "abc", "too short to scrub from free text");
    }

    #[test]
    fn toml_errors_hide_secret_lines() {
        let text = "[kafka.librdkafka]\n\"sasl.password\" = hunter2\n";
        let e = toml::from_str::<toml::Table>(text).unwrap_err();
        assert!(e.to_string().contains("hunter2"), "toml shows the line");
        let m = toml_syntax_error(&e, text).to_string();
        assert!(!m.contains("hunter2") && m.contains("line 2"), "{m}");
        let text = "[engine]\nwindows = [1m]\n";
        let e = toml::from_str::<toml::Table>(text).unwrap_err();
        let m = toml_syntax_error(&e, text).to_string();
        assert!(m.contains("windows = [1m]"), "{m}");
    }
}
