//! `STATE_DIR/admin.conf`: `{"server": API URL, "ca": PEM or null, "token": admin token}`.

// Stub until h17-api (hub-api owns this file) is merged: the real one makes the admin
// token and writes admin.conf.
pub async fn ensure(_hub: &crate::hub::Hub) -> anyhow::Result<()> {
    Ok(())
}
