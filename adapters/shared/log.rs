// Logging through `tracing` when the feature is on; nothing otherwise (the
// arguments are still type-checked, so both builds see the same code).

macro_rules! debug {
    ($($arg:tt)*) => {{
        #[cfg(feature = "tracing")]
        tracing::debug!($($arg)*);
        #[cfg(not(feature = "tracing"))]
        if false {
            let _ = format_args!($($arg)*);
        }
    }};
}

macro_rules! warn {
    ($($arg:tt)*) => {{
        #[cfg(feature = "tracing")]
        tracing::warn!($($arg)*);
        #[cfg(not(feature = "tracing"))]
        if false {
            let _ = format_args!($($arg)*);
        }
    }};
}
