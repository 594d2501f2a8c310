//! Connection settings from a `postgres://` URL.

use std::fmt;

use common::url;

/// Where and as whom to connect. `Debug`/`Display` never show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct PgConfig {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub dbname: String,
}

impl fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgConfig({self})")
    }
}

impl fmt::Display for PgConfig {
    /// `user@host:port/dbname`, safe to log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}:{}/{}", self.user, self.host, self.port, self.dbname)
    }
}

impl PgConfig {
    /// Parses `postgres[ql]://user[:password]@host[:port][/dbname][?sslmode=disable]`.
    /// User and password are percent-decoded; the database defaults to the user name.
    pub fn from_url(s: &str) -> Result<PgConfig, String> {
        let u = url::parse(s).map_err(|e| format!("invalid DATABASE_URL: {e}"))?;
        if u.scheme != "postgres" && u.scheme != "postgresql" {
            return Err("invalid DATABASE_URL: scheme must be postgres:// or postgresql://".into());
        }
        if let Some(mode) = u.query_param("sslmode")
            && !matches!(mode, "disable" | "allow" | "prefer")
        {
            return Err(format!("unsupported sslmode={mode}: this client speaks plaintext only"));
        }
        let user = u.user.clone().unwrap_or_else(|| "postgres".to_string());
        let dbname = if u.path.is_empty() { user.clone() } else { u.path.clone() };
        Ok(PgConfig {
            host: u.host,
            port: u.port.unwrap_or(5432),
            user,
            password: u.password.unwrap_or_default(),
            dbname,
        })
    }

    /// The URL form, percent-encoding user, password and database.
    pub fn to_url(&self) -> String {
        let enc = url::percent_encode;
        let host =
            if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        format!(
            "postgres://{}:{}@{host}:{}/{}",
            enc(&self.user),
            enc(&self.password),
            self.port,
            enc(&self.dbname)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_url_with_encoded_password() {
        let c =
            PgConfig::from_url("postgres://app:p%40ss%3Aw%2Frd%25@db:5433/appdb?sslmode=disable")
                .unwrap();
        assert_eq!(c.user, "app");
        assert_eq!(c.password, "p@ss:w/rd%");
        assert_eq!((c.host.as_str(), c.port, c.dbname.as_str()), ("db", 5433, "appdb"));
        assert_eq!(c.to_string(), "app@db:5433/appdb");
        assert!(!format!("{c:?}").contains("p@ss"));
    }

    #[test]
    fn defaults_and_round_trip() {
        let c = PgConfig::from_url("postgresql://bob@localhost").unwrap();
        assert_eq!((c.port, c.dbname.as_str(), c.password.as_str()), (5432, "bob", ""));
        let c = PgConfig::from_url("postgres://u:x%20y%2F%3F%23@[::1]:6000/my%20db").unwrap();
        assert_eq!(PgConfig::from_url(&c.to_url()).unwrap(), c);
    }

    #[test]
    fn rejects_bad_urls_without_leaking() {
        for bad in [
            "mysql://u:hunter2@h/d",
            "postgres://u:hunter2@h/d?sslmode=require",
            "postgres://u:hunter2@h:0/d",
            "u:hunter2@h/d",
        ] {
            let e = PgConfig::from_url(bad).unwrap_err();
            assert!(!e.contains("hunter2"), "{e}");
        }
    }
}
