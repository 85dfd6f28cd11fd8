//! The encrypted session over one auth key: message ids, sequence numbers,
//! acks, containers, salts, service messages and the inbound checks.

pub mod ids;
