//! `artifact:` — copy a file out of the environment into the session's artifact folder.

use std::path::Path;
use std::time::Instant;

use anyhow::anyhow;
use serde_json::json;

use super::Context;
use crate::lab::ArtifactAction;
use crate::outcome::Done;
use crate::util::units;

pub async fn perform(ctx: &Context, action: &ArtifactAction) -> Done {
    if action.to.contains("..") || Path::new(&action.to).is_absolute() {
        return Err(anyhow!(
            "artifact `to: {}` must be a file name inside the session's artifact folder",
            action.to
        )
        .into());
    }
    let dest = ctx.artifacts_dir().join(&action.to);
    let started = Instant::now();
    let env = ctx.env().read().await;
    ctx.show_command(&format!(
        "lab-runner pull {} {}",
        action.copy,
        dest.display()
    ));
    let bytes = env.copy_out(&action.copy, &dest).await?;
    ctx.narrate(&format!(
        "copied {} ({}) to {} in {} ms",
        action.copy,
        units::bytes(bytes as f64),
        dest.display(),
        started.elapsed().as_millis()
    ));
    if let Some(name) = &action.save {
        ctx.set_var(name, json!(dest.to_string_lossy()));
    }
    Ok(())
}
