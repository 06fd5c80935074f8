//! `barge system boot`: after a host reboot (or anything that killed every shim), start again
//! every container whose restart policy says so: `always`, and `unless-stopped` unless the
//! user stopped it.

use crate::error::Result;
use crate::status::State;
use crate::Engine;

/// What boot did for one container.
#[derive(Debug)]
pub struct Booted {
    pub id: String,
    pub name: String,
    pub result: Result<()>,
}

impl Engine {
    pub fn boot(&self) -> Result<Vec<Booted>> {
        let mut out = Vec::new();
        for rec in self.db.all()? {
            if !rec.ready {
                continue;
            }
            let st = self.status(&rec);
            let stopped = self.paths.stop_marker(&rec.id).exists();
            if st.state != State::Exited || !rec.config.restart.restart_on_boot(stopped) {
                continue;
            }
            let result = self.start(&rec.id, None).map(drop);
            out.push(Booted {
                id: rec.id,
                name: rec.name,
                result,
            });
        }
        Ok(out)
    }
}
