//! Telling the CDN in front of the store that mutable paths changed.
//!
//! Versioned paths never change, so only `sdk/latest/*` (after a promotion)
//! and `api/sdk/sri` (after an index change) ever need purging. Two ways,
//! both optional: a CloudFront invalidation, and a shell hook for any other
//! CDN. A failed purge is reported, never undoes the publish: the new bytes
//! are already correct in the store, and CDN caches expire on their own
//! (`latest/` and the index have short `Cache-Control`).

use serde::Serialize;

mod cloudfront;

/// Paths purged after a promotion.
pub(crate) const LATEST_PATHS: &str = "/sdk/latest/*";
/// Path purged after an index change.
pub(crate) const INDEX_PATH: &str = "/api/sdk/sri";

/// Which purges to run.
#[derive(Debug, Clone, Default)]
pub(crate) struct PurgeOptions {
    /// CloudFront distribution to invalidate.
    pub cloudfront_distribution: Option<String>,
    /// Shell command run with the changed paths as arguments.
    pub command: Option<String>,
}

impl PurgeOptions {
    /// Whether any purge is configured.
    pub(crate) fn is_enabled(&self) -> bool {
        self.cloudfront_distribution.is_some() || self.command.is_some()
    }
}

/// The outcome of one purge method.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PurgeOutcome {
    /// Whether it succeeded.
    pub ok: bool,
    /// The invalidation id, or what the command printed / what went wrong.
    pub detail: String,
}

/// What was purged and how it went.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PurgeReport {
    /// The CDN paths that changed.
    pub paths: Vec<String>,
    /// CloudFront, if configured.
    pub cloudfront: Option<PurgeOutcome>,
    /// The purge command, if configured.
    pub command: Option<PurgeOutcome>,
}

impl PurgeReport {
    /// What went wrong, one line per failed method.
    pub(crate) fn failures(&self) -> impl Iterator<Item = &str> {
        self.cloudfront.iter().chain(&self.command).filter(|o| !o.ok).map(|o| o.detail.as_str())
    }
}

/// The CDN paths that changed, given what a command did.
pub(crate) fn changed_paths(latest_changed: bool, index_changed: bool) -> Vec<String> {
    let mut paths = Vec::new();
    if latest_changed {
        paths.push(LATEST_PATHS.to_string());
    }
    if index_changed {
        paths.push(INDEX_PATH.to_string());
    }
    paths
}

/// Purges `paths` (nothing to do if empty or nothing is configured).
pub(crate) async fn purge(options: &PurgeOptions, paths: Vec<String>) -> Option<PurgeReport> {
    if paths.is_empty() || !options.is_enabled() {
        return None;
    }
    let cloudfront = match &options.cloudfront_distribution {
        Some(id) => Some(invalidate_cloudfront(id, &paths).await),
        None => None,
    };
    let command = match &options.command {
        Some(cmd) => Some(run_command(cmd, &paths).await),
        None => None,
    };
    let report = PurgeReport { paths, cloudfront, command };
    // Failures are the caller's to report (a warning naming each): no debug dump here.
    for failure in report.failures() {
        tracing::debug!("CDN purge failed: {failure}");
    }
    Some(report)
}

async fn invalidate_cloudfront(distribution: &str, paths: &[String]) -> PurgeOutcome {
    match cloudfront::create_invalidation(distribution, paths).await {
        Ok(id) => PurgeOutcome { ok: true, detail: format!("invalidation {id}") },
        Err(cloudfront::Failure { code, message }) => PurgeOutcome {
            ok: false,
            detail: format!(
                "CloudFront invalidation of {distribution} failed: {code}: {message}; the publish succeeded; \
                 invalidate {} by hand or wait for the short cache lifetimes",
                paths.join(" ")
            ),
        },
    }
}

async fn run_command(command: &str, paths: &[String]) -> PurgeOutcome {
    // `sh -c CMD sdk-cdn PATH…`: the paths are "$@" in the command, and also
    // in SDK_CDN_CHANGED_PATHS, one per line.
    let output = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .arg("sdk-cdn")
        .args(paths)
        .env("SDK_CDN_CHANGED_PATHS", paths.join("\n"))
        .stdin(std::process::Stdio::null())
        .output()
        .await;
    match output {
        Ok(out) if out.status.success() => {
            PurgeOutcome { ok: true, detail: String::from_utf8_lossy(&out.stdout).trim().to_string() }
        }
        Ok(out) => PurgeOutcome {
            ok: false,
            detail: format!(
                "the purge command exited with {}: {}; the publish succeeded",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        },
        Err(e) => PurgeOutcome { ok: false, detail: format!("could not run the purge command: {e}") },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_mutable_paths_are_purged() {
        assert_eq!(changed_paths(true, true), ["/sdk/latest/*", "/api/sdk/sri"]);
        assert_eq!(changed_paths(false, true), ["/api/sdk/sri"]);
        assert!(changed_paths(false, false).is_empty());
    }

    #[tokio::test]
    async fn the_purge_command_gets_the_paths_and_failures_are_reported() {
        let options = PurgeOptions { command: Some("echo \"$@\"; test \"$#\" = 2".into()), ..Default::default() };
        let report = purge(&options, changed_paths(true, true)).await.unwrap();
        assert_eq!(report.failures().count(), 0);
        assert_eq!(report.command.unwrap().detail, "/sdk/latest/* /api/sdk/sri");
        let failing = PurgeOptions { command: Some("echo nope >&2; exit 7".into()), ..Default::default() };
        let report = purge(&failing, changed_paths(false, true)).await.unwrap();
        assert_eq!(report.failures().count(), 1);
        assert!(report.command.unwrap().detail.contains("nope"));
        assert!(purge(&options, Vec::new()).await.is_none(), "nothing changed: nothing to purge");
    }
}
