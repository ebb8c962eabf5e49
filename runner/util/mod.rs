//! Small shared helpers that belong to no single concern.

pub mod duration;
pub mod random;
pub mod units;
