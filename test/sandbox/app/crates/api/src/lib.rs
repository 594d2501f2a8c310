//! The `api` fixture service: everything `site`/`saas` do, plus dependency checks in `/health`
//! (PostgreSQL, Redis), `GET /db/counts`, and `api migrate`.

pub mod app;
pub mod migrate;
pub mod pg;
pub mod redis;
