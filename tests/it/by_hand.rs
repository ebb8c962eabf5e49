//! A participant following each part by hand: `lab-runner start` runs in a real terminal (tmux, at
//! 80 and at 120 columns); the test reads each step's commands off the screen exactly as they are
//! displayed, types them into a shell of its own, presses `c`, and expects the step to pass — never
//! pressing `d`. What `verify` proves and what a person can do are the same only if this passes.

use crate::support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use lab_runner::probe::inspector::save_cpuprofile;
use lab_runner::probe::inspector::{Inspector, Paused, Step};
use support::chrome::Chrome;
use support::docker_or_skip;

/// A terminal of a given size running one command, read as a person reads the screen.
struct Screen {
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Screen {
    fn start(columns: u16, command: &str) -> Screen {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("tmux.sock");
        let conf = dir.path().join("tmux.conf");
        std::fs::write(&conf, "set -g history-limit 100000\n").unwrap();
        let status = Command::new("tmux")
            .arg("-S")
            .arg(&socket)
            .arg("-f")
            .arg(&conf)
            .args(["new-session", "-d", "-x", &columns.to_string(), "-y", "50"])
            .arg(command)
            .status()
            .expect("tmux runs (apt-get install tmux)");
        assert!(status.success(), "tmux could not start `{command}`");
        Screen { socket, _dir: dir }
    }

    /// Everything the terminal showed, scrollback included, row by row as on screen.
    fn text(&self) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["capture-pane", "-p", "-S", "-100000"])
            .output()
            .unwrap();
        // The rows below the cursor are blank until something is printed there.
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    }

    /// The same, with rows the terminal wrapped joined back (to find what it wrapped).
    fn joined(&self) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["capture-pane", "-p", "-J", "-S", "-100000"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &str) {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["send-keys", keys])
            .status()
            .unwrap();
    }

    /// Waits until the screen shows `needle` at or after byte `from`; returns the screen.
    fn wait_for(&self, needle: &str, from: usize, timeout: Duration) -> String {
        self.wait_for_any(&[needle], from, timeout)
    }

    /// Waits until the screen shows one of `needles` at or after byte `from`.
    fn wait_for_any(&self, needles: &[&str], from: usize, timeout: Duration) -> String {
        let started = Instant::now();
        let needle = needles.join(" or ");
        loop {
            let text = self.text();
            if text
                .get(from..)
                .is_some_and(|t| needles.iter().any(|n| t.contains(n)))
            {
                return text;
            }
            if started.elapsed() > timeout {
                panic!("expected {needle:?} on the screen within {timeout:?}; the screen:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .status();
    }
}

/// A command block as the screen shows it.
#[derive(Debug, Clone)]
struct Block {
    lines: Vec<String>,
    /// The text right before says to run it in a terminal of its own.
    other_terminal: bool,
    /// ... and to leave it running.
    keeps_running: bool,
}

/// What a step shows, in order: command blocks and paragraphs of prose.
#[derive(Debug, Clone)]
enum Item {
    Block(Block),
    Prose(String),
}

/// The items of `screen`: the runnable shell blocks (what a person copies: between a ```sh fence
/// and the closing fence; blocks marked `no-run` are for reading) and the paragraphs around them.
fn items(screen: &str) -> Vec<Item> {
    let mut out = Vec::new();
    let mut code: Option<(bool, Vec<String>)> = None;
    let mut paragraph: Vec<String> = Vec::new();
    let mut previous = String::new();
    let end_paragraph = |paragraph: &mut Vec<String>, out: &mut Vec<Item>| {
        if !paragraph.is_empty() {
            out.push(Item::Prose(paragraph.join(" ")));
            paragraph.clear();
        }
    };
    for row in screen.lines() {
        let trimmed = row.trim();
        match &mut code {
            None if trimmed.starts_with("```") => {
                end_paragraph(&mut paragraph, &mut out);
                code = Some((trimmed == "```sh", Vec::new()));
            }
            None if trimmed.is_empty() => end_paragraph(&mut paragraph, &mut out),
            None => {
                paragraph.push(trimmed.to_string());
                previous = paragraph.join(" ");
            }
            Some((runnable, lines)) => {
                if trimmed == "```" {
                    if *runnable {
                        out.push(Item::Block(Block {
                            lines: std::mem::take(lines),
                            other_terminal: previous.contains("another terminal"),
                            keeps_running: previous.contains("leave it running"),
                        }));
                    }
                    code = None;
                    previous.clear();
                } else {
                    lines.push(row.trim_end().to_string());
                }
            }
        }
    }
    end_paragraph(&mut paragraph, &mut out);
    out
}

fn blocks(screen: &str) -> Vec<Block> {
    items(screen)
        .into_iter()
        .filter_map(|i| match i {
            Item::Block(b) => Some(b),
            Item::Prose(_) => None,
        })
        .collect()
}

/// What a person does in Chrome DevTools, done over the Chrome DevTools Protocol as DevTools does
/// it, at a person's pace, from the instructions on the screen.
struct DevTools {
    runtime: tokio::runtime::Runtime,
    client: Option<Inspector>,
    profiling: bool,
    /// The pause DevTools shows: Scope → Local and the Call Stack.
    paused: Option<Paused>,
    breakpoints: Vec<String>,
    /// What the Console printed, by expression.
    console: Vec<(String, serde_json::Value)>,
    /// The heap snapshots taken in the Memory panel, in order (snapshot 1, 2, …).
    snapshots: Vec<PathBuf>,
}

impl DevTools {
    fn new() -> DevTools {
        DevTools {
            runtime: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap(),
            client: None,
            profiling: false,
            paused: None,
            breakpoints: Vec::new(),
            console: Vec::new(),
            snapshots: Vec::new(),
        }
    }

    /// Opens the DevTools URL the step shows (`devtools://...?ws=127.0.0.1:PORT/ID`), as a person
    /// pastes it into Chrome, unless DevTools is already open.
    fn open(&mut self, screen: &str) -> Inspector {
        if self.client.as_ref().is_none_or(|c| c.is_closed()) {
            let at = screen
                .rfind("ws=")
                .unwrap_or_else(|| panic!("no DevTools URL on the screen:\n{screen}"));
            let target: String = screen[at + 3..]
                .chars()
                .take_while(|c| !c.is_whitespace())
                .collect();
            let (addr, _) = target.split_once('/').unwrap();
            let addr: std::net::SocketAddr = addr.parse().unwrap();
            let client = self
                .runtime
                .block_on(Inspector::connect(
                    addr,
                    &format!("ws://{target}"),
                    Duration::from_secs(30),
                ))
                .unwrap_or_else(|e| panic!("DevTools could not open {target}: {e:#}"));
            self.client = Some(client);
        }
        let client = self.client.as_ref().unwrap();
        client.with_timeout(client.timeout())
    }

    /// Does what `instruction` says, if it is an instruction for DevTools. `cwd` is where the
    /// participant saves files. Returns false for prose that is not one.
    fn perform(&mut self, instruction: &str, screen: &str, cwd: &Path) -> bool {
        let saved_as = |text: &str| -> PathBuf {
            let name = text
                .rsplit(" as ")
                .next()
                .unwrap()
                .trim_end_matches('.')
                .trim();
            cwd.join(name)
        };
        let step = [
            ("In DevTools: press Step over (F10)", Step::Over),
            ("In DevTools: press Step into (F11)", Step::Into),
            ("In DevTools: press Step out (Shift+F11)", Step::Out),
        ]
        .into_iter()
        .find(|(prose, _)| instruction.starts_with(prose));
        if instruction.contains("open the devtools:// URL") {
            self.open(screen);
        } else if let Some((_, how)) = step {
            let client = self.open(screen);
            let pause = self
                .runtime
                .block_on(client.step(how, Duration::from_secs(30)))
                .unwrap_or_else(|e| panic!("DevTools: {instruction}: {e:#}"));
            eprintln!(
                "DevTools: {} → paused in {} at line {}",
                how.button(),
                pause.function_name,
                pause.line
            );
            self.paused = Some(pause);
        } else if let Some(expression) =
            instruction.strip_prefix("In DevTools → Sources → Watch: add the expression ")
        {
            let expression = expression.trim().trim_end_matches('.');
            let frame = self
                .paused
                .as_ref()
                .expect("a Watch added while paused")
                .call_frame_id
                .clone();
            let client = self.open(screen);
            let value = self
                .runtime
                .block_on(client.evaluate_on_frame(&frame, expression));
            eprintln!("DevTools Watch: {expression} = {value:?}");
        } else if let Some(expression) =
            instruction.strip_prefix("In the DevTools Console, while paused: ")
        {
            self.console_in_frame(None, expression.trim(), screen);
        } else if let Some(rest) =
            instruction.strip_prefix("In DevTools → Call Stack: click the frame below ")
        {
            let (callee, expression) = rest
                .split_once("; then in the Console: ")
                .unwrap_or_else(|| panic!("no Console expression in {instruction:?}"));
            self.console_in_frame(Some(callee.trim()), expression.trim(), screen);
        } else if instruction.starts_with("In DevTools: remove the breakpoint")
            && instruction.contains("press Resume (F8)")
        {
            let client = self.open(screen);
            for id in self.breakpoints.drain(..) {
                self.runtime
                    .block_on(client.remove_breakpoint(&id))
                    .unwrap();
            }
            self.runtime
                .block_on(client.resume())
                .unwrap_or_else(|e| panic!("DevTools could not resume: {e:#}"));
            self.paused = None;
        } else if let Some(expression) = instruction.strip_prefix("In the DevTools Console: ") {
            let client = self.open(screen);
            let value = self
                .runtime
                .block_on(client.evaluate(expression.trim()))
                .unwrap();
            eprintln!("DevTools Console: {expression} → {value}");
            self.console.push((expression.trim().to_string(), value));
        } else if instruction.starts_with("In DevTools → Sources:") {
            // "open F and set a breakpoint in FN on the line L."
            let file = between(instruction, "open ", " and set");
            let needle = instruction
                .split(" on the line ")
                .nth(1)
                .unwrap()
                .trim_end_matches('.')
                .trim();
            let source =
                std::fs::read_to_string(support::repo_root().join("lab-app").join(&file)).unwrap();
            let line = source
                .lines()
                .position(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("no line with {needle:?} in {file}"))
                as u32
                + 1;
            // The file as the app runs it, as the step names it (`/app/src/...`).
            let path = screen
                .split_whitespace()
                .map(|w| {
                    w.trim_matches(|c: char| !(c.is_alphanumeric() || "/._-".contains(c)))
                        .trim_end_matches('.')
                })
                .find(|w| w.starts_with('/') && w.ends_with(&file))
                .unwrap_or_else(|| panic!("the step does not say where {file} is:\n{screen}"))
                .to_string();
            let client = self.open(screen);
            let breakpoint = self
                .runtime
                .block_on(client.set_breakpoint_by_url(&path, line))
                .unwrap_or_else(|e| panic!("DevTools could not set the breakpoint: {e:#}"));
            self.breakpoints.push(breakpoint.id);
        } else if instruction.starts_with("In DevTools → JavaScript Profiler: press Start") {
            let client = self.open(screen);
            self.runtime.block_on(async {
                client
                    .call("Profiler.enable", serde_json::json!({}))
                    .await
                    .unwrap();
                client
                    .call("Profiler.start", serde_json::json!({}))
                    .await
                    .unwrap();
            });
            self.profiling = true;
            // Switching to the terminal and typing takes a person a few seconds.
            std::thread::sleep(Duration::from_secs(3));
        } else if instruction.starts_with("Back in the Profiler: press Stop") {
            assert!(self.profiling, "Stop without Start");
            std::thread::sleep(Duration::from_secs(2));
            let client = self.open(screen);
            let path = saved_as(instruction);
            self.runtime.block_on(async {
                let reply = client
                    .call("Profiler.stop", serde_json::json!({}))
                    .await
                    .unwrap();
                save_cpuprofile(&reply["profile"], &path).await.unwrap();
            });
            self.profiling = false;
        } else if instruction.starts_with("In DevTools → Memory: take a heap snapshot") {
            let path = saved_as(instruction);
            let client = self.open(screen).with_timeout(Duration::from_secs(60));
            self.runtime
                .block_on(client.take_heap_snapshot(&path))
                .unwrap();
            self.snapshots.push(path);
        } else if instruction.starts_with("In DevTools: close the DevTools window") {
            if let Some(client) = self.client.take() {
                let _ = self.runtime.block_on(client.close());
            }
        } else {
            return false;
        }
        true
    }

    /// Waits until the app pauses (after a trigger ran), as a person watches DevTools.
    fn wait_paused(&mut self) {
        let client = self.client.as_ref().expect("DevTools is open");
        let paused = self
            .runtime
            .block_on(client.wait_paused(Duration::from_secs(30)))
            .unwrap_or_else(|e| panic!("the app never paused: {e:#}"));
        self.paused = Some(paused);
    }

    /// Types `expression` into the Console while paused, in the paused frame or, after a click
    /// on the frame below `caller_of`'s in the Call Stack, in that one.
    fn console_in_frame(&mut self, caller_of: Option<&str>, expression: &str, screen: &str) {
        let pause = self.paused.as_ref().expect("the Console used while paused");
        let frame = match caller_of {
            None => pause.frames.first(),
            Some(callee) => pause
                .frames
                .iter()
                .position(|f| f.function_name == callee)
                .and_then(|i| pause.frames.get(i + 1)),
        }
        .unwrap_or_else(|| panic!("no such frame in the Call Stack: {:?}", pause.frames));
        let id = frame.call_frame_id.clone();
        let client = self.open(screen);
        let value = self
            .runtime
            .block_on(client.evaluate_on_frame(&id, expression))
            .unwrap_or_else(|e| panic!("the DevTools Console: {expression}: {e:#}"));
        eprintln!("DevTools Console (paused): {expression} → {value}");
        self.console.push((expression.to_string(), value));
    }

    /// The answer to a check's question, read off DevTools as a person reads it.
    fn answer(&self, question: &str) -> String {
        let quoted = |after: &str| -> String {
            let at = question.find(after).unwrap() + after.len();
            question[at..]
                .trim_start_matches('`')
                .split('`')
                .next()
                .unwrap()
                .to_string()
        };
        let console = |expression: &str| -> &serde_json::Value {
            self.console
                .iter()
                .rev()
                .find(|(e, _)| e == expression)
                .map(|(_, v)| v)
                .unwrap_or_else(|| panic!("the Console never printed {expression}: {question}"))
        };
        let pause = || {
            self.paused
                .as_ref()
                .unwrap_or_else(|| panic!("DevTools shows no pause: {question}"))
        };
        let snapshot = |number: &str| -> MemoryPanel {
            let after = format!("napshot {number}");
            assert!(
                question.contains(&after),
                "not about snapshot {number}: {question}"
            );
            let index: usize = number.parse().unwrap();
            let path = self.snapshots.get(index - 1).unwrap_or_else(|| {
                panic!(
                    "DevTools has no snapshot {number} (took {:?})",
                    self.snapshots
                )
            });
            MemoryPanel::open(path)
        };
        if question.contains("largest Size Delta") {
            // Comparison view of the later snapshot against the earlier, sorted by Size Delta.
            let (later, earlier) = (snapshot("2"), snapshot("1"));
            later.largest_size_delta_against(&earlier)
        } else if question.contains("which variable holds it") {
            snapshot("2").variable_keeping_the_largest_object()
        } else if question.contains("What is the value of ") {
            // Scope → Local (or the Watch) of the pause DevTools shows.
            let name = quoted("What is the value of ");
            pause()
                .locals
                .get(&name)
                .unwrap_or_else(|| panic!("DevTools shows no {name} while paused: {question}"))
                .to_string()
        } else if question.contains("which function called ") {
            let callee = quoted("which function called ");
            let frames = &pause().frames;
            let at = frames
                .iter()
                .position(|f| f.function_name == callee)
                .unwrap_or_else(|| panic!("{callee} is not in the Call Stack: {frames:?}"));
            frames[at + 1].function_name.clone()
        } else if question.contains("What does the Console print for ") {
            console(&quoted("What does the Console print for ")).to_string()
        } else {
            // "What `field` did `expression` report in the Console?"
            let field = quoted("What ");
            let expression = quoted(" did ");
            console(&expression)[field.as_str()].to_string()
        }
    }

    /// What the step says to do after its check: remove the breakpoint (the step must say so, or
    /// the next jam stops there too), and Resume (F8).
    fn after_check(&mut self, step_text: &str) {
        let Some(client) = self.client.as_ref() else {
            return;
        };
        if !self.breakpoints.is_empty() {
            let words = step_text.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(
                words.contains("remove the breakpoint"),
                "the step leaves its breakpoint set: a person's next jam would stop there too"
            );
            for id in self.breakpoints.drain(..) {
                self.runtime
                    .block_on(client.remove_breakpoint(&id))
                    .unwrap();
            }
        }
        if client.is_paused()
            && let Err(e) = self.runtime.block_on(client.resume())
        {
            // The step's cleanup (the runner resuming once the check passed) may have got there
            // first: then DevTools sees the app running a moment later.
            let resumed_anyway = (0..50).any(|_| {
                std::thread::sleep(Duration::from_millis(100));
                !client.is_paused()
            });
            assert!(resumed_anyway, "DevTools could not resume: {e:#}");
        }
        self.paused = None;
    }
}

/// How the checks' questions begin (or end), as the screen shows them.
const QUESTIONS: [&str; 6] = [
    "What is the value of",
    "which function called",
    "What does the Console print for",
    "report in the Console?",
    "which constructor has the largest Size Delta?",
    "which variable holds it?",
];

/// A heap snapshot as DevTools' Memory panel shows it to a person, read here on its own (not with
/// lab-runner's analyser, whose answers the check compares with): classes by name, and each
/// object's first retainer path (the shortest from the root over edges that retain).
struct MemoryPanel {
    snapshot: serde_json::Value,
    node_fields: usize,
    edge_fields: usize,
}

impl MemoryPanel {
    fn open(path: &Path) -> MemoryPanel {
        let text = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let snapshot: serde_json::Value = serde_json::from_slice(&text).unwrap();
        let meta = &snapshot["snapshot"]["meta"];
        let node_fields = meta["node_fields"].as_array().unwrap().len();
        let edge_fields = meta["edge_fields"].as_array().unwrap().len();
        // The positions this reader relies on (V8's order since Node 12).
        assert_eq!(
            meta["node_fields"].as_array().unwrap()[..5],
            serde_json::json!(["type", "name", "id", "self_size", "edge_count"])
                .as_array()
                .unwrap()[..]
        );
        assert_eq!(
            meta["edge_fields"],
            serde_json::json!(["type", "name_or_index", "to_node"])
        );
        MemoryPanel {
            snapshot,
            node_fields,
            edge_fields,
        }
    }

    fn nodes(&self) -> &[serde_json::Value] {
        self.snapshot["nodes"].as_array().unwrap()
    }

    fn edges(&self) -> &[serde_json::Value] {
        self.snapshot["edges"].as_array().unwrap()
    }

    fn string(&self, index: &serde_json::Value) -> &str {
        self.snapshot["strings"][index.as_u64().unwrap() as usize]
            .as_str()
            .unwrap()
    }

    fn type_name(&self, list: &str, code: &serde_json::Value) -> String {
        self.snapshot["snapshot"]["meta"][list][0][code.as_u64().unwrap() as usize]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Each object's id → (class as the Summary groups it, self size).
    fn objects(&self) -> std::collections::HashMap<u64, (String, i64)> {
        self.nodes()
            .chunks(self.node_fields)
            .map(|n| {
                let class = match self.type_name("node_types", &n[0]).as_str() {
                    "object" | "native" => self.string(&n[1]).to_string(),
                    other => format!("({other})"),
                };
                (n[2].as_u64().unwrap(), (class, n[3].as_i64().unwrap()))
            })
            .collect()
    }

    /// The first row of the Comparison view sorted by Size Delta.
    fn largest_size_delta_against(&self, earlier: &MemoryPanel) -> String {
        let (now, before) = (self.objects(), earlier.objects());
        let mut delta: std::collections::HashMap<String, i64> = Default::default();
        for (id, (class, size)) in &now {
            if !before.contains_key(id) {
                *delta.entry(class.clone()).or_default() += size;
            }
        }
        for (id, (class, size)) in &before {
            if !now.contains_key(id) {
                *delta.entry(class.clone()).or_default() -= size;
            }
        }
        delta.into_iter().max_by_key(|(_, d)| *d).unwrap().0
    }

    /// The largest object's Retainers, read upwards to the first variable or property.
    fn variable_keeping_the_largest_object(&self) -> String {
        let nodes: Vec<&[serde_json::Value]> = self.nodes().chunks(self.node_fields).collect();
        let edges: Vec<&[serde_json::Value]> = self.edges().chunks(self.edge_fields).collect();
        let mut first_edge = vec![0usize];
        for n in &nodes {
            first_edge.push(first_edge.last().unwrap() + n[4].as_u64().unwrap() as usize);
        }
        let mut reached_by: Vec<Option<(usize, usize)>> = vec![None; nodes.len()];
        let mut seen = vec![false; nodes.len()];
        seen[0] = true;
        let mut queue = std::collections::VecDeque::from([0usize]);
        while let Some(from) = queue.pop_front() {
            let range = first_edge[from]..first_edge[from + 1];
            for (e, edge) in edges[range.clone()].iter().enumerate() {
                let e = range.start + e;
                let kind = self.type_name("edge_types", &edge[0]);
                if kind == "weak" || kind == "shortcut" {
                    continue;
                }
                let to = edge[2].as_u64().unwrap() as usize / self.node_fields;
                if !seen[to] {
                    seen[to] = true;
                    reached_by[to] = Some((from, e));
                    queue.push_back(to);
                }
            }
        }
        let largest = (0..nodes.len())
            .filter(|&n| seen[n])
            .max_by_key(|&n| nodes[n][3].as_u64().unwrap())
            .unwrap();
        let mut at = largest;
        while let Some((from, e)) = reached_by[at] {
            let kind = self.type_name("edge_types", &edges[e][0]);
            if kind == "context" || kind == "property" {
                return self.string(&edges[e][1]).to_string();
            }
            at = from;
        }
        panic!("no variable or property retains the largest object");
    }
}

fn between(text: &str, start: &str, end: &str) -> String {
    let from = text.find(start).unwrap() + start.len();
    let to = from + text[from..].find(end).unwrap();
    text[from..to].to_string()
}

/// The first `devtools://` URL in `screen` (the joined capture: a URL is longer than a row).
fn devtools_url(screen: &str) -> String {
    let at = screen
        .find("devtools://")
        .unwrap_or_else(|| panic!("no DevTools URL on the screen:\n{screen}"));
    screen[at..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect()
}

/// How often the app's log says `Debugger attached.` (the container's name as the screen shows it).
fn attached_count(container: &str) -> usize {
    let out = Command::new("docker")
        .args(["logs", container])
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    log.matches("Debugger attached.").count()
}

/// Waits until `count()` exceeds `before`.
fn wait_more(before: usize, what: &str, count: impl Fn() -> usize) {
    let started = Instant::now();
    while count() <= before {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what} never happened"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// How a person answers a lab's questions about what their own commands printed: the questions
/// (a part of their text), and the answer to one read from the shell's transcript (None for a
/// question about DevTools).
pub(crate) struct ShellAnswers {
    pub questions: &'static [&'static str],
    pub answer: fn(question: &str, transcript: &[String]) -> Option<String>,
}

/// The Node lab's questions about what the participant's commands printed.
const NODE_ANSWERS: ShellAnswers = ShellAnswers {
    questions: &SHELL_QUESTIONS,
    answer: answer_from_printed,
};

/// The questions a check asks about what the participant's own commands printed.
const SHELL_QUESTIONS: [&str; 3] = [
    "grew the most",
    "has the most self time",
    "how many MiB does it retain?",
];

/// What a person answers to `question` from `printed`, the lines their commands printed (in a
/// shell of their own, or on the browser guide's page): None for a question about DevTools.
pub(crate) fn answer_from_printed(question: &str, printed: &[String]) -> Option<String> {
    if question.contains("grew the most") {
        // The first row under the comparison's header, as `lab-runner analyze --diff` printed it.
        let header = printed
            .iter()
            .rposition(|l| l.starts_with("Constructor") && l.contains("Size delta"))
            .unwrap_or_else(|| {
                panic!("no comparison in what was printed:\n{}", printed.join("\n"))
            });
        let row = &printed[header + 1];
        return Some(row.split("  ").next().unwrap().trim().to_string());
    }
    if question.contains("how many MiB does it retain") {
        // `lab-runner analyze --retainers`: "Held by `x` (...); its value, Array @1, retains N MiB."
        let printed = printed.join(" ");
        let at = printed
            .rfind("Held by `")
            .unwrap_or_else(|| panic!("no retainer path in what was printed:\n{printed}"));
        let held = &printed[at..];
        let retains = held
            .split(" retains ")
            .nth(1)
            .unwrap_or_else(|| panic!("the holder's retained size is not printed: {held}"));
        return Some(retains.split(" MiB").next().unwrap().trim().to_string());
    }
    if question.contains("has the most self time") {
        // The first row of `lab-runner analyze`'s table that is not (idle), (program) or (garbage
        // collector): Self, Self %, Total, Total %, then the function and its location.
        let header = printed
            .iter()
            .rposition(|l| l.contains("Self %") && l.contains("Function"))
            .unwrap_or_else(|| {
                panic!(
                    "no profile table in what was printed:\n{}",
                    printed.join("\n")
                )
            });
        for row in &printed[header + 1..] {
            let words: Vec<&str> = row.split_whitespace().collect();
            if words.len() < 7 {
                break;
            }
            let mut function = &words[6..];
            if function.len() > 1 && function.last().is_some_and(|w| w.contains(':')) {
                function = &function[..function.len() - 1];
            }
            let function = function.join(" ");
            if !["(idle)", "(program)", "(garbage collector)"].contains(&function.as_str()) {
                return Some(function);
            }
        }
        panic!(
            "no busy function in the profile table:\n{}",
            printed.join("\n")
        );
    }
    None
}

/// The participant's own shell: one bash for the whole part, so exports and `cd` stay.
struct Shell {
    stdin: ChildStdin,
    lines: Receiver<String>,
    child: Child,
    transcript: Vec<String>,
}

impl Shell {
    /// `runtime_dir` is the login session's XDG_RUNTIME_DIR, shared with the terminal running
    /// `start` (where sessions are found).
    fn new(path: &str, runtime_dir: &Path) -> Shell {
        let mut child = Command::new("bash")
            .args(["--noprofile", "--norc", "-s"])
            .env("PATH", path)
            .env("XDG_RUNTIME_DIR", runtime_dir)
            .env_remove("LAB_RUNNER_SESSION")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut shell = Shell {
            stdin,
            lines: rx,
            child,
            transcript: Vec::new(),
        };
        shell.run(&["exec 2>&1".to_string()]);
        shell
    }

    /// Types `lines` and waits for them to finish; returns the exit status of the last command.
    fn run(&mut self, lines: &[String]) -> i32 {
        for line in lines {
            self.transcript.push(format!("$ {line}"));
            writeln!(self.stdin, "{line}").unwrap();
        }
        writeln!(self.stdin, "echo \"__done__ $?\"").unwrap();
        self.stdin.flush().unwrap();
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(120))
                .unwrap_or_else(|_| {
                    panic!(
                        "the commands did not finish; so far:\n{}",
                        self.transcript.join("\n")
                    )
                });
            if let Some(status) = line.strip_prefix("__done__ ") {
                return status.trim().parse().unwrap();
            }
            self.transcript.push(line);
        }
    }
}

impl Shell {
    /// What one command prints (its last line).
    fn output_of(&mut self, command: &str) -> String {
        let before = self.transcript.len();
        self.run(&[command.to_string()]);
        let out = self.transcript[before + 1..]
            .last()
            .cloned()
            .unwrap_or_default();
        self.transcript.truncate(before);
        out
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A command left running in a terminal of its own (a tunnel), stopped later with Ctrl-C.
struct Background {
    child: Child,
    output: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Background {
    fn start(lines: &[String], cwd: &Path, env: &[(String, String)]) -> Background {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new("bash")
            .args(["--noprofile", "--norc", "-c", &lines.join("\n")])
            .current_dir(cwd)
            .envs(env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    output.lock().unwrap().push(line);
                }
            });
        }
        Background { child, output }
    }

    fn wait_for(&self, needle: &str) {
        let started = Instant::now();
        while !self
            .output
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(needle))
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the other terminal never showed {needle:?}: {:?}",
                self.output.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the command to end by itself; its exit status.
    fn wait(mut self) -> i32 {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the command never ended: {:?}",
                self.output.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Ctrl-C, as a person presses it: the command must end, and end well.
    fn interrupt(mut self) -> i32 {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGINT).unwrap();
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(130);
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "Ctrl-C did not end the command"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The environment a shell needs to find this build's `lab-runner` first.
fn path_with_lab_runner() -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_lab-runner"))
        .parent()
        .unwrap()
        .display()
        .to_string();
    format!("{bin}:{}", std::env::var("PATH").unwrap_or_default())
}

/// Follows `part` by hand in a terminal `columns` wide; every step must pass on `c` alone.
fn follow_by_hand(part: &str, columns: u16) {
    follow_by_hand_with_chrome(part, columns, None);
}

/// Follows `part` of the lab in the folder `lab` by hand, as [`follow_by_hand`] does the shipped
/// lab's; `answers` answers its questions from what the participant's commands printed.
pub(crate) fn follow_lab_by_hand(lab: &Path, part: &str, columns: u16, answers: &ShellAnswers) {
    follow(Some(lab), part, columns, None, answers);
}

/// [`follow_by_hand`]; at step `chrome_at`, real Chrome DevTools opens the step's `devtools://`
/// URL first, and the app must log that a debugger attached.
fn follow_by_hand_with_chrome(part: &str, columns: u16, chrome_at: Option<&str>) {
    follow(None, part, columns, chrome_at, &NODE_ANSWERS);
}

fn follow(
    lab: Option<&Path>,
    part: &str,
    columns: u16,
    chrome_at: Option<&str>,
    answers: &ShellAnswers,
) {
    let lab_arg = lab.map_or(String::new(), |lab| format!(" --lab {}", lab.display()));
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let command = format!(
        "cd {work} && env LAB_RUNNER_STATE_DIR={state} XDG_RUNTIME_DIR={state} PATH={path} \
         {bin} start {part}{lab_arg} --backend docker; echo '__exited__'; sleep 600",
        work = work.path().display(),
        state = state.path().display(),
        path = path_with_lab_runner(),
        bin = env!("CARGO_BIN_EXE_lab-runner"),
    );
    let screen = Screen::start(columns, &command);
    let mut shell = Shell::new(&path_with_lab_runner(), state.path());
    let mut others: Vec<Background> = Vec::new();
    let mut devtools = DevTools::new();
    let mut chromes: Vec<Chrome> = Vec::new();
    let started = Instant::now();

    // The part's intro: its commands (cd, exports) are the first a person types.
    let first = screen.wait_for("[c] check my work", 0, Duration::from_secs(120));
    let heading_at = first.find("Step ").expect("a step heading");
    let intro = blocks(&first[..heading_at]);
    assert!(!intro.is_empty(), "the intro shows no commands:\n{first}");
    for block in &intro {
        assert_eq!(
            shell.run(&block.lines),
            0,
            "{}",
            shell.transcript.join("\n")
        );
    }
    let exported = |shell: &mut Shell| -> Vec<(String, String)> {
        let before = shell.transcript.len();
        shell.run(&["env".to_string()]);
        let env = shell.transcript[before + 1..]
            .iter()
            .filter_map(|l| {
                l.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect();
        shell.transcript.truncate(before);
        env
    };

    let mut from = 0;
    let mut passed = Vec::new();
    loop {
        let text = screen.wait_for("[c] check my work", from, Duration::from_secs(120));
        let heading = from + text[from..].find("Step ").expect("a step heading");
        let id: String = text[heading + 5..]
            .chars()
            .take_while(|c| !c.is_whitespace())
            .collect();
        let step_text = &text[heading..];
        // Nothing in a command block may be wrapped by the terminal: a wrapped command, copied,
        // runs as two broken ones.
        let joined = screen.joined();
        let step_joined = &joined[joined.rfind(&format!("Step {id} ")).unwrap_or(0)..];
        for block in blocks(step_joined) {
            for line in block.lines {
                assert!(
                    line.chars().count() <= usize::from(columns),
                    "step {id}: a command wider than the terminal ({columns} columns), wrapped: {line:?}"
                );
            }
        }
        if chrome_at == Some(id.as_str()) {
            let container = text
                .split("docker kill --signal USR1 ")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .expect("the container's name on the screen (3.2's command)")
                .to_string();
            let before = attached_count(&container);
            let chrome = Chrome::start();
            chrome.open(&devtools_url(step_joined), &devtools.runtime);
            wait_more(
                before,
                "Chrome DevTools attaching through the tunnel",
                || attached_count(&container),
            );
            chromes.push(chrome);
        }
        let cwd = PathBuf::from(shell.output_of("pwd"));
        let mut triggers: Vec<Background> = Vec::new();
        for item in items(step_text) {
            match item {
                Item::Prose(text) => {
                    if text.starts_with("Then press Ctrl-C in the terminal") {
                        for bg in others.drain(..) {
                            assert_eq!(
                                bg.interrupt(),
                                0,
                                "step {id}: Ctrl-C did not end the command well"
                            );
                        }
                    } else {
                        devtools.perform(&text, step_joined, &cwd);
                    }
                }
                Item::Block(block) if block.other_terminal => {
                    let env = exported(&mut shell);
                    let bg = Background::start(&block.lines, &cwd, &env);
                    if block.keeps_running {
                        bg.wait_for("Press Ctrl-C");
                        others.push(bg);
                    } else {
                        // A request that should run into the breakpoint: DevTools shows the pause.
                        if devtools.client.is_some() {
                            devtools.wait_paused();
                        }
                        triggers.push(bg);
                    }
                }
                Item::Block(block) => {
                    let status = shell.run(&block.lines);
                    assert_eq!(
                        status,
                        0,
                        "step {id}: the commands shown failed:\n{}",
                        shell.transcript.join("\n")
                    );
                }
            }
        }
        let before_check = screen.text().len();
        screen.keys("c");
        let done = format!("step {id} done");
        // The check may ask what DevTools shows, one question after another.
        let mut asked_from = before_check;
        let after = loop {
            let mut waiting_for = vec![done.as_str(), "[c] check my work"];
            waiting_for.extend(QUESTIONS);
            waiting_for.extend(answers.questions);
            let after = screen.wait_for_any(&waiting_for, asked_from, Duration::from_secs(120));
            let judged = &after[asked_from.min(after.len())..];
            if judged.contains(&done) || judged.contains("[c] check my work") {
                break after;
            }
            // The question as asked (the joined capture: a question may be wider than a row).
            let joined = screen.joined();
            let at = QUESTIONS
                .iter()
                .chain(answers.questions)
                .filter_map(|q| joined.rfind(q))
                .max()
                .unwrap();
            let start = joined[..at].rfind('\n').map_or(0, |n| n + 1);
            let question = joined[start..].lines().next().unwrap().to_string();
            let value = (answers.answer)(&question, &shell.transcript)
                .unwrap_or_else(|| devtools.answer(&question));
            eprintln!("asked: {question} → {value}");
            screen.keys(&value);
            screen.keys("Enter");
            asked_from = after.len();
        };
        let Some(at) = after[before_check.min(after.len())..].find(&done) else {
            panic!(
                "step {id} did not pass when followed by hand at {columns} columns.\n--- screen ---\n{}\n--- the participant's shell ---\n{}",
                &after[heading..],
                shell.transcript.join("\n")
            );
        };
        // Resume (F8): what the pause held up now finishes, and must have gone well.
        devtools.after_check(step_text);
        for bg in triggers {
            assert_eq!(
                bg.wait(),
                0,
                "step {id}: the request sent from another terminal failed"
            );
        }
        passed.push(id);
        from = before_check + at;
        let rest = screen.wait_for_any(
            &["[c] check my work", "complete:"],
            from,
            Duration::from_secs(120),
        );
        if rest[from..].contains("complete:") {
            break;
        }
    }
    let summary = screen.wait_for("steps checked", from, Duration::from_secs(30));
    assert!(
        summary.contains(&format!(
            "{part} complete: {n} of {n} steps checked",
            n = passed.len()
        )),
        "{summary}"
    );
    eprintln!(
        "{part} followed by hand at {columns} columns: {} steps in {:.1} s",
        passed.len(),
        started.elapsed().as_secs_f64()
    );
    screen.keys("q");
    // Until `start` has ended: the terminal closed while it tears the part down would leave a
    // service's container behind.
    screen.wait_for("__exited__", from, Duration::from_secs(60));
}

#[test]
fn part2_by_hand_at_80_columns() {
    if docker_or_skip("part2_by_hand_at_80_columns") {
        follow_by_hand("part2", 80);
    }
}

#[test]
fn part2_by_hand_at_120_columns() {
    if docker_or_skip("part2_by_hand_at_120_columns") {
        follow_by_hand("part2", 120);
    }
}

#[test]
fn part1_by_hand_at_80_columns() {
    if docker_or_skip("part1_by_hand_at_80_columns") {
        follow_by_hand("part1", 80);
    }
}

#[test]
fn part1_by_hand_at_120_columns() {
    if docker_or_skip("part1_by_hand_at_120_columns") {
        follow_by_hand("part1", 120);
    }
}

/// `start` in a terminal of `columns`, with its own state; the session's folders and the screen.
fn start_screen(part: &str, columns: u16) -> (Screen, tempfile::TempDir, tempfile::TempDir) {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let command = format!(
        "cd {work} && env LAB_RUNNER_STATE_DIR={state} XDG_RUNTIME_DIR={state} \
         {bin} start {part} --backend docker; echo '__exited__'; sleep 600",
        work = work.path().display(),
        state = state.path().display(),
        bin = env!("CARGO_BIN_EXE_lab-runner"),
    );
    (Screen::start(columns, &command), state, work)
}

#[test]
fn real_chrome_devtools_attaches_in_step_1_2() {
    if !docker_or_skip("real_chrome_devtools_attaches_in_step_1_2") {
        return;
    }
    let (screen, _state, _work) = start_screen("part1", 200);
    screen.wait_for("[c] check my work", 0, Duration::from_secs(120));
    let at = screen.text().len();
    screen.keys("n");
    let text = screen.wait_for("[c] check my work", at, Duration::from_secs(60));
    assert!(text[at..].contains("Step 1.2 "), "{}", &text[at..]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let chrome = Chrome::start();
    // Nothing but Chrome's DevTools connects: the check (the app logged `Debugger attached.`)
    // passes only if the real frontend got in.
    let joined = screen.joined();
    let step = joined.rfind("Step 1.2 ").expect("step 1.2 on the screen");
    chrome.open(&devtools_url(&joined[step..]), &runtime);
    let before = screen.text().len();
    screen.keys("c");
    // The check asks what the Console printed for `process.pid`: the app's pid, which a person
    // reads off DevTools and this test off the app's status route.
    let question = "What does the Console print for `process.pid`?";
    let asked = screen.wait_for_any(
        &[question, "step 1.2 done", "[c] check my work"],
        before,
        Duration::from_secs(60),
    );
    assert!(asked[before..].contains(question), "{}", &asked[before..]);
    screen.keys(&app_pid(&screen.joined()));
    screen.keys("Enter");
    let done = screen.wait_for_any(
        &["step 1.2 done", "[c] check my work"],
        asked.len(),
        Duration::from_secs(60),
    );
    assert!(
        done[before..].contains("step 1.2 done"),
        "{}",
        &done[before..]
    );
    screen.keys("q");
    drop(chrome);
}

/// The app's pid, from `/api/lab/status` at the `BASE` and with the `LAB_TOKEN` the screen exports.
fn app_pid(screen: &str) -> String {
    let exported = |name: &str| -> String {
        let at = screen
            .rfind(&format!("export {name}="))
            .unwrap_or_else(|| panic!("the screen exports no {name}"));
        screen[at + name.len() + 8..]
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-H"])
        .arg(format!("x-lab-token: {}", exported("LAB_TOKEN")))
        .arg(format!("{}/api/lab/status", exported("BASE")))
        .output()
        .expect("curl runs");
    let status: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("status is not JSON ({e}): {}", support::text(&out)));
    status["pid"].to_string()
}

#[test]
fn a_failed_check_shows_its_hint_rendered() {
    if !docker_or_skip("a_failed_check_shows_its_hint_rendered") {
        return;
    }
    let (screen, _state, _work) = start_screen("part1", 100);
    screen.wait_for("[c] check my work", 0, Duration::from_secs(120));
    for step in ["1.2", "1.3"] {
        let at = screen.text().len();
        screen.keys("n");
        screen.wait_for(&format!("Step {step} "), at, Duration::from_secs(60));
    }
    let at = screen.text().len();
    screen.wait_for(
        "[c] check my work",
        at.saturating_sub(200),
        Duration::from_secs(60),
    );
    let before = screen.text().len();
    screen.keys("c");
    let text = screen.wait_for("hint:", before, Duration::from_secs(60));
    let diagnosis = &text[before..];
    assert!(
        diagnosis.contains("/app/src/lab/event-loop-jam.js") && !diagnosis.contains("{{"),
        "the hint is shown with its template unrendered:\n{diagnosis}"
    );
    screen.keys("q");
}

#[test]
fn skipping_a_step_never_ends_start_at_a_later_one() {
    if !docker_or_skip("skipping_a_step_never_ends_start_at_a_later_one") {
        return;
    }
    // 3.4 shows values that 3.3's tunnel makes possible; skip 3.1 to 3.3 and look.
    let (screen, _state, _work) = start_screen("part3", 100);
    screen.wait_for("[c] check my work", 0, Duration::from_secs(120));
    for step in ["3.2", "3.3", "3.4"] {
        let at = screen.text().len();
        screen.keys("n");
        screen.wait_for(&format!("Step {step} "), at, Duration::from_secs(60));
    }
    let at = screen.text().find("Step 3.4 ").unwrap();
    let text = screen.wait_for("[c] check my work", at, Duration::from_secs(60));
    assert!(
        !text.contains("__exited__"),
        "start ended:\n{}",
        &text[at..]
    );
    assert!(
        text[at..].contains("needs something an earlier step makes"),
        "3.4 does not say what is missing:\n{}",
        &text[at..]
    );
    screen.keys("q");
    screen.wait_for("__exited__", at, Duration::from_secs(60));
}

#[test]
fn part3_by_hand_at_120_columns() {
    if docker_or_skip("part3_by_hand_at_120_columns") {
        follow_by_hand_with_chrome("part3", 120, Some("3.4"));
    }
}

#[test]
fn part3_by_hand_at_80_columns() {
    if docker_or_skip("part3_by_hand_at_80_columns") {
        follow_by_hand("part3", 80);
    }
}

#[test]
fn reads_blocks_and_what_the_text_says_about_them() {
    let screen = "Step 1.3 — Pause\n\nIn DevTools → Sources: open src/a.js and set a breakpoint in\nf on the line x.\n\nThen, in another terminal:\n\n```sh\ncurl a \\\n  b\n```\n\nIn another terminal (leave it running):\n\n```sh\nlab-runner tunnel\n```\n\n```sh no-run\naws x\n```\n\n```sh\necho main\n```\n";
    let items = items(screen);
    let blocks: Vec<&Block> = items
        .iter()
        .filter_map(|i| match i {
            Item::Block(b) => Some(b),
            Item::Prose(_) => None,
        })
        .collect();
    assert_eq!(blocks.len(), 3, "{items:?}");
    assert!(blocks[0].other_terminal && !blocks[0].keeps_running);
    assert!(blocks[1].other_terminal && blocks[1].keeps_running);
    assert!(!blocks[2].other_terminal);
    assert!(
        matches!(&items[1], Item::Prose(p) if p == "In DevTools → Sources: open src/a.js and set a breakpoint in f on the line x.")
    );
}

/// An instructor presenting with `demo --pace` pauses it and moves it on from the keyboard: `p`
/// holds the demo between steps past its pace, `p` again lets the pace go on, Enter goes on at once.
#[test]
fn by_hand_the_presenter_pauses_and_moves_the_demo_on_from_the_keyboard() {
    let state = tempfile::tempdir().unwrap();
    let command = format!(
        "cd {state} && env LAB_RUNNER_STATE_DIR={state} XDG_RUNTIME_DIR={state} \
         {bin} demo part2 --backend process --pace 1; echo \"__exited__ $?\"; \
         stty -a | grep -o -- '-\\?icanon' ; sleep 600",
        state = state.path().display(),
        bin = env!("CARGO_BIN_EXE_lab-runner"),
    );
    let screen = Screen::start(80, &command);
    let minute = Duration::from_secs(60);
    screen.wait_for("Enter goes on now, p pauses", 0, minute);
    screen.wait_for("Step 2.0 ", 0, minute);
    // Pressed while 2.0 runs: the demo holds once 2.0 is checked.
    screen.keys("p");
    let text = screen.wait_for("paused: Next (Enter) goes on", 0, minute);
    assert!(text.contains("step 2.0 checked"), "{text}");
    // Three times the pace later, still held.
    std::thread::sleep(Duration::from_secs(3));
    let text = screen.text();
    assert!(
        !text.contains("Step 2.1 "),
        "the pace went on while paused:\n{text}"
    );
    // p again: resumed, and the pace takes it to the next step.
    screen.keys("p");
    screen.wait_for("resumed", 0, minute);
    screen.wait_for("Step 2.1 ", 0, minute);
    // Paused again after 2.1, then Enter: on at once.
    screen.keys("p");
    let at = screen.text().find("Step 2.1 ").unwrap();
    screen.wait_for("paused: Next (Enter) goes on", at, minute);
    assert!(!screen.text().contains("Step 2.1.1 "));
    screen.keys("Enter");
    screen.wait_for("Step 2.1.1 ", 0, minute);
    // Ctrl-C ends it, and the terminal is as it was (line editing and echo back on).
    screen.keys("C-c");
    let text = screen.wait_for("__exited__", 0, minute);
    let after = &text[text.find("__exited__").unwrap()..];
    let stty = screen.wait_for("icanon", text.find("__exited__").unwrap(), minute);
    assert!(
        !stty[text.find("__exited__").unwrap()..].contains("-icanon"),
        "the terminal was left in cbreak mode:\n{after}"
    );
}

/// The session of a `start_screen` whose environment is up: from its control socket's name
/// (`$XDG_RUNTIME_DIR/lab-runner/<session>.sock`, the test's state folder).
fn session_of(state: &Path) -> String {
    let sockets = state.join("lab-runner");
    std::fs::read_dir(&sockets)
        .unwrap_or_else(|e| panic!("{}: {e}", sockets.display()))
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".sock").map(str::to_string)
        })
        .next()
        .expect("the session's control socket")
}

/// Waits until Docker holds no container and no network of `session`; what is still there after
/// 30 s.
fn left_behind(session: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = left_behind_now(session);
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A participant who closes the terminal window — at a step, or right after pressing `q` while
/// the environment is being removed — leaves no container and no network behind. (Writing to
/// the closed terminal used to end the process before it removed anything; and a cleanup that
/// found the container's removal already under way stopped before the network.)
#[test]
fn closing_the_terminal_leaves_no_environment_behind() {
    if !docker_or_skip("closing_the_terminal_leaves_no_environment_behind") {
        return;
    }
    for quit_first in [false, true] {
        let (screen, state, _work) = start_screen("part2", 100);
        screen.wait_for("[c] check my work", 0, Duration::from_secs(120));
        let session = session_of(state.path());
        assert!(
            !left_behind_now(&session).is_empty(),
            "the session's environment should be up"
        );
        if quit_first {
            screen.keys("q");
        }
        // Closing the window: tmux hangs up the terminal.
        drop(screen);
        let left = left_behind(&session);
        assert!(
            left.is_empty(),
            "closing the terminal{} left {left:?}",
            if quit_first {
                " right after q"
            } else {
                " at a step"
            }
        );
    }
}

/// The containers and networks of `session` now.
fn left_behind_now(session: &str) -> Vec<String> {
    let label = format!("io.lab-runner.session={session}");
    ["container", "network"]
        .into_iter()
        .flat_map(|kind| {
            support::docker_ids(kind, &label)
                .into_iter()
                .map(move |id| format!("{kind} {id}"))
        })
        .collect()
}
