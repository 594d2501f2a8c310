//! Shared plumbing for the fixture services (`site`, `saas`, `api`): a tiny HTTP/1.1 server and
//! client, configuration from the environment, fault injection, SIGTERM handling, and the
//! std-only crypto (SHA-256, HMAC, PBKDF2, MD5, base64, SCRAM) the PostgreSQL client needs.

pub mod cli;
pub mod client;
pub mod config;
pub mod crypto;
pub mod escape;
pub mod fault;
pub mod http;
pub mod random;
pub mod response;
pub mod scram;
pub mod server;
pub mod service;
pub mod signal;
pub mod testing;
pub mod time;
pub mod url;
