//! Micro-benchmarks of the crypto floor of a negotiation: DH keygen + derive per group,
//! and the PRF / CBC work on a typical phase-1 message.
//!
//! Quick run: `cargo bench -p ike --bench crypto -- --quick` (or `--warm-up-time 1
//! --measurement-time 2`).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ike::crypto::*;

fn dh(c: &mut Criterion) {
    for g in [
        Group::Modp1024,
        Group::Modp2048,
        Group::Modp3072,
        Group::Ecp256,
        Group::Ecp384,
    ] {
        let (peer, _) = dh_keygen(g).expect("peer keygen");
        let (_, mine) = dh_keygen(g).expect("keygen");
        c.bench_function(&format!("dh_derive/{}", g.name()), |b| {
            b.iter(|| black_box(dh_derive(g, &mine, &peer).expect("derive")))
        });
        c.bench_function(&format!("dh_keygen+derive/{}", g.name()), |b| {
            b.iter(|| {
                let (_, private) = dh_keygen(g).expect("keygen");
                black_box(dh_derive(g, &private, &peer).expect("derive"))
            })
        });
    }
}

fn symmetric(c: &mut Criterion) {
    // A Main Mode message 5: ID + HASH (+ a notify), about 100 bytes, padded to blocks.
    let msg = vec![0x5au8; 112];
    let key = vec![1u8; 32];
    let iv = vec![2u8; 16];
    let skeyid = vec![3u8; 32];
    let gxy = vec![4u8; 256];
    c.bench_function("prf/hash_i SHA2-256", |b| {
        b.iter(|| {
            black_box(hash_i(
                HashAlg::Sha256,
                &skeyid,
                &gxy,
                &gxy,
                &[5; 8],
                &[6; 8],
                &msg,
                &msg[..12],
            ))
        })
    });
    c.bench_function("phase1_keys SHA2-256 AES-256", |b| {
        b.iter(|| {
            black_box(phase1_keys(
                HashAlg::Sha256,
                HashAlg::Sha256,
                EncrAlg::AesCbc256,
                Secret::from_slice(&skeyid),
                &gxy,
                &[5; 8],
                &[6; 8],
                &gxy,
                &gxy,
            ))
        })
    });
    c.bench_function("encrypt AES-256-CBC 112 B", |b| {
        b.iter(|| black_box(encrypt(EncrAlg::AesCbc256, &key, &iv, &msg).expect("encrypt")))
    });
    c.bench_function("encrypt 3DES-CBC 112 B", |b| {
        b.iter(|| {
            black_box(encrypt(EncrAlg::TripleDesCbc, &key[..24], &iv[..8], &msg).expect("encrypt"))
        })
    });
}

criterion_group!(benches, dh, symmetric);
criterion_main!(benches);
