//! `.cpuprofile` files (the Chrome DevTools Protocol's `Profiler.Profile`, as written by
//! `node --cpu-prof`, the inspector's `Profiler.stop` or DevTools).
//!
//! Time is weighted by `timeDeltas`: each sample stands for the time until the next sample (the last
//! one until `endTime`), the convention of DevTools' flame chart. A function's self time is the time
//! of the samples it is the leaf of; its total time the time of the samples it appears in, counted
//! once per sample however deep it recurses. Lines are shown 1-based (CDP's `lineNumber` is
//! 0-based; `positionTicks` lines are already 1-based).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

const NO_PARENT: u32 = u32::MAX;

/// A CPU profile, ready to answer where the time went.
#[derive(Debug, Clone)]
pub struct CpuProfile {
    frames: Vec<Frame>,
    nodes: Vec<Node>,
    /// Node indexes, parents before children.
    topological: Vec<u32>,
    /// Microseconds of sampled time that each node is the leaf of.
    self_micros: Vec<f64>,
    sample_count: usize,
    start_time: f64,
    end_time: f64,
}

/// A function as the profiler names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Frame {
    function: String,
    url: String,
    /// 1-based line where the function starts; 0 when unknown (`(program)`, `(idle)`, ...).
    line: u32,
    /// 1-based column; 0 when unknown.
    column: u32,
}

#[derive(Debug, Clone)]
struct Node {
    frame: u32,
    parent: u32,
    /// 1-based lines where this node's own samples landed (`positionTicks`).
    tick_lines: Vec<u32>,
}

/// Which frames count as "the function" for [`CpuProfile::share`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrameFilter {
    /// The script URL must end with this (empty: any script).
    pub url_suffix: String,
    /// 1-based inclusive line range: a frame matches if its function starts in the range or any of
    /// its `positionTicks` lines fall in it (inlining moves samples into callers, so the range is
    /// what counts).
    pub lines: Option<(u32, u32)>,
    /// The function name, compared when `lines` is not given.
    pub function: Option<String>,
}

impl FrameFilter {
    fn matches(&self, frame: &Frame, tick_lines: &[u32]) -> bool {
        if !frame.url.ends_with(&self.url_suffix) {
            return false;
        }
        match (self.lines, &self.function) {
            (Some((first, last)), _) => {
                let inside = |line: u32| first <= line && line <= last;
                (frame.line > 0 && inside(frame.line)) || tick_lines.iter().any(|&l| inside(l))
            }
            (None, Some(name)) => frame.function == *name,
            (None, None) => true,
        }
    }
}

/// One row of the top-functions table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionTime {
    /// The function name; `(anonymous)` for unnamed functions.
    pub function: String,
    pub url: String,
    /// 1-based line where the function starts; 0 when unknown.
    pub line: u32,
    /// 1-based column where the function starts; 0 when unknown. Two functions on one line (an
    /// arrow function passed to another, say) are told apart by it.
    pub column: u32,
    #[serde(rename = "self_ms", serialize_with = "as_millis")]
    pub self_time: Duration,
    #[serde(rename = "total_ms", serialize_with = "as_millis")]
    pub total_time: Duration,
    /// Share of the sampled time (the sum of every sample's weight: [`CpuProfile::sampled_time`]),
    /// 0..=1.
    pub self_share: f64,
    pub total_share: f64,
}

impl FunctionTime {
    /// `file.js:12:5` — line and column, 1-based (or empty when the profiler gives no location).
    pub fn location(&self) -> String {
        location(&self.url, self.line, self.column)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawProfile {
    nodes: Vec<RawNode>,
    start_time: f64,
    end_time: f64,
    #[serde(default)]
    samples: Vec<u64>,
    #[serde(default)]
    time_deltas: Vec<f64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawNode {
    id: u64,
    call_frame: RawCallFrame,
    #[serde(default)]
    children: Vec<u64>,
    #[serde(default)]
    position_ticks: Vec<RawPositionTick>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCallFrame {
    function_name: String,
    #[serde(default)]
    url: String,
    line_number: i64,
    #[serde(default)]
    column_number: i64,
}

#[derive(Deserialize)]
struct RawPositionTick {
    line: u32,
}

impl CpuProfile {
    pub fn load(path: &Path) -> Result<CpuProfile> {
        let read = || -> Result<CpuProfile> {
            let bytes = fs::read(path).context("cannot read the file")?;
            CpuProfile::parse(&bytes)
        };
        read().with_context(|| format!("Failed to read CPU profile {}", path.display()))
    }

    pub fn from_slice(bytes: &[u8]) -> Result<CpuProfile> {
        CpuProfile::parse(bytes).context("Failed to read the CPU profile")
    }

    fn parse(bytes: &[u8]) -> Result<CpuProfile> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            bail!("the file is empty");
        }
        let start: Vec<u8> = bytes
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .take(11)
            .collect();
        if start == b"{\"snapshot\"" {
            bail!(
                "this is a heap snapshot (it starts with a \"snapshot\" header), not a CPU profile: \
                 expected a CPU profile (a JSON object with nodes, startTime, endTime, samples and \
                 timeDeltas, as node --cpu-prof or the inspector's Profiler.stop write it)"
            );
        }
        let raw: RawProfile = serde_json::from_slice(bytes).context(
            "this is not a CPU profile: expected a JSON object with nodes, startTime, endTime, \
             samples and timeDeltas (as node --cpu-prof or the inspector's Profiler.stop write it)",
        )?;
        CpuProfile::build(raw)
    }

    fn build(raw: RawProfile) -> Result<CpuProfile> {
        if raw.nodes.is_empty() {
            bail!("the profile has no nodes");
        }
        if raw.samples.len() != raw.time_deltas.len() {
            bail!(
                "the profile has {} samples but {} timeDeltas: they should pair up",
                raw.samples.len(),
                raw.time_deltas.len()
            );
        }
        let mut index_of_id: HashMap<u64, u32> = HashMap::with_capacity(raw.nodes.len());
        for (i, node) in raw.nodes.iter().enumerate() {
            if index_of_id.insert(node.id, i as u32).is_some() {
                bail!("two profile nodes have the id {}", node.id);
            }
        }

        let mut frames: Vec<Frame> = Vec::new();
        let mut frame_index: HashMap<Frame, u32> = HashMap::new();
        let mut nodes: Vec<Node> = Vec::with_capacity(raw.nodes.len());
        for raw_node in &raw.nodes {
            let call = &raw_node.call_frame;
            let frame = Frame {
                function: call.function_name.clone(),
                url: call.url.clone(),
                line: u32::try_from(call.line_number.saturating_add(1)).unwrap_or(0),
                column: u32::try_from(call.column_number.saturating_add(1)).unwrap_or(0),
            };
            let frame = *frame_index.entry(frame).or_insert_with_key(|frame| {
                frames.push(frame.clone());
                (frames.len() - 1) as u32
            });
            nodes.push(Node {
                frame,
                parent: NO_PARENT,
                tick_lines: raw_node.position_ticks.iter().map(|t| t.line).collect(),
            });
        }
        for (parent, raw_node) in raw.nodes.iter().enumerate() {
            for child_id in &raw_node.children {
                let &child = index_of_id.get(child_id).with_context(|| {
                    format!(
                        "node {} lists child {child_id}, which the profile does not have",
                        raw_node.id
                    )
                })?;
                let slot = &mut nodes[child as usize].parent;
                if *slot != NO_PARENT {
                    bail!("node {child_id} is listed as a child of two nodes");
                }
                *slot = parent as u32;
            }
        }
        // Parents before children; a cycle would leave nodes out.
        let mut children: Vec<Vec<u32>> = vec![Vec::new(); nodes.len()];
        let mut topological = Vec::with_capacity(nodes.len());
        for (i, node) in nodes.iter().enumerate() {
            match node.parent {
                NO_PARENT => topological.push(i as u32),
                parent => children[parent as usize].push(i as u32),
            }
        }
        let mut next = 0;
        while next < topological.len() {
            let node = topological[next] as usize;
            topological.extend_from_slice(&children[node]);
            next += 1;
        }
        if topological.len() != nodes.len() {
            bail!("the profile's nodes form a cycle instead of a tree");
        }

        // Sample times: startTime + running sum of deltas; each sample lasts until the next one.
        let mut stamped: Vec<(f64, u32)> = Vec::with_capacity(raw.samples.len());
        let mut t = raw.start_time;
        for (i, (&id, &delta)) in raw.samples.iter().zip(&raw.time_deltas).enumerate() {
            t += delta;
            let &node = index_of_id.get(&id).with_context(|| {
                format!("sample {i} is in node {id}, which the profile does not have")
            })?;
            stamped.push((t, node));
        }
        if !stamped.is_sorted_by(|a, b| a.0 <= b.0) {
            // V8 occasionally records a sample out of order; DevTools sorts them too.
            stamped.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        let mut self_micros = vec![0.0; nodes.len()];
        for (i, &(time, node)) in stamped.iter().enumerate() {
            let until = stamped.get(i + 1).map_or(raw.end_time, |next| next.0);
            let weight = until - time;
            if weight.is_finite() && weight > 0.0 {
                self_micros[node as usize] += weight;
            }
        }
        Ok(CpuProfile {
            frames,
            nodes,
            topological,
            self_micros,
            sample_count: raw.samples.len(),
            start_time: raw.start_time,
            end_time: raw.end_time,
        })
    }

    pub fn sample_count(&self) -> usize {
        self.sample_count
    }

    /// `endTime - startTime`.
    pub fn duration(&self) -> Duration {
        micros(self.end_time - self.start_time)
    }

    /// Time covered by samples (the denominator of every share).
    pub fn sampled_time(&self) -> Duration {
        micros(self.sampled_micros())
    }

    fn sampled_micros(&self) -> f64 {
        self.self_micros.iter().sum()
    }

    /// The `n` functions with the most self time (ties: more total time first). The profile's
    /// `(root)` is left out; `(program)`, `(idle)` and `(garbage collector)` stay, as DevTools shows
    /// them.
    pub fn top_functions(&self, n: usize) -> Vec<FunctionTime> {
        let mut self_time = vec![0.0f64; self.frames.len()];
        let mut total_time = vec![0.0f64; self.frames.len()];
        // Each frame counted once per stack: remember the last leaf node that credited it.
        let mut credited_by = vec![u32::MAX; self.frames.len()];
        for (leaf, &weight) in self.self_micros.iter().enumerate() {
            if weight <= 0.0 {
                continue;
            }
            self_time[self.nodes[leaf].frame as usize] += weight;
            let mut node = leaf as u32;
            while node != NO_PARENT {
                let frame = self.nodes[node as usize].frame as usize;
                if credited_by[frame] != leaf as u32 {
                    credited_by[frame] = leaf as u32;
                    total_time[frame] += weight;
                }
                node = self.nodes[node as usize].parent;
            }
        }
        let total = self.sampled_micros();
        let share = |t: f64| if total > 0.0 { t / total } else { 0.0 };
        let mut rows: Vec<FunctionTime> = self
            .frames
            .iter()
            .enumerate()
            .filter(|&(i, frame)| total_time[i] > 0.0 && !self.is_root_frame(frame))
            .map(|(i, frame)| FunctionTime {
                function: display_name(&frame.function).to_owned(),
                url: frame.url.clone(),
                line: frame.line,
                column: frame.column,
                self_time: micros(self_time[i]),
                total_time: micros(total_time[i]),
                self_share: share(self_time[i]),
                total_share: share(total_time[i]),
            })
            .collect();
        rows.sort_by(|a, b| {
            b.self_time
                .cmp(&a.self_time)
                .then(b.total_time.cmp(&a.total_time))
                .then_with(|| a.function.cmp(&b.function))
        });
        rows.truncate(n);
        rows
    }

    fn is_root_frame(&self, frame: &Frame) -> bool {
        frame.function == "(root)" && frame.url.is_empty()
    }

    /// Share (0..=1) of sampled time whose stack holds a frame that `filter` matches (each sample
    /// counted once, however many matching frames it has).
    pub fn share(&self, filter: &FrameFilter) -> f64 {
        let mut inside = vec![false; self.nodes.len()];
        let mut matched = 0.0;
        for &i in &self.topological {
            let node = &self.nodes[i as usize];
            let parent_inside = node.parent != NO_PARENT && inside[node.parent as usize];
            inside[i as usize] = parent_inside
                || filter.matches(&self.frames[node.frame as usize], &node.tick_lines);
            if inside[i as usize] {
                matched += self.self_micros[i as usize];
            }
        }
        let total = self.sampled_micros();
        if total > 0.0 { matched / total } else { 0.0 }
    }

    /// Like [`share`](Self::share), but of the busy time only: samples in `(idle)`, `(program)`
    /// and `(garbage collector)` are left out of both sides. This is what a person reads off a
    /// profile they recorded for as long as they liked ("not counting idle, the jam's file has most
    /// of the time"); a share of all samples falls as the recording grows longer.
    pub fn busy_share(&self, filter: &FrameFilter) -> f64 {
        let idle: f64 = self
            .nodes
            .iter()
            .zip(&self.self_micros)
            .filter(|(node, _)| is_meta_frame(&self.frames[node.frame as usize]))
            .map(|(_, micros)| *micros)
            .sum();
        let total = self.sampled_micros();
        let busy = total - idle;
        if busy > 0.0 {
            (self.share(filter) * total / busy).min(1.0)
        } else {
            0.0
        }
    }

    /// The profile as folded stacks (`outer;inner;leaf microseconds` per line, sorted), the input
    /// format of flame graph tools. Frames read `function (url:line)`; the `(root)` frame is left out.
    pub fn folded_stacks(&self) -> String {
        let labels: Vec<String> = self.frames.iter().map(frame_label).collect();
        let mut stacks: BTreeMap<String, u64> = BTreeMap::new();
        let mut path: Vec<u32> = Vec::new();
        for (leaf, &weight) in self.self_micros.iter().enumerate() {
            let weight = weight.round() as u64;
            if weight == 0 {
                continue;
            }
            path.clear();
            let mut node = leaf as u32;
            while node != NO_PARENT {
                let frame = self.nodes[node as usize].frame;
                if !self.is_root_frame(&self.frames[frame as usize]) {
                    path.push(frame);
                }
                node = self.nodes[node as usize].parent;
            }
            let mut line = String::new();
            for (i, &frame) in path.iter().rev().enumerate() {
                if i > 0 {
                    line.push(';');
                }
                line.push_str(&labels[frame as usize]);
            }
            *stacks.entry(line).or_insert(0) += weight;
        }
        let mut out = String::new();
        for (stack, weight) in stacks {
            let _ = writeln!(out, "{stack} {weight}");
        }
        out
    }

    /// Writes a flame graph (SVG) of the profile: widths are sampled time in microseconds.
    pub fn write_flamegraph(&self, out: &Path, title: &str) -> Result<()> {
        let write = || -> Result<()> {
            let folded = self.folded_stacks();
            if folded.is_empty() {
                bail!("the profile has no sampled time, so there is nothing to draw");
            }
            let mut options = inferno::flamegraph::Options::default();
            title.clone_into(&mut options.title);
            "μs".clone_into(&mut options.count_name);
            options.hash = true; // the same function gets the same colour in every graph
            let file = fs::File::create(out).context("cannot create the file")?;
            let mut writer = BufWriter::new(file);
            inferno::flamegraph::from_lines(&mut options, folded.lines(), &mut writer)
                .context("drawing the flame graph")?;
            writer.flush().context("writing the file")?;
            Ok(())
        };
        write().with_context(|| format!("Failed to write flame graph {}", out.display()))
    }
}

fn display_name(function: &str) -> &str {
    if function.is_empty() {
        "(anonymous)"
    } else {
        function
    }
}

/// `url:line:column` (1-based), as much of it as is known.
fn location(url: &str, line: u32, column: u32) -> String {
    match (url.is_empty(), line, column) {
        (true, _, _) => String::new(),
        (false, 0, _) => url.to_owned(),
        (false, line, 0) => format!("{url}:{line}"),
        (false, line, column) => format!("{url}:{line}:{column}"),
    }
}

/// `name (url:line:column)`, with the characters that folded stacks reserve replaced.
fn frame_label(frame: &Frame) -> String {
    let name = display_name(&frame.function);
    let label = match location(&frame.url, frame.line, frame.column) {
        at if at.is_empty() => name.to_owned(),
        at => format!("{name} ({at})"),
    };
    label.replace([';', '\n', '\r'], ",")
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1e3)
}

/// Microseconds as a `Duration`; nonsense (negative, NaN) is zero, anything huge saturates.
fn micros(us: f64) -> Duration {
    if us > 0.0 {
        Duration::try_from_secs_f64(us / 1e6).unwrap_or(Duration::MAX)
    } else {
        Duration::ZERO
    }
}

impl FunctionTime {
    /// One of V8's pseudo-frames for time not spent running JavaScript (`(idle)`, `(program)`,
    /// `(garbage collector)`).
    pub fn is_meta(&self) -> bool {
        is_meta(&self.function, &self.url)
    }
}

/// V8's pseudo-frames for time not spent in JavaScript of the app.
fn is_meta_frame(frame: &Frame) -> bool {
    is_meta(&frame.function, &frame.url)
}

fn is_meta(function: &str, url: &str) -> bool {
    url.is_empty() && matches!(function, "(idle)" | "(program)" | "(garbage collector)")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (root) → main → { jam (lines 10..20), idle }; samples: jam ×3 (100 µs each), main, idle.
    const PROFILE: &str = r#"{
      "nodes": [
        {"id": 1, "callFrame": {"functionName": "(root)", "scriptId": "0", "url": "", "lineNumber": -1, "columnNumber": -1}, "hitCount": 0, "children": [2]},
        {"id": 2, "callFrame": {"functionName": "main", "scriptId": "1", "url": "file:///app/main.js", "lineNumber": 0, "columnNumber": 0}, "hitCount": 1, "children": [3, 4]},
        {"id": 3, "callFrame": {"functionName": "jam", "scriptId": "1", "url": "file:///app/main.js", "lineNumber": 9, "columnNumber": 2}, "hitCount": 3, "positionTicks": [{"line": 12, "ticks": 3}]},
        {"id": 4, "callFrame": {"functionName": "", "scriptId": "1", "url": "file:///app/main.js", "lineNumber": 29, "columnNumber": 2}, "hitCount": 1}
      ],
      "startTime": 1000, "endTime": 1600,
      "samples": [3, 3, 3, 2, 4],
      "timeDeltas": [100, 100, 100, 100, 100]
    }"#;

    #[test]
    fn weights_samples_by_the_time_to_the_next_one() {
        let p = CpuProfile::from_slice(PROFILE.as_bytes()).unwrap();
        assert_eq!(p.sample_count(), 5);
        assert_eq!(p.duration(), Duration::from_micros(600));
        // Sample times 1100..1500; the last lasts until endTime (1600).
        assert_eq!(p.sampled_time(), Duration::from_micros(500));
        let top = p.top_functions(10);
        let names: Vec<&str> = top.iter().map(|f| f.function.as_str()).collect();
        assert_eq!(names, ["jam", "main", "(anonymous)"]);
        assert_eq!(top[0].self_time, Duration::from_micros(300));
        assert_eq!(top[0].line, 10, "0-based lineNumber 9 is line 10");
        assert_eq!(top[0].column, 3, "0-based columnNumber 2 is column 3");
        assert_eq!(top[0].location(), "file:///app/main.js:10:3");
        assert_eq!(top[1].total_time, Duration::from_micros(500));
        assert!((top[1].total_share - 1.0).abs() < 1e-9);
        assert!((top[0].self_share - 0.6).abs() < 1e-9);
    }

    #[test]
    fn share_matches_by_url_and_line_range_or_name() {
        let p = CpuProfile::from_slice(PROFILE.as_bytes()).unwrap();
        let by_lines = |first, last| FrameFilter {
            url_suffix: "main.js".into(),
            lines: Some((first, last)),
            function: None,
        };
        assert!((p.share(&by_lines(10, 20)) - 0.6).abs() < 1e-9);
        assert!(
            (p.share(&by_lines(12, 12)) - 0.6).abs() < 1e-9,
            "a positionTicks line inside the range matches"
        );
        assert!(
            (p.share(&by_lines(1, 1)) - 1.0).abs() < 1e-9,
            "main holds every sample"
        );
        assert_eq!(p.share(&by_lines(50, 60)), 0.0);
        let by_name = FrameFilter {
            url_suffix: "/app/main.js".into(),
            lines: None,
            function: Some("jam".into()),
        };
        assert!((p.share(&by_name) - 0.6).abs() < 1e-9);
        let elsewhere = FrameFilter {
            url_suffix: "other.js".into(),
            ..by_name
        };
        assert_eq!(p.share(&elsewhere), 0.0);
    }

    #[test]
    fn folds_stacks_without_the_root() {
        let p = CpuProfile::from_slice(PROFILE.as_bytes()).unwrap();
        assert_eq!(
            p.folded_stacks(),
            "main (file:///app/main.js:1:1) 100\n\
             main (file:///app/main.js:1:1);(anonymous) (file:///app/main.js:30:3) 100\n\
             main (file:///app/main.js:1:1);jam (file:///app/main.js:10:3) 300\n"
        );
    }

    #[test]
    fn recursion_counts_once_in_total_time() {
        let text = r#"{"nodes": [
            {"id": 1, "callFrame": {"functionName": "(root)", "url": "", "lineNumber": -1}, "children": [2]},
            {"id": 2, "callFrame": {"functionName": "walk", "url": "a.js", "lineNumber": 0}, "children": [3]},
            {"id": 3, "callFrame": {"functionName": "walk", "url": "a.js", "lineNumber": 0}}
          ], "startTime": 0, "endTime": 20, "samples": [3, 2], "timeDeltas": [0, 10]}"#;
        let p = CpuProfile::from_slice(text.as_bytes()).unwrap();
        let top = p.top_functions(5);
        assert_eq!(top.len(), 1);
        assert_eq!(top[0].total_time, Duration::from_micros(20));
        assert_eq!(top[0].self_time, Duration::from_micros(20));
    }

    #[test]
    fn malformed_profiles_are_errors_not_panics() {
        for (text, message) in [
            ("", "the file is empty"),
            ("not json", "this is not a CPU profile"),
            (r#"{"nodes": []}"#, "this is not a CPU profile"),
            (
                r#"{"nodes": [], "startTime": 0, "endTime": 1}"#,
                "the profile has no nodes",
            ),
            (
                r#"{"nodes": [{"id": 1, "callFrame": {"functionName": "a", "lineNumber": 0}}],
                   "startTime": 0, "endTime": 1, "samples": [1, 1], "timeDeltas": [1]}"#,
                "2 samples but 1 timeDeltas",
            ),
            (
                r#"{"nodes": [{"id": 1, "callFrame": {"functionName": "a", "lineNumber": 0}}],
                   "startTime": 0, "endTime": 1, "samples": [7], "timeDeltas": [1]}"#,
                "sample 0 is in node 7",
            ),
            (
                r#"{"nodes": [{"id": 1, "callFrame": {"functionName": "a", "lineNumber": 0}, "children": [9]}],
                   "startTime": 0, "endTime": 1}"#,
                "lists child 9",
            ),
            (
                r#"{"nodes": [{"id": 1, "callFrame": {"functionName": "a", "lineNumber": 9223372036854775807}}],
                   "startTime": -1e308, "endTime": 1e308, "samples": [1], "timeDeltas": [1e308]}"#,
                "no error: absurd numbers saturate",
            ),
            (
                r#"{"nodes": [{"id": 1, "callFrame": {"functionName": "a", "lineNumber": 0}, "children": [2]},
                             {"id": 2, "callFrame": {"functionName": "b", "lineNumber": 0}, "children": [1]}],
                   "startTime": 0, "endTime": 1}"#,
                "cycle",
            ),
        ] {
            if message.starts_with("no error") {
                let p = CpuProfile::from_slice(text.as_bytes()).unwrap();
                assert_eq!(p.duration(), Duration::MAX);
                assert_eq!(p.top_functions(5).len(), 1);
                continue;
            }
            let err = CpuProfile::from_slice(text.as_bytes()).unwrap_err();
            assert!(
                format!("{err:#}").contains(message),
                "{text}: got {err:#}, wanted {message}"
            );
        }
    }
}
