//! `api migrate`: applies `*.sql` files in order, each in its own transaction together with its
//! `schema_migrations` row, so a failing file leaves nothing behind.

pub mod plan;

use std::collections::HashSet;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::pg::{Client, PgConfig, PgError, quote_literal};
use common::config::var_or_file;
use plan::{Command, Migration, Options};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Serialises concurrent `migrate` runs (e.g. two replicas starting at once).
const LOCK_KEY: i64 = 7_262_013_001;

pub const USAGE: &str = "       api migrate [--dir DIR] [--status]\n\
\x20                            apply pending migrations from DIR (default $MIGRATIONS_DIR or\n\
\x20                            /migrations) to $DATABASE_URL (or the file $DATABASE_URL_FILE\n\
\x20                            names); --status lists applied/pending\n";

/// Entry point for `api migrate ...`; exit 0 on success, 1 on any error, 2 on bad arguments.
pub fn main(args: &[String]) -> ExitCode {
    let opts = match plan::parse_args(args, std::env::var("MIGRATIONS_DIR").ok()) {
        Ok(Command::Run(o)) => o,
        Ok(Command::Help) => {
            print!("usage:\n{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("api migrate: {e}\nusage:\n{USAGE}");
            return ExitCode::from(common::cli::EXIT_USAGE);
        }
    };
    let cfg = match database_config(|k| std::env::var(k).ok()) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("api migrate: error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match run(&cfg, &opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("api migrate: error: {}", common::escape::redact(&e, &cfg.password));
            ExitCode::FAILURE
        }
    }
}

/// The database from `DATABASE_URL`, or from the file `DATABASE_URL_FILE` names.
fn database_config(get: impl Fn(&str) -> Option<String>) -> Result<PgConfig, String> {
    match var_or_file("DATABASE_URL", get)? {
        Some(url) => PgConfig::from_url(&url),
        None => Err("DATABASE_URL is not set (nor DATABASE_URL_FILE)".to_string()),
    }
}

fn run(cfg: &PgConfig, opts: &Options) -> Result<(), String> {
    let migrations = plan::discover(&opts.dir)?;
    let mut db = Client::connect(cfg, CONNECT_TIMEOUT)
        .map_err(|e| format!("cannot connect to database {cfg}: {e}"))?;
    if opts.status { status(&mut db, opts, &migrations) } else { apply(&mut db, opts, &migrations) }
}

fn db_err(what: &str) -> impl Fn(PgError) -> String + '_ {
    move |e| format!("{what}: {e}")
}

fn applied_versions(db: &mut Client) -> Result<Vec<(String, String)>, String> {
    let rows = db
        .simple_query("SELECT version, applied_at::text FROM schema_migrations ORDER BY version")
        .map_err(db_err("reading schema_migrations"))?;
    Ok(rows
        .into_iter()
        .flat_map(|r| r.rows)
        .map(|row| {
            let mut cols = row.into_iter().map(Option::unwrap_or_default);
            (cols.next().unwrap_or_default(), cols.next().unwrap_or_default())
        })
        .collect())
}

fn apply(db: &mut Client, opts: &Options, migrations: &[Migration]) -> Result<(), String> {
    db.simple_query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (\
         version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .map_err(db_err("creating schema_migrations"))?;
    db.simple_query(&format!("SELECT pg_advisory_lock({LOCK_KEY})"))
        .map_err(db_err("taking the migration lock"))?;
    let applied: HashSet<String> = applied_versions(db)?.into_iter().map(|(v, _)| v).collect();
    println!("migrations in {}: {} file(s)", opts.dir.display(), migrations.len());
    let pending = plan::pending(migrations, &applied);
    for m in migrations.iter().filter(|m| applied.contains(&m.version)) {
        println!("already applied {}", m.version);
    }
    for v in plan::unknown_applied(migrations, &applied) {
        println!("note: {v} is recorded as applied but has no file in this directory");
    }
    for m in &pending {
        let start = Instant::now();
        apply_one(db, m)?;
        println!("applied {} ({} ms)", m.version, start.elapsed().as_millis());
    }
    println!(
        "done: {} applied, {} already applied",
        pending.len(),
        migrations.len() - pending.len()
    );
    Ok(())
}

fn apply_one(db: &mut Client, m: &Migration) -> Result<(), String> {
    let file = m.file_name();
    let sql = std::fs::read_to_string(&m.path)
        .map_err(|e| format!("cannot read {}: {e}", m.path.display()))?;
    db.simple_query("BEGIN").map_err(db_err("BEGIN"))?;
    let result = db.simple_query(&sql).map_err(|e| match e {
        PgError::Server(se) => {
            let line = se
                .position
                .map(|p| format!(", line {}", plan::line_of(&sql, p)))
                .unwrap_or_default();
            format!("migration {file} failed and was rolled back: {se}{line}")
        }
        other => format!("migration {file} failed: {other}"),
    });
    let result = result.and_then(|_| {
        if db.transaction_status() == b'T' {
            Ok(())
        } else {
            Err(format!(
                "migration {file} ended the transaction itself (remove its BEGIN/COMMIT/ROLLBACK)"
            ))
        }
    });
    let result = result.and_then(|_| {
        let insert = format!(
            "INSERT INTO schema_migrations (version) VALUES ({})",
            quote_literal(&m.version)
        );
        db.simple_query(&insert).map(drop).map_err(db_err(&format!("recording {file}")))
    });
    match result {
        Ok(()) => {
            db.simple_query("COMMIT").map(drop).map_err(db_err(&format!("committing {file}")))
        }
        Err(e) => {
            let _ = db.simple_query("ROLLBACK");
            Err(e)
        }
    }
}

fn status(db: &mut Client, opts: &Options, migrations: &[Migration]) -> Result<(), String> {
    let exists = db
        .query_value("SELECT to_regclass('schema_migrations') IS NOT NULL")
        .map_err(db_err("looking for schema_migrations"))?;
    let applied = if exists.as_deref() == Some("t") { applied_versions(db)? } else { Vec::new() };
    let set: HashSet<String> = applied.iter().map(|(v, _)| v.clone()).collect();
    println!("migrations in {}: {} file(s)", opts.dir.display(), migrations.len());
    for (version, at) in &applied {
        let note = if migrations.iter().any(|m| &m.version == version) {
            ""
        } else {
            "  (no file in this directory)"
        };
        println!("applied  {version}  {at}{note}");
    }
    let pending = plan::pending(migrations, &set);
    for m in &pending {
        println!("pending  {}", m.version);
    }
    println!("{} applied, {} pending", applied.len(), pending.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_config_from_variable_or_file() {
        let file = common::testing::temp_path("migrate-secret");
        std::fs::write(&file, "postgres://u:from-file@db:5433/app\n").unwrap();
        let path = file.to_str().unwrap().to_string();
        let cfg = database_config(|k| (k == "DATABASE_URL_FILE").then(|| path.clone()));
        std::fs::remove_file(&file).unwrap();
        let cfg = cfg.unwrap();
        assert_eq!((cfg.port, cfg.password.as_str()), (5433, "from-file"));
        let err = database_config(|_| None).unwrap_err();
        assert_eq!(err, "DATABASE_URL is not set (nor DATABASE_URL_FILE)");
    }

    #[test]
    fn database_config_unreadable_file_is_an_error() {
        let path = common::testing::temp_path("migrate-secret-missing");
        let path = path.to_str().unwrap().to_string();
        let err =
            database_config(|k| (k == "DATABASE_URL_FILE").then(|| path.clone())).unwrap_err();
        assert!(err.starts_with("DATABASE_URL_FILE=") && err.contains(&path), "{err}");
    }
}
