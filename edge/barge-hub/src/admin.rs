//! `STATE_DIR/admin.conf`: `{"server": API URL, "ca": PEM or null, "token": admin token}`.
