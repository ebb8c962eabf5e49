//! `.heapsnapshot` files (V8's heap snapshot JSON, as written by `v8.writeHeapSnapshot()`, the
//! inspector's `HeapProfiler.takeHeapSnapshot` or Chrome DevTools).
//!
//! [`HeapSnapshot::load`] streams the file into a compact graph ([`parse`](self) never holds the
//! text); [`HeapSnapshot::summary`] gives per-constructor counts, shallow and retained sizes (from a
//! dominator tree, computed once and kept); [`diff`] and [`three_snapshot`] compare snapshots by
//! object id. Buffer data is the [`ARRAY_BUFFER_BACKING_STORE`] group: see
//! [`Summary::backing_store_bytes`] and [`Diff::backing_store_delta`].

mod diff;
mod dominators;
mod graph;
mod layout;
mod parse;
mod scan;
mod summary;

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::{Mutex, OnceLock, PoisonError};

use anyhow::{Context, Result};

pub use diff::{ConstructorDiff, Diff, diff, three_snapshot};
pub use summary::{ARRAY_BUFFER_BACKING_STORE, ConstructorSummary, SIZE_CONVENTION, Summary};

use dominators::{DominatorTree, dominator_tree};
use graph::{Graph, RetainingEdges};

/// A heap snapshot in memory: the node and edge arrays in compact form, and the dominator tree once
/// something has asked for retained sizes.
pub struct HeapSnapshot {
    graph: Graph,
    /// Only the dominator tree needs these; building it takes them (and reuses their memory).
    retaining_edges: Mutex<Option<RetainingEdges>>,
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
            .finish_non_exhaustive()
    }
}

impl HeapSnapshot {
    /// Reads a `.heapsnapshot` file, streaming: memory follows the size of the graph, not of the text.
    pub fn load(path: &Path) -> Result<HeapSnapshot> {
        let read = || -> Result<HeapSnapshot> {
            let file = File::open(path).context("cannot open the file")?;
            let len = file.metadata().ok().map(|m| m.len());
            HeapSnapshot::parse(file, len)
        };
        read().with_context(|| format!("Failed to read heap snapshot {}", path.display()))
    }

    /// Reads a snapshot held in memory (tests, small inputs).
    pub fn from_slice(bytes: &[u8]) -> Result<HeapSnapshot> {
        HeapSnapshot::parse(bytes, Some(bytes.len() as u64))
            .context("Failed to read the heap snapshot")
    }

    /// Reads a snapshot from any reader (buffering is done here; pass the reader as it is).
    pub fn from_reader(reader: impl Read) -> Result<HeapSnapshot> {
        HeapSnapshot::parse(reader, None).context("Failed to read the heap snapshot")
    }

    fn parse(reader: impl Read, len: Option<u64>) -> Result<HeapSnapshot> {
        let (graph, retaining_edges) = parse::parse(reader, len)?;
        Ok(HeapSnapshot {
            graph,
            retaining_edges: Mutex::new(Some(retaining_edges)),
            dominators: OnceLock::new(),
        })
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

    /// Per-constructor count, shallow size and retained size. The first call builds the dominator
    /// tree (the expensive part); later calls reuse it.
    pub fn summary(&self) -> Summary {
        self.summary_where(|_| true)
    }

    /// Like [`summary`](Self::summary), over the nodes (by ordinal) that `include` accepts.
    pub(crate) fn summary_where(&self, include: impl Fn(u32) -> bool) -> Summary {
        let dominators = self.dominators();
        summary::summarize(&self.graph, &dominators.tree, &dominators.retained, include)
    }

    /// Retained size of the whole heap as the dominator tree sees it (the root's retained size).
    pub fn total_retained_size(&self) -> u64 {
        self.dominators().retained.first().copied().unwrap_or(0)
    }

    fn dominators(&self) -> &Dominators {
        self.dominators.get_or_init(|| {
            let graph = &self.graph;
            // Taken once: `get_or_init` runs this at most once to completion.
            let edges = self
                .retaining_edges
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .unwrap_or_default();
            let tree = dominator_tree(edges, Graph::ROOT);
            let retained = tree.retained_sizes(|node| graph.self_size(node));
            Dominators { tree, retained }
        })
    }
}
