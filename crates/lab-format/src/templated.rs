//! Every string of the lab format that is a template, reached through the types themselves.
//!
//! [`Templated`] is implemented once per type of [`crate::model`], field by field (the
//! [`templated_struct!`] macro lists every field, so the compiler refuses a type whose new field
//! is not listed). It gives two things from one definition:
//!
//! - [`Templated::render`]: the value with each template rendered in place (no trip through JSON):
//!   a text field gets text; a value field (a matcher's operand, a JSON body) keeps the type of a
//!   string that is exactly one `{{ expr }}` (`"{{ jam_ms }}"` is the number 1500); a duration
//!   written as a template is read as a duration once rendered, or is an error.
//! - [`Templated::templates`]: each template with its path in the file (`check[1].http.path`),
//!   which lint checks and locates.
//!
//! A render error names the field it happened in (`expect: json: /pid: gt: undefined value ...`).

use std::collections::BTreeMap;

use anyhow::{Context, Result, anyhow};
use lab_util::duration::Dur;
use serde_json::Value;

use crate::model::*;
use crate::render::{Renderer, Vars};

/// A part of the lab format that may hold templates.
pub trait Templated: Sized {
    /// This value with every template in it rendered.
    fn render(&self, r: &Renderer, vars: &Vars) -> Result<Self>;
    /// Calls `found(path, template)` for every string in it that is rendered, `at` being its path.
    fn templates(&self, at: &str, found: &mut dyn FnMut(&str, &str));
}

/// `at.name`, or `name` at the top.
pub fn join(at: &str, name: &str) -> String {
    if at.is_empty() {
        name.to_string()
    } else {
        format!("{at}.{name}")
    }
}

impl Templated for String {
    fn render(&self, r: &Renderer, vars: &Vars) -> Result<Self> {
        r.render(self, vars)
    }
    fn templates(&self, at: &str, found: &mut dyn FnMut(&str, &str)) {
        found(at, self)
    }
}

impl Templated for Value {
    fn render(&self, r: &Renderer, vars: &Vars) -> Result<Self> {
        Ok(match self {
            Value::String(s) => r.render_value_str(s, vars)?,
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| v.render(r, vars).with_context(|| format!("[{i}]")))
                    .collect::<Result<_>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), v.render(r, vars).with_context(|| k.clone())?)))
                    .collect::<Result<_>>()?,
            ),
            other => other.clone(),
        })
    }
    fn templates(&self, at: &str, found: &mut dyn FnMut(&str, &str)) {
        match self {
            Value::String(s) => found(at, s),
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    v.templates(&format!("{at}[{i}]"), found);
                }
            }
            Value::Object(map) => {
                for (k, v) in map {
                    v.templates(&join(at, k), found);
                }
            }
            _ => {}
        }
    }
}

impl Templated for Dur {
    fn render(&self, r: &Renderer, vars: &Vars) -> Result<Self> {
        let Some(template) = self.template() else {
            return Ok(self.clone());
        };
        let text = r.render(template, vars)?;
        text.parse()
            .map_err(|e: String| anyhow!("`{template}` rendered to `{text}`: {e}"))
    }
    fn templates(&self, at: &str, found: &mut dyn FnMut(&str, &str)) {
        if let Some(template) = self.template() {
            found(at, template)
        }
    }
}

impl<T: Templated> Templated for Option<T> {
    fn render(&self, r: &Renderer, vars: &Vars) -> Result<Self> {
        self.as_ref().map(|v| v.render(r, vars)).transpose()
    }
    fn templates(&self, at: &str, found: &mut dyn FnMut(&str, &str)) {
        if let Some(v) = self {
            v.templates(at, found)
        }
    }
}

impl<T: Templated> Templated for Box<T> {
    fn render(&self, r: &Renderer, vars: &Vars) -> Result<Self> {
        Ok(Box::new((**self).render(r, vars)?))
    }
    fn templates(&self, at: &str, found: &mut dyn FnMut(&str, &str)) {
        (**self).templates(at, found)
    }
}

impl<T: Templated> Templated for Vec<T> {
    fn render(&self, r: &Renderer, vars: &Vars) -> Result<Self> {
        self.iter()
            .enumerate()
            .map(|(i, v)| v.render(r, vars).with_context(|| format!("[{i}]")))
            .collect()
    }
    fn templates(&self, at: &str, found: &mut dyn FnMut(&str, &str)) {
        for (i, v) in self.iter().enumerate() {
            v.templates(&format!("{at}[{i}]"), found);
        }
    }
}

/// Map values are rendered; keys (pointers, selectors, variable names) are not templates.
impl<T: Templated> Templated for BTreeMap<String, T> {
    fn render(&self, r: &Renderer, vars: &Vars) -> Result<Self> {
        self.iter()
            .map(|(k, v)| Ok((k.clone(), v.render(r, vars).with_context(|| k.clone())?)))
            .collect()
    }
    fn templates(&self, at: &str, found: &mut dyn FnMut(&str, &str)) {
        for (k, v) in self {
            v.templates(&join(at, k), found);
        }
    }
}

/// Types with no template in them.
macro_rules! plain {
    ($($ty:ty),* $(,)?) => {$(
        impl Templated for $ty {
            fn render(&self, _: &Renderer, _: &Vars) -> Result<Self> {
                Ok(self.clone())
            }
            fn templates(&self, _: &str, _: &mut dyn FnMut(&str, &str)) {}
        }
    )*};
}

plain!(bool, u16, u32, u64, f64, [u32; 2], ShareOf, Side);

/// [`Templated`] for a struct, field by field. Every field is listed (the struct literal does not
/// compile otherwise); `field as "name"` gives the name the file uses when it differs.
macro_rules! templated_struct {
    ($ty:ident { $($field:ident $(as $name:literal)?),* $(,)? }) => {
        impl Templated for $ty {
            fn render(&self, r: &Renderer, vars: &Vars) -> Result<Self> {
                Ok($ty {
                    $($field: self.$field.render(r, vars)
                        .with_context(|| templated_struct!(@name $field $($name)?))?,)*
                })
            }
            fn templates(&self, at: &str, found: &mut dyn FnMut(&str, &str)) {
                $(self.$field.templates(&join(at, templated_struct!(@name $field $($name)?)), found);)*
            }
        }
    };
    (@name $field:ident $name:literal) => { $name };
    (@name $field:ident) => { stringify!($field) };
}

templated_struct!(ShellAction {
    run,
    terminal,
    ready,
    interrupt,
    timeout
});
templated_struct!(InspectorDiscover {
    save,
    timeout,
    hint
});
templated_struct!(InspectorAttach { timeout });
templated_struct!(InspectorEvaluate {
    expression,
    expect,
    save,
    timeout,
    hint
});
templated_struct!(SourcePlace {
    file,
    function,
    line_containing
});
templated_struct!(InspectorPauseAt {
    at,
    trigger,
    timeout
});
templated_struct!(InspectorStep { timeout });
templated_struct!(InspectorEvaluateInFrame {
    expression,
    caller_of,
    expect,
    save,
    timeout,
    hint
});
templated_struct!(InspectorWatch { expression });
templated_struct!(InspectorPaused {
    function,
    file,
    line_containing,
    call_stack,
    save_caller,
    locals,
    save,
    timeout,
    hint,
});
templated_struct!(InspectorResume { timeout });
templated_struct!(InspectorProfile {
    during,
    to,
    save,
    timeout
});
templated_struct!(InspectorHeapSnapshot { to, save, timeout });
templated_struct!(InspectorHeapUsage {
    expect,
    save,
    timeout
});
templated_struct!(TunnelOpen { local, remote });
templated_struct!(AskAction {
    question,
    answer,
    tolerance,
    hint
});
templated_struct!(HttpAction {
    service,
    method,
    path,
    query,
    json,
    body,
    headers,
    token,
    timeout,
    expect,
    save,
    lasts,
    hint,
});
templated_struct!(HttpExpect {
    status,
    json,
    headers,
    body_contains,
    min_latency,
    max_latency
});
templated_struct!(MetricsAction {
    path,
    expect,
    save,
    timeout,
    hint
});
templated_struct!(RecreateSpec { env, unset, reset });
templated_struct!(WaitHealthy { timeout });
templated_struct!(LogsContain {
    service,
    text,
    regex,
    timeout,
    hint
});
templated_struct!(CommandAction { run, argv, side as "in", expect, save, timeout, hint });
templated_struct!(CommandExpect {
    exit,
    stdout,
    stderr,
    json,
    min_duration,
    max_duration
});
templated_struct!(TextExpect {
    contains,
    not_contains,
    regex
});
templated_struct!(FileCheck {
    path,
    exists,
    contains,
    not_contains,
    regex,
    hint
});
templated_struct!(PortWait {
    address,
    open,
    timeout,
    hint
});
templated_struct!(ArtifactAction {
    copy,
    to,
    save,
    timeout
});
templated_struct!(HeapDiffCheck {
    old,
    new,
    backing_store_delta,
    save,
    hint
});
templated_struct!(CpuprofileCheck {
    file,
    min_samples,
    function_share,
    save,
    hint
});
templated_struct!(FunctionShare {
    function,
    url_suffix,
    lines,
    at_least,
    of
});
templated_struct!(HeapsnapshotCheck {
    file,
    min_nodes,
    backing_store_bytes,
    save,
    hint
});
templated_struct!(EventuallyAction { timeout, interval, actions as "do", hint });
templated_struct!(MatchOps {
    eq,
    ne,
    gt,
    gte,
    lt,
    lte,
    contains,
    starts_with,
    exists,
    one_of
});

impl Templated for Scalar {
    fn render(&self, r: &Renderer, vars: &Vars) -> Result<Self> {
        Ok(match self {
            Scalar::Text(s) => Scalar::Text(r.render(s, vars)?),
            other => other.clone(),
        })
    }
    fn templates(&self, at: &str, found: &mut dyn FnMut(&str, &str)) {
        if let Scalar::Text(s) = self {
            found(at, s)
        }
    }
}

impl Templated for Matcher {
    fn render(&self, r: &Renderer, vars: &Vars) -> Result<Self> {
        Ok(match self {
            Matcher::Ops(ops) => Matcher::Ops(ops.render(r, vars)?),
            Matcher::Equals(v) => Matcher::Equals(v.render(r, vars)?),
        })
    }
    fn templates(&self, at: &str, found: &mut dyn FnMut(&str, &str)) {
        match self {
            Matcher::Ops(ops) => ops.templates(at, found),
            Matcher::Equals(v) => v.templates(at, found),
        }
    }
}

/// [`Templated`] for an enum, variant by variant: `Variant(inner) as "name"` for a variant that
/// holds a value, `Variant as "name"` for one that holds none.
macro_rules! templated_enum {
    ($ty:ident { $($variant:ident $(($inner:ident))? as $name:literal),* $(,)? }) => {
        impl Templated for $ty {
            fn render(&self, r: &Renderer, vars: &Vars) -> Result<Self> {
                Ok(match self {
                    $($ty::$variant $(($inner))? => templated_enum!(@render r vars $ty $variant $name $($inner)?),)*
                })
            }
            #[allow(unused_variables)]
            fn templates(&self, at: &str, found: &mut dyn FnMut(&str, &str)) {
                match self {
                    $($ty::$variant $(($inner))? => { $($inner.templates(&join(at, $name), found);)? })*
                }
            }
        }

        impl $ty {
            /// The name the file gives this kind (`pause_at`, `recreate`).
            #[allow(unused_variables)]
            pub fn kind_name(&self) -> &'static str {
                match self {
                    $($ty::$variant $(($inner))? => $name,)*
                }
            }
        }
    };
    (@render $r:ident $vars:ident $ty:ident $variant:ident $name:literal $inner:ident) => {
        $ty::$variant($inner.render($r, $vars).context($name)?)
    };
    (@render $r:ident $vars:ident $ty:ident $variant:ident $name:literal) => {
        $ty::$variant
    };
}

templated_enum!(Action {
    Http(a) as "http",
    Parallel(a) as "parallel",
    Sequence(a) as "sequence",
    Metrics(a) as "metrics",
    Container(a) as "container",
    Artifact(a) as "artifact",
    Analyze(a) as "analyze",
    Wait(a) as "wait",
    Eventually(a) as "eventually",
    Inspector(a) as "inspector",
    Tunnel(a) as "tunnel",
    Ask(a) as "ask",
    Shell(a) as "shell",
    Command(a) as "command",
    File(a) as "file",
    Port(a) as "port",
});

templated_enum!(InspectorAction {
    Discover(a) as "discover",
    Attach(a) as "attach",
    Detach as "detach",
    Evaluate(a) as "evaluate",
    PauseAt(a) as "pause_at",
    Paused(a) as "paused",
    StepOver(a) as "step_over",
    StepInto(a) as "step_into",
    StepOut(a) as "step_out",
    Watch(a) as "watch",
    EvaluateInFrame(a) as "evaluate_in_frame",
    Resume(a) as "resume",
    Profile(a) as "profile",
    HeapSnapshot(a) as "heap_snapshot",
    HeapUsage(a) as "heap_usage",
});

templated_enum!(TunnelAction {
    Open(a) as "open",
    Close as "close",
    Closed as "closed",
    InspectorReachable(a) as "inspector_reachable",
});

templated_enum!(ContainerAction {
    Recreate(a) as "recreate",
    Restart as "restart",
    WaitHealthy(a) as "wait_healthy",
    LogsContain(a) as "logs_contain",
    Signal(a) as "signal",
});

templated_enum!(AnalyzeAction {
    Cpuprofile(a) as "cpuprofile",
    Heapsnapshot(a) as "heapsnapshot",
    HeapDiff(a) as "heap_diff",
});

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars() -> Vars {
        Vars::from([
            ("jam_ms".to_string(), json!(1500)),
            ("base".to_string(), json!("http://127.0.0.1:3001")),
        ])
    }

    fn action(yaml: &str) -> Action {
        crate::yaml::parse(yaml, std::path::Path::new("step.yaml")).unwrap()
    }

    #[test]
    fn text_fields_get_text_and_value_fields_keep_the_expression_type() {
        let a = action(
            "http: {path: /jam, query: {ms: '{{ jam_ms }}'}, expect: {json: {/ms: {gte: '{{ jam_ms }}'}}}, lasts: '{{ jam_ms }}ms'}",
        );
        let Action::Http(h) = a.render(&Renderer::new(), &vars()).unwrap() else {
            panic!()
        };
        assert_eq!(h.query["ms"], Scalar::Text("1500".into()));
        let Matcher::Ops(ops) = &h.expect.json["/ms"] else {
            panic!()
        };
        assert_eq!(ops.gte, Some(json!(1500)));
        assert_eq!(
            h.lasts.unwrap().get(),
            std::time::Duration::from_millis(1500)
        );
    }

    #[test]
    fn an_undefined_variable_is_an_error_that_names_the_field() {
        let a = action("http: {path: /x, expect: {json: {/pid: {gt: '{{ nope }}'}}}}");
        let err = a.render(&Renderer::new(), &vars()).unwrap_err();
        let message = format!("{err:#}");
        assert!(
            message.starts_with("http: expect: json: /pid: gt:"),
            "{message}"
        );
        assert!(message.contains("nope"), "{message}");
    }

    #[test]
    fn a_duration_template_that_is_not_a_duration_is_an_error_not_zero() {
        let a = action("wait: '{{ base }}ms'");
        let err = a.render(&Renderer::new(), &vars()).unwrap_err();
        assert!(format!("{err:#}").contains("invalid duration"), "{err:#}");
    }

    #[test]
    fn templates_are_listed_with_their_path_in_the_file() {
        let a = action(
            "eventually: {timeout: 5s, do: [{http: {path: '/a/{{ x }}', headers: {h: '{{ y }}'}}}]}",
        );
        let mut found = Vec::new();
        a.templates("check[0]", &mut |path, text| {
            found.push((path.to_string(), text.to_string()))
        });
        assert!(
            found.contains(&(
                "check[0].eventually.do[0].http.path".into(),
                "/a/{{ x }}".into()
            )),
            "{found:?}"
        );
        assert!(
            found.contains(&(
                "check[0].eventually.do[0].http.headers.h".into(),
                "{{ y }}".into()
            )),
            "{found:?}"
        );
    }
}
