//! `network prune`: remove the networks barge made that no container is configured on.

use super::store::Network;
use crate::error::Result;
use crate::Engine;

impl Engine {
    /// Remove every network barge made (not the default one, not foreign CNI lists) that no
    /// container is configured to join, unless `keep` spares it. Returns the names removed.
    pub fn network_prune(&self, keep: &dyn Fn(&Network) -> bool) -> Result<Vec<String>> {
        let used: Vec<String> = self
            .db
            .all()?
            .into_iter()
            .flat_map(|r| r.config.networks.into_iter().map(|e| e.network))
            .collect();
        let mut removed = Vec::new();
        for n in self.networks().list()? {
            if n.is_default() || n.meta.is_none() || used.iter().any(|u| u == n.name()) || keep(&n)
            {
                continue;
            }
            if self.network_remove(n.name()).is_ok() {
                removed.push(n.name().to_string());
            }
        }
        Ok(removed)
    }
}
