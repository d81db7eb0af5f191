//! The reference the binary carries: shell completions and man pages,
//! generated from the clap definition so they cannot drift from it.

use serde_json::json;

use super::output::{Error, Output};
use crate::cli::Cli;
use crate::release::ReleaseError;

pub(super) fn completions(shell: clap_complete::Shell) -> Output {
    let script = completion_script(shell);
    let json = json!({ "shell": shell.to_string(), "script": script });
    Output::data(script, json)
}

/// The binary's name, as completions and man pages call it.
const BIN: &str = "sdk-cdn";

/// The completion script for `shell`.
///
/// clap_complete 4.6's bash generator mangles a hyphenated binary name two
/// ways: the loop that finds the subcommand sets `cmd="sdk__cdn__subcmd__publish"`
/// while the `case` arms read `sdk__subcmd__cdn__subcmd__publish)`, so nothing
/// below the top level completed. The arms are rewritten to the loop's spelling.
pub(crate) fn completion_script(shell: clap_complete::Shell) -> String {
    let mut command = <Cli as clap::CommandFactory>::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, BIN, &mut script);
    let script = String::from_utf8_lossy(&script).into_owned();
    match shell {
        clap_complete::Shell::Bash => script.replace(&BIN.replace('-', "__subcmd__"), &BIN.replace('-', "__")),
        _ => script,
    }
}

/// The whole command tree as the man pages describe it: built (so each
/// command is named `sdk-cdn-COMMAND`), without the `help` pseudo-command.
fn man_command() -> clap::Command {
    let mut command = <Cli as clap::CommandFactory>::command().disable_help_subcommand(true);
    command.build();
    command
}

/// Renders one man page.
fn man_page(command: clap::Command) -> Result<String, Error> {
    let man = clap_mangen::Man::new(command);
    let mut page = Vec::new();
    man.render(&mut page).map_err(|e| ReleaseError::Local { what: "render", path: man.get_filename(), source: e })?;
    Ok(String::from_utf8_lossy(&page).into_owned())
}

pub(super) fn man(args: &crate::cli::ManArgs) -> Result<Output, Error> {
    let top = man_command();
    if let Some(dir) = &args.dir {
        std::fs::create_dir_all(dir).map_err(|e| ReleaseError::Local {
            what: "create",
            path: dir.display().to_string(),
            source: e,
        })?;
        let mut pages = Vec::new();
        for command in std::iter::once(top.clone()).chain(top.get_subcommands().cloned()) {
            let man = clap_mangen::Man::new(command);
            let path = man.generate_to(dir).map_err(|e| ReleaseError::Local {
                what: "write",
                path: dir.join(man.get_filename()).display().to_string(),
                source: e,
            })?;
            pages.push(path.display().to_string());
        }
        let text = pages.iter().map(|p| format!("wrote {p}\n")).collect();
        return Ok(Output::status(text, json!({ "dir": dir, "pages": pages })));
    }
    let command = match &args.command {
        None => top,
        Some(name) => top.find_subcommand(name).cloned().ok_or_else(|| {
            let names: Vec<&str> = top.get_subcommands().map(clap::Command::get_name).collect();
            ReleaseError::Usage(format!("no man page for `{name}`: give one of {}", names.join(", ")))
        })?,
    };
    let page = man_page(command)?;
    let json = json!({ "man": page });
    Ok(Output::data(page, json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bash_completion_dispatches_to_arms_that_exist() {
        let script = completion_script(clap_complete::Shell::Bash);
        assert!(script.contains("cmd=\"sdk__cdn__subcmd__publish\""), "the loop's name changed");
        assert!(script.contains("        sdk__cdn__subcmd__publish)"), "no case arm for publish");
        assert!(!script.contains("sdk__subcmd__cdn"), "a mangled arm is left");
    }

    #[test]
    fn every_command_has_a_man_page() {
        let top = man_command();
        for command in top.get_subcommands() {
            let page = man_page(command.clone()).unwrap();
            assert!(page.contains(&format!(".TH {} 1", command.get_display_name().unwrap())), "{page}");
        }
    }
}
