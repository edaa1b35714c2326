//! The report of `check-config`.

use std::fmt;

use anyhow::{bail, Result};

use super::{secrets, security, Config};

impl Config {
    /// What `check-config` reports about a loaded (valid) configuration: the effective
    /// values (secrets masked) and the security setup's warnings and file problems.
    pub fn check(&self) -> Check<'_> {
        let mut findings: Vec<security::Finding> = security::static_findings(&self.kafka);
        findings.extend(security::file_findings(&self.kafka));
        findings.sort_by_key(|f| f.level != security::Level::Error);
        Check {
            cfg: self,
            findings,
        }
    }
}

/// The report of `check-config` ([`Config::check`]); its `Display` shows no secret.
pub struct Check<'a> {
    cfg: &'a Config,
    /// The security setup's errors (first) and warnings.
    pub findings: Vec<security::Finding>,
}

impl Check<'_> {
    /// The number of errors.
    pub fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.level == security::Level::Error)
            .count()
    }

    /// An error when the report has errors (`check-config` then exits with failure).
    pub fn result(&self) -> Result<()> {
        match self.errors() {
            0 => Ok(()),
            n => bail!("{n} configuration problem(s), listed above"),
        }
    }
}

impl fmt::Display for Check<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let warnings = self.findings.len() - self.errors();
        let head = match (self.errors(), warnings) {
            (0, 0) => "configuration OK".to_string(),
            (0, w) => format!("configuration OK, with {w} warning(s) (at the end)"),
            (e, _) => format!("configuration has {e} error(s) (at the end)"),
        };
        let mut text = format!("{head}\n{:#?}\n", self.cfg);
        for x in &self.findings {
            text.push_str(&format!("{x}\n"));
        }
        f.write_str(&secrets::scrub(&text))
    }
}
