//! `analyze:` — read a captured profile or snapshot (with [`crate::analyze`]) and judge it; the
//! tables it prints are what "do it for me" and demo show the participant.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::json;

use super::Context;
use super::matcher::{judge, show_actual};
use crate::analyze::cpuprofile::{CpuProfile, FrameFilter};
use crate::analyze::heapsnapshot::{self, HeapSnapshot, RetainerGraph};
use crate::lab::{AnalyzeAction, CpuprofileCheck, HeapDiffCheck, HeapsnapshotCheck, ShareOf};
use crate::outcome::{Done, Failure};
use crate::util::units;

pub async fn perform(ctx: &Context, action: &AnalyzeAction) -> Done {
    let ctx = ctx.clone();
    let action = action.clone();
    // Parsing can take a while on a big snapshot: off the async workers.
    tokio::task::spawn_blocking(move || match &action {
        AnalyzeAction::Cpuprofile(c) => cpuprofile(&ctx, c),
        AnalyzeAction::Heapsnapshot(h) => heap_snapshot(&ctx, h),
        AnalyzeAction::HeapDiff(d) => heap_diff(&ctx, d),
    })
    .await
    .context("the analysis task failed")?
}

/// A capture that is not there yet is a failed check (the participant has not saved it), not an error.
fn existing(path: &str, what: &str, ctx: &Context) -> Done<PathBuf> {
    let p = PathBuf::from(path);
    if !p.is_file() {
        return Err(Failure::new(
            what.to_string(),
            format!("a file at {path}"),
            "no such file yet",
        )
        .hint(ctx.step_hint())
        .into());
    }
    Ok(p)
}

fn name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn cpuprofile(ctx: &Context, check: &CpuprofileCheck) -> Done {
    let path = existing(&check.file, "the CPU profile", ctx)?;
    let profile = CpuProfile::load(&path)?;
    let what = format!("CPU profile {}", name(&path));
    let samples = profile.sample_count() as u64;
    if let Some(min) = check.min_samples
        && samples < min
    {
        return Err(Failure::new(
            format!("{what}: samples"),
            format!("at least {min}"),
            samples.to_string(),
        )
        .hint(Some(
            "a profile needs to run long enough (and something must be running) to collect samples",
        ))
        .into());
    }
    for f in profile.top_functions(5) {
        ctx.narrate(&format!(
            "{:>5.1}% self  {:>5.1}% total  {} {}",
            f.self_share * 100.0,
            f.total_share * 100.0,
            if f.function.is_empty() {
                "(anonymous)"
            } else {
                &f.function
            },
            f.location()
        ));
    }
    for (what, variable) in &check.save {
        match what.as_str() {
            "hottest" => {
                let Some(hottest) = profile
                    .top_functions(usize::MAX)
                    .into_iter()
                    .find(|f| !f.is_meta())
                else {
                    return Err(Failure::new(
                        format!("{what}: the busiest function"),
                        "a function with self time besides (idle), (program) and (garbage collector)",
                        "none",
                    )
                    .into());
                };
                ctx.narrate(&format!(
                    "most self time, not counting (idle): {} {}",
                    hottest.function,
                    hottest.location()
                ));
                ctx.set_var(variable, json!(hottest.function));
            }
            other => {
                return Err(anyhow::anyhow!("cpuprofile can save hottest, not `{other}`").into());
            }
        }
    }
    if let Some(share) = &check.function_share {
        let filter = FrameFilter {
            url_suffix: share.url_suffix.clone(),
            lines: share.lines.map(|[a, b]| (a, b)),
            function: None,
        };
        let (got, of) = match share.of {
            ShareOf::All => (profile.share(&filter), "the sampled time"),
            ShareOf::Busy => (
                profile.busy_share(&filter),
                "the busy time (not counting (idle), (program) and (garbage collector))",
            ),
        };
        ctx.narrate(&format!(
            "{:.0}% of {of} was in {} (where {} lives)",
            got * 100.0,
            share.url_suffix,
            share.function
        ));
        if got < share.at_least {
            return Err(Failure::new(
                format!("{what}: time in {} ({})", share.function, share.url_suffix),
                format!("at least {:.0}% of {of}", share.at_least * 100.0),
                format!("{:.1}% over {samples} samples", got * 100.0),
            )
            .hint(ctx.step_hint())
            .into());
        }
    }
    Ok(())
}

fn heap_snapshot(ctx: &Context, check: &HeapsnapshotCheck) -> Done {
    let path = existing(&check.file, "the heap snapshot", ctx)?;
    let snapshot = HeapSnapshot::load(&path)?;
    let what = format!("heap snapshot {}", name(&path));
    let nodes = snapshot.node_count() as u64;
    if let Some(min) = check.min_nodes
        && nodes < min
    {
        return Err(Failure::new(
            format!("{what}: nodes"),
            format!("at least {min}"),
            nodes.to_string(),
        )
        .hint(ctx.step_hint())
        .into());
    }
    let summary = snapshot.summary();
    ctx.narrate(&format!(
        "{nodes} nodes, {} shallow; Buffer backing stores {}",
        units::bytes(snapshot.total_shallow_size() as f64),
        units::bytes(summary.backing_store_bytes() as f64)
    ));
    if !check.save.is_empty() {
        save_holder(ctx, check, &path, &snapshot, &what)?;
    }
    if let Some(matcher) = &check.backing_store_bytes {
        let actual = json!(summary.backing_store_bytes());
        if let Err(expected) = judge(matcher, Some(&actual)) {
            return Err(Failure::new(
                format!("{what}: bytes in ArrayBuffer backing stores"),
                expected,
                show_actual(Some(&actual)),
            )
            .hint(ctx.step_hint())
            .into());
        }
    }
    Ok(())
}

/// `heapsnapshot.save`: what keeps the largest object alive, as the Retainers pane shows it.
fn save_holder(
    ctx: &Context,
    check: &HeapsnapshotCheck,
    path: &Path,
    snapshot: &HeapSnapshot,
    what: &str,
) -> Done {
    let paths = RetainerGraph::load(path)?.largest(1);
    let holder = paths.first().and_then(|p| p.holder().map(|h| (p, h)));
    let Some((largest, (step, value))) = holder else {
        return Err(Failure::new(
            format!("{what}: what keeps the largest object alive"),
            "a variable or property on its retainer path",
            match paths.first() {
                Some(p) => format!(
                    "{} @{} held by V8 internals only",
                    p.object.class, p.object.id
                ),
                None => "no object reachable from the root".to_string(),
            },
        )
        .hint(ctx.step_hint())
        .into());
    };
    let retained = snapshot.retained_size_of_id(value.id).unwrap_or(0);
    let retained_mib = (retained as f64 / 1048576.0 * 10.0).round() / 10.0;
    ctx.narrate(&format!(
        "largest object {} @{} ({}) is held by `{}`: {} @{} retains {}",
        largest.object.class,
        largest.object.id,
        units::bytes(largest.object.self_size as f64),
        step.edge,
        value.class,
        value.id,
        units::bytes(retained as f64)
    ));
    for (saved, variable) in &check.save {
        match saved.as_str() {
            "largest_holder" => ctx.set_var(variable, json!(step.edge)),
            "largest_holder_retained_mib" => ctx.set_var(variable, json!(retained_mib)),
            other => {
                return Err(anyhow::anyhow!(
                    "heapsnapshot can save largest_holder or largest_holder_retained_mib, not `{other}`"
                )
                .into());
            }
        }
    }
    Ok(())
}

fn heap_diff(ctx: &Context, check: &HeapDiffCheck) -> Done {
    let old_path = existing(&check.old, "the earlier heap snapshot", ctx)?;
    let new_path = existing(&check.new, "the later heap snapshot", ctx)?;
    let old = HeapSnapshot::load(&old_path)?;
    let new = HeapSnapshot::load(&new_path)?;
    let diff = heapsnapshot::diff(&old, &new);
    let delta = diff.backing_store_delta();
    ctx.narrate(&format!(
        "{} → {}: Buffer backing stores {}{}, all objects {}{}",
        name(&old_path),
        name(&new_path),
        if delta >= 0 { "+" } else { "" },
        units::bytes(delta as f64),
        if diff.size_delta() >= 0 { "+" } else { "" },
        units::bytes(diff.size_delta() as f64)
    ));
    for (what, variable) in &check.save {
        match what.as_str() {
            "largest_growth" => {
                let Some(top) = diff
                    .constructors
                    .iter()
                    .filter(|c| c.size_delta() > 0)
                    .max_by_key(|c| c.size_delta())
                else {
                    return Err(Failure::new(
                        format!("{} → {}: what grew", name(&old_path), name(&new_path)),
                        "a constructor whose objects grew",
                        "nothing grew",
                    )
                    .hint(ctx.step_hint())
                    .into());
                };
                ctx.narrate(&format!(
                    "grew most: {} (+{})",
                    top.label(),
                    units::bytes(top.size_delta() as f64)
                ));
                ctx.set_var(variable, json!(top.label()));
            }
            other => {
                return Err(
                    anyhow::anyhow!("heap_diff can save largest_growth, not `{other}`").into(),
                );
            }
        }
    }
    if let Some(matcher) = &check.backing_store_delta {
        let actual = json!(delta);
        if let Err(expected) = judge(matcher, Some(&actual)) {
            return Err(Failure::new(
                format!(
                    "{} → {}: change in ArrayBuffer backing stores (bytes)",
                    name(&old_path),
                    name(&new_path)
                ),
                expected,
                format!(
                    "{} ({})",
                    show_actual(Some(&actual)),
                    units::bytes(delta as f64)
                ),
            )
            .hint(ctx.step_hint())
            .into());
        }
    }
    Ok(())
}
