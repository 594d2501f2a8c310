//! The behaviour shared by all three services: `/health`, `/version`, `/`, 404s, the broken
//! mode and fault injection. Service-specific routes and health checks plug in via [`App`].

use std::thread;
use std::time::Duration;

use crate::config::Config;
use crate::escape::{html, json_str};
use crate::fault;
use crate::http::Request;
use crate::response::Response;

/// A dependency that failed its health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependencyFailure {
    pub name: &'static str,
    /// Human-readable reason; must never contain secrets.
    pub error: String,
}

/// Service-specific behaviour.
pub trait App: Send + Sync + 'static {
    /// Checks the service's dependencies for `/health`; empty means healthy.
    fn check_dependencies(&self) -> Vec<DependencyFailure> {
        Vec::new()
    }

    /// Handles paths the common routes do not know; `None` answers 404.
    fn route(&self, _req: &Request) -> Option<Response> {
        None
    }

    /// Lines describing the configuration, logged at startup (no secrets).
    fn describe(&self) -> Vec<String> {
        Vec::new()
    }
}

/// An [`App`] with no extra routes or dependencies (site, saas).
#[derive(Debug, Clone, Copy)]
pub struct NoExtras;

impl App for NoExtras {}

pub struct Service<A: App> {
    pub name: &'static str,
    pub config: Config,
    pub app: A,
}

impl<A: App> Service<A> {
    pub fn new(name: &'static str, config: Config, app: A) -> Self {
        Service { name, config, app }
    }

    /// Entry point for every request: applies the fault file, then routes.
    pub fn handle(&self, req: &Request) -> Response {
        let fault = fault::load(self.config.fault_file.as_deref());
        if fault.delay_ms > 0 {
            thread::sleep(Duration::from_millis(fault.delay_ms));
        }
        if let Some(status) = fault.status {
            let body = format!(
                "{{\"error\":\"injected fault\",\"status\":{status},\"service\":{}}}",
                json_str(self.name)
            );
            return Response::json(status, body);
        }
        // Every request but the health check (the container stays healthy: only the bug shows).
        if fault.panic && req.path != "/health" {
            panic!("reconciliation failed for {}", req.path);
        }
        self.route(req)
    }

    fn route(&self, req: &Request) -> Response {
        let known = matches!(req.path.as_str(), "/health" | "/version" | "/");
        if known && req.method != "GET" && req.method != "HEAD" {
            return Response::error(405, "method not allowed").with_header("Allow", "GET, HEAD");
        }
        match req.path.as_str() {
            "/health" => self.health(),
            "/version" => Response::text(200, format!("{}\n", self.config.release)),
            "/" => self.index(),
            _ => self.app.route(req).unwrap_or_else(|| Response::error(404, "not found")),
        }
    }

    fn status_body(&self, status: &str) -> String {
        format!(
            "{{\"status\":{},\"service\":{},\"release\":{}",
            json_str(status),
            json_str(self.name),
            json_str(&self.config.release)
        )
    }

    fn health(&self) -> Response {
        if self.config.broken {
            return Response::json(500, self.status_body("broken") + "}");
        }
        let failures = self.app.check_dependencies();
        if failures.is_empty() {
            return Response::json(200, self.status_body("ok") + "}");
        }
        let names: Vec<String> = failures.iter().map(|f| json_str(f.name)).collect();
        let errors: Vec<String> = failures
            .iter()
            .map(|f| format!("{}:{}", json_str(f.name), json_str(&f.error)))
            .collect();
        let body = format!(
            "{},\"failing\":[{}],\"errors\":{{{}}}}}",
            self.status_body("unhealthy"),
            names.join(","),
            errors.join(",")
        );
        Response::json(503, body)
    }

    fn index(&self) -> Response {
        let (name, release) = (html(self.name), html(&self.config.release));
        Response::html(
            200,
            format!(
                "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{name} {release}</title></head>\n\
                 <body><h1>{name}</h1><p>release <code>{release}</code></p></body></html>\n"
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Version;

    fn req(method: &str, path: &str) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            query: None,
            version: Version::Http11,
            headers: vec![],
            body: vec![],
        }
    }

    fn service(broken: bool) -> Service<NoExtras> {
        let config = Config { port: 1, release: "v1".into(), broken, fault_file: None };
        Service::new("site", config, NoExtras)
    }

    #[test]
    fn common_routes() {
        let s = service(false);
        let h = s.handle(&req("GET", "/health"));
        assert_eq!(h.status, 200);
        assert_eq!(h.body, br#"{"status":"ok","service":"site","release":"v1"}"#);
        assert_eq!(h.content_type, "application/json");
        let v = s.handle(&req("GET", "/version"));
        assert_eq!((v.status, v.body.as_slice()), (200, b"v1\n".as_slice()));
        let i = s.handle(&req("GET", "/"));
        assert!(i.content_type.starts_with("text/html"));
        assert!(String::from_utf8(i.body).unwrap().contains("site"));
        assert_eq!(s.handle(&req("GET", "/nope")).status, 404);
        assert_eq!(s.handle(&req("POST", "/health")).status, 405);
    }

    #[test]
    fn broken_mode_only_affects_health() {
        let s = service(true);
        let h = s.handle(&req("GET", "/health"));
        assert_eq!(h.status, 500);
        assert_eq!(h.body, br#"{"status":"broken","service":"site","release":"v1"}"#);
        assert_eq!(s.handle(&req("GET", "/version")).status, 200);
    }

    struct FailingDb;
    impl App for FailingDb {
        fn check_dependencies(&self) -> Vec<DependencyFailure> {
            vec![DependencyFailure { name: "database", error: "refused".into() }]
        }
    }

    #[test]
    fn failing_dependency_answers_503() {
        let config = Config { port: 1, release: "v1".into(), broken: false, fault_file: None };
        let h = Service::new("api", config, FailingDb).handle(&req("GET", "/health"));
        assert_eq!(h.status, 503);
        let body = String::from_utf8(h.body).unwrap();
        assert!(
            body.contains(r#""failing":["database"],"errors":{"database":"refused"}"#),
            "{body}"
        );
    }

    #[test]
    fn fault_file_overrides_every_path() {
        let path = std::env::temp_dir().join(format!("svc-fault-{}", std::process::id()));
        std::fs::write(&path, "status=503 delay_ms=50").unwrap();
        let mut s = service(false);
        s.config.fault_file = Some(path.clone());
        let start = std::time::Instant::now();
        for p in ["/health", "/version", "/nope"] {
            let r = s.handle(&req("GET", p));
            assert_eq!(r.status, 503);
            assert!(String::from_utf8(r.body).unwrap().contains("injected fault"));
        }
        assert!(start.elapsed() >= Duration::from_millis(150));
        std::fs::write(&path, "").unwrap();
        assert_eq!(s.handle(&req("GET", "/health")).status, 200);
        std::fs::remove_file(&path).unwrap();
    }
}
