//! `barge ps`: docker's columns, `-a`, `-q`, `--filter`, `--no-trunc`, `--format json`.

use anyhow::{bail, Result};
use barge_engine::db::ContainerRecord;
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

/// docker's STATUS column.
pub fn status_text(st: &Status) -> String {
    let now = format::now();
    let since = |t: &Option<String>| {
        t.as_deref()
            .and_then(format::parse_rfc3339)
            .map(|t| now - t)
            .unwrap_or(0)
    };
    match st.state {
        State::Created => "Created".into(),
        State::Running if st.shim_lost => format!(
            "Up {} (shim lost)",
            format::human_duration(since(&st.started_at))
        ),
        State::Running => format!("Up {}", format::human_duration(since(&st.started_at))),
        State::Paused => format!(
            "Up {} (Paused)",
            format::human_duration(since(&st.started_at))
        ),
        State::Restarting => format!(
            "Restarting ({}) {} ago",
            st.exit_code.unwrap_or(0),
            format::human_duration(since(&st.finished_at))
        ),
        State::Exited => format!(
            "Exited ({}) {} ago",
            st.exit_code.unwrap_or(0),
            format::human_duration(since(&st.finished_at))
        ),
        State::Dead => "Dead".into(),
    }
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

/// docker ps's PORTS: published ports of the running container, exposed ones otherwise.
fn ports_text(engine: &barge_engine::Engine, rec: &ContainerRecord) -> String {
    let exposed =
        barge_engine::network::ports::parse_exposed(&rec.config.exposed).unwrap_or_default();
    let bindings: Vec<_> = engine
        .attachments(&rec.id)
        .into_iter()
        .flat_map(|a| a.ports)
        .collect();
    barge_engine::network::ports::format_ps(&bindings, &exposed)
}

pub fn command_text(rec: &ContainerRecord) -> String {
    rec.config
        .entrypoint
        .iter()
        .chain(&rec.config.cmd)
        .cloned()
        .collect::<Vec<_>>()
        .join(" ")
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
                    "Status": status_text(st),
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
                    status_text(st),
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
