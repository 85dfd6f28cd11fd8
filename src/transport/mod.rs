//! MTProto transports: framing of packets over a byte stream.
