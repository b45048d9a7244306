//! systemd's readiness protocol (`Type=notify`): READY=1 once the stored instances are
//! restored and the API listens, STOPPING=1 when the daemon begins to stop. Outside systemd
//! (no NOTIFY_SOCKET) nothing is sent.
//!
//! NOTIFY_SOCKET stays in the environment (removing it needs `unsafe`), so code that starts
//! other programs (tracker scripts) must remove it from their environment, or they could
//! speak for havipd.

use sd_notify::NotifyState;
use tracing::warn;

/// The daemon is ready to serve; `status` is what `systemctl status` shows.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// The daemon is stopping.
pub fn stopping() {
    send(&[
        NotifyState::Stopping,
        NotifyState::Status("stopping: instances step down"),
    ]);
}

fn send(states: &[NotifyState<'_>]) {
    // Once at start and once at stop: no repetition to rate-limit.
    if let Err(e) = sd_notify::notify(states) {
        warn!(error = %e, "cannot tell systemd about havipd's state (NOTIFY_SOCKET); a Type=notify unit may time out");
    }
}
