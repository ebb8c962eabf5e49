//! What `snapshot.meta` says about the flat arrays: where each field sits, and what the type codes mean.
//!
//! Nothing is assumed about positions: V8 has added fields over the years (`trace_node_id`,
//! `detachedness`), so every field is looked up by name.

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// The `snapshot` object at the top of the file (only what this crate reads).
#[derive(Debug, Deserialize)]
pub(crate) struct Header {
    pub meta: Meta,
    /// What V8 says the arrays hold; checked against their real lengths.
    pub node_count: Option<u64>,
    pub edge_count: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Meta {
    pub node_fields: Vec<String>,
    pub node_types: Vec<FieldType>,
    pub edge_fields: Vec<String>,
    pub edge_types: Vec<FieldType>,
    /// The fields of a `locations` record (Node 20: object_index, script_id, line, column).
    #[serde(default)]
    pub location_fields: Vec<String>,
}

/// The type of one field: an enumeration (the names its codes stand for) or a plain type name.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum FieldType {
    Enum(Vec<String>),
    Plain(String),
}

/// What a number in the `nodes` array is, by its position within a node's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeField {
    Type,
    Name,
    Id,
    SelfSize,
    EdgeCount,
    Detachedness,
    Ignored,
}

/// What a number in the `edges` array is, by its position within an edge's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EdgeField {
    Type,
    Name,
    ToNode,
    Ignored,
}

#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub node_fields: Vec<NodeField>,
    pub edge_fields: Vec<EdgeField>,
    pub node_type_names: Vec<String>,
    pub edge_type_names: Vec<String>,
}

impl Layout {
    pub fn from_meta(meta: &Meta) -> Result<Layout> {
        let node_fields = meta
            .node_fields
            .iter()
            .map(|name| match name.as_str() {
                "type" => NodeField::Type,
                "name" => NodeField::Name,
                "id" => NodeField::Id,
                "self_size" => NodeField::SelfSize,
                "edge_count" => NodeField::EdgeCount,
                "detachedness" => NodeField::Detachedness,
                _ => NodeField::Ignored,
            })
            .collect::<Vec<_>>();
        for (field, name) in [
            (NodeField::Type, "type"),
            (NodeField::Name, "name"),
            (NodeField::Id, "id"),
            (NodeField::SelfSize, "self_size"),
            (NodeField::EdgeCount, "edge_count"),
        ] {
            require_once(&node_fields, field, name, "node_fields", &meta.node_fields)?;
        }
        let edge_fields = meta
            .edge_fields
            .iter()
            .map(|name| match name.as_str() {
                "type" => EdgeField::Type,
                "name_or_index" => EdgeField::Name,
                "to_node" => EdgeField::ToNode,
                _ => EdgeField::Ignored,
            })
            .collect::<Vec<_>>();
        for (field, name) in [
            (EdgeField::Type, "type"),
            (EdgeField::Name, "name_or_index"),
            (EdgeField::ToNode, "to_node"),
        ] {
            require_once(&edge_fields, field, name, "edge_fields", &meta.edge_fields)?;
        }

        let node_type_names = enum_names(&meta.node_fields, &meta.node_types, "node")?;
        if node_type_names.len() > usize::from(u8::MAX) + 1 {
            bail!(
                "snapshot.meta.node_types lists {} node types; at most 256 are supported",
                node_type_names.len()
            );
        }
        let edge_type_names = enum_names(&meta.edge_fields, &meta.edge_types, "edge")?;
        Ok(Layout {
            node_fields,
            edge_fields,
            node_type_names,
            edge_type_names,
        })
    }

    pub fn node_field_count(&self) -> usize {
        self.node_fields.len()
    }

    pub fn node_type(&self, name: &str) -> Option<u8> {
        code(&self.node_type_names, name)
    }
}

fn code(names: &[String], name: &str) -> Option<u8> {
    names
        .iter()
        .position(|n| n == name)
        .and_then(|i| u8::try_from(i).ok())
}

fn require_once<F: PartialEq>(
    fields: &[F],
    field: F,
    name: &str,
    list: &str,
    given: &[String],
) -> Result<()> {
    match fields.iter().filter(|f| **f == field).count() {
        1 => Ok(()),
        0 => bail!("snapshot.meta.{list} has no \"{name}\" field (it lists {given:?})"),
        _ => bail!("snapshot.meta.{list} lists \"{name}\" more than once ({given:?})"),
    }
}

/// The names of the codes of the `type` field (the enumeration at the same position in `*_types`).
fn enum_names(fields: &[String], types: &[FieldType], what: &str) -> Result<Vec<String>> {
    let position = fields
        .iter()
        .position(|f| f == "type")
        .with_context(|| format!("snapshot.meta.{what}_fields has no \"type\" field"))?;
    match types.get(position) {
        Some(FieldType::Enum(names)) => Ok(names.clone()),
        Some(FieldType::Plain(other)) => bail!(
            "snapshot.meta.{what}_types[{position}] should list the {what} type names, found \"{other}\""
        ),
        None => bail!(
            "snapshot.meta.{what}_types has no entry for the \"type\" field (position {position})"
        ),
    }
}
