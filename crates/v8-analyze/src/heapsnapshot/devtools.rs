//! What Chrome DevTools does to a heap snapshot before it shows sizes (front_end/entrypoints/
//! heap_snapshot_worker/HeapSnapshot.ts, read at commit 204e83192cc0 of ChromeDevTools/
//! devtools-frontend), for the `devtools` convention:
//!
//! - **Detached embedder nodes** (`propagateDOMState`): native nodes whose `detachedness` says
//!   detached, and the native nodes reachable from them, are named `Detached <name>`.
//! - **Page-owned nodes** (`markPageOwnedNodes`): everything reachable, through any edge but weak
//!   ones, from the root's shortcut edges (Node: the `global` object).
//! - **WeakMap edges**: a WeakMap's table → value edge is recognised by its name (`… pair in
//!   WeakMap (table @id)`, whose id is the edge's source); it does not retain the value, the key's
//!   edge does.
//! - **Shallow sizes** (`calculateShallowSizes`): a node of type hidden or array that only one other
//!   node owns (every path to it from a node that is neither comes from that one) adds its size to
//!   its owner and shows 0; the root and synthetic nodes own nothing this way.
//! - **Class names** (`calculateObjectNames`, `inferInterfaceDefinitions`,
//!   `applyInterfaceDefinitions`): `Function`, `RegExp`, `(system)`, `(compiled code)`, `(type)`;
//!   plain `Object`s named by their properties (`{a, b, c}`) when at least two objects share them.
//!   Objects are grouped by class name *and* the place their constructor was defined.
//!
//! Which edges then retain their target is [`is_essential`].

use std::cmp::Ordering;
use std::collections::HashMap;

use serde::Serialize;

use super::graph::{Edges, Graph, Location, RetainingEdges, Sizes, edge_kind};

/// Whose rules the retained sizes, counts and class rows follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Convention {
    /// What Chrome DevTools' Memory panel shows for the same file (its current rules).
    #[default]
    DevTools,
    /// The graph as V8 wrote it: shallow sizes as written, weak edges (and shortcuts but the
    /// root's) ignored, classes grouped by name only, `(closure)`/`(regexp)` as V8 calls them.
    V8,
}

impl Convention {
    pub fn as_str(self) -> &'static str {
        match self {
            Convention::DevTools => "devtools",
            Convention::V8 => "v8",
        }
    }
}

const UNSET: u32 = u32::MAX;

/// Bits by node ordinal.
#[derive(Debug, Default, Clone)]
pub(crate) struct Bits(Vec<u64>);

impl Bits {
    pub fn new(len: usize) -> Bits {
        Bits(vec![0; len.div_ceil(64)])
    }
    #[inline(always)]
    pub fn get(&self, i: u32) -> bool {
        self.0[(i >> 6) as usize] & (1 << (i & 63)) != 0
    }
    #[inline(always)]
    pub fn set(&mut self, i: u32) {
        self.0[(i >> 6) as usize] |= 1 << (i & 63);
    }
}

/// A plain object's properties: which plain objects have which property names.
#[derive(Debug, Default)]
pub(crate) struct Shapes {
    /// Shape of each node (`UNSET` for nodes that are not plain objects).
    pub of_node: Vec<u32>,
    /// Property names of each shape, in edge order (`__proto__` included, as the snapshot has it).
    pub properties: Vec<Vec<String>>,
}

/// An interface definition: a name like `{a, b, c}` and the properties an object needs to have it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub properties: Vec<String>,
}

/// What the `devtools` convention needs beside the graph.
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    /// Shallow sizes after hidden and array nodes moved theirs to their owners.
    pub sizes: Sizes,
    pub page_owned: Bits,
    pub detached: Bits,
    pub shapes: Shapes,
    /// This snapshot's own interface definitions.
    pub interfaces: Vec<Interface>,
}

/// Prepares the `devtools` view; marks WeakMap table edges in `edges` and empties `edges.names`.
pub(crate) fn prepare(graph: &Graph, edges: &mut Edges) -> Prepared {
    let n = graph.node_count();
    let shapes = weakmap_edges_and_shapes(graph, edges);
    let page_owned = page_owned(graph, edges);
    let detached = detached(graph, edges);
    let sizes = shallow_sizes(graph, edges);
    let interfaces = infer_interfaces(&shapes);
    debug_assert_eq!(sizes.len(), n);
    Prepared {
        sizes,
        page_owned,
        detached,
        shapes,
        interfaces,
    }
}

/// Whether an edge retains its target in the `devtools` convention (`computeIsEssentialEdge`).
#[inline(always)]
pub(crate) fn is_essential(kind: u8, source: u32, target: u32, page_owned: &Bits) -> bool {
    if kind & edge_kind::WEAKMAP_TABLE != 0 || source == target {
        return false;
    }
    if source == Graph::ROOT {
        return true;
    }
    // Shortcuts at the root mark the user's global objects; elsewhere they retain nothing. Edges
    // from outside the page-owned part into it retain nothing either (DevTools: "otherwise the
    // dominators for the objects that also were retained by debugger would be affected").
    let into_page_from_outside = page_owned.get(target) && !page_owned.get(source);
    kind & edge_kind::KIND != edge_kind::SHORTCUT && !into_page_from_outside
}

/// Keeps the edges that retain their target under `convention`, in place, and gives them to the
/// dominator tree.
pub(crate) fn retaining_edges(
    edges: Edges,
    convention: super::Convention,
    page_owned: &Bits,
) -> RetainingEdges {
    let Edges {
        mut first_edge,
        mut targets,
        kinds,
        ..
    } = edges;
    let n = first_edge.len().saturating_sub(1);
    let mut write = 0usize;
    let mut start = 0usize;
    for source in 0..n {
        let end = first_edge[source + 1] as usize;
        first_edge[source] = write as u32;
        for e in start..end {
            let (kind, target) = (kinds[e], targets[e]);
            let keep = match convention {
                super::Convention::DevTools => {
                    is_essential(kind, source as u32, target, page_owned)
                }
                super::Convention::V8 => {
                    source as u32 == Graph::ROOT || kind & edge_kind::KIND != edge_kind::SHORTCUT
                }
            };
            if keep {
                targets[write] = target;
                write += 1;
            }
        }
        start = end;
    }
    if n > 0 {
        first_edge[n] = write as u32;
    }
    targets.truncate(write);
    targets.shrink_to_fit();
    RetainingEdges {
        first_edge,
        targets,
    }
}

/// The table id an ephemeron edge name ends with, if the name is one
/// (`/^\d+ \/ part of key \(.*? @\d+\) -> value \(.*? @\d+\) pair in WeakMap \(table @(\d+)\)$/`).
fn weakmap_table_id(name: &str) -> Option<u64> {
    let digits = name.bytes().take_while(u8::is_ascii_digit).count();
    let rest = name[digits..].strip_prefix(" / part of key (")?;
    if digits == 0 || rest.contains(['\n', '\r', '\u{2028}', '\u{2029}']) {
        return None;
    }
    let rest = rest.strip_suffix(')')?;
    let table_digits = rest.bytes().rev().take_while(u8::is_ascii_digit).count();
    if table_digits == 0 {
        return None;
    }
    let (rest, table) = rest.split_at(rest.len() - table_digits);
    let middle = rest.strip_suffix(") pair in WeakMap (table @")?;
    // `… @\d+) -> value (… @\d+`: ends with " @digits", and has " @digits) -> value (" before.
    let value_digits = middle.bytes().rev().take_while(u8::is_ascii_digit).count();
    if value_digits == 0 {
        return None;
    }
    let middle = middle[..middle.len() - value_digits].strip_suffix(" @")?;
    let found = middle.match_indices(") -> value (").any(|(at, _)| {
        let before = &middle[..at];
        let key_digits = before.bytes().rev().take_while(u8::is_ascii_digit).count();
        key_digits > 0 && before[..before.len() - key_digits].ends_with(" @")
    });
    if !found {
        return None;
    }
    table.parse().ok().or(Some(u64::MAX))
}

/// Marks WeakMap table → value edges, and collects plain objects' property names; empties
/// `edges.names`.
fn weakmap_edges_and_shapes(graph: &Graph, edges: &mut Edges) -> Shapes {
    let n = graph.node_count();
    let object_name = graph.strings.find("Object");
    // Per string index: 0 not looked at yet, 1 not an ephemeron name, 2 one (its table id kept).
    let mut looked_at = vec![0u8; graph.strings.len()];
    let mut table_ids: HashMap<u32, u64> = HashMap::new();
    let mut shape_of: HashMap<Vec<u32>, u32> = HashMap::new();
    let mut shapes = Shapes {
        of_node: vec![UNSET; n],
        properties: Vec::new(),
    };
    let mut props: Vec<u32> = Vec::new();
    let mut last: Option<(Vec<u32>, u32)> = None;
    let names = std::mem::take(&mut edges.names);
    let mut cursor = 0usize;
    for node in 0..n as u32 {
        let plain = graph.is(node, graph.node_kinds.object)
            && Some(graph.node_names[node as usize]) == object_name;
        props.clear();
        for e in edges.range(node) {
            let kind = edges.kinds[e];
            if !edge_kind::has_kept_name(kind) {
                continue;
            }
            let name = names[cursor];
            cursor += 1;
            if kind == edge_kind::INTERNAL {
                let Some(state) = looked_at.get_mut(name as usize) else {
                    continue;
                };
                if *state == 0 {
                    *state = match weakmap_table_id(graph.strings.get(name)) {
                        Some(table) => {
                            table_ids.insert(name, table);
                            2
                        }
                        None => 1,
                    };
                }
                if *state == 2
                    && table_ids.get(&name) == Some(&u64::from(graph.node_ids[node as usize]))
                {
                    edges.kinds[e] |= edge_kind::WEAKMAP_TABLE;
                }
            } else if plain {
                props.push(name);
            }
        }
        if plain {
            // Objects of one shape tend to come together: compare with the last one first.
            if let Some((last_props, last_shape)) = &last
                && same_names(last_props, &props)
            {
                shapes.of_node[node as usize] = *last_shape;
                continue;
            }
            let shape = match shape_of.get(props.as_slice()) {
                Some(&shape) => shape,
                None => {
                    let shape = shapes.properties.len() as u32;
                    shapes.properties.push(
                        props
                            .iter()
                            .map(|&p| graph.strings.get(p).to_owned())
                            .collect(),
                    );
                    shape_of.insert(props.clone(), shape);
                    shape
                }
            };
            shapes.of_node[node as usize] = shape;
            last = Some((props.clone(), shape));
        }
    }
    shapes
}

/// `a == b`, inline: the lists are a few names long, shorter than a call to `memcmp` takes.
#[inline(always)]
fn same_names(a: &[u32], b: &[u32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// Everything reachable from the root's shortcut edges (and `(Document DOM trees)` in browsers)
/// through edges that are not weak.
fn page_owned(graph: &Graph, edges: &Edges) -> Bits {
    let mut flags = Bits::new(graph.node_count());
    let mut stack = Vec::new();
    let root = Graph::ROOT;
    for e in edges.range(root) {
        let target = edges.targets[e];
        let entry = match edges.kinds[e] & edge_kind::KIND {
            edge_kind::SHORTCUT => true,
            edge_kind::ELEMENT => {
                graph.is(target, graph.node_kinds.synthetic)
                    && graph.name(target) == "(Document DOM trees)"
            }
            _ => false,
        };
        if entry && !flags.get(target) {
            flags.set(target);
            stack.push(target);
        }
    }
    while let Some(node) = stack.pop() {
        for &target in &edges.targets[edges.range(node)] {
            if !flags.get(target) {
                flags.set(target);
                stack.push(target);
            }
        }
    }
    flags
}

/// Native nodes that are detached, or reachable from a detached one without passing an attached
/// one (`propagateDOMState`).
fn detached(graph: &Graph, edges: &Edges) -> Bits {
    const ATTACHED: u8 = 1;
    const DETACHED: u8 = 2;
    let n = graph.node_count();
    let detached = Bits::new(n);
    if graph.detachedness.is_empty() {
        return detached;
    }
    struct Walk {
        visited: Bits,
        state: Vec<u8>,
        detached: Bits,
        attached_list: Vec<u32>,
        detached_list: Vec<u32>,
    }
    let mut walk = Walk {
        visited: Bits::new(n),
        state: vec![0u8; n],
        detached,
        attached_list: Vec::new(),
        detached_list: Vec::new(),
    };
    // `processNode`: the first state a native node is given sticks; other nodes stop the walk.
    let process = |walk: &mut Walk, node: u32, new_state: u8| {
        if walk.visited.get(node) {
            return;
        }
        walk.visited.set(node);
        if !graph.is(node, graph.node_kinds.native) {
            return;
        }
        walk.state[node as usize] = new_state;
        match new_state {
            ATTACHED => walk.attached_list.push(node),
            DETACHED => {
                walk.detached.set(node);
                walk.detached_list.push(node);
            }
            _ => {}
        }
    };
    for &(node, value) in &graph.detachedness {
        let value = value & 3;
        if value != 0 {
            process(&mut walk, node, value);
        }
    }
    let children = |node: u32| {
        edges
            .range(node)
            .filter(|&e| edges.kinds[e] & edge_kind::KIND != edge_kind::HIDDEN)
            .map(|e| edges.targets[e])
    };
    while let Some(node) = walk.attached_list.pop() {
        for child in children(node) {
            process(&mut walk, child, ATTACHED);
        }
    }
    while let Some(node) = walk.detached_list.pop() {
        if walk.state[node as usize] == ATTACHED {
            continue;
        }
        for child in children(node) {
            process(&mut walk, child, DETACHED);
        }
    }
    walk.detached
}

/// `calculateShallowSizes`: hidden and array nodes with a single owner give it their size.
fn shallow_sizes(graph: &Graph, edges: &Edges) -> Sizes {
    let mut sizes = graph.self_sizes.clone();
    let n = graph.node_count();
    let root = Graph::ROOT;
    let has_user_roots = edges
        .range(root)
        .any(|e| !graph.is(edges.targets[e], graph.node_kinds.synthetic));
    if !has_user_roots {
        return sizes;
    }
    const UNVISITED: u32 = u32::MAX;
    const MULTIPLE: u32 = u32::MAX - 1;
    let kinds = graph.node_kinds;
    let mut owners = vec![UNVISITED; n];
    let mut worklist: Vec<u32> = Vec::new();
    for node in 0..n as u32 {
        if !(graph.is(node, kinds.hidden) || graph.is(node, kinds.array)) {
            owners[node as usize] = node;
            worklist.push(node);
        }
    }
    // Only hidden and array nodes ever change owner (any other node owns itself): the type, one
    // byte a node, says so without looking at `owners`.
    let mut may_be_owned = [false; 256];
    for code in [kinds.hidden, kinds.array].into_iter().flatten() {
        may_be_owned[usize::from(code)] = true;
    }
    while let Some(node) = worklist.pop() {
        let owner = owners[node as usize];
        for &target in &edges.targets[edges.range(node)] {
            if !may_be_owned[usize::from(graph.node_types[target as usize])] {
                continue;
            }
            let current = owners[target as usize];
            if current == UNVISITED {
                owners[target as usize] = owner;
                worklist.push(target);
            } else if current != target && current != owner && current != MULTIPLE {
                owners[target as usize] = MULTIPLE;
                worklist.push(target);
            }
        }
    }
    for (node, &owner) in owners.iter().enumerate() {
        if owner == UNVISITED || owner == MULTIPLE || owner as usize == node {
            continue;
        }
        if owner == root || graph.is(owner, kinds.synthetic) {
            continue;
        }
        let moved = sizes.get(node as u32);
        sizes.set(node as u32, 0);
        let total = sizes.get(owner) + moved;
        sizes.set(owner, total);
    }
    sizes
}

/// JavaScript's string order (UTF-16 code units).
fn js_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// JavaScript's `length` of a string.
fn js_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// `formatPropertyName`: names with `,'"{}` are shown JSON-quoted.
fn format_property_name(name: &str) -> String {
    if name.contains([',', '\'', '"', '{', '}']) {
        serde_json::to_string(name).unwrap_or_else(|_| name.to_owned())
    } else {
        name.to_owned()
    }
}

const MAX_INTERFACE_COUNT: usize = 1000;
const MIN_INTERFACE_PROPERTY_COUNT: usize = 1;
const MAX_INTERFACE_NAME_LENGTH: usize = 120;
const MIN_OBJECT_COUNT_PER_INTERFACE: u64 = 2;

/// `inferInterfaceDefinitions`: the most common property lists of plain objects.
fn infer_interfaces(shapes: &Shapes) -> Vec<Interface> {
    // Each shape's candidate (name and properties), in the order objects first show them.
    let mut candidate_of_shape: Vec<Option<u32>> = Vec::with_capacity(shapes.properties.len());
    let mut candidates: Vec<(Interface, u64)> = Vec::new();
    let mut by_name: HashMap<String, u32> = HashMap::new();
    for properties in &shapes.properties {
        let mut name = String::from("{");
        let mut len = 1usize;
        let mut kept = Vec::new();
        for property in properties {
            if property == "__proto__" {
                continue;
            }
            let formatted = format_property_name(property);
            let formatted_len = js_len(&formatted);
            if len > MIN_INTERFACE_PROPERTY_COUNT && len + formatted_len > MAX_INTERFACE_NAME_LENGTH
            {
                break;
            }
            if len != 1 {
                name.push_str(", ");
                len += 2;
            }
            name.push_str(&formatted);
            len += formatted_len;
            kept.push(property.clone());
        }
        if kept.is_empty() {
            candidate_of_shape.push(None);
            continue;
        }
        name.push('}');
        let next = by_name.len() as u32;
        let id = *by_name.entry(name.clone()).or_insert(next);
        if id == next {
            candidates.push((
                Interface {
                    name,
                    properties: kept,
                },
                0,
            ));
        }
        candidate_of_shape.push(Some(id));
    }
    // Counted over the objects in node order, so that ties keep the order objects show them in.
    let mut order: Vec<u32> = Vec::new();
    for &shape in &shapes.of_node {
        if shape == UNSET {
            continue;
        }
        if let Some(id) = candidate_of_shape[shape as usize] {
            let count = &mut candidates[id as usize].1;
            if *count == 0 {
                order.push(id);
            }
            *count += 1;
        }
    }
    let mut sorted: Vec<&(Interface, u64)> =
        order.iter().map(|&id| &candidates[id as usize]).collect();
    sorted.sort_by_key(|c| std::cmp::Reverse(c.1)); // stable, as JavaScript's sort
    sorted
        .into_iter()
        .take(MAX_INTERFACE_COUNT)
        .take_while(|(_, count)| *count >= MIN_OBJECT_COUNT_PER_INTERFACE)
        .map(|(interface, _)| interface.clone())
        .collect()
}

/// `applyInterfaceDefinitions` for each shape: the name of the best matching definition (the one
/// with the most properties, all of which the object has; the earlier one on a tie), if any.
pub(crate) fn apply_interfaces(shapes: &Shapes, definitions: &[Interface]) -> Vec<Option<String>> {
    struct TrieNode {
        next: HashMap<String, usize>,
        greatest_next: Option<String>,
        /// (property count, definition index)
        matched: Option<(usize, usize)>,
    }
    let fresh = || TrieNode {
        next: HashMap::new(),
        greatest_next: None,
        matched: None,
    };
    let mut trie = vec![fresh()];
    for (index, definition) in definitions.iter().enumerate() {
        let mut properties = definition.properties.clone();
        properties.sort_by(|a, b| js_cmp(a, b));
        let mut at = 0;
        for property in &properties {
            at = match trie[at].next.get(property) {
                Some(&next) => next,
                None => {
                    trie.push(fresh());
                    let next = trie.len() - 1;
                    let current = &mut trie[at];
                    current.next.insert(property.clone(), next);
                    if current
                        .greatest_next
                        .as_deref()
                        .is_none_or(|g| js_cmp(g, property) == Ordering::Less)
                    {
                        current.greatest_next = Some(property.clone());
                    }
                    next
                }
            };
        }
        if trie[at].matched.is_none() {
            trie[at].matched = Some((properties.len(), index));
        }
    }
    // (property count, index); the fallback "Object" has 0 properties and an infinite index.
    let better = |a: (usize, usize), b: Option<(usize, usize)>| match b {
        None => a,
        Some(b) if a.0 > b.0 => a,
        Some(b) if b.0 > a.0 => b,
        Some(b) => {
            if a.1 <= b.1 {
                a
            } else {
                b
            }
        }
    };
    let initial = (0usize, usize::MAX);
    shapes
        .properties
        .iter()
        .map(|properties| {
            let mut sorted: Vec<&String> = properties.iter().collect();
            sorted.sort_by(|a, b| js_cmp(a, b));
            let mut states = vec![0usize];
            let mut best = better(initial, trie[0].matched);
            for property in sorted {
                for state in states.clone() {
                    let node = &trie[state];
                    if node
                        .greatest_next
                        .as_deref()
                        .is_none_or(|g| js_cmp(property, g) != Ordering::Less)
                    {
                        states.retain(|&s| s != state);
                    }
                    if let Some(&next) = node.next.get(property.as_str()) {
                        if !states.contains(&next) {
                            states.push(next);
                        }
                        best = better(best, trie[next].matched);
                    }
                }
            }
            (best != initial).then(|| definitions[best.1].name.clone())
        })
        .collect()
}

/// A class row's identity: its name and, for objects whose constructor has a place, that place.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ClassKey {
    pub name: String,
    pub location: Option<Location>,
}

/// Each node's class (a dense index), and the classes.
pub(crate) struct Classes {
    pub keys: Vec<ClassKey>,
    pub of_node: Vec<u32>,
}

impl Classes {
    /// Classes as V8 names nodes, by name alone.
    pub fn v8(graph: &Graph) -> Classes {
        let kinds = graph.node_kinds;
        let mut table = KeyTable::default();
        let mut by_string = vec![UNSET; graph.strings.len()];
        let mut by_type = vec![UNSET; graph.node_type_names.len()];
        let mut of_node = Vec::with_capacity(graph.node_count());
        for node in 0..graph.node_count() as u32 {
            let code = graph.node_types[node as usize];
            let named = Some(code) == kinds.object || Some(code) == kinds.native;
            let slot = if named {
                &mut by_string[graph.node_names[node as usize] as usize]
            } else {
                &mut by_type[usize::from(code)]
            };
            if *slot == UNSET {
                let name = if named {
                    graph.name(node).to_owned()
                } else if Some(code) == kinds.hidden {
                    "(system)".to_owned()
                } else if Some(code) == kinds.code {
                    "(compiled code)".to_owned()
                } else {
                    format!("({})", graph.type_name(node))
                };
                *slot = table.get(name, None);
            }
            of_node.push(*slot);
        }
        Classes {
            keys: table.keys,
            of_node,
        }
    }

    /// Classes as Chrome DevTools names and groups nodes, plain objects named by `definitions`.
    pub fn devtools(graph: &Graph, prepared: &Prepared, definitions: &[Interface]) -> Classes {
        let kinds = graph.node_kinds;
        let interface_of_shape = apply_interfaces(&prepared.shapes, definitions);
        let mut table = KeyTable::default();
        // Caches: by (name string, detached), by type, by shape; then by (class, location).
        let mut by_name = vec![[UNSET; 2]; graph.strings.len()];
        let mut by_type = vec![UNSET; graph.node_type_names.len()];
        let mut by_shape = vec![UNSET; prepared.shapes.properties.len()];
        let mut with_location: HashMap<(u32, Location), u32> = HashMap::new();
        let mut last: Option<(u32, Location, u32)> = None;
        let mut locations = graph.locations.iter().peekable();
        let mut of_node = Vec::with_capacity(graph.node_count());
        for node in 0..graph.node_count() as u32 {
            let code = graph.node_types[node as usize];
            let is_object = Some(code) == kinds.object;
            let class = if is_object || Some(code) == kinds.native {
                let shape = prepared.shapes.of_node[node as usize];
                if shape != UNSET && interface_of_shape[shape as usize].is_some() {
                    let slot = &mut by_shape[shape as usize];
                    if *slot == UNSET {
                        let name = interface_of_shape[shape as usize]
                            .clone()
                            .unwrap_or_default();
                        *slot = table.get(name, None);
                    }
                    *slot
                } else {
                    let detached = prepared.detached.get(node);
                    let name_index = graph.node_names[node as usize];
                    let slot = &mut by_name[name_index as usize][usize::from(detached)];
                    if *slot == UNSET {
                        let raw = graph.strings.get(name_index);
                        let name = if detached {
                            format!("Detached {raw}")
                        } else {
                            raw.to_owned()
                        };
                        *slot = table.get(dom_class_name(name), None);
                    }
                    *slot
                }
            } else {
                let slot = &mut by_type[usize::from(code)];
                if *slot == UNSET {
                    let name = if Some(code) == kinds.hidden {
                        "(system)".to_owned()
                    } else if Some(code) == kinds.code {
                        "(compiled code)".to_owned()
                    } else if Some(code) == kinds.closure {
                        "Function".to_owned()
                    } else if Some(code) == kinds.regexp {
                        "RegExp".to_owned()
                    } else {
                        format!("({})", graph.type_name(node))
                    };
                    *slot = table.get(name, None);
                }
                *slot
            };
            // Objects are told apart by where their constructor was defined, too. Locations are
            // sorted by node, so a cursor finds them; the last answer is reused while it fits.
            while locations.peek().is_some_and(|&&(at, _)| at < node) {
                locations.next();
            }
            let location = match locations.peek() {
                Some(&&(at, location)) if at == node && is_object => Some(location),
                _ => None,
            };
            let class = match location {
                Some(location) => match last {
                    Some((c, l, located)) if c == class && l == location => located,
                    _ => {
                        let located =
                            *with_location.entry((class, location)).or_insert_with(|| {
                                let name = table.keys[class as usize].name.clone();
                                table.get(name, Some(location))
                            });
                        last = Some((class, location, located));
                        located
                    }
                },
                None => class,
            };
            of_node.push(class);
        }
        Classes {
            keys: table.keys,
            of_node,
        }
    }
}

/// `<div id="a">` is class `<div>`; `Detached <div id="a">` is `Detached <div>`.
fn dom_class_name(name: String) -> String {
    let cut = |name: &str, from: usize| {
        name[from..]
            .find(' ')
            .map(|i| format!("{}>", &name[..from + i]))
    };
    if name.starts_with('<') {
        cut(&name, 0).unwrap_or(name)
    } else if name.starts_with("Detached <") {
        cut(&name, 10).unwrap_or(name)
    } else {
        name
    }
}

#[derive(Default)]
struct KeyTable {
    keys: Vec<ClassKey>,
    index: HashMap<ClassKey, u32>,
}

impl KeyTable {
    fn get(&mut self, name: String, location: Option<Location>) -> u32 {
        let key = ClassKey { name, location };
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        self.keys.push(key.clone());
        let i = (self.keys.len() - 1) as u32;
        self.index.insert(key, i);
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_weakmap_edge_names_as_devtools_regex_does() {
        let name =
            "3 / part of key (Object @6171) -> value (Object @6169) pair in WeakMap (table @82221)";
        assert_eq!(weakmap_table_id(name), Some(82221));
        let odd =
            "12 / part of key ( @1) -> value (a) -> value (b @2) @3) pair in WeakMap (table @4)";
        assert_eq!(weakmap_table_id(odd), Some(4));
        for not in [
            "part of key (Object @1) -> value (Object @2) pair in WeakMap (table @3)",
            "3 / part of key (Object @1) -> value (Object @2) pair in WeakMap (table @)",
            "3 / part of key (Object @1) -> value (Object @) pair in WeakMap (table @3)",
            "3 / part of key (Object 1) -> value (Object @2) pair in WeakMap (table @3)",
            "3 / part of key (Ob\nject @1) -> value (Object @2) pair in WeakMap (table @3)",
            "map",
        ] {
            assert_eq!(weakmap_table_id(not), None, "{not}");
        }
    }

    #[test]
    fn interfaces_match_the_largest_subset_first_defined() {
        let shapes = Shapes {
            of_node: vec![0, 0, 1, 1, 2, 3, 3],
            properties: vec![
                vec!["a".into(), "b".into()],
                vec!["b".into(), "a".into(), "c".into()],
                vec!["z".into()],
                vec!["x,y".into(), "__proto__".into()],
            ],
        };
        let defs = infer_interfaces(&shapes);
        let names: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["{a, b}", "{b, a, c}", "{\"x,y\"}"]);
        let applied = apply_interfaces(&shapes, &defs);
        assert_eq!(
            applied,
            [
                Some("{a, b}".to_owned()),
                Some("{b, a, c}".to_owned()),
                None,
                Some("{\"x,y\"}".to_owned())
            ]
        );
    }

    #[test]
    fn dom_names_are_cut_at_the_first_space() {
        assert_eq!(dom_class_name("<div id=\"a\">".into()), "<div>");
        assert_eq!(
            dom_class_name("Detached <div id=\"a\">".into()),
            "Detached <div>"
        );
        assert_eq!(
            dom_class_name("Node / ModuleWrap".into()),
            "Node / ModuleWrap"
        );
    }
}
