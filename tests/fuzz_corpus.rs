//! Replays every committed fuzz input — the seed corpora in
//! `fuzz/corpus/<target>/` and the crash reproducers in
//! `fuzz/regressions/<target>/` — through the fuzz targets' own entry
//! points, so they run on stable with `cargo test`.

mod fuzz_entry;

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        files.extend(
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file()),
        );
    }
    files.sort();
    files
}

fn replay(target: &str) {
    let (_, entry) = fuzz_entry::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a known target");
    let files = inputs(target);
    for path in &files {
        let data = std::fs::read(path).expect("readable input");
        if std::panic::catch_unwind(|| entry(&data)).is_err() {
            panic!("{} fails", path.display());
        }
    }
}

#[test]
fn every_target_has_a_corpus() {
    for (name, _) in fuzz_entry::TARGETS {
        assert!(!inputs(name).is_empty(), "no inputs for {name}");
    }
}

#[test]
fn transport_client() {
    replay("transport_client");
}

#[test]
fn transport_server() {
    replay("transport_server");
}

#[test]
fn tl_objects() {
    replay("tl_objects");
}

#[test]
fn tl_messages() {
    replay("tl_messages");
}

#[test]
fn encrypted() {
    replay("encrypted");
}

#[test]
fn handshake() {
    replay("handshake");
}

#[test]
fn sender() {
    replay("sender");
}

#[test]
fn fakedc() {
    replay("fakedc");
}

/// Runs the generated seed inputs of every target through it (each must
/// pass), and with `MTSENDER_FUZZ_SEEDS=DIR` also writes them there, one
/// directory per target, for `cargo fuzz cmin` to minimise into
/// `fuzz/corpus/`.
#[test]
fn generated_seeds_pass_their_targets() {
    let root = std::env::var_os("MTSENDER_FUZZ_SEEDS").map(PathBuf::from);
    for (target, seeds) in fuzz_entry::seeds::all() {
        assert!(!seeds.is_empty(), "no seeds for {target}");
        let (_, entry) = fuzz_entry::TARGETS
            .iter()
            .find(|(name, _)| *name == target)
            .expect("a known target");
        for (i, seed) in seeds.iter().enumerate() {
            entry(seed);
            if let Some(root) = &root {
                let dir = root.join(target);
                std::fs::create_dir_all(&dir).expect("a seeds directory");
                std::fs::write(dir.join(format!("seed-{i:03}")), seed).expect("written");
            }
        }
    }
}
