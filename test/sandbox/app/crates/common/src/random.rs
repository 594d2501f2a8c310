//! Random bytes for nonces, from the kernel.

use std::collections::hash_map::RandomState;
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::Read;
use std::time::{SystemTime, UNIX_EPOCH};

/// Fills `buf` from /dev/urandom; if that is unavailable (a very bare container), falls back to
/// std's `RandomState`, whose SipHash keys come from the OS random source (getrandom).
pub fn fill(buf: &mut [u8]) {
    if let Ok(mut f) = File::open("/dev/urandom")
        && f.read_exact(buf).is_ok()
    {
        return;
    }
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    for (i, chunk) in buf.chunks_mut(8).enumerate() {
        let mut h = RandomState::new().build_hasher();
        h.write_usize(i);
        h.write_u128(nanos);
        chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn produces_different_values() {
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        super::fill(&mut a);
        super::fill(&mut b);
        assert_ne!(a, b);
    }
}
