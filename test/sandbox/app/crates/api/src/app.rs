//! The api service's additions: dependency checks in `/health` and `GET /db/counts`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::config::var_or_file;
use common::escape::{json_str, redact};
use common::http::Request;
use common::response::Response;
use common::service::{App, DependencyFailure};

use crate::pg::{Client, PgConfig, quote_ident};
use crate::redis::{self, RedisConfig};

/// Bound on each dependency check in `/health`.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
const COUNTS_TIMEOUT: Duration = Duration::from_secs(5);
/// At most this many health-check connections are kept between checks.
pub const HEALTH_POOL: usize = 4;

/// Configured dependencies; `Err` holds why the URL was rejected (safe to show).
pub struct ApiApp {
    pub db: Option<Result<PgConfig, String>>,
    pub redis: Option<Result<RedisConfig, String>>,
    /// The health checks' connections, kept between checks as an app's pool keeps them: a
    /// `SELECT 1` on one stays cheap on a loaded host, where a new login (SCRAM) may not fit in
    /// [`CHECK_TIMEOUT`]. Checks running at once each take their own (up to [`HEALTH_POOL`] are
    /// kept); one that failed is dropped, and the next check without a kept one logs in again.
    pub health_pool: Mutex<Vec<Client>>,
}

impl ApiApp {
    /// Reads `DATABASE_URL` and `REDIS_URL`, or the files `DATABASE_URL_FILE` and
    /// `REDIS_URL_FILE` name (Docker secrets), once at startup. Unset or empty: not checked.
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// [`ApiApp::from_env`] with any variable lookup (testable without touching the env).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let url = |name| var_or_file(name, &get).transpose();
        ApiApp {
            db: url("DATABASE_URL").map(|u| u.and_then(|u| PgConfig::from_url(&u))),
            redis: url("REDIS_URL").map(|u| u.and_then(|u| RedisConfig::from_url(&u))),
            health_pool: Mutex::new(Vec::new()),
        }
    }

    fn check_db(&self) -> Option<DependencyFailure> {
        let cfg = match self.db.as_ref()? {
            Ok(cfg) => cfg,
            Err(e) => return Some(DependencyFailure { name: "database", error: e.clone() }),
        };
        let deadline = Instant::now() + CHECK_TIMEOUT;
        let select_one = |mut c: Client| {
            c.set_deadline(Some(deadline));
            c.query_value("SELECT 1").map(|v| (v, c))
        };
        // A kept connection if one is free (the lock is held only to take or give one back).
        let kept = self.health_pool.lock().ok().and_then(|mut pool| pool.pop()).map(select_one);
        // None free, or the server closed it (a restart): log in again, within the same bound.
        let result = match kept {
            Some(Ok(done)) => Ok(done),
            _ => Client::connect(cfg, deadline.saturating_duration_since(Instant::now()))
                .and_then(select_one),
        };
        let result = result.map(|(v, c)| {
            if v.as_deref() == Some("1")
                && let Ok(mut pool) = self.health_pool.lock()
                && pool.len() < HEALTH_POOL
            {
                pool.push(c);
            }
            v
        });
        match result {
            Ok(Some(v)) if v == "1" => None,
            Ok(other) => Some(failure("database", format!("SELECT 1 returned {other:?}"), "")),
            Err(e) => Some(failure("database", format!("{cfg}: {e}"), &cfg.password)),
        }
    }

    fn check_redis(&self) -> Option<DependencyFailure> {
        match self.redis.as_ref()? {
            Ok(cfg) => redis::ping(cfg, CHECK_TIMEOUT)
                .err()
                .map(|e| failure("redis", format!("{}:{}: {e}", cfg.host, cfg.port), "")),
            Err(e) => Some(DependencyFailure { name: "redis", error: e.clone() }),
        }
    }

    fn db_counts(&self) -> Response {
        let cfg = match &self.db {
            None => return Response::error(503, "DATABASE_URL is not set"),
            Some(Err(e)) => return Response::error(503, e),
            Some(Ok(cfg)) => cfg,
        };
        match table_counts(cfg) {
            Ok(counts) => {
                let fields: Vec<String> =
                    counts.iter().map(|(t, n)| format!("{}:{n}", json_str(t))).collect();
                Response::json(200, format!("{{{}}}", fields.join(",")))
            }
            Err(e) => Response::error(503, &redact(&format!("database: {e}"), &cfg.password)),
        }
    }
}

fn failure(name: &'static str, error: String, secret: &str) -> DependencyFailure {
    DependencyFailure { name, error: redact(&error, secret) }
}

/// Row counts of every table in schema `public` except `schema_migrations`, by name.
pub fn table_counts(cfg: &PgConfig) -> Result<Vec<(String, i64)>, crate::pg::PgError> {
    let deadline = Instant::now() + COUNTS_TIMEOUT;
    let mut db = Client::connect(cfg, COUNTS_TIMEOUT)?;
    db.set_deadline(Some(deadline));
    let tables: Vec<String> = db
        .simple_query(
            "SELECT tablename FROM pg_catalog.pg_tables \
             WHERE schemaname = 'public' AND tablename <> 'schema_migrations' ORDER BY tablename",
        )?
        .into_iter()
        .flat_map(|r| r.rows)
        .filter_map(|row| row.into_iter().next().flatten())
        .collect();
    if tables.is_empty() {
        return Ok(Vec::new());
    }
    let sql: String =
        tables.iter().map(|t| format!("SELECT count(*) FROM public.{};", quote_ident(t))).collect();
    let results = db.simple_query(&sql)?;
    Ok(tables
        .into_iter()
        .zip(results)
        .map(|(t, r)| {
            let n = r.rows.first().and_then(|row| row.first().cloned().flatten());
            (t, n.and_then(|n| n.parse().ok()).unwrap_or(-1))
        })
        .collect())
}

impl App for ApiApp {
    fn check_dependencies(&self) -> Vec<DependencyFailure> {
        std::thread::scope(|s| {
            let db = s.spawn(|| self.check_db());
            let redis = s.spawn(|| self.check_redis());
            [db.join(), redis.join()].into_iter().filter_map(|r| r.ok().flatten()).collect()
        })
    }

    fn route(&self, req: &Request) -> Option<Response> {
        if req.path != "/db/counts" {
            return None;
        }
        if req.method != "GET" && req.method != "HEAD" {
            return Some(
                Response::error(405, "method not allowed").with_header("Allow", "GET, HEAD"),
            );
        }
        Some(self.db_counts())
    }

    fn describe(&self) -> Vec<String> {
        let show = |name: &str, v: Option<String>| match v {
            None => format!("{name}: not configured"),
            Some(v) => format!("{name}: {v}"),
        };
        vec![
            show(
                "database",
                self.db.as_ref().map(|r| r.as_ref().map_or_else(|e| e.clone(), |c| c.to_string())),
            ),
            show(
                "redis",
                self.redis
                    .as_ref()
                    .map(|r| r.as_ref().map_or_else(|e| e.clone(), |c| format!("{c:?}"))),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::http::Version;

    fn get(path: &str) -> Request {
        Request {
            method: "GET".into(),
            path: path.into(),
            query: None,
            version: Version::Http11,
            headers: vec![],
            body: vec![],
        }
    }

    #[test]
    fn unconfigured_dependencies_are_healthy() {
        let app = ApiApp { db: None, redis: None, health_pool: Mutex::new(Vec::new()) };
        assert!(app.check_dependencies().is_empty());
        assert_eq!(app.route(&get("/db/counts")).unwrap().status, 503);
        assert!(app.route(&get("/other")).is_none());
    }

    #[test]
    fn urls_come_from_variables_or_secret_files() {
        let file = common::testing::temp_path("api-secret");
        std::fs::write(&file, "redis://:s3cret-from-file@cache:6380/2\n").unwrap();
        let file_s = file.to_str().unwrap().to_string();
        let vars = [
            ("DATABASE_URL", "postgres://u:pw@db/app"),
            ("DATABASE_URL_FILE", "/nonexistent/db"),
            ("REDIS_URL_FILE", file_s.as_str()),
        ];
        let app =
            ApiApp::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()));
        std::fs::remove_file(&file).unwrap();
        assert_eq!(app.db.unwrap().unwrap().host, "db");
        let redis = app.redis.unwrap().unwrap();
        assert_eq!((redis.host.as_str(), redis.port), ("cache", 6380));
        assert_eq!(redis.password.as_deref(), Some("s3cret-from-file"));
        assert!(ApiApp::from_lookup(|_| None).db.is_none());
    }

    #[test]
    fn unreadable_secret_file_is_a_failing_dependency() {
        let missing = common::testing::temp_path("api-secret-missing");
        let missing = missing.to_str().unwrap().to_string();
        let app = ApiApp::from_lookup(|k| (k == "DATABASE_URL_FILE").then(|| missing.clone()));
        assert!(app.redis.is_none());
        let failures = app.check_dependencies();
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert_eq!(failures[0].name, "database");
        assert!(failures[0].error.starts_with("DATABASE_URL_FILE="), "{failures:?}");
        assert!(failures[0].error.contains(&missing), "{failures:?}");
        assert_eq!(app.route(&get("/db/counts")).unwrap().status, 503);
    }

    #[test]
    fn unreachable_database_fails_without_leaking_password() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let cfg = PgConfig::from_url(&format!("postgres://u:hunter2@127.0.0.1:{port}/d")).unwrap();
        let app = ApiApp {
            db: Some(Ok(cfg)),
            redis: Some(Err("invalid REDIS_URL: x".into())),
            health_pool: Mutex::new(Vec::new()),
        };
        let failures = app.check_dependencies();
        let names: Vec<&str> = failures.iter().map(|f| f.name).collect();
        assert_eq!(names, ["database", "redis"]);
        assert!(failures.iter().all(|f| !f.error.contains("hunter2")), "{failures:?}");
    }
}
