//! A parsed Dockerfile. The parser fills it; the builder walks it. Values keep their `$VAR`
//! references unexpanded: substitution happens at build time with the stage's ARGs and ENV
//! (Docker's rules: which instructions expand, and with what, is the builder's business).

/// A whole Dockerfile.
#[derive(Debug, Clone, PartialEq)]
pub struct Dockerfile {
    pub directives: Directives,
    /// `ARG`s before the first `FROM` (usable in `FROM` lines; redeclare inside a stage to use).
    pub global_args: Vec<ArgDecl>,
    pub stages: Vec<Stage>,
}

/// Parser directives at the top (`# syntax=...`, `# escape=...`).
#[derive(Debug, Clone, PartialEq)]
pub struct Directives {
    /// `\` unless `# escape=` said otherwise (`` ` `` on Windows-style files).
    pub escape: char,
    pub syntax: Option<String>,
    /// `# check=...` is kept as text (barge runs no build checks).
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Directives {
        Directives {
            escape: '\\',
            syntax: None,
            check: None,
        }
    }
}

/// `FROM [--platform=P] IMAGE [AS NAME]` and the instructions up to the next `FROM`.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// Position among the stages (0-based): `COPY --from=0` refers to it.
    pub index: usize,
    /// `AS name`, lowercased.
    pub name: Option<String>,
    /// The image (unexpanded; may use global ARGs), or `scratch`.
    pub base: String,
    pub platform: Option<String>,
    /// 1-based line of the `FROM`.
    pub line: usize,
    pub instructions: Vec<Instruction>,
}

/// One instruction with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    /// 1-based line where the instruction starts.
    pub line: usize,
    /// The instruction as written, continuations joined (for history and the cache key).
    pub original: String,
    pub kind: Inst,
}

/// Shell form (`RUN echo hi`, run through the stage's SHELL) or exec form (`["a", "b"]`).
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Shell(String),
    Exec(Vec<String>),
}

/// `ARG name[=default]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ArgDecl {
    pub name: String,
    pub default: Option<String>,
}

/// A heredoc body (`<<EOF` … `EOF`; `<<-EOF` strips leading tabs; a quoted delimiter
/// `<<'EOF'`/`<<"EOF"` means no expansion).
#[derive(Debug, Clone, PartialEq)]
pub struct Heredoc {
    pub name: String,
    pub body: String,
    pub expand: bool,
    pub strip_tabs: bool,
}

/// `COPY`/`ADD` flags and operands.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CopyArgs {
    /// Sources (context paths or globs; for `--from` paths in that stage or image).
    pub sources: Vec<String>,
    pub dest: String,
    /// `--from=stage|index|image`.
    pub from: Option<String>,
    /// `--chown=user[:group]`.
    pub chown: Option<String>,
    /// `--chmod=0755`.
    pub chmod: Option<String>,
    /// `--link` (accepted; barge's layers are always independent).
    pub link: bool,
    /// `--parents` and `--exclude` are BuildKit labs features: refused by the parser.
    /// Heredoc sources (`COPY <<EOF /dest`).
    pub heredocs: Vec<Heredoc>,
    /// ADD only: `--checksum=sha256:...` for URLs.
    pub checksum: Option<String>,
    /// ADD only: `--keep-git-dir`.
    pub keep_git_dir: bool,
}

/// `HEALTHCHECK`.
#[derive(Debug, Clone, PartialEq)]
pub enum Health {
    /// `HEALTHCHECK NONE`: disable the base image's check.
    None,
    Check {
        /// Always exec form in the image config: shell form becomes `CMD-SHELL`.
        test: Command,
        /// Durations as written (`30s`, `1m30s`); the builder converts to nanoseconds.
        interval: Option<String>,
        timeout: Option<String>,
        start_period: Option<String>,
        start_interval: Option<String>,
        retries: Option<u32>,
    },
}

/// Every Dockerfile instruction (after `FROM`).
#[derive(Debug, Clone, PartialEq)]
pub enum Inst {
    Arg(Vec<ArgDecl>),
    /// `ENV k=v k2=v2` or the legacy `ENV k v`.
    Env(Vec<(String, String)>),
    Label(Vec<(String, String)>),
    Workdir(String),
    User(String),
    Run {
        command: Command,
        /// `--network=none|default|host`.
        network: Option<String>,
        /// `--mount=...` as written (the builder refuses kinds it does not support, naming
        /// the line).
        mounts: Vec<String>,
        heredocs: Vec<Heredoc>,
    },
    Copy(CopyArgs),
    Add(CopyArgs),
    /// `80/tcp`, `53/udp`, as written.
    Expose(Vec<String>),
    Volume(Vec<String>),
    Cmd(Command),
    Entrypoint(Command),
    Shell(Vec<String>),
    StopSignal(String),
    Healthcheck(Health),
    /// The trigger instruction (not `FROM`, `ONBUILD` or `MAINTAINER`), stored in the image
    /// config's `OnBuild` as its original text.
    Onbuild(Box<Instruction>),
    /// `MAINTAINER name` (deprecated; becomes the image's `author`).
    Maintainer(String),
}
