//! Client side of SCRAM-SHA-256 (RFC 5802 / RFC 7677) without channel binding, as used by
//! PostgreSQL's `scram-sha-256` authentication.
//!
//! The password is used as-is (SASLprep is the identity for ASCII passwords).

use std::fmt;

use crate::crypto::{base64, ct_eq, hmac_sha256, pbkdf2_hmac_sha256, sha256};

/// Upper bound on the iteration count a server may demand (PostgreSQL uses 4096).
const MAX_ITERATIONS: u32 = 10_000_000;

/// A SCRAM failure; never contains the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramError(pub String);

impl fmt::Display for ScramError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScramError {}

fn err(msg: impl Into<String>) -> ScramError {
    ScramError(msg.into())
}

/// One SCRAM-SHA-256 exchange: client-first, then client-final, then verify server-final.
#[derive(Debug)]
pub struct ScramClient {
    client_nonce: String,
    client_first_bare: String,
    server_signature: Option<[u8; 32]>,
}

impl ScramClient {
    /// `username` may be empty (PostgreSQL ignores it and uses the startup user).
    /// `client_nonce` must be printable ASCII without commas.
    pub fn new(username: &str, client_nonce: &str) -> Self {
        let user = username.replace('=', "=3D").replace(',', "=2C");
        ScramClient {
            client_nonce: client_nonce.to_string(),
            client_first_bare: format!("n={user},r={client_nonce}"),
            server_signature: None,
        }
    }

    /// Creates a client with a fresh random nonce.
    pub fn with_random_nonce(username: &str) -> Self {
        let mut raw = [0u8; 18];
        crate::random::fill(&mut raw);
        Self::new(username, &base64::encode(&raw))
    }

    /// The client-first-message, GS2 header included (no channel binding).
    pub fn client_first_message(&self) -> String {
        format!("n,,{}", self.client_first_bare)
    }

    /// Processes the server-first-message and returns the client-final-message.
    pub fn client_final_message(
        &mut self,
        password: &str,
        server_first: &str,
    ) -> Result<String, ScramError> {
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for attr in server_first.split(',') {
            match attr.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = Some(v),
                Some(("i", v)) => iterations = Some(v),
                Some(("e", v)) => return Err(err(format!("server error: {v}"))),
                Some(("m", _)) => return Err(err("server requires an unsupported extension")),
                _ => {}
            }
        }
        let nonce = nonce.ok_or_else(|| err("server-first-message lacks a nonce"))?;
        if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len() {
            return Err(err("server nonce does not extend the client nonce"));
        }
        let salt = salt
            .and_then(base64::decode)
            .ok_or_else(|| err("server-first-message has a missing or invalid salt"))?;
        let iterations: u32 = iterations
            .and_then(|i| i.parse().ok())
            .filter(|i| (1..=MAX_ITERATIONS).contains(i))
            .ok_or_else(|| err("server-first-message has a missing or invalid iteration count"))?;

        let mut salted = [0u8; 32];
        pbkdf2_hmac_sha256(password.as_bytes(), &salt, iterations, &mut salted);
        let client_key = hmac_sha256(&salted, b"Client Key");
        let stored_key = sha256(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let client_signature = hmac_sha256(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(client_signature).map(|(k, s)| k ^ s).collect();
        let server_key = hmac_sha256(&salted, b"Server Key");
        self.server_signature = Some(hmac_sha256(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", base64::encode(&proof)))
    }

    /// Verifies the server-final-message (proves the server knows the password too).
    pub fn verify_server_final(&self, server_final: &str) -> Result<(), ScramError> {
        let expected = self
            .server_signature
            .ok_or_else(|| err("server-final-message before client-final-message"))?;
        for attr in server_final.split(',') {
            if let Some(e) = attr.strip_prefix("e=") {
                return Err(err(format!("server rejected authentication: {e}")));
            }
            if let Some(v) = attr.strip_prefix("v=") {
                let got =
                    base64::decode(v).ok_or_else(|| err("invalid server signature encoding"))?;
                return if ct_eq(&got, &expected) {
                    Ok(())
                } else {
                    Err(err("server signature mismatch (server does not know the password)"))
                };
            }
        }
        Err(err("server-final-message lacks a verifier"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7677 section 3: user "user", password "pencil".
    const NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    const SERVER_FIRST: &str = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    #[test]
    fn rfc7677_example_exchange() {
        let mut c = ScramClient::new("user", NONCE);
        assert_eq!(c.client_first_message(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        assert_eq!(c.client_final_message("pencil", SERVER_FIRST).unwrap(), CLIENT_FINAL);
        assert_eq!(c.verify_server_final(SERVER_FINAL), Ok(()));
    }

    #[test]
    fn rejects_forged_server_signature() {
        let mut c = ScramClient::new("user", NONCE);
        c.client_final_message("pencil", SERVER_FIRST).unwrap();
        let forged = "v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
        assert!(c.verify_server_final(forged).is_err());
        // A wrong password yields a different expected signature, so the real one fails too.
        let mut wrong = ScramClient::new("user", NONCE);
        wrong.client_final_message("pencil2", SERVER_FIRST).unwrap();
        assert!(wrong.verify_server_final(SERVER_FINAL).is_err());
    }

    #[test]
    fn rejects_bad_server_first() {
        let mut c = ScramClient::new("user", NONCE);
        let cases = [
            "r=someoneElsesNonce,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "r=rOprNGfwEbeRWgbNEkqOxyz,s=***,i=4096",
            "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0",
            "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==",
            "e=other-error",
            "m=ext,r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        ];
        for case in cases {
            assert!(c.client_final_message("pencil", case).is_err(), "{case}");
        }
    }

    #[test]
    fn server_final_errors_and_ordering() {
        let c = ScramClient::new("user", NONCE);
        assert!(c.verify_server_final(SERVER_FINAL).is_err(), "final before client-final");
        let mut c = ScramClient::new("user", NONCE);
        c.client_final_message("pencil", SERVER_FIRST).unwrap();
        assert!(c.verify_server_final("e=invalid-proof").is_err());
        assert!(c.verify_server_final("x=1").is_err());
    }

    #[test]
    fn escapes_username_and_makes_random_nonces() {
        assert_eq!(ScramClient::new("a=b,c", "n").client_first_message(), "n,,n=a=3Db=2Cc,r=n");
        let a = ScramClient::with_random_nonce("");
        let b = ScramClient::with_random_nonce("");
        assert_ne!(a.client_nonce, b.client_nonce);
        assert_eq!(a.client_nonce.len(), 24);
        assert!(!a.client_nonce.contains(','));
    }
}
