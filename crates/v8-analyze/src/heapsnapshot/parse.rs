//! Streaming parse of a `.heapsnapshot` (V8's JSON format) into a [`Graph`] and its [`Edges`].
//!
//! The file is read once, front to back, through a fixed buffer: the small `snapshot` header is
//! captured and given to serde; the `nodes`, `edges` and `locations` integer arrays are scanned
//! straight into flat vectors; the `strings` array comes last and only the strings that name
//! something (a class, a property, an internal edge) are kept. No JSON tree of the file is ever
//! built, so memory follows the graph, not the text.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use anyhow::{Context, Result, bail};

use super::graph::{Edges, Graph, IndexSet, Location, MAX_NODES, Sizes, edge_kind};
use super::layout::{EdgeField, Header, Layout, NodeField};
use super::scan::{ByteStream, describe, unescape};

/// The header is a few kilobytes; anything this big is not a V8 heap snapshot.
const HEADER_LIMIT: usize = 16 << 20;

/// Reads a whole snapshot. `file_len` (when known) bounds the capacity reserved up front from the
/// counts the header claims, so a lying header cannot make us allocate more than the file could hold.
///
/// With `split` (the very file `reader` reads, sharing its file offset), a big `edges` array is
/// read by two threads, each half from its own place in the file (see [`SplitFailed`]).
pub(crate) fn parse<R: Read>(
    reader: R,
    file_len: Option<u64>,
    split: Option<&File>,
) -> Result<(Graph, Edges)> {
    let mut stream = ByteStream::new(reader);
    match stream.peek_token()? {
        None => bail!("the file is empty"),
        Some(b'{') => stream.bump(),
        Some(b) => bail!(
            "this is not a heap snapshot: it should start with '{{', found {}",
            describe(b)
        ),
    }

    let mut parts = Parts::default();
    let mut key = Vec::new();
    loop {
        match stream.peek_token()? {
            Some(b'"') => {}
            Some(b'}') if parts.sections == 0 => {
                stream.bump();
                break;
            }
            Some(b) => bail!(
                "expected a key of the snapshot object at byte {}, found {}",
                stream.offset(),
                describe(b)
            ),
            None => bail!("the file ends inside the snapshot object: it is truncated"),
        }
        key.clear();
        stream.read_string(true, &mut key)?;
        stream.expect(b':', "after a key of the snapshot object")?;
        parts.sections += 1;
        if parts.header.is_none() && key.as_slice() == b"nodes" {
            // A CPU profile also starts with "nodes": an array of objects rather than numbers.
            stream.expect(b'[', "to open the \"nodes\" array")?;
            if stream.peek_token()? == Some(b'{') {
                bail!(
                    "this is a CPU profile (its \"nodes\" array holds call-tree objects), not a heap \
                     snapshot: expected a V8 heap snapshot, which starts with a \"snapshot\" header \
                     and holds arrays of numbers"
                );
            }
            bail!(
                "the \"nodes\" array comes before the \"snapshot\" header that describes it \
                 (V8 writes the header first): this is not a heap snapshot V8 wrote"
            );
        }
        match key.as_slice() {
            b"snapshot" => parts.read_header(&mut stream, file_len)?,
            b"nodes" => parts.read_nodes(&mut stream, split)?,
            b"edges" => parts.read_edges(&mut stream, split)?,
            b"locations" => parts.read_locations(&mut stream)?,
            b"strings" => parts.read_strings(&mut stream)?,
            _ => stream
                .skip_value(None, 0)
                .with_context(|| format!("in \"{}\"", String::from_utf8_lossy(&key)))?,
        }
        match stream.peek_token()? {
            Some(b',') => stream.bump(),
            Some(b'}') => {
                stream.bump();
                break;
            }
            Some(b) => bail!(
                "expected ',' or '}}' after \"{}\" at byte {}, found {}",
                String::from_utf8_lossy(&key),
                stream.offset(),
                describe(b)
            ),
            None => bail!(
                "the file ends after \"{}\": it is truncated",
                String::from_utf8_lossy(&key)
            ),
        }
    }
    if let Some(b) = stream.peek_token()? {
        bail!(
            "unexpected {} after the snapshot's closing '}}' at byte {}",
            describe(b),
            stream.offset()
        );
    }
    parts.finish()
}

#[derive(Default)]
struct Parts {
    sections: usize,
    header: Option<(Header, Layout)>,
    graph: Option<Graph>,
    /// Kept apart from the graph: only the preparation and the dominator tree need them.
    edges: Edges,
    file_len: Option<u64>,
    edges_read: bool,
    locations_read: bool,
    strings_read: bool,
    /// Strings worth keeping: names of nodes that are not JS strings, of internal edges and of
    /// objects' properties.
    wanted: IndexSet,
    /// The largest string index an edge with a string name uses, and that edge's number.
    edge_name_max: Option<(u64, u64)>,
}

impl Parts {
    fn read_header<R: Read>(
        &mut self,
        stream: &mut ByteStream<R>,
        file_len: Option<u64>,
    ) -> Result<()> {
        if self.header.is_some() {
            bail!("the file has two \"snapshot\" headers");
        }
        let mut bytes = Vec::new();
        stream
            .skip_value(Some(&mut bytes), HEADER_LIMIT)
            .context("reading the \"snapshot\" header")?;
        let header: Header = serde_json::from_slice(&bytes)
            .context("the \"snapshot\" header is not the one V8 writes")?;
        let layout = Layout::from_meta(&header.meta).context("in the \"snapshot\" header")?;
        self.file_len = file_len;
        self.header = Some((header, layout));
        Ok(())
    }

    /// Capacity to reserve for `claimed` items of `fields` numbers each: no more than the file could
    /// hold (each number takes at least two bytes with its comma).
    fn capacity(&self, claimed: Option<u64>, fields: usize) -> usize {
        let claimed = claimed.unwrap_or(0);
        let bound = match self.file_len {
            Some(len) => len / (2 * fields.max(1) as u64),
            None => 1 << 16,
        };
        usize::try_from(claimed.min(bound)).unwrap_or(0)
    }

    fn read_nodes<R: Read>(
        &mut self,
        stream: &mut ByteStream<R>,
        split: Option<&File>,
    ) -> Result<()> {
        let Some((header, layout)) = &self.header else {
            bail!("the \"nodes\" array comes before the \"snapshot\" header that describes it");
        };
        if self.graph.is_some() {
            bail!("the file has two \"nodes\" arrays");
        }
        let rules = NodeRules::new(layout);
        let field_count = rules.field_count;
        let capacity = self.capacity(header.node_count, field_count);
        let mut graph = Graph::new(layout);
        let mut first_edge = std::mem::take(&mut self.edges.first_edge);
        first_edge.reserve_exact(capacity + 1);
        let mut nodes = NodeColumns::with_capacity(capacity);
        nodes.edge_ends = first_edge;
        nodes.wanted = std::mem::take(&mut self.wanted);
        let plan = match (split, header.node_count) {
            (Some(file), Some(claimed)) if claimed >= SPLIT_MIN_NODES => {
                plan_split(file, stream, claimed, field_count)?
            }
            _ => None,
        };

        let (node, leftover) = match plan {
            None => stream.scan_records(
                "nodes",
                field_count,
                #[inline(always)]
                |record| rules.keep(&mut nodes, record),
            )?,
            Some(plan) => {
                #[cfg(test)]
                tests::NODE_SPLITS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                // As with the edges: the first half here, the second on a thread of its own, and
                // any surprise reads the file again on one thread.
                let (first, second) = std::thread::scope(|scope| {
                    let second = scope.spawn(|| second_half_of_nodes(plan, &rules, capacity));
                    let first = first_half(
                        stream,
                        plan,
                        "nodes",
                        field_count,
                        #[inline(always)]
                        |record| rules.keep(&mut nodes, record),
                    );
                    (first, second.join())
                });
                let (Ok(first_count), Ok(Ok((half, half_count, end)))) = (first, second) else {
                    return Err(SplitFailed.into());
                };
                let total = first_count + half_count;
                if header.node_count != Some(total) || total >= MAX_NODES as u64 {
                    return Err(SplitFailed.into());
                }
                nodes.append(half)?;
                let mut file = plan.file;
                file.seek(SeekFrom::Start(end))
                    .context("moving past the \"nodes\" array")?;
                stream.jumped_to(end);
                (total, 0)
            }
        };
        let NodeColumns {
            types,
            names,
            ids,
            sizes,
            detachedness,
            edge_ends,
            wanted,
            ..
        } = nodes;
        graph.node_types = types;
        graph.node_names = names;
        graph.node_ids = ids;
        graph.self_sizes = sizes;
        graph.detachedness = detachedness;
        self.edges.first_edge = edge_ends;
        self.wanted = wanted;
        if leftover != 0 {
            bail!(
                "the \"nodes\" array holds {} numbers, which is not a whole number of nodes of {} \
                 fields ({:?}): the snapshot is damaged",
                node * field_count as u64 + leftover as u64,
                field_count,
                header.meta.node_fields
            );
        }
        if node == 0 {
            bail!("the \"nodes\" array is empty: a heap snapshot has at least its root node");
        }
        if let Some(claimed) = header.node_count
            && claimed != node
        {
            bail!(
                "snapshot.node_count says {claimed} nodes, but the \"nodes\" array holds {node}: \
                 the snapshot is damaged"
            );
        }
        self.graph = Some(graph);
        Ok(())
    }

    fn read_edges<R: Read>(
        &mut self,
        stream: &mut ByteStream<R>,
        split: Option<&File>,
    ) -> Result<()> {
        let (Some((header, layout)), Some(graph), kept) =
            (&self.header, &mut self.graph, &mut self.edges)
        else {
            bail!(
                "the \"edges\" array comes before the \"nodes\" array (V8 writes the header, \
                 then nodes, then edges)"
            );
        };
        if self.edges_read {
            bail!("the file has two \"edges\" arrays");
        }
        let rules = EdgeRules::new(layout, graph.node_count() as u64);
        let field_count = rules.field_count;
        let expected = u64::from(kept.first_edge.last().copied().unwrap_or(0));
        let capacity = self
            .file_len
            .map(|len| expected.min(len / (2 * field_count as u64)))
            .unwrap_or(expected.min(1 << 16));
        let capacity = usize::try_from(capacity).unwrap_or(0);
        kept.targets.reserve_exact(capacity);
        kept.kinds.reserve_exact(capacity);
        let plan = match split {
            Some(file) if expected >= SPLIT_MIN_EDGES => {
                plan_split(file, stream, expected, field_count)?
            }
            _ => None,
        };

        // Weak edges are not kept, so `first_edge` is rewritten from offsets into the file's edges
        // to offsets into the kept ones as the edges go by. `source` is the node whose edges are
        // being read; `source_end` the file offset where they end (read before it is rewritten).
        let object_type = graph.node_kinds.object;
        let node_types = &graph.node_types;
        let Edges {
            first_edge,
            targets,
            kinds,
            names,
        } = kept;
        let wanted = &mut self.wanted;
        let mut name_max: Option<(u64, u64)> = None;
        let mut source = 0usize;
        let mut source_is_object = Some(node_types[0]) == object_type;
        let mut source_end = u64::from(first_edge.get(1).copied().unwrap_or(0));
        let mut index: u64 = 0;
        let on_edge = {
            #[inline(always)]
            |record: &[u64]| {
                let (edge_type, name, node) = rules.check(record, index)?;
                while index == source_end {
                    source += 1;
                    let Some(&next_end) = first_edge.get(source + 1) else {
                        bail!(
                            "the \"edges\" array holds more than the {expected} edges that the nodes' \
                             edge_count fields add up to: the snapshot is damaged"
                        );
                    };
                    first_edge[source] = targets.len() as u32;
                    source_end = u64::from(next_end);
                    source_is_object = Some(node_types[source]) == object_type;
                }
                if rules.string_named[edge_type] && name_max.is_none_or(|(max, _)| name > max) {
                    name_max = Some((name, index));
                }
                let mut kind = rules.kind_of_type[edge_type];
                if kind != WEAK {
                    if kind == PROPERTY {
                        kind = if source_is_object {
                            edge_kind::OBJECT_PROPERTY
                        } else {
                            edge_kind::OTHER
                        };
                    }
                    targets.push(node as u32);
                    kinds.push(kind);
                    if edge_kind::has_kept_name(kind) {
                        // (name_max says at the end whether the name is a string index at all)
                        let name = name.min(u64::from(u32::MAX)) as u32;
                        names.push(name);
                        wanted.insert(name);
                    }
                }
                index += 1;
                Ok(())
            }
        };
        let (edge, leftover) = match plan {
            None => stream.scan_records("edges", field_count, on_edge)?,
            Some(plan) => {
                #[cfg(test)]
                tests::SPLITS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                // The first half here, the second on a thread of its own; any surprise (damage,
                // a file not laid out as V8 writes it) and the caller reads the file again on
                // one thread, which says exactly what is wrong.
                let (first, second) = std::thread::scope(|scope| {
                    let second = scope.spawn(|| second_half(plan, &rules, expected));
                    let first = first_half(stream, plan, "edges", field_count, on_edge);
                    (first, second.join())
                });
                let (Ok(first_count), Ok(Ok(half))) = (first, second) else {
                    return Err(SplitFailed.into());
                };
                let total = first_count + half.count;
                if total != expected {
                    return Err(SplitFailed.into());
                }
                // The second half's edges, whose sources only the edge counts tell: property
                // edges get their kind, names are kept where the kind keeps them, and
                // `first_edge` is rewritten as the edges above do.
                if let Some((max, at)) = half.name_max
                    && name_max.is_none_or(|(m, _)| max > m)
                {
                    name_max = Some((max, first_count + at));
                }
                let base = targets.len();
                let mut second_kinds = half.kinds;
                let (mut weak, mut kept_at, mut named) = (half.weak.iter().peekable(), 0, 0);
                let mut at = first_count;
                while at < total {
                    while at == source_end {
                        source += 1;
                        let Some(&next_end) = first_edge.get(source + 1) else {
                            return Err(SplitFailed.into());
                        };
                        first_edge[source] = (base + kept_at) as u32;
                        source_end = u64::from(next_end);
                        source_is_object = Some(node_types[source]) == object_type;
                    }
                    let end = source_end.min(total);
                    let mut dropped = 0;
                    while weak.next_if(|&&w| first_count + w < end).is_some() {
                        dropped += 1;
                    }
                    let count = (end - at - dropped) as usize;
                    for kind in &mut second_kinds[kept_at..kept_at + count] {
                        if *kind == PROPERTY {
                            *kind = if source_is_object {
                                edge_kind::OBJECT_PROPERTY
                            } else {
                                edge_kind::OTHER
                            };
                        } else if *kind != edge_kind::INTERNAL {
                            continue;
                        }
                        let name = half.names[named];
                        named += 1;
                        if edge_kind::has_kept_name(*kind) {
                            names.push(name);
                            wanted.insert(name);
                        }
                    }
                    kept_at += count;
                    at = end;
                }
                targets.extend_from_slice(&half.targets);
                kinds.extend_from_slice(&second_kinds);
                // The stream goes on after the array.
                let mut file = plan.file;
                file.seek(SeekFrom::Start(half.end))
                    .context("moving past the \"edges\" array")?;
                stream.jumped_to(half.end);
                (total, 0)
            }
        };
        if leftover != 0 {
            bail!(
                "the \"edges\" array holds {} numbers, which is not a whole number of edges of {} \
                 fields: the snapshot is damaged",
                edge * field_count as u64 + leftover as u64,
                field_count
            );
        }
        if edge != expected {
            bail!(
                "the nodes' edge_count fields add up to {expected} edges, but the \"edges\" array \
                 holds {edge}: the snapshot is damaged"
            );
        }
        if let Some(claimed) = header.edge_count
            && claimed != edge
        {
            bail!(
                "snapshot.edge_count says {claimed} edges, but the \"edges\" array holds {edge}: \
                 the snapshot is damaged"
            );
        }
        // Nodes after the last one with edges.
        let kept_count = kept.targets.len() as u32;
        for slot in kept.first_edge.iter_mut().skip(source + 1) {
            *slot = kept_count;
        }
        kept.targets.shrink_to_fit();
        kept.kinds.shrink_to_fit();
        kept.names.shrink_to_fit();
        graph.edges_in_file = edge;
        self.edge_name_max = name_max;
        self.edges_read = true;
        Ok(())
    }

    /// `locations`: where each object and function was defined (written by V8 since 2021).
    fn read_locations<R: Read>(&mut self, stream: &mut ByteStream<R>) -> Result<()> {
        let (Some((_, layout)), Some(graph)) = (&self.header, &mut self.graph) else {
            bail!("the \"locations\" array comes before the \"nodes\" array it refers to");
        };
        if self.locations_read {
            bail!("the file has two \"locations\" arrays");
        }
        let fields = &self
            .header
            .as_ref()
            .map(|(h, _)| h.meta.location_fields.clone())
            .unwrap_or_default();
        let at = |name: &str| fields.iter().position(|f| f == name);
        let (Some(index_at), Some(script_at), Some(line_at), Some(column_at)) = (
            at("object_index"),
            at("script_id"),
            at("line"),
            at("column"),
        ) else {
            // A layout this crate does not know: the locations are not used.
            stream.skip_value(None, 0).context("in \"locations\"")?;
            self.locations_read = true;
            return Ok(());
        };
        let node_field_count = layout.node_field_count() as u64;
        let node_count = graph.node_count() as u64;
        let locations = &mut graph.locations;
        let small = |n: u64, what: &str| -> Result<u32> {
            u32::try_from(n).with_context(|| format!("a location's {what} {n} is too large"))
        };
        let (count, leftover) = stream.scan_records("locations", fields.len(), |record| {
            let index = record[index_at];
            let node = index / node_field_count;
            if node * node_field_count != index || node >= node_count {
                bail!(
                    "location {} points to {index}, which is not the start of one of the \
                     {node_count} nodes ({node_field_count} numbers each)",
                    locations.len()
                );
            }
            locations.push((
                node as u32,
                Location {
                    script_id: small(record[script_at], "script id")?,
                    line: small(record[line_at], "line")?,
                    column: small(record[column_at], "column")?,
                },
            ));
            Ok(())
        })?;
        if leftover != 0 {
            bail!(
                "the \"locations\" array holds {} numbers, which is not a whole number of \
                 locations of {} fields: the snapshot is damaged",
                count * fields.len() as u64 + leftover as u64,
                fields.len()
            );
        }
        if !locations.is_sorted_by_key(|&(node, _)| node) {
            locations.sort_by_key(|&(node, _)| node);
        }
        locations.dedup_by_key(|&mut (node, _)| node);
        self.locations_read = true;
        Ok(())
    }

    fn read_strings<R: Read>(&mut self, stream: &mut ByteStream<R>) -> Result<()> {
        let Some(graph) = &mut self.graph else {
            bail!("the \"strings\" array comes before the \"nodes\" array (V8 writes it last)");
        };
        if self.strings_read {
            bail!("the file has two \"strings\" arrays");
        }
        let wanted = &self.wanted;
        stream.expect(b'[', "to open the \"strings\" array")?;
        let mut raw = Vec::new();
        let mut index: u64 = 0;
        if stream.peek_token()? == Some(b']') {
            stream.bump();
        } else {
            loop {
                let keep = wanted.contains(index);
                raw.clear();
                let escaped = stream
                    .read_string(keep, &mut raw)
                    .with_context(|| format!("reading string {index} of the \"strings\" array"))?;
                let text: Cow<str> = match (keep, escaped) {
                    (false, _) => Cow::Borrowed(""),
                    (true, false) => Cow::Borrowed(
                        std::str::from_utf8(&raw)
                            .with_context(|| format!("string {index} is not valid UTF-8"))?,
                    ),
                    (true, true) => {
                        Cow::Owned(unescape(&raw).with_context(|| format!("in string {index}"))?)
                    }
                };
                graph
                    .strings
                    .push(&text)
                    .context("the kept strings pass 4 GiB, which is not supported")?;
                index += 1;
                match stream.peek_token()? {
                    Some(b',') => stream.bump(),
                    Some(b']') => {
                        stream.bump();
                        break;
                    }
                    Some(b) => bail!(
                        "expected ',' or ']' after string {index} of the \"strings\" array at \
                         byte {}, found {}",
                        stream.offset(),
                        describe(b)
                    ),
                    None => bail!(
                        "the file ends inside the \"strings\" array, after {index} strings: \
                         the snapshot is truncated"
                    ),
                }
            }
        }
        self.strings_read = true;
        Ok(())
    }

    fn finish(self) -> Result<(Graph, Edges)> {
        if self.header.is_none() {
            bail!("the file has no \"snapshot\" header: it is not a V8 heap snapshot");
        }
        let Some(graph) = self.graph else {
            bail!("the file has no \"nodes\" array");
        };
        if !self.edges_read {
            bail!("the file has no \"edges\" array");
        }
        if !self.strings_read {
            bail!("the file has no \"strings\" array");
        }
        let strings = graph.strings.len() as u64;
        if let Some(max) = graph.node_names.iter().max()
            && u64::from(*max) >= strings
        {
            bail!(
                "a node's name is string {max}, but the \"strings\" array holds only {strings}: \
                 the snapshot is damaged"
            );
        }
        if let Some((max, edge)) = self.edge_name_max
            && max >= strings
        {
            bail!(
                "edge {edge} is named by string {max}, but the \"strings\" array holds only \
                 {strings}: the snapshot is damaged"
            );
        }
        Ok((graph, self.edges))
    }
}

/// Where a field sits in a record (`Layout::from_meta` made sure every one read is there).
fn position_of<F: PartialEq>(fields: &[F], wanted: F) -> usize {
    fields.iter().position(|f| *f == wanted).unwrap_or(0)
}

/// An `edges` array of fewer edges than this is read on one thread (the tests split smaller ones).
const SPLIT_MIN_EDGES: u64 = if cfg!(test) { 1 << 16 } else { 1 << 20 };
/// A `nodes` array of fewer nodes than this is read on one thread (about as many numbers as the
/// smallest `edges` array that is split).
const SPLIT_MIN_NODES: u64 = if cfg!(test) { 1 << 14 } else { 1 << 18 };

/// Edge kinds while parsing: dropped (weak), and a property whose kind depends on its source.
const WEAK: u8 = 0xff;
/// A property: `OBJECT_PROPERTY` from an object, `OTHER` from anything else.
const PROPERTY: u8 = 0xfe;

/// Reading the `nodes` or `edges` array on two threads did not work out for this file (a damaged
/// array, or one not laid out as V8 writes it): it is read again on one thread, which says what
/// is wrong.
#[derive(Debug)]
pub(crate) struct SplitFailed;

impl std::fmt::Display for SplitFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array could not be read in two halves")
    }
}

impl std::error::Error for SplitFailed {}

/// What every node record is checked against, and where its fields are.
struct NodeRules {
    field_count: usize,
    type_at: usize,
    name_at: usize,
    id_at: usize,
    size_at: usize,
    edges_at: usize,
    /// Optional: where it is not written, a field that always holds 0 stands in for it.
    detached_at: Option<usize>,
    type_count: u64,
    /// Node types whose name is the text of a JS string (the names of the others are kept).
    string_like: [bool; 256],
}

impl NodeRules {
    fn new(layout: &Layout) -> NodeRules {
        let position = |wanted| position_of(&layout.node_fields, wanted);
        let mut string_like = [false; 256];
        for name in ["string", "concatenated string", "sliced string"] {
            if let Some(code) = layout.node_type(name) {
                string_like[usize::from(code)] = true;
            }
        }
        NodeRules {
            field_count: layout.node_field_count(),
            type_at: position(NodeField::Type),
            name_at: position(NodeField::Name),
            id_at: position(NodeField::Id),
            size_at: position(NodeField::SelfSize),
            edges_at: position(NodeField::EdgeCount),
            detached_at: layout
                .node_fields
                .iter()
                .position(|&f| f == NodeField::Detachedness),
            type_count: layout.node_type_names.len() as u64,
            string_like,
        }
    }

    /// Checks one node record and appends it to `nodes`.
    #[inline(always)]
    fn keep(&self, nodes: &mut NodeColumns, record: &[u64]) -> Result<()> {
        let node = nodes.types.len();
        let (node_type, name, id, size, edges) = (
            record[self.type_at],
            record[self.name_at],
            record[self.id_at],
            record[self.size_at],
            record[self.edges_at],
        );
        if node_type >= self.type_count || name > u64::from(u32::MAX) || id > u64::from(u32::MAX) {
            return Err(bad_node(node, node_type, self.type_count, name, id));
        }
        if node >= MAX_NODES {
            bail!("the snapshot has more than {MAX_NODES} nodes, which is not supported");
        }
        nodes.types.push(node_type as u8);
        nodes.names.push(name as u32);
        if !self.string_like[node_type as usize] {
            nodes.wanted.insert(name as u32);
        }
        nodes.ids.push(id as u32);
        nodes.sizes.push(size);
        if let Some(at) = self.detached_at
            && record[at] != 0
        {
            nodes
                .detachedness
                .push((node as u32, record[at].min(255) as u8));
        }
        nodes.edge_total += edges;
        match u32::try_from(nodes.edge_total) {
            Ok(end) => nodes.edge_ends.push(end),
            Err(_) => bail!(
                "the edge counts pass {} edges, which is not supported",
                u32::MAX
            ),
        }
        Ok(())
    }
}

/// Nodes as they are read: the graph's columns (with `first_edge`, which starts with a 0), or a
/// second half's own, numbered from 0 and with edge ends counted from its first node.
#[derive(Default)]
struct NodeColumns {
    types: Vec<u8>,
    names: Vec<u32>,
    ids: Vec<u32>,
    sizes: Sizes,
    detachedness: Vec<(u32, u8)>,
    /// After each node, the edges of the nodes so far.
    edge_ends: Vec<u32>,
    edge_total: u64,
    wanted: IndexSet,
}

impl NodeColumns {
    fn with_capacity(capacity: usize) -> NodeColumns {
        let mut nodes = NodeColumns::default();
        nodes.types.reserve_exact(capacity);
        nodes.names.reserve_exact(capacity);
        nodes.ids.reserve_exact(capacity);
        nodes.sizes.small.reserve_exact(capacity);
        nodes
    }

    /// Appends a second half's nodes: their numbers and edge ends move up by this half's.
    fn append(&mut self, half: NodeColumns) -> Result<()> {
        let base = self.types.len() as u32;
        let edge_base = self.edge_total;
        self.edge_total += half.edge_total;
        if u32::try_from(self.edge_total).is_err() {
            return Err(SplitFailed.into());
        }
        let edge_base = edge_base as u32;
        self.types.extend_from_slice(&half.types);
        self.names.extend_from_slice(&half.names);
        self.ids.extend_from_slice(&half.ids);
        self.sizes.small.extend_from_slice(&half.sizes.small);
        self.sizes.large.extend(
            half.sizes
                .large
                .iter()
                .map(|(&node, &size)| (base + node, size)),
        );
        self.detachedness.extend(
            half.detachedness
                .iter()
                .map(|&(node, detachedness)| (base + node, detachedness)),
        );
        self.edge_ends
            .extend(half.edge_ends.iter().map(|&end| edge_base + end));
        self.wanted.union_with(&half.wanted);
        Ok(())
    }
}

/// The second half of a split `nodes` array, read on its own thread: its nodes, how many, and
/// the offset in the file just after the array's `]`.
fn second_half_of_nodes(
    split: Split<'_>,
    rules: &NodeRules,
    capacity: usize,
) -> Result<(NodeColumns, u64, u64)> {
    let rest = FileRange {
        file: split.file,
        at: split.middle + 2,
        end: u64::MAX,
    };
    let mut stream = ByteStream::starting_at((&b"["[..]).chain(rest), split.middle + 1);
    let mut nodes = NodeColumns::with_capacity(capacity / 2 + capacity / 8);
    nodes.edge_ends.reserve_exact(capacity / 2 + capacity / 8);
    let (count, leftover) = stream.scan_records(
        "nodes",
        rules.field_count,
        #[inline(always)]
        |record| rules.keep(&mut nodes, record),
    )?;
    if leftover != 0 {
        return Err(SplitFailed.into());
    }
    Ok((nodes, count, stream.offset()))
}

/// What every edge record is checked against, and how its type is read.
struct EdgeRules {
    field_count: usize,
    type_at: usize,
    name_at: usize,
    to_at: usize,
    type_count: u64,
    node_count: u64,
    node_field_count: u64,
    divide: Divider,
    /// Per edge type: `WEAK`, `PROPERTY` or the `edge_kind` it is.
    kind_of_type: [u8; 256],
    /// Per edge type: whether its name is a string index.
    string_named: [bool; 256],
}

impl EdgeRules {
    fn new(layout: &Layout, node_count: u64) -> EdgeRules {
        let position = |wanted| position_of(&layout.edge_fields, wanted);
        let mut kind_of_type = [edge_kind::OTHER; 256];
        let mut string_named = [true; 256];
        for (code, name) in layout.edge_type_names.iter().enumerate().take(256) {
            kind_of_type[code] = match name.as_str() {
                "weak" => WEAK,
                "shortcut" => edge_kind::SHORTCUT,
                "internal" => edge_kind::INTERNAL,
                "property" => PROPERTY,
                "element" => edge_kind::ELEMENT,
                "hidden" => edge_kind::HIDDEN,
                _ => edge_kind::OTHER,
            };
            // Chrome DevTools: element and hidden edges are named by a number, the rest by a string.
            string_named[code] = !matches!(name.as_str(), "element" | "hidden");
        }
        let node_field_count = layout.node_field_count() as u64;
        EdgeRules {
            field_count: layout.edge_fields.len(),
            type_at: position(EdgeField::Type),
            name_at: position(EdgeField::Name),
            to_at: position(EdgeField::ToNode),
            type_count: layout.edge_type_names.len() as u64,
            node_count,
            node_field_count,
            divide: Divider::new(node_field_count),
            kind_of_type,
            string_named,
        }
    }

    /// The record's type (as an index), name and target node, checked; `index` is its number.
    #[inline(always)]
    fn check(&self, record: &[u64], index: u64) -> Result<(usize, u64, u64)> {
        let (edge_type, name, to) = (
            record[self.type_at],
            record[self.name_at],
            record[self.to_at],
        );
        let node = self.divide.quotient(to);
        if edge_type >= self.type_count
            || node * self.node_field_count != to
            || node >= self.node_count
        {
            return Err(bad_edge(
                index,
                edge_type,
                self.type_count,
                to,
                self.node_count,
                self.node_field_count,
            ));
        }
        Ok((edge_type as usize, name, node))
    }
}

/// Where the `nodes` or `edges` array is cut in two: `[` at `start`, the first half up to `middle` (a `\n`
/// that ends a record), the second half from the `,` after it.
#[derive(Clone, Copy)]
struct Split<'a> {
    file: &'a File,
    start: u64,
    middle: u64,
}

/// Picks the middle of the `nodes` or `edges` array without reading it: the records in what the
/// stream has buffered tell their usual length, and the array cannot end before every record takes
/// its shortest form (`0,0,0\n`). `None` when the array is not laid out one record a line.
fn plan_split<'a, R: Read>(
    file: &'a File,
    stream: &mut ByteStream<R>,
    records: u64,
    fields: usize,
) -> Result<Option<Split<'a>>> {
    if !cfg!(unix) || stream.peek_token()? != Some(b'[') {
        return Ok(None);
    }
    let start = stream.offset();
    let buffered = stream.buffered();
    let lines = buffered.iter().filter(|&&b| b == b'\n').count() as u64;
    if lines < 64 {
        return Ok(None);
    }
    let shortest_end = start + 2 * fields as u64 * records;
    let estimated_middle = start + buffered.len() as u64 * records / lines / 2;
    let middle = estimated_middle.min(shortest_end.saturating_sub(1 << 16));
    if middle <= start + buffered.len() as u64 {
        return Ok(None);
    }
    let mut window = vec![0u8; 1 << 16];
    // A file that cannot be read by position (a pipe) is read on one thread.
    let Ok(read) = read_at(file, &mut window, middle) else {
        return Ok(None);
    };
    let Some(at) = window[..read].windows(2).position(|w| w == b"\n,") else {
        return Ok(None);
    };
    Ok(Some(Split {
        file,
        start,
        middle: middle + at as u64,
    }))
}

/// The first half of a split `nodes` or `edges` array, from the stream's buffer and then the file, closed
/// by a `]` of our own; the number of edges in it.
fn first_half<R: Read>(
    stream: &ByteStream<R>,
    split: Split<'_>,
    name: &str,
    fields: usize,
    on_record: impl FnMut(&[u64]) -> Result<()>,
) -> Result<u64> {
    let buffered = stream.buffered();
    let rest = FileRange {
        file: split.file,
        at: split.start + buffered.len() as u64,
        end: split.middle,
    };
    let mut half = ByteStream::starting_at(buffered.chain(rest).chain(&b"]"[..]), split.start);
    let (count, leftover) = half.scan_records(name, fields, on_record)?;
    // It must end at our `]` (not at one of the file's), after whole records.
    if leftover != 0 || half.offset() != split.middle + 1 {
        return Err(SplitFailed.into());
    }
    Ok(count)
}

/// The second half's edges, as the first half keeps them but for what depends on their source:
/// properties keep the `PROPERTY` kind, and the names of all of them and of internal edges are
/// kept.
struct Half {
    count: u64,
    targets: Vec<u32>,
    kinds: Vec<u8>,
    names: Vec<u32>,
    /// Numbers (within the half) of the weak edges, which are not kept.
    weak: Vec<u64>,
    /// The largest string index naming an edge, and that edge's number within the half.
    name_max: Option<(u64, u64)>,
    /// Offset in the file just after the array's `]`.
    end: u64,
}

fn second_half(split: Split<'_>, rules: &EdgeRules, expected: u64) -> Result<Half> {
    let rest = FileRange {
        file: split.file,
        at: split.middle + 2,
        end: u64::MAX,
    };
    let mut stream = ByteStream::starting_at((&b"["[..]).chain(rest), split.middle + 1);
    let capacity = usize::try_from(expected / 2 + expected / 8).unwrap_or(0);
    let mut half = Half {
        count: 0,
        targets: Vec::with_capacity(capacity),
        kinds: Vec::with_capacity(capacity),
        names: Vec::new(),
        weak: Vec::new(),
        name_max: None,
        end: 0,
    };
    let mut index = 0u64;
    let (count, leftover) = stream.scan_records(
        "edges",
        rules.field_count,
        #[inline(always)]
        |record| {
            let (edge_type, name, node) = rules.check(record, index)?;
            if rules.string_named[edge_type] && half.name_max.is_none_or(|(max, _)| name > max) {
                half.name_max = Some((name, index));
            }
            let kind = rules.kind_of_type[edge_type];
            if kind == WEAK {
                half.weak.push(index);
            } else {
                half.targets.push(node as u32);
                half.kinds.push(kind);
                if kind == PROPERTY || kind == edge_kind::INTERNAL {
                    half.names.push(name.min(u64::from(u32::MAX)) as u32);
                }
            }
            index += 1;
            Ok(())
        },
    )?;
    if leftover != 0 {
        return Err(SplitFailed.into());
    }
    half.count = count;
    half.end = stream.offset();
    Ok(half)
}

/// Bytes `at..end` of a file, read by position (the file's own offset is left alone).
struct FileRange<'a> {
    file: &'a File,
    at: u64,
    end: u64,
}

impl Read for FileRange<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let want = (self.end - self.at).min(out.len() as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        let read = read_at(self.file, &mut out[..want], self.at)?;
        self.at += read as u64;
        Ok(read)
    }
}

#[cfg(unix)]
fn read_at(file: &File, out: &mut [u8], at: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, out, at)
}

/// Elsewhere the array is read on one thread (`plan_split` makes no plan).
#[cfg(not(unix))]
fn read_at(_file: &File, _out: &mut [u8], _at: u64) -> io::Result<usize> {
    Err(io::ErrorKind::Unsupported.into())
}

#[cold]
fn bad_node(node: usize, node_type: u64, type_count: u64, name: u64, id: u64) -> anyhow::Error {
    if node_type >= type_count {
        anyhow::anyhow!(
            "node {node} has type {node_type}, but snapshot.meta.node_types names only {type_count} types"
        )
    } else if name > u64::from(u32::MAX) {
        anyhow::anyhow!("node {node} has name index {name}, past any strings array")
    } else {
        anyhow::anyhow!("node {node} has id {id}, larger than V8's 32-bit ids")
    }
}

#[cold]
fn bad_edge(
    edge: u64,
    edge_type: u64,
    type_count: u64,
    to: u64,
    node_count: u64,
    node_field_count: u64,
) -> anyhow::Error {
    if edge_type >= type_count {
        anyhow::anyhow!(
            "edge {edge} has type {edge_type}, but snapshot.meta.edge_types names only {type_count} types"
        )
    } else {
        anyhow::anyhow!(
            "edge {edge} points to {to}, which is not the start of one of the {node_count} nodes \
             ({node_field_count} numbers each)"
        )
    }
}

/// Division by the node field count without a hardware divide per edge (Lemire, Kaser & Kurz,
/// "Faster remainder by direct computation", 2019): exact for dividends below 2^32; larger ones
/// (never valid node positions in practice) take the slow path.
struct Divider {
    divisor: u64,
    magic: u64,
}

impl Divider {
    fn new(divisor: u64) -> Divider {
        let divisor = divisor.max(1);
        let magic = if divisor == 1 {
            0
        } else {
            u64::MAX / divisor + 1
        };
        Divider { divisor, magic }
    }

    #[inline]
    fn quotient(&self, n: u64) -> u64 {
        if self.magic == 0 || n > u64::from(u32::MAX) {
            n / self.divisor
        } else {
            ((u128::from(self.magic) * u128::from(n)) >> 64) as u64
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::heapsnapshot::{Convention, HeapSnapshot};

    /// How many `edges` arrays were read in two halves.
    pub(super) static SPLITS: AtomicUsize = AtomicUsize::new(0);
    /// How many `nodes` arrays were read in two halves.
    pub(super) static NODE_SPLITS: AtomicUsize = AtomicUsize::new(0);

    /// A snapshot laid out as V8 writes it (one record a line, `\n,` between records), with
    /// `nodes` nodes and about three edges each of every type, targets spread over the graph.
    /// `separator` goes between records (V8: `\n,`); `inner` between the numbers of a record.
    fn synthetic(nodes: usize, separator: &str, inner: &str) -> String {
        let node_types = r#"["hidden","array","string","object","code","closure","regexp","number","native","synthetic","concatenated string","sliced string","symbol","bigint","object shape"]"#;
        let edge_types =
            r#"["context","element","property","internal","hidden","shortcut","weak"]"#;
        let strings = [
            "",
            "Object",
            "a",
            "b",
            "map",
            "Thing",
            "(GC roots)",
            "global",
        ];
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |bound: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % bound
        };
        let mut edge_counts = Vec::with_capacity(nodes);
        let mut edges: Vec<[u64; 3]> = Vec::new();
        for node in 0..nodes as u64 {
            let count = if node == 0 { 50 } else { 1 + next(5) };
            for _ in 0..count {
                let edge_type = if node == 0 { 5 * next(2) } else { next(7) };
                let name = match edge_type {
                    1 | 4 => next(100),
                    _ => next(strings.len() as u64),
                };
                edges.push([edge_type, name, next(nodes as u64) * 7]);
            }
            edge_counts.push(count);
        }
        let mut text = format!(
            r#"{{"snapshot":{{"meta":{{"node_fields":["type","name","id","self_size","edge_count","trace_node_id","detachedness"],"node_types":[{node_types},"string","number","number","number","number","number"],"edge_fields":["type","name_or_index","to_node"],"edge_types":[{edge_types},"string_or_number","node"],"location_fields":["object_index","script_id","line","column"]}},"node_count":{nodes},"edge_count":{}}},"nodes":["#,
            edges.len()
        );
        for (node, count) in edge_counts.iter().enumerate() {
            if node > 0 {
                text.push_str(separator);
            }
            let node_type = if node == 0 {
                9
            } else {
                [3, 3, 1, 0, 5, 3][node % 6]
            };
            // Now and then a size past 32 bits and a detachedness, which are kept aside.
            let size = if node % 1009 == 5 {
                5_000_000_000 + node as u64
            } else {
                16 + node as u64 % 40
            };
            let detachedness = if node % 997 == 3 {
                1 + node as u64 % 2
            } else {
                0
            };
            let fields = [
                node_type,
                node as u64 % 8,
                node as u64 * 2 + 1,
                size,
                *count,
                0,
                detachedness,
            ];
            text.push_str(&fields.map(|f| f.to_string()).join(inner));
        }
        text.push_str("],\"edges\":[");
        for (i, edge) in edges.iter().enumerate() {
            if i > 0 {
                text.push_str(separator);
            }
            text.push_str(&edge.map(|f| f.to_string()).join(inner));
        }
        text.push_str(
            "],\"trace_function_infos\":[],\"locations\":[7,1,2,3\n,14,1,5,6],\"strings\":[",
        );
        let quoted: Vec<String> = strings.iter().map(|s| format!("\"{s}\"")).collect();
        text.push_str(&quoted.join(","));
        text.push_str("]}");
        text
    }

    fn write(name: &str, text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "v8-analyze-{}-{name}.heapsnapshot",
            std::process::id()
        ));
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .unwrap();
        path
    }

    fn parse_file(path: &Path, split: bool) -> Result<(Graph, Edges)> {
        let file = File::open(path).unwrap();
        let len = file.metadata().ok().map(|m| m.len());
        parse(&file, len, split.then_some(&file))
    }

    fn summary_text(path: &Path, threads: usize) -> String {
        match HeapSnapshot::load_with(path, Convention::DevTools, threads) {
            Ok(snapshot) => format!("{:?}", snapshot.summary()),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn edges_read_in_two_halves_are_the_edges_read_in_one() {
        let path = write("halves", &synthetic(40_000, "\n,", ","));
        let (graph, edges) = parse_file(&path, false).unwrap();
        assert!(
            graph.edges_in_file >= SPLIT_MIN_EDGES,
            "big enough to split"
        );
        let before = SPLITS.load(Ordering::Relaxed);
        let (split_graph, split_edges) = parse_file(&path, true).unwrap();
        assert!(
            SPLITS.load(Ordering::Relaxed) > before,
            "read in two halves"
        );
        assert_eq!(split_graph.edges_in_file, graph.edges_in_file);
        assert_eq!(split_edges.first_edge, edges.first_edge);
        assert_eq!(split_edges.targets, edges.targets);
        assert_eq!(split_edges.kinds, edges.kinds);
        assert_eq!(split_edges.names, edges.names);
        assert_eq!(all_strings(&split_graph), all_strings(&graph));
        assert_eq!(summary_text(&path, 2), summary_text(&path, 1));
        std::fs::remove_file(&path).unwrap();
    }

    /// Every string of the graph's table, in order.
    fn all_strings(g: &Graph) -> Vec<String> {
        (0..g.strings.len() as u32)
            .map(|i| g.strings.get(i).to_owned())
            .collect()
    }

    #[test]
    fn nodes_read_in_two_halves_are_the_nodes_read_in_one() {
        let path = write("node-halves", &synthetic(40_000, "\n,", ","));
        let (graph, edges) = parse_file(&path, false).unwrap();
        assert!(
            graph.node_count() as u64 >= SPLIT_MIN_NODES,
            "big enough to split"
        );
        let before = NODE_SPLITS.load(Ordering::Relaxed);
        let (split_graph, split_edges) = parse_file(&path, true).unwrap();
        assert!(
            NODE_SPLITS.load(Ordering::Relaxed) > before,
            "read in two halves"
        );
        assert_eq!(split_graph.node_types, graph.node_types);
        assert_eq!(split_graph.node_names, graph.node_names);
        assert_eq!(split_graph.node_ids, graph.node_ids);
        assert_eq!(split_graph.self_sizes.small, graph.self_sizes.small);
        assert_eq!(split_graph.self_sizes.large, graph.self_sizes.large);
        // The sizes and detachedness kept aside come from both halves.
        let half = graph.node_count() as u32 / 2;
        for kept in [
            graph.self_sizes.large.keys().copied().collect::<Vec<_>>(),
            graph.detachedness.iter().map(|&(node, _)| node).collect(),
        ] {
            assert!(kept.iter().any(|&n| n < half) && kept.iter().any(|&n| n > half));
        }
        assert_eq!(split_graph.detachedness, graph.detachedness);
        assert_eq!(split_edges.first_edge, edges.first_edge);
        assert_eq!(split_edges.targets, edges.targets);
        assert_eq!(all_strings(&split_graph), all_strings(&graph));
        assert_eq!(summary_text(&path, 2), summary_text(&path, 1));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn damage_in_either_half_of_the_nodes_is_reported_as_on_one_thread() {
        let text = synthetic(40_000, "\n,", ",");
        let nodes_at = text.find("\"nodes\":[").unwrap();
        let edges_at = text.find("],\"edges\":[").unwrap();
        for (name, at) in [
            ("nodes-early", nodes_at + 5_000),
            ("nodes-late", edges_at - 5_000),
        ] {
            // A node type past the types the header names, in the first or the second half.
            let line = at + text[at..].find("\n,").unwrap() + 2;
            let comma = line + text[line..].find(',').unwrap();
            let damaged = format!("{}99{}", &text[..line], &text[comma..]);
            let path = write(name, &damaged);
            let err = parse_file(&path, true).unwrap_err();
            assert!(
                err.chain().any(|c| c.is::<SplitFailed>()),
                "{name}: {err:#}"
            );
            let one = summary_text(&path, 1);
            assert!(
                one.contains("has type 99, but snapshot.meta.node_types"),
                "{one}"
            );
            assert_eq!(summary_text(&path, 2), one, "{name}");
            std::fs::remove_file(&path).unwrap();
        }
    }

    #[test]
    fn damage_in_either_half_is_reported_as_on_one_thread() {
        let text = synthetic(40_000, "\n,", ",");
        let edges_at = text.find("\"edges\":[").unwrap();
        let strings_at = text.find("],\"trace_function_infos\"").unwrap();
        for (name, at) in [("early", edges_at + 5_000), ("late", strings_at - 5_000)] {
            // A target that is not the start of a node, in the first or the second half.
            let line = at + text[at..].find("\n,").unwrap() + 2;
            let end = line + text[line..].find("\n").unwrap();
            let record: Vec<&str> = text[line..end].split(',').collect();
            let damaged = format!(
                "{}{},{},3{}",
                &text[..line],
                record[0],
                record[1],
                &text[end..]
            );
            let path = write(name, &damaged);
            let err = parse_file(&path, true).unwrap_err();
            assert!(
                err.chain().any(|c| c.is::<SplitFailed>()),
                "{name}: {err:#}"
            );
            let one = summary_text(&path, 1);
            assert!(
                one.contains("points to 3, which is not the start of one of the"),
                "{one}"
            );
            assert_eq!(summary_text(&path, 2), one, "{name}");
            std::fs::remove_file(&path).unwrap();
        }
    }

    #[test]
    fn files_not_laid_out_one_record_a_line_give_the_same_result() {
        for (name, separator, inner) in [
            ("every-number", "\n,", "\n,"),
            ("no-newlines", ",", ","),
            ("spaces", " ,\n", ", "),
        ] {
            let path = write(name, &synthetic(40_000, separator, inner));
            let one = summary_text(&path, 1);
            assert!(one.contains("Thing"), "{name}: {one}");
            assert_eq!(summary_text(&path, 2), one, "{name}");
            std::fs::remove_file(&path).unwrap();
        }
    }

    #[test]
    fn fast_division_is_exact() {
        for divisor in 1..=12u64 {
            let divide = Divider::new(divisor);
            for n in (0..100_000u64).chain([u64::from(u32::MAX) - 1, u64::from(u32::MAX), 1 << 40])
            {
                assert_eq!(divide.quotient(n), n / divisor, "{n} / {divisor}");
            }
        }
    }
}
