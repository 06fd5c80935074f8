//! `barge images` / `barge image ls`: a table like docker's, or `--format json` (one object per
//! line, docker's field names).

use anyhow::Result;
use barge_image::reference::{familiar, split_stored};

use super::Ctx;
use crate::format;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only show image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate IDs.
    #[arg(long)]
    pub no_trunc: bool,
    /// Show digests.
    #[arg(long)]
    pub digests: bool,
    /// Output format: `table` or `json`.
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Only images of this repository (optionally REPOSITORY:TAG).
    pub reference: Option<String>,
}

struct Row {
    repo: String,
    tag: String,
    digest: String,
    id: String,
    created: Option<i64>,
    created_at: String,
    size: u64,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    if args.format != "table" && args.format != "json" {
        anyhow::bail!("--format {:?}: expected table or json", args.format);
    }
    let store = ctx.store()?;
    let now = barge_image::meta::now();
    let mut rows = Vec::new();
    for rec in store.db.images()? {
        let (repo, tag, digest) = split_stored(&rec.name);
        let repo = familiar(repo).to_string();
        if let Some(filter) = &args.reference {
            let (frepo, ftag) = match filter.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
                Some((r, t)) => (r, Some(t)),
                None => (filter.as_str(), None),
            };
            if repo != frepo && split_stored(&rec.name).0 != frepo || ftag.is_some_and(|t| t != tag)
            {
                continue;
            }
        }
        let (created_at, created, size) = match store.image(&rec) {
            Ok(img) => {
                let c = img.config.created().clone().unwrap_or_default();
                (
                    c.clone(),
                    barge_engine::docker::time::parse_rfc3339(&c),
                    store.size(&img)?,
                )
            }
            Err(_) => (String::new(), None, 0),
        };
        let id = if args.no_trunc {
            rec.config.to_string()
        } else {
            rec.config.short().to_string()
        };
        let digest = digest.map_or_else(|| rec.target.to_string(), str::to_string);
        rows.push(Row {
            repo,
            tag: tag.to_string(),
            digest,
            id,
            created,
            created_at,
            size,
        });
    }
    if args.quiet {
        let mut seen = std::collections::HashSet::new();
        for r in rows {
            if seen.insert(r.id.clone()) {
                println!("{}", r.id);
            }
        }
        return Ok(());
    }
    if args.format == "json" {
        for r in rows {
            let obj = serde_json::json!({
                "Containers": "N/A",
                "CreatedAt": r.created_at,
                "CreatedSince": r.created.map(|c| format::ago(c, now)).unwrap_or_default(),
                "Digest": r.digest,
                "ID": r.id,
                "Repository": r.repo,
                "SharedSize": "N/A",
                "Size": format::size(r.size),
                "Tag": r.tag,
                "UniqueSize": "N/A",
                "VirtualSize": format::size(r.size),
            });
            println!("{obj}");
        }
        return Ok(());
    }
    let mut table: Vec<Vec<String>> = vec![];
    let mut header = vec!["REPOSITORY", "TAG"];
    if args.digests {
        header.push("DIGEST");
    }
    header.extend(["IMAGE ID", "CREATED", "SIZE"]);
    table.push(header.iter().map(|s| s.to_string()).collect());
    for r in rows {
        let mut row = vec![r.repo, r.tag];
        if args.digests {
            row.push(r.digest);
        }
        row.push(r.id);
        row.push(
            r.created
                .map(|c| format::ago(c, now))
                .unwrap_or_else(|| "N/A".into()),
        );
        row.push(format::size(r.size));
        table.push(row);
    }
    print_table(&table);
    Ok(())
}

/// Columns padded to their widest cell plus three spaces, as docker's tabwriter does.
pub fn print_table(rows: &[Vec<String>]) {
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}   ", w = widths[c]));
            }
        }
        println!("{}", line.trim_end());
    }
}
