//! TL forms of the primitive types.

use super::reader::pad4;
use super::{Deserialize, Error, Reader, Result, Serialize};

/// Appends `data` as TL `bytes`: length prefix, data, zero padding.
///
/// # Panics
/// If `data` is 2^24 bytes or longer, which TL cannot express (a caller bug:
/// MTProto messages are far smaller).
pub fn write_bytes(out: &mut Vec<u8>, data: &[u8]) {
    let len = data.len();
    let header = if len < 254 {
        out.push(len as u8);
        1
    } else {
        assert!(len < 1 << 24, "TL bytes of {len} bytes cannot be encoded");
        out.push(254);
        out.extend_from_slice(&(len as u32).to_le_bytes()[..3]);
        4
    };
    out.extend_from_slice(data);
    out.resize(out.len() + pad4(header + len), 0);
}

/// Bytes taken by `len` bytes of data in TL `bytes` form.
pub fn bytes_len(len: usize) -> usize {
    let header = if len < 254 { 1 } else { 4 };
    header + len + pad4(header + len)
}

macro_rules! int_impl {
    ($ty:ty, $read:ident) => {
        impl Serialize for $ty {
            fn serialize(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
        impl<'a> Deserialize<'a> for $ty {
            fn deserialize(r: &mut Reader<'a>) -> Result<Self> {
                r.$read()
            }
        }
    };
}
int_impl!(i32, read_i32);
int_impl!(u32, read_u32);
int_impl!(i64, read_i64);
int_impl!(f64, read_f64);

impl<const N: usize> Serialize for [u8; N] {
    fn serialize(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

impl<'a, const N: usize> Deserialize<'a> for [u8; N] {
    fn deserialize(r: &mut Reader<'a>) -> Result<Self> {
        r.read_array()
    }
}

impl Serialize for bool {
    fn serialize(&self, out: &mut Vec<u8>) {
        let id = if *self {
            super::BOOL_TRUE_ID
        } else {
            super::BOOL_FALSE_ID
        };
        id.serialize(out);
    }
}

impl<'a> Deserialize<'a> for bool {
    fn deserialize(r: &mut Reader<'a>) -> Result<Self> {
        let at = r.pos();
        match r.read_u32()? {
            super::BOOL_TRUE_ID => Ok(true),
            super::BOOL_FALSE_ID => Ok(false),
            got => Err(Error::UnexpectedConstructor { got, at }),
        }
    }
}

/// `bytes`: the data without prefix or padding.
impl Serialize for [u8] {
    fn serialize(&self, out: &mut Vec<u8>) {
        write_bytes(out, self);
    }
}

impl Serialize for Vec<u8> {
    fn serialize(&self, out: &mut Vec<u8>) {
        write_bytes(out, self);
    }
}

impl<'a> Deserialize<'a> for Vec<u8> {
    fn deserialize(r: &mut Reader<'a>) -> Result<Self> {
        r.read_bytes().map(<[u8]>::to_vec)
    }
}

impl<'a> Deserialize<'a> for &'a [u8] {
    fn deserialize(r: &mut Reader<'a>) -> Result<Self> {
        r.read_bytes()
    }
}

/// `string`: UTF-8 text. Invalid UTF-8 from the peer is replaced, not refused
/// (Telegram's strings are texts for people and logs).
impl Serialize for String {
    fn serialize(&self, out: &mut Vec<u8>) {
        write_bytes(out, self.as_bytes());
    }
}

impl<'a> Deserialize<'a> for String {
    fn deserialize(r: &mut Reader<'a>) -> Result<Self> {
        r.read_bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

/// Boxed `Vector t`.
impl<T: Serialize> Serialize for Vec<T> {
    fn serialize(&self, out: &mut Vec<u8>) {
        super::VECTOR_ID.serialize(out);
        write_vector_body(out, self);
    }
}

impl<'a, T: Deserialize<'a>> Deserialize<'a> for Vec<T> {
    fn deserialize(r: &mut Reader<'a>) -> Result<Self> {
        read_vector_body(r, true)
    }
}

/// Appends the count and the elements of a vector (bare form).
pub(super) fn write_vector_body<T: Serialize>(out: &mut Vec<u8>, items: &[T]) {
    // A vector longer than i32::MAX cannot exist in a message of at most 2^24 bytes.
    (items.len() as i32).serialize(out);
    for item in items {
        item.serialize(out);
    }
}

/// Reads a vector, boxed or bare. Every TL value takes at least 4 bytes, so
/// the count is checked against the input before anything is allocated.
pub(super) fn read_vector_body<'a, T: Deserialize<'a>>(
    r: &mut Reader<'a>,
    boxed: bool,
) -> Result<Vec<T>> {
    let count = r.read_vector_len(boxed, 4)?;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        out.push(T::deserialize(r)?);
    }
    Ok(out)
}

/// A query argument (`!X`) or any other value kept as its raw TL bytes: it
/// writes them verbatim and reads everything left in the input. Only valid as
/// the last field of a constructor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawTail(pub Vec<u8>);

impl Serialize for RawTail {
    fn serialize(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
}

impl<'a> Deserialize<'a> for RawTail {
    fn deserialize(r: &mut Reader<'a>) -> Result<Self> {
        Ok(Self(r.read_rest().to_vec()))
    }
}
