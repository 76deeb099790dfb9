//! The live side of khaos and its command line: the standalone API server (`khaos serve`), the
//! conformance runner against live servers, the server benchmark, and the reports of run
//! directories (`khaos report`).
//!
//! The binary (`src/main.rs`) only parses flags; everything it runs lives here.

pub mod bench;
pub mod live;
pub mod node;
pub mod report;
pub mod serve;
pub mod timebase;
