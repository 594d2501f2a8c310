//! The api service's additions: dependency checks in `/health` and `GET /db/counts`.

use std::time::{Duration, Instant};

use common::escape::{json_str, redact};
use common::http::Request;
use common::response::Response;
use common::service::{App, DependencyFailure};

use crate::pg::{Client, PgConfig, quote_ident};
use crate::redis::{self, RedisConfig};

/// Bound on each dependency check in `/health`.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
const COUNTS_TIMEOUT: Duration = Duration::from_secs(5);

/// Configured dependencies; `Err` holds why the URL was rejected (safe to show).
pub struct ApiApp {
    pub db: Option<Result<PgConfig, String>>,
    pub redis: Option<Result<RedisConfig, String>>,
}

impl ApiApp {
    /// Reads `DATABASE_URL` and `REDIS_URL` (unset or empty: not checked).
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        ApiApp {
            db: var("DATABASE_URL").map(|u| PgConfig::from_url(u.trim())),
            redis: var("REDIS_URL").map(|u| RedisConfig::from_url(u.trim())),
        }
    }

    fn check_db(&self) -> Option<DependencyFailure> {
        let cfg = match self.db.as_ref()? {
            Ok(cfg) => cfg,
            Err(e) => return Some(DependencyFailure { name: "database", error: e.clone() }),
        };
        let deadline = Instant::now() + CHECK_TIMEOUT;
        let result = Client::connect(cfg, CHECK_TIMEOUT).and_then(|mut c| {
            c.set_deadline(Some(deadline));
            c.query_value("SELECT 1")
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
        let app = ApiApp { db: None, redis: None };
        assert!(app.check_dependencies().is_empty());
        assert_eq!(app.route(&get("/db/counts")).unwrap().status, 503);
        assert!(app.route(&get("/other")).is_none());
    }

    #[test]
    fn unreachable_database_fails_without_leaking_password() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let cfg = PgConfig::from_url(&format!("postgres://u:hunter2@127.0.0.1:{port}/d")).unwrap();
        let app = ApiApp { db: Some(Ok(cfg)), redis: Some(Err("invalid REDIS_URL: x".into())) };
        let failures = app.check_dependencies();
        let names: Vec<&str> = failures.iter().map(|f| f.name).collect();
        assert_eq!(names, ["database", "redis"]);
        assert!(failures.iter().all(|f| !f.error.contains("hunter2")), "{failures:?}");
    }
}
