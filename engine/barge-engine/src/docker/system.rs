//! `GET /system/df`: docker's disk usage document.

use serde_json::{json, Value};

use crate::disk::DiskUsage;

use super::image::display_name;

/// docker's `/system/df` reply from the engine's disk usage.
pub fn df_json(du: &DiskUsage) -> Value {
    let images: Vec<Value> = du
        .images
        .iter()
        .map(|i| {
            let tags: Vec<String> = i
                .names
                .iter()
                .filter(|n| !n.contains('@') && !n.starts_with("<none>"))
                .map(|n| display_name(n))
                .collect();
            json!({
                "Id": i.id, "ParentId": "", "RepoTags": tags, "RepoDigests": [],
                "Created": i.created, "Size": i.size, "SharedSize": 0, "VirtualSize": i.size,
                "Labels": {}, "Containers": i.containers,
            })
        })
        .collect();
    let containers: Vec<Value> = du
        .containers
        .iter()
        .map(|c| {
            json!({
                "Id": c.id, "Names": [format!("/{}", c.name)], "Image": c.image,
                "SizeRw": c.size_rw, "SizeRootFs": 0, "State": c.state,
            })
        })
        .collect();
    let volumes: Vec<Value> = du
        .volumes
        .iter()
        .map(|v| {
            json!({
                "Name": v.name, "Driver": "local", "Scope": "local",
                "UsageData": {"Size": v.size, "RefCount": v.ref_count},
            })
        })
        .collect();
    json!({
        "LayersSize": du.images_row().size,
        "Images": images,
        "Containers": containers,
        "Volumes": volumes,
        "BuildCache": [],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::{ImageUsage, VolumeUsage};

    #[test]
    fn df_document() {
        let du = DiskUsage {
            images: vec![ImageUsage {
                id: "sha256:ab".into(),
                names: vec!["docker.io/library/busybox:latest".into()],
                size: 100,
                containers: 2,
                created: 5,
            }],
            volumes: vec![VolumeUsage {
                name: "v".into(),
                size: 7,
                ref_count: 1,
            }],
            ..Default::default()
        };
        let v = df_json(&du);
        assert_eq!(v["LayersSize"], 100);
        assert_eq!(v["Images"][0]["RepoTags"][0], "busybox:latest");
        assert_eq!(v["Images"][0]["Containers"], 2);
        assert_eq!(v["Volumes"][0]["UsageData"]["RefCount"], 1);
        assert_eq!(v["BuildCache"], json!([]));
    }
}
