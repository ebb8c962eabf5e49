//! The heap graph in memory, as compact as the analysis allows.
//!
//! Per node: type code (1 byte), name (string index), id, shallow size and the index of its first
//! edge (4 bytes each). Per edge: the target node's ordinal (4 bytes) — and only for edges that
//! retain their target: weak edges, and shortcut edges other than the root's, are dropped while
//! parsing (see [`EdgeKinds::is_essential`]), as are edge names, since nothing reported needs them.
//! Strings are kept only where they name something a report shows (class names, not the contents
//! of JS strings).

use std::collections::HashMap;

use super::layout::Layout;

/// Node ordinals are `u32`, and `u32::MAX` marks "none" in the dominator computation.
pub(crate) const MAX_NODES: usize = (u32::MAX - 1) as usize;
/// `self_sizes` holds this when the real size (in `large_sizes`) does not fit in 32 bits.
pub(crate) const SIZE_IN_SIDE_TABLE: u32 = u32::MAX;

/// Kept strings, back to back, with the bounds of each (a string not kept is empty).
#[derive(Debug, Default)]
pub(crate) struct Strings {
    text: String,
    /// `bounds[i]..bounds[i + 1]` is string `i` in `text`.
    bounds: Vec<u32>,
}

impl Strings {
    pub fn new() -> Self {
        Strings {
            text: String::new(),
            bounds: vec![0],
        }
    }

    /// Appends the next string; `None` when `text` would pass 4 GiB.
    pub fn push(&mut self, s: &str) -> Option<()> {
        self.text.push_str(s);
        self.bounds.push(u32::try_from(self.text.len()).ok()?);
        Some(())
    }

    pub fn len(&self) -> usize {
        self.bounds.len() - 1
    }

    pub fn get(&self, index: u32) -> &str {
        let i = index as usize;
        match (self.bounds.get(i), self.bounds.get(i + 1)) {
            (Some(&start), Some(&end)) => self.text.get(start as usize..end as usize).unwrap_or(""),
            _ => "",
        }
    }
}

/// The node-type codes the analysis treats specially (looked up by name in the snapshot's meta).
#[derive(Debug, Clone, Copy)]
pub(crate) struct NodeKinds {
    pub object: Option<u8>,
    pub native: Option<u8>,
    pub hidden: Option<u8>,
    pub code: Option<u8>,
}

/// The edge-type codes that do not keep their target alive (`u64::MAX` when the snapshot has no
/// such type).
#[derive(Debug, Clone, Copy)]
pub(crate) struct EdgeKinds {
    pub weak: u64,
    pub shortcut: u64,
}

impl EdgeKinds {
    /// Whether an edge of this type retains its target. Weak edges never do; shortcut edges only
    /// from the root, where V8 uses them to mark the user's global objects (Chrome DevTools' rule).
    #[inline(always)]
    pub fn is_essential(&self, from_root: bool, edge_type: u64) -> bool {
        edge_type != self.weak && (edge_type != self.shortcut || from_root)
    }
}

/// The edges that retain their target (weak edges, and shortcuts other than the root's, left out),
/// grouped by source node.
#[derive(Debug)]
pub(crate) struct RetainingEdges {
    /// `first_edge[i]..first_edge[i + 1]` index node `i`'s edges in `targets`; one longer than the
    /// node count.
    pub first_edge: Vec<u32>,
    /// Edge targets, as node ordinals.
    pub targets: Vec<u32>,
}

impl Default for RetainingEdges {
    fn default() -> Self {
        RetainingEdges {
            first_edge: vec![0],
            targets: Vec::new(),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Graph {
    pub node_types: Vec<u8>,
    pub node_names: Vec<u32>,
    pub node_ids: Vec<u32>,
    pub self_sizes: Vec<u32>,
    pub large_sizes: HashMap<u32, u64>,
    /// Every edge of the file, retaining or not.
    pub edges_in_file: u64,
    pub strings: Strings,
    pub node_type_names: Vec<String>,
    pub node_kinds: NodeKinds,
    pub edge_kinds: EdgeKinds,
}

impl Graph {
    /// V8 writes the synthetic root first.
    pub const ROOT: u32 = 0;

    pub fn new(layout: &Layout) -> Graph {
        Graph {
            node_types: Vec::new(),
            node_names: Vec::new(),
            node_ids: Vec::new(),
            self_sizes: Vec::new(),
            large_sizes: HashMap::new(),
            edges_in_file: 0,
            strings: Strings::new(),
            node_type_names: layout.node_type_names.clone(),
            node_kinds: NodeKinds {
                object: layout.node_type("object"),
                native: layout.node_type("native"),
                hidden: layout.node_type("hidden"),
                code: layout.node_type("code"),
            },
            edge_kinds: EdgeKinds {
                weak: layout.edge_type("weak").map_or(u64::MAX, u64::from),
                shortcut: layout.edge_type("shortcut").map_or(u64::MAX, u64::from),
            },
        }
    }

    pub fn node_count(&self) -> usize {
        self.node_types.len()
    }

    pub fn self_size(&self, node: u32) -> u64 {
        let i = node as usize;
        match self.self_sizes.get(i) {
            Some(&SIZE_IN_SIDE_TABLE) => self.large_sizes.get(&node).copied().unwrap_or(0),
            Some(&size) => u64::from(size),
            None => 0,
        }
    }

    pub fn is_native(&self, node: u32) -> bool {
        Some(self.node_types[node as usize]) == self.node_kinds.native
    }

    /// Counted in summaries and diffs: nodes with a size, and native nodes (Chrome DevTools' rule,
    /// which leaves out the synthetic roots and empty internal nodes).
    pub fn is_counted(&self, node: u32) -> bool {
        self.self_sizes[node as usize] != 0 || self.is_native(node)
    }

    /// The node's own name (for objects: the constructor name; for strings: their text, if kept).
    pub fn name(&self, node: u32) -> &str {
        self.strings.get(self.node_names[node as usize])
    }

    /// The group a node belongs to in a summary, as Chrome DevTools names them: the constructor
    /// name for objects and native nodes, `(system)`, `(compiled code)`, `(string)`, `(closure)`, ...
    /// for the rest.
    pub fn class_name(&self, node: u32) -> ClassName<'_> {
        let code = self.node_types[node as usize];
        let kinds = &self.node_kinds;
        if Some(code) == kinds.object || Some(code) == kinds.native {
            ClassName::Named(self.name(node))
        } else if Some(code) == kinds.hidden {
            ClassName::Type("system")
        } else if Some(code) == kinds.code {
            ClassName::Type("compiled code")
        } else {
            ClassName::Type(
                self.node_type_names
                    .get(usize::from(code))
                    .map(String::as_str)
                    .unwrap_or("unknown"),
            )
        }
    }
}

/// A class name, borrowed: either a node's own name or `(type)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ClassName<'a> {
    Named(&'a str),
    Type(&'a str),
}

impl ClassName<'_> {
    pub fn to_display(self) -> String {
        match self {
            ClassName::Named(name) => name.to_owned(),
            ClassName::Type(kind) => format!("({kind})"),
        }
    }
}
