//! `update`: change the resource limits of a live container, and remember them in its state.

use oci_spec::runtime::LinuxResources;
use serde_json::Value;

use crate::cgroups::resources::{validate, Phase};
use crate::error::{Error, Result};
use crate::state::Store;

/// Apply `resources` to container `id` (created, running or paused). Fields left out keep
/// their current values. Device rules are not changed by `update`, as in runc.
pub fn update(store: &Store, id: &str, resources: &LinuxResources) -> Result<()> {
    validate(resources)?;
    let _lock = store.lock(id)?;
    let (mut st, _) = store.load_live(id, "update")?;
    st.cgroup.apply(resources, &[], Phase::Update)?;
    st.spec = merged(&st.spec, resources)?;
    store.save(&st)
}

/// The spec with `linux.resources` deep-merged with the update (objects merged key by key,
/// everything else replaced).
fn merged(
    spec: &oci_spec::runtime::Spec,
    update: &LinuxResources,
) -> Result<oci_spec::runtime::Spec> {
    // Through JSON text: the serializers and parsers used for state files anyway, rather than
    // new (large) Value-based instantiations for the spec types.
    let enc = |e: serde_json::Error| Error::Container(format!("encode resources: {e}"));
    let to_doc = |text: String| serde_json::from_str::<Value>(&text).map_err(enc);
    let mut doc = to_doc(serde_json::to_string(spec).map_err(enc)?)?;
    let new = to_doc(serde_json::to_string(update).map_err(enc)?)?;
    if let Some(linux) = doc.get_mut("linux").and_then(Value::as_object_mut) {
        let slot = linux
            .entry("resources")
            .or_insert_with(|| Value::Object(Default::default()));
        merge(slot, new);
    }
    crate::spec::parse_json(&doc.to_string())
        .map_err(|e| Error::Container(format!("merge resources: {e}")))
}

fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_merges_into_the_saved_resources() {
        let spec: oci_spec::runtime::Spec = serde_json::from_str(
            r#"{"ociVersion":"1.0.2","linux":{"resources":{"memory":{"limit":100,
                "reservation":50},"pids":{"limit":10}}}}"#,
        )
        .unwrap();
        let upd: LinuxResources =
            serde_json::from_str(r#"{"memory":{"limit":200},"cpu":{"shares":512}}"#).unwrap();
        let out = merged(&spec, &upd).unwrap();
        let r = out.linux().as_ref().unwrap().resources().as_ref().unwrap();
        let m = r.memory().as_ref().unwrap();
        assert_eq!(m.limit(), Some(200));
        assert_eq!(m.reservation(), Some(50));
        assert_eq!(r.pids().as_ref().unwrap().limit(), 10);
        assert_eq!(r.cpu().as_ref().unwrap().shares(), Some(512));
    }
}
