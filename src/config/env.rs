//! `CXSTREAM_*` environment overrides.
//!
//! A variable names an option's path with `__` between levels:
//! `CXSTREAM_ENGINE__ALLOWED_LATENESS=10s` sets `[engine] allowed_lateness`. Its value is read
//! as a TOML value when it parses as one (`5`, `true`, `["1m","1h"]`) and as a string otherwise.
//!
//! librdkafka properties are the exception, since their names hold dots:
//! `CXSTREAM_KAFKA__LIBRDKAFKA__<NAME>` sets the property named by `<NAME>` with the rule of
//! Confluent's Docker images, read from the environment side:
//!
//! | in `<NAME>` | in the property |
//! |---|---|
//! | `_`   | `.` |
//! | `__`  | `_` |
//! | `___` | `-` |
//!
//! and the name is lower-cased: `SASL_PASSWORD` → `sasl.password`, `SSL_KEY_PASSWORD` →
//! `ssl.key.password`, `ENABLE_IDEMPOTENCE` → `enable.idempotence`, `SASL_PASSWORD_FILE` →
//! `sasl.password.file` (a property read from a file, see [`super::secrets`]). Its value is
//! always a string, taken verbatim (a password `12345` stays the string `12345`).

use anyhow::{anyhow, bail, Result};

/// The prefix of every override.
pub const PREFIX: &str = "CXSTREAM_";

/// The path, after [`PREFIX`], of the librdkafka section.
const LIBRDKAFKA: &str = "KAFKA__LIBRDKAFKA__";

/// Where an override goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An option's path, lower-cased (`["engine", "allowed_lateness"]`).
    Path(Vec<String>),
    /// A librdkafka property (`sasl.password`).
    Librdkafka(String),
}

/// Where the variable `key` (with its `CXSTREAM_` prefix) goes; `None` for variables that are
/// not overrides (`CXSTREAM_CONFIG`, `CXSTREAM_LOG`, `CXSTREAM_LOG_FORMAT`: no `__`).
pub fn target(key: &str) -> Result<Option<Target>> {
    let Some(path) = key.strip_prefix(PREFIX) else {
        return Ok(None);
    };
    if !path.contains("__") {
        return Ok(None);
    }
    if path.len() >= LIBRDKAFKA.len() && path[..LIBRDKAFKA.len()].eq_ignore_ascii_case(LIBRDKAFKA) {
        return librdkafka_property(&path[LIBRDKAFKA.len()..]).map(|p| Some(Target::Librdkafka(p)));
    }
    let parts: Vec<String> = path.split("__").map(|p| p.to_ascii_lowercase()).collect();
    if parts.iter().any(String::is_empty) {
        bail!("an empty level in the path: separate levels with exactly two underscores");
    }
    Ok(Some(Target::Path(parts)))
}

/// The librdkafka property an environment variable names after `CXSTREAM_KAFKA__LIBRDKAFKA__`
/// (the rule in the module docs).
pub fn librdkafka_property(name: &str) -> Result<String> {
    const RULE: &str = "write the property in capitals with `_` for `.`, `__` for `_` and \
                        `___` for `-`, e.g. CXSTREAM_KAFKA__LIBRDKAFKA__SASL_PASSWORD for \
                        sasl.password, CXSTREAM_KAFKA__LIBRDKAFKA__SSL_KEY_PASSWORD for \
                        ssl.key.password";
    if name.is_empty() {
        bail!("no librdkafka property after KAFKA__LIBRDKAFKA__: {RULE}");
    }
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '_' {
            out.push(c.to_ascii_lowercase());
            continue;
        }
        let mut run = 1;
        while chars.peek() == Some(&'_') {
            chars.next();
            run += 1;
        }
        if out.is_empty() || chars.peek().is_none() {
            bail!("\"{name}\" starts or ends with `_`: {RULE}");
        }
        out.push(match run {
            1 => '.',
            2 => '_',
            3 => '-',
            _ => return Err(anyhow!("\"{name}\" has {run} underscores in a row: {RULE}")),
        });
    }
    Ok(out)
}

/// The TOML value of an override: librdkafka properties verbatim as strings, other options as
/// TOML when the text parses as a TOML value and as a string otherwise.
pub fn value(target: &Target, text: &str) -> toml::Value {
    match target {
        Target::Librdkafka(_) => toml::Value::String(text.to_string()),
        Target::Path(_) => toml::from_str::<toml::Table>(&format!("v = {text}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(text.to_string())),
    }
}

/// Applies the overrides in `env` (`(CXSTREAM_A__B, value)` pairs, other variables ignored) to
/// the parsed file `root`. An error names the variable, never its value.
pub fn apply(root: &mut toml::Table, env: &[(String, String)]) -> Result<()> {
    for (key, text) in env {
        let t = target(key).map_err(|e| anyhow!("environment variable {key}: {e}"))?;
        let Some(t) = t else { continue };
        let v = value(&t, text);
        let result = match &t {
            Target::Path(parts) => set_path(root, parts, v),
            Target::Librdkafka(prop) => set_path(
                root,
                &["kafka".into(), "librdkafka".into(), prop.clone()],
                v,
            ),
        };
        result.map_err(|e| anyhow!("environment variable {key}: {e}"))?;
    }
    Ok(())
}

/// When a deserialization error `message` is an unknown field that an override in `env` set,
/// names the variable (and, under `[kafka]`, how librdkafka properties are set).
pub fn hint(message: &str, env: &[(String, String)]) -> String {
    let Some(field) = message
        .strip_prefix("unknown field `")
        .and_then(|m| m.split('`').next())
    else {
        return String::new();
    };
    for (key, _) in env {
        if let Ok(Some(Target::Path(parts))) = target(key) {
            if parts.last().map(String::as_str) == Some(field) {
                let more = if parts.len() == 2 && parts[0] == "kafka" {
                    "; librdkafka properties are set with CXSTREAM_KAFKA__LIBRDKAFKA__<NAME>, \
                     e.g. CXSTREAM_KAFKA__LIBRDKAFKA__SASL_PASSWORD for sasl.password"
                } else {
                    ""
                };
                return format!(" (from the environment variable {key}{more})");
            }
        }
    }
    String::new()
}

fn set_path(root: &mut toml::Table, parts: &[String], value: toml::Value) -> Result<()> {
    let (last, prefix) = parts.split_last().ok_or_else(|| anyhow!("empty key"))?;
    let mut table = root;
    for p in prefix {
        let entry = table
            .entry(p.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry
            .as_table_mut()
            .ok_or_else(|| anyhow!("{p} is not a section"))?;
    }
    table.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prop(name: &str) -> String {
        librdkafka_property(name).unwrap()
    }

    #[test]
    fn confluent_rule() {
        assert_eq!(prop("SASL_PASSWORD"), "sasl.password");
        assert_eq!(prop("SSL_KEY_PASSWORD"), "ssl.key.password");
        assert_eq!(
            prop("SASL_OAUTHBEARER_CLIENT_SECRET"),
            "sasl.oauthbearer.client.secret"
        );
        assert_eq!(prop("ENABLE_IDEMPOTENCE"), "enable.idempotence");
        assert_eq!(prop("SASL_PASSWORD_FILE"), "sasl.password.file");
        assert_eq!(prop("DEBUG"), "debug");
        // `__` is a literal underscore, `___` a dash.
        assert_eq!(prop("ENABLE__IDEMPOTENCE"), "enable_idempotence");
        assert_eq!(prop("SSL_ENGINE__ID"), "ssl.engine_id");
        assert_eq!(prop("A___B_C"), "a-b.c");
        for bad in ["", "_SASL", "SASL_", "A____B"] {
            assert!(librdkafka_property(bad).is_err(), "{bad}");
        }
        let e = librdkafka_property("A____B").unwrap_err().to_string();
        assert!(e.contains("SASL_PASSWORD for sasl.password"), "{e}");
    }

    #[test]
    fn targets() {
        assert_eq!(target("CXSTREAM_LOG_FORMAT").unwrap(), None);
        assert_eq!(target("OTHER__X").unwrap(), None);
        assert_eq!(
            target("CXSTREAM_KAFKA__LIBRDKAFKA__SASL_PASSWORD").unwrap(),
            Some(Target::Librdkafka("sasl.password".into()))
        );
        assert_eq!(
            target("CXSTREAM_kafka__librdkafka__ssl_key_password").unwrap(),
            Some(Target::Librdkafka("ssl.key.password".into()))
        );
        assert_eq!(
            target("CXSTREAM_ENGINE__ALLOWED_LATENESS").unwrap(),
            Some(Target::Path(vec![
                "engine".into(),
                "allowed_lateness".into()
            ]))
        );
        assert!(target("CXSTREAM_ENGINE____X").is_err());
    }

    #[test]
    fn unknown_fields_name_their_variable() {
        let env = vec![("CXSTREAM_KAFKA__SASL_PASSWORD".to_string(), "x".to_string())];
        let h = hint("unknown field `sasl_password`, expected one of `a`", &env);
        assert!(h.contains("CXSTREAM_KAFKA__SASL_PASSWORD;"), "{h}");
        assert!(
            h.contains("CXSTREAM_KAFKA__LIBRDKAFKA__SASL_PASSWORD"),
            "{h}"
        );
        assert_eq!(hint("unknown field `other`", &env), "");
    }

    #[test]
    fn librdkafka_values_stay_strings() {
        let t = Target::Librdkafka("sasl.password".into());
        assert_eq!(value(&t, "12345"), toml::Value::String("12345".into()));
        assert_eq!(value(&t, "[x]"), toml::Value::String("[x]".into()));
        let p = Target::Path(vec!["signals".into(), "threshold".into()]);
        assert_eq!(value(&p, "7"), toml::Value::Integer(7));
    }
}
