//! Against a REAL PostgreSQL (15+). Skipped unless `FIXTURE_PG_URL` is set, e.g.
//! `FIXTURE_PG_URL=postgres://fixture:secret@127.0.0.1:5432/postgres cargo test -p api`.
//! The role needs CREATEDB: each test works in its own scratch database, dropped afterwards.

use std::process::Output;
use std::time::{Duration, Instant};

use api::app::{ApiApp, HEALTH_POOL};
use api::pg::{Client, PgConfig, quote_ident};
use common::service::App;
use common::testing::{ServerProcess, command, temp_path};

const BIN: &str = env!("CARGO_BIN_EXE_api");
const WRONG_PASSWORD: &str = "Wr0ng-Pa55word!";

fn admin_config() -> Option<PgConfig> {
    match std::env::var("FIXTURE_PG_URL") {
        Ok(url) if !url.is_empty() => Some(PgConfig::from_url(&url).expect("FIXTURE_PG_URL")),
        _ => {
            eprintln!(
                "SKIPPED: FIXTURE_PG_URL is not set (see the README to run against PostgreSQL)"
            );
            None
        }
    }
}

/// A database created for one test and dropped (WITH FORCE) when it goes out of scope.
struct ScratchDb {
    admin: PgConfig,
    cfg: PgConfig,
}

impl ScratchDb {
    fn create(admin: &PgConfig) -> ScratchDb {
        let name = temp_path("fixture_it").file_name().unwrap().to_string_lossy().replace('-', "_");
        let mut c = Client::connect(admin, Duration::from_secs(10)).expect("connect as admin");
        c.simple_query(&format!("CREATE DATABASE {}", quote_ident(&name)))
            .expect("CREATE DATABASE");
        ScratchDb { admin: admin.clone(), cfg: PgConfig { dbname: name, ..admin.clone() } }
    }

    fn client(&self) -> Client {
        Client::connect(&self.cfg, Duration::from_secs(10)).expect("connect to scratch db")
    }

    /// (applied versions, public tables, columns of statements): the observable schema state.
    fn snapshot(&self) -> Vec<Vec<Option<String>>> {
        let mut c = self.client();
        let sql = "SELECT string_agg(version, ',' ORDER BY version) FROM schema_migrations; \
                   SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'; \
                   SELECT string_agg(column_name, ',' ORDER BY column_name) FROM information_schema.columns \
                   WHERE table_name = 'statements'";
        c.simple_query(sql).expect("snapshot").into_iter().map(|r| r.rows[0].clone()).collect()
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        if let Ok(mut c) = Client::connect(&self.admin, Duration::from_secs(10)) {
            let _ = c.simple_query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(&self.cfg.dbname)
            ));
        }
    }
}

fn migrations(dir: &str) -> String {
    format!("{}/../../migrations/{dir}", env!("CARGO_MANIFEST_DIR"))
}

fn migrate(cfg: &PgConfig, args: &[&str]) -> (Option<i32>, String, String) {
    let out: Output = command(BIN, &[("DATABASE_URL", &cfg.to_url())])
        .arg("migrate")
        .args(args)
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn migrate_v1_v2_and_bad_against_real_postgres() {
    let Some(admin) = admin_config() else { return };
    let db = ScratchDb::create(&admin);
    let (v1, v2, bad) = (migrations("v1"), migrations("v2"), migrations("bad"));

    let (code, out, err) = migrate(&db.cfg, &["--dir", &v1]);
    assert_eq!(code, Some(0), "v1: {out}{err}");
    assert!(
        out.contains("applied 0001_init (") && out.contains("done: 1 applied, 0 already applied"),
        "{out}"
    );

    let (code, out, _) = migrate(&db.cfg, &["--dir", &v1]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("already applied 0001_init")
            && out.contains("done: 0 applied, 1 already applied"),
        "{out}"
    );

    let (code, out, err) = migrate(&db.cfg, &["--dir", &v2]);
    assert_eq!(code, Some(0), "v2: {out}{err}");
    assert!(out.contains("already applied 0001_init"), "{out}");
    assert!(
        out.contains("applied 0002_statement_reference (") && out.contains("done: 1 applied"),
        "{out}"
    );

    let before = db.snapshot();
    let (code, out, err) = migrate(&db.cfg, &["--dir", &bad]);
    assert_eq!(code, Some(1), "bad must fail: {out}{err}");
    for needle in ["0002_broken_reference.sql", "42P01", "account_holders", "rolled back"] {
        assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
    }
    assert!(!err.contains(&db.cfg.password) && !out.contains(&db.cfg.password), "password leaked");
    assert_eq!(db.snapshot(), before, "the failed migration left state behind");
    let audit = db.client().query_value("SELECT to_regclass('audit_log')::text").unwrap();
    assert_eq!(audit, None, "audit_log must not exist");

    let (code, out, _) = migrate(&db.cfg, &["--status", "--dir", &bad]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("pending  0002_broken_reference") && out.contains("2 applied, 1 pending"),
        "{out}"
    );

    let wrong = PgConfig { password: WRONG_PASSWORD.into(), ..db.cfg.clone() };
    let (code, out, err) = migrate(&wrong, &["--dir", &v1]);
    assert_eq!(code, Some(1));
    assert!(err.contains("28P01"), "{err}");
    assert!(
        !err.contains(WRONG_PASSWORD) && !out.contains(WRONG_PASSWORD),
        "password leaked: {err}"
    );
}

#[test]
fn failed_first_deploy_keeps_earlier_migrations_only() {
    let Some(admin) = admin_config() else { return };
    let db = ScratchDb::create(&admin);
    let (code, out, err) = migrate(&db.cfg, &["--dir", &migrations("bad")]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("applied 0001_init ("), "{out}");
    let snap = db.snapshot();
    assert_eq!(snap[0][0].as_deref(), Some("0001_init"));
    assert_eq!(
        snap[1][0].as_deref(),
        Some("accounts,reconciliations,schema_migrations,statements")
    );
}

#[test]
fn health_and_counts_against_real_postgres() {
    let Some(admin) = admin_config() else { return };
    let db = ScratchDb::create(&admin);
    let url = db.cfg.to_url();
    let (code, out, err) = migrate(&db.cfg, &["--dir", &migrations("v1")]);
    assert_eq!(code, Some(0), "{out}{err}");

    let s = ServerProcess::start(BIN, &[("DATABASE_URL", &url), ("APP_RELEASE", "v1")]);
    let h = s.get("/health");
    assert_eq!(h.status, 200, "{}", h.text());
    assert_eq!(h.text(), r#"{"status":"ok","service":"api","release":"v1"}"#);
    let counts = s.get("/db/counts");
    assert_eq!(counts.status, 200);
    assert_eq!(counts.text(), r#"{"accounts":3,"reconciliations":3,"statements":4}"#);
    db.client().simple_query("INSERT INTO accounts (name) VALUES ('Initech')").unwrap();
    assert!(s.get("/db/counts").text().contains(r#""accounts":4"#));
    assert!(!s.logs().contains(&db.cfg.password), "password in logs");

    let wrong = PgConfig { password: WRONG_PASSWORD.into(), ..db.cfg.clone() };
    let s = ServerProcess::start(BIN, &[("DATABASE_URL", &wrong.to_url())]);
    let t = Instant::now();
    let h = s.get("/health");
    // Bounded: well inside the client's own 10 s timeout (its checks time out after 2 s each), with room
    // for a loaded machine; a health check that hung would not answer at all.
    assert!(t.elapsed() < Duration::from_secs(8), "health check must be bounded");
    let body = h.text();
    assert_eq!(h.status, 503, "{body}");
    assert!(body.contains(r#""failing":["database"]"#) && body.contains("28P01"), "{body}");
    assert!(
        !body.contains(WRONG_PASSWORD) && !s.logs().contains(WRONG_PASSWORD),
        "password leaked: {body}"
    );
    assert_eq!(s.get("/db/counts").status, 503);
}

/// The backends connected to `db`'s database other than the asking one, by pid.
fn other_backends(db: &ScratchDb) -> Vec<String> {
    let sql = format!(
        "SELECT string_agg(pid::text, ',' ORDER BY pid) FROM pg_stat_activity \
         WHERE datname = '{}' AND pid <> pg_backend_pid()",
        db.cfg.dbname
    );
    let pids = db.client().query_value(&sql).unwrap().unwrap_or_default();
    pids.split(',').filter(|p| !p.is_empty()).map(String::from).collect()
}

#[test]
fn concurrent_health_checks_keep_their_connections() {
    let Some(admin) = admin_config() else { return };
    let db = ScratchDb::create(&admin);
    let url = db.cfg.to_url();
    let app = ApiApp::from_lookup(|k| (k == "DATABASE_URL").then(|| url.clone()));
    let three_at_once = || {
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| assert!(app.check_dependencies().is_empty()));
            }
        })
    };
    // Three checks at once: each takes a kept connection or logs in, and gives it back. The pool
    // grows to three (a single kept connection would leave the other two logging in every time).
    for _ in 0..20 {
        three_at_once();
        if app.health_pool.lock().unwrap().len() == 3 {
            break;
        }
    }
    assert_eq!(app.health_pool.lock().unwrap().len(), 3);
    let before = other_backends(&db);
    assert_eq!(before.len(), 3, "{before:?}");
    // From then on, concurrent and single checks log in no more: the same backends serve them.
    for _ in 0..5 {
        three_at_once();
        assert!(app.check_dependencies().is_empty());
    }
    assert_eq!(other_backends(&db), before);
}
const _: () = assert!(HEALTH_POOL >= 3, "the pool test needs room for three");

#[test]
fn database_url_file_against_real_postgres() {
    let Some(admin) = admin_config() else { return };
    let db = ScratchDb::create(&admin);
    let file = temp_path("fixture-db-url");
    std::fs::write(&file, format!("{}\n", db.cfg.to_url())).unwrap();
    let file_s = file.to_str().unwrap();

    let out = command(BIN, &[("DATABASE_URL_FILE", file_s)])
        .args(["migrate", "--dir", &migrations("v1")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("applied 0001_init ("), "{text}");

    let s = ServerProcess::start(BIN, &[("DATABASE_URL_FILE", file_s)]);
    assert_eq!(s.get("/health").status, 200);
    assert_eq!(s.get("/db/counts").text(), r#"{"accounts":3,"reconciliations":3,"statements":4}"#);

    // DATABASE_URL wins over the file.
    let wrong = PgConfig { password: WRONG_PASSWORD.into(), ..db.cfg.clone() };
    let s = ServerProcess::start(
        BIN,
        &[("DATABASE_URL", &wrong.to_url()), ("DATABASE_URL_FILE", file_s)],
    );
    let body = s.get("/health").text();
    assert!(body.contains("28P01") && !body.contains(WRONG_PASSWORD), "{body}");
    std::fs::remove_file(&file).unwrap();
}
