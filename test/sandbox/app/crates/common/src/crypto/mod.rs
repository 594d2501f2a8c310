//! Std-only cryptographic primitives needed by the PostgreSQL client:
//! SHA-256, HMAC-SHA-256, PBKDF2-HMAC-SHA-256 (SCRAM-SHA-256), MD5 (md5 auth), base64.
//!
//! These are straightforward reference implementations checked against published test
//! vectors; they are not hardened against side channels beyond a constant-time compare.

pub mod base64;
pub mod hmac;
pub mod md5;
pub mod pbkdf2;
pub mod sha256;

pub use hmac::{HmacSha256, hmac_sha256};
pub use md5::md5;
pub use pbkdf2::pbkdf2_hmac_sha256;
pub use sha256::{Sha256, sha256};

/// Lower-case hexadecimal rendering of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_renders_lowercase() {
        assert_eq!(hex(&[0x00, 0x0f, 0xab, 0xff]), "000fabff");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn ct_eq_compares_content_and_length() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(ct_eq(b"", b""));
    }
}
