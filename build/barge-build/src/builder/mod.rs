//! The image builder: walks a parsed Dockerfile's stages on barge's engine. Each stage starts
//! from an image in the store (pulled when missing, or always with `--pull`), `scratch`, or an
//! earlier stage; config instructions change the stage's image config; RUN, COPY, ADD and
//! WORKDIR change its filesystem and each make a layer (see [`layer`]), unless the cache
//! ([`cache`]) has the step already. The target stage becomes an image: OCI config with its
//! history and diffIDs, a manifest, and the names asked for.
//!
//! - [`state`]: a stage's config, layers, history, ARGs.
//! - [`run`]: RUN in a barge container.
//! - [`copy`]: COPY/ADD sources and their extraction into the stage.
//! - [`layer`]: snapshot diffs to layers.
//! - [`cache`]: the step cache.
//! - [`sweep`]: what killed builds left.
//! - [`config`]: the config instructions.
//! - [`emulation`]: qemu-user-static through binfmt_misc for other architectures' RUN steps.
//! - [`from_context`]: a build from a [`crate::context::BuildContext`] and Dockerfile text.
//! - [`progress`]: where the build reports its steps and RUN output.

pub mod cache;
pub mod config;
pub mod copy;
pub mod emulation;
pub mod error;
pub mod from_context;
pub mod layer;
pub mod progress;
pub mod run;
pub mod state;
pub mod sweep;
pub mod vars;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use barge_engine::Engine;
use barge_image::digest::Digest;
use barge_image::platform::Platform;
use serde_json::json;

use crate::ast::{Command, CopyArgs, Dockerfile, Inst, Instruction, Stage};
pub use error::{BuildError, Result};
use layer::LayerRef;
use state::StageState;

/// How `--progress` shows the build ([`progress::Terminal`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Progress {
    /// Every step and all RUN output, as lines.
    #[default]
    Plain,
    /// The same, with steps highlighted for a terminal.
    Tty,
}

/// What `barge build` was asked for.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// `-t` names.
    pub tags: Vec<String>,
    /// `--build-arg K=V`.
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    /// `--platform`; the host's when None.
    pub platform: Option<String>,
    pub no_cache: bool,
    pub pull: bool,
    /// `--label k=v` (on the final image).
    pub labels: Vec<(String, String)>,
    /// `SOURCE_DATE_EPOCH`: created times fixed to it, file mtimes clamped to it.
    pub source_date_epoch: Option<i64>,
    /// Credentials for pulling base images, each for its registry (`server`): docker's
    /// `X-Registry-Config`. Registries not listed use the stored logins.
    pub registry_auth: Vec<barge_engine::registry::proto::Credentials>,
}

/// The build's context directory and what `.dockerignore` excludes from it.
pub struct Context<'a> {
    pub dir: &'a Path,
    /// `(path relative to the context, is a directory)` → excluded.
    pub ignored: copy::Ignored<'a>,
}

/// Parses an inherited ONBUILD trigger's text into an instruction.
pub type TriggerParser<'a> = &'a dyn Fn(&str) -> std::result::Result<Instruction, String>;

/// What a build made and did.
#[derive(Debug, Clone)]
pub struct Built {
    /// The image ID (config digest).
    pub id: Digest,
    pub manifest: Digest,
    /// Steps found in the cache, and RUN steps executed.
    pub cache_hits: usize,
    pub runs: usize,
    pub warnings: Vec<String>,
}

/// One build: the engine, the options, the progress output, counters.
struct Builder<'a> {
    engine: &'a Engine,
    opts: &'a BuildOptions,
    ctx: &'a Context<'a>,
    out: &'a mut dyn progress::Sink,
    /// Steps in the stages to build (docker's `Step n/total`).
    total: usize,
    cache: cache::Cache,
    run_dir: PathBuf,
    platform: Platform,
    /// Global ARGs with their values (build args applied).
    globals: BTreeMap<String, String>,
    /// Build args some ARG declared.
    used_args: BTreeSet<String>,
    created: String,
    step: usize,
    hits: usize,
    runs: usize,
    parse_trigger: Option<TriggerParser<'a>>,
}

/// Build `df` with `ctx`; `parse_trigger` parses an inherited ONBUILD trigger (None: images
/// with triggers are refused).
pub fn build(
    engine: &Engine,
    df: &Dockerfile,
    ctx: &Context<'_>,
    opts: &BuildOptions,
    out: &mut dyn progress::Sink,
    parse_trigger: Option<TriggerParser<'_>>,
) -> Result<Built> {
    if df.stages.is_empty() {
        return Err(BuildError::other("the Dockerfile has no FROM"));
    }
    let platform = match &opts.platform {
        Some(p) => Platform::parse(p)?.normalized(),
        None => Platform::host(),
    };
    let target = match &opts.target {
        None => df.stages.len() - 1,
        Some(t) => df
            .stages
            .iter()
            .position(|s| s.name.as_deref() == Some(t.to_lowercase().as_str()))
            .ok_or_else(|| BuildError::other(format!("--target {t}: no stage named {t:?}")))?,
    };
    let run_dir = engine.paths.runroot.join("build");
    std::fs::create_dir_all(&run_dir)
        .map_err(|e| BuildError::other(format!("create {}: {e}", run_dir.display())))?;
    sweep::sweep(engine, &run_dir);
    let created = match opts.source_date_epoch {
        Some(e) => barge_util::time::rfc3339_secs(e),
        None => barge_util::time::now_rfc3339(),
    };
    let mut b = Builder {
        engine,
        opts,
        ctx,
        out,
        total: 0,
        cache: cache::Cache::open(engine.images.root()),
        run_dir,
        platform,
        globals: BTreeMap::new(),
        used_args: BTreeSet::new(),
        created,
        step: 0,
        hits: 0,
        runs: 0,
        parse_trigger,
    };
    for a in &df.global_args {
        b.used_args.insert(a.name.clone());
        let v = match opts.build_args.get(&a.name) {
            Some(v) => Some(v.clone()),
            None => match &a.default {
                Some(d) => Some(
                    vars::expand(d, &|n| b.globals.get(n).cloned()).map_err(BuildError::other)?,
                ),
                None => None,
            },
        };
        if let Some(v) = v {
            b.globals.insert(a.name.clone(), v);
        }
    }
    // Hold a store lease: garbage collection waits until the image is named.
    let _lease = engine.images.lease()?;
    let needed = b.needed(df, target)?;
    // RUN steps for another architecture need qemu-user-static: refused before anything runs
    // when it is not set up (a build without RUN needs no emulator).
    let runs_something = needed.iter().any(|i| {
        df.stages[*i]
            .instructions
            .iter()
            .any(|inst| matches!(inst.kind, Inst::Run { .. }))
    });
    if runs_something {
        emulation::check(&b.platform, Path::new(emulation::BINFMT_DIR))?;
    }
    b.total = needed
        .iter()
        .map(|i| 1 + df.stages[*i].instructions.len())
        .sum();
    let mut states: Vec<Option<StageState>> = vec![None; df.stages.len()];
    for (i, stage) in df.stages.iter().enumerate() {
        if !needed.contains(&i) {
            continue;
        }
        let st = b.stage(df, stage, &states)?;
        states[i] = Some(st);
    }
    let Some(mut fin) = states[target].take() else {
        return Err(BuildError::other("the target stage was not built"));
    };
    if !opts.labels.is_empty() {
        let labels = fin.config.entry("Labels").or_insert_with(|| json!({}));
        if let Some(m) = labels.as_object_mut() {
            for (k, v) in &opts.labels {
                m.insert(k.clone(), json!(v));
            }
        }
    }
    let mut warnings = Vec::new();
    let unused: Vec<&String> = opts
        .build_args
        .keys()
        .filter(|k| !b.used_args.contains(*k) && !PREDEFINED_ARGS.contains(&k.as_str()))
        .collect();
    if !unused.is_empty() {
        let w = format!(
            "[Warning] One or more build-args [{}] were not consumed",
            unused
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        );
        b.out.note(&w);
        warnings.push(w);
    }
    let (id, manifest) = b.commit(&fin)?;
    Ok(Built {
        id,
        manifest,
        cache_hits: b.hits,
        runs: b.runs,
        warnings,
    })
}

/// Build args docker accepts without an ARG (the proxy variables).
const PREDEFINED_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

impl Builder<'_> {
    /// The stages the target needs (itself, its FROM stage, its COPY --from stages…).
    fn needed(&self, df: &Dockerfile, target: usize) -> Result<BTreeSet<usize>> {
        let mut needed = BTreeSet::new();
        let mut todo = vec![target];
        while let Some(i) = todo.pop() {
            if !needed.insert(i) {
                continue;
            }
            let stage = &df.stages[i];
            let base = self.expand_global(&stage.base, stage.line)?;
            if let Some(j) = stage_ref(df, &base, i) {
                todo.push(j);
            }
            for inst in &stage.instructions {
                if let Inst::Copy(c) | Inst::Add(c) = &inst.kind {
                    if let Some(f) = &c.from {
                        if let Some(j) = stage_ref(df, f, i) {
                            todo.push(j);
                        }
                    }
                }
            }
        }
        Ok(needed)
    }

    /// Stop between steps when the sink says nobody waits for the result any more.
    fn check_cancelled(&self) -> Result<()> {
        if self.out.cancelled() {
            return Err(BuildError::other(
                "the build was cancelled: the client went away",
            ));
        }
        Ok(())
    }

    fn expand_global(&self, word: &str, line: usize) -> Result<String> {
        vars::expand(word, &|n| self.globals.get(n).cloned()).map_err(|e| BuildError::at(line, e))
    }

    /// Build one stage.
    fn stage(
        &mut self,
        df: &Dockerfile,
        stage: &Stage,
        states: &[Option<StageState>],
    ) -> Result<StageState> {
        let label = stage
            .name
            .clone()
            .unwrap_or_else(|| format!("stage-{}", stage.index));
        let base = self.expand_global(&stage.base, stage.line)?;
        self.check_cancelled()?;
        self.step += 1;
        self.out
            .step(self.step, self.total, &label, &format!("FROM {base}"));
        let mut st = if base.eq_ignore_ascii_case("scratch") {
            StageState::scratch(&self.platform)
        } else if let Some(j) = stage_ref(df, &base, stage.index) {
            let mut s = states[j]
                .clone()
                .ok_or_else(|| BuildError::at(stage.line, format!("stage {base} not built")))?;
            s.args.clear();
            s.cmd_set = false;
            s.triggers.clear();
            s
        } else {
            let platform = match &stage.platform {
                Some(p) => Some(self.expand_global(p, stage.line)?),
                None => self.opts.platform.clone(),
            };
            let rec = self
                .base_image(&base, platform)
                .map_err(|e| e.on_line(stage.line))?;
            StageState::from_image(&self.engine.images, &rec).map_err(|e| e.on_line(stage.line))?
        };
        let triggers = std::mem::take(&mut st.triggers);
        for t in triggers {
            let Some(parse) = self.parse_trigger else {
                return Err(BuildError::at(
                    stage.line,
                    format!("{base} has ONBUILD triggers and this builder cannot parse them"),
                ));
            };
            let mut inst = parse(&t).map_err(|e| {
                BuildError::at(stage.line, format!("ONBUILD trigger {t:?} of {base}: {e}"))
            })?;
            inst.line = stage.line;
            self.instruction(df, &label, &mut st, &inst, states)?;
        }
        for inst in &stage.instructions {
            self.instruction(df, &label, &mut st, inst, states)?;
        }
        Ok(st)
    }

    /// The base image `name` from the store, pulled when missing (or always with --pull).
    fn base_image(
        &mut self,
        name: &str,
        platform: Option<String>,
    ) -> Result<barge_image::meta::ImageRecord> {
        let have = self.engine.images.resolve(name).ok();
        if have.is_none() || self.opts.pull {
            self.out.note(&format!("pulling {name}"));
            let mut po = barge_engine::pull::PullOptions {
                platform,
                auth: self.credentials_for(name),
                ..Default::default()
            };
            if let Err(e) = self.engine.pull(name, &mut po) {
                if have.is_none() || !self.opts.pull {
                    return Err(BuildError::other(format!("FROM {name}: {e}")));
                }
                return Err(BuildError::other(format!("FROM {name} (--pull): {e}")));
            }
        }
        Ok(self.engine.images.resolve(name)?)
    }

    /// The `registry_auth` entry for the registry of image `name`, if any.
    fn credentials_for(&self, name: &str) -> Option<barge_engine::registry::proto::Credentials> {
        let r = barge_image::reference::ImageRef::parse(name).ok()?;
        let host = registry_host(r.registry());
        self.opts
            .registry_auth
            .iter()
            .find(|c| registry_host(&c.server) == host)
            .cloned()
    }

    /// Run one instruction on the stage.
    fn instruction(
        &mut self,
        df: &Dockerfile,
        label: &str,
        st: &mut StageState,
        inst: &Instruction,
        states: &[Option<StageState>],
    ) -> Result<()> {
        self.check_cancelled()?;
        self.step += 1;
        let n = self.step;
        self.out.step(n, self.total, label, &inst.original);
        let started = Instant::now();
        let line = inst.line;
        let fs_change = match &inst.kind {
            Inst::Arg(decls) => {
                for d in decls {
                    self.used_args.insert(d.name.clone());
                    let v = match self.opts.build_args.get(&d.name) {
                        Some(v) => Some(v.clone()),
                        None => match &d.default {
                            Some(def) => Some(
                                vars::expand(def, &|n| st.var(n))
                                    .map_err(|e| BuildError::at(line, e))?,
                            ),
                            None => self
                                .globals
                                .get(&d.name)
                                .cloned()
                                .or_else(|| self.predefined(&d.name)),
                        },
                    };
                    if let Some(v) = v {
                        st.args.insert(d.name.clone(), v);
                    } else {
                        st.args.remove(&d.name);
                    }
                }
                return Ok(());
            }
            Inst::Run {
                command,
                network,
                mounts,
                heredocs,
            } => {
                if !mounts.is_empty() {
                    return Err(BuildError::at(
                        line,
                        "RUN --mount is not supported by barge build",
                    ));
                }
                let net = match network.as_deref() {
                    None | Some("default") => "",
                    Some("none") => "none",
                    Some(other) => {
                        return Err(BuildError::at(
                            line,
                            format!("RUN --network={other}: only none and default are supported"),
                        ))
                    }
                };
                let argv = match command {
                    Command::Exec(v) => v.clone(),
                    Command::Shell(s) => {
                        let mut argv = st.shell();
                        argv.push(heredoc_script(s, heredocs));
                        argv
                    }
                };
                let args: Vec<(String, String)> = st
                    .args
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let key = self.key(
                    st,
                    &format!("RUN {}", serde_json::to_string(&argv).unwrap_or_default()),
                    &[net],
                );
                if let Some(hit) = self.cached(st, &key)? {
                    self.hit(st, inst, hit);
                    return Ok(());
                }
                self.runs += 1;
                let step = run::RunStep {
                    argv,
                    network: net,
                    args: &args,
                    line,
                    text: &format!("RUN {}", short(&inst.original)),
                    epoch: self.opts.source_date_epoch,
                };
                let layer = run::run(self.engine, st, &step, self.out)?;
                self.cache.put(
                    &key,
                    cache::CacheEntry {
                        layer: layer.clone(),
                        created: Some(self.created.clone()),
                    },
                )?;
                Some(layer)
            }
            Inst::Copy(c) | Inst::Add(c) => {
                let add = matches!(inst.kind, Inst::Add(_));
                match self.copy(df, st, inst, c, add, states)? {
                    Some(layer) => Some(layer),
                    // Answered from the cache (recorded already).
                    None => return Ok(()),
                }
            }
            Inst::Workdir(w) => {
                let w = self.expand(st, w, line)?;
                let dir = config::join_workdir(&st.str_field("WorkingDir"), &w);
                st.config.insert("WorkingDir".into(), json!(dir));
                let key = self.key(st, &format!("WORKDIR {dir}"), &[]);
                if let Some(hit) = self.cached(st, &key)? {
                    self.hit(st, inst, hit);
                    return Ok(());
                }
                let ws =
                    layer::Workspace::open(&self.engine.images, &self.run_dir, st.top().as_ref())?;
                copy::mkdir_in_root(ws.root(), &dir).map_err(|e| e.on_line(line))?;
                let layer = ws.finish(&st.diff_ids(), self.opts.source_date_epoch)?;
                self.cache.put(
                    &key,
                    cache::CacheEntry {
                        layer: layer.clone(),
                        created: Some(self.created.clone()),
                    },
                )?;
                Some(layer)
            }
            other => {
                config::apply(st, other, line, &|w: &str, st: &StageState| {
                    self.expand(st, w, line)
                })?;
                None
            }
        };
        if fs_change.is_some() {
            // A step that ran: the stage's time is now.
            st.clock = Some(self.created.clone());
        }
        let empty = match fs_change {
            Some(Some(l)) => {
                st.layers.push(l);
                false
            }
            _ => true,
        };
        self.history(st, inst, empty);
        self.out.done(n, started.elapsed().as_secs_f64());
        Ok(())
    }

    /// TARGETOS/TARGETARCH/TARGETPLATFORM/TARGETVARIANT and BUILD* for `ARG NAME`.
    fn predefined(&self, name: &str) -> Option<String> {
        let p = &self.platform;
        let h = Platform::host();
        match name {
            "TARGETPLATFORM" => Some(p.to_string()),
            "TARGETOS" => Some(p.os.clone()),
            "TARGETARCH" => Some(p.architecture.clone()),
            "TARGETVARIANT" => Some(p.variant.clone().unwrap_or_default()),
            "BUILDPLATFORM" => Some(h.to_string()),
            "BUILDOS" => Some(h.os.clone()),
            "BUILDARCH" => Some(h.architecture.clone()),
            _ => None,
        }
    }

    fn expand(&self, st: &StageState, word: &str, line: usize) -> Result<String> {
        vars::expand(word, &|n| st.var(n)).map_err(|e| BuildError::at(line, e))
    }

    /// The cache key of a step on the stage.
    fn key(&self, st: &StageState, text: &str, extra: &[&str]) -> String {
        let parent = st
            .top()
            .map(|d| d.to_string())
            .unwrap_or_else(|| "scratch".into());
        let config = serde_json::to_string(&st.config).unwrap_or_default();
        let args = serde_json::to_string(&st.args).unwrap_or_default();
        let platform = self.platform.to_string();
        let mut parts = vec![
            parent.as_str(),
            config.as_str(),
            args.as_str(),
            platform.as_str(),
            text,
        ];
        parts.extend_from_slice(extra);
        cache::key(&parts)
    }

    fn cached(&mut self, st: &StageState, key: &str) -> Result<Option<cache::CacheEntry>> {
        if self.opts.no_cache {
            return Ok(None);
        }
        self.cache.get(&self.engine.images, key, &st.diff_ids())
    }

    fn hit(&mut self, st: &mut StageState, inst: &Instruction, hit: cache::CacheEntry) {
        self.hits += 1;
        let empty = hit.layer.is_none();
        if let Some(l) = hit.layer {
            st.layers.push(l);
        }
        // A cached step keeps the time it first ran.
        st.clock = Some(hit.created.unwrap_or_else(|| self.created.clone()));
        self.history(st, inst, empty);
        self.out.cached(self.step);
    }

    /// The time of a step: SOURCE_DATE_EPOCH's when set, else that of the stage's last
    /// filesystem step (when it ran, or first ran for a cached one), else the base image's
    /// last step: a fully cached rebuild makes the same config, hence the same image ID.
    fn time(&self, st: &StageState) -> String {
        if self.opts.source_date_epoch.is_some() {
            return self.created.clone();
        }
        st.clock.clone().unwrap_or_else(|| self.created.clone())
    }

    fn history(&self, st: &mut StageState, inst: &Instruction, empty: bool) {
        let mut h = json!({"created": self.time(st), "created_by": inst.original});
        if empty {
            h["empty_layer"] = json!(true);
        }
        if let Inst::Maintainer(m) = &inst.kind {
            h["author"] = json!(m);
        }
        st.history.push(h);
    }

    /// COPY or ADD: its layer (`Some(None)` when nothing changed), or None when the cache
    /// answered (the step is recorded then).
    fn copy(
        &mut self,
        df: &Dockerfile,
        st: &mut StageState,
        inst: &Instruction,
        c: &CopyArgs,
        add: bool,
        states: &[Option<StageState>],
    ) -> Result<Option<Option<LayerRef>>> {
        let line = inst.line;
        let word = if add { "ADD" } else { "COPY" };
        // Heredoc sources (`COPY <<EOF /dest`): files named after their delimiters.
        let heredoc_dir = if c.heredocs.is_empty() {
            None
        } else {
            let dir = tempfile::Builder::new()
                .prefix("heredoc-")
                .tempdir_in(&self.run_dir)
                .map_err(|e| BuildError::at(line, format!("{word}: temp dir: {e}")))?;
            for h in &c.heredocs {
                if h.expand && h.body.contains('$') {
                    return Err(BuildError::at(
                        line,
                        format!("{word} <<{}: variables in a heredoc source are not substituted by barge yet; quote the delimiter (<<'{}') for literal text", h.name, h.name),
                    ));
                }
                let p = dir.path().join(&h.name);
                std::fs::write(&p, &h.body)
                    .map_err(|e| BuildError::at(line, format!("{word} <<{}: {e}", h.name)))?;
            }
            Some(dir)
        };
        let mut sources = Vec::new();
        for s in &c.sources {
            sources.push(self.expand(st, s, line)?);
        }
        let dest = self.expand(st, &c.dest, line)?;
        if add {
            if let Some(url) = sources.iter().find(|s| s.contains("://")) {
                return Err(BuildError::at(line, fetch_url(url, c.checksum.as_deref())));
            }
        }
        let chmod = match &c.chmod {
            Some(m) => Some(
                u32::from_str_radix(m, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| {
                        BuildError::at(line, format!("{word} --chmod={m}: not an octal mode"))
                    })?,
            ),
            None => None,
        };
        let workdir = st.str_field("WorkingDir");
        let dest_abs = if dest.starts_with('/') {
            dest.clone()
        } else {
            config::join_workdir(&workdir, &dest)
        };
        // The source root: the context, another stage, or an image.
        let from_ws;
        let from_root: copy::SourceRoot<'_>;
        let from_key: String;
        match &c.from {
            None => {
                from_root = copy::SourceRoot::Context {
                    dir: self.ctx.dir,
                    ignored: self.ctx.ignored,
                };
                from_key = "context".into();
                from_ws = None;
            }
            Some(f) => {
                let f = self.expand(st, f, line)?;
                let chain = match stage_ref(df, &f, usize::MAX) {
                    Some(j) => states[j]
                        .as_ref()
                        .ok_or_else(|| {
                            BuildError::at(line, format!("--from={f}: stage not built"))
                        })?
                        .top(),
                    None => {
                        let rec = self
                            .base_image(&f, self.opts.platform.clone())
                            .map_err(|e| e.on_line(line))?;
                        self.engine.images.image(&rec)?.top().cloned()
                    }
                };
                from_key = chain.as_ref().map(|d| d.to_string()).unwrap_or_default();
                from_ws = Some(layer::Workspace::open(
                    &self.engine.images,
                    &self.run_dir,
                    chain.as_ref(),
                )?);
                from_root = copy::SourceRoot::Rootfs(
                    from_ws
                        .as_ref()
                        .map(|w| w.root())
                        .unwrap_or(Path::new("/nonexistent")),
                );
            }
        }
        let mut found = if sources.is_empty() {
            Vec::new()
        } else {
            copy::find(&from_root, &sources, word).map_err(|e| e.on_line(line))?
        };
        if let Some(dir) = &heredoc_dir {
            for h in &c.heredocs {
                found.push(copy::Found {
                    path: dir.path().join(&h.name),
                    named: format!("{word} <<{}", h.name),
                    rel: String::new(),
                });
            }
        }
        let ignored: Option<copy::Ignored<'_>> = match &c.from {
            None => Some(self.ctx.ignored),
            Some(_) => None,
        };
        let ws = layer::Workspace::open(&self.engine.images, &self.run_dir, st.top().as_ref())?;
        let owner = match &c.chown {
            Some(spec) => Some(
                copy::owner(ws.root(), &self.expand(st, spec, line)?)
                    .map_err(|e| e.on_line(line))?,
            ),
            None if c.from.is_none() => Some((0, 0)),
            None => None,
        };
        let attrs = copy::Attrs {
            owner,
            chmod,
            epoch: self.opts.source_date_epoch,
        };
        // ADD of a local archive: extracted into the destination directory.
        let mut archives = Vec::new();
        let mut plain = Vec::new();
        for f in found {
            if add && f.path.is_file() {
                if let Some(_r) = copy::as_archive(&f.path).map_err(|e| e.on_line(line))? {
                    archives.push(f);
                    continue;
                }
            }
            plain.push(f);
        }
        let dest_is_dir = dest.ends_with('/')
            || plain.len() + archives.len() > 1
            || !archives.is_empty()
            || plain.iter().any(|f| f.path.is_dir())
            || copy::is_dir_in_root(ws.root(), &dest_abs);
        if plain.len() + archives.len() > 1
            && !dest.ends_with('/')
            && !copy::is_dir_in_root(ws.root(), &dest_abs)
        {
            return Err(BuildError::at(
                line,
                format!("{word} with more than one source file: the destination must be a directory and end with a /"),
            ));
        }
        // The content hash of the sources, for the cache key.
        let mut hasher = HashSink(barge_image::digest::Hasher::new());
        copy::write_tar(&mut hasher, &plain, None, attrs, ignored, true)?;
        for a in &archives {
            let mut f = std::fs::File::open(&a.path)
                .map_err(|e| BuildError::at(line, format!("{}: {e}", a.named)))?;
            std::io::copy(&mut f, &mut hasher)
                .map_err(|e| BuildError::at(line, format!("{}: {e}", a.named)))?;
        }
        let content = hasher.0.finish().to_string();
        let text = format!(
            "{word} from={from_key} {sources:?} {dest_abs} dir={dest_is_dir} chown={owner:?} chmod={chmod:?}"
        );
        let key = self.key(st, &text, &[&content]);
        if let Some(hit) = self.cached(st, &key)? {
            drop(ws);
            drop(from_ws);
            self.hit(st, inst, hit);
            return Ok(None);
        }
        let (dir_path, leaf) = if dest_is_dir {
            (dest_abs.clone(), None)
        } else {
            let p = Path::new(&dest_abs);
            let parent = p
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "/".into());
            let leaf = p.file_name().map(|l| l.to_string_lossy().into_owned());
            (parent, leaf)
        };
        if !plain.is_empty() {
            let dir = copy::mkdir_in_root(ws.root(), &dir_path).map_err(|e| e.on_line(line))?;
            copy::extract_into(
                dir,
                |w| copy::write_tar(w, &plain, leaf.as_deref(), attrs, ignored, false).map(|_| ()),
                &format!("{word} into {dest_abs}"),
            )
            .map_err(|e| e.on_line(line))?;
        }
        for a in &archives {
            let dir = copy::mkdir_in_root(ws.root(), &dir_path).map_err(|e| e.on_line(line))?;
            let path = a.path.clone();
            copy::extract_into(
                dir,
                move |mut w| {
                    let mut r = copy::as_archive(&path)?
                        .ok_or_else(|| BuildError::other("archive vanished"))?;
                    std::io::copy(&mut r, &mut w)
                        .map(|_| ())
                        .map_err(|e| BuildError::other(format!("read {}: {e}", path.display())))
                },
                &format!("ADD {} into {dest_abs}", a.named),
            )
            .map_err(|e| e.on_line(line))?;
        }
        drop(from_ws);
        let layer = ws.finish(&st.diff_ids(), self.opts.source_date_epoch)?;
        self.cache.put(
            &key,
            cache::CacheEntry {
                layer: layer.clone(),
                created: Some(self.created.clone()),
            },
        )?;
        Ok(Some(layer))
    }

    /// Store the final image and name it.
    fn commit(&mut self, st: &StageState) -> Result<(Digest, Digest)> {
        let store = &self.engine.images;
        let config = st.image_config(&self.time(st));
        let config_bytes = serde_json::to_vec(&config)
            .map_err(|e| BuildError::other(format!("image config: {e}")))?;
        let config_digest = store.content.write(&config_bytes, None)?;
        let manifest = st.manifest(&config_digest, config_bytes.len());
        let manifest_bytes = serde_json::to_vec(&manifest)
            .map_err(|e| BuildError::other(format!("image manifest: {e}")))?;
        let manifest_digest = store.content.write(&manifest_bytes, None)?;
        let mut names = Vec::new();
        for t in &self.opts.tags {
            let r = barge_image::reference::ImageRef::parse(t)?;
            if r.digest().is_some() {
                return Err(BuildError::other(format!(
                    "-t {t}: a name can't contain a digest"
                )));
            }
            names.push(r.canonical());
        }
        if names.is_empty() {
            names.push(format!("<none>@{manifest_digest}"));
        }
        for name in names {
            let rec = barge_image::meta::ImageRecord {
                name: name.clone(),
                target: manifest_digest.clone(),
                manifest: manifest_digest.clone(),
                config: config_digest.clone(),
                tagged: barge_image::meta::now(),
            };
            store.db.put_image(&rec)?;
            store.emit(barge_events::Action::Tag, config_digest.as_str(), &name);
        }
        self.out.image(&config_digest);
        Ok((config_digest, manifest_digest))
    }
}

struct HashSink(barge_image::digest::Hasher);

impl Write for HashSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A registry as named in credentials (`https://index.docker.io/v1/`, `r.local:5000`) or
/// in a reference, reduced to its host: docker.io's aliases are one.
fn registry_host(server: &str) -> String {
    let s = server
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = s.split('/').next().unwrap_or_default().to_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".into(),
        _ => host,
    }
}

/// The stage `name` refers to (a stage name or index before `before`), if any.
fn stage_ref(df: &Dockerfile, name: &str, before: usize) -> Option<usize> {
    let lower = name.to_lowercase();
    if let Some(i) = df
        .stages
        .iter()
        .position(|s| s.name.as_deref() == Some(lower.as_str()) && s.index < before)
    {
        return Some(i);
    }
    name.parse::<usize>()
        .ok()
        .filter(|i| *i < before.min(df.stages.len()))
}

/// A RUN's shell script: the command, with its heredocs appended as the shell expects them
/// (`RUN <<EOF` alone runs the heredoc as the script).
fn heredoc_script(cmd: &str, heredocs: &[crate::ast::Heredoc]) -> String {
    if heredocs.is_empty() {
        return cmd.to_string();
    }
    let trimmed = cmd.trim();
    if heredocs.len() == 1 && trimmed.starts_with("<<") && !trimmed.contains(' ') {
        return heredocs[0].body.clone();
    }
    let mut s = cmd.to_string();
    for h in heredocs {
        s.push('\n');
        s.push_str(&h.body);
        if !h.body.ends_with('\n') {
            s.push('\n');
        }
        s.push_str(&h.name);
    }
    s
}

fn short(s: &str) -> String {
    let s = s.strip_prefix("RUN ").unwrap_or(s);
    let one: String = s.lines().next().unwrap_or_default().to_string();
    if one.chars().count() > 60 {
        format!("{}…", one.chars().take(60).collect::<String>())
    } else {
        one
    }
}

/// ADD of a URL: what fetching it gives (barge has no HTTP client in the builder: a reachable
/// host is refused as unsupported, an unreachable one says why).
fn fetch_url(url: &str, _checksum: Option<&str>) -> String {
    use std::net::ToSocketAddrs;
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let hostport = rest.split('/').next().unwrap_or_default();
    let default_port = if scheme == "https" { 443 } else { 80 };
    let addr = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:{default_port}")
    };
    let reach = match addr.to_socket_addrs() {
        Err(e) => Err(format!("cannot resolve {hostport}: {e}")),
        Ok(mut addrs) => match addrs.next() {
            None => Err(format!("cannot resolve {hostport}")),
            Some(a) => std::net::TcpStream::connect_timeout(&a, std::time::Duration::from_secs(5))
                .map(|_| ())
                .map_err(|e| format!("cannot connect to {a}: {e}")),
        },
    };
    match reach {
        Err(why) => format!("ADD {url}: fetching failed: {why}"),
        Ok(()) => format!("ADD {url}: downloading URLs is not supported by barge build yet; fetch it into the context and ADD the file"),
    }
}
