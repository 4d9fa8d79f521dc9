//! Multi-process and multi-host tests and the distribution benchmark of Snow.
//!
//! - [`child`]: child processes with line-by-line output, deadlines, and kill-on-drop.
//! - [`cluster`]: snow-epmd and Snow node processes for cluster tests.
//! - [`cluster_names`]: test-node commands for the global registry and process groups.
//! - [`tmp`]: private temp dirs, cookie files, free ports.
//! - [`figures`]: the benchmark's figures (`RESULT key value` lines).
//! - [`meter`]: what a workload cost the nodes: CPU time from `/proc`, bytes on the wire.
//! - [`table`]: the comparison tables and the summary of repeated runs.
//! - [`erlang`]: the Erlang/OTP baseline (two `erl` nodes, plain TCP or TLS distribution).
//! - [`snow_bench`]: the Snow half of the distribution benchmark (two Snow node processes).
//! - [`cluster_bench`]: the Snow half of the cluster benchmark (five nodes: global registry, groups).
//! - [`mesh_bench`]: the mesh-scale benchmark (N Snow or Erlang node processes).
//! - [`netns`]: network namespaces and veth links for multi-host tests (root only).
//! - [`testbed`]: the fault-injection testbed: hosts as namespaces behind a user-space switch
//!   that cuts, delays, drops and reorders frames.
//!
//! The binaries `snow-test-node` (a node driven over stdin/stdout), `snow-epmd-it` (the
//! snow-epmd command line) and `snow-testbed-switch` (the testbed's switch) are what the tests in
//! `tests/` start.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod child;
pub mod cluster;
pub mod cluster_bench;
pub mod cluster_names;
pub mod erlang;
pub mod figures;
pub mod mesh_bench;
pub mod meter;
pub mod netns;
pub mod snow_bench;
pub mod table;
pub mod testbed;
pub mod tmp;
