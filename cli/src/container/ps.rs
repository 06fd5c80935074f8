//! `barge ps`: docker's columns, `-a`, `-q`, `--filter`, `--no-trunc`, `--format json`.

use anyhow::{bail, Result};
use barge_engine::db::ContainerRecord;
use barge_engine::docker::list::{command_text, ports_text, status_text};
use barge_engine::status::{State, Status};
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
    /// Filter output (status=, name=, id=, label=KEY[=VALUE], ancestor=, exited=).
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Don't truncate output.
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Output format: table (default) or json (one object per line).
    #[arg(long)]
    pub format: Option<String>,
}

fn matches(f: &str, rec: &ContainerRecord, st: &Status) -> Result<bool> {
    let Some((k, v)) = f.split_once('=') else {
        bail!("--filter {f:?}: expected KEY=VALUE");
    };
    Ok(match k {
        "status" => {
            if ![
                "created",
                "restarting",
                "running",
                "removing",
                "paused",
                "exited",
                "dead",
            ]
            .contains(&v)
            {
                bail!("--filter {f:?}: invalid status");
            }
            st.state.as_str() == v
        }
        "name" => rec.name.contains(v),
        "id" => rec.id.starts_with(v),
        "label" => match v.split_once('=') {
            Some((lk, lv)) => rec.config.labels.get(lk).map(String::as_str) == Some(lv),
            None => rec.config.labels.contains_key(v),
        },
        "ancestor" => rec.config.image == v || rec.config.image_id.contains(v),
        "exited" => {
            st.state == State::Exited && st.exit_code.map(|c| c.to_string()) == Some(v.to_string())
        }
        _ => bail!("--filter {f:?}: unknown filter (status, name, id, label, ancestor, exited)"),
    })
}

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let engine = ctx.engine()?;
    let all = args.all
        || args
            .filter
            .iter()
            .any(|f| f.starts_with("status=") || f.starts_with("exited="));
    let mut rows = Vec::new();
    for (rec, st) in engine.list(all)? {
        let mut keep = true;
        for f in &args.filter {
            keep &= matches(f, &rec, &st)?;
        }
        if keep {
            rows.push((rec, st));
        }
    }
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
