//! Against a REAL Redis. Skipped unless `FIXTURE_REDIS_URL` is set, e.g.
//! `FIXTURE_REDIS_URL=redis://:secret@127.0.0.1:6379/0 cargo test -p api`.
//! With a password in the URL, the AUTH failure paths are tested too.

use std::time::Duration;

use api::redis::{RedisConfig, ping};
use common::testing::{ServerProcess, temp_path};

const BIN: &str = env!("CARGO_BIN_EXE_api");
const WRONG_PASSWORD: &str = "Wr0ng-Redis-Pa55";

fn config() -> Option<(String, RedisConfig)> {
    match std::env::var("FIXTURE_REDIS_URL") {
        Ok(url) if !url.is_empty() => {
            let cfg = RedisConfig::from_url(&url).expect("FIXTURE_REDIS_URL");
            Some((url, cfg))
        }
        _ => {
            eprintln!(
                "SKIPPED: FIXTURE_REDIS_URL is not set (see the README to run against Redis)"
            );
            None
        }
    }
}

fn url_of(cfg: &RedisConfig) -> String {
    let enc = common::url::percent_encode;
    let auth = match (&cfg.username, &cfg.password) {
        (Some(u), Some(p)) => format!("{}:{}@", enc(u), enc(p)),
        (None, Some(p)) => format!(":{}@", enc(p)),
        _ => String::new(),
    };
    format!("redis://{auth}{}:{}/{}", cfg.host, cfg.port, cfg.db)
}

#[test]
fn ping_and_auth_against_real_redis() {
    let Some((_, cfg)) = config() else { return };
    ping(&cfg, Duration::from_secs(2)).expect("PING with the configured credentials");
    if cfg.password.is_none() {
        eprintln!("FIXTURE_REDIS_URL has no password: AUTH failure paths not tested");
        return;
    }
    let wrong = RedisConfig { password: Some(WRONG_PASSWORD.into()), ..cfg.clone() };
    let e = ping(&wrong, Duration::from_secs(2)).unwrap_err();
    assert!(e.starts_with("AUTH failed:") && !e.contains(WRONG_PASSWORD), "{e}");
    let anonymous = RedisConfig { password: None, username: None, ..cfg.clone() };
    let e = ping(&anonymous, Duration::from_secs(2)).unwrap_err();
    assert!(e.contains("NOAUTH"), "{e}");
}

#[test]
fn api_health_with_real_redis() {
    let Some((url, cfg)) = config() else { return };
    let s = ServerProcess::start(BIN, &[("REDIS_URL", &url), ("APP_RELEASE", "v2")]);
    let h = s.get("/health");
    assert_eq!(
        (h.status, h.text().as_str()),
        (200, r#"{"status":"ok","service":"api","release":"v2"}"#)
    );
    let file = temp_path("fixture-redis-url");
    std::fs::write(&file, format!("{url}\n")).unwrap();
    let s = ServerProcess::start(BIN, &[("REDIS_URL_FILE", file.to_str().unwrap())]);
    let h = s.get("/health");
    std::fs::remove_file(&file).unwrap();
    assert_eq!(h.status, 200, "REDIS_URL_FILE: {}", h.text());
    if cfg.password.is_none() {
        return;
    }
    let wrong = url_of(&RedisConfig { password: Some(WRONG_PASSWORD.into()), ..cfg });
    let s = ServerProcess::start(BIN, &[("REDIS_URL", &wrong)]);
    let h = s.get("/health");
    let body = h.text();
    assert_eq!(h.status, 503, "{body}");
    assert!(body.contains(r#""failing":["redis"]"#) && body.contains("AUTH failed"), "{body}");
    assert!(
        !body.contains(WRONG_PASSWORD) && !s.logs().contains(WRONG_PASSWORD),
        "password leaked: {body}"
    );
}
