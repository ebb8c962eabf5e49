//! Headless Chromium for the tests that need a real browser: real Chrome DevTools opening a
//! `devtools://` URL (1.2, 3.4), and the browser guide of `start --web` / `demo --web`. Driven over
//! the Chrome DevTools Protocol with the runner's own CDP client.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use lab_runner::probe::inspector::Inspector;
use lab_runner::probe::inspector::Subscription;
use serde_json::{Value, json};

/// Real Chrome DevTools: headless Chromium, whose bundled DevTools frontend opens a `devtools://`
/// URL as a person's Chrome does (navigated over Chromium's own remote-debugging port; a URL given
/// on the command line is not navigated).
pub struct Chrome {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Chrome {
    pub fn start() -> Chrome {
        Chrome::start_sized(1280, 900)
    }

    /// Chromium with a window of `width` × `height` CSS pixels (a laptop's, a phone's).
    pub fn start_sized(width: u32, height: u32) -> Chrome {
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new("chromium")
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--window-size={width},{height}"))
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium runs (apt-get install chromium)");
        let file = profile.path().join("DevToolsActivePort");
        let started = Instant::now();
        let port = loop {
            if let Some(port) = std::fs::read_to_string(&file)
                .ok()
                .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()))
            {
                break port;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chromium did not open its remote-debugging port"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        Chrome {
            child,
            port,
            _profile: profile,
        }
    }

    /// A new tab, connected over CDP (not navigated yet).
    pub async fn tab(&self) -> Inspector {
        let out = Command::new("curl")
            .args(["-sS", "-X", "PUT"])
            .arg(format!(
                "http://127.0.0.1:{}/json/new?about:blank",
                self.port
            ))
            .output()
            .unwrap();
        let tab: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
            panic!(
                "chromium made no tab: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        let ws = tab["webSocketDebuggerUrl"].as_str().unwrap().to_string();
        let addr: std::net::SocketAddr = format!("127.0.0.1:{}", self.port).parse().unwrap();
        Inspector::connect(addr, &ws, Duration::from_secs(30))
            .await
            .unwrap()
    }

    /// Opens `url` in a new tab, as a person pastes it into the address bar.
    pub fn open(&self, url: &str, runtime: &tokio::runtime::Runtime) {
        runtime.block_on(async {
            let page = self.tab().await;
            page.call("Page.navigate", json!({ "url": url }))
                .await
                .unwrap();
        });
    }
}

impl Drop for Chrome {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tab driven like a person: it watches the console for errors and saves screenshots.
pub struct Page {
    pub tab: Inspector,
    console: Subscription,
    errors: Vec<String>,
    shots: PathBuf,
}

impl Page {
    /// `tab` with its console watched; screenshots go to `shots`.
    pub async fn new(tab: Inspector, shots: &Path) -> Page {
        let console = tab.subscribe_to(&[
            "Runtime.exceptionThrown",
            "Runtime.consoleAPICalled",
            "Log.entryAdded",
        ]);
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            tab.call(domain, json!({})).await.unwrap();
        }
        std::fs::create_dir_all(shots).unwrap();
        Page {
            tab,
            console,
            errors: Vec::new(),
            shots: shots.to_path_buf(),
        }
    }

    pub async fn navigate(&self, url: &str) {
        self.tab
            .call("Page.navigate", json!({ "url": url }))
            .await
            .unwrap();
    }

    pub async fn reload(&self) {
        self.tab.call("Page.reload", json!({})).await.unwrap();
    }

    /// The value of `expression` in the page.
    pub async fn eval(&self, expression: &str) -> Value {
        let r = self
            .tab
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
            )
            .await
            .unwrap();
        if let Some(e) = r.get("exceptionDetails") {
            panic!("{expression} threw in the page: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Waits until `expression` is true in the page; fails with `what` and the page's text.
    pub async fn wait_for(&mut self, expression: &str, what: &str) {
        let started = Instant::now();
        loop {
            let r = self
                .tab
                .call(
                    "Runtime.evaluate",
                    json!({ "expression": format!("!!({expression})"), "returnByValue": true }),
                )
                .await
                .unwrap();
            if r["result"]["value"] == json!(true) {
                return;
            }
            if started.elapsed() > Duration::from_secs(60) {
                let text = self
                    .eval("document.body ? document.body.innerText : ''")
                    .await;
                panic!(
                    "the page never showed {what}; it shows:\n{}",
                    text.as_str().unwrap_or("")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Presses `key` as a person does on the keyboard.
    pub async fn press(&self, key: &str) {
        for kind in ["keyDown", "keyUp"] {
            self.tab
                .call(
                    "Input.dispatchKeyEvent",
                    json!({ "type": kind, "key": key, "text": if kind == "keyDown" { key } else { "" } }),
                )
                .await
                .unwrap();
        }
    }

    /// Clicks the element `selector` matches, where a person would (its centre).
    pub async fn click(&self, selector: &str) {
        let rect = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({selector:?}); if (!e) return null; \
                 e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); \
                 return [r.x + r.width / 2, r.y + r.height / 2]; }})()"
            ))
            .await;
        let (x, y) = match rect.as_array() {
            Some(xy) => (xy[0].as_f64().unwrap(), xy[1].as_f64().unwrap()),
            None => panic!("nothing on the page matches {selector}"),
        };
        for kind in ["mousePressed", "mouseReleased"] {
            self.tab
                .call(
                    "Input.dispatchMouseEvent",
                    json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 }),
                )
                .await
                .unwrap();
        }
    }

    /// Saves a screenshot of what the window shows as `<name>.png`; returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let shot = self
            .tab
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .await
            .unwrap();
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// The console's errors so far (exceptions, console.error, failed loads, CSP violations).
    pub fn console_errors(&mut self) -> Vec<String> {
        while let Some(event) = self.console.try_recv() {
            let p = &event.params;
            match event.method.as_str() {
                "Runtime.exceptionThrown" => self.errors.push(p["exceptionDetails"].to_string()),
                "Runtime.consoleAPICalled" if p["type"] == "error" => {
                    self.errors.push(p["args"].to_string())
                }
                "Log.entryAdded" if p["entry"]["level"] == "error" => {
                    self.errors.push(p["entry"]["text"].to_string())
                }
                _ => {}
            }
        }
        self.errors.clone()
    }
}

/// Whether `chromium` is installed. Without it: in CI the test fails (`.ci/run` installs it); on a
/// developer's machine it is skipped, saying why.
pub fn chromium_or_skip(test: &str) -> bool {
    let ok = Command::new("chromium")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        return true;
    }
    if super::in_ci() {
        panic!("{test} needs chromium, and CI is set: apt-get install chromium (.ci/run does)");
    }
    eprintln!("skipping {test}: chromium is not installed (apt-get install chromium)");
    false
}

/// Where a test's screenshots go: `target/test-output/<test>/`.
pub fn screenshot_dir(test: &str) -> PathBuf {
    super::repo_root()
        .join("target")
        .join("test-output")
        .join(test)
}
