//! PBKDF2 (RFC 8018) with HMAC-SHA-256 as the pseudo-random function.

use super::hmac::HmacSha256;
use super::sha256::DIGEST_LEN;

/// Fills `out` with PBKDF2-HMAC-SHA-256(password, salt, iterations). `iterations` of 0 is treated as 1.
pub fn pbkdf2_hmac_sha256(password: &[u8], salt: &[u8], iterations: u32, out: &mut [u8]) {
    let prf = HmacSha256::new(password);
    for (block_index, chunk) in out.chunks_mut(DIGEST_LEN).enumerate() {
        let mut mac = prf.clone();
        mac.update(salt);
        mac.update(&(block_index as u32 + 1).to_be_bytes());
        let mut u = mac.finalize();
        let mut t = u;
        for _ in 1..iterations {
            let mut mac = prf.clone();
            mac.update(&u);
            u = mac.finalize();
            for (acc, x) in t.iter_mut().zip(u) {
                *acc ^= x;
            }
        }
        chunk.copy_from_slice(&t[..chunk.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::hex;

    fn derive(p: &[u8], s: &[u8], c: u32, len: usize) -> String {
        let mut out = vec![0u8; len];
        pbkdf2_hmac_sha256(p, s, c, &mut out);
        hex(&out)
    }

    // RFC 7914 section 11 (the PBKDF2-HMAC-SHA-256 vector used by scrypt).
    #[test]
    fn rfc7914_vector() {
        assert_eq!(
            derive(b"passwd", b"salt", 1, 64),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc\
             49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"
        );
    }

    // RFC 6070's inputs with SHA-256 as the PRF: the widely published companion vectors
    // (also reproduced with Python's hashlib.pbkdf2_hmac).
    #[test]
    fn rfc6070_style_sha256_vectors() {
        assert_eq!(
            derive(b"password", b"salt", 1, 32),
            "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b"
        );
        assert_eq!(
            derive(b"password", b"salt", 2, 32),
            "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43"
        );
        assert_eq!(
            derive(b"password", b"salt", 4096, 32),
            "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"
        );
        assert_eq!(
            derive(b"passwordPASSWORDpassword", b"saltSALTsaltSALTsaltSALTsaltSALTsalt", 4096, 40),
            "348c89dbcbd32b2f32d814b8116e84cf2b17347ebc1800181c4e2a1fb8dd53e1c635518c7dac47e9"
        );
        assert_eq!(derive(b"pass\0word", b"sa\0lt", 4096, 16), "89b69d0516f829893c696226650a8687");
    }
}
