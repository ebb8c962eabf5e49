//! Comparing snapshots by object id: what was allocated, what was freed, and (the three-snapshot
//! technique) what was allocated between two snapshots and is still alive in a third.

use std::collections::HashMap;

use serde::Serialize;

use super::HeapSnapshot;
use super::devtools::ClassKey;
use super::graph::Location;
use super::summary::{ARRAY_BUFFER_BACKING_STORE, Summary};

/// One constructor's change between two snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConstructorDiff {
    pub name: String,
    /// Where the constructor was defined (`devtools` convention, objects only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// Objects in the new snapshot whose id the old one does not have.
    pub new_count: u64,
    /// Objects in the old snapshot whose id the new one does not have.
    pub deleted_count: u64,
    /// Shallow size of the new objects.
    pub allocated_size: u64,
    /// Shallow size of the deleted objects.
    pub freed_size: u64,
}

impl ConstructorDiff {
    /// The name, with the place it was defined when there is one (see
    /// [`ConstructorSummary::label`](super::ConstructorSummary::label)).
    pub fn label(&self) -> String {
        super::ConstructorSummary {
            name: self.name.clone(),
            location: self.location,
            count: 0,
            shallow_size: 0,
            retained_size: 0,
        }
        .label()
    }

    pub fn count_delta(&self) -> i64 {
        self.new_count as i64 - self.deleted_count as i64
    }

    pub fn size_delta(&self) -> i64 {
        self.allocated_size as i64 - self.freed_size as i64
    }
}

/// What changed between two snapshots of the same process, per constructor, matched by node id (V8
/// keeps an object's id across the snapshots of one process). Rows with no new and no deleted
/// objects are left out; the rest are sorted by the size of the change, largest first.
#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    pub constructors: Vec<ConstructorDiff>,
    /// The convention the classes and sizes follow (the new snapshot's).
    pub convention: super::Convention,
}

impl Diff {
    pub fn constructor(&self, name: &str) -> Option<&ConstructorDiff> {
        self.constructors.iter().find(|c| c.name == name)
    }

    /// Change in bytes held by ArrayBuffer backing stores (Buffer data).
    pub fn backing_store_delta(&self) -> i64 {
        self.constructor(ARRAY_BUFFER_BACKING_STORE)
            .map_or(0, ConstructorDiff::size_delta)
    }

    pub fn size_delta(&self) -> i64 {
        self.constructors
            .iter()
            .map(ConstructorDiff::size_delta)
            .sum()
    }
}

/// Counted nodes (see `HeapSnapshot::is_counted`) as `(id, node)`, sorted by id.
fn counted_by_id(snapshot: &HeapSnapshot) -> Vec<(u32, u32)> {
    let graph = &snapshot.graph;
    let mut ids: Vec<(u32, u32)> = (0..graph.node_count() as u32)
        .filter(|&node| snapshot.is_counted(node))
        .map(|node| (graph.node_ids[node as usize], node))
        .collect();
    if !ids.is_sorted() {
        ids.sort_unstable();
    }
    ids
}

/// See [`Diff`]. An id present in both snapshots under different constructors counts as deleted from
/// the old one and new in the new one, as Chrome DevTools counts it. In the `devtools` convention
/// the old snapshot's plain objects are named by the new one's interface definitions, as DevTools'
/// comparison view does.
pub fn diff(old: &HeapSnapshot, new: &HeapSnapshot) -> Diff {
    let old_classes = old.classes_with(new.interfaces());
    let new_classes = new.classes();
    // One row per class, shared by both snapshots.
    let mut rows: Vec<ConstructorDiff> = Vec::new();
    let mut row_of_key: HashMap<ClassKey, usize> = HashMap::new();
    let mut row_index = |key: &ClassKey| -> usize {
        *row_of_key.entry(key.clone()).or_insert_with(|| {
            rows.push(ConstructorDiff {
                name: key.name.clone(),
                location: key.location,
                new_count: 0,
                deleted_count: 0,
                allocated_size: 0,
                freed_size: 0,
            });
            rows.len() - 1
        })
    };
    let old_rows: Vec<usize> = old_classes.keys.iter().map(&mut row_index).collect();
    let new_rows: Vec<usize> = new_classes.keys.iter().map(&mut row_index).collect();

    let old_ids = counted_by_id(old);
    let new_ids = counted_by_id(new);
    let deleted = |node: u32, rows: &mut Vec<ConstructorDiff>| {
        let row = &mut rows[old_rows[old_classes.of_node[node as usize] as usize]];
        row.deleted_count += 1;
        row.freed_size += old.shown_size(node);
    };
    let added = |node: u32, rows: &mut Vec<ConstructorDiff>| {
        let row = &mut rows[new_rows[new_classes.of_node[node as usize] as usize]];
        row.new_count += 1;
        row.allocated_size += new.shown_size(node);
    };
    let (mut i, mut j) = (0, 0);
    while i < old_ids.len() || j < new_ids.len() {
        match (old_ids.get(i), new_ids.get(j)) {
            (Some(&(old_id, old_node)), Some(&(new_id, new_node))) if old_id == new_id => {
                if old_rows[old_classes.of_node[old_node as usize] as usize]
                    != new_rows[new_classes.of_node[new_node as usize] as usize]
                {
                    deleted(old_node, &mut rows);
                    added(new_node, &mut rows);
                }
                i += 1;
                j += 1;
            }
            (Some(&(old_id, old_node)), Some(&(new_id, _))) if old_id < new_id => {
                deleted(old_node, &mut rows);
                i += 1;
            }
            (Some(&(_, old_node)), None) => {
                deleted(old_node, &mut rows);
                i += 1;
            }
            (_, Some(&(_, new_node))) => {
                added(new_node, &mut rows);
                j += 1;
            }
            (None, None) => break,
        }
    }
    rows.retain(|r| r.new_count > 0 || r.deleted_count > 0);
    rows.sort_by(|a, b| {
        b.size_delta()
            .unsigned_abs()
            .cmp(&a.size_delta().unsigned_abs())
            .then(b.new_count.cmp(&a.new_count))
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.location.cmp(&b.location))
    });
    Diff {
        constructors: rows,
        convention: new.convention(),
    }
}

/// The three-snapshot technique: of the objects alive in `c`, those allocated after `a` was taken and
/// already alive when `b` was (their ids are in `b` but not in `a`), summarised per constructor with
/// their retained sizes in `c`. Take `a`, run the suspect operation, take `b`, run it again, take `c`:
/// what survives from the first run into `c` is what leaks.
pub fn three_snapshot(a: &HeapSnapshot, b: &HeapSnapshot, c: &HeapSnapshot) -> Summary {
    let ids = |graph: &super::graph::Graph| {
        let mut ids = graph.node_ids.clone();
        ids.sort_unstable();
        ids
    };
    let a_ids = ids(&a.graph);
    let b_ids = ids(&b.graph);
    let c_ids = &c.graph.node_ids;
    c.summary_where(|node| {
        let id = c_ids[node as usize];
        b_ids.binary_search(&id).is_ok() && a_ids.binary_search(&id).is_err()
    })
}
