#!/usr/bin/env bash
# The release workflow's first step: turn the ref that triggered it into the
# version to publish, or stop before anything runs.
#
#   scripts/release-version.sh REF_TYPE REF_NAME   # github.ref_type, github.ref_name
#
# Prints `version=1.2.0` and `prerelease=true|false` (for $GITHUB_OUTPUT).
# Fails (exit 2, a message naming the fix) when the run is not for a version
# tag (a workflow_dispatch from a branch would otherwise publish "main"), or
# when the repository variables the release needs are missing: CDN_URL (the
# CDN `verify --base-url` checks through) and a purge method
# (SDK_CDN_CLOUDFRONT_DISTRIBUTION or SDK_CDN_PURGE_COMMAND).
set -euo pipefail

ref_type=${1:-}
ref_name=${2:-}
fail() { echo "::error::$*" >&2; exit 2; }

if [ "$ref_type" != tag ]; then
  fail "this workflow publishes version tags, but it ran for ${ref_type:-an unknown ref} '$ref_name'; push a tag (git tag v1.2.3 && git push origin v1.2.3) or pick the tag under 'Use workflow from'"
fi
# Strict SemVer 2.0 without build metadata, after a leading v (sdk-cdn checks it again).
semver='^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$'
if ! [[ $ref_name =~ $semver ]]; then
  fail "tag '$ref_name' is not a version tag: use v followed by SemVer without build metadata (v1.2.3, v1.3.0-rc.1)"
fi
if [ -z "${CDN_URL:-}" ]; then
  fail "repository variable SDK_CDN_BASE_URL is not set: set it to the CDN origin customers load from (https://cdn.example.com) so the release is verified through the CDN"
fi
if [ -z "${SDK_CDN_CLOUDFRONT_DISTRIBUTION:-}" ] && [ -z "${SDK_CDN_PURGE_COMMAND:-}" ]; then
  fail "no CDN purge is configured: set the repository variable SDK_CDN_CLOUDFRONT_DISTRIBUTION (a CloudFront distribution id) or SDK_CDN_PURGE_COMMAND (a shell command given the changed paths)"
fi

version=${ref_name#v}
echo "version=$version"
if [[ $version == *-* ]]; then echo "prerelease=true"; else echo "prerelease=false"; fi
