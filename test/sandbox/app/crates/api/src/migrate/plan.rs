//! Pure migration logic: arguments, discovery, ordering and selection.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

pub const DEFAULT_DIR: &str = "/migrations";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// File name without `.sql`, recorded in `schema_migrations.version`.
    pub version: String,
    pub path: PathBuf,
}

impl Migration {
    pub fn file_name(&self) -> String {
        format!("{}.sql", self.version)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub dir: PathBuf,
    /// `--status`: list applied and pending migrations, change nothing.
    pub status: bool,
}

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Run(Options),
    Help,
}

/// Parses `[--dir DIR | --dir=DIR] [--status]`; the directory defaults to `env_dir`
/// (`MIGRATIONS_DIR`) and then to `/migrations`.
pub fn parse_args(args: &[String], env_dir: Option<String>) -> Result<Command, String> {
    let mut dir = None;
    let mut status = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--status" => status = true,
            "--dir" => dir = Some(it.next().ok_or("--dir needs a directory")?.clone()),
            "-h" | "--help" => return Ok(Command::Help),
            a if a.starts_with("--dir=") => dir = Some(a["--dir=".len()..].to_string()),
            a => return Err(format!("unknown argument {a:?}")),
        }
    }
    let dir = dir.or(env_dir.filter(|d| !d.is_empty())).unwrap_or_else(|| DEFAULT_DIR.to_string());
    if dir.is_empty() {
        return Err("--dir needs a directory".into());
    }
    Ok(Command::Run(Options { dir: PathBuf::from(dir), status }))
}

/// Lists `*.sql` files (regular files, not hidden) in `dir`, ordered by file name.
pub fn discover(dir: &Path) -> Result<Vec<Migration>, String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read migrations directory {}: {e}", dir.display()))?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            return Err(format!("migration file name is not UTF-8: {}", path.display()));
        };
        let Some(version) = name.strip_suffix(".sql") else { continue };
        if version.is_empty() || name.starts_with('.') || !path.is_file() {
            continue;
        }
        found.push(Migration { version: version.to_string(), path });
    }
    Ok(sort(found))
}

/// Orders migrations by file name (byte order, so zero-pad the numbers).
pub fn sort(mut migrations: Vec<Migration>) -> Vec<Migration> {
    migrations.sort_by(|a, b| a.version.cmp(&b.version));
    migrations
}

/// The migrations that still have to run, in order.
pub fn pending<'a>(all: &'a [Migration], applied: &HashSet<String>) -> Vec<&'a Migration> {
    all.iter().filter(|m| !applied.contains(&m.version)).collect()
}

/// Applied versions with no file in the directory (e.g. from a newer release).
pub fn unknown_applied(all: &[Migration], applied: &HashSet<String>) -> Vec<String> {
    let known: HashSet<&str> = all.iter().map(|m| m.version.as_str()).collect();
    let mut out: Vec<String> =
        applied.iter().filter(|v| !known.contains(v.as_str())).cloned().collect();
    out.sort();
    out
}

/// 1-based line number of the 1-based character `position` in `sql` (as reported by the server).
pub fn line_of(sql: &str, position: usize) -> usize {
    1 + sql.chars().take(position.saturating_sub(1)).filter(|&c| c == '\n').count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(v: &str) -> Migration {
        Migration { version: v.into(), path: PathBuf::from(format!("/m/{v}.sql")) }
    }

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_arguments() {
        let run = |dir: &str, status| Ok(Command::Run(Options { dir: PathBuf::from(dir), status }));
        assert_eq!(parse_args(&args(&[]), None), run("/migrations", false));
        assert_eq!(parse_args(&args(&[]), Some("/env".into())), run("/env", false));
        assert_eq!(parse_args(&args(&["--dir", "/x"]), Some("/env".into())), run("/x", false));
        assert_eq!(parse_args(&args(&["--status", "--dir=/y"]), None), run("/y", true));
        assert_eq!(parse_args(&args(&["--help"]), None), Ok(Command::Help));
        assert!(parse_args(&args(&["--dir"]), None).is_err());
        assert!(parse_args(&args(&["--dir="]), None).is_err());
        assert!(parse_args(&args(&["--force"]), None).is_err());
    }

    #[test]
    fn orders_by_file_name_and_selects_pending() {
        let all = sort(vec![m("0010_later"), m("0002_add"), m("0001_init")]);
        let order: Vec<&str> = all.iter().map(|m| m.version.as_str()).collect();
        assert_eq!(order, ["0001_init", "0002_add", "0010_later"]);
        let applied: HashSet<String> = ["0001_init".to_string(), "0099_future".to_string()].into();
        let todo: Vec<&str> = pending(&all, &applied).iter().map(|m| m.version.as_str()).collect();
        assert_eq!(todo, ["0002_add", "0010_later"]);
        assert_eq!(unknown_applied(&all, &applied), ["0099_future"]);
        let everything: HashSet<String> = all.iter().map(|m| m.version.clone()).collect();
        assert!(pending(&all, &everything).is_empty());
    }

    #[test]
    fn discovers_only_sql_files() {
        let dir = std::env::temp_dir().join(format!("mig-discover-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("0003_dir.sql")).unwrap();
        for f in ["0002_b.sql", "0001_a.sql", "README.md", ".0000_hidden.sql", ".sql"] {
            std::fs::write(dir.join(f), "SELECT 1;").unwrap();
        }
        let found = discover(&dir).unwrap();
        let names: Vec<String> = found.iter().map(Migration::file_name).collect();
        assert_eq!(names, ["0001_a.sql", "0002_b.sql"]);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(discover(&dir).unwrap_err().contains("cannot read migrations directory"));
    }

    #[test]
    fn line_numbers_from_positions() {
        let sql = "CREATE TABLE a();\n-- é\nINSERT INTO b VALUES (1);";
        assert_eq!(line_of(sql, 1), 1);
        assert_eq!(line_of(sql, 31), 3);
        assert_eq!(line_of(sql, 0), 1);
    }
}
