//! `http:` — one request to the app, judged against its expectations.

use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::Value;

use super::Context;
use super::matcher::{judge, show_actual};
use crate::lab::{Builtin, HttpAction};
use crate::outcome::{Done, Failure, Problem};
use crate::probe::http::{HttpClient, HttpError, Request, Response};
use crate::util::duration::Dur;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the lab service `service` is published on the host (`http://127.0.0.1:PORT`).
async fn service_url(ctx: &Context, service: &str) -> Result<String, Problem> {
    let env = ctx.env().read().await;
    let services = env.services();
    match services.iter().find(|s| s.name == service) {
        Some(s) => match s.published {
            Some(addr) => Ok(format!("http://{addr}")),
            None => Err(Problem::Error(anyhow::anyhow!(
                "an `http:` to the service `{service}` needs it published (`publish: true` in \
                 lab.yaml's services)"
            ))),
        },
        None => Err(Problem::Error(anyhow::anyhow!(
            "the service `{service}` does not run in this environment ({})",
            if services.is_empty() {
                "it runs no services".to_string()
            } else {
                format!(
                    "it runs {}",
                    services
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        ))),
    }
}

/// Sends the request, judges the response, saves variables.
pub async fn perform(ctx: &Context, action: &HttpAction) -> Done {
    let base_url = match &action.service {
        None => ctx.builtin(Builtin::BaseUrl)?,
        Some(service) => service_url(ctx, service).await?,
    };
    let token = Some(ctx.builtin(Builtin::Token)?);
    let header = ctx.app().token_header.as_deref();
    let request = build_request(action, &base_url, header.zip(token.as_deref()))?;
    ctx.show_command(&crate::lab::commands::curl(
        action,
        &base_url,
        header.unwrap_or_default(),
        token.as_deref().unwrap_or("$LAB_TOKEN"),
    ));
    let label = format!("{} {}", action.method, action.target());
    let countdown = action.lasts.as_ref().map(|d| ctx.activity(&label, d.get()));
    let response = send(ctx.http(), &label, &request).await;
    drop(countdown);
    let response = response.map_err(|p| match p {
        Problem::Check(f) => Problem::Check(f.hint(ctx.step_hint())),
        other => other,
    })?;
    ctx.narrate(&format!(
        "{label} → {} in {} ms",
        response.status,
        response.elapsed.as_millis()
    ));
    if let Err(failure) = judge_response(action, &response, &label) {
        return Err(failure
            .hint(
                ctx.own_hint()
                    .or_else(|| action_hint(ctx, action, &response))
                    .or_else(|| ctx.step_hint()),
            )
            .into());
    }
    if !action.save.is_empty() {
        let json = response.json().unwrap_or(Value::Null);
        for (name, pointer) in &action.save {
            match json.pointer(pointer) {
                Some(v) => ctx.set_var(name, v.clone()),
                None => {
                    return Err(Failure::new(
                        format!("{label}: saving `{name}`"),
                        format!("the response to have {pointer}"),
                        show_body(&response),
                    )
                    .into());
                }
            }
        }
    }
    Ok(())
}

/// Sends `request` (`label` says what it is: `GET /api/health`). A request that got no answer is a
/// judgement of the live system, as a check that does not hold: the app may be starting,
/// restarting or jammed, and `eventually` asks again. A request that cannot be made is an error.
pub async fn send(http: &HttpClient, label: &str, request: &Request) -> Done<Response> {
    http.send(request).await.map_err(|e| match e {
        HttpError::NoAnswer(why) => {
            Problem::Check(Failure::new(label, "an answer from the app", why))
        }
        HttpError::Invalid(why) => Problem::Error(anyhow::anyhow!(why)),
    })
}

/// `token` is the header the app reads its token from, and the session's token.
fn build_request(
    action: &HttpAction,
    base_url: &str,
    token: Option<(&str, &str)>,
) -> Result<Request> {
    if !action.path.starts_with('/') {
        bail!("the path `{}` must start with /", action.path);
    }
    let mut url = reqwest::Url::parse(&format!("{base_url}{}", action.path))
        .map_err(|e| anyhow::anyhow!("`{base_url}{}` is not a URL: {e}", action.path))?;
    if !action.query.is_empty() {
        let mut pairs = url.query_pairs_mut();
        for (k, v) in &action.query {
            pairs.append_pair(k, &v.to_string());
        }
    }
    let mut headers: Vec<(String, String)> = action
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if action.token {
        let (header, token) = token.ok_or_else(|| {
            anyhow::anyhow!(
                "this request sends the session's token (`token: true`), but lab.yaml names no \
                 `app.token_header` to send it in"
            )
        })?;
        headers.push((header.into(), token.into()));
    }
    let body = match (&action.json, &action.body) {
        (Some(_), Some(_)) => bail!("an http action has both `json` and `body`; give one"),
        (Some(json), None) => {
            if !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                headers.push(("content-type".into(), "application/json".into()));
            }
            Some(serde_json::to_vec(json)?)
        }
        (None, Some(body)) => Some(body.clone().into_bytes()),
        (None, None) => None,
    };
    Ok(Request {
        method: action.method.to_ascii_uppercase(),
        url: url.to_string(),
        headers,
        body,
        timeout: action
            .timeout
            .as_ref()
            .map(Dur::get)
            .unwrap_or(DEFAULT_TIMEOUT),
    })
}

fn judge_response(action: &HttpAction, response: &Response, label: &str) -> Result<(), Failure> {
    let expect = &action.expect;
    match expect.status {
        Some(status) if response.status != status => {
            return Err(Failure::new(
                format!("{label}: status"),
                status.to_string(),
                format!("{} {}", response.status, show_body(response)),
            ));
        }
        None if !(200..300).contains(&response.status) => {
            return Err(Failure::new(
                format!("{label}: status"),
                "a 2xx status",
                format!("{} {}", response.status, show_body(response)),
            ));
        }
        _ => {}
    }
    if let Some(min) = &expect.min_latency
        && response.elapsed < min.get()
    {
        return Err(Failure::new(
            format!("{label}: response time"),
            format!("at least {} ms", min.get().as_millis()),
            format!("{} ms", response.elapsed.as_millis()),
        ));
    }
    if let Some(max) = &expect.max_latency
        && response.elapsed > max.get()
    {
        return Err(Failure::new(
            format!("{label}: response time"),
            format!("at most {} ms", max.get().as_millis()),
            format!("{} ms", response.elapsed.as_millis()),
        ));
    }
    for (name, matcher) in &expect.headers {
        let actual = response
            .headers
            .get(name.as_str())
            .and_then(|v| v.to_str().ok())
            .map(|s| Value::String(s.to_string()));
        if let Err(expected) = judge(matcher, actual.as_ref()) {
            return Err(Failure::new(
                format!("{label}: header {name}"),
                expected,
                show_actual(actual.as_ref()),
            ));
        }
    }
    let text = response.text();
    for needle in &expect.body_contains {
        if !text.contains(needle.as_str()) {
            return Err(Failure::new(
                format!("{label}: body"),
                format!("to contain {needle:?}"),
                show_body(response),
            ));
        }
    }
    if !expect.json.is_empty() {
        let Some(json) = response.json() else {
            return Err(Failure::new(
                format!("{label}: body"),
                "JSON",
                show_body(response),
            ));
        };
        for (pointer, matcher) in &expect.json {
            let actual = json.pointer(pointer);
            if let Err(expected) = judge(matcher, actual) {
                return Err(Failure::new(
                    format!("{label}: {pointer}"),
                    expected,
                    show_actual(actual),
                ));
            }
        }
    }
    Ok(())
}

/// What usually explains a surprising status from the lab's app (its `status_hints` in lab.yaml).
fn action_hint(ctx: &Context, action: &HttpAction, response: &Response) -> Option<String> {
    ctx.app()
        .status_hints
        .iter()
        .find(|h| {
            h.status == response.status
                && h.path_prefix
                    .as_deref()
                    .is_none_or(|prefix| action.path.starts_with(prefix))
        })
        .map(|h| h.hint.clone())
}

fn show_body(response: &Response) -> String {
    let text = response.text();
    let text = text.trim();
    if text.is_empty() {
        "(empty body)".into()
    } else if text.len() > 300 {
        format!("{}…", &text[..text.floor_char_boundary(300)])
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(yaml: &str) -> HttpAction {
        crate::lab::yaml::parse(yaml, std::path::Path::new("test.yaml")).unwrap()
    }

    #[test]
    fn request_encodes_query_and_sets_token() {
        let a = action("{path: /x, query: {q: 'a b&c'}, token: true}");
        let r = build_request(&a, "http://127.0.0.1:1", Some(("x-app-key", "t0k"))).unwrap();
        assert_eq!(r.url, "http://127.0.0.1:1/x?q=a+b%26c");
        assert!(r.headers.contains(&("x-app-key".into(), "t0k".into())));
        // Without a header to send it in, a token request says what lab.yaml lacks.
        let e = build_request(&a, "http://127.0.0.1:1", None).unwrap_err();
        assert!(format!("{e}").contains("app.token_header"), "{e}");
    }
}
