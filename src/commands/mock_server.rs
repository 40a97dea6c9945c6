//! `orbatch mock-server`: serve the built-in mock until Ctrl-C, SIGTERM or SIGHUP. Exit 0, or
//! 2 when it cannot listen.

use std::time::Duration;

use super::error::CommandError;
use super::exit::Exit;
use crate::mock::MockConfig;

/// How long a stopping mock waits for open connections (idle keep-alive ones included).
const DRAIN: Duration = Duration::from_secs(2);

pub(super) async fn mock_server(config: MockConfig) -> Result<Exit, CommandError> {
    let stop = tokio_util::sync::CancellationToken::new();
    let serving = crate::mock::serve(config, stop.clone().cancelled_owned());
    tokio::pin!(serving);
    tokio::select! {
        done = &mut serving => done?,
        () = stop_signal() => {
            stop.cancel();
            // Graceful, but a client holding an idle connection does not keep it up.
            if let Ok(done) = tokio::time::timeout(DRAIN, serving).await {
                done?;
            }
        }
    }
    Ok(Exit::Ok)
}

/// The first of SIGINT, SIGTERM and SIGHUP (a service manager, `timeout`, a closed terminal).
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = hup.recv() => {}
    }
}
