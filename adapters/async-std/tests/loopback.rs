//! The client against fake DCs served over loopback TCP, each scenario run
//! under async-std's executor and then smol's. The scenarios are shared
//! with the tokio adapter's tests.

use std::future::Future;
use std::time::Duration;

use mtsender_async_std as adapter;

async fn sleep(d: Duration) {
    async_io::Timer::after(d).await;
}

#[path = "../../shared/scenarios.rs"]
mod scenarios;

async fn bounded(f: impl Future<Output = ()>) {
    futures_lite::future::or(f, async {
        async_io::Timer::after(Duration::from_secs(60)).await;
        panic!("timed out");
    })
    .await;
}

fn on_both<F: Future<Output = ()>>(scenario: impl Fn() -> F) {
    async_std::task::block_on(bounded(scenario()));
    smol::block_on(bounded(scenario()));
}

macro_rules! scenario {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            on_both(scenarios::$name);
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
