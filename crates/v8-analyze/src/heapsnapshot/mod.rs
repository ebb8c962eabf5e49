//! `.heapsnapshot` files (V8's heap snapshot JSON, as written by `v8.writeHeapSnapshot()`, the
//! inspector's `HeapProfiler.takeHeapSnapshot` or Chrome DevTools).
//!
//! Sizes, counts and classes follow one of two conventions ([`Convention`]): what Chrome DevTools'
//! Memory panel shows for the same file (the default; see `devtools.rs` for its rules), or the
//! graph as V8 wrote it.
//!
//! [`HeapSnapshot::load`] streams the file into a compact graph ([`parse`](self) never holds the
//! text); [`HeapSnapshot::summary`] gives per-constructor counts, shallow and retained sizes (from a
//! dominator tree, computed once and kept); [`diff`] and [`three_snapshot`] compare snapshots by
//! object id. Buffer data is the [`ARRAY_BUFFER_BACKING_STORE`] group: see
//! [`Summary::backing_store_bytes`] and [`Diff::backing_store_delta`].

mod devtools;
mod diff;
mod dominators;
mod graph;
mod layout;
mod parse;
mod retainers;
mod scan;
mod summary;

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::{Mutex, OnceLock, PoisonError};

use anyhow::{Context, Result};

pub use devtools::{Convention, Interface};
pub use diff::{ConstructorDiff, Diff, diff, three_snapshot};
pub use graph::Location;
pub use retainers::{RetainerGraph, RetainerNode, RetainerPath, RetainerStep};
pub use summary::{
    ARRAY_BUFFER_BACKING_STORE, ConstructorSummary, SIZE_CONVENTION, SIZE_CONVENTION_V8, Summary,
    size_convention,
};

use devtools::{Classes, Prepared};
use dominators::{DominatorTree, Unreached, dominator_tree};
use graph::{Edges, Graph};

/// A heap snapshot in memory: the node and edge arrays in compact form, what the chosen
/// [`Convention`] needs, and the dominator tree once something has asked for retained sizes.
pub struct HeapSnapshot {
    graph: Graph,
    convention: Convention,
    /// `devtools` convention only.
    prepared: Option<Prepared>,
    /// Only the dominator tree needs these; building it takes them (and reuses their memory).
    edges: Mutex<Option<Edges>>,
    dominators: OnceLock<Dominators>,
}

struct Dominators {
    tree: DominatorTree,
    /// By preorder number, like the tree.
    retained: Vec<u64>,
}

impl std::fmt::Debug for HeapSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeapSnapshot")
            .field("nodes", &self.node_count())
            .field("edges", &self.edge_count())
            .field("convention", &self.convention)
            .finish_non_exhaustive()
    }
}

impl HeapSnapshot {
    /// Reads a `.heapsnapshot` file, streaming: memory follows the size of the graph, not of the
    /// text. Sizes and classes follow Chrome DevTools ([`Convention::DevTools`]).
    pub fn load(path: &Path) -> Result<HeapSnapshot> {
        HeapSnapshot::load_as(path, Convention::DevTools)
    }

    /// [`load`](Self::load), with sizes and classes in the given convention.
    pub fn load_as(path: &Path, convention: Convention) -> Result<HeapSnapshot> {
        HeapSnapshot::load_with(path, convention, 1)
    }

    /// [`load_as`](Self::load_as) on up to `threads` threads: with 2 or more, a big `nodes`
    /// array (262,144 nodes or more) and a big `edges` array (a million edges or more) are each
    /// read in two halves at once, each from its own place in the file, split at a record
    /// boundary. The result is the same; a file the halves cannot
    /// be read from (damaged, or not laid out one record a line as V8 writes it) is read again
    /// on one thread.
    pub fn load_with(path: &Path, convention: Convention, threads: usize) -> Result<HeapSnapshot> {
        let read = |split: bool| -> Result<HeapSnapshot> {
            let file = File::open(path).context("cannot open the file")?;
            let len = file.metadata().ok().map(|m| m.len());
            HeapSnapshot::parse(&file, len, convention, split.then_some(&file))
        };
        let result = match read(threads >= 2) {
            Err(e) if e.chain().any(|cause| cause.is::<parse::SplitFailed>()) => read(false),
            other => other,
        };
        result.with_context(|| format!("Failed to read heap snapshot {}", path.display()))
    }

    /// Reads a snapshot held in memory (tests, small inputs).
    pub fn from_slice(bytes: &[u8]) -> Result<HeapSnapshot> {
        HeapSnapshot::from_slice_as(bytes, Convention::DevTools)
    }

    pub fn from_slice_as(bytes: &[u8], convention: Convention) -> Result<HeapSnapshot> {
        HeapSnapshot::parse(bytes, Some(bytes.len() as u64), convention, None)
            .context("Failed to read the heap snapshot")
    }

    /// Reads a snapshot from any reader (buffering is done here; pass the reader as it is).
    pub fn from_reader(reader: impl Read) -> Result<HeapSnapshot> {
        HeapSnapshot::parse(reader, None, Convention::DevTools, None)
            .context("Failed to read the heap snapshot")
    }

    fn parse(
        reader: impl Read,
        len: Option<u64>,
        convention: Convention,
        split: Option<&File>,
    ) -> Result<HeapSnapshot> {
        let (graph, mut edges) = parse::parse(reader, len, split)?;
        let prepared = match convention {
            Convention::DevTools => Some(devtools::prepare(&graph, &mut edges)),
            Convention::V8 => {
                edges.names = Vec::new();
                None
            }
        };
        Ok(HeapSnapshot {
            graph,
            convention,
            prepared,
            edges: Mutex::new(Some(edges)),
            dominators: OnceLock::new(),
        })
    }

    pub fn convention(&self) -> Convention {
        self.convention
    }

    pub fn node_count(&self) -> usize {
        self.graph.node_count()
    }

    /// Edges in the file (retaining or not).
    pub fn edge_count(&self) -> usize {
        self.graph.edges_in_file as usize
    }

    /// Sum of every node's shallow size.
    pub fn total_shallow_size(&self) -> u64 {
        (0..self.graph.node_count() as u32)
            .map(|node| self.graph.self_size(node))
            .sum()
    }

    /// The largest object id in the snapshot (V8 hands out ids in increasing order).
    pub fn max_node_id(&self) -> u32 {
        self.graph.node_ids.iter().copied().max().unwrap_or(0)
    }

    /// The plain-object interface definitions Chrome DevTools infers from this snapshot (empty in
    /// the `v8` convention).
    pub fn interfaces(&self) -> &[Interface] {
        self.prepared.as_ref().map_or(&[], |p| &p.interfaces)
    }

    /// A node's shallow size as the convention shows it.
    fn shown_size(&self, node: u32) -> u64 {
        match &self.prepared {
            Some(prepared) => prepared.sizes.get(node),
            None => self.graph.self_size(node),
        }
    }

    /// Whether summaries and diffs count the node: DevTools leaves out nodes of size 0; the `v8`
    /// convention keeps native ones.
    fn is_counted(&self, node: u32) -> bool {
        self.shown_size(node) != 0
            || (self.prepared.is_none() && self.graph.is(node, self.graph.node_kinds.native))
    }

    /// Each node's class, plain objects named by `interfaces` (DevTools' diff names the base
    /// snapshot's plain objects by the other snapshot's definitions).
    fn classes_with(&self, interfaces: &[Interface]) -> Classes {
        match &self.prepared {
            Some(prepared) => Classes::devtools(&self.graph, prepared, interfaces),
            None => Classes::v8(&self.graph),
        }
    }

    fn classes(&self) -> Classes {
        self.classes_with(self.interfaces())
    }

    /// Per-constructor count, shallow size and retained size. The first call builds the dominator
    /// tree (the expensive part); later calls reuse it.
    pub fn summary(&self) -> Summary {
        self.summary_where(|_| true)
    }

    /// Like [`summary`](Self::summary), over the nodes (by ordinal) that `include` accepts.
    pub(crate) fn summary_where(&self, include: impl Fn(u32) -> bool) -> Summary {
        let dominators = self.dominators();
        summary::summarize(
            self.classes(),
            |node| self.shown_size(node),
            |node| self.is_counted(node) && include(node),
            &dominators.tree,
            &dominators.retained,
            self.convention,
        )
    }

    /// Retained size of the whole heap as the dominator tree sees it (the root's retained size).
    pub fn total_retained_size(&self) -> u64 {
        self.dominators().retained.first().copied().unwrap_or(0)
    }

    /// The retained size of the object with this `@` id (what DevTools' *Retained Size* column
    /// shows for it), or `None` when no object has that id.
    pub fn retained_size_of_id(&self, id: u64) -> Option<u64> {
        let node = self
            .graph
            .node_ids
            .iter()
            .position(|&node_id| u64::from(node_id) == id)? as u32;
        let dominators = self.dominators();
        let preorder = dominators.tree.order.iter().position(|&n| n == node)?;
        dominators.retained.get(preorder).copied()
    }

    fn dominators(&self) -> &Dominators {
        self.dominators.get_or_init(|| {
            // Taken once: `get_or_init` runs this at most once to completion.
            let edges = self
                .edges
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .unwrap_or_default();
            let no_flags = devtools::Bits::default();
            let page_owned = self.prepared.as_ref().map_or(&no_flags, |p| &p.page_owned);
            let retaining = devtools::retaining_edges(edges, self.convention, page_owned);
            let unreached = match self.convention {
                Convention::DevTools => Unreached::OneByOne,
                Convention::V8 => Unreached::Walk,
            };
            let tree = dominator_tree(retaining, Graph::ROOT, unreached);
            let retained = tree.retained_sizes(|node| self.shown_size(node));
            Dominators { tree, retained }
        })
    }
}
