//! `metrics:` — scrape the app's Prometheus endpoint; judge series and save them.

use std::time::Duration;

use serde_json::{Value, json};

use super::Context;
use super::matcher::{judge, show};
use crate::lab::{Builtin, MetricsAction};
use crate::outcome::{Done, Failure};
use crate::util::prometheus::{self as metrics, Selector};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn perform(ctx: &Context, action: &MetricsAction) -> Done {
    let base_url = ctx.builtin(Builtin::BaseUrl)?;
    let path = action
        .path
        .as_deref()
        .or(ctx.app().metrics.as_deref())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "a `metrics:` action without a `path`, and lab.yaml names no `app.metrics` to scrape"
            )
        })?;
    let url = format!("{base_url}{path}");
    ctx.show_command(&format!("curl -sS \"{url}\""));
    let timeout = action
        .timeout
        .as_ref()
        .map(|d| d.get())
        .unwrap_or(DEFAULT_TIMEOUT);
    let request = crate::probe::http::Request {
        method: "GET".into(),
        url: url.clone(),
        headers: vec![],
        body: None,
        timeout,
    };
    // No answer at all (a paused or jammed app) is a judgement, with the check's hint.
    let response = super::http::send(ctx.http(), &format!("GET {path}"), &request)
        .await
        .map_err(|problem| match problem {
            crate::outcome::Problem::Check(f) => {
                crate::outcome::Problem::Check(f.hint(ctx.step_hint()))
            }
            other => other,
        })?;
    if !(200..300).contains(&response.status) {
        return Err(anyhow::anyhow!(
            "GET {url} answered {}: {}",
            response.status,
            response.text().chars().take(300).collect::<String>()
        )
        .into());
    }
    let text = response.text();
    let scrape = metrics::parse(&text).map_err(|e| {
        Failure::new(
            format!("GET {path}"),
            "valid Prometheus text exposition (format 0.0.4)",
            e.to_string(),
        )
    })?;
    for (selector_text, matcher) in &action.expect {
        let selector = Selector::parse(selector_text)
            .map_err(|e| anyhow::anyhow!("metric selector `{selector_text}`: {e}"))?;
        let actual = match scrape.value(&selector) {
            Ok(v) => Some(json!(v)),
            Err(_) if matches!(matcher, crate::lab::Matcher::Ops(o) if o.exists == Some(false)) => {
                None
            }
            Err(e) => {
                return Err(
                    Failure::new(selector_text.clone(), matcher_text(matcher), e)
                        .hint(ctx.step_hint())
                        .into(),
                );
            }
        };
        if let Err(expected) = judge(matcher, actual.as_ref()) {
            return Err(Failure::new(
                selector_text.clone(),
                expected,
                actual.as_ref().map(show).unwrap_or_else(|| "absent".into()),
            )
            .hint(ctx.step_hint())
            .into());
        }
        ctx.narrate(&format!(
            "{selector_text} = {}",
            actual
                .as_ref()
                .and_then(|v| v.as_f64())
                .map(|v| readable(&selector.name, v))
                .unwrap_or_else(|| "absent".into())
        ));
    }
    for (name, selector_text) in &action.save {
        let selector = Selector::parse(selector_text)
            .map_err(|e| anyhow::anyhow!("metric selector `{selector_text}`: {e}"))?;
        let value = scrape.value(&selector).map_err(|e| {
            Failure::new(
                format!("saving `{name}`"),
                format!("a value for {selector_text}"),
                e,
            )
        })?;
        ctx.set_var(name, json!(value));
        ctx.narrate(&format!(
            "{selector_text} = {} (saved as {name})",
            readable(&selector.name, value)
        ));
    }
    Ok(())
}

fn matcher_text(matcher: &crate::lab::Matcher) -> String {
    match judge(matcher, Some(&Value::Null)) {
        Err(expected) => expected,
        Ok(()) => "a value".into(),
    }
}

/// A sample value as a person reads it: bytes in MiB, whole numbers without `.0`.
fn readable(name: &str, value: f64) -> String {
    if name.ends_with("_bytes") && value.abs() >= 1024.0 {
        format!("{} ({value:.0})", crate::util::units::bytes(value))
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}
