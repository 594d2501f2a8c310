//! Smoke test of the real `saas` binary (the shared behaviour is tested in depth by `site`).

use common::testing::ServerProcess;

#[test]
fn serves_health_and_stops_on_sigterm() {
    let mut s = ServerProcess::start(env!("CARGO_BIN_EXE_saas"), &[("APP_RELEASE", "2024.06.1")]);
    let h = s.get("/health");
    assert_eq!(h.status, 200);
    assert_eq!(h.text(), r#"{"status":"ok","service":"saas","release":"2024.06.1"}"#);
    assert_eq!(s.get("/version").text(), "2024.06.1\n");
    let (status, _) = s.terminate();
    assert_eq!(status.code(), Some(0));
}
