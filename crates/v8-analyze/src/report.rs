//! Plain-text tables of what the analyses found, for a terminal (`lab-runner analyze`, the lab's
//! "do it for me").

use std::fmt::Write as _;

use lab_util::{duration, units};

use super::cpuprofile::{CpuProfile, FunctionTime};
use super::heapsnapshot::{
    ARRAY_BUFFER_BACKING_STORE, Convention, Diff, HeapSnapshot, RetainerPath, Summary,
};

/// Names longer than this are cut in the middle of tables.
const NAME_WIDTH: usize = 60;
/// Prose lines are wrapped at this width.
const TEXT_WIDTH: usize = 80;

/// The top-functions table of a CPU profile.
pub fn cpu_profile(profile: &CpuProfile, source: &str, top: usize) -> String {
    let mut out = String::new();
    let samples = profile.sample_count();
    let sampled = profile.sampled_time();
    let interval = if samples > 0 {
        sampled.as_secs_f64() * 1e3 / samples as f64
    } else {
        0.0
    };
    let _ = writeln!(
        out,
        "CPU profile {source}: {}, {} samples (one every {interval:.2} ms on average)",
        duration::seconds(profile.duration()),
        thousands(samples as u64),
    );
    let rows = profile.top_functions(top);
    if rows.is_empty() {
        out.push_str("No sampled time: the profile is empty.\n");
        return out;
    }
    let _ = writeln!(
        out,
        "Top {} functions by self time. Self % and Total % are shares of the {:.1} ms of sampled \
         time (all samples, idle included); Location is url:line:column.\n",
        rows.len(),
        sampled.as_secs_f64() * 1e3
    );
    out.push_str(&functions_table(&rows));
    out
}

fn functions_table(rows: &[FunctionTime]) -> String {
    let mut table = Table::new(&[
        ("Self", Align::Right),
        ("Self %", Align::Right),
        ("Total", Align::Right),
        ("Total %", Align::Right),
        ("Function", Align::Left),
        ("Location", Align::Left),
    ]);
    for f in rows {
        table.row(vec![
            millis(f.self_time),
            percent(f.self_share),
            millis(f.total_time),
            percent(f.total_share),
            shorten(&f.function),
            f.location(),
        ]);
    }
    table.render()
}

/// The per-constructor table of a heap snapshot.
pub fn heap_summary(
    snapshot: &HeapSnapshot,
    summary: &Summary,
    source: &str,
    top: usize,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Heap snapshot {source}: {} nodes, {} edges, {} in all (shallow)",
        thousands(snapshot.node_count() as u64),
        thousands(snapshot.edge_count() as u64),
        units::bytes(snapshot.total_shallow_size() as f64),
    );
    let _ = writeln!(out, "{}", convention_line(summary.convention));
    let shown = summary.constructors.len().min(top);
    let _ = writeln!(
        out,
        "Top {shown} of {} constructors by retained size:\n",
        summary.constructors.len()
    );
    out.push_str(&summary_table(summary, top));
    out.push('\n');
    out.push_str(&backing_store_line(summary));
    out.push_str(&wrap(&format!("Sizes: {}", summary.size_convention)));
    out
}

/// How many retainer rows a path shows before "… N more".
const RETAINER_ROWS: usize = 6;

/// What keeps the largest objects alive: each one's retainer path, as DevTools' *Retainers* pane
/// lists first, and the variable or property that holds it with what that retains.
pub fn retainers(paths: &[RetainerPath], retained_size_of: impl Fn(u64) -> Option<u64>) -> String {
    let mut out = String::new();
    let objects = match paths.len() {
        1 => "the largest object".to_string(),
        n => format!("the {n} largest objects"),
    };
    out.push_str(&wrap_at(
        &format!(
            "What keeps {objects} alive (the shortest retainer path, which the Retainers \
         pane of Chrome DevTools lists first; read each path upwards):",
        ),
        78,
    ));
    for (i, path) in paths.iter().enumerate() {
        let _ = writeln!(
            out,
            "\n{}. {} @{}, {}",
            i + 1,
            path.object.class,
            path.object.id,
            units::bytes(path.object.self_size as f64)
        );
        for step in path.retainers.iter().take(RETAINER_ROWS) {
            let _ = writeln!(
                out,
                "     {} in {} @{}",
                step.edge, step.from.class, step.from.id
            );
        }
        if path.retainers.len() > RETAINER_ROWS {
            let _ = writeln!(
                out,
                "     … {} more up to the root",
                path.retainers.len() - RETAINER_ROWS
            );
        }
        if let Some((step, value)) = path.holder() {
            let what = match step.edge_type.as_str() {
                "context" => "a variable of a module or function scope".to_string(),
                _ => format!("a property of {}", step.from.class),
            };
            let retains = retained_size_of(value.id)
                .map(|bytes| format!(", retains {}", units::bytes(bytes as f64)))
                .unwrap_or_default();
            let text = wrap_at(
                &format!(
                    "Held by `{}` ({what}); its value, {} @{}{retains}.",
                    step.edge, value.class, value.id
                ),
                75,
            );
            for line in text.lines() {
                let _ = writeln!(out, "   {line}");
            }
        }
    }
    out
}

/// The objects a three-snapshot comparison kept, per constructor.
pub fn three_snapshot(summary: &Summary, sources: [&str; 3], top: usize) -> String {
    let [a, b, c] = sources;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Allocated between {a} and {b} and still alive in {c}: {} objects, {} (shallow)",
        thousands(summary.object_count),
        units::bytes(summary.shallow_size as f64),
    );
    let _ = writeln!(out, "{}", convention_line(summary.convention));
    if summary.constructors.is_empty() {
        out.push_str("Nothing: every object allocated in between was freed.\n");
        return out;
    }
    out.push('\n');
    out.push_str(&summary_table(summary, top));
    out.push('\n');
    out.push_str(&backing_store_line(summary));
    out.push_str(&wrap(&format!(
        "Sizes: retained sizes are measured in {c}. {}",
        summary.size_convention
    )));
    out
}

/// Which convention the sizes follow, in one line.
fn convention_line(convention: Convention) -> &'static str {
    match convention {
        Convention::DevTools => {
            "Sizes as Chrome DevTools' Memory panel shows them (--convention devtools)."
        }
        Convention::V8 => {
            "Sizes of V8's raw graph (--convention v8), not what Chrome DevTools shows."
        }
    }
}

fn summary_table(summary: &Summary, top: usize) -> String {
    let mut table = Table::new(&[
        ("Constructor", Align::Left),
        ("Count", Align::Right),
        ("Shallow size", Align::Right),
        ("Retained size", Align::Right),
    ]);
    for c in summary.constructors.iter().take(top) {
        table.row(vec![
            shorten(&c.label()),
            thousands(c.count),
            units::bytes(c.shallow_size as f64),
            units::bytes(c.retained_size as f64),
        ]);
    }
    table.render()
}

fn backing_store_line(summary: &Summary) -> String {
    let stores = summary.backing_store_count();
    wrap(&format!(
        "Buffer data (ArrayBuffer backing stores, \"{ARRAY_BUFFER_BACKING_STORE}\"): {} in {} {}",
        units::bytes(summary.backing_store_bytes() as f64),
        thousands(stores),
        if stores == 1 { "store" } else { "stores" },
    ))
}

/// The per-constructor changes between two snapshots.
pub fn heap_diff(diff: &Diff, old: &str, new: &str, top: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Changes from {old} to {new}, by object id: {} ({} constructors changed)",
        signed_bytes(diff.size_delta()),
        diff.constructors.len(),
    );
    let _ = writeln!(out, "{}", convention_line(diff.convention));
    if diff.constructors.is_empty() {
        out.push_str("No object was allocated or freed in between.\n");
        return out;
    }
    out.push('\n');
    let mut table = Table::new(&[
        ("Constructor", Align::Left),
        ("# New", Align::Right),
        ("# Deleted", Align::Right),
        ("# Delta", Align::Right),
        ("Alloc. size", Align::Right),
        ("Freed size", Align::Right),
        ("Size delta", Align::Right),
    ]);
    for c in diff.constructors.iter().take(top) {
        table.row(vec![
            shorten(&c.label()),
            thousands(c.new_count),
            thousands(c.deleted_count),
            signed(c.count_delta()),
            units::bytes(c.allocated_size as f64),
            units::bytes(c.freed_size as f64),
            signed_bytes(c.size_delta()),
        ]);
    }
    out.push_str(&table.render());
    let _ = writeln!(
        out,
        "\nBuffer data (ArrayBuffer backing stores, \"{ARRAY_BUFFER_BACKING_STORE}\"): {}",
        signed_bytes(diff.backing_store_delta())
    );
    out.push_str(&wrap(
        "Sizes: shallow sizes of the objects allocated (ids only in the new snapshot) and freed \
         (ids only in the old one).",
    ));
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

/// Columns padded to their widest cell, two spaces apart.
struct Table {
    headers: Vec<(&'static str, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(headers: &[(&'static str, Align)]) -> Table {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn render(&self) -> String {
        let mut widths: Vec<usize> = self
            .headers
            .iter()
            .map(|(h, _)| h.chars().count())
            .collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let mut line = |cells: &mut dyn Iterator<Item = &str>| {
            let mut text = String::new();
            for (i, cell) in cells.enumerate() {
                let (width, align) = (widths[i], self.headers[i].1);
                let pad = width.saturating_sub(cell.chars().count());
                if i > 0 {
                    text.push_str("  ");
                }
                match align {
                    Align::Right => {
                        text.extend(std::iter::repeat_n(' ', pad));
                        text.push_str(cell);
                    }
                    Align::Left => {
                        text.push_str(cell);
                        text.extend(std::iter::repeat_n(' ', pad));
                    }
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        line(&mut self.headers.iter().map(|(h, _)| *h));
        for row in &self.rows {
            line(&mut row.iter().map(String::as_str));
        }
        out
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn signed(n: i64) -> String {
    match n {
        0 => "0".to_owned(),
        n if n > 0 => format!("+{}", thousands(n.unsigned_abs())),
        n => format!("-{}", thousands(n.unsigned_abs())),
    }
}

fn signed_bytes(n: i64) -> String {
    match n {
        0 => "0 B".to_owned(),
        n if n > 0 => format!("+{}", units::bytes(n as f64)),
        n => format!("-{}", units::bytes(n.unsigned_abs() as f64)),
    }
}

fn millis(d: std::time::Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// Cuts a long name in the middle: `veryLongName…ofAFunction`.
fn shorten(name: &str) -> String {
    let count = name.chars().count();
    if count <= NAME_WIDTH {
        return name.to_owned();
    }
    let keep = NAME_WIDTH - 1;
    let head: String = name.chars().take(keep / 2).collect();
    let tail: String = name.chars().skip(count - (keep - keep / 2)).collect();
    format!("{head}…{tail}")
}

fn wrap(text: &str) -> String {
    wrap_at(text, TEXT_WIDTH)
}

fn wrap_at(text: &str, width: usize) -> String {
    let mut out = lab_util::text::wrap(text, width).join("\n");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers_for_people() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(12_345_678), "12,345,678");
        assert_eq!(signed(-1_500), "-1,500");
        assert_eq!(signed_bytes(64 * 1024 * 1024), "+64.0 MiB");
        assert_eq!(shorten(&"x".repeat(80)).chars().count(), NAME_WIDTH);
    }

    #[test]
    fn tables_align_their_columns() {
        let mut table = Table::new(&[("Name", Align::Left), ("Count", Align::Right)]);
        table.row(vec!["LeakyThing".into(), "10,000".into()]);
        table.row(vec!["(string)".into(), "7".into()]);
        assert_eq!(
            table.render(),
            "Name         Count\nLeakyThing  10,000\n(string)         7\n"
        );
    }
}
