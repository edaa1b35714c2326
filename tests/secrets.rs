//! Secrets and container logs through the real binary: librdkafka properties from the
//! environment and from files, masking in `check-config` output and in errors, the security
//! setup's explanations, and `--log-format json`.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_cxstream");

/// Runs cxstream with `args` and `vars`, without the caller's CXSTREAM_* variables.
fn cxstream(args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("CXSTREAM_") {
            c.env_remove(k);
        }
    }
    c.args(args).envs(vars.iter().copied());
    c.output().expect("cxstream runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Neither stdout nor stderr holds `secret`; returns them.
fn no_secret(o: &Output, secret: &str) -> (String, String) {
    let (out, err) = text(o);
    assert!(!out.contains(secret), "{secret} in stdout:\n{out}");
    assert!(!err.contains(secret), "{secret} in stderr:\n{err}");
    (out, err)
}

const SCRAM: [(&str, &str); 3] = [
    ("CXSTREAM_KAFKA__LIBRDKAFKA__SECURITY_PROTOCOL", "SASL_SSL"),
    (
        "CXSTREAM_KAFKA__LIBRDKAFKA__SASL_MECHANISMS",
        "SCRAM-SHA-512",
    ),
    ("CXSTREAM_KAFKA__LIBRDKAFKA__SASL_USERNAME", "cxstream"),
];

#[test]
fn password_from_the_environment_is_masked() {
    let mut vars = SCRAM.to_vec();
    vars.push(("CXSTREAM_KAFKA__LIBRDKAFKA__SASL_PASSWORD", "hunter2-env"));
    vars.push((
        "CXSTREAM_KAFKA__LIBRDKAFKA__SSL_KEY_PASSWORD",
        "k3y-env-pass",
    ));
    let o = cxstream(&["check-config"], &vars);
    let (out, err) = no_secret(&o, "hunter2-env");
    no_secret(&o, "k3y-env-pass");
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.starts_with("configuration OK"), "{out}");
    // The environment's names became librdkafka's dotted properties.
    assert!(out.contains("\"sasl.password\": \"***\""), "{out}");
    assert!(out.contains("\"ssl.key.password\": \"***\""), "{out}");
    assert!(
        out.contains("\"sasl.mechanisms\": \"SCRAM-SHA-512\""),
        "{out}"
    );
    assert!(!out.contains("sasl_password"), "{out}");
}

#[test]
fn password_from_a_file_is_masked() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("kafka_password");
    std::fs::write(&secret, "hunter2-file\n").unwrap();
    let cfg = dir.path().join("cxstream.toml");
    std::fs::write(
        &cfg,
        format!(
            "[kafka.librdkafka]\n\"security.protocol\" = \"SASL_SSL\"\n\
             \"sasl.mechanisms\" = \"PLAIN\"\n\"sasl.username\" = \"cx\"\n\
             \"sasl.password.file\" = \"{}\"\n",
            secret.display()
        ),
    )
    .unwrap();
    let o = cxstream(&["--config", cfg.to_str().unwrap(), "check-config"], &[]);
    let (out, err) = no_secret(&o, "hunter2-file");
    assert!(o.status.success(), "{out}\n{err}");
    assert!(
        out.contains(&format!(
            "\"sasl.password\": \"*** (from {})\"",
            secret.display()
        )),
        "{out}"
    );

    // The same from the environment, and a file that is not there: named, nothing else.
    let o = cxstream(
        &["check-config"],
        &[(
            "CXSTREAM_KAFKA__LIBRDKAFKA__SASL_PASSWORD_FILE",
            "/run/secrets/not-mounted",
        )],
    );
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("/run/secrets/not-mounted"), "{err}");
    assert!(err.contains("sasl.password"), "{err}");
}

#[test]
fn unknown_property_error_does_not_echo_the_value() {
    // `__` is a literal underscore: sasl_password, which librdkafka does not know; it used to
    // answer `No such configuration property: "sasl_password" sasl_password hunter2`.
    let o = cxstream(
        &["check-config"],
        &[(
            "CXSTREAM_KAFKA__LIBRDKAFKA__SASL__PASSWORD",
            "hunter2-unknown",
        )],
    );
    let (_, err) = no_secret(&o, "hunter2-unknown");
    assert!(!o.status.success());
    assert!(err.contains("\"sasl_password\""), "{err}");
    assert!(
        err.contains("CXSTREAM_KAFKA__LIBRDKAFKA__SASL_PASSWORD sets sasl.password"),
        "{err}"
    );

    // A misspelt property whose name does not say "password" either.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[kafka.librdkafka]\n\"sasl.pasword\" = \"hunter2-typo\"\n",
    )
    .unwrap();
    let o = cxstream(&["-c", cfg.to_str().unwrap(), "check-config"], &[]);
    let (_, err) = no_secret(&o, "hunter2-typo");
    assert!(err.contains("sasl.pasword"), "{err}");

    // A TOML syntax error on a secret's line.
    std::fs::write(
        &cfg,
        "[kafka.librdkafka]\n\"sasl.password\" = hunter2-toml\n",
    )
    .unwrap();
    let o = cxstream(&["-c", cfg.to_str().unwrap(), "check-config"], &[]);
    let (_, err) = no_secret(&o, "hunter2-toml");
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn inconsistent_security_setups_are_explained() {
    // SASL_SSL without a mechanism.
    let o = cxstream(
        &["check-config"],
        &[
            ("CXSTREAM_KAFKA__LIBRDKAFKA__SECURITY_PROTOCOL", "SASL_SSL"),
            ("CXSTREAM_KAFKA__LIBRDKAFKA__SASL_USERNAME", "cx"),
            (
                "CXSTREAM_KAFKA__LIBRDKAFKA__SASL_PASSWORD",
                "hunter2-nomech",
            ),
        ],
    );
    let (_, err) = no_secret(&o, "hunter2-nomech");
    assert!(!o.status.success());
    assert!(err.contains("\"sasl.mechanisms\" is not set"), "{err}");
    assert!(err.contains("SCRAM-SHA-512"), "{err}");

    // SCRAM without a password.
    let o = cxstream(&["check-config"], &SCRAM);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("\"sasl.password\" is not set"), "{err}");
    assert!(err.contains("sasl.password.file"), "{err}");

    // An unknown protocol.
    let o = cxstream(
        &["check-config"],
        &[("CXSTREAM_KAFKA__LIBRDKAFKA__SECURITY_PROTOCOL", "TLS")],
    );
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("\"TLS\" is not a protocol: use SASL_SSL"),
        "{err}"
    );

    // SSL files that are not there: the configuration is shown, then the errors.
    let mut vars = vec![
        ("CXSTREAM_KAFKA__LIBRDKAFKA__SECURITY_PROTOCOL", "SSL"),
        (
            "CXSTREAM_KAFKA__LIBRDKAFKA__SSL_CA_LOCATION",
            "/nonexistent/ca.pem",
        ),
    ];
    let o = cxstream(&["check-config"], &vars);
    let (out, err) = text(&o);
    assert!(!o.status.success());
    assert!(out.starts_with("configuration has 1 error(s)"), "{out}");
    assert!(
        out.contains(
            "error: \"ssl.ca.location\" = \"/nonexistent/ca.pem\": the file does not exist"
        ),
        "{out}"
    );
    assert!(err.contains("1 configuration problem(s)"), "{err}");

    // A password without SASL: a warning, and the exit is still a success.
    vars = vec![(
        "CXSTREAM_KAFKA__LIBRDKAFKA__SASL_PASSWORD",
        "hunter2-ignored",
    )];
    let o = cxstream(&["check-config"], &vars);
    let (out, _) = no_secret(&o, "hunter2-ignored");
    assert!(o.status.success(), "{out}");
    assert!(out.contains("warning: \"sasl.password\" is set"), "{out}");
}

#[test]
fn shipped_config_checks_clean() {
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/cxstream.toml");
    let o = cxstream(&["-c", cfg.to_str().unwrap(), "check-config"], &[]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.starts_with("configuration OK\n"), "{out}");
}

/// `cxstream run` against a closed port until it gives up on the broker: its stderr.
fn run_without_broker(extra_args: &[&str], vars: &[(&str, &str)]) -> (Output, String) {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let bootstrap = format!("127.0.0.1:{port}");
    let mut args = extra_args.to_vec();
    args.extend(["run", "--metrics-listen", ""]);
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("CXSTREAM_") {
            c.env_remove(k);
        }
    }
    let mut child = c
        .args(&args)
        .env("CXSTREAM_KAFKA__BOOTSTRAP_SERVERS", &bootstrap)
        .envs(vars.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(120) {
            child.kill().unwrap();
            panic!("cxstream run did not give up on a closed port within 120 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    (o, err)
}

#[test]
fn json_logs_one_object_per_line_without_secrets() {
    let vars = [
        (
            "CXSTREAM_KAFKA__LIBRDKAFKA__SECURITY_PROTOCOL",
            "SASL_PLAINTEXT",
        ),
        (
            "CXSTREAM_KAFKA__LIBRDKAFKA__SASL_MECHANISMS",
            "SCRAM-SHA-256",
        ),
        ("CXSTREAM_KAFKA__LIBRDKAFKA__SASL_USERNAME", "cx"),
        ("CXSTREAM_KAFKA__LIBRDKAFKA__SASL_PASSWORD", "hunter2-run"),
        ("CXSTREAM_KAFKA__LIBRDKAFKA__DEBUG", "conf,security,broker"),
        ("CXSTREAM_LOG_FORMAT", "json"),
    ];
    let (o, err) = run_without_broker(&["--log", "trace"], &vars);
    assert!(!o.status.success(), "no broker: {err}");
    assert!(!err.contains("hunter2"), "{err}");
    let lines: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() > 3, "{err}");
    for l in &lines {
        for key in ["timestamp", "level", "target", "message"] {
            assert!(l.get(key).is_some(), "no {key} in {l}");
        }
    }
    // The event's fields are keys of the object (here those of rdkafka's `log` records).
    assert!(lines.iter().any(|l| l.get("log.target").is_some()), "{err}");
    // The command's final error is a JSON line too.
    let last = lines.last().unwrap();
    assert_eq!(last["level"], "ERROR", "{last}");
    assert!(
        last["message"].as_str().unwrap().contains("cx.events"),
        "{last}"
    );

    // Text stays the default.
    let (_, err) = run_without_broker(&[], &vars[..5]);
    assert!(err.lines().last().unwrap().starts_with("error: "), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}
