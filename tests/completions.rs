//! Shell completions, tested by running each shell on the generated script
//! and asking it to complete below the top level (`sdk-cdn publish --<TAB>`),
//! where clap_complete's bash script used to offer nothing.
//!
//! bash is required; zsh and fish are skipped when not installed, unless
//! `SDK_CDN_REQUIRE_TOOLS=1` (CI sets it and installs them).

/// The parts of `tests/support/` this suite uses (each suite compiles only those).
mod support {
    pub mod backends;
    pub mod cli;
    pub mod s3_server;
    pub mod tools;
}

use std::path::Path;
use std::process::Command;

use support::cli::run_without_store;
use support::tools::tools_present;

const PUBLISH_FLAGS: [&str; 4] = ["--dry-run", "--no-promote", "--manifests-dir", "--version"];

fn script(dir: &Path, shell: &str, file: &str) -> String {
    let out = run_without_store(dir, &["completions", shell]);
    out.expect_code(0);
    let path = dir.join(file);
    std::fs::write(&path, &out.stdout).unwrap();
    path.to_str().unwrap().to_string()
}

fn shell_output(shell: &str, args: &[&str]) -> String {
    let out = Command::new(shell).args(args).output().unwrap_or_else(|e| panic!("run {shell}: {e}"));
    assert!(out.status.success(), "{shell} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Bash completes as it does on TAB: `complete -F` registered, COMP_WORDS set, the function called.
fn bash_complete(script: &str, words: &[&str]) -> Vec<String> {
    let cword = words.len() - 1;
    let words = words.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(" ");
    let program = format!(
        "source '{script}'\n\
         complete -p sdk-cdn >/dev/null\n\
         COMP_WORDS=({words}); COMP_CWORD={cword}\n\
         func=$(complete -p sdk-cdn | sed -E 's/.*-F ([^ ]+).*/\\1/')\n\
         \"$func\" sdk-cdn \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\""
    );
    shell_output("bash", &["--norc", "--noprofile", "-c", &program]).lines().map(str::to_string).collect()
}

#[test]
fn bash_completes_subcommand_flags() {
    let dir = tempfile::tempdir().unwrap();
    let script = script(dir.path(), "bash", "sdk-cdn.bash");
    let offered = bash_complete(&script, &["sdk-cdn", "publish", "--"]);
    for flag in PUBLISH_FLAGS {
        assert!(offered.iter().any(|o| o == flag), "`sdk-cdn publish --<TAB>` lacks {flag}: {offered:?}");
    }
    // After a global option with a value, and for another command.
    let offered = bash_complete(&script, &["sdk-cdn", "--store", "s3://b", "promote", "--allow"]);
    assert_eq!(offered, ["--allow-downgrade", "--allow-prerelease", "--allow-unsigned", "--allow-sri-key-change"]);
    // The top level still completes commands.
    let offered = bash_complete(&script, &["sdk-cdn", "pub"]);
    assert_eq!(offered, ["publish"]);
}

#[test]
fn fish_completes_subcommand_flags() {
    if !tools_present(&["fish"], "SDK_CDN_REQUIRE_TOOLS") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = script(dir.path(), "fish", "sdk-cdn.fish");
    let program = format!("source '{script}'; complete -C 'sdk-cdn publish --'");
    let offered = shell_output("fish", &["--no-config", "-c", &program]);
    let flags: Vec<&str> = offered.lines().filter_map(|l| l.split('\t').next()).collect();
    for flag in PUBLISH_FLAGS {
        assert!(flags.contains(&flag), "fish: `sdk-cdn publish --<TAB>` lacks {flag}: {flags:?}");
    }
}

/// zsh completes only inside its line editor, so the test drives an
/// interactive zsh through a pseudo-terminal (zsh/zpty), types
/// `sdk-cdn publish --<TAB>` and reads the listing until every expected flag
/// appeared or a deadline passed.
#[test]
fn zsh_completes_subcommand_flags() {
    if !tools_present(&["zsh"], "SDK_CDN_REQUIRE_TOOLS") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("functions")).unwrap();
    script(dir.path(), "zsh", "functions/_sdk-cdn");
    let functions = dir.path().join("functions");
    let wanted = PUBLISH_FLAGS.iter().map(|f| format!("$out == *{f}*")).collect::<Vec<_>>().join(" && ");
    let program = format!(
        r#"zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z 'PROMPT=; fpath=({functions} $fpath); autoload -U compinit; compinit -u -D'
zpty -w z 'zstyle ":completion:*" list-prompt ""'
zpty -w z 'LINES=300; COLUMNS=200'
zpty -w z $'sdk-cdn publish --\t'
deadline=$((SECONDS + 20)); out=""
while (( SECONDS < deadline )); do
  zpty -rt z line && out+="$line"
  [[ {wanted} ]] && break
done
zpty -d z
print -r -- "$out""#,
        functions = functions.display()
    );
    let offered = shell_output("zsh", &["-f", "-c", &program]);
    for flag in PUBLISH_FLAGS {
        assert!(offered.contains(flag), "zsh: `sdk-cdn publish --<TAB>` lacks {flag}:\n{offered}");
    }
}
