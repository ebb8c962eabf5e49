//! `lab-runner redeploy` and `lab-runner check`: thin clients of a running session's control socket
//! (see `session::control`), for a participant working in another terminal.

use anyhow::Result;
use clap::Args;

use super::exit;
use super::run::UsageError;
use crate::session::control::{self, Request, Response};

const REDEPLOY_HELP: &str = "\
Recreates the running lab session's app with its environment changed, on the same host port (so \
$BASE stays valid), and waits until it is healthy: what a new task definition revision and a service \
update are on ECS. The session is the one `lab-runner start` (or verify, or demo) runs; with several, \
--part chooses, and LAB_RUNNER_SESSION (a socket path) names one outright.

Examples:
  lab-runner redeploy --env LAB_ENABLE=true --env LAB_TOKEN=$LAB_TOKEN --env LAB_ALLOW_PROD=true
  lab-runner redeploy --unset LAB_ALLOW_PROD
  lab-runner redeploy --original        # back to the environment the part started with

The same with docker-compose: add the variables under the service's `environment:`, then
  docker-compose up -d --force-recreate";

const CHECK_HELP: &str = "\
Judges a step of the running `lab-runner start` session, exactly as pressing `c` there does: the \
same lines, exit code 0 when the check passed and 1 when it did not. When the current step passes, \
the start screen moves on to the next one (progress saved). Without STEP, the step start is showing.

Examples:
  lab-runner check
  lab-runner check 2.1
  lab-runner check --part part2      # when several sessions run";

/// Restart the running lab app with changed environment variables (or the original ones)
#[derive(Debug, Clone, Args)]
#[command(after_help = REDEPLOY_HELP)]
pub struct RedeployArgs {
    /// Set a variable (repeatable)
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env_pair)]
    pub env: Vec<(String, String)>,
    /// Remove a variable (repeatable)
    #[arg(long, value_name = "KEY", value_parser = parse_env_name)]
    pub unset: Vec<String>,
    /// Start from the environment the part started with (then apply --env and --unset, if any)
    #[arg(long)]
    pub original: bool,
    /// Which session, when several are running (`part2` or `2`)
    #[arg(long, value_name = "PART")]
    pub part: Option<String>,
}

/// Check a step of the running `lab-runner start` session from any terminal
#[derive(Debug, Clone, Args)]
#[command(after_help = CHECK_HELP)]
pub struct CheckArgs {
    /// The step to check (`2.1`) [default: the step start is showing]
    pub step: Option<String>,
    /// Which session, when several are running (`part2` or `2`)
    #[arg(long, value_name = "PART")]
    pub part: Option<String>,
}

/// `KEY=VALUE` (the value may be empty and may contain `=`).
pub fn parse_env_pair(text: &str) -> Result<(String, String), String> {
    let Some((key, value)) = text.split_once('=') else {
        return Err(format!(
            "`{text}` has no `=`: write KEY=VALUE (KEY= for an empty value; --unset KEY removes one)"
        ));
    };
    control::valid_var_name(key)?;
    Ok((key.to_string(), value.to_string()))
}

/// A variable's name.
pub fn parse_env_name(text: &str) -> Result<String, String> {
    control::valid_var_name(text)?;
    Ok(text.to_string())
}

pub async fn redeploy(args: RedeployArgs) -> Result<u8> {
    let request = Request::Redeploy {
        env: args.env.into_iter().collect(),
        unset: args.unset,
        original: args.original,
    };
    send(args.part.as_deref(), &request, control::REDEPLOY_TIMEOUT).await
}

pub async fn check(args: CheckArgs) -> Result<u8> {
    let request = Request::Check { step: args.step };
    send(args.part.as_deref(), &request, control::CHECK_TIMEOUT).await
}

/// Sends `request` to the session, prints its lines, and returns its exit code.
async fn send(part: Option<&str>, request: &Request, timeout: std::time::Duration) -> Result<u8> {
    let socket = control::find_session(part).await?;
    let last = control::request(&socket, request, timeout, |line| println!("{line}")).await?;
    match last {
        Response::Done { passed: true } => Ok(exit::SUCCESS),
        Response::Done { passed: false } => Ok(exit::FAILED),
        Response::Error { error, usage: true } => Err(UsageError(error).into()),
        Response::Error { error, .. } => {
            eprintln!("error: {error}");
            Ok(exit::ERROR)
        }
        Response::Line { line } => Err(anyhow::anyhow!(
            "the session's answer ended with a line instead of a result: {line:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn env_pairs_split_at_the_first_equals_sign() {
        assert_eq!(
            parse_env_pair("LAB_ENABLE=true"),
            Ok(("LAB_ENABLE".into(), "true".into()))
        );
        assert_eq!(
            parse_env_pair("NODE_OPTIONS=--max-old-space-size=256"),
            Ok(("NODE_OPTIONS".into(), "--max-old-space-size=256".into()))
        );
        assert_eq!(
            parse_env_pair("EMPTY="),
            Ok(("EMPTY".into(), String::new()))
        );
        assert!(parse_env_pair("FOO").unwrap_err().contains("has no `=`"));
        assert!(
            parse_env_pair("=x")
                .unwrap_err()
                .contains("cannot be empty")
        );
        assert!(parse_env_pair("A B=x").is_err());
        assert!(parse_env_name("").is_err());
        assert_eq!(parse_env_name("LAB_TOKEN"), Ok("LAB_TOKEN".into()));
    }

    #[test]
    fn bad_env_arguments_are_usage_errors() {
        let parse = |args: &[&str]| crate::cli::args::Cli::try_parse_from(args);
        let cli = parse(&[
            "lab-runner",
            "redeploy",
            "--env",
            "LAB_ENABLE=true",
            "--env",
            "LAB_TOKEN=abc",
            "--unset",
            "X",
        ])
        .unwrap();
        match cli.command {
            crate::cli::args::Command::Redeploy(args) => {
                assert_eq!(args.env.len(), 2);
                assert_eq!(args.unset, ["X"]);
                assert!(!args.original);
            }
            other => panic!("{other:?}"),
        }
        for bad in [
            &["lab-runner", "redeploy", "--env", "FOO"][..],
            &["lab-runner", "redeploy", "--env", "=x"],
            &["lab-runner", "redeploy", "--unset", ""],
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}: {e}");
        }
    }
}
