//! `barge image inspect IMAGE...`: a JSON array shaped like docker's.

use anyhow::Result;
use barge_image::reference::{familiar, split_stored};

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let store = ctx.store()?;
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for name in &args.images {
        let rec = match store.resolve(name) {
            Ok(r) => r,
            Err(e) => {
                missing.push(format!("{name}: {e}"));
                continue;
            }
        };
        let img = store.image(&rec)?;
        let names = store.names_of(&rec.config)?;
        let tags: Vec<String> = names
            .iter()
            .filter(|n| !n.name.contains('@'))
            .map(|n| super::display_name(&n.name))
            .collect();
        let digests: Vec<String> = names
            .iter()
            .map(|n| format!("{}@{}", familiar(split_stored(&n.name).0), n.target))
            .filter(|d| !d.starts_with("<none>"))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let cfg = &img.config;
        let lower: Vec<String> = img
            .chain
            .iter()
            .rev()
            .filter_map(|c| store.db.snapshot(c.as_str()).ok().flatten())
            .map(|s| store.snapshots.fs_dir(s.id).display().to_string())
            .collect();
        out.push(serde_json::json!({
            "Id": rec.config.to_string(),
            "RepoTags": tags,
            "RepoDigests": digests,
            "Parent": "",
            "Comment": cfg.history().as_ref().and_then(|h| h.last()).and_then(|h| h.comment().clone()).unwrap_or_default(),
            "Created": cfg.created().clone().unwrap_or_default(),
            "Author": cfg.author().clone().unwrap_or_default(),
            "Config": cfg.config(),
            "Architecture": cfg.architecture().to_string(),
            "Variant": cfg.variant(),
            "Os": cfg.os().to_string(),
            "Size": store.size(&img)?,
            "GraphDriver": {"Name": "overlay", "Data": {"LowerDir": lower.join(":")}},
            "RootFS": {"Type": "layers", "Layers": img.diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
            "Metadata": {"LastTagTime": rec.tagged},
            "Descriptor": {"digest": rec.manifest.to_string(), "target": rec.target.to_string()},
        }));
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    if !missing.is_empty() {
        anyhow::bail!("{}", missing.join("; "));
    }
    Ok(())
}
