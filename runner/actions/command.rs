//! `command:` — a check (or setup) that runs a command, on the participant's side or inside the
//! app's environment, and judges how it ended: exit status, stdout and stderr (text, regular
//! expression, JSON pointer), duration.

use std::time::Duration;

use anyhow::anyhow;
use serde_json::Value;

use super::Context;
use super::matcher::{judge, judge_text, show, show_actual, show_text};
use crate::env::ExecOutput;
use crate::lab::{CommandAction, Matcher, Side, TextExpect};
use crate::outcome::{Done, Failure, Problem};

/// How long a command may run unless the action says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How many lines of an output a diagnosis shows.
const SHOWN_LINES: usize = 15;

pub async fn perform(ctx: &Context, action: &CommandAction) -> Done {
    let timeout = action
        .timeout
        .as_ref()
        .map(|d| d.get())
        .unwrap_or(DEFAULT_TIMEOUT);
    let (shown, argv) = match (&action.run, action.argv.is_empty(), &action.side) {
        (Some(run), true, Side::Participant) => (
            run.trim_end().to_string(),
            vec![
                "bash".into(),
                "--noprofile".into(),
                "--norc".into(),
                "-c".into(),
                run.clone(),
            ],
        ),
        (Some(run), true, Side::App | Side::Service(_)) => (
            run.trim_end().to_string(),
            vec!["sh".into(), "-c".into(), run.clone()],
        ),
        (None, false, _) => (quote_words(&action.argv), action.argv.clone()),
        _ => {
            return Err(anyhow!(
                "a `command:` needs exactly one of `run:` (shell commands) and `argv:` (a program \
                 and its arguments)"
            )
            .into());
        }
    };
    let what = match &action.side {
        Side::Participant => format!(
            "the command `{}` (on the participant's side)",
            one_line(&shown)
        ),
        Side::App => format!(
            "the command `{}` (inside the app's environment)",
            one_line(&shown)
        ),
        Side::Service(service) => format!(
            "the command `{}` (inside the service `{service}`)",
            one_line(&shown)
        ),
    };
    let ran = match &action.side {
        Side::Participant => {
            ctx.show_command(&shown);
            let (env, cwd) = ctx.terminals().lock().await.main_env();
            let mut command = tokio::process::Command::new(&argv[0]);
            command
                .args(&argv[1..])
                .env_clear()
                .envs(&env)
                .current_dir(&cwd);
            crate::env::exec::run_local(command, &format!("`{}`", argv[0]), timeout).await?
        }
        Side::App => {
            let env = ctx.env().read().await;
            ctx.show_command(&format!(
                "docker exec {} {}",
                env.facts().name,
                quote_words(&argv)
            ));
            env.exec(&argv, timeout).await?
        }
        Side::Service(service) => {
            let env = ctx.env().read().await;
            let container = env
                .services()
                .into_iter()
                .find(|s| &s.name == service)
                .map(|s| s.container)
                .unwrap_or_else(|| service.clone());
            ctx.show_command(&format!("docker exec {container} {}", quote_words(&argv)));
            env.service_exec(service, &argv, timeout).await?
        }
    };
    ctx.narrate(&format!(
        "{what} → {} in {} ms",
        match (ran.timed_out, ran.status) {
            (true, _) => "still running".to_string(),
            (false, Some(code)) => format!("exit {code}"),
            (false, None) => "killed by a signal".to_string(),
        },
        ran.took.as_millis()
    ));
    judge_ran(&what, action, &ran, timeout).map_err(|f| Problem::Check(f.hint(ctx.step_hint())))?;
    for (name, source) in &action.save {
        let value = saved(source, &ran).map_err(|e| Problem::Error(anyhow!("{what}: {e}")))?;
        ctx.set_var(name, value);
    }
    Ok(())
}

/// A program and its arguments as a person would type them.
fn quote_words(argv: &[String]) -> String {
    argv.iter()
        .map(|w| crate::util::shell_lines::quote(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The first line of a command, marked when there are more.
fn one_line(text: &str) -> String {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default().to_string();
    if lines.next().is_some() {
        format!("{first} …")
    } else {
        first
    }
}

/// Every expectation of `action` against what ran, the first that does not hold as a failure.
fn judge_ran(
    what: &str,
    action: &CommandAction,
    ran: &ExecOutput,
    timeout: Duration,
) -> Result<(), Failure> {
    let (stdout, stderr) = (ran.stdout_text(), ran.stderr_text());
    let outputs = || {
        format!(
            "\n  stdout:{}\n  stderr:{}",
            show_text(&stdout, SHOWN_LINES),
            show_text(&stderr, SHOWN_LINES)
        )
    };
    if ran.timed_out {
        return Err(Failure::new(
            what,
            format!("to finish within {:.1} s", timeout.as_secs_f64()),
            format!("still running then (stopped){}", outputs()),
        ));
    }
    let expect = &action.expect;
    let exit = expect
        .exit
        .clone()
        .unwrap_or(Matcher::Equals(Value::from(0)));
    let status = ran.status.map(Value::from);
    if let Err(expected) = judge(&exit, status.as_ref()) {
        return Err(Failure::new(
            format!("{what}: exit status"),
            expected,
            format!(
                "{}{}",
                match ran.status {
                    Some(code) => code.to_string(),
                    None => "none (killed by a signal)".into(),
                },
                outputs()
            ),
        ));
    }
    for (name, text, wanted) in [
        ("stdout", &stdout, &expect.stdout),
        ("stderr", &stderr, &expect.stderr),
    ] {
        if let Some(wanted) = wanted {
            judge_stream(what, name, text, wanted)?;
        }
    }
    if !expect.json.is_empty() {
        let doc: Value = serde_json::from_str(stdout.trim()).map_err(|e| {
            Failure::new(
                format!("{what}: stdout"),
                "JSON",
                format!(
                    "text that is not JSON ({e}):{}",
                    show_text(&stdout, SHOWN_LINES)
                ),
            )
        })?;
        for (pointer, matcher) in &expect.json {
            let actual = doc.pointer(pointer);
            if let Err(expected) = judge(matcher, actual) {
                return Err(Failure::new(
                    format!("{what}: stdout JSON {pointer}"),
                    expected,
                    show_actual(actual),
                ));
            }
        }
    }
    if let Some(min) = &expect.min_duration
        && ran.took < min.get()
    {
        return Err(Failure::new(
            format!("{what}: how long it took"),
            format!("at least {min}"),
            format!("{} ms", ran.took.as_millis()),
        ));
    }
    if let Some(max) = &expect.max_duration
        && ran.took > max.get()
    {
        return Err(Failure::new(
            format!("{what}: how long it took"),
            format!("at most {max}"),
            format!("{} ms", ran.took.as_millis()),
        ));
    }
    Ok(())
}

fn judge_stream(what: &str, name: &str, text: &str, wanted: &TextExpect) -> Result<(), Failure> {
    match judge_text(wanted, text) {
        Ok(()) => Ok(()),
        Err(miss) => Err(Failure::new(
            format!("{what}: {name}"),
            match &miss.bad_regex {
                Some(why) => format!(
                    "{} (which is not a regular expression: {why})",
                    miss.expected
                ),
                None => miss.expected,
            },
            show_text(text, SHOWN_LINES),
        )),
    }
}

/// The value `save:` takes from what ran: `stdout`, `stderr`, `exit`, or a JSON pointer into stdout.
fn saved(source: &str, ran: &ExecOutput) -> Result<Value, String> {
    match source {
        "stdout" => Ok(Value::from(ran.stdout_text().trim_end_matches('\n'))),
        "stderr" => Ok(Value::from(ran.stderr_text().trim_end_matches('\n'))),
        "exit" => Ok(ran.status.map(Value::from).unwrap_or(Value::Null)),
        pointer if pointer.starts_with('/') => {
            let doc: Value = serde_json::from_str(ran.stdout_text().trim())
                .map_err(|e| format!("cannot save {pointer}: stdout is not JSON ({e})"))?;
            doc.pointer(pointer).cloned().ok_or_else(|| {
                format!(
                    "cannot save {pointer}: stdout has nothing there ({})",
                    show(&doc)
                )
            })
        }
        other => Err(format!(
            "`save:` takes `stdout`, `stderr`, `exit` or a JSON pointer, not `{other}`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(yaml: &str) -> CommandAction {
        crate::lab::yaml::parse(yaml, std::path::Path::new("check.yaml")).unwrap()
    }

    fn ran(status: i64, stdout: &str, took_ms: u64) -> ExecOutput {
        ExecOutput {
            status: Some(status),
            stdout: stdout.as_bytes().to_vec(),
            took: Duration::from_millis(took_ms),
            ..ExecOutput::default()
        }
    }

    #[test]
    fn exit_zero_is_expected_unless_said_otherwise() {
        let a = action("run: 'true'");
        assert!(judge_ran("c", &a, &ran(0, "", 1), DEFAULT_TIMEOUT).is_ok());
        let f = judge_ran("c", &a, &ran(2, "boom", 1), DEFAULT_TIMEOUT).unwrap_err();
        assert_eq!(f.what, "c: exit status");
        assert_eq!(f.expected, "= 0");
        assert!(f.saw.starts_with('2') && f.saw.contains("boom"), "{f:?}");
        let nonzero = action("run: 'false'\nexpect: {exit: {ne: 0}}");
        assert!(judge_ran("c", &nonzero, &ran(1, "", 1), DEFAULT_TIMEOUT).is_ok());
    }

    #[test]
    fn output_json_and_duration_are_judged_with_a_diagnosis() {
        let a = action(
            "run: x\nexpect:\n  stdout: {regex: '\"n\": \\d+'}\n  json: {/n: {gte: 3}}\n  max_duration: 1s",
        );
        assert!(judge_ran("c", &a, &ran(0, r#"{"n": 4}"#, 10), DEFAULT_TIMEOUT).is_ok());
        let f = judge_ran("c", &a, &ran(0, r#"{"n": 2}"#, 10), DEFAULT_TIMEOUT).unwrap_err();
        assert_eq!(
            (f.what.as_str(), f.saw.as_str()),
            ("c: stdout JSON /n", "2")
        );
        let f = judge_ran("c", &a, &ran(0, "nope", 10), DEFAULT_TIMEOUT).unwrap_err();
        assert_eq!(f.what, "c: stdout");
        let f = judge_ran("c", &a, &ran(0, r#"{"n": 5}"#, 1500), DEFAULT_TIMEOUT).unwrap_err();
        assert_eq!(
            (f.what.as_str(), f.expected.as_str(), f.saw.as_str()),
            ("c: how long it took", "at most 1s", "1500 ms")
        );
    }

    #[test]
    fn a_command_still_running_at_its_timeout_fails_with_its_output_so_far() {
        let a = action("run: sleep 9");
        let timed_out = ExecOutput {
            timed_out: true,
            stdout: b"working".to_vec(),
            ..ExecOutput::default()
        };
        let f = judge_ran("c", &a, &timed_out, Duration::from_secs(2)).unwrap_err();
        assert_eq!(f.expected, "to finish within 2.0 s");
        assert!(f.saw.contains("working"), "{f:?}");
    }

    #[test]
    fn save_takes_text_the_exit_status_or_a_pointer() {
        let r = ran(0, "{\"id\": 7}\n", 1);
        assert_eq!(saved("stdout", &r).unwrap(), Value::from("{\"id\": 7}"));
        assert_eq!(saved("exit", &r).unwrap(), Value::from(0));
        assert_eq!(saved("/id", &r).unwrap(), Value::from(7));
        assert!(saved("/nope", &r).is_err());
        assert!(saved("body", &r).is_err());
    }
}
