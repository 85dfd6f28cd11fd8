//! The seed documents' snippets (`adapters/shared/seed_snippets.rs`) on
//! this crate, under the documents' crate names.

extern crate mtsender_async_std as ferogram;
extern crate mtsender_async_std as ferogram_mtsender;

#[path = "../../shared/seed_snippets.rs"]
mod snippets;

use std::time::Duration;

#[test]
fn seed_snippets_run_against_a_fake_dc() {
    // One executor is enough here: the loopback tests run both.
    smol::block_on(futures_lite::future::or(
        snippets::run_all("async-std"),
        async {
            async_io::Timer::after(Duration::from_secs(60)).await;
            panic!("timed out");
        },
    ));
}
