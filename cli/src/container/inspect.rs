//! `barge inspect`: docker's container JSON (the fields barge has), `--format '{{.Path}}'`.

use anyhow::{bail, Result};
use serde_json::Value;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Format with a template: {{.Field.Sub}} or {{json .Field}}.
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// A tiny subset of Go templates: `{{.A.B}}`, `{{json .A}}`, text around them.
pub fn render(template: &str, v: &Value) -> Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find("}}") else {
            bail!("--format {template:?}: unclosed {{{{");
        };
        let expr = rest[i + 2..i + j].trim();
        let (json_out, path) = match expr.strip_prefix("json ") {
            Some(p) => (true, p.trim()),
            None => (false, expr),
        };
        let Some(path) = path.strip_prefix('.') else {
            bail!("--format: unsupported expression {expr:?} (use .Field or json .Field)");
        };
        let mut cur = v;
        for part in path.split('.').filter(|p| !p.is_empty()) {
            cur = cur.get(part).unwrap_or(&Value::Null);
        }
        match (json_out, cur) {
            (true, x) => out.push_str(&x.to_string()),
            (false, Value::String(s)) => out.push_str(s),
            (false, Value::Null) => out.push_str("<no value>"),
            (false, x) => out.push_str(&x.to_string()),
        }
        rest = &rest[i + j + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let engine = ctx.engine()?;
    let mut docs = Vec::new();
    let mut code = 0;
    for n in &args.containers {
        match engine.db.find(n) {
            Ok(rec) => {
                let st = engine.status(&rec);
                docs.push(barge_engine::docker::container::inspect(&engine, &rec, &st));
            }
            Err(e) => {
                eprintln!("barge: {e}");
                code = 1;
            }
        }
    }
    match &args.format {
        Some(t) => {
            for d in &docs {
                println!("{}", render(t, d)?);
            }
        }
        None => println!("{}", serde_json::to_string_pretty(&Value::Array(docs))?),
    }
    Ok(code)
}
