//! The lab format: model, loading with precise errors, template rendering and lint.

pub mod app_source;
pub mod bash;
pub mod builtins;
pub mod commands;
pub mod diagnostic;
pub mod export;
pub mod fenced;
pub mod guide;
pub mod lint;
pub mod load;
pub mod model;
pub mod mutants;
pub mod render;
pub mod schema;
pub mod templated;
pub mod yaml;

pub use builtins::Builtin;
pub use diagnostic::Diagnostic;
pub use load::{Lab, Part, load};
pub use model::*;
pub use render::{Renderer, Vars};
pub use templated::Templated;
