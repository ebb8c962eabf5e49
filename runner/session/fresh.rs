//! A fresh environment at a step's starting state: the part's environment brought up anew and the
//! steps before it replayed (setup → solve → check → cleanup, as verify runs them). Used for what
//! must start from a clean world and cannot share the part's own session: `verify --mutations`
//! (one environment per mutant) and mistakes marked `fresh: true`.
//!
//! Why a replay and not an undo: a step's starting state is whatever its predecessors left (a
//! process that jammed once, memory retained, a tunnel open, the routes enabled), and only running
//! them again rebuilds it faithfully. It costs the part's time up to the step, per environment.

use anyhow::{Context as _, Result};

use super::engine::{self, EngineOptions, PartSession, Phase};
use crate::actions::context::Silent;
use crate::lab::{Lab, Part};

/// Where a fresh environment comes from.
#[derive(Clone, Copy)]
pub struct Replay<'a> {
    pub lab: &'a Lab,
    pub part: &'a Part,
    pub options: &'a EngineOptions,
}

impl Replay<'_> {
    /// A new environment of the part, with steps `0..index` done; the caller tears it down.
    pub async fn open_at(&self, index: usize) -> Result<PartSession> {
        let mut options = self.options.clone();
        // Several of these run beside the part's own session: never on its fixed ports.
        options.fixed_ports = false;
        options.artifacts_per_session = true;
        let session = engine::open_part(
            self.lab,
            self.part,
            &options,
            Box::new(Silent),
            None,
            &|_: &str| {},
        )
        .await
        .with_context(|| format!("a fresh environment of {}", self.part.id()))?;
        if let Err(e) = solve_steps_before(&session, self.part, index).await {
            let _ = session.teardown().await;
            return Err(e);
        }
        Ok(session)
    }
}

/// Brings `session` from its part's start to the start of step `index`: each step before it is run
/// as verify runs it once solved (setup → solve → check → cleanup). Used by a fresh environment and
/// by `verify --step`.
pub async fn solve_steps_before(session: &PartSession, part: &Part, index: usize) -> Result<()> {
    for step in part.file.steps.iter().take(index) {
        for phase in [Phase::Setup, Phase::Solve, Phase::Check, Phase::Cleanup] {
            if let Err(problem) = engine::run_phase(&session.ctx, step, phase).await {
                return Err(anyhow::anyhow!("{}", problem.text()).context(format!(
                    "replaying step {} ({phase}) to reach the start of step {}",
                    step.id,
                    part.file.steps.get(index).map_or("?", |s| s.id.as_str())
                )));
            }
        }
    }
    Ok(())
}
