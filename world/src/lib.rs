//! The HA world of khaos: candidates running the fenced elector and the reference job master
//! against the simulated API server under faults drawn from a seed, one history format shared
//! by simulated and live runs, and the checkers that judge a history.

pub mod blobhost;
pub mod case;
pub mod checkers;
pub mod corpus;
pub mod history;
pub mod report;
pub mod runner;
pub mod scenarios;
pub mod schedule;
pub mod shrink;
pub mod world;
