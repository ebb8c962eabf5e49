//! What keeps an object alive: the retainer path from the root to the largest objects, as Chrome
//! DevTools' *Retainers* pane shows it (`backing_store in ArrayBuffer`, `[0] in Array`,
//! `retained in system / Context`, …), and the *holder*: the first variable or property on that
//! path, the name a participant looks for.
//!
//! The path is the shortest one from the root over edges that retain (weak and shortcut edges do
//! not), which is the retainer DevTools lists first (it sorts retainers by their distance from the
//! root). Unlike the summary, this needs every edge's type and name, so the file is read whole into
//! flat arrays (`serde_json`, not the streaming parser): memory is about twice the file. It is meant
//! for the snapshots a lab takes (tens of MB), not for the largest production heaps.

use std::collections::VecDeque;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::layout::{EdgeField, Header, Layout, NodeField};

/// One object, as DevTools names it in a retainer row: `Array @62217`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetainerNode {
    /// The object's name as the retainer row shows it (`Array`, `system / Context`,
    /// `system / JSArrayBufferData`).
    pub class: String,
    /// The `@` id.
    pub id: u64,
    pub self_size: u64,
}

/// One row of the retainer path: `edge in holder`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetainerStep {
    /// `context`, `property`, `element`, `internal`, `hidden`, …
    pub edge_type: String,
    /// The variable or property name, or `[index]` for elements.
    pub edge: String,
    /// The object that holds the edge.
    pub from: RetainerNode,
}

/// The object and its retainers, nearest first, up to the root's child.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetainerPath {
    pub object: RetainerNode,
    pub retainers: Vec<RetainerStep>,
}

impl RetainerPath {
    /// The first variable or property on the path (a `context` or `property` edge): what the
    /// program calls the thing that keeps the object alive. With the object it points at (the
    /// holder's value: the array or map that holds the object, or the object itself).
    pub fn holder(&self) -> Option<(&RetainerStep, &RetainerNode)> {
        self.retainers
            .iter()
            .enumerate()
            .find(|(_, step)| matches!(step.edge_type.as_str(), "context" | "property"))
            .map(|(i, step)| {
                let value = if i == 0 {
                    &self.object
                } else {
                    &self.retainers[i - 1].from
                };
                (step, value)
            })
    }
}

/// The file as V8 writes it: flat arrays, read whole.
#[derive(Deserialize)]
struct RawSnapshot {
    snapshot: Header,
    nodes: Vec<u64>,
    edges: Vec<u64>,
    strings: Vec<String>,
}

/// A snapshot with every edge's type and name, for retainer paths.
pub struct RetainerGraph {
    layout: Layout,
    raw: RawSnapshot,
    node_fields: usize,
    edge_fields: usize,
    /// `first_edge[n]..first_edge[n + 1]`: node `n`'s edges, as indexes of edge records.
    first_edge: Vec<usize>,
    field: Fields,
}

/// Where each field sits within a record.
#[derive(Clone, Copy)]
struct Fields {
    node_type: usize,
    node_name: usize,
    node_id: usize,
    node_size: usize,
    node_edges: usize,
    edge_type: usize,
    edge_name: usize,
    edge_to: usize,
}

impl RetainerGraph {
    pub fn load(path: &Path) -> Result<RetainerGraph> {
        let read = || -> Result<RetainerGraph> {
            let file = File::open(path).context("cannot open the file")?;
            let raw: RawSnapshot = serde_json::from_reader(BufReader::new(file))
                .context("not a heap snapshot (the snapshot, nodes, edges and strings of one)")?;
            RetainerGraph::new(raw)
        };
        read().with_context(|| format!("Failed to read the retainers of {}", path.display()))
    }

    pub fn from_slice(bytes: &[u8]) -> Result<RetainerGraph> {
        let raw: RawSnapshot =
            serde_json::from_slice(bytes).context("not a heap snapshot (nodes, edges, strings)")?;
        RetainerGraph::new(raw)
    }

    fn new(raw: RawSnapshot) -> Result<RetainerGraph> {
        let layout = Layout::from_meta(&raw.snapshot.meta)?;
        let node_at = |f: NodeField| layout.node_fields.iter().position(|&x| x == f);
        let edge_at = |f: EdgeField| layout.edge_fields.iter().position(|&x| x == f);
        // `Layout::from_meta` has required each of these exactly once.
        let field = Fields {
            node_type: node_at(NodeField::Type).unwrap_or(0),
            node_name: node_at(NodeField::Name).unwrap_or(0),
            node_id: node_at(NodeField::Id).unwrap_or(0),
            node_size: node_at(NodeField::SelfSize).unwrap_or(0),
            node_edges: node_at(NodeField::EdgeCount).unwrap_or(0),
            edge_type: edge_at(EdgeField::Type).unwrap_or(0),
            edge_name: edge_at(EdgeField::Name).unwrap_or(0),
            edge_to: edge_at(EdgeField::ToNode).unwrap_or(0),
        };
        let node_fields = layout.node_fields.len();
        let edge_fields = layout.edge_fields.len();
        if !raw.nodes.len().is_multiple_of(node_fields)
            || !raw.edges.len().is_multiple_of(edge_fields)
        {
            bail!(
                "the nodes array ({} numbers) or edges array ({} numbers) is not a whole number of \
                 records of {node_fields} and {edge_fields} fields",
                raw.nodes.len(),
                raw.edges.len()
            );
        }
        let node_count = raw.nodes.len() / node_fields;
        let mut first_edge = Vec::with_capacity(node_count + 1);
        let mut next = 0usize;
        for n in 0..node_count {
            first_edge.push(next);
            next += raw.nodes[n * node_fields + field.node_edges] as usize;
        }
        first_edge.push(next);
        if next * edge_fields != raw.edges.len() {
            bail!(
                "the nodes' edge counts add up to {next} edges, but the edges array holds {}",
                raw.edges.len() / edge_fields
            );
        }
        Ok(RetainerGraph {
            layout,
            raw,
            node_fields,
            edge_fields,
            first_edge,
            field,
        })
    }

    fn node_count(&self) -> usize {
        self.first_edge.len() - 1
    }

    fn node_value(&self, node: usize, field: usize) -> u64 {
        self.raw.nodes[node * self.node_fields + field]
    }

    fn edge_value(&self, edge: usize, field: usize) -> u64 {
        self.raw.edges[edge * self.edge_fields + field]
    }

    fn string(&self, index: u64) -> &str {
        self.raw
            .strings
            .get(index as usize)
            .map(String::as_str)
            .unwrap_or("")
    }

    fn describe(&self, node: usize) -> RetainerNode {
        let kind = self
            .layout
            .node_type_names
            .get(self.node_value(node, self.field.node_type) as usize)
            .map(String::as_str)
            .unwrap_or("");
        let name = self.string(self.node_value(node, self.field.node_name));
        // A retainer row shows the object's name as V8 wrote it (`system / Context`, `Array`,
        // `Buffer`); a nameless one by its type, as DevTools does (`(hidden)`).
        let class = if name.is_empty() {
            format!("({kind})")
        } else {
            name.to_string()
        };
        RetainerNode {
            class,
            id: self.node_value(node, self.field.node_id),
            self_size: self.node_value(node, self.field.node_size),
        }
    }

    fn edge_type(&self, edge: usize) -> &str {
        self.layout
            .edge_type_names
            .get(self.edge_value(edge, self.field.edge_type) as usize)
            .map(String::as_str)
            .unwrap_or("")
    }

    /// For every node reachable from the root over retaining edges: the edge it was first
    /// reached by (breadth first, so along a shortest path).
    fn shortest_paths(&self) -> Vec<Option<usize>> {
        let mut reached_by: Vec<Option<usize>> = vec![None; self.node_count()];
        let mut seen = vec![false; self.node_count()];
        let mut queue = VecDeque::new();
        if self.node_count() > 0 {
            seen[0] = true;
            queue.push_back(0usize);
        }
        while let Some(node) = queue.pop_front() {
            for edge in self.first_edge[node]..self.first_edge[node + 1] {
                if matches!(self.edge_type(edge), "weak" | "shortcut") {
                    continue;
                }
                let to = self.edge_value(edge, self.field.edge_to) as usize / self.node_fields;
                if to < seen.len() && !seen[to] {
                    seen[to] = true;
                    reached_by[to] = Some(edge);
                    queue.push_back(to);
                }
            }
        }
        reached_by
    }

    /// The node an edge (by record index) comes from.
    fn source(&self, edge: usize) -> usize {
        // Edges are grouped by source in node order: the last node whose first edge is ≤ edge.
        self.first_edge.partition_point(|&first| first <= edge) - 1
    }

    /// The retainer paths of the `count` largest objects (by their own size) that the root
    /// reaches, largest first.
    pub fn largest(&self, count: usize) -> Vec<RetainerPath> {
        let reached_by = self.shortest_paths();
        let mut nodes: Vec<usize> = (1..self.node_count())
            .filter(|&n| reached_by[n].is_some())
            .collect();
        nodes.sort_by_key(|&n| std::cmp::Reverse(self.node_value(n, self.field.node_size)));
        nodes
            .into_iter()
            .take(count)
            .map(|n| self.path(n, &reached_by))
            .collect()
    }

    fn path(&self, node: usize, reached_by: &[Option<usize>]) -> RetainerPath {
        let mut retainers = Vec::new();
        let mut at = node;
        while let Some(edge) = reached_by[at] {
            let from = self.source(edge);
            let edge_type = self.edge_type(edge).to_string();
            let name_or_index = self.edge_value(edge, self.field.edge_name);
            let edge_name = match edge_type.as_str() {
                "element" | "hidden" => format!("[{name_or_index}]"),
                _ => self.string(name_or_index).to_string(),
            };
            retainers.push(RetainerStep {
                edge_type,
                edge: edge_name,
                from: self.describe(from),
            });
            at = from;
        }
        // The last step is the synthetic root: DevTools does not show it.
        retainers.pop();
        RetainerPath {
            object: self.describe(node),
            retainers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// root → (GC roots) → Context --retained--> Array --[0]--> Buffer --buffer--> ArrayBuffer
    /// --backing_store--> JSArrayBufferData (1 MB), and a weak edge from root straight to the data.
    fn leak_snapshot() -> Vec<u8> {
        let strings = [
            "",
            "(GC roots)",
            "system / Context",
            "Array",
            "Buffer",
            "ArrayBuffer",
            "system / JSArrayBufferData",
            "retained",
            "buffer",
            "backing_store",
            "weakly",
        ];
        // type, name, id, self_size, edge_count
        let nodes = [
            [9, 0, 1, 0, 2],        // 0 synthetic root
            [9, 1, 3, 0, 1],        // 1 (GC roots)
            [3, 2, 5, 80, 1],       // 2 object system / Context
            [3, 3, 7, 32, 1],       // 3 object Array
            [3, 4, 9, 96, 1],       // 4 object Buffer
            [3, 5, 11, 88, 1],      // 5 object ArrayBuffer
            [8, 6, 13, 1 << 20, 0], // 6 native JSArrayBufferData
        ];
        // type, name_or_index, to_node (as an index into nodes: ordinal × 5)
        let edges = [
            [1, 1, 5],   // root --[1]--> (GC roots)   (element)
            [6, 10, 30], // root --weakly--> data       (weak)
            [1, 0, 10],  // (GC roots) --[0]--> Context (element)
            [0, 7, 15],  // Context --retained--> Array (context)
            [1, 0, 20],  // Array --[0]--> Buffer       (element)
            [3, 8, 25],  // Buffer --buffer--> ArrayBuffer (internal)
            [3, 9, 30],  // ArrayBuffer --backing_store--> data (internal)
        ];
        serde_json::to_vec(&serde_json::json!({
            "snapshot": {"meta": {
                "node_fields": ["type", "name", "id", "self_size", "edge_count"],
                "node_types": [["hidden", "array", "string", "object", "code", "closure", "regexp",
                                "number", "native", "synthetic"], "string", "number", "number", "number"],
                "edge_fields": ["type", "name_or_index", "to_node"],
                "edge_types": [["context", "element", "property", "internal", "hidden", "shortcut",
                                "weak"], "string_or_number", "node"]
            }},
            "nodes": nodes.concat(),
            "edges": edges.concat(),
            "strings": strings,
        }))
        .unwrap()
    }

    #[test]
    fn the_largest_objects_path_names_the_variable_that_keeps_it() {
        let graph = RetainerGraph::from_slice(&leak_snapshot()).unwrap();
        let paths = graph.largest(1);
        let path = &paths[0];
        assert_eq!(path.object.class, "system / JSArrayBufferData");
        assert_eq!(path.object.id, 13);
        let rows: Vec<String> = path
            .retainers
            .iter()
            .map(|s| format!("{} in {} @{}", s.edge, s.from.class, s.from.id))
            .collect();
        assert_eq!(
            rows,
            [
                "backing_store in ArrayBuffer @11",
                "buffer in Buffer @9",
                "[0] in Array @7",
                "retained in system / Context @5",
                "[0] in (GC roots) @3",
            ]
        );
        let (step, value) = path.holder().unwrap();
        assert_eq!(step.edge, "retained");
        assert_eq!(value.class, "Array");
        assert_eq!(value.id, 7);
    }

    #[test]
    fn an_object_only_weakly_held_has_no_path() {
        let mut snapshot: serde_json::Value = serde_json::from_slice(&leak_snapshot()).unwrap();
        // Cut Context --retained--> Array: the data is then reached by the weak edge alone.
        snapshot["edges"][3 * 3 + 2] = serde_json::json!(10);
        let graph = RetainerGraph::from_slice(&serde_json::to_vec(&snapshot).unwrap()).unwrap();
        let classes: Vec<String> = graph
            .largest(10)
            .into_iter()
            .map(|p| p.object.class)
            .collect();
        assert!(
            !classes.contains(&"system / JSArrayBufferData".to_string()),
            "{classes:?}"
        );
    }

    #[test]
    fn edge_counts_that_do_not_match_the_edges_are_an_error() {
        let mut snapshot: serde_json::Value = serde_json::from_slice(&leak_snapshot()).unwrap();
        snapshot["nodes"][4] = serde_json::json!(3);
        let err = RetainerGraph::from_slice(&serde_json::to_vec(&snapshot).unwrap())
            .err()
            .unwrap();
        assert!(
            format!("{err:#}").contains("edge counts add up to 8 edges"),
            "{err:#}"
        );
    }
}
