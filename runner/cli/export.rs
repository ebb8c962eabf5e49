//! `lab-runner export`: the whole lab as one Markdown guide (see [`crate::lab::export`]).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use super::exit;
use super::run::load_lab;
use crate::lab::export;

const AFTER_HELP: &str = "\
The guide is generated from the lab's YAML (the same steps verify runs) and the lab app's README: \
title and description, a diagram of the lab's flow, each part's intro, steps (instructions, \
commands, hints) and takeaways, and an appendix (when to use each approach, the endpoint reference, \
the LAB_* variables, troubleshooting, further reading). The output is the same on every machine.

Examples:
  lab-runner export                                        # to stdout
  lab-runner export --lab labs/node-profiling --out docs/labs/node-profiling.md";

/// Write the whole lab as one Markdown guide
#[derive(Debug, Clone, Args)]
#[command(after_help = AFTER_HELP)]
pub struct ExportArgs {
    /// The lab folder (default: $LAB_RUNNER_LAB, or labs/node-profiling found from here upwards)
    #[arg(long, value_name = "DIR")]
    pub lab: Option<PathBuf>,
    /// Write the guide to this file instead of stdout (replacing it)
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub async fn run(args: ExportArgs) -> Result<u8> {
    let lab = load_lab(args.lab)?;
    let text = export::guide(&lab, crate::env::docker::labels::PART)
        .with_context(|| format!("Failed to export the lab {}", lab.id()))?;
    match &args.out {
        None => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                Err(e) => return Err(anyhow::Error::new(e).context("Failed to write the guide")),
            }
        }
        Some(path) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("Failed to create {}", parent.display()))?;
            }
            std::fs::write(path, &text)
                .with_context(|| format!("Failed to write the guide to {}", path.display()))?;
            println!(
                "wrote {} ({} lines): the lab {} as one guide",
                path.display(),
                text.lines().count(),
                lab.id()
            );
        }
    }
    Ok(exit::SUCCESS)
}
