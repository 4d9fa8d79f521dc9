//! Encode and decode helpers: C code builds an encoded term value by value ([`snow_encoder`]) and
//! reads one item by item ([`snow_decoder`]), in the manner of erl_interface's `ei_x_encode_*` /
//! `ei_decode_*`. The bytes are PROTOCOL.md section 1's; the codec of `snow_shared` makes and
//! checks them, so what C builds is exactly what a Rust node sends.

mod decoder;
mod encoder;

pub(crate) use decoder::decode;
pub use decoder::*;
pub use encoder::*;
