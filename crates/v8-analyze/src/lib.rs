//! Reading what the lab captures: CPU profiles (`.cpuprofile`) and heap snapshots (`.heapsnapshot`).
//!
//! Both are read by this crate itself — the lab's checks judge them, and "do it for me" shows the
//! participant the answer — and both must stay fast on big files: heap snapshots are streamed into
//! flat arrays, never into a JSON tree.
//!
//! - [`cpuprofile`]: top functions by self and total time, the share of time in a function,
//!   folded stacks and a flame graph (SVG, via inferno).
//! - [`heapsnapshot`]: per-constructor counts, shallow and retained sizes (dominator tree), diff of
//!   two snapshots and the three-snapshot technique.
//! - [`report`]: the plain-text tables the terminal shows.

pub mod cpuprofile;
pub mod heapsnapshot;
pub mod report;
