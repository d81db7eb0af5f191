//! The commands that check: `verify` (the published files against their
//! manifests, and through the CDN) and `doctor` (the store itself), and how
//! their reports read, as success or as the error they become.

use std::fmt;

use super::open_store;
use super::output::{Error, Output, count, count_of, to_value};
use crate::cli::{GlobalArgs, VerifyArgs};
use crate::release::{self, Selection, VerifyReport};
use crate::store::{self, ProbeReport, Verdict};

pub(super) async fn verify(global: &GlobalArgs, args: &VerifyArgs) -> Result<Output, Error> {
    let store = open_store(global).await?;
    let selection =
        if args.all || args.versions.is_empty() { Selection::All } else { Selection::Versions(args.versions.clone()) };
    let pubkey = args.pubkey.as_deref().map(crate::signing::PublicKey::from_arg).transpose()?;
    let sri_pubkeys =
        args.sri_pubkey.iter().map(|k| crate::signing::PublicKey::sri_from_arg(k)).collect::<Result<Vec<_>, _>>()?;
    let options = release::VerifyOptions {
        sri_pubkeys: &sri_pubkeys,
        concurrency: usize::from(args.concurrency),
        base_url: args.base_url.as_deref(),
        http_timeouts: (global.timeout, global.connect_timeout),
        allow_empty: args.allow_empty,
        pubkey: pubkey.as_ref(),
    };
    let report = release::verify(store.as_ref(), selection, &options).await?;
    if !report.is_clean() {
        return Err(Error::Verify(Box::new(report)));
    }
    Ok(Output::status(VerifyText(&report).to_string(), to_value(&report)))
}

/// How a verification reads: a summary line, then one line per finding.
pub(super) struct VerifyText<'a>(pub(super) &'a VerifyReport);

impl fmt::Display for VerifyText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        let versions: Vec<String> = r.versions.iter().map(ToString::to_string).collect();
        let latest = r.latest.as_ref().map_or("nothing".into(), ToString::to_string);
        writeln!(
            f,
            "verified {} in {}: {} ({}), latest/ = {latest}, {}, {} re-hashed",
            if r.is_clean() { "OK" } else { "with problems" },
            r.store,
            count_of(versions.len(), "version"),
            versions.join(", "),
            count_of(r.files_checked, "file"),
            count(r.bytes_checked, "byte")
        )?;
        for finding in &r.findings {
            // The problem as --json names it (`missing`, `mismatch`, …), not a debug dump.
            let problem = serde_json::to_value(finding.problem).ok();
            let problem = problem.as_ref().and_then(|p| p.as_str()).unwrap_or("problem");
            writeln!(f, "  {problem}: {}: {}", finding.key, finding.detail)?;
        }
        Ok(())
    }
}

pub(super) async fn doctor(global: &GlobalArgs) -> Result<Output, Error> {
    let store = open_store(global).await?;
    let report = store::probe_conditional_writes(store.as_ref()).await;
    if report.verdict != Verdict::Healthy {
        return Err(Error::Doctor(Box::new(report)));
    }
    Ok(Output::status(DoctorText(&report).to_string(), to_value(&report)))
}

/// How a store check reads: every check, then the verdict.
pub(super) struct DoctorText<'a>(pub(super) &'a ProbeReport);

impl fmt::Display for DoctorText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        writeln!(f, "store {}", r.store)?;
        for check in &r.checks {
            writeln!(f, "  [{}] {:<17} {}", if check.ok { " ok " } else { "FAIL" }, check.name, check.detail)?;
        }
        f.write_str(match r.verdict {
            Verdict::Healthy => "the store is ready for publishing\n",
            Verdict::Unusable => "the store cannot be used until the failed check is fixed\n",
            Verdict::IgnoresConditionalWrites => "the store ignores conditional writes: refusing to trust it\n",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::{Finding, Problem};
    use crate::store::Check;

    #[test]
    fn a_verification_reads_as_a_summary_and_its_findings() {
        let report = VerifyReport {
            store: "./cdn".into(),
            versions: vec!["1.0.0".parse().unwrap()],
            latest: None,
            files_checked: 1,
            bytes_checked: 2,
            findings: vec![Finding { key: "sdk/1.0.0/a.js".into(), problem: Problem::Mismatch, detail: "bad".into() }],
        };
        assert_eq!(
            VerifyText(&report).to_string(),
            "verified with problems in ./cdn: 1 version (1.0.0), latest/ = nothing, 1 file, 2 bytes re-hashed\n  \
             mismatch: sdk/1.0.0/a.js: bad\n"
        );
    }

    #[test]
    fn a_store_check_reads_as_its_checks_and_verdict() {
        let report = ProbeReport {
            store: "s3://b".into(),
            verdict: Verdict::IgnoresConditionalWrites,
            checks: vec![Check { name: "if-none-match", ok: false, detail: "overwrote".into() }],
        };
        assert_eq!(
            DoctorText(&report).to_string(),
            format!(
                "store s3://b\n  [FAIL] {:<17} overwrote\nthe store ignores conditional writes: refusing to trust it\n",
                "if-none-match"
            )
        );
    }
}
