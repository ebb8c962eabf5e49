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
//!
//! Where the time went in a CPU profile (`node --cpu-prof`, the inspector's `Profiler.stop`):
//!
//! ```
//! use v8_analyze::cpuprofile::CpuProfile;
//!
//! // (root) -> blockEventLoop, sampled three times, a millisecond apart.
//! let profile = CpuProfile::from_slice(br#"{
//!   "nodes": [
//!     {"id": 1, "callFrame": {"functionName": "(root)", "scriptId": "0", "url": "",
//!      "lineNumber": -1, "columnNumber": -1}, "hitCount": 0, "children": [2]},
//!     {"id": 2, "callFrame": {"functionName": "blockEventLoop", "scriptId": "1",
//!      "url": "file:///app/src/jam.js", "lineNumber": 22, "columnNumber": 30}, "hitCount": 3}
//!   ],
//!   "startTime": 0, "endTime": 3000, "samples": [2, 2, 2], "timeDeltas": [0, 1000, 1000]
//! }"#)?;
//! let busiest = &profile.top_functions(1)[0];
//! assert_eq!(busiest.function, "blockEventLoop");
//! assert_eq!((busiest.line, busiest.column), (23, 31)); // 1-based, as editors count
//! assert_eq!(busiest.self_time.as_millis(), 3);
//! # anyhow::Ok(())
//! ```
//!
//! What keeps memory alive in a heap snapshot (`.heapsnapshot`), with retained sizes as Chrome
//! DevTools' Memory panel shows them:
//!
//! ```
//! use v8_analyze::heapsnapshot::HeapSnapshot;
//!
//! // (root) --leak--> a Holder object (24 bytes) --data--> a native store of 1000 bytes.
//! let snapshot = HeapSnapshot::from_slice(br#"{"snapshot": {"meta": {
//!     "node_fields": ["type", "name", "id", "self_size", "edge_count", "trace_node_id",
//!                     "detachedness"],
//!     "node_types": [["hidden", "array", "string", "object", "code", "closure", "regexp",
//!                     "number", "native", "synthetic"],
//!                    "string", "number", "number", "number", "number", "number"],
//!     "edge_fields": ["type", "name_or_index", "to_node"],
//!     "edge_types": [["context", "element", "property", "internal", "hidden", "shortcut",
//!                     "weak"], "string_or_number", "node"]},
//!   "node_count": 3, "edge_count": 2},
//!  "nodes": [9, 1, 1, 0, 1, 0, 0,    3, 2, 3, 24, 1, 0, 0,    8, 3, 5, 1000, 0, 0, 0],
//!  "edges": [2, 4, 7,    2, 5, 14],
//!  "strings": ["", "(root)", "Holder", "system / Store", "leak", "data"]}"#)?;
//! let holder = snapshot.summary().constructor("Holder").cloned().unwrap();
//! assert_eq!((holder.count, holder.shallow_size), (1, 24));
//! assert_eq!(holder.retained_size, 1024); // itself and what only it holds
//! # anyhow::Ok(())
//! ```

pub mod cpuprofile;
pub mod heapsnapshot;
pub mod report;
