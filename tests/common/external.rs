//! Finding the external programs of the end-to-end tests (Tansu, the Python Kafka client),
//! and what a test does without them: skip with a loud line, or fail under
//! `CXSTREAM_REQUIRE_EXTERNAL=1` (what `scripts/test` and CI set).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `CXSTREAM_REQUIRE_EXTERNAL=1`: a missing program is a failure, not a skip.
pub fn require_external() -> bool {
    std::env::var("CXSTREAM_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1")
}

/// Skips test `test` because of `why` (a failure under `CXSTREAM_REQUIRE_EXTERNAL=1`).
pub fn skip(test: &str, why: &str) {
    if require_external() {
        panic!("CXSTREAM_REQUIRE_EXTERNAL=1 but {why}");
    }
    // Straight to the process's stderr: the test harness captures eprintln!.
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("\n*** SKIPPED: {test} end-to-end test: {why} (set CXSTREAM_REQUIRE_EXTERNAL=1 to make this a failure) ***\n\n").as_bytes(),
    );
}

/// `$env` (which must then exist), else `name` on PATH. None when absent: the test is skipped
/// ([`skip`]; `install` says how to get it).
pub fn find_program(env: &str, name: &str, install: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "{env}={} does not exist", p.display());
        return Some(p);
    }
    let found = which(name);
    if found.is_none() {
        skip(
            name,
            &format!("{name} not found (set {env} or put it on PATH; {install})"),
        );
    }
    found
}

/// `GET path` on `addr` (HTTP/1.0, reading at most `timeout` between bytes): (status, body).
pub fn http_get(
    addr: &str,
    path: &str,
    timeout: std::time::Duration,
) -> std::io::Result<(u16, String)> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(timeout))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    Ok((status, body.to_string()))
}

pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// $CXSTREAM_TANSU, `tansu` on PATH, or where scripts/install-test-deps.sh puts it.
pub fn find_tansu() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CXSTREAM_TANSU") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    which("tansu").or_else(|| {
        let home = std::env::var_os("HOME")?;
        Some(Path::new(&home).join(".cache/cxstream/bin/tansu")).filter(|p| p.is_file())
    })
}

/// $CXSTREAM_PYTHON or `python3`, if it can import confluent_kafka.
pub fn find_python() -> Option<PathBuf> {
    let py = std::env::var_os("CXSTREAM_PYTHON")
        .map(PathBuf::from)
        .or_else(|| which("python3"))?;
    let ok = Command::new(&py)
        .args(["-c", "import confluent_kafka"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(py)
}
