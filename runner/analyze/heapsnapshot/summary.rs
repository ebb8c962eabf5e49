//! Per-constructor totals: how many objects, their shallow size, and what they retain.

use std::collections::HashMap;

use serde::Serialize;

use super::dominators::DominatorTree;
use super::graph::Graph;

/// The group of the native nodes that hold ArrayBuffer backing stores — the bytes of every Buffer,
/// typed array and ArrayBuffer that live outside the V8 heap. One such node per backing store; its
/// shallow size is the store's byte length (Node 20: a `Buffer.alloc(64 MiB)` is an `ArrayBuffer`
/// object of 88 bytes whose internal `backing_store` edge leads to a `system / JSArrayBufferData`
/// node of 67,108,864 bytes). Typed arrays of 64 bytes or less keep their bytes on the V8 heap and
/// have no such node.
pub const ARRAY_BUFFER_BACKING_STORE: &str = "system / JSArrayBufferData";

/// How the sizes in a [`Summary`] are counted (shown with every summary table).
pub const SIZE_CONVENTION: &str = "shallow size = the bytes V8 reports for the object itself (for \
`system / JSArrayBufferData`: the ArrayBuffer's bytes outside the V8 heap); retained size = what would \
be freed with it: its own size plus everything it dominates, weak edges ignored (Chrome DevTools' \
convention). A constructor's retained size counts each object once (instances held by another \
instance of the same constructor are not added again). Objects of size 0, native ones apart, are \
left out, as in DevTools.";

/// One row of a summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConstructorSummary {
    /// The constructor name for objects (`LeakyThing`, `Array`, `Buffer`), the native group name for
    /// native nodes (`system / JSArrayBufferData`), `(string)`, `(closure)`, `(system)`, ... else.
    pub name: String,
    pub count: u64,
    pub shallow_size: u64,
    pub retained_size: u64,
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
    pub size_convention: &'static str,
}

impl Summary {
    /// The row for a constructor or group, by its exact name as shown in the table.
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

/// Each node's class (a dense index), and the classes' display names.
pub(crate) struct Classes {
    pub names: Vec<String>,
    pub of_node: Vec<u32>,
}

const UNSET: u32 = u32::MAX;

impl Classes {
    pub fn of(graph: &Graph) -> Classes {
        let mut names = Vec::new();
        let mut by_name: HashMap<String, u32> = HashMap::new();
        // Caches so that the hash map is consulted once per distinct name or type, not per node.
        let mut by_string = vec![UNSET; graph.strings.len()];
        let mut by_type = vec![UNSET; graph.node_type_names.len()];
        let kinds = graph.node_kinds;
        let mut of_node = Vec::with_capacity(graph.node_count());
        for node in 0..graph.node_count() as u32 {
            let code = graph.node_types[node as usize];
            let named = Some(code) == kinds.object || Some(code) == kinds.native;
            let slot = if named {
                by_string.get_mut(graph.node_names[node as usize] as usize)
            } else {
                by_type.get_mut(usize::from(code))
            };
            let mut fresh = UNSET;
            let slot = slot.unwrap_or(&mut fresh);
            if *slot == UNSET {
                let name = graph.class_name(node).to_display();
                *slot = *by_name.entry(name).or_insert_with_key(|name| {
                    names.push(name.clone());
                    (names.len() - 1) as u32
                });
            }
            of_node.push(*slot);
        }
        Classes { names, of_node }
    }
}

/// Totals per class over the nodes that `include` accepts (and that summaries count at all).
/// Retained sizes follow Chrome DevTools: walking the dominator tree, an object adds its retained
/// size to its class unless an object of the same class dominates it (that one's retained size
/// already holds it).
pub(crate) fn summarize(
    graph: &Graph,
    tree: &DominatorTree,
    retained: &[u64],
    include: &dyn Fn(u32) -> bool,
) -> Summary {
    let classes = Classes::of(graph);
    let k = classes.names.len();
    let mut count = vec![0u64; k];
    let mut shallow = vec![0u64; k];
    let mut retained_by_class = vec![0u64; k];
    let counted = |node: u32| graph.is_counted(node) && include(node);

    let (start, children) = tree.children();
    let mut open = vec![0u32; k];
    let mut stack: Vec<(u32, u32)> = Vec::new();
    let mut enter = |w: u32, open: &mut Vec<u32>, stack: &mut Vec<(u32, u32)>| {
        let node = tree.order[w as usize];
        if counted(node) {
            let class = classes.of_node[node as usize] as usize;
            count[class] += 1;
            shallow[class] += graph.self_size(node);
            if open[class] == 0 {
                retained_by_class[class] += retained[w as usize];
            }
            open[class] += 1;
        }
        stack.push((w, start[w as usize]));
    };
    if !tree.order.is_empty() {
        enter(0, &mut open, &mut stack);
    }
    while let Some(top) = stack.last_mut() {
        let (w, next) = *top;
        if next < start[w as usize + 1] {
            top.1 += 1;
            enter(children[next as usize], &mut open, &mut stack);
        } else {
            stack.pop();
            let node = tree.order[w as usize];
            if counted(node) {
                open[classes.of_node[node as usize] as usize] -= 1;
            }
        }
    }

    let mut constructors: Vec<ConstructorSummary> = classes
        .names
        .into_iter()
        .enumerate()
        .filter(|&(i, _)| count[i] > 0)
        .map(|(i, name)| ConstructorSummary {
            name,
            count: count[i],
            shallow_size: shallow[i],
            retained_size: retained_by_class[i],
        })
        .collect();
    constructors.sort_by(|a, b| {
        b.retained_size
            .cmp(&a.retained_size)
            .then(b.shallow_size.cmp(&a.shallow_size))
            .then_with(|| a.name.cmp(&b.name))
    });
    Summary {
        object_count: constructors.iter().map(|c| c.count).sum(),
        shallow_size: constructors.iter().map(|c| c.shallow_size).sum(),
        constructors,
        size_convention: SIZE_CONVENTION,
    }
}
