//! MTProto 2.0 cryptography on the RustCrypto crates.

mod ctr;

pub use ctr::AesCtr;
