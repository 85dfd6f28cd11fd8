//! The client against fake DCs served over loopback TCP, on tokio. The
//! scenarios are shared with the async-std adapter's tests.

use std::time::Duration;

use mtsender_tokio as adapter;

async fn sleep(d: Duration) {
    tokio::time::sleep(d).await;
}

#[path = "../../shared/scenarios.rs"]
mod scenarios;

macro_rules! scenario {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            tokio::time::timeout(Duration::from_secs(60), scenarios::$name())
                .await
                .expect("timed out");
        }
    )*};
}

scenario!(
    handshake_on_every_transport,
    thousand_concurrent_echoes,
    drop_mid_flight_loses_nothing_and_runs_nothing_twice,
    flood_wait_is_slept,
    migration_across_two_dcs,
    never_restart_fires_shutdown,
    graceful_refresh_loses_nothing,
    session_file_is_reused_and_a_corrupt_one_refused,
    updates_and_pings_arrive,
    pfs_runs_on_a_bound_temporary_key,
    slow_update_readers_are_told_what_they_missed,
);
