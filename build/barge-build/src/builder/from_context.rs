//! A build from a [`BuildContext`]: the Dockerfile found inside the context (or given as
//! text), parsed; the context's `.dockerignore` applied to `COPY`/`ADD`; inherited `ONBUILD`
//! triggers parsed with the same parser. What `barge build` and the API's `POST /build` share.

use barge_engine::Engine;

use super::progress::Sink;
use super::{build, BuildError, BuildOptions, Built, Context, Result};
use crate::ast::Instruction;
use crate::context::BuildContext;

/// The Dockerfile at `rel` inside the context (`Dockerfile` when None). The path is resolved
/// inside the context root: `..` or a symlink leading out is refused, as for a `COPY` source.
pub fn read_dockerfile(ctx: &BuildContext, rel: Option<&str>) -> Result<String> {
    let rel = rel.filter(|r| !r.is_empty()).unwrap_or("Dockerfile");
    let path = ctx
        .resolve(rel)
        .map_err(|e| BuildError::other(format!("the Dockerfile {rel}: {e}")))?;
    std::fs::read_to_string(&path).map_err(|e| {
        BuildError::other(if e.kind() == std::io::ErrorKind::NotFound {
            format!("cannot locate the Dockerfile: no {rel} in the build context")
        } else {
            format!("reading the Dockerfile {rel}: {e}")
        })
    })
}

/// Parse `dockerfile` and build it with `ctx` as the context, reporting to `sink`.
pub fn build_from_context(
    engine: &Engine,
    ctx: &BuildContext,
    dockerfile: &str,
    opts: &BuildOptions,
    sink: &mut dyn Sink,
) -> Result<Built> {
    let df = crate::parse::parse(dockerfile).map_err(|e| BuildError::other(e.to_string()))?;
    let matcher = ctx.matcher();
    let ignored = |rel: &str, is_dir: bool| matcher.is_excluded(rel, is_dir);
    let context = Context {
        dir: ctx.root(),
        ignored: &ignored,
    };
    build(engine, &df, &context, opts, sink, Some(&parse_trigger))
}

/// An inherited `ONBUILD` trigger's text as an instruction.
fn parse_trigger(text: &str) -> std::result::Result<Instruction, String> {
    crate::parse::parse(&format!("FROM scratch\n{text}\n"))
        .map_err(|e| e.to_string())
        .and_then(|d| {
            d.stages
                .into_iter()
                .next()
                .and_then(|s| s.instructions.into_iter().next())
                .ok_or_else(|| "empty trigger".to_string())
        })
}
