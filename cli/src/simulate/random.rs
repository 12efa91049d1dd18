//! The simulation's randomness: ChaCha8 streams seeded from `--seed`, so the output is the same
//! on every platform. Only integer arithmetic and IEEE doubles built from integer bits are used
//! (no platform `libm` call decides a branch), keeping runs byte-identical across machines.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const UPPER_NUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const HEX: &[u8] = b"0123456789abcdef";

/// One independent stream of random numbers.
#[derive(Debug, Clone)]
pub struct Rand(ChaCha8Rng);

impl Rand {
    /// Stream `stream` of the seed: routine activity, injections and rendering each get their
    /// own, so adding an injection does not reshuffle the routine history.
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        r.set_stream(stream);
        Rand(r)
    }

    pub fn u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in [0, 1).
    pub fn f(&mut self) -> f64 {
        (self.u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.f() < p
    }

    /// Uniform integer in [lo, hi) (lo when the range is empty).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        let span = hi - lo;
        lo + ((u128::from(self.u64()) * u128::from(span)) >> 64) as u64
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.range(0, n as u64) as usize
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f()
    }

    /// Approximately normal (sum of 12 uniforms), exact enough for jitter and portable.
    pub fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        let s: f64 = (0..12).map(|_| self.f()).sum();
        mean + sd * (s - 6.0)
    }

    /// Poisson-distributed count (Knuth for small means, normal approximation above 30).
    pub fn poisson(&mut self, mean: f64) -> usize {
        if mean <= 0.0 {
            return 0;
        }
        if mean > 30.0 {
            return self.normal(mean, mean.sqrt()).round().max(0.0) as usize;
        }
        let limit = 1.0 / exp(mean);
        let mut k = 0;
        let mut p = self.f();
        while p > limit {
            k += 1;
            p *= self.f();
        }
        k
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Index into `weights`, chosen in proportion to them.
    pub fn weighted_index(&mut self, weights: impl IntoIterator<Item = f64> + Clone) -> usize {
        let total: f64 = weights.clone().into_iter().sum();
        let mut x = self.f() * total;
        let mut last = 0;
        for (i, w) in weights.into_iter().enumerate() {
            if w <= 0.0 {
                continue;
            }
            last = i;
            if x < w {
                return i;
            }
            x -= w;
        }
        last
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }

    fn chars(&mut self, n: usize, alphabet: &[u8]) -> String {
        (0..n)
            .map(|_| alphabet[self.below(alphabet.len())] as char)
            .collect()
    }

    pub fn alnum(&mut self, n: usize) -> String {
        self.chars(n, ALNUM)
    }

    pub fn upper_num(&mut self, n: usize) -> String {
        self.chars(n, UPPER_NUM)
    }

    pub fn hex(&mut self, n: usize) -> String {
        self.chars(n, HEX)
    }

    pub fn digits(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n);
        s.push((b'1' + self.below(9) as u8) as char);
        s.push_str(&self.chars(n - 1, b"0123456789"));
        s
    }

    /// A random (version 4) UUID.
    pub fn guid(&mut self) -> String {
        let a = self.u64();
        let b = self.u64();
        format_uuid(
            (a & 0xffff_ffff_ffff_0fff) | 0x4000,
            (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000,
        )
    }
}

/// e^x from basic IEEE operations only (libm's `exp` may differ in the last bit between
/// platforms, and a threshold drawn from it could then flip a branch).
pub fn exp(x: f64) -> f64 {
    let mut k = 0;
    let mut y = x;
    while y.abs() > 0.125 {
        y /= 2.0;
        k += 1;
    }
    let mut term = 1.0;
    let mut sum = 1.0;
    for n in 1..16 {
        term *= y / n as f64;
        sum += term;
    }
    for _ in 0..k {
        sum *= sum;
    }
    sum
}

/// Formats 128 bits (high, low) as a UUID string.
pub fn format_uuid(hi: u64, lo: u64) -> String {
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_deterministic_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| Rand::new(7, 1).u64()).collect();
        let mut r = Rand::new(7, 1);
        assert_eq!(a[0], r.u64());
        assert_ne!(Rand::new(7, 1).u64(), Rand::new(7, 2).u64());
        assert_ne!(Rand::new(7, 1).u64(), Rand::new(8, 1).u64());
    }

    #[test]
    fn exp_matches_libm() {
        for x in [0.1, 1.0, 2.5, 10.0, -3.0] {
            assert!((exp(x) / x.exp() - 1.0).abs() < 1e-12, "{x}");
        }
    }

    #[test]
    fn guid_is_version_4() {
        let g = Rand::new(1, 0).guid();
        assert_eq!(g.len(), 36);
        assert_eq!(&g[14..15], "4");
    }
}
