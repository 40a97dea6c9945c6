//! `orbatch mock-server`: serve the built-in mock until Ctrl-C. Exit 0, or 2 when it cannot
//! listen.

use super::error::CommandError;
use super::exit::Exit;
use crate::mock::MockConfig;

pub(super) async fn mock_server(config: MockConfig) -> Result<Exit, CommandError> {
    crate::mock::serve(config, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(Exit::Ok)
}
