//! Injected randomness: cookies, nonces, message IDs and rekey fuzz come from here so that
//! tests can replay a run exactly.

/// A source of random bytes.
pub trait Rng: Send {
    fn fill(&mut self, buf: &mut [u8]);

    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill(&mut b);
        u32::from_be_bytes(b)
    }
}

/// OpenSSL's CSPRNG, for the daemon.
#[derive(Debug, Default)]
pub struct OsRng;

impl Rng for OsRng {
    fn fill(&mut self, buf: &mut [u8]) {
        // RAND_bytes only fails when the kernel has no entropy to seed from; the nonce and
        // cookie would then be predictable, so refusing to go on is the safe answer.
        if openssl::rand::rand_bytes(buf).is_err() {
            std::process::abort();
        }
    }
}

/// A deterministic generator (splitmix64) for tests and benchmarks. Not for production.
#[derive(Debug, Clone)]
pub struct SeededRng(u64);

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl Rng for SeededRng {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}
