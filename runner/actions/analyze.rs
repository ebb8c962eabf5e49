//! `analyze:` — read a captured profile or snapshot and judge it.

use anyhow::{Result, bail};

use super::Context;
use crate::lab::AnalyzeAction;

pub async fn perform(_ctx: &Context, _action: &AnalyzeAction) -> Result<()> {
    bail!("analyze is being built")
}
