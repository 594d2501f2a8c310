//! `DATABASE_URL_FILE` / `REDIS_URL_FILE` (Docker secrets) through the real binary. Needs no
//! PostgreSQL or Redis: the URLs point at closed ports, and what matters is that the file was
//! read (or its absence reported) and that no password leaks.

use std::path::PathBuf;

use common::testing::{ServerProcess, command, free_port, temp_path};

const BIN: &str = env!("CARGO_BIN_EXE_api");
const PASSWORD: &str = "s3cret-in-file";

/// A unique temp file holding `content`, removed on drop.
struct SecretFile(PathBuf);

impl SecretFile {
    fn new(content: &str) -> SecretFile {
        let path = temp_path("api-secret-file");
        std::fs::write(&path, content).expect("write secret file");
        SecretFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for SecretFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn migrate(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = format!("{}/../../migrations/v1", env!("CARGO_MANIFEST_DIR"));
    let out = command(BIN, env).args(["migrate", "--dir", &dir]).output().expect("run api migrate");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn migrate_reads_database_url_file() {
    let port = free_port();
    let f = SecretFile::new(&format!("postgres://app:{PASSWORD}@127.0.0.1:{port}/app\n"));
    let (code, err) = migrate(&[("DATABASE_URL_FILE", f.path())]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(&format!("cannot connect to database app@127.0.0.1:{port}/app")), "{err}");
    assert!(!err.contains(PASSWORD), "password leaked: {err}");
}

#[test]
fn migrate_reports_an_unreadable_database_url_file() {
    let missing = temp_path("api-secret-missing");
    let missing = missing.to_str().unwrap();
    let (code, err) = migrate(&[("DATABASE_URL_FILE", missing)]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.starts_with("api migrate: error: DATABASE_URL_FILE="), "{err}");
    assert!(err.contains(missing) && err.contains("cannot read"), "{err}");
}

#[test]
fn health_reports_secret_file_problems_without_leaking() {
    let missing = temp_path("api-secret-missing");
    let redis = SecretFile::new(&format!("redis://:{PASSWORD}@127.0.0.1:{}/0\n", free_port()));
    let s = ServerProcess::start(
        BIN,
        &[("DATABASE_URL_FILE", missing.to_str().unwrap()), ("REDIS_URL_FILE", redis.path())],
    );
    let h = s.get("/health");
    let body = h.text();
    assert_eq!(h.status, 503, "{body}");
    assert!(body.contains(r#""failing":["database","redis"]"#), "{body}");
    assert!(body.contains("DATABASE_URL_FILE=") && body.contains("cannot read"), "{body}");
    assert!(!body.contains(PASSWORD) && !s.logs().contains(PASSWORD), "password leaked: {body}");
}
