//! Per-constructor totals: how many objects, their shallow size, and what they retain.

use serde::Serialize;

use super::Convention;
use super::devtools::Classes;
use super::dominators::DominatorTree;
use super::graph::Location;

/// The group of the native nodes that hold ArrayBuffer backing stores — the bytes of every Buffer,
/// typed array and ArrayBuffer that live outside the V8 heap. One such node per backing store; its
/// shallow size is the store's byte length (Node 20: a `Buffer.alloc(64 MiB)` is an `ArrayBuffer`
/// object of 88 bytes whose internal `backing_store` edge leads to a `system / JSArrayBufferData`
/// node of 67,108,864 bytes). Typed arrays of 64 bytes or less keep their bytes on the V8 heap and
/// have no such node.
pub const ARRAY_BUFFER_BACKING_STORE: &str = "system / JSArrayBufferData";

/// How the sizes in a [`Summary`] are counted in the `devtools` convention.
pub const SIZE_CONVENTION: &str = "Chrome DevTools' convention (as its Memory panel shows the same \
file): shallow size = the bytes of the object itself, plus those of the internal arrays and hidden \
objects it alone owns (`system / JSArrayBufferData`: the ArrayBuffer's bytes outside the V8 heap); \
retained size = what would be freed with it: its own size plus everything it dominates, where weak \
edges, a WeakMap's edge to a value (the value counts under its key) and edges from outside what the \
global object reaches into it retain nothing. A class row's retained size counts each object once. \
Objects of size 0 are left out; objects are grouped by constructor name and where the constructor \
was defined; plain objects are named by their properties, `{a, b}`. `--convention v8` shows the \
graph as V8 wrote it.";

/// How the sizes in a [`Summary`] are counted in the `v8` convention.
pub const SIZE_CONVENTION_V8: &str = "V8's raw graph: shallow size = the bytes V8 reports for the \
object itself (for `system / JSArrayBufferData`: the ArrayBuffer's bytes outside the V8 heap); \
retained size = what would be freed with it: its own size plus everything it dominates, weak edges \
(and shortcuts other than the root's) ignored. A class row's retained size counts each object once. \
Classes are grouped by name alone, as V8 names them (`(closure)`, `(regexp)`). Objects of size 0, \
native ones apart, are left out. This is not what Chrome DevTools shows: see `--convention devtools`.";

/// One row of a summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConstructorSummary {
    /// The constructor name for objects (`LeakyThing`, `Array`, `Buffer`), the native group name for
    /// native nodes (`system / JSArrayBufferData`), `(string)`, `Function`, `(system)`, ... else.
    pub name: String,
    /// Where the constructor was defined (`devtools` convention, objects only): two classes of one
    /// name from different places are two rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    pub count: u64,
    pub shallow_size: u64,
    pub retained_size: u64,
}

impl ConstructorSummary {
    /// The name, and where it was defined when that tells two rows apart: `Thing (script 96, line
    /// 3, column 14)` (line and column 1-based).
    pub fn label(&self) -> String {
        match self.location {
            Some(l) => format!(
                "{} (script {}, line {}, column {})",
                self.name,
                l.script_id,
                u64::from(l.line) + 1,
                u64::from(l.column) + 1
            ),
            None => self.name.clone(),
        }
    }
}

/// Per-constructor totals of a heap snapshot (or of the objects a three-snapshot comparison kept),
/// sorted by retained size, largest first.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub constructors: Vec<ConstructorSummary>,
    /// Objects counted (over all constructors).
    pub object_count: u64,
    /// Sum of their shallow sizes.
    pub shallow_size: u64,
    /// `devtools` or `v8`.
    pub convention: Convention,
    pub size_convention: &'static str,
}

impl Summary {
    /// The row for a constructor or group, by its exact name as shown in the table (the first one,
    /// when classes of that name come from several places).
    pub fn constructor(&self, name: &str) -> Option<&ConstructorSummary> {
        self.constructors.iter().find(|c| c.name == name)
    }

    /// Bytes held in ArrayBuffer backing stores (Buffer data): the shallow size of the
    /// [`ARRAY_BUFFER_BACKING_STORE`] group.
    pub fn backing_store_bytes(&self) -> u64 {
        self.constructor(ARRAY_BUFFER_BACKING_STORE)
            .map_or(0, |c| c.shallow_size)
    }

    /// Number of ArrayBuffer backing stores.
    pub fn backing_store_count(&self) -> u64 {
        self.constructor(ARRAY_BUFFER_BACKING_STORE)
            .map_or(0, |c| c.count)
    }
}

/// The text that says how a summary's sizes are counted.
pub fn size_convention(convention: Convention) -> &'static str {
    match convention {
        Convention::DevTools => SIZE_CONVENTION,
        Convention::V8 => SIZE_CONVENTION_V8,
    }
}

const UNSET: u32 = u32::MAX;

/// Totals per class over the nodes that `counted` accepts. Retained sizes follow Chrome DevTools:
/// walking the dominator tree, an object adds its retained size to its class unless an object of
/// the same class dominates it (that one's retained size already holds it).
pub(crate) fn summarize(
    classes: Classes,
    shallow: impl Fn(u32) -> u64,
    counted: impl Fn(u32) -> bool,
    tree: &DominatorTree,
    retained: &[u64],
    convention: Convention,
) -> Summary {
    let Classes { keys, of_node } = classes;
    let k = keys.len();
    let mut count = vec![0u64; k];
    let mut shallow_by_class = vec![0u64; k];
    let mut retained_by_class = vec![0u64; k];

    // Counts and shallow sizes, in node order; then each node's class (or UNSET when it is not
    // counted) by preorder number, so that the walk below touches only arrays indexed that way.
    let mut key = of_node;
    for (node, class) in key.iter_mut().enumerate() {
        let node = node as u32;
        if counted(node) {
            count[*class as usize] += 1;
            shallow_by_class[*class as usize] += shallow(node);
        } else {
            *class = UNSET;
        }
    }
    let class_at: Vec<u32> = tree.order.iter().map(|&node| key[node as usize]).collect();
    drop(key);

    // Depth-first through the dominator tree, keeping count of how many objects of each class are
    // on the path from the root: an object adds its retained size only when it is the first.
    let mut open = vec![0u32; k];
    tree.walk(|w, entering| {
        let class = class_at[w as usize];
        if class == UNSET {
            return;
        }
        let open = &mut open[class as usize];
        if entering {
            if *open == 0 {
                retained_by_class[class as usize] += retained[w as usize];
            }
            *open += 1;
        } else {
            *open -= 1;
        }
    });

    let mut constructors: Vec<ConstructorSummary> = keys
        .into_iter()
        .enumerate()
        .filter(|&(i, _)| count[i] > 0)
        .map(|(i, key)| ConstructorSummary {
            name: key.name,
            location: key.location,
            count: count[i],
            shallow_size: shallow_by_class[i],
            retained_size: retained_by_class[i],
        })
        .collect();
    constructors.sort_by(|a, b| {
        b.retained_size
            .cmp(&a.retained_size)
            .then(b.shallow_size.cmp(&a.shallow_size))
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.location.cmp(&b.location))
    });
    Summary {
        object_count: constructors.iter().map(|c| c.count).sum(),
        shallow_size: constructors.iter().map(|c| c.shallow_size).sum(),
        constructors,
        convention,
        size_convention: size_convention(convention),
    }
}
