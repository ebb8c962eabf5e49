//! Durations as lab authors write them: `500ms`, `2s`, `1.5s`, `2m`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written with a unit. Serialises back to the same compact form.
///
/// In a lab file it may also be a template (`"{{ jam_ms - 500 }}ms"`): it is kept as text until the
/// action is rendered, and read as a duration then.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dur(pub Duration, Option<Box<str>>);

impl Dur {
    pub const fn from_millis(ms: u64) -> Self {
        Dur(Duration::from_millis(ms), None)
    }
    pub const fn from_secs(s: u64) -> Self {
        Dur(Duration::from_secs(s), None)
    }
    /// The duration. A duration written as a template is read only once rendered (the lab format's
    /// `Templated`); using one before is a bug of the runner, which stops here rather than count it
    /// as zero.
    pub fn get(&self) -> Duration {
        if let Some(template) = &self.1 {
            panic!("the duration `{template}` is a template that was used before it was rendered");
        }
        self.0
    }
    /// The template text, when this duration is still one.
    pub fn template(&self) -> Option<&str> {
        self.1.as_deref()
    }
}

impl From<Dur> for Duration {
    fn from(d: Dur) -> Duration {
        d.get()
    }
}

impl FromStr for Dur {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let t = text.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (number, unit) = t.split_at(split);
        let value: f64 = number.parse().map_err(|_| invalid(text))?;
        let millis = match unit.trim() {
            "ms" => value,
            "s" => value * 1_000.0,
            "m" | "min" => value * 60_000.0,
            _ => return Err(invalid(text)),
        };
        if !millis.is_finite() || !(0.0..=24.0 * 3_600_000.0).contains(&millis) {
            return Err(invalid(text));
        }
        Ok(Dur(
            Duration::from_micros((millis * 1_000.0).round() as u64),
            None,
        ))
    }
}

fn invalid(text: &str) -> String {
    format!("invalid duration '{text}': write a number with a unit, such as 500ms, 2s or 1m")
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(template) = &self.1 {
            return f.write_str(template);
        }
        let ms = self.0.as_millis();
        if ms >= 60_000 && ms.is_multiple_of(60_000) {
            write!(f, "{}m", ms / 60_000)
        } else if ms >= 1_000 && ms.is_multiple_of(1_000) {
            write!(f, "{}s", ms / 1_000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration with a unit, such as 500ms, 2s or 1m")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Dur, E> {
                if v.contains("{{") {
                    return Ok(Dur(Duration::ZERO, Some(v.into())));
                }
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Dur, E> {
                Err(E::custom(invalid(&v.to_string())))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Dur, E> {
                Err(E::custom(invalid(&v.to_string())))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Dur, E> {
                Err(E::custom(invalid(&v.to_string())))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl schemars::JsonSchema for Dur {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A duration with a unit (500ms, 2s, 1.5s, 2m), or a template giving one.",
            "pattern": "^\\s*([0-9]+(\\.[0-9]*)?|\\.[0-9]+)\\s*(ms|s|m|min)\\s*$|\\{\\{"
        })
    }
}

/// Formats an elapsed time the way the runner prints it everywhere: `0.412s`.
pub fn seconds(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_rejects_bare_numbers() {
        assert_eq!(
            "500ms".parse::<Dur>().unwrap().0,
            Duration::from_millis(500)
        );
        assert_eq!(
            "1.5s".parse::<Dur>().unwrap().0,
            Duration::from_millis(1500)
        );
        assert_eq!("2m".parse::<Dur>().unwrap().get(), Duration::from_secs(120));
        assert!("15".parse::<Dur>().unwrap_err().contains("with a unit"));
        assert!("2h".parse::<Dur>().is_err());
        assert!("-1s".parse::<Dur>().is_err());
    }

    #[test]
    fn displays_compactly() {
        assert_eq!(Dur::from_millis(1500).to_string(), "1500ms");
        assert_eq!(Dur::from_secs(2).to_string(), "2s");
        assert_eq!(Dur::from_secs(120).to_string(), "2m");
    }
}
