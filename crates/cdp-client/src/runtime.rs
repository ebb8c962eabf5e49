//! `Runtime` domain: evaluating expressions in the inspected process.

use anyhow::{Result, anyhow};
use serde_json::{Value, json};

use super::Inspector;

impl Inspector {
    /// Evaluate `expression` in the global scope (awaiting a returned promise) and return its
    /// value as JSON. `undefined` becomes `null`; values JSON cannot hold (`NaN`, `-0`,
    /// `Infinity`, BigInt) become their text (`"NaN"`, `"10n"`). A thrown exception or a
    /// rejected promise is an error carrying the exception's text.
    pub async fn evaluate(&self, expression: &str) -> Result<Value> {
        let doing = || {
            format!(
                "evaluating `{}` in the inspected process",
                short(expression)
            )
        };
        let reply = self
            .call(
                "Runtime.evaluate",
                json!({
                    "expression": expression,
                    "returnByValue": true,
                    "awaitPromise": true,
                }),
            )
            .await
            .map_err(|e| anyhow::Error::new(e).context(doing()))?;
        if let Some(details) = reply.get("exceptionDetails") {
            return Err(anyhow!("{}: {}", doing(), exception_text(details)));
        }
        Ok(reply
            .get("result")
            .map(remote_object_to_json)
            .unwrap_or(Value::Null))
    }
}

/// The text of a CDP `ExceptionDetails`: the thrown value's description (`Error: boom\n    at …`)
/// or, for non-Error throws, its value, prefixed like Node's console prints it.
pub(crate) fn exception_text(details: &Value) -> String {
    let text = details
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or("Uncaught");
    let thrown = details.get("exception").map(|ex| {
        ex.get("description")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| match remote_object_to_json(ex) {
                Value::String(s) => s,
                other => other.to_string(),
            })
    });
    match thrown {
        Some(thrown) if !text.contains(&thrown) => format!("{text} {thrown}"),
        _ => text.to_string(),
    }
}

/// A CDP `RemoteObject` as plain JSON: primitives (and values returned by value) as themselves,
/// `undefined` as `null`, unserializable numbers and BigInts as their text, and anything held by
/// reference as `{"type": …, "subtype": …, "description": …}`.
pub(crate) fn remote_object_to_json(obj: &Value) -> Value {
    if let Some(value) = obj.get("value") {
        return value.clone();
    }
    if let Some(text) = obj.get("unserializableValue").and_then(Value::as_str) {
        return Value::String(text.to_string());
    }
    let kind = obj
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("undefined");
    let subtype = obj.get("subtype").and_then(Value::as_str);
    if kind == "undefined" || subtype == Some("null") {
        return Value::Null;
    }
    let mut out = serde_json::Map::new();
    out.insert("type".into(), Value::String(kind.to_string()));
    if let Some(subtype) = subtype {
        out.insert("subtype".into(), Value::String(subtype.to_string()));
    }
    if let Some(description) = obj.get("description") {
        out.insert("description".into(), description.clone());
    }
    Value::Object(out)
}

fn short(expression: &str) -> String {
    let one_line = expression.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 80 {
        let cut: String = one_line.chars().take(77).collect();
        format!("{cut}...")
    } else {
        one_line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_objects_become_plain_json() {
        assert_eq!(
            remote_object_to_json(&json!({"type": "number", "value": 2, "description": "2"})),
            json!(2)
        );
        assert_eq!(
            remote_object_to_json(&json!({"type": "undefined"})),
            Value::Null
        );
        assert_eq!(
            remote_object_to_json(&json!({"type": "object", "subtype": "null", "value": null})),
            Value::Null
        );
        assert_eq!(
            remote_object_to_json(
                &json!({"type": "number", "unserializableValue": "NaN", "description": "NaN"})
            ),
            json!("NaN")
        );
        assert_eq!(
            remote_object_to_json(&json!({
                "type": "object", "subtype": "array", "className": "Array",
                "description": "Array(3)", "objectId": "1.2.3"
            })),
            json!({"type": "object", "subtype": "array", "description": "Array(3)"})
        );
    }

    #[test]
    fn exception_text_prefers_the_description() {
        let details = json!({
            "text": "Uncaught",
            "exception": {"type": "object", "subtype": "error",
                          "description": "Error: boom\n    at <anonymous>:1:7"}
        });
        assert_eq!(
            exception_text(&details),
            "Uncaught Error: boom\n    at <anonymous>:1:7"
        );
        let thrown_string = json!({
            "text": "Uncaught",
            "exception": {"type": "string", "value": "plain"}
        });
        assert_eq!(exception_text(&thrown_string), "Uncaught plain");
    }

    #[test]
    fn long_expressions_are_shortened_in_messages() {
        assert_eq!(short("1 +\n  1"), "1 + 1");
        assert!(short(&"x".repeat(200)).ends_with("..."));
    }
}
