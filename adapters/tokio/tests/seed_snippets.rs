//! The seed documents' snippets (`adapters/shared/seed_snippets.rs`) on
//! this crate, under the documents' crate names.

extern crate mtsender_tokio as ferogram;
extern crate mtsender_tokio as ferogram_mtsender;

#[path = "../../shared/seed_snippets.rs"]
mod snippets;

use std::time::Duration;

#[tokio::test]
async fn seed_snippets_run_against_a_fake_dc() {
    tokio::time::timeout(Duration::from_secs(60), snippets::run_all("tokio"))
        .await
        .expect("timed out");
}
