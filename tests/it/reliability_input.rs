//! Bad input to the lab app: a corpus of crafted requests, built from a table, sent as raw bytes
//! over TCP (so nothing normalises a path, a header or a method on the way) to the app as a local
//! process and in a container. Every request must get its documented status (lab-app/README.md,
//! "Errors and the order of checks") with the JSON error body; afterwards the app is healthy, holds
//! no memory and has written no capture. And a wrong token is refused the same way whatever its
//! length or how much of it is right (the timing is measured and printed for docs/RELIABILITY.md,
//! not asserted).

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use futures_util::TryStreamExt;
use lab_runner::env::Environment;
use lab_runner::lab::InspectorMode;
use serde_json::Value;
use support::{EnvGuard, docker_client_or_skip, docker_shared, repo_root};

/// The right token: 32 characters, mixed case, so an upper-cased copy is a wrong one.
const TOKEN: &str = "LabToken0123456789abcdefGHIJKLmn";
/// Long enough to be refused as "not configured" (fewer than 16 characters).
const SHORT_TOKEN: &str = "short-token";
/// 16 KiB: the documented body limit.
const BODY_LIMIT: usize = 16 * 1024;
/// The memory-leak cap the corpus runs under: any accepted `mb` above 1 is refused with 409, so no
/// row can retain anything.
const RETAIN_CAP_MB: &str = "1";

// ---------------------------------------------------------------------------------------------
// The app's configurations, and where it runs.

/// How the app is configured for a group of rows (each guard branch needs its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Config {
    /// LAB_ENABLE=true with a good token: the bulk of the corpus.
    Lab,
    /// LAB_ENABLE unset: every lab route is an unknown path.
    Disabled,
    /// LAB_ENABLE=true with a token shorter than 16 characters: lab routes fail closed (503).
    ShortToken,
    /// NODE_ENV=production without LAB_ALLOW_PROD: lab routes answer 403 after the token.
    Production,
}

impl Config {
    const ALL: [Config; 4] = [
        Config::Lab,
        Config::Disabled,
        Config::ShortToken,
        Config::Production,
    ];

    fn env(self) -> BTreeMap<String, String> {
        let pairs: &[(&str, &str)] = match self {
            // NODE_ENV=development: any other (or none) is production for the app's guard.
            Config::Lab => &[
                ("NODE_ENV", "development"),
                ("LAB_ENABLE", "true"),
                ("LAB_TOKEN", TOKEN),
                ("LAB_MAX_RETAINED_MB", RETAIN_CAP_MB),
            ],
            Config::Disabled => &[("NODE_ENV", "development"), ("LAB_TOKEN", TOKEN)],
            Config::ShortToken => &[
                ("NODE_ENV", "development"),
                ("LAB_ENABLE", "true"),
                ("LAB_TOKEN", SHORT_TOKEN),
            ],
            Config::Production => &[
                ("NODE_ENV", "production"),
                ("LAB_ENABLE", "true"),
                ("LAB_TOKEN", TOKEN),
                ("LAB_MAX_RETAINED_MB", RETAIN_CAP_MB),
            ],
        };
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

/// The app as a local `node` process on a free loopback port, its output drained (the access log
/// is written synchronously to a pipe: an unread pipe would stall the app).
struct NodeApp {
    child: Child,
    addr: SocketAddr,
    artifacts: tempfile::TempDir,
    stderr: Arc<Mutex<String>>,
}

impl NodeApp {
    fn start(config: Config) -> Result<NodeApp> {
        let artifacts = tempfile::tempdir()?;
        let mut child = Command::new("node")
            .arg(repo_root().join("lab-app/src/server.js"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PORT", "0")
            .env("HOST", "127.0.0.1")
            .env("LAB_ARTIFACT_DIR", artifacts.path())
            .envs(config.env())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("`node` (20 or newer) must be on the PATH")?;
        let stderr = Arc::new(Mutex::new(String::new()));
        let err_pipe = child.stderr.take().expect("piped stderr");
        let err_log = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err_pipe).lines().map_while(Result::ok) {
                err_log.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let addr = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                bail!(
                    "the app exited before listening: {}",
                    stderr.lock().unwrap()
                );
            };
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let addr: String = rest.chars().take_while(|c| *c != '"').collect();
                break addr.parse().context("the address in the listening line")?;
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Ok(NodeApp {
            child,
            addr,
            artifacts,
            stderr,
        })
    }

    /// The files the app wrote (heap snapshots, CPU profiles).
    fn artifacts(&self) -> Vec<String> {
        std::fs::read_dir(self.artifacts.path())
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for NodeApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP.

/// One response as read off the wire.
#[derive(Debug, Clone)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Sends `request` on a fresh connection and reads until the server closes it (every corpus row
/// asks for that, or is answered with `Connection: close`); returns every response it sent, in
/// order, interim 1xx answers left out.
fn exchange(addr: SocketAddr, request: &[u8], head: bool) -> Result<Vec<Response>> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    // A refused body is not read to its end, and the server may close before it is all sent.
    let _ = stream.write_all(request);
    let mut bytes = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            // A reset after the answer (the rest of an oversized body was never read) is normal.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !bytes.is_empty() => {
                break;
            }
            Err(e) => {
                return Err(anyhow!(e)
                    .context(format!("reading the answer ({} bytes so far)", bytes.len())));
            }
        }
    }
    parse_responses(&bytes, head)
}

/// Splits `bytes` into responses (Content-Length framed; HEAD answers have no body).
fn parse_responses(mut bytes: &[u8], head: bool) -> Result<Vec<Response>> {
    let mut responses = Vec::new();
    while !bytes.is_empty() {
        let end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| {
                anyhow!(
                    "no complete response head in {:?}",
                    String::from_utf8_lossy(bytes)
                )
            })?;
        let head_text = String::from_utf8_lossy(&bytes[..end]).into_owned();
        let mut lines = head_text.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow!("bad status line {status_line:?}"))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        bytes = &bytes[end + 4..];
        if (100..200).contains(&status) {
            continue;
        }
        let length = if head {
            0
        } else {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .map(|(_, v)| v.parse::<usize>())
                .transpose()?
                .ok_or_else(|| anyhow!("a response without Content-Length: {head_text}"))?
        };
        if bytes.len() < length {
            bail!("the body was cut short: {} of {length} bytes", bytes.len());
        }
        responses.push(Response {
            status,
            headers,
            body: bytes[..length].to_vec(),
        });
        bytes = &bytes[length..];
    }
    Ok(responses)
}

/// A request as bytes: `Host` and `Connection: close` unless the row says otherwise.
#[derive(Clone)]
struct Req {
    method: String,
    target: String,
    version: &'static str,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    host: bool,
    close: bool,
    content_length: bool,
}

fn req(method: &str, target: &str) -> Req {
    Req {
        method: method.to_string(),
        target: target.to_string(),
        version: "HTTP/1.1",
        headers: Vec::new(),
        body: Vec::new(),
        host: true,
        close: true,
        content_length: true,
    }
}

impl Req {
    fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Req {
        self.headers
            .push((name.to_string(), value.as_ref().to_vec()));
        self
    }

    fn token(self) -> Req {
        self.header("x-lab-token", TOKEN)
    }

    fn json(self, body: impl AsRef<[u8]>) -> Req {
        self.header("Content-Type", "application/json").body(body)
    }

    fn body(mut self, body: impl AsRef<[u8]>) -> Req {
        self.body = body.as_ref().to_vec();
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = format!("{} {} {}\r\n", self.method, self.target, self.version).into_bytes();
        if self.host {
            out.extend_from_slice(b"Host: lab\r\n");
        }
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        if self.content_length && !self.body.is_empty() {
            out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        }
        if self.close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

// ---------------------------------------------------------------------------------------------
// The corpus.

/// What one response must be.
#[derive(Debug, Clone)]
struct Expect {
    status: u16,
    /// The JSON error code; None for a success.
    error: Option<&'static str>,
    /// The `Allow` header a 405 names.
    allow: Option<&'static str>,
}

fn ok(status: u16) -> Expect {
    Expect {
        status,
        error: None,
        allow: None,
    }
}

fn err(status: u16, error: &'static str) -> Expect {
    Expect {
        status,
        error: Some(error),
        allow: None,
    }
}

fn not_allowed(allow: &'static str) -> Expect {
    Expect {
        status: 405,
        error: Some("method_not_allowed"),
        allow: Some(allow),
    }
}

/// One crafted request and what the app must answer (several answers for pipelined requests).
struct Row {
    config: Config,
    class: &'static str,
    label: String,
    request: Vec<u8>,
    head: bool,
    expect: Vec<Expect>,
}

struct Corpus(Vec<Row>);

impl Corpus {
    fn add(&mut self, config: Config, class: &'static str, label: String, r: Req, e: Expect) {
        let head = r.method == "HEAD";
        self.0.push(Row {
            config,
            class,
            label,
            request: r.bytes(),
            head,
            expect: vec![e],
        });
    }

    fn raw(&mut self, config: Config, class: &'static str, label: &str, raw: &[u8], e: Expect) {
        self.0.push(Row {
            config,
            class,
            label: label.to_string(),
            request: raw.to_vec(),
            head: false,
            expect: vec![e],
        });
    }
}

/// A route: its path, its method, and its parameter with the range.
#[derive(Clone, Copy)]
struct Route {
    path: &'static str,
    method: &'static str,
    lab: bool,
    param: Option<(&'static str, u64, u64)>,
}

const ROUTES: [Route; 8] = [
    Route {
        path: "/api/health",
        method: "GET",
        lab: false,
        param: None,
    },
    Route {
        path: "/api/metrics",
        method: "GET",
        lab: false,
        param: None,
    },
    Route {
        path: "/api/lab/status",
        method: "GET",
        lab: true,
        param: None,
    },
    Route {
        path: "/api/lab/event-loop-jam",
        method: "POST",
        lab: true,
        param: Some(("ms", 1, 60000)),
    },
    Route {
        path: "/api/lab/memory-leak",
        method: "POST",
        lab: true,
        param: Some(("mb", 1, 1024)),
    },
    Route {
        path: "/api/lab/memory-clear",
        method: "POST",
        lab: true,
        param: None,
    },
    Route {
        path: "/api/lab/heap-snapshot",
        method: "POST",
        lab: true,
        param: None,
    },
    Route {
        path: "/api/lab/cpu-profile",
        method: "POST",
        lab: true,
        param: Some(("seconds", 1, 120)),
    },
];

fn lab_routes() -> impl Iterator<Item = Route> {
    ROUTES.into_iter().filter(|r| r.lab)
}

fn param_routes() -> impl Iterator<Item = (Route, &'static str, u64, u64)> {
    ROUTES
        .into_iter()
        .filter_map(|r| r.param.map(|(name, min, max)| (r, name, min, max)))
}

/// `{"ms":1}` padded with JSON whitespace to exactly `size` bytes.
fn padded(json: &str, size: usize) -> Vec<u8> {
    let (head, tail) = json.split_at(json.len() - 1);
    let mut out = head.as_bytes().to_vec();
    out.resize(size - tail.len(), b' ');
    out.extend_from_slice(tail.as_bytes());
    assert_eq!(out.len(), size);
    out
}

/// A body each POST lab route accepts without doing anything lasting (or that is refused only by
/// its parameter check), for the rows about bodies and content types.
fn harmless_body(route: &Route) -> &'static str {
    match route.path {
        "/api/lab/event-loop-jam" => r#"{"ms":1}"#,
        // Over the 1 MiB cap: 409, nothing retained.
        "/api/lab/memory-leak" => r#"{"mb":2}"#,
        "/api/lab/memory-clear" => "{}",
        // Refused by the parameter check, after the body was read: no capture.
        _ => r#"{"nope":1}"#,
    }
}

/// What [`harmless_body`] gets once the body itself is accepted.
fn harmless_outcome(route: &Route) -> Expect {
    match route.path {
        "/api/lab/event-loop-jam" | "/api/lab/memory-clear" => ok(200),
        "/api/lab/memory-leak" => err(409, "retention_cap_reached"),
        _ => err(400, "unknown_parameter"),
    }
}

fn corpus() -> Corpus {
    use Config::*;
    let mut c = Corpus(Vec::new());
    let methods = [
        "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE",
    ];

    // Successes, so the table also proves what is accepted.
    c.add(
        Lab,
        "accepted",
        "GET /api/health".into(),
        req("GET", "/api/health"),
        ok(200),
    );
    c.add(
        Lab,
        "accepted",
        "GET /api/metrics".into(),
        req("GET", "/api/metrics"),
        ok(200),
    );
    c.add(
        Lab,
        "accepted",
        "GET /api/lab/status".into(),
        req("GET", "/api/lab/status").token(),
        ok(200),
    );
    c.add(
        Lab,
        "accepted",
        "jam ms=1 (query)".into(),
        req("POST", "/api/lab/event-loop-jam?ms=1").token(),
        ok(200),
    );
    c.add(
        Lab,
        "accepted",
        "jam ms=1 (body)".into(),
        req("POST", "/api/lab/event-loop-jam")
            .token()
            .json(r#"{"ms":1}"#),
        ok(200),
    );
    c.add(
        Lab,
        "accepted",
        "memory-clear".into(),
        req("POST", "/api/lab/memory-clear").token(),
        ok(200),
    );
    c.add(
        Lab,
        "accepted",
        "health ignores its query".into(),
        req("GET", "/api/health?ms=abc&x"),
        ok(200),
    );
    c.add(
        Lab,
        "accepted",
        "health ignores a body".into(),
        req("GET", "/api/health").body("not json"),
        ok(200),
    );
    c.add(
        Lab,
        "accepted",
        "the token header's name in capitals".into(),
        req("GET", "/api/lab/status").header("X-LAB-TOKEN", TOKEN),
        ok(200),
    );
    c.add(
        Lab,
        "accepted",
        "the token with spaces around it (HTTP trims them)".into(),
        req("GET", "/api/lab/status").header("x-lab-token", format!("   {TOKEN}   ")),
        ok(200),
    );
    c.add(
        Lab,
        "accepted",
        "Content-Type with a charset".into(),
        req("POST", "/api/lab/event-loop-jam")
            .token()
            .header("Content-Type", "application/json; charset=utf-8")
            .body(r#"{"ms":1}"#),
        ok(200),
    );
    c.add(
        Lab,
        "accepted",
        "Content-Type in capitals".into(),
        req("POST", "/api/lab/event-loop-jam")
            .token()
            .header("Content-Type", "APPLICATION/JSON")
            .body(r#"{"ms":1}"#),
        ok(200),
    );
    c.add(
        Lab,
        "accepted",
        "a chunked JSON body".into(),
        {
            let mut r = req("POST", "/api/lab/event-loop-jam")
                .token()
                .header("Content-Type", "application/json")
                .header("Transfer-Encoding", "chunked");
            r.content_length = false;
            r.body("8\r\n{\"ms\":1}\r\n0\r\n\r\n")
        },
        ok(200),
    );
    c.add(
        Lab,
        "accepted",
        "an empty body needs no content type".into(),
        req("POST", "/api/lab/memory-clear")
            .token()
            .header("Content-Length", "0"),
        ok(200),
    );
    c.add(
        Lab,
        "accepted",
        "memory-leak over the cap (nothing retained)".into(),
        req("POST", "/api/lab/memory-leak?mb=2").token(),
        err(409, "retention_cap_reached"),
    );
    c.add(
        Lab,
        "accepted",
        "memory-leak at the top of its range (over the cap)".into(),
        req("POST", "/api/lab/memory-leak?mb=1024").token(),
        err(409, "retention_cap_reached"),
    );
    c.add(
        Lab,
        "accepted",
        "memory-leak by default (64, over the cap)".into(),
        req("POST", "/api/lab/memory-leak").token(),
        err(409, "retention_cap_reached"),
    );

    // Wrong methods: 405 naming the right one, before any token is looked at.
    for route in ROUTES {
        for method in methods.iter().filter(|m| **m != route.method) {
            c.add(
                Lab,
                "wrong method",
                format!("{method} {}", route.path),
                req(method, route.path),
                not_allowed(route.method),
            );
        }
        c.add(
            Lab,
            "wrong method",
            format!("CONNECT {}", route.path),
            req("CONNECT", route.path),
            not_allowed(route.method),
        );
        if route.lab {
            let wrong = if route.method == "GET" { "POST" } else { "GET" };
            c.add(
                Lab,
                "wrong method",
                format!(
                    "{wrong} {} with a wrong token (405 comes first)",
                    route.path
                ),
                req(wrong, route.path).header("x-lab-token", "wrong-wrong-wrong-wrong"),
                not_allowed(route.method),
            );
        }
    }
    c.add(
        Lab,
        "wrong method",
        "a lower-case method".into(),
        req("get", "/api/health"),
        err(400, "bad_request"),
    );
    c.add(
        Lab,
        "wrong method",
        "an unknown method".into(),
        req("FOO", "/api/health"),
        err(400, "bad_request"),
    );
    c.add(
        Lab,
        "wrong method",
        "CONNECT host:port".into(),
        req("CONNECT", "example.com:443"),
        err(404, "not_found"),
    );

    // The token: missing, empty, wrong in every way, smuggled elsewhere.
    let mut upper = TOKEN.to_ascii_uppercase();
    if upper == TOKEN {
        upper.push('X');
    }
    let wrong_tokens: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("wrong, same length", "x".repeat(TOKEN.len()).into_bytes()),
        (
            "the right one but its last character",
            TOKEN.as_bytes()[..TOKEN.len() - 1].to_vec(),
        ),
        (
            "the right one and one more character",
            format!("{TOKEN}x").into_bytes(),
        ),
        ("one character", b"L".to_vec()),
        ("4 KiB", "L".repeat(4096).into_bytes()),
        ("the right one in capitals", upper.into_bytes()),
        (
            "the right one twice (comma-joined)",
            format!("{TOKEN}, {TOKEN}").into_bytes(),
        ),
        (
            "non-ASCII bytes",
            b"\xff\xfe\xc3\xa9token-token-token".to_vec(),
        ),
    ];
    for route in lab_routes() {
        let refused = |e: &str| format!("{} {}: token {e}", route.method, route.path);
        c.add(
            Lab,
            "token",
            refused("missing"),
            req(route.method, route.path),
            err(401, "unauthorized"),
        );
        for (what, value) in &wrong_tokens {
            c.add(
                Lab,
                "token",
                refused(what),
                req(route.method, route.path).header("x-lab-token", value),
                err(401, "unauthorized"),
            );
        }
        c.add(
            Lab,
            "token",
            refused("sent twice, the first wrong"),
            req(route.method, route.path)
                .header("x-lab-token", "wrong")
                .token(),
            err(401, "unauthorized"),
        );
        c.add(
            Lab,
            "token",
            refused("in the query string"),
            req(route.method, &format!("{}?token={TOKEN}", route.path)),
            err(401, "unauthorized"),
        );
        c.add(
            Lab,
            "token",
            refused("as a bearer token"),
            req(route.method, route.path).header("Authorization", format!("Bearer {TOKEN}")),
            err(401, "unauthorized"),
        );
        c.add(
            Lab,
            "token",
            refused("under another header name"),
            req(route.method, route.path).header("x-lab-tokens", TOKEN),
            err(401, "unauthorized"),
        );
    }

    // Parameters in the query string: anything but a plain decimal integer in range.
    for (route, name, min, max) in param_routes() {
        let mut values: Vec<(String, String)> = [
            ("empty", String::new()),
            ("zero", "0".into()),
            ("negative", "-1".into()),
            ("a plus sign", "%2B1".into()),
            ("a raw plus (a space once decoded)", "+1".into()),
            ("a leading zero", "01".into()),
            ("a float", "1.5".into()),
            ("a float that is whole", "1.0".into()),
            ("hex", "0x10".into()),
            ("binary", "0b1".into()),
            ("an exponent", "1e3".into()),
            ("an upper-case exponent", "1E1".into()),
            ("a leading space", "%201".into()),
            ("a trailing space", "1%20".into()),
            ("letters", "abc".into()),
            ("NaN", "NaN".into()),
            ("Infinity", "Infinity".into()),
            ("one over the maximum", (max + 1).to_string()),
            ("one under the minimum", (min - 1).to_string()),
            ("huge", "99999999999999999999999".into()),
            ("400 digits", "9".repeat(400)),
            ("a list", "1,2".into()),
            ("an Arabic-Indic digit", "%D9%A1".into()),
            ("a NUL", "1%00".into()),
            ("true", "true".into()),
            ("null", "null".into()),
            ("an underscore separator", "1_0".into()),
            ("an encoded emoji", "%F0%9F%98%80".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        values.push(("bare name, no `=`".into(), "<bare>".into()));
        for (what, value) in values {
            let target = if value == "<bare>" {
                format!("{}?{name}", route.path)
            } else {
                format!("{}?{name}={value}", route.path)
            };
            c.add(
                Lab,
                "query parameter",
                format!("{} {name}: {what}", route.path),
                req("POST", &target).token(),
                err(400, "invalid_parameter"),
            );
        }
        for (what, query) in [
            ("repeated", format!("{name}={min}&{name}={min}")),
            (
                "repeated, different values",
                format!("{name}={min}&{name}={max}"),
            ),
            ("repeated empty", format!("{name}=&{name}=")),
        ] {
            c.add(
                Lab,
                "repeated parameter",
                format!("{} {name} {what}", route.path),
                req("POST", &format!("{}?{query}", route.path)).token(),
                err(400, "invalid_parameter"),
            );
        }
        c.add(
            Lab,
            "repeated parameter",
            format!("{} {name} in the query and the body", route.path),
            req("POST", &format!("{}?{name}={min}", route.path))
                .token()
                .json(format!("{{\"{name}\":{min}}}")),
            err(400, "invalid_parameter"),
        );
        c.add(
            Lab,
            "repeated parameter",
            format!(
                "{} {name} twice in the body (JSON keeps the last, -5)",
                route.path
            ),
            req("POST", route.path)
                .token()
                .json(format!("{{\"{name}\":0,\"{name}\":-5}}")),
            err(400, "invalid_parameter"),
        );

        // In a JSON body: only a JSON integer in range.
        for (what, value) in [
            ("a string", format!("\"{min}\"")),
            ("an empty string", "\"\"".into()),
            ("true", "true".into()),
            ("false", "false".into()),
            ("null", "null".into()),
            ("a float", "1.5".into()),
            ("negative", "-1".into()),
            ("zero", "0".into()),
            ("negative zero", "-0".into()),
            ("one over the maximum", (max + 1).to_string()),
            ("past 2^53", "9007199254740993".into()),
            ("an overflowing exponent", "1e400".into()),
            ("a tiny exponent", "1e-5".into()),
            ("an array", format!("[{min}]")),
            ("an object", format!("{{\"value\":{min}}}")),
        ] {
            c.add(
                Lab,
                "body parameter",
                format!("{} {{\"{name}\": {what}}}", route.path),
                req("POST", route.path)
                    .token()
                    .json(format!("{{\"{name}\":{value}}}")),
                err(400, "invalid_parameter"),
            );
        }
    }

    // Unknown parameters, on every lab route.
    for route in lab_routes() {
        let known = route.param.map(|p| p.0);
        for query in [
            "foo=1",
            "__proto__=1",
            "toString=1",
            "hasOwnProperty=1",
            "%ZZ=1",
            "=1",
        ] {
            c.add(
                Lab,
                "unknown parameter",
                format!("{} {} ?{query}", route.method, route.path),
                req(route.method, &format!("{}?{query}", route.path)).token(),
                err(400, "unknown_parameter"),
            );
        }
        if let Some(name) = known {
            c.add(
                Lab,
                "unknown parameter",
                format!("{} {name} in capitals", route.path),
                req(
                    route.method,
                    &format!("{}?{}=1", route.path, name.to_ascii_uppercase()),
                )
                .token(),
                err(400, "unknown_parameter"),
            );
            c.add(
                Lab,
                "unknown parameter",
                format!(
                    "{} a known and an unknown (unknown is named first)",
                    route.path
                ),
                req(route.method, &format!("{}?{name}=1&foo=1", route.path)).token(),
                err(400, "unknown_parameter"),
            );
        } else {
            c.add(
                Lab,
                "unknown parameter",
                format!("{} {} ?ms=1 (takes none)", route.method, route.path),
                req(route.method, &format!("{}?ms=1", route.path)).token(),
                err(400, "unknown_parameter"),
            );
        }
        for body in [
            r#"{"foo":1}"#,
            r#"{"__proto__":{"ms":1}}"#,
            r#"{"constructor":1}"#,
        ] {
            c.add(
                Lab,
                "unknown parameter",
                format!("{} {} body {body}", route.method, route.path),
                req(route.method, route.path).token().json(body),
                err(400, "unknown_parameter"),
            );
        }
    }

    // Bodies: at and over the limit, framing, content types, invalid JSON.
    for route in lab_routes().filter(|r| r.method == "POST") {
        let name = route.path;
        let harmless = harmless_body(&route);
        c.add(
            Lab,
            "body size",
            format!("{name}: exactly 16 KiB"),
            req("POST", name).token().json(padded(harmless, BODY_LIMIT)),
            harmless_outcome(&route),
        );
        c.add(
            Lab,
            "body size",
            format!("{name}: 16 KiB + 1"),
            req("POST", name)
                .token()
                .json(padded(harmless, BODY_LIMIT + 1)),
            err(413, "payload_too_large"),
        );
        c.add(
            Lab,
            "body size",
            format!("{name}: 1 MiB"),
            req("POST", name)
                .token()
                .json(padded(harmless, 1024 * 1024)),
            err(413, "payload_too_large"),
        );
        c.add(
            Lab,
            "body size",
            format!("{name}: a declared length over the limit, no body sent"),
            req("POST", name)
                .token()
                .header("Content-Type", "application/json")
                .header("Content-Length", "16385"),
            err(413, "payload_too_large"),
        );
        c.add(
            Lab,
            "body size",
            format!("{name}: a declared length of 10^15"),
            req("POST", name)
                .token()
                .header("Content-Type", "application/json")
                .header("Content-Length", "1000000000000000"),
            err(413, "payload_too_large"),
        );
        let mut chunked = req("POST", name)
            .token()
            .header("Content-Type", "application/json")
            .header("Transfer-Encoding", "chunked");
        chunked.content_length = false;
        let mut growing = Vec::new();
        for _ in 0..20 {
            growing.extend_from_slice(format!("400\r\n{}\r\n", " ".repeat(1024)).as_bytes());
        }
        c.add(
            Lab,
            "body size",
            format!("{name}: chunked, growing past 16 KiB, never ended"),
            chunked.body(growing),
            err(413, "payload_too_large"),
        );

        for (what, content_type) in [
            ("text/plain", Some("text/plain")),
            ("form-encoded", Some("application/x-www-form-urlencoded")),
            ("no Content-Type", None),
            ("application/jsonx", Some("application/jsonx")),
            (
                "application/json-patch+json",
                Some("application/json-patch+json"),
            ),
            ("an empty Content-Type", Some("")),
        ] {
            let mut r = req("POST", name).token().body(harmless);
            if let Some(t) = content_type {
                r = r.header("Content-Type", t);
            }
            c.add(
                Lab,
                "content type",
                format!("{name}: a JSON body sent as {what}"),
                r,
                err(415, "unsupported_media_type"),
            );
        }
        for (what, body) in [
            ("an unclosed object", b"{".to_vec()),
            ("a missing value", br#"{"ms":}"#.to_vec()),
            ("single quotes", b"{'ms':1}".to_vec()),
            ("a trailing comma", br#"{"ms":1,}"#.to_vec()),
            ("two objects", br#"{}{}"#.to_vec()),
            ("NaN", br#"{"ms":NaN}"#.to_vec()),
            ("invalid UTF-8", b"\xff\xfe{}".to_vec()),
            ("a NUL byte", b"{\x00}".to_vec()),
            ("an array", b"[1]".to_vec()),
            ("a string", br#""ms""#.to_vec()),
            ("null", b"null".to_vec()),
            ("a number", b"1".to_vec()),
            ("whitespace only", b"   ".to_vec()),
        ] {
            c.add(
                Lab,
                "invalid JSON",
                format!("{name}: {what}"),
                req("POST", name).token().json(body),
                err(400, "invalid_json"),
            );
        }
    }
    c.add(
        Lab,
        "body size",
        "GET status with a body over the limit".into(),
        req("GET", "/api/lab/status")
            .token()
            .json(padded("{}", BODY_LIMIT + 1)),
        err(413, "payload_too_large"),
    );

    // Paths: nothing is decoded or resolved, so each of these is an unknown path.
    for path in [
        "/",
        "/api",
        "/api/",
        "/api/health/",
        "/API/HEALTH",
        "/api/Health",
        "/api/health/..",
        "/api/lab/../health",
        "/api/lab/status/../../health",
        "/./api/health",
        "//api/health",
        "/api//health",
        "/api/health;x",
        "/api/health%00",
        "/api/%68ealth",
        "/api/health%2F",
        "/api%2Fhealth",
        "/%2e%2e/api/health",
        "/api/health#fragment",
        "/api/h%C3%A9alth",
        "/api/%F0%9F%98%80",
        "/api/lab/status%20",
        "/api/lab/statu",
        "/api/lab/status.json",
        "/api/lab/",
        "/api/lab",
        "/api/metrics/../lab/status",
        "/api/health\\",
        "*",
        "http://127.0.0.1/api/health",
        "/api/lab/status/",
        "/..%2f..%2fetc/passwd",
        "/api/lab/event-loop-jam/../memory-leak",
    ] {
        c.add(
            Lab,
            "odd path",
            format!("GET {path}"),
            req("GET", path).token(),
            err(404, "not_found"),
        );
    }
    c.add(
        Lab,
        "odd path",
        "POST to a lab route's path with `..` (the token alone does not help)".into(),
        req("POST", "/api/lab/../lab/event-loop-jam?ms=1").token(),
        err(404, "not_found"),
    );
    c.add(
        Lab,
        "odd path",
        "an 8 KiB path".into(),
        req("GET", &format!("/{}", "a".repeat(8192))),
        err(404, "not_found"),
    );
    c.add(
        Lab,
        "odd path",
        "an 8 KiB query on health".into(),
        req("GET", &format!("/api/health?{}", "q".repeat(8192))),
        ok(200),
    );
    c.add(
        Lab,
        "odd path",
        "a 17 KiB path".into(),
        req("GET", &format!("/{}", "a".repeat(17 * 1024))),
        err(431, "headers_too_large"),
    );
    c.raw(
        Lab,
        "odd path",
        "a raw UTF-8 path",
        "GET /api/héalth HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n".as_bytes(),
        err(400, "bad_request"),
    );
    c.raw(
        Lab,
        "odd path",
        "a raw DEL byte in the path",
        b"GET /api/health\x7f HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n",
        err(400, "bad_request"),
    );
    c.raw(
        Lab,
        "odd path",
        "a raw 0xff in the query",
        b"GET /api/health?\xff HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n",
        err(400, "bad_request"),
    );
    c.raw(
        Lab,
        "odd path",
        "a space inside the path",
        b"GET /api/ health HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n",
        err(400, "bad_request"),
    );
    c.raw(
        Lab,
        "odd path",
        "a raw tab inside the path",
        b"GET /api/\thealth HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n",
        err(400, "bad_request"),
    );

    // Header tricks and HTTP framing.
    let raw_rows: Vec<(&str, Vec<u8>, Expect)> = vec![
        ("HTTP/1.1 without Host", b"GET /api/health HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(), err(400, "bad_request")),
        ("HTTP/1.0 without Host", b"GET /api/health HTTP/1.0\r\n\r\n".to_vec(), ok(200)),
        ("two Host headers", b"GET /api/health HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n".to_vec(), ok(200)),
        ("Expect: 100-continue", b"GET /api/health HTTP/1.1\r\nHost: lab\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n".to_vec(), ok(200)),
        ("an Expect the server cannot meet", b"GET /api/health HTTP/1.1\r\nHost: lab\r\nExpect: teapot\r\nConnection: close\r\n\r\n".to_vec(), err(417, "expectation_failed")),
        ("Content-Length and Transfer-Encoding", b"POST /api/lab/memory-clear HTTP/1.1\r\nHost: lab\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n".to_vec(), err(400, "bad_request")),
        ("two different Content-Lengths", b"POST /api/lab/memory-clear HTTP/1.1\r\nHost: lab\r\nContent-Length: 2\r\nContent-Length: 3\r\nConnection: close\r\n\r\n{}".to_vec(), err(400, "bad_request")),
        ("a negative Content-Length", b"POST /api/lab/memory-clear HTTP/1.1\r\nHost: lab\r\nContent-Length: -1\r\nConnection: close\r\n\r\n".to_vec(), err(400, "bad_request")),
        ("a Content-Length that is not a number", b"POST /api/lab/memory-clear HTTP/1.1\r\nHost: lab\r\nContent-Length: abc\r\nConnection: close\r\n\r\n".to_vec(), err(400, "bad_request")),
        // The body is parsed after the route's checks: without the token, 401 comes first.
        ("Transfer-Encoding: gzip, no token", b"POST /api/lab/memory-clear HTTP/1.1\r\nHost: lab\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\n".to_vec(), err(401, "unauthorized")),
        ("Transfer-Encoding: gzip", format!("POST /api/lab/memory-clear HTTP/1.1\r\nHost: lab\r\nx-lab-token: {TOKEN}\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\n").into_bytes(), err(400, "bad_request")),
        ("a bad chunk size, no token", b"POST /api/lab/memory-clear HTTP/1.1\r\nHost: lab\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n".to_vec(), err(401, "unauthorized")),
        ("a bad chunk size", format!("POST /api/lab/memory-clear HTTP/1.1\r\nHost: lab\r\nx-lab-token: {TOKEN}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{{}}\r\n0\r\n\r\n").into_bytes(), err(400, "bad_request")),
        ("a request target starting with a backslash", b"GET \\api\\health HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n".to_vec(), err(400, "bad_request")),
        ("a NUL in a header value", b"GET /api/health HTTP/1.1\r\nHost: lab\r\nX-A: a\x00b\r\nConnection: close\r\n\r\n".to_vec(), err(400, "bad_request")),
        ("a CR alone in a header value", b"GET /api/health HTTP/1.1\r\nHost: lab\r\nX-A: a\rb\r\nConnection: close\r\n\r\n".to_vec(), err(400, "bad_request")),
        ("a space in a header name", b"GET /api/health HTTP/1.1\r\nHost: lab\r\nX A: 1\r\nConnection: close\r\n\r\n".to_vec(), err(400, "bad_request")),
        ("a space before the colon", b"GET /api/lab/status HTTP/1.1\r\nHost: lab\r\nx-lab-token : LabToken0123456789abcdefGHIJKLmn\r\nConnection: close\r\n\r\n".to_vec(), err(400, "bad_request")),
        ("a folded header line", b"GET /api/health HTTP/1.1\r\nHost: lab\r\nX-A: a\r\n b\r\nConnection: close\r\n\r\n".to_vec(), err(400, "bad_request")),
        ("bare LF line ends", b"GET /api/health HTTP/1.1\nHost: lab\nConnection: close\n\n".to_vec(), err(400, "bad_request")),
        ("a 17 KiB header", format!("GET /api/health HTTP/1.1\r\nHost: lab\r\nX-Big: {}\r\nConnection: close\r\n\r\n", "a".repeat(17 * 1024)).into_bytes(), err(431, "headers_too_large")),
        ("a 17 KiB token", format!("GET /api/lab/status HTTP/1.1\r\nHost: lab\r\nx-lab-token: {}\r\nConnection: close\r\n\r\n", "a".repeat(17 * 1024)).into_bytes(), err(431, "headers_too_large")),
        ("500 small headers", {
            let mut r = b"GET /api/health HTTP/1.1\r\nHost: lab\r\n".to_vec();
            for i in 0..500 {
                r.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
            }
            r.extend_from_slice(b"Connection: close\r\n\r\n");
            r
        }, ok(200)),
        ("bytes over 0x7f in a header value", b"GET /api/health HTTP/1.1\r\nHost: lab\r\nX-A: \xff\xfe\r\nConnection: close\r\n\r\n".to_vec(), ok(200)),
        ("Upgrade: websocket", b"GET /api/health HTTP/1.1\r\nHost: lab\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n\r\n".to_vec(), ok(200)),
        ("an HTTP/2.0 request line", b"GET /api/health HTTP/2.0\r\nHost: lab\r\nConnection: close\r\n\r\n".to_vec(), ok(200)),
        ("HTTP/9.9", b"GET /api/health HTTP/9.9\r\nHost: lab\r\nConnection: close\r\n\r\n".to_vec(), err(400, "bad_request")),
        ("the HTTP/2 connection preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(), err(400, "bad_request")),
        ("a TLS ClientHello (https to the http port)", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(), err(400, "bad_request")),
        ("garbage", b"hello there\r\n\r\n".to_vec(), err(400, "bad_request")),
        ("no request target", b"GET HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n".to_vec(), err(400, "bad_request")),
    ];
    for (label, raw, expect) in raw_rows {
        c.raw(Lab, "header trick", label, &raw, expect);
    }
    // Pipelining: two requests in one write, answered in order.
    c.0.push(Row {
        config: Lab,
        class: "header trick",
        label: "two pipelined requests".into(),
        request: b"GET /api/health HTTP/1.1\r\nHost: lab\r\n\r\nGET /api/nope HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n".to_vec(),
        head: false,
        expect: vec![ok(200), err(404, "not_found")],
    });
    c.0.push(Row {
        config: Lab,
        class: "header trick",
        label: "a good request pipelined after a bad one is never read".into(),
        request: b"FOO / HTTP/1.1\r\nHost: lab\r\n\r\nGET /api/health HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n".to_vec(),
        head: false,
        expect: vec![err(400, "bad_request")],
    });

    // The lab disabled: every lab route, whatever is sent, is an unknown path.
    for route in lab_routes() {
        let wrong = if route.method == "GET" { "POST" } else { "GET" };
        for (what, r) in [
            ("no token", req(route.method, route.path)),
            ("the right token", req(route.method, route.path).token()),
            ("a wrong method", req(wrong, route.path).token()),
            ("CONNECT", req("CONNECT", route.path)),
            (
                "a bad parameter",
                req(route.method, &format!("{}?ms=abc", route.path)).token(),
            ),
            (
                "a body over the limit",
                req(route.method, route.path)
                    .token()
                    .json(padded("{}", BODY_LIMIT + 1)),
            ),
        ] {
            c.add(
                Disabled,
                "lab disabled",
                format!("{} {}: {what}", route.method, route.path),
                r,
                err(404, "not_found"),
            );
        }
    }
    c.add(
        Disabled,
        "lab disabled",
        "health still answers".into(),
        req("GET", "/api/health"),
        ok(200),
    );
    c.add(
        Disabled,
        "lab disabled",
        "metrics still answer".into(),
        req("GET", "/api/metrics"),
        ok(200),
    );

    // A token too short to use: 503 (fail closed) after the method check, whatever token is sent.
    for route in lab_routes() {
        let wrong = if route.method == "GET" { "POST" } else { "GET" };
        for (what, r) in [
            ("no token", req(route.method, route.path)),
            (
                "the configured (short) token",
                req(route.method, route.path).header("x-lab-token", SHORT_TOKEN),
            ),
            ("a long token", req(route.method, route.path).token()),
        ] {
            c.add(
                ShortToken,
                "token not configured",
                format!("{} {}: {what}", route.method, route.path),
                r,
                err(503, "lab_token_not_configured"),
            );
        }
        c.add(
            ShortToken,
            "token not configured",
            format!("{wrong} {}", route.path),
            req(wrong, route.path),
            not_allowed(route.method),
        );
    }

    // Production without LAB_ALLOW_PROD: 401 for a wrong token first, then 403.
    for route in lab_routes() {
        let wrong = if route.method == "GET" { "POST" } else { "GET" };
        c.add(
            Production,
            "production",
            format!("{} {}: the right token", route.method, route.path),
            req(route.method, route.path).token(),
            err(403, "lab_disabled_in_production"),
        );
        c.add(
            Production,
            "production",
            format!("{} {}: a wrong token", route.method, route.path),
            req(route.method, route.path).header("x-lab-token", "x".repeat(TOKEN.len())),
            err(401, "unauthorized"),
        );
        c.add(
            Production,
            "production",
            format!("{} {}: no token", route.method, route.path),
            req(route.method, route.path),
            err(401, "unauthorized"),
        );
        c.add(
            Production,
            "production",
            format!(
                "{} {}: the right token and a bad parameter (403 first)",
                route.method, route.path
            ),
            req(route.method, &format!("{}?x=1", route.path)).token(),
            err(403, "lab_disabled_in_production"),
        );
        c.add(
            Production,
            "production",
            format!("{wrong} {}", route.path),
            req(wrong, route.path).token(),
            not_allowed(route.method),
        );
    }
    c
}

// ---------------------------------------------------------------------------------------------
// Running it.

/// Sends each row and checks its answers; returns the problems (empty when all is well) and the
/// count of answers per status.
fn run_rows(addr: SocketAddr, rows: &[&Row]) -> (Vec<String>, BTreeMap<u16, usize>) {
    let mut problems = Vec::new();
    let mut statuses = BTreeMap::new();
    for row in rows {
        let responses = match exchange(addr, &row.request, row.head) {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("[{}] {}: no answer: {e:#}", row.class, row.label));
                continue;
            }
        };
        if responses.len() != row.expect.len() {
            problems.push(format!(
                "[{}] {}: {} answer(s), expected {}: {:?}",
                row.class,
                row.label,
                responses.len(),
                row.expect.len(),
                responses.iter().map(|r| r.status).collect::<Vec<_>>()
            ));
            continue;
        }
        for (response, expect) in responses.iter().zip(&row.expect) {
            *statuses.entry(response.status).or_default() += 1;
            if let Err(e) = judge(response, expect, row.head) {
                problems.push(format!("[{}] {}: {e}", row.class, row.label));
            }
        }
    }
    (problems, statuses)
}

/// Whether `response` is what `expect` says: the status, and for an error the exact JSON shape.
fn judge(response: &Response, expect: &Expect, head: bool) -> std::result::Result<(), String> {
    let body = String::from_utf8_lossy(&response.body);
    if response.status != expect.status {
        return Err(format!(
            "status {} (expected {}): {body}",
            response.status, expect.status
        ));
    }
    if body.contains(TOKEN) {
        return Err(format!("the answer echoes the token: {body}"));
    }
    let content_type = response.header("content-type").unwrap_or_default();
    let is_metrics = content_type.starts_with("text/plain");
    if !is_metrics && content_type != "application/json; charset=utf-8" {
        return Err(format!("Content-Type {content_type:?}"));
    }
    if let Some(allow) = expect.allow
        && response.header("allow") != Some(allow)
    {
        return Err(format!(
            "Allow {:?} (expected {allow})",
            response.header("allow")
        ));
    }
    if head {
        // No body to read: the headers must still announce a JSON one.
        return match response.header("content-length").map(str::parse::<usize>) {
            Some(Ok(n)) if n > 0 => Ok(()),
            other => Err(format!("HEAD answered with Content-Length {other:?}")),
        };
    }
    let Some(code) = expect.error else {
        return if is_metrics || response.json().is_some_and(|j| j.is_object()) {
            Ok(())
        } else {
            Err(format!("a success that is not a JSON object: {body}"))
        };
    };
    let json = response
        .json()
        .ok_or_else(|| format!("the error body is not JSON: {body}"))?;
    let object = json
        .as_object()
        .ok_or_else(|| format!("the error body is not an object: {body}"))?;
    let keys: BTreeSet<&str> = object.keys().map(String::as_str).collect();
    if keys != BTreeSet::from(["error", "detail"]) {
        return Err(format!("the error body has keys {keys:?}: {body}"));
    }
    if object["error"] != code {
        return Err(format!(
            "error {} (expected {code}): {body}",
            object["error"]
        ));
    }
    if object["detail"].as_str().is_none_or(str::is_empty) {
        return Err(format!("no detail: {body}"));
    }
    Ok(())
}

/// GET `target` with the right token on a fresh connection.
fn get(addr: SocketAddr, target: &str) -> Result<Response> {
    let mut responses = exchange(addr, &req("GET", target).token().bytes(), false)?;
    responses
        .pop()
        .ok_or_else(|| anyhow!("no answer to GET {target}"))
}

/// After a configuration's rows: the app answers health, holds nothing, captured nothing.
fn after_rows(addr: SocketAddr, config: Config) -> Result<()> {
    let health = get(addr, "/api/health")?;
    if health.status != 200 {
        bail!("health answers {} after the corpus", health.status);
    }
    if config == Config::Lab {
        let status = get(addr, "/api/lab/status")?;
        let json = status.json().context("the status is JSON")?;
        for (pointer, want) in [
            ("/retainedBytes", Value::from(0)),
            ("/retainedBufferCount", Value::from(0)),
            ("/cpuProfileInProgress", Value::from(false)),
            ("/heapSnapshotInProgress", Value::from(false)),
            ("/lastCpuProfile", Value::Null),
            ("/lastHeapSnapshot", Value::Null),
        ] {
            if json.pointer(pointer) != Some(&want) {
                bail!(
                    "after the corpus {pointer} is {:?}, not {want}",
                    json.pointer(pointer)
                );
            }
        }
    }
    let metrics = get(addr, "/api/metrics")?;
    let text = String::from_utf8_lossy(&metrics.body);
    let scrape = lab_runner::util::prometheus::parse(&text).context("the metrics parse")?;
    for (name, want) in [
        ("lab_retained_bytes", 0.0),
        ("lab_heap_snapshots_total", 0.0),
        ("lab_cpu_profile_in_progress", 0.0),
    ] {
        let selector =
            lab_runner::util::prometheus::Selector::parse(name).map_err(|e| anyhow!(e))?;
        let value = scrape.value(&selector).map_err(|e| anyhow!(e))?;
        if value != want {
            bail!("after the corpus {name} is {value}, not {want}");
        }
    }
    Ok(())
}

/// The corpus's figures, printed for docs/RELIABILITY.md.
fn report(backend: &str, rows: usize, statuses: &BTreeMap<u16, usize>, took: Duration) {
    let mut classes: BTreeMap<&str, usize> = BTreeMap::new();
    for row in corpus().0 {
        *classes.entry(row.class).or_default() += 1;
    }
    println!(
        "FIGURE bad-input {backend}: {rows} requests in {:.1} s, answers by status {statuses:?}",
        took.as_secs_f64()
    );
    println!("FIGURE bad-input classes: {classes:?}");
}

#[test]
fn every_crafted_request_gets_its_documented_answer_from_a_local_process() {
    let corpus = corpus();
    assert!(
        corpus.0.len() >= 300,
        "the corpus has only {} requests",
        corpus.0.len()
    );
    let started = Instant::now();
    let mut problems = Vec::new();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for config in Config::ALL {
        let app = NodeApp::start(config).expect("the app starts");
        let rows: Vec<&Row> = corpus.0.iter().filter(|r| r.config == config).collect();
        let (found, counts) = run_rows(app.addr, &rows);
        problems.extend(found.into_iter().map(|p| format!("{config:?}: {p}")));
        for (status, n) in counts {
            *statuses.entry(status).or_default() += n;
        }
        if let Err(e) = after_rows(app.addr, config) {
            problems.push(format!("{config:?}: {e:#}"));
        }
        let written = app.artifacts();
        if !written.is_empty() {
            problems.push(format!("{config:?}: the app wrote {written:?}"));
        }
        let stderr = app.stderr.lock().unwrap().clone();
        if stderr.contains("unexpected error") {
            problems.push(format!(
                "{config:?}: the app logged an unexpected error:\n{stderr}"
            ));
        }
    }
    report("process", corpus.0.len(), &statuses, started.elapsed());
    assert!(
        problems.is_empty(),
        "{} of {} requests were not answered as documented:\n{}",
        problems.len(),
        corpus.0.len(),
        problems.join("\n")
    );
}

/// The files in the container's /tmp (where the app writes captures), through the archive API.
async fn container_tmp(app: &EnvGuard) -> Result<Vec<String>> {
    let (docker, name) = app.docker();
    let options = bollard::query_parameters::DownloadFromContainerOptionsBuilder::default()
        .path("/tmp")
        .build();
    let bytes: Vec<u8> = docker
        .download_from_container(&name, Some(options))
        .map_ok(|chunk| chunk.to_vec())
        .try_concat()
        .await?;
    let mut archive = tar::Archive::new(bytes.as_slice());
    let mut names = Vec::new();
    for entry in archive.entries()? {
        let path = entry?.path()?.to_string_lossy().into_owned();
        let inside = path.trim_start_matches("tmp").trim_matches('/');
        if !inside.is_empty() {
            names.push(inside.to_string());
        }
    }
    Ok(names)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_crafted_request_gets_its_documented_answer_from_a_container() -> Result<()> {
    let Some(_docker) = docker_client_or_skip("crafted requests to a container").await else {
        return Ok(());
    };
    let _lock = docker_shared();
    let corpus = Arc::new(corpus());
    let started = Instant::now();
    let mut app = EnvGuard::start_with_env(
        repo_root().join("lab-app"),
        "reliability-input",
        InspectorMode::None,
        256,
        Config::Lab.env(),
    )
    .await?;
    let mut problems = Vec::new();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for config in Config::ALL {
        if config != Config::Lab {
            app.env_mut().recreate(config.env()).await?;
            lab_runner::env::wait_healthy(app.env(), "/api/health", Duration::from_secs(30))
                .await?;
        }
        let addr = app.env().endpoints().app;
        let rows = corpus.clone();
        let (found, counts, after) = tokio::task::spawn_blocking(move || {
            let rows: Vec<&Row> = rows.0.iter().filter(|r| r.config == config).collect();
            let (found, counts) = run_rows(addr, &rows);
            (found, counts, after_rows(addr, config))
        })
        .await?;
        problems.extend(found.into_iter().map(|p| format!("{config:?}: {p}")));
        for (status, n) in counts {
            *statuses.entry(status).or_default() += n;
        }
        if let Err(e) = after {
            problems.push(format!("{config:?}: {e:#}"));
        }
        let logs = app.env().logs().await?;
        if logs.contains("unexpected error") {
            problems.push(format!(
                "{config:?}: the app logged an unexpected error:\n{logs}"
            ));
        }
        let written = container_tmp(&app).await?;
        if !written.is_empty() {
            problems.push(format!("{config:?}: the app wrote {written:?} in /tmp"));
        }
    }
    let state = app.env().state().await?;
    report("container", corpus.0.len(), &statuses, started.elapsed());
    app.teardown().await?;
    assert_eq!(state, lab_runner::env::AppState::Running);
    assert!(
        problems.is_empty(),
        "{} of {} requests were not answered as documented:\n{}",
        problems.len(),
        corpus.0.len(),
        problems.join("\n")
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Token comparison.

/// Sends `request` on a kept-alive connection and reads one response (Content-Length framed).
fn keep_alive_exchange(stream: &mut TcpStream, request: &[u8]) -> Result<Response> {
    stream.write_all(request)?;
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            bail!("the server closed the connection");
        }
        bytes.extend_from_slice(&buf[..n]);
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if bytes.len() >= end + 4 + length {
                return parse_responses(&bytes, false)?
                    .pop()
                    .ok_or_else(|| anyhow!("no response"));
            }
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[test]
fn a_wrong_token_is_refused_identically_whatever_its_length_or_prefix() {
    let app = NodeApp::start(Config::Lab).expect("the app starts");
    let classes: Vec<(&str, String)> = vec![
        ("wrong, same length", "x".repeat(TOKEN.len())),
        (
            "right but the last character",
            format!("{}x", &TOKEN[..TOKEN.len() - 1]),
        ),
        (
            "wrong first character, rest right",
            format!("x{}", &TOKEN[1..]),
        ),
        ("1 character", "x".into()),
        ("16 characters", "x".repeat(16)),
        ("1024 characters", "x".repeat(1024)),
    ];
    const ROUNDS: usize = 400;
    let mut stream = TcpStream::connect(app.addr).expect("connect");
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let requests: Vec<Vec<u8>> = classes
        .iter()
        .map(|(_, token)| {
            let mut r = req("GET", "/api/lab/status").header("x-lab-token", token);
            r.close = false;
            r.bytes()
        })
        .collect();
    // Warm up (JIT, connection), then interleave the classes so drift hits them all alike.
    for request in &requests {
        for _ in 0..50 {
            keep_alive_exchange(&mut stream, request).expect("warm-up");
        }
    }
    let mut latencies: Vec<Vec<Duration>> = vec![Vec::new(); classes.len()];
    let mut bodies: Vec<BTreeSet<Vec<u8>>> = vec![BTreeSet::new(); classes.len()];
    let mut statuses: BTreeSet<u16> = BTreeSet::new();
    for _ in 0..ROUNDS {
        for (i, request) in requests.iter().enumerate() {
            let started = Instant::now();
            let response = keep_alive_exchange(&mut stream, request).expect("an answer");
            latencies[i].push(started.elapsed());
            statuses.insert(response.status);
            bodies[i].insert(response.body);
        }
    }
    for ((name, _), times) in classes.iter().zip(&mut latencies) {
        times.sort();
        println!(
            "FIGURE token-timing {name:<34} median {:>6.1} µs  p10 {:>6.1} µs  p90 {:>6.1} µs  (n={ROUNDS})",
            percentile(times, 0.5).as_secs_f64() * 1e6,
            percentile(times, 0.1).as_secs_f64() * 1e6,
            percentile(times, 0.9).as_secs_f64() * 1e6,
        );
    }
    assert_eq!(
        statuses,
        BTreeSet::from([401]),
        "every wrong token gets 401"
    );
    let all: BTreeSet<&Vec<u8>> = bodies.iter().flatten().collect();
    assert_eq!(
        all.len(),
        1,
        "the refusals differ between the kinds of wrong token: {:?}",
        all.iter()
            .map(|b| String::from_utf8_lossy(b))
            .collect::<Vec<_>>()
    );
    let body = String::from_utf8_lossy(all.into_iter().next().unwrap());
    assert!(body.contains("\"unauthorized\""), "{body}");
}
