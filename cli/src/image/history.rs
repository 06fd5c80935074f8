//! `barge image history [--no-trunc] NAME`: the image's history, newest first, as docker
//! shows it: the instruction that made each step, when, and the size of its layer (`0B` for
//! steps that changed only the config).

use anyhow::{Context, Result};

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Don't truncate the CREATED BY column.
    #[arg(long)]
    pub no_trunc: bool,
    /// IMAGE
    pub image: String,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let store = ctx.store()?;
    let rec = store.resolve(&args.image)?;
    let image = store.image(&rec)?;
    let raw: serde_json::Value = serde_json::from_slice(&store.content.read(&rec.config)?)
        .with_context(|| format!("image config {}", rec.config))?;
    let history = raw
        .get("history")
        .and_then(|h| h.as_array())
        .cloned()
        .unwrap_or_default();
    let mut layers = image.manifest.layers().iter();
    let mut rows = Vec::new();
    for h in &history {
        let empty = h
            .get("empty_layer")
            .and_then(|e| e.as_bool())
            .unwrap_or(false);
        let size = if empty {
            0
        } else {
            layers.next().map(|l| l.size()).unwrap_or(0)
        };
        let s = |k: &str| h.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
        let created = s("created");
        let ago = barge_util::time::parse_rfc3339(&created)
            .map(|(secs, _)| crate::format::ago(secs, crate::format::now()))
            .unwrap_or_else(|| "<missing>".into());
        let mut by = s("created_by").replace('\n', " ");
        if !args.no_trunc && by.chars().count() > 45 {
            by = format!("{}…", by.chars().take(44).collect::<String>());
        }
        rows.push((ago, by, crate::format::size(size), s("comment")));
    }
    println!(
        "{:<14}{:<24}{:<48}{:<10}COMMENT",
        "IMAGE", "CREATED", "CREATED BY", "SIZE"
    );
    for (i, (ago, by, size, comment)) in rows.into_iter().rev().enumerate() {
        let id = if i == 0 {
            rec.config.short().to_string()
        } else {
            "<missing>".into()
        };
        println!("{id:<14}{ago:<24}{by:<48}{size:<10}{comment}");
    }
    Ok(())
}
