//! Service configuration from the environment.

use std::path::PathBuf;

pub const DEFAULT_PORT: u16 = 8080;
pub const DEFAULT_RELEASE: &str = "dev";
pub const DEFAULT_FAULT_FILE: &str = "/tmp/fault";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `PORT` (default 8080).
    pub port: u16,
    /// `APP_RELEASE` (default "dev").
    pub release: String,
    /// `APP_BROKEN=1` (also true/yes/on) makes `/health` answer 500.
    pub broken: bool,
    /// `APP_FAULT_FILE` (default /tmp/fault); set it empty to disable fault injection.
    pub fault_file: Option<PathBuf>,
}

impl Config {
    pub fn from_env() -> Result<Config, String> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Builds the configuration from any variable lookup (testable without touching the env).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        let port = match get("PORT") {
            None => DEFAULT_PORT,
            Some(p) if p.trim().is_empty() => DEFAULT_PORT,
            Some(p) => match p.trim().parse::<u16>() {
                Ok(n) if n > 0 => n,
                _ => return Err(format!("invalid PORT {p:?}: expected a number from 1 to 65535")),
            },
        };
        let fault_file = match get("APP_FAULT_FILE") {
            None => Some(PathBuf::from(DEFAULT_FAULT_FILE)),
            Some(f) if f.trim().is_empty() => None,
            Some(f) => Some(PathBuf::from(f)),
        };
        Ok(Config {
            port,
            release: release_from(get("APP_RELEASE")),
            broken: get("APP_BROKEN").is_some_and(|v| truthy(&v)),
            fault_file,
        })
    }
}

/// The release string from `APP_RELEASE` (default "dev").
pub fn release() -> String {
    release_from(std::env::var("APP_RELEASE").ok())
}

fn release_from(v: Option<String>) -> String {
    match v.as_deref().map(str::trim) {
        Some(r) if !r.is_empty() => r.to_string(),
        _ => DEFAULT_RELEASE.to_string(),
    }
}

fn truthy(v: &str) -> bool {
    matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, String> {
        let map: HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.port, 8080);
        assert_eq!(c.release, "dev");
        assert!(!c.broken);
        assert_eq!(c.fault_file, Some(PathBuf::from("/tmp/fault")));
    }

    #[test]
    fn reads_values() {
        let c = cfg(&[
            ("PORT", "18080"),
            ("APP_RELEASE", " v2 "),
            ("APP_BROKEN", "1"),
            ("APP_FAULT_FILE", "/run/f"),
        ])
        .unwrap();
        assert_eq!((c.port, c.release.as_str(), c.broken), (18080, "v2", true));
        assert_eq!(c.fault_file, Some(PathBuf::from("/run/f")));
        assert!(!cfg(&[("APP_BROKEN", "0")]).unwrap().broken);
        assert!(cfg(&[("APP_BROKEN", "true")]).unwrap().broken);
        assert_eq!(cfg(&[("APP_FAULT_FILE", "")]).unwrap().fault_file, None);
        assert_eq!(cfg(&[("APP_RELEASE", "")]).unwrap().release, "dev");
    }

    #[test]
    fn rejects_bad_port() {
        for p in ["abc", "0", "70000", "-1"] {
            assert!(cfg(&[("PORT", p)]).is_err(), "{p}");
        }
    }
}
