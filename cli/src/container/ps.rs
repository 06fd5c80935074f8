//! `barge ps`: docker's columns, `-a`, `-q`, `--filter`, `--no-trunc`, `--format json`.

use anyhow::{bail, Result};
use barge_engine::docker::list::{command_text, ports_text, status_text};
use barge_engine::filters::Filters;
use barge_engine::list::ListOptions;
use serde_json::json;

use super::{short, Ctx};
use crate::format;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Filter output (status=, name=, id=, label=KEY[=VALUE], ancestor=, exited=, before=,
    /// since=, network=, volume=, publish=, expose=).
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Show the n last created containers (includes all states).
    #[arg(short = 'n', long)]
    pub last: Option<usize>,
    /// Show the latest created container (includes all states).
    #[arg(short, long)]
    pub latest: bool,
    /// Don't truncate output.
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Output format: table (default) or json (one object per line).
    #[arg(long)]
    pub format: Option<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let engine = ctx.engine()?;
    let opts = ListOptions {
        all: args.all,
        limit: args.last.unwrap_or(0),
        latest: args.latest,
        filters: Filters::parse_args(&args.filter)?,
    };
    let rows: Vec<_> = engine
        .list_containers(&opts)?
        .into_iter()
        .map(|l| (l.record, l.status))
        .collect();
    if args.quiet {
        for (rec, _) in &rows {
            println!(
                "{}",
                if args.no_trunc {
                    &rec.id
                } else {
                    short(&rec.id)
                }
            );
        }
        return Ok(0);
    }
    let now = format::now();
    match args.format.as_deref() {
        Some("json") | Some("{{json .}}") => {
            for (rec, st) in &rows {
                let v = json!({
                    "ID": if args.no_trunc { rec.id.clone() } else { short(&rec.id).to_string() },
                    "Image": rec.config.image,
                    "Command": command_text(rec),
                    "CreatedAt": rec.created_rfc3339(),
                    "RunningFor": format::ago(rec.created_secs(), now),
                    "State": st.state.as_str(),
                    "Status": status_text(st, now),
                    "Names": rec.name,
                    "Labels": rec.config.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
                    "Ports": ports_text(&engine, rec),
                    "Mounts": rec.config.mounts.iter().map(|m| m.source.clone()).collect::<Vec<_>>().join(","),
                });
                println!("{v}");
            }
        }
        None | Some("table") => {
            let mut table = vec![vec![
                "CONTAINER ID".to_string(),
                "IMAGE".into(),
                "COMMAND".into(),
                "CREATED".into(),
                "STATUS".into(),
                "PORTS".into(),
                "NAMES".into(),
            ]];
            for (rec, st) in &rows {
                let mut cmd = command_text(rec);
                if !args.no_trunc && cmd.chars().count() > 20 {
                    cmd = format!("{}…", cmd.chars().take(19).collect::<String>());
                }
                table.push(vec![
                    if args.no_trunc {
                        rec.id.clone()
                    } else {
                        short(&rec.id).to_string()
                    },
                    rec.config.image.clone(),
                    format!("\"{cmd}\""),
                    format::ago(rec.created_secs(), now),
                    status_text(st, now),
                    ports_text(&engine, rec),
                    rec.name.clone(),
                ]);
            }
            crate::image::list::print_table(&table);
        }
        Some(other) => bail!("--format {other:?}: use table or json"),
    }
    Ok(0)
}
