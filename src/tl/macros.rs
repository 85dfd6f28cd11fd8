//! Declarative generators for TL constructors, so the schema reads like the
//! schema.

/// A boxed TL constructor: a struct with public fields in schema order, its
/// id, and its serialization (id, then each field).
macro_rules! tl_constructor {
    (
        $(#[$meta:meta])*
        $name:ident = $id:literal { $( $(#[$fmeta:meta])* $field:ident : $ty:ty ),* $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl $crate::tl::Identifiable for $name {
            const CONSTRUCTOR_ID: u32 = $id;
        }

        impl $crate::tl::Serialize for $name {
            fn serialize(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&($id as u32).to_le_bytes());
                self.serialize_bare(out);
            }
        }

        impl<'a> $crate::tl::Deserialize<'a> for $name {
            fn deserialize(r: &mut $crate::tl::Reader<'a>) -> $crate::tl::Result<Self> {
                r.expect_id($id)?;
                Self::deserialize_bare(r)
            }
        }

        impl $name {
            /// Writes the fields without the constructor id (bare form).
            #[allow(unused_variables, clippy::ptr_arg)]
            pub fn serialize_bare(&self, out: &mut Vec<u8>) {
                $( $crate::tl::Serialize::serialize(&self.$field, out); )*
            }

            /// Reads the fields after the constructor id (bare form).
            #[allow(unused_variables)]
            pub fn deserialize_bare(r: &mut $crate::tl::Reader<'_>) -> $crate::tl::Result<Self> {
                Ok(Self {
                    $( $field: $crate::tl::Deserialize::deserialize(r)?, )*
                })
            }
        }

        #[cfg(test)]
        impl proptest::arbitrary::Arbitrary for $name {
            type Parameters = ();
            type Strategy = proptest::strategy::BoxedStrategy<Self>;
            #[allow(unused_imports)]
            fn arbitrary_with(_: ()) -> Self::Strategy {
                use proptest::strategy::Strategy;
                $crate::tl::macros::arb_fields!($name; $( $field : $ty ),*)
            }
        }
    };
}

/// Strategy for a constructor's fields. Tuples of strategies stop at 12, so
/// fields are drawn in one tuple per field group.
#[cfg(test)]
macro_rules! arb_fields {
    ($name:ident; ) => {
        proptest::strategy::Just($name {}).boxed()
    };
    ($name:ident; $( $field:ident : $ty:ty ),+) => {
        ( $( $crate::tl::arb::arb_one::<$ty>(), )+ )
            .prop_map(|( $( $field, )+ )| $name { $( $field, )+ })
            .boxed()
    };
}

#[cfg(test)]
pub(crate) use arb_fields;

/// A TL type with several constructors: an enum whose variants wrap the
/// constructor structs, dispatched on the id.
macro_rules! tl_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident($ty:path) ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant($ty), )+
        }

        impl $name {
            /// The constructor id of the value held.
            pub fn constructor_id(&self) -> u32 {
                match self {
                    $( Self::$variant(_) => <$ty as $crate::tl::Identifiable>::CONSTRUCTOR_ID, )+
                }
            }
        }

        impl $crate::tl::Serialize for $name {
            fn serialize(&self, out: &mut Vec<u8>) {
                match self {
                    $( Self::$variant(x) => $crate::tl::Serialize::serialize(x, out), )+
                }
            }
        }

        impl<'a> $crate::tl::Deserialize<'a> for $name {
            fn deserialize(r: &mut $crate::tl::Reader<'a>) -> $crate::tl::Result<Self> {
                let at = r.pos();
                let id = r.read_u32()?;
                $(
                    if id == <$ty as $crate::tl::Identifiable>::CONSTRUCTOR_ID {
                        return <$ty>::deserialize_bare(r).map(Self::$variant);
                    }
                )+
                Err($crate::tl::Error::UnexpectedConstructor { got: id, at })
            }
        }

        $(
            impl From<$ty> for $name {
                fn from(x: $ty) -> Self {
                    Self::$variant(x)
                }
            }
        )+

        #[cfg(test)]
        impl proptest::arbitrary::Arbitrary for $name {
            type Parameters = ();
            type Strategy = proptest::strategy::BoxedStrategy<Self>;
            fn arbitrary_with(_: ()) -> Self::Strategy {
                use proptest::strategy::Strategy;
                proptest::prop_oneof![
                    $( proptest::arbitrary::any::<$ty>().prop_map(Self::$variant), )+
                ].boxed()
            }
        }
    };
}
