//! `lab-runner schema`: the lab format's JSON Schema, on stdout or into a file.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::exit;

/// Print the JSON Schema of the lab format (lab.yaml and part files), generated from the runner's types
#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Examples:\n  lab-runner schema\n  lab-runner schema --out docs/lab-format.schema.json\n\nA lab file names it on its first line, for editors that complete and validate YAML:\n  # yaml-language-server: $schema=../../docs/lab-format.schema.json"
)]
pub struct SchemaArgs {
    /// Write the schema to this file instead of stdout
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub async fn run(args: SchemaArgs) -> anyhow::Result<u8> {
    let text = crate::lab::schema::schema_text();
    match args.out {
        Some(path) => std::fs::write(&path, text)
            .with_context(|| format!("Failed to write the schema to {}", path.display()))?,
        None => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                Err(e) => return Err(anyhow::Error::new(e).context("Failed to write the schema")),
            }
        }
    }
    Ok(exit::SUCCESS)
}
