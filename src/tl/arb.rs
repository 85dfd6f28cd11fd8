//! Test strategies for TL field types.

/// Field strategy: TL `bytes` get lengths that cross the 254-byte form.
pub(crate) fn arb_one<T: ArbField>() -> proptest::strategy::BoxedStrategy<T> {
    T::arb()
}

pub(crate) trait ArbField: Sized + std::fmt::Debug {
    fn arb() -> proptest::strategy::BoxedStrategy<Self>;
}

mod arb_impls {
    use super::ArbField;
    use proptest::prelude::*;

    macro_rules! via_any {
        ($($t:ty),*) => {$(
            impl ArbField for $t {
                fn arb() -> BoxedStrategy<Self> { any::<$t>().boxed() }
            }
        )*};
    }
    via_any!(i32, i64, f64, bool, [u8; 16], [u8; 32], String);

    impl ArbField for Vec<u8> {
        fn arb() -> BoxedStrategy<Self> {
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..260),
                proptest::collection::vec(any::<u8>(), 250..1100),
            ]
            .boxed()
        }
    }
    impl ArbField for Vec<i64> {
        fn arb() -> BoxedStrategy<Self> {
            proptest::collection::vec(any::<i64>(), 0..40).boxed()
        }
    }
    impl ArbField for crate::tl::RawTail {
        fn arb() -> BoxedStrategy<Self> {
            proptest::collection::vec(any::<u8>(), 0..64)
                .prop_map(|mut v| {
                    v.truncate(v.len() / 4 * 4);
                    crate::tl::RawTail(v)
                })
                .boxed()
        }
    }
    impl ArbField for Vec<crate::tl::types::FutureSalt> {
        fn arb() -> BoxedStrategy<Self> {
            proptest::collection::vec(any::<crate::tl::types::FutureSalt>(), 0..8).boxed()
        }
    }
}
