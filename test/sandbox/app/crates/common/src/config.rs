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

/// The value of `name`, or else the content of the file named by `<name>_FILE` (Docker secrets:
/// `/run/secrets/...`), trimmed either way. A blank variable counts as unset, so `name` wins
/// whenever it is set. `Ok(None)`: neither is set. A file that cannot be read, or is blank, is
/// an error naming the variable and the path, never the file's content.
pub fn var_or_file(
    name: &str,
    get: impl Fn(&str) -> Option<String>,
) -> Result<Option<String>, String> {
    let non_blank = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
    if let Some(v) = non_blank(get(name)) {
        return Ok(Some(v.trim().to_string()));
    }
    let file_var = format!("{name}_FILE");
    let Some(path) = non_blank(get(&file_var)) else { return Ok(None) };
    match std::fs::read_to_string(&path) {
        Ok(content) if content.trim().is_empty() => {
            Err(format!("{file_var}={path:?}: file is empty"))
        }
        Ok(content) => Ok(Some(content.trim().to_string())),
        // io::Error's message never quotes the data (e.g. "stream did not contain valid UTF-8").
        Err(e) => Err(format!("{file_var}={path:?}: cannot read: {e}")),
    }
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

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    /// A unique temp file holding `content`, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(content: &[u8]) -> TempFile {
            let path = crate::testing::temp_path("var-or-file");
            std::fs::write(&path, content).unwrap();
            TempFile(path)
        }

        fn path(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn var_or_file_neither_set() {
        assert_eq!(var_or_file("DATABASE_URL", lookup(&[])), Ok(None));
        let blank = lookup(&[("DATABASE_URL", " "), ("DATABASE_URL_FILE", "")]);
        assert_eq!(var_or_file("DATABASE_URL", blank), Ok(None));
    }

    #[test]
    fn var_or_file_variable_wins_over_file() {
        let f = TempFile::new(b"postgres://from-file/d\n");
        let get =
            lookup(&[("DATABASE_URL", " postgres://from-env/d "), ("DATABASE_URL_FILE", f.path())]);
        assert_eq!(var_or_file("DATABASE_URL", get), Ok(Some("postgres://from-env/d".into())));
        // The file is not even read when the variable is set.
        let get = lookup(&[("REDIS_URL", "redis://env"), ("REDIS_URL_FILE", "/nonexistent/x")]);
        assert_eq!(var_or_file("REDIS_URL", get), Ok(Some("redis://env".into())));
    }

    #[test]
    fn var_or_file_reads_and_trims_the_file() {
        let f = TempFile::new(b"  redis://:s3cret@cache:6379/0\r\n\n");
        for set in ["", "  "] {
            let get = lookup(&[("REDIS_URL", set), ("REDIS_URL_FILE", f.path())]);
            assert_eq!(
                var_or_file("REDIS_URL", get),
                Ok(Some("redis://:s3cret@cache:6379/0".into()))
            );
        }
        assert_eq!(
            var_or_file("REDIS_URL", lookup(&[("REDIS_URL_FILE", f.path())])),
            Ok(Some("redis://:s3cret@cache:6379/0".into()))
        );
    }

    #[test]
    fn var_or_file_missing_file_names_variable_and_path() {
        let path = crate::testing::temp_path("var-or-file-missing");
        let path = path.to_str().unwrap();
        let err = var_or_file("DATABASE_URL", lookup(&[("DATABASE_URL_FILE", path)])).unwrap_err();
        assert!(err.starts_with("DATABASE_URL_FILE="), "{err}");
        assert!(err.contains(path), "{err}");
        assert!(err.contains("cannot read"), "{err}");
    }

    #[test]
    fn var_or_file_errors_never_show_the_content() {
        // Not UTF-8: read_to_string fails although the file exists and holds a password.
        let f = TempFile::new(b"postgres://u:hunter2@db/app\xff\n");
        let err =
            var_or_file("DATABASE_URL", lookup(&[("DATABASE_URL_FILE", f.path())])).unwrap_err();
        assert!(err.contains("DATABASE_URL_FILE") && err.contains(f.path()), "{err}");
        assert!(!err.contains("hunter2") && !err.contains("postgres://"), "{err}");
        // A blank file is an error too, not "unset".
        let blank = TempFile::new(b" \n");
        let err =
            var_or_file("REDIS_URL", lookup(&[("REDIS_URL_FILE", blank.path())])).unwrap_err();
        assert_eq!(err, format!("REDIS_URL_FILE={:?}: file is empty", blank.path()));
        // A directory cannot be read as a file.
        let dir = std::env::temp_dir();
        let err = var_or_file("REDIS_URL", lookup(&[("REDIS_URL_FILE", dir.to_str().unwrap())]))
            .unwrap_err();
        assert!(err.starts_with("REDIS_URL_FILE=") && err.contains("cannot read"), "{err}");
    }

    #[test]
    fn rejects_bad_port() {
        for p in ["abc", "0", "70000", "-1"] {
            assert!(cfg(&[("PORT", p)]).is_err(), "{p}");
        }
    }
}
