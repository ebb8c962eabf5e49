//! `lab-runner completions SHELL`: a completion script on stdout that knows the subcommands.

use crate::support;

use support::{lab_runner, text};

#[test]
fn every_shell_gets_a_script_that_knows_the_commands() {
    for shell in ["bash", "zsh", "fish"] {
        let out = lab_runner().args(["completions", shell]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out));
        let script = String::from_utf8_lossy(&out.stdout);
        for command in ["verify", "doctor", "export", "pull", "cleanup"] {
            assert!(
                script.contains(command),
                "{shell}: no `{command}` in\n{script}"
            );
        }
        assert!(out.stderr.is_empty(), "{shell}: {}", text(&out));
    }
}

#[test]
fn bash_script_registers_the_completion_function() {
    let out = lab_runner().args(["completions", "bash"]).output().unwrap();
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(
        script
            .lines()
            .any(|l| l.trim_start().starts_with("complete -F ")
                && l.trim_end().ends_with(" lab-runner")),
        "{script}"
    );
}

#[test]
fn an_unknown_shell_is_a_usage_error_naming_the_choices() {
    let out = lab_runner().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bash") && stderr.contains("zsh") && stderr.contains("fish"),
        "{stderr}"
    );
}

#[test]
fn help_has_examples() {
    let out = lab_runner()
        .args(["completions", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("lab-runner completions bash >"), "{help}");
}
