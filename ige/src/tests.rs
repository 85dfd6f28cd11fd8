use super::*;
use proptest::prelude::*;

/// Straight from the definition, with the `aes` crate called per block.
fn reference(buf: &mut [u8], key: &[u8; 32], iv: &[u8; 32], encrypt: bool) {
    use aes::cipher::{generic_array::GenericArray, BlockDecrypt, BlockEncrypt, KeyInit};
    let aes = aes::Aes256::new(key.into());
    let mut c_prev: [u8; 16] = iv[..16].try_into().unwrap();
    let mut p_prev: [u8; 16] = iv[16..].try_into().unwrap();
    for chunk in buf.chunks_exact_mut(16) {
        let input: [u8; 16] = (*chunk).try_into().unwrap();
        let chain = if encrypt { c_prev } else { p_prev };
        let mut x = GenericArray::from(core::array::from_fn::<u8, 16, _>(|i| input[i] ^ chain[i]));
        if encrypt {
            aes.encrypt_block(&mut x);
        } else {
            aes.decrypt_block(&mut x);
        }
        let other = if encrypt { p_prev } else { c_prev };
        let out: [u8; 16] = core::array::from_fn(|i| x[i] ^ other[i]);
        chunk.copy_from_slice(&out);
        if encrypt {
            (c_prev, p_prev) = (out, input);
        } else {
            (c_prev, p_prev) = (input, out);
        }
    }
}

fn jobs_strategy() -> impl Strategy<Value = Vec<(Vec<u8>, [u8; 32], [u8; 32])>> {
    prop::collection::vec(
        (
            (0usize..40).prop_flat_map(|blocks| prop::collection::vec(any::<u8>(), blocks * 16)),
            any::<[u8; 32]>(),
            any::<[u8; 32]>(),
        ),
        0..20,
    )
}

fn run_all(data: &[(Vec<u8>, [u8; 32], [u8; 32])], encrypt_: bool) -> Vec<Vec<u8>> {
    let mut bufs: Vec<Vec<u8>> = data.iter().map(|(b, _, _)| b.clone()).collect();
    let jobs = bufs
        .iter_mut()
        .zip(data)
        .map(|(b, (_, k, iv))| Job::new(b, k, iv).unwrap());
    if encrypt_ {
        encrypt(jobs);
    } else {
        decrypt(jobs);
    }
    bufs
}

/// Both directions of every job, run together, against the reference.
fn check_against_reference(data: &[(Vec<u8>, [u8; 32], [u8; 32])]) {
    for dir in [true, false] {
        let got = run_all(data, dir);
        for ((b, k, iv), g) in data.iter().zip(&got) {
            let mut want = b.clone();
            reference(&mut want, k, iv, dir);
            assert_eq!(&want, g);
        }
    }
}

proptest! {
    #[test]
    fn many_jobs_match_the_reference(data in jobs_strategy()) {
        check_against_reference(&data);
    }

    #[test]
    fn decrypt_inverts_encrypt(data in jobs_strategy()) {
        let sealed = run_all(&data, true);
        let back: Vec<_> = data
            .iter()
            .zip(sealed)
            .map(|((_, k, iv), s)| (s, *k, *iv))
            .collect();
        let opened = run_all(&back, false);
        for ((b, _, _), o) in data.iter().zip(opened) {
            prop_assert_eq!(b, &o);
        }
    }
}

#[test]
fn one_job_and_the_portable_path_match_the_reference() {
    let key = [0x5a; 32];
    let iv: [u8; 32] = core::array::from_fn(|i| i as u8);
    for dir in [true, false] {
        let mut a: Vec<u8> = (0..4096).map(|i| (i * 7) as u8).collect();
        let mut want = a.clone();
        reference(&mut want, &key, &iv, dir);
        let mut b = a.clone();
        if dir {
            encrypt([Job::new(&mut a, &key, &iv).unwrap()]);
        } else {
            decrypt([Job::new(&mut a, &key, &iv).unwrap()]);
        }
        portable::run(Job::new(&mut b, &key, &iv).unwrap(), dir);
        assert_eq!(a, want);
        assert_eq!(b, want);
    }
}

#[test]
fn more_jobs_than_lanes_of_mixed_lengths_and_empty_ones() {
    // Lanes finish at different times and take new jobs; empty jobs are
    // skipped.
    let data: Vec<(Vec<u8>, [u8; 32], [u8; 32])> = (0..3 * LANES + 1)
        .map(|i| {
            let blocks = [0, 1, 2, 63, 5, 300, 0, 17][i % 8] + i % 3;
            (
                (0..blocks * 16).map(|j| (i * 31 + j) as u8).collect(),
                [i as u8; 32],
                [(i * 3) as u8; 32],
            )
        })
        .collect();
    check_against_reference(&data);
}

#[test]
fn unaligned_buffers_are_refused() {
    for len in [1usize, 15, 17, 31, 33] {
        let mut buf = vec![0u8; len];
        assert_eq!(
            Job::new(&mut buf, &[0; 32], &[0; 32]).err(),
            Some(NotBlockAligned)
        );
    }
}
