//! The Prometheus text exposition format (0.0.4): parsing a scrape and selecting series. Pure
//! text: the `metrics` checks read scrapes with it, and lint checks a lab's selectors with it.

use std::fmt;

/// One sample line: `name{label="value"} 1.5`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl fmt::Display for Sample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", series_name(&self.name, &self.labels))?;
        write!(f, " {}", self.value)
    }
}

fn series_name(name: &str, labels: &[(String, String)]) -> String {
    if labels.is_empty() {
        name.to_string()
    } else {
        let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        format!("{name}{{{}}}", inner.join(","))
    }
}

/// A parsed scrape.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    pub samples: Vec<Sample>,
    /// `# TYPE` declarations: metric family name → type.
    pub types: Vec<(String, String)>,
}

/// A problem in exposition text, with its 1-based line.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parses exposition text. Every non-comment line must be a valid sample; `# TYPE` must come before
/// the family's samples and appear once.
pub fn parse(text: &str) -> Result<Scrape, ParseError> {
    let mut scrape = Scrape::default();
    for (i, line) in text.lines().enumerate() {
        let at = i + 1;
        let err = |message: String| ParseError { line: at, message };
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.split_whitespace();
            if words.next() == Some("TYPE") {
                let name = words
                    .next()
                    .ok_or_else(|| err("TYPE without a metric name".into()))?;
                let kind = words
                    .next()
                    .ok_or_else(|| err(format!("TYPE of {name} without a type")))?;
                if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                    return Err(err(format!("unknown metric type `{kind}` for {name}")));
                }
                if scrape.types.iter().any(|(n, _)| n == name) {
                    return Err(err(format!("second TYPE line for {name}")));
                }
                if scrape.samples.iter().any(|s| family_of(&s.name, name)) {
                    return Err(err(format!("TYPE for {name} comes after its samples")));
                }
                scrape.types.push((name.to_string(), kind.to_string()));
            }
            continue;
        }
        scrape.samples.push(parse_sample(line).map_err(err)?);
    }
    Ok(scrape)
}

fn family_of(sample: &str, family: &str) -> bool {
    sample == family
        || ["_bucket", "_sum", "_count", "_total", "_created"]
            .iter()
            .any(|suffix| sample.strip_suffix(suffix) == Some(family))
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or_else(|| format!("sample without a value: `{line}`"))?;
    let name = &line[..name_end];
    if !valid_name(name) {
        return Err(format!("invalid metric name `{name}`"));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, remaining) = parse_labels(after)?;
        labels = parsed;
        rest = remaining;
    }
    let mut parts = rest.split_whitespace();
    let value_text = parts
        .next()
        .ok_or_else(|| format!("sample `{name}` has no value"))?;
    let value = parse_value(value_text).ok_or_else(|| {
        format!("sample `{name}` has value `{value_text}`, which is not a number")
    })?;
    if let Some(ts) = parts.next() {
        ts.parse::<i64>().map_err(|_| {
            format!("sample `{name}` has timestamp `{ts}`, which is not an integer")
        })?;
    }
    if parts.next().is_some() {
        return Err(format!(
            "sample `{name}` has text after its value and timestamp"
        ));
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parses `a="1",b="x\"y"}` (after the opening brace); returns the labels and what follows `}`.
type Labels = Vec<(String, String)>;

fn parse_labels(mut s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let eq = s.find('=').ok_or("label without `=`")?;
        let key = s[..eq].trim();
        if !valid_name(key) || key.contains(':') {
            return Err(format!("invalid label name `{key}`"));
        }
        s = s[eq + 1..].trim_start();
        s = s
            .strip_prefix('"')
            .ok_or_else(|| format!("label `{key}` value is not quoted"))?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, c)) => {
                        return Err(format!("label `{key}` has unknown escape `\\{c}`"));
                    }
                    None => return Err(format!("label `{key}` value is not closed")),
                },
                Some((_, c)) => value.push(c),
                None => return Err(format!("label `{key}` value is not closed")),
            }
        };
        labels.push((key.to_string(), value));
        s = s[end + 1..].trim_start();
        if let Some(rest) = s.strip_prefix(',') {
            s = rest;
        } else if !s.starts_with('}') {
            return Err("expected `,` or `}` after a label".into());
        }
    }
}

/// `name` or `name{label="value",...}`: picks series by name and a subset of labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    pub name: String,
    pub labels: Vec<(String, String)>,
}

impl Selector {
    pub fn parse(text: &str) -> Result<Selector, String> {
        let text = text.trim();
        let (name, labels) = match text.find('{') {
            None => (text, Vec::new()),
            Some(i) => {
                let (labels, rest) = parse_labels(&text[i + 1..])?;
                if !rest.trim().is_empty() {
                    return Err(format!("text after the labels in selector `{text}`"));
                }
                (&text[..i], labels)
            }
        };
        if !valid_name(name) {
            return Err(format!("invalid metric name `{name}` in selector `{text}`"));
        }
        Ok(Selector {
            name: name.to_string(),
            labels,
        })
    }

    pub fn matches(&self, sample: &Sample) -> bool {
        sample.name == self.name
            && self
                .labels
                .iter()
                .all(|(k, v)| sample.labels.iter().any(|(sk, sv)| sk == k && sv == v))
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&series_name(&self.name, &self.labels))
    }
}

impl Scrape {
    /// The one series `selector` picks. None or several is an error that lists what there is.
    pub fn value(&self, selector: &Selector) -> Result<f64, String> {
        let found: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| selector.matches(s))
            .collect();
        match found.as_slice() {
            [one] => Ok(one.value),
            [] => {
                let similar: Vec<String> = self
                    .samples
                    .iter()
                    .filter(|s| s.name == selector.name)
                    .take(5)
                    .map(|s| series_name(&s.name, &s.labels))
                    .collect();
                if similar.is_empty() {
                    Err(format!("the scrape has no metric named {}", selector.name))
                } else {
                    Err(format!(
                        "no series matches {selector}; there are: {}",
                        similar.join(", ")
                    ))
                }
            }
            many => Err(format!(
                "{selector} matches {} series ({}, ...); add labels to pick one",
                many.len(),
                many.iter()
                    .take(3)
                    .map(|s| series_name(&s.name, &s.labels))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP nodejs_heap_size_used_bytes Process heap size used from Node.js in bytes.\n\
# TYPE nodejs_heap_size_used_bytes gauge\n\
nodejs_heap_size_used_bytes 5242880\n\
# TYPE nodejs_heap_space_size_used_bytes gauge\n\
nodejs_heap_space_size_used_bytes{space=\"old\"} 100\n\
nodejs_heap_space_size_used_bytes{space=\"new\"} 7\n\
# TYPE http_request_duration_seconds histogram\n\
http_request_duration_seconds_bucket{le=\"+Inf\",method=\"GET\",route=\"/a \\\"b\\\"\",status=\"200\"} 3\n\
nodejs_eventloop_lag_max_seconds 1.52 1700000000000\n";

    #[test]
    fn parses_samples_labels_and_escapes() {
        let scrape = parse(TEXT).unwrap();
        assert_eq!(scrape.samples.len(), 5);
        assert_eq!(
            scrape.samples[3].labels[2],
            ("route".into(), "/a \"b\"".into())
        );
        let used = Selector::parse("nodejs_heap_space_size_used_bytes{space=\"old\"}").unwrap();
        assert_eq!(scrape.value(&used), Ok(100.0));
        assert_eq!(
            scrape.value(&Selector::parse("nodejs_eventloop_lag_max_seconds").unwrap()),
            Ok(1.52)
        );
    }

    #[test]
    fn ambiguous_and_missing_selectors_explain_themselves() {
        let scrape = parse(TEXT).unwrap();
        let all = Selector::parse("nodejs_heap_space_size_used_bytes").unwrap();
        assert!(scrape.value(&all).unwrap_err().contains("matches 2 series"));
        let missing = Selector::parse("nodejs_heap_space_size_used_bytes{space=\"code\"}").unwrap();
        assert!(scrape.value(&missing).unwrap_err().contains("there are:"));
        assert!(
            scrape
                .value(&Selector::parse("nope").unwrap())
                .unwrap_err()
                .contains("no metric named nope")
        );
    }

    #[test]
    fn rejects_malformed_lines_with_their_line_number() {
        assert_eq!(parse("a 1\nb{x=\"1} 2\n").unwrap_err().line, 2);
        assert!(
            parse("a one\n")
                .unwrap_err()
                .message
                .contains("not a number")
        );
        assert!(
            parse("a 1\n# TYPE a gauge\n")
                .unwrap_err()
                .message
                .contains("after its samples")
        );
        assert!(
            parse("1a 1\n")
                .unwrap_err()
                .message
                .contains("invalid metric name")
        );
    }
}
