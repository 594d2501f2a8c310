//! The authentication exchange after StartupMessage.

use common::crypto::{hex, md5};
use common::scram::ScramClient;

use super::wire::{self, Cursor};
use super::{Client, PgConfig, PgError, ServerError};

const SCRAM: &str = "SCRAM-SHA-256";

/// The md5 method's response: "md5" + md5hex(md5hex(password + user) + salt).
pub fn md5_password(user: &str, password: &str, salt: &[u8]) -> String {
    let inner = hex(&md5(format!("{password}{user}").as_bytes()));
    let mut outer = inner.into_bytes();
    outer.extend_from_slice(salt);
    format!("md5{}", hex(&md5(&outer)))
}

/// Runs the exchange until AuthenticationOk.
pub(super) fn authenticate(client: &mut Client, cfg: &PgConfig) -> Result<(), PgError> {
    let mut scram: Option<ScramClient> = None;
    let mut scram_verified = false;
    loop {
        let msg = client.read()?;
        match msg.tag {
            b'R' => {}
            b'E' => return Err(PgError::Server(Box::new(ServerError::from_fields(&msg.body)))),
            b'N' => continue,
            t => {
                return Err(PgError::Protocol(format!(
                    "unexpected message {:?} during auth",
                    t as char
                )));
            }
        }
        let mut cur = Cursor::new(&msg.body);
        match cur.i32()? {
            0 => {
                if scram.is_some() && !scram_verified {
                    return Err(PgError::Auth("server skipped the SCRAM final message".into()));
                }
                return Ok(());
            }
            3 => client.send(&wire::password(&cfg.password))?,
            5 => {
                let salt = cur.bytes(4)?;
                client.send(&wire::password(&md5_password(&cfg.user, &cfg.password, salt)))?;
            }
            10 => {
                let mut mechanisms = Vec::new();
                while let Ok(m) = cur.cstr() {
                    if m.is_empty() {
                        break;
                    }
                    mechanisms.push(m);
                }
                if !mechanisms.iter().any(|m| m == SCRAM) {
                    return Err(PgError::Auth(format!(
                        "no supported SASL mechanism in {mechanisms:?}"
                    )));
                }
                // PostgreSQL ignores the SCRAM user name and uses the startup user.
                let s = ScramClient::with_random_nonce("");
                client.send(&wire::sasl_initial_response(
                    SCRAM,
                    s.client_first_message().as_bytes(),
                ))?;
                scram = Some(s);
            }
            11 => {
                let s = scram
                    .as_mut()
                    .ok_or_else(|| PgError::Protocol("SASLContinue before SASL".into()))?;
                let server_first = String::from_utf8_lossy(cur.rest()).into_owned();
                let reply = s
                    .client_final_message(&cfg.password, &server_first)
                    .map_err(|e| PgError::Auth(e.to_string()))?;
                client.send(&wire::sasl_response(reply.as_bytes()))?;
            }
            12 => {
                let s = scram
                    .as_ref()
                    .ok_or_else(|| PgError::Protocol("SASLFinal before SASL".into()))?;
                let server_final = String::from_utf8_lossy(cur.rest()).into_owned();
                s.verify_server_final(&server_final).map_err(|e| PgError::Auth(e.to_string()))?;
                scram_verified = true;
            }
            code => {
                return Err(PgError::Auth(format!(
                    "unsupported authentication request (code {code})"
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Cross-checked with Python: "md5" + md5(md5("secret" + "fixture").hex() + salt).hex().
    #[test]
    fn md5_password_matches_reference() {
        assert_eq!(
            md5_password("fixture", "secret", &[1, 2, 3, 4]),
            "md58f66b057fd64e5a80aad485de7357a40"
        );
    }
}
