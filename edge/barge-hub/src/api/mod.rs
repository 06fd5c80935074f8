//! The fleet HTTP API (`--api`): Kubernetes-like JSON resources for `barge fleet` and the
//! dashboard.

// Stub until h17-api (hub-api owns this file) is merged.
pub async fn serve(
    _hub: std::sync::Arc<crate::hub::Hub>,
    _listener: tokio::net::TcpListener,
) -> anyhow::Result<()> {
    std::future::pending::<()>().await;
    Ok(())
}
