//! Template rendering with minijinja: instructions, hints and every string inside an action.
//!
//! Undefined variables are errors (strict mode): a guide never shows an empty `{{ token }}`.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, anyhow};
use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;

/// The variables a template sees: lab variables, session facts (`base_url`, `token`, ...) and values
/// saved by earlier actions.
pub type Vars = BTreeMap<String, Value>;

/// A minijinja environment set up the way every lab template is rendered.
pub struct Renderer {
    env: Environment<'static>,
}

impl Default for Renderer {
    fn default() -> Self {
        Self::new()
    }
}

impl Renderer {
    /// The functions templates can call besides the variables (see [`Renderer::for_app`]).
    pub const FUNCTIONS: &[&str] = &["source_line"];

    /// A renderer whose templates can also ask where things are in the lab app's source:
    /// `{{ source_line("src/lab/event-loop-jam.js", "blockEventLoop", "const deadline") }}` is the
    /// line of the first line containing `const deadline` inside that function (without the third
    /// argument: the function's first statement).
    pub fn for_app(app_dir: &std::path::Path) -> Self {
        let mut renderer = Self::new();
        let app_dir = app_dir.to_path_buf();
        renderer.env.add_function(
            "source_line",
            move |file: String,
                  function: String,
                  containing: Option<String>|
                  -> Result<usize, minijinja::Error> {
                let found = match &containing {
                    Some(needle) => {
                        super::app_source::locate_line(&app_dir, &file, &function, needle)
                    }
                    None => super::app_source::locate_function(&app_dir, &file, &function)
                        .map(|l| l.first_statement),
                };
                found.map_err(|e| {
                    minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string())
                })
            },
        );
        renderer
    }

    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .keep_trailing_newline(true)
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()
                .expect("the default delimiters are valid"),
        );
        // Markdown and shell, not HTML: never escape.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.add_filter("shell_quote", shell_quote);
        Renderer { env }
    }

    /// Renders one template string.
    pub fn render(&self, template: &str, vars: &Vars) -> Result<String> {
        if !template.contains("{{") && !template.contains("{%") {
            return Ok(template.to_string());
        }
        self.env
            .render_str(
                template,
                minijinja::Value::from(minijinja::value::Serde(vars)),
            )
            .map_err(|e| anyhow!(describe(&e)))
    }

    /// Renders a string that may stand for a typed value: a string that is exactly one `{{ expr }}`
    /// keeps the expression's type (`"{{ jam_ms }}"` becomes the number 1500), anything else renders
    /// to a string.
    pub fn render_value_str(&self, template: &str, vars: &Vars) -> Result<Value> {
        if let Some(expr) = single_expression(template) {
            let compiled = self
                .env
                .compile_expression(expr)
                .map_err(|e| anyhow!(describe(&e)))?;
            let value = compiled
                .eval(minijinja::Value::from(minijinja::value::Serde(vars)))
                .map_err(|e| anyhow!(describe(&e)))?;
            if value.is_undefined() {
                return Err(anyhow!("undefined value: {expr}"));
            }
            return serde_json::to_value(&value).context("a template value could not become JSON");
        }
        self.render(template, vars).map(Value::String)
    }

    /// The variables a template reads (top-level names only), or a syntax error.
    pub fn variables_used(&self, template: &str) -> Result<BTreeSet<String>, TemplateError> {
        if let Some(expr) = single_expression(template) {
            let compiled = self
                .env
                .compile_expression(expr)
                .map_err(|e| TemplateError::from(&e))?;
            return Ok(compiled.undeclared_variables(false).into_iter().collect());
        }
        let tmpl = self
            .env
            .template_from_str(template)
            .map_err(|e| TemplateError::from(&e))?;
        Ok(tmpl.undeclared_variables(false).into_iter().collect())
    }
}

/// A template syntax error with the line (1-based, within the template) where it is.
#[derive(Debug, Clone)]
pub struct TemplateError {
    pub line: Option<usize>,
    pub message: String,
}

impl From<&minijinja::Error> for TemplateError {
    fn from(e: &minijinja::Error) -> Self {
        TemplateError {
            line: e.line(),
            message: describe(e),
        }
    }
}

fn describe(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    }
}

/// `"{{ expr }}"` → `Some("expr")`, when the whole string is one expression.
fn single_expression(s: &str) -> Option<&str> {
    let inner = s.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}")).then(|| inner.trim())
}

/// `{{ path | shell_quote }}` — quote for a POSIX shell when needed.
fn shell_quote(value: String) -> String {
    lab_util::shell_lines::quote(&value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars() -> Vars {
        let mut v = Vars::new();
        v.insert("jam_ms".into(), json!(1500));
        v.insert("base_url".into(), json!("http://127.0.0.1:3001"));
        v
    }

    #[test]
    fn strict_undefined_is_an_error() {
        let err = Renderer::new().render("{{ nope }}", &vars()).unwrap_err();
        assert!(err.to_string().contains("undefined"), "{err}");
    }

    #[test]
    fn single_expression_keeps_its_type() {
        let r = Renderer::new();
        assert_eq!(
            r.render_value_str("{{ jam_ms }}", &vars()).unwrap(),
            json!(1500)
        );
        assert_eq!(
            r.render_value_str("{{ jam_ms * 2 }}", &vars()).unwrap(),
            json!(3000)
        );
        assert_eq!(
            r.render_value_str("ms={{ jam_ms }}", &vars()).unwrap(),
            json!("ms=1500")
        );
    }

    #[test]
    fn lists_the_variables_a_template_reads() {
        let used = Renderer::new()
            .variables_used("curl {{ base_url }}/x?ms={{ jam_ms }}")
            .unwrap();
        assert_eq!(
            used.into_iter().collect::<Vec<_>>(),
            vec!["base_url", "jam_ms"]
        );
    }

    #[test]
    fn source_line_reads_the_app_source() {
        let app = crate::app_source::tests::fixture_app();
        let r = Renderer::for_app(app.path());
        let line = r
            .render_value_str(r#"{{ source_line("src/lab/event-loop-jam.js", "blockEventLoop", "const deadline") }}"#, &vars())
            .unwrap();
        assert_eq!(line.as_u64(), Some(4), "{line}");
        let err = r
            .render(
                r#"{{ source_line("src/lab/event-loop-jam.js", "noSuchFunction") }}"#,
                &vars(),
            )
            .unwrap_err();
        assert!(
            err.to_string().contains("no function `noSuchFunction`"),
            "{err}"
        );
    }

    #[test]
    fn shell_quote_quotes_only_when_needed() {
        assert_eq!(shell_quote("abc-1".into()), "abc-1");
        assert_eq!(shell_quote("a b'c".into()), r"'a b'\''c'");
    }
}
