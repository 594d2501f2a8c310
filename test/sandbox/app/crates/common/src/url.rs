//! Parsing of service URLs such as `postgres://user:p%40ss@db:5432/app?sslmode=disable` and
//! `redis://:secret@cache:6379/0`. Errors never contain the password.

use std::fmt;

/// A parsed `scheme://[user[:password]@]host[:port][/path][?query]` URL, percent-decoded.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceUrl {
    pub scheme: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// The path without its leading `/`, percent-decoded (e.g. the database name).
    pub path: String,
    pub query: Vec<(String, String)>,
}

impl fmt::Debug for ServiceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceUrl")
            .field("scheme", &self.scheme)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("path", &self.path)
            .field("query", &self.query)
            .finish()
    }
}

impl ServiceUrl {
    pub fn query_param(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Parses a service URL. The userinfo ends at the last `@` of the authority, so an unencoded
/// `@` in a password still works; `/`, `?` and `#` in a password must be percent-encoded.
pub fn parse(url: &str) -> Result<ServiceUrl, String> {
    let (scheme, rest) = url.split_once("://").ok_or("URL must look like scheme://host")?;
    if scheme.is_empty() || !scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return Err("URL has an invalid scheme".into());
    }
    let rest = rest.split('#').next().unwrap_or_default();
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(auth_end);
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        None => (None, None),
        Some(ui) => {
            let (u, p) = match ui.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (ui, None),
            };
            let u = percent_decode(u).map_err(|e| format!("URL user: {e}"))?;
            let p = match p {
                Some(p) => Some(percent_decode(p).map_err(|e| format!("URL password: {e}"))?),
                None => None,
            };
            ((!u.is_empty()).then_some(u), p)
        }
    };
    let (host, port) = split_host_port(hostport)?;
    let (path, query) = match tail.split_once('?') {
        Some((p, q)) => (p, q),
        None => (tail, ""),
    };
    let path = percent_decode(path.strip_prefix('/').unwrap_or(path))
        .map_err(|e| format!("URL path: {e}"))?;
    let mut params = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_decode(k).map_err(|e| format!("URL query: {e}"))?;
        let v = percent_decode(v).map_err(|e| format!("URL query: {e}"))?;
        params.push((k, v));
    }
    Ok(ServiceUrl {
        scheme: scheme.to_ascii_lowercase(),
        user,
        password,
        host,
        port,
        path,
        query: params,
    })
}

fn split_host_port(hostport: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("URL has an unterminated IPv6 address")?;
        match after {
            "" => (h, None),
            p => (h, Some(p.strip_prefix(':').ok_or("URL has garbage after the IPv6 address")?)),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err("URL has no host".into());
    }
    let port = match port {
        None | Some("") => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => return Err(format!("URL has an invalid port {p:?}")),
        },
    };
    Ok((percent_decode(host).map_err(|e| format!("URL host: {e}"))?, port))
}

/// Decodes `%XX` escapes (`+` is left alone: this is not form encoding). The result must be UTF-8.
pub fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or("truncated percent-escape")?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return Err("invalid percent-escape".into());
            }
            out.push((hex_value(hex[0]) << 4) | hex_value(hex[1]));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "percent-escapes do not decode to UTF-8".to_string())
}

fn hex_value(d: u8) -> u8 {
    match d {
        b'0'..=b'9' => d - b'0',
        b'a'..=b'f' => d - b'a' + 10,
        _ => d - b'A' + 10,
    }
}

/// Percent-encodes everything except RFC 3986 unreserved characters.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_postgres_url() {
        let u = parse("postgres://app:p%40ss%3Aw%2Frd@db.internal:5433/app_db?sslmode=disable")
            .unwrap();
        assert_eq!(u.scheme, "postgres");
        assert_eq!(u.user.as_deref(), Some("app"));
        assert_eq!(u.password.as_deref(), Some("p@ss:w/rd"));
        assert_eq!(u.host, "db.internal");
        assert_eq!(u.port, Some(5433));
        assert_eq!(u.path, "app_db");
        assert_eq!(u.query_param("sslmode"), Some("disable"));
    }

    #[test]
    fn parses_redis_forms() {
        let u = parse("redis://:s3cr%23t@cache:6379/2").unwrap();
        assert_eq!((u.user, u.password.as_deref(), u.path.as_str()), (None, Some("s3cr#t"), "2"));
        let u = parse("redis://cache").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.password), ("cache", None, None));
        let u = parse("redis://default:pw@[::1]:6380").unwrap();
        assert_eq!(
            (u.user.as_deref(), u.host.as_str(), u.port),
            (Some("default"), "::1", Some(6380))
        );
    }

    #[test]
    fn raw_at_sign_in_password_uses_last_at() {
        let u = parse("postgres://u:a@b@h/d").unwrap();
        assert_eq!((u.password.as_deref(), u.host.as_str()), (Some("a@b"), "h"));
    }

    #[test]
    fn errors_never_echo_the_password() {
        for bad in [
            "postgres://u:hunter2%zz@h/d",
            "postgres://u:hunter2@h:99999/d",
            "postgres://u:hunter2@:5432/d",
            "hunter2",
            "postgres://u:hunter2%C3@h/d",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(!e.contains("hunter2"), "{bad} -> {e}");
        }
        let debug = format!("{:?}", parse("postgres://u:hunter2@h/d").unwrap());
        assert!(!debug.contains("hunter2") && debug.contains("***"));
    }

    #[test]
    fn percent_round_trip() {
        let raw = "p@ss w0rd:/?#[]%+é";
        let enc = percent_encode(raw);
        assert!(enc.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
        assert_eq!(percent_decode(&enc).unwrap(), raw);
        assert_eq!(percent_decode("a+b").unwrap(), "a+b");
        assert!(percent_decode("%4").is_err());
        assert!(percent_decode("%+1").is_err());
        assert_eq!(percent_decode("%41%6a").unwrap(), "Aj");
    }
}
