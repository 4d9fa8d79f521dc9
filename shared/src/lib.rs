//! Sans-IO core of Snow distribution.
//!
//! Everything both the discovery daemon (`snow-epmd`) and the node runtime (`snow-node-rt`) speak
//! lives here, with no sockets, threads or clock reads: the value model ([`Term`]), node names and
//! identifiers, the wire codec and framing, and the protocol state machines. Drivers feed bytes and
//! time in and take bytes, events and deadlines out.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod atom;
pub mod binary;
pub mod cluster;
pub mod codec;
pub mod convert;
pub mod cookie;
pub mod dist;
pub mod epmd;
pub mod fragment;
pub mod frame;
pub mod log_limit;
pub mod name;
pub mod pid;
pub mod term;
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;

pub use atom::Atom;
pub use binary::Binary;
pub use convert::ConversionError;
pub use name::{NameError, NodeName};
pub use pid::{Pid, Ref};
pub use term::{MapBuilder, Struct, Sum, Term};
