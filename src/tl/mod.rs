//! The TL binary codec and the MTProto service schema.
