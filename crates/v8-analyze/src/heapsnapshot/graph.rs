//! The heap graph in memory, as compact as the analysis allows.
//!
//! Per node: type code (1 byte), name (string index), id, shallow size and the index of its first
//! edge (4 bytes each). Per edge that can hold its target (every edge but the weak ones, dropped
//! while parsing): the target node's ordinal (4 bytes) and what kind of edge it is (1 byte). The
//! names of internal edges and of objects' properties are kept beside them until the snapshot is
//! prepared (WeakMap edges and plain objects' shapes are found from them), then dropped. Strings
//! are kept only where they name something a report shows (class names, property names, internal
//! edge names), not the contents of JS strings.

use std::collections::HashMap;

use super::layout::Layout;

/// Node ordinals are `u32`, and `u32::MAX` marks "none" in the dominator computation.
pub(crate) const MAX_NODES: usize = (u32::MAX - 1) as usize;
/// `Sizes::small` holds this when the real size (in `Sizes::large`) does not fit in 32 bits.
pub(crate) const SIZE_IN_SIDE_TABLE: u32 = u32::MAX;

/// What kind of edge a kept edge is (`EdgeKind::*`), plus flags found later.
pub(crate) mod edge_kind {
    /// context, property of a non-object, and anything else nothing looks at.
    pub const OTHER: u8 = 0;
    pub const SHORTCUT: u8 = 1;
    /// An internal edge (its name is kept in `Edges::names`).
    pub const INTERNAL: u8 = 2;
    /// A property of a node of type `object` (its name is kept in `Edges::names`).
    pub const OBJECT_PROPERTY: u8 = 3;
    pub const ELEMENT: u8 = 4;
    pub const HIDDEN: u8 = 5;
    /// The mask of the kinds above.
    pub const KIND: u8 = 0x0f;
    /// Set once strings are known: a WeakMap's table → value edge (Chrome DevTools ignores it for
    /// dominators: the value counts under its key).
    pub const WEAKMAP_TABLE: u8 = 0x10;

    /// Kinds whose name is kept in `Edges::names`.
    #[inline(always)]
    pub fn has_kept_name(kind: u8) -> bool {
        matches!(kind & KIND, INTERNAL | OBJECT_PROPERTY)
    }
}

/// Sizes by node ordinal: 32 bits each, with a side table for the rare larger ones.
#[derive(Debug, Default, Clone)]
pub(crate) struct Sizes {
    pub small: Vec<u32>,
    pub large: HashMap<u32, u64>,
}

impl Sizes {
    #[inline]
    pub fn get(&self, node: u32) -> u64 {
        match self.small.get(node as usize) {
            Some(&SIZE_IN_SIDE_TABLE) => self.large.get(&node).copied().unwrap_or(0),
            Some(&size) => u64::from(size),
            None => 0,
        }
    }

    #[inline]
    pub fn push(&mut self, size: u64) {
        match u32::try_from(size) {
            Ok(size) if size != SIZE_IN_SIDE_TABLE => self.small.push(size),
            _ => {
                self.large.insert(self.small.len() as u32, size);
                self.small.push(SIZE_IN_SIDE_TABLE);
            }
        }
    }

    pub fn set(&mut self, node: u32, size: u64) {
        match u32::try_from(size) {
            Ok(small) if small != SIZE_IN_SIDE_TABLE => {
                self.small[node as usize] = small;
                self.large.remove(&node);
            }
            _ => {
                self.small[node as usize] = SIZE_IN_SIDE_TABLE;
                self.large.insert(node, size);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.small.len()
    }
}

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

    /// The index of a kept string with this text, if any (a linear search: for a few lookups).
    pub fn find(&self, wanted: &str) -> Option<u32> {
        (0..self.len() as u32).find(|&i| self.get(i) == wanted)
    }
}

/// A set of string indexes (those worth keeping), growing as indexes arrive.
#[derive(Debug, Default, Clone)]
pub(crate) struct IndexSet {
    words: Vec<u64>,
}

impl IndexSet {
    #[inline(always)]
    pub fn insert(&mut self, index: u32) {
        let word = (index >> 6) as usize;
        if word >= self.words.len() {
            self.words.resize(word + 1 + word / 8, 0);
        }
        self.words[word] |= 1 << (index & 63);
    }

    /// Adds every index of `other`.
    pub fn union_with(&mut self, other: &IndexSet) {
        if self.words.len() < other.words.len() {
            self.words.resize(other.words.len(), 0);
        }
        for (word, &theirs) in self.words.iter_mut().zip(&other.words) {
            *word |= theirs;
        }
    }

    #[inline(always)]
    pub fn contains(&self, index: u64) -> bool {
        let word = (index >> 6) as usize;
        self.words
            .get(word)
            .is_some_and(|w| w & (1 << (index & 63)) != 0)
    }
}

/// The node-type codes the analysis treats specially (looked up by name in the snapshot's meta).
#[derive(Debug, Clone, Copy)]
pub(crate) struct NodeKinds {
    pub object: Option<u8>,
    pub native: Option<u8>,
    pub hidden: Option<u8>,
    pub array: Option<u8>,
    pub code: Option<u8>,
    pub closure: Option<u8>,
    pub regexp: Option<u8>,
    pub synthetic: Option<u8>,
}

/// A place in a script, as the snapshot's `locations` give it (0-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Location {
    pub script_id: u32,
    pub line: u32,
    pub column: u32,
}

/// The edges that can hold their target (weak edges are dropped while parsing), grouped by
/// source node.
#[derive(Debug)]
pub(crate) struct Edges {
    /// `first_edge[i]..first_edge[i + 1]` index node `i`'s edges in `targets`; one longer than the
    /// node count.
    pub first_edge: Vec<u32>,
    /// Edge targets, as node ordinals.
    pub targets: Vec<u32>,
    /// `edge_kind::*` of each edge.
    pub kinds: Vec<u8>,
    /// The name (string index) of each edge whose kind keeps it (`edge_kind::has_kept_name`), in
    /// edge order. Emptied once the snapshot is prepared.
    pub names: Vec<u32>,
}

impl Default for Edges {
    fn default() -> Self {
        Edges {
            first_edge: vec![0],
            targets: Vec::new(),
            kinds: Vec::new(),
            names: Vec::new(),
        }
    }
}

impl Edges {
    pub fn range(&self, node: u32) -> std::ops::Range<usize> {
        self.first_edge[node as usize] as usize..self.first_edge[node as usize + 1] as usize
    }
}

/// Only the edges a dominator tree is built from, grouped by source node.
#[derive(Debug, Default)]
pub(crate) struct RetainingEdges {
    pub first_edge: Vec<u32>,
    pub targets: Vec<u32>,
}

#[derive(Debug)]
pub(crate) struct Graph {
    pub node_types: Vec<u8>,
    pub node_names: Vec<u32>,
    pub node_ids: Vec<u32>,
    /// Shallow sizes as V8 wrote them.
    pub self_sizes: Sizes,
    /// Nodes whose `detachedness` field is not 0, with it (V8 sets it on some embedder nodes).
    pub detachedness: Vec<(u32, u8)>,
    /// Where objects and functions were defined, by node ordinal (sorted).
    pub locations: Vec<(u32, Location)>,
    /// Every edge of the file, weak ones included.
    pub edges_in_file: u64,
    pub strings: Strings,
    pub node_type_names: Vec<String>,
    pub node_kinds: NodeKinds,
}

impl Graph {
    /// V8 writes the synthetic root first.
    pub const ROOT: u32 = 0;

    pub fn new(layout: &Layout) -> Graph {
        Graph {
            node_types: Vec::new(),
            node_names: Vec::new(),
            node_ids: Vec::new(),
            self_sizes: Sizes::default(),
            detachedness: Vec::new(),
            locations: Vec::new(),
            edges_in_file: 0,
            strings: Strings::new(),
            node_type_names: layout.node_type_names.clone(),
            node_kinds: NodeKinds {
                object: layout.node_type("object"),
                native: layout.node_type("native"),
                hidden: layout.node_type("hidden"),
                array: layout.node_type("array"),
                code: layout.node_type("code"),
                closure: layout.node_type("closure"),
                regexp: layout.node_type("regexp"),
                synthetic: layout.node_type("synthetic"),
            },
        }
    }

    pub fn node_count(&self) -> usize {
        self.node_types.len()
    }

    pub fn self_size(&self, node: u32) -> u64 {
        self.self_sizes.get(node)
    }

    #[inline]
    pub fn is(&self, node: u32, kind: Option<u8>) -> bool {
        Some(self.node_types[node as usize]) == kind
    }

    /// The node's own name (for objects: the constructor name; for strings: their text, if kept).
    pub fn name(&self, node: u32) -> &str {
        self.strings.get(self.node_names[node as usize])
    }

    pub fn type_name(&self, node: u32) -> &str {
        self.node_type_names
            .get(usize::from(self.node_types[node as usize]))
            .map(String::as_str)
            .unwrap_or("unknown")
    }
}
