#!/usr/bin/env python3
"""Checks the GitHub workflows for the two ways a release goes green when it failed.

    python3 scripts/check-workflows.py [FILE.yml ...]

Without arguments it checks .github/workflows/*.yml and examples/workflows/*.yml.
Run by .ci/run; exits 1 listing every problem, each with its fix:

- a `run:` step whose script pipes (`a | b`) under a shell without pipefail.
  A step without `shell:` (and no `defaults: run: shell:`) runs `bash -e`
  without pipefail, so `sdk-cdn publish … | tee out` hides exit 3. Set
  `defaults: run: shell: bash` (GitHub then runs `bash -eo pipefail`).
- a `sdk-cdn publish` whose failure is swallowed (`|| …`, `continue-on-error`).
- a workflow that runs `sdk-cdn publish` but no CDN purge
  (`--invalidate-cloudfront`/`--purge-command` or their environment variables)
  or no `sdk-cdn verify … --base-url`: the release is then never checked as
  customers see it.
"""
import glob
import re
import sys

import yaml

PURGE_FLAGS = ("--invalidate-cloudfront", "--purge-command")
PURGE_ENV = ("SDK_CDN_CLOUDFRONT_DISTRIBUTION", "SDK_CDN_PURGE_COMMAND")


def shell_of(step, job, workflow):
    for scope in (step, job.get("defaults", {}).get("run", {}), workflow.get("defaults", {}).get("run", {})):
        if scope.get("shell"):
            return scope["shell"]
    return None  # GitHub's default on Linux: bash -e {0}, no pipefail


def has_pipefail(shell, script):
    if shell in ("bash", "pwsh", "powershell") or (shell and "pipefail" in shell):
        return True
    return re.search(r"^\s*set\s+-[a-z]*o\s+pipefail|^\s*set\s+-o\s+pipefail", script, re.M) is not None


def pipes(script):
    """Whether the script has a `|` pipe outside quotes and comments (not `||`)."""
    for line in script.splitlines():
        line = re.sub(r"'[^']*'|\"(\\.|[^\"\\])*\"", "''", line)
        line = re.sub(r"(^|\s)#.*", "", line)
        if re.search(r"(?<!\|)\|(?!\|)", line):
            return True
    return False


def env_names(*scopes):
    names = set()
    for scope in scopes:
        names.update((scope or {}).get("env", {}) or {})
    return names


def check(path):
    with open(path, encoding="utf-8") as f:
        workflow = yaml.safe_load(f)
    problems = []
    publishes, purges, verifies_cdn = False, False, False
    for job_name, job in (workflow.get("jobs") or {}).items():
        for i, step in enumerate(job.get("steps") or []):
            script = step.get("run")
            if script is None:
                continue
            where = f"{path}: job {job_name}, step {step.get('name') or i + 1}"
            if pipes(script) and not has_pipefail(shell_of(step, job, workflow), script):
                problems.append(
                    f"{where}: pipes without pipefail, so a failing command before `|` is ignored; "
                    "add `defaults: run: shell: bash` to the workflow (or `set -o pipefail`)"
                )
            for line in script.splitlines():
                if "sdk-cdn publish" not in line:
                    continue
                publishes = True
                if "--dry-run" in line:
                    continue
                if "||" in line or step.get("continue-on-error"):
                    problems.append(f"{where}: the exit code of `sdk-cdn publish` is swallowed; let it fail the job")
                if any(flag in line for flag in PURGE_FLAGS) or env_names(workflow, job, step) & set(PURGE_ENV):
                    purges = True
            if re.search(r"sdk-cdn verify\b.*--base-url", script):
                verifies_cdn = True
    if publishes and not purges:
        problems.append(
            f"{path}: publishes but never purges the CDN; pass --invalidate-cloudfront or --purge-command "
            f"(or set {' or '.join(PURGE_ENV)} from a repository variable)"
        )
    if publishes and not verifies_cdn:
        problems.append(
            f"{path}: publishes but never checks the release through the CDN; "
            'add a step `sdk-cdn verify "$VERSION" --base-url "$CDN_URL"`'
        )
    return problems


def main(argv):
    paths = argv[1:] or sorted(glob.glob(".github/workflows/*.yml") + glob.glob("examples/workflows/*.yml"))
    if not paths:
        print("check-workflows: no workflow files found; run from the repository root", file=sys.stderr)
        return 2
    problems = [p for path in paths for p in check(path)]
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"check-workflows: {len(paths)} workflows OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
