use super::*;
use crate::ast::{Command, CopyArgs, Health, Heredoc, Inst};

fn insts(text: &str) -> Vec<Inst> {
    parse(text)
        .unwrap()
        .stages
        .into_iter()
        .flat_map(|s| s.instructions)
        .map(|i| i.kind)
        .collect()
}

fn one(text: &str) -> Inst {
    let mut v = insts(&format!("FROM scratch\n{text}\n"));
    assert_eq!(v.len(), 1, "{v:?}");
    v.remove(0)
}

fn err(text: &str) -> ParseError {
    parse(text).unwrap_err()
}

#[test]
fn stages_names_and_global_args() {
    let d = parse(
        "ARG BASE=alpine\nARG V\nFROM --platform=linux/arm64 ${BASE}:$V AS Build\nRUN make\n\
         from busybox as Final\ncopy --from=build /out /out\nFROM scratch\n",
    )
    .unwrap();
    assert_eq!(d.global_args.len(), 2);
    assert_eq!(d.global_args[0].default.as_deref(), Some("alpine"));
    assert_eq!(d.global_args[1].default, None);
    assert_eq!(d.stages.len(), 3);
    let s0 = &d.stages[0];
    assert_eq!(
        (s0.index, s0.name.as_deref(), s0.base.as_str(), s0.line),
        (0, Some("build"), "${BASE}:$V", 3)
    );
    assert_eq!(s0.platform.as_deref(), Some("linux/arm64"));
    assert_eq!(d.stages[1].name.as_deref(), Some("final"));
    assert_eq!(d.stages[1].instructions[0].line, 6);
    assert_eq!(d.stages[2].name, None);
    let e = err("FROM a AS x\nFROM b AS X\n");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("duplicate stage name"), "{e}");
    assert_eq!(err("FROM a AS 1x\n").line, 1);
    assert_eq!(err("FROM a B c\n").line, 1);
}

#[test]
fn errors_name_their_line() {
    let e = err("FROM a\n\n# c\nRUN x\nFOO bar\n");
    assert_eq!(e.line, 5);
    assert_eq!(e.to_string(), "Dockerfile:5: unknown instruction: FOO");
    let e = err("# hi\nRUN x\nFROM a\n");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("RUN comes before the first FROM"), "{e}");
    assert!(err("").message.contains("empty"));
    assert!(err("# only\n\n   \n").message.contains("empty"));
    assert!(err("ARG A\n").message.contains("no FROM"));
    for (text, line, what) in [
        ("FROM a\nRUN\n", 2, "RUN requires"),
        ("FROM a\nCOPY x\n", 2, "COPY requires"),
        ("FROM a\nWORKDIR\n", 2, "WORKDIR requires"),
        ("FROM a\nENV\n", 2, "ENV requires"),
        ("FROM a\nENV A\n", 2, "no value"),
        ("FROM a\nCMD\n", 2, "CMD requires"),
        ("FROM\n", 1, "FROM requires"),
        ("FROM a\nEXPOSE\n", 2, "EXPOSE requires"),
        ("FROM a\nSHELL /bin/sh -c\n", 2, "JSON"),
        ("FROM a\nSHELL [\"/bin/sh\", \n", 2, "JSON"),
        (
            "FROM a\nCOPY --foo=1 a b\n",
            2,
            "unknown flag --foo on COPY",
        ),
        (
            "FROM a\nCOPY --checksum=sha256:x a b\n",
            2,
            "--checksum is not allowed on COPY",
        ),
        (
            "FROM a\nADD --from=x a b\n",
            2,
            "--from is not allowed on ADD",
        ),
        (
            "FROM a\nRUN --from=x ls\n",
            2,
            "--from is not allowed on RUN",
        ),
        ("FROM a\nWORKDIR --x /a\n", 2, "unknown flag --x on WORKDIR"),
        ("FROM --chown=1 a\n", 1, "--chown is not allowed on FROM"),
        ("FROM a\nRUN --security=insecure ls\n", 2, "--security"),
        ("FROM a\nCOPY --parents a/b /c\n", 2, "--parents"),
        ("FROM a\nCOPY --exclude=*.o . /c\n", 2, "--exclude"),
        ("FROM a\nRUN --network=bridge ls\n", 2, "--network=bridge"),
        ("FROM a\nCOPY --chown a b\n", 2, "needs a value"),
        ("FROM a\nCOPY --link=maybe a b\n", 2, "true or false"),
        ("FROM a\nHEALTHCHECK --retries=x CMD true\n", 2, "--retries"),
        (
            "FROM a\nHEALTHCHECK --interval=5 CMD true\n",
            2,
            "not a duration",
        ),
        ("FROM a\nHEALTHCHECK NONE x\n", 2, "no arguments"),
        (
            "FROM a\nHEALTHCHECK --interval=1s NONE\n",
            2,
            "not allowed on HEALTHCHECK",
        ),
        ("FROM a\nHEALTHCHECK\n", 2, "NONE or CMD"),
        (
            "FROM a\nONBUILD ONBUILD RUN x\n",
            2,
            "ONBUILD is not allowed",
        ),
        ("FROM a\nONBUILD FROM x\n", 2, "FROM is not allowed"),
        (
            "FROM a\nONBUILD maintainer x\n",
            2,
            "MAINTAINER is not allowed",
        ),
        ("FROM a\nONBUILD BOGUS x\n", 2, "unknown instruction: BOGUS"),
        ("FROM a\nARG =x\n", 2, "invalid name"),
        ("FROM a\nRUN <<EOF\nls\n", 2, "not terminated"),
        (
            "# syntax=example.com/my/frontend:1\nFROM a\n",
            1,
            "unsupported syntax",
        ),
        ("# escape=x\nFROM a\n", 1, "invalid escape"),
        ("# escape=`\n# escape=\\\nFROM a\n", 2, "only one"),
    ] {
        let e = err(text);
        assert_eq!(e.line, line, "{text:?}: {e}");
        assert!(e.message.contains(what), "{text:?}: {e}");
        assert!(e.to_string().starts_with(&format!("Dockerfile:{line}: ")));
    }
}

#[test]
fn directives_only_at_the_top() {
    let d =
        parse("# syntax=docker/dockerfile:1.7\n# check=skip=all\n# escape=`\nFROM a\n").unwrap();
    assert_eq!(d.directives.escape, '`');
    assert_eq!(
        d.directives.syntax.as_deref(),
        Some("docker/dockerfile:1.7")
    );
    assert_eq!(d.directives.check.as_deref(), Some("skip=all"));
    // After a comment, a blank line or an instruction, `# escape=` is a comment.
    for text in [
        "# a comment\n# escape=`\nFROM a\n",
        "\n# escape=`\nFROM a\n",
        "FROM a\n# escape=`\n",
    ] {
        assert_eq!(parse(text).unwrap().directives.escape, '\\', "{text:?}");
    }
    // Unknown directives are comments.
    assert_eq!(parse("# foo=bar\nFROM a\n").unwrap().stages.len(), 1);
    assert!(parse("# syntax = docker.io/docker/dockerfile:1-labs\nFROM a\n").is_ok());
}

#[test]
fn continuations_with_comments_and_blank_lines() {
    let d = parse(
        "FROM a\nRUN apt-get update && \\\n# a comment inside\n    apt-get install -y \\\n\n      gcc \\  \n  make\nRUN next\n",
    )
    .unwrap();
    let i = &d.stages[0].instructions;
    assert_eq!(i.len(), 2);
    assert_eq!(i[0].line, 2);
    assert_eq!(
        i[0].kind,
        Inst::Run {
            command: Command::Shell(
                "apt-get update &&     apt-get install -y       gcc   make".into()
            ),
            network: None,
            mounts: vec![],
            heredocs: vec![],
        }
    );
    assert_eq!(i[1].line, 8);
    // A continuation at the end of the file ends the instruction.
    assert_eq!(
        one("RUN ls \\"),
        Inst::Run {
            command: Command::Shell("ls".into()),
            network: None,
            mounts: vec![],
            heredocs: vec![]
        }
    );
}

#[test]
fn backtick_escape() {
    let d = parse("# escape=`\nFROM a\nRUN dir C:\\ `\n  && echo done\nCOPY a\\b c:\\dest\\\n")
        .unwrap();
    let i = &d.stages[0].instructions;
    assert_eq!(
        i[0].kind,
        Inst::Run {
            command: Command::Shell("dir C:\\   && echo done".into()),
            network: None,
            mounts: vec![],
            heredocs: vec![]
        }
    );
    match &i[1].kind {
        Inst::Copy(c) => {
            assert_eq!(c.sources, ["a\\b"]);
            assert_eq!(c.dest, "c:\\dest\\");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn case_insensitive_and_original_text() {
    let d = parse("from a\nrUn echo \\\n hi\n").unwrap();
    let i = &d.stages[0].instructions[0];
    assert_eq!(i.original, "rUn echo  hi");
    assert!(matches!(i.kind, Inst::Run { .. }));
}

#[test]
fn exec_and_shell_forms() {
    assert_eq!(
        one(r#"CMD ["a", "b c"]"#),
        Inst::Cmd(Command::Exec(vec!["a".into(), "b c".into()]))
    );
    assert_eq!(
        one("ENTRYPOINT [\"/bin/x\"]"),
        Inst::Entrypoint(Command::Exec(vec!["/bin/x".into()]))
    );
    assert_eq!(one("CMD []"), Inst::Cmd(Command::Exec(vec![])));
    // Invalid JSON falls back to the shell form, as Docker does.
    assert_eq!(
        one("CMD [\"a\", 'b']"),
        Inst::Cmd(Command::Shell("[\"a\", 'b']".into()))
    );
    assert_eq!(
        one("CMD [a, b]"),
        Inst::Cmd(Command::Shell("[a, b]".into()))
    );
    assert_eq!(
        one("CMD [\"a\", 1]"),
        Inst::Cmd(Command::Shell("[\"a\", 1]".into()))
    );
    assert_eq!(
        one("CMD echo $HOME"),
        Inst::Cmd(Command::Shell("echo $HOME".into()))
    );
    assert_eq!(
        one("SHELL [\"/bin/bash\", \"-eo\", \"pipefail\", \"-c\"]"),
        Inst::Shell(vec![
            "/bin/bash".into(),
            "-eo".into(),
            "pipefail".into(),
            "-c".into()
        ])
    );
    match one("RUN --network=none --mount=type=cache,target=/c --mount=type=tmpfs,target=/t [\"ls\", \"-l\"]") {
        Inst::Run { command, network, mounts, heredocs } => {
            assert_eq!(command, Command::Exec(vec!["ls".into(), "-l".into()]));
            assert_eq!(network.as_deref(), Some("none"));
            assert_eq!(mounts, ["type=cache,target=/c", "type=tmpfs,target=/t"]);
            assert!(heredocs.is_empty());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn env_label_arg() {
    assert_eq!(
        one("ENV PATH /usr/local/bin:$PATH with  spaces"),
        Inst::Env(vec![(
            "PATH".into(),
            "/usr/local/bin:$PATH with  spaces".into()
        )])
    );
    assert_eq!(
        one(r#"ENV A=1 B="two words" C=three\ words D='$x'"#),
        Inst::Env(vec![
            ("A".into(), "1".into()),
            ("B".into(), "\"two words\"".into()),
            ("C".into(), "three\\ words".into()),
            ("D".into(), "'$x'".into()),
        ])
    );
    assert_eq!(
        one(r#"LABEL "com.example.vendor"="ACME Inc" version=1.0 description="a \"quoted\" one""#),
        Inst::Label(vec![
            ("\"com.example.vendor\"".into(), "\"ACME Inc\"".into()),
            ("version".into(), "1.0".into()),
            ("description".into(), "\"a \\\"quoted\\\" one\"".into()),
        ])
    );
    assert_eq!(
        one("LABEL maintainer me"),
        Inst::Label(vec![("maintainer".into(), "me".into())])
    );
    let e = err("FROM a\nENV A=1 B\n");
    assert!(e.message.contains("not key=value"), "{e}");
    match one("ARG A B=2 C=") {
        Inst::Arg(a) => {
            assert_eq!(a.len(), 3);
            assert_eq!((a[0].name.as_str(), a[0].default.as_deref()), ("A", None));
            assert_eq!(a[1].default.as_deref(), Some("2"));
            assert_eq!(a[2].default.as_deref(), Some(""));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn simple_instructions() {
    assert_eq!(one("WORKDIR /app dir"), Inst::Workdir("/app dir".into()));
    assert_eq!(one("USER app:app"), Inst::User("app:app".into()));
    assert_eq!(
        one("STOPSIGNAL SIGTERM"),
        Inst::StopSignal("SIGTERM".into())
    );
    assert_eq!(
        one("MAINTAINER Jo <jo@x>"),
        Inst::Maintainer("Jo <jo@x>".into())
    );
    assert_eq!(
        one("EXPOSE 80 53/udp $P"),
        Inst::Expose(vec!["80".into(), "53/udp".into(), "$P".into()])
    );
    assert_eq!(
        one("VOLUME [\"/a\", \"/b\"]"),
        Inst::Volume(vec!["/a".into(), "/b".into()])
    );
    assert_eq!(
        one("VOLUME /a /b"),
        Inst::Volume(vec!["/a".into(), "/b".into()])
    );
}

#[test]
fn copy_and_add() {
    assert_eq!(
        one("COPY --from=build --chown=app:app --chmod=0755 --link a b* /dst/"),
        Inst::Copy(CopyArgs {
            sources: vec!["a".into(), "b*".into()],
            dest: "/dst/".into(),
            from: Some("build".into()),
            chown: Some("app:app".into()),
            chmod: Some("0755".into()),
            link: true,
            ..CopyArgs::default()
        })
    );
    assert_eq!(
        one("COPY [\"a b\", \"/d e/\"]"),
        Inst::Copy(CopyArgs {
            sources: vec!["a b".into()],
            dest: "/d e/".into(),
            ..CopyArgs::default()
        })
    );
    assert_eq!(
        one("ADD --checksum=sha256:abc --keep-git-dir=true https://x/y.git /src"),
        Inst::Add(CopyArgs {
            sources: vec!["https://x/y.git".into()],
            dest: "/src".into(),
            checksum: Some("sha256:abc".into()),
            keep_git_dir: true,
            ..CopyArgs::default()
        })
    );
}

#[test]
fn heredocs() {
    match one("RUN <<EOF\necho $HOME\n  indented\nEOF") {
        Inst::Run {
            command, heredocs, ..
        } => {
            assert_eq!(command, Command::Shell("<<EOF".into()));
            assert_eq!(
                heredocs,
                [Heredoc {
                    name: "EOF".into(),
                    body: "echo $HOME\n  indented\n".into(),
                    expand: true,
                    strip_tabs: false
                }]
            );
        }
        other => panic!("{other:?}"),
    }
    // Quoted delimiter: no expansion; <<- strips leading tabs (and from the terminator).
    match one("RUN <<-'EOT' bash\n\techo $X\n\t\tdone\n\tEOT") {
        Inst::Run { heredocs, .. } => {
            assert_eq!(heredocs[0].name, "EOT");
            assert_eq!(heredocs[0].body, "echo $X\ndone\n");
            assert!(!heredocs[0].expand);
            assert!(heredocs[0].strip_tabs);
        }
        other => panic!("{other:?}"),
    }
    // Two heredocs on one line, read in order; lines that look like comments are body.
    let d = parse(
        "FROM a\nRUN cat <<A > /a && cat <<\"B\" > /b\n# not a comment\nA\nb $x\nB\nRUN after\n",
    )
    .unwrap();
    let i = &d.stages[0].instructions;
    assert_eq!(i.len(), 2);
    assert_eq!(i[1].line, 7);
    match &i[0].kind {
        Inst::Run {
            command, heredocs, ..
        } => {
            assert_eq!(
                command,
                &Command::Shell("cat <<A > /a && cat <<\"B\" > /b".into())
            );
            assert_eq!(heredocs.len(), 2);
            assert_eq!(
                (heredocs[0].name.as_str(), heredocs[0].body.as_str()),
                ("A", "# not a comment\n")
            );
            assert_eq!(
                (heredocs[1].name.as_str(), heredocs[1].body.as_str()),
                ("B", "b $x\n")
            );
            assert!(heredocs[0].expand && !heredocs[1].expand);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        i[0].original.contains("\n# not a comment\nA\nb $x\nB"),
        "{:?}",
        i[0].original
    );
    // COPY <<EOF /dest: the heredoc is the source.
    match one("COPY --chmod=0755 <<EOF /usr/bin/hello\n#!/bin/sh\necho hi\nEOF") {
        Inst::Copy(c) => {
            assert!(c.sources.is_empty());
            assert_eq!(c.dest, "/usr/bin/hello");
            assert_eq!(c.heredocs[0].body, "#!/bin/sh\necho hi\n");
            assert_eq!(c.chmod.as_deref(), Some("0755"));
        }
        other => panic!("{other:?}"),
    }
    // Here-strings and heredocs in other instructions are plain text.
    match one("RUN cat <<< hi") {
        Inst::Run { heredocs, .. } => assert!(heredocs.is_empty()),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        one("CMD cat <<EOF"),
        Inst::Cmd(Command::Shell("cat <<EOF".into()))
    );
}

#[test]
fn healthcheck_and_onbuild() {
    assert_eq!(one("HEALTHCHECK NONE"), Inst::Healthcheck(Health::None));
    assert_eq!(
        one("HEALTHCHECK --interval=30s --timeout=1m30s --start-period=500ms --start-interval=2s --retries=3 CMD curl -f http://localhost/"),
        Inst::Healthcheck(Health::Check {
            test: Command::Shell("curl -f http://localhost/".into()),
            interval: Some("30s".into()),
            timeout: Some("1m30s".into()),
            start_period: Some("500ms".into()),
            start_interval: Some("2s".into()),
            retries: Some(3),
        })
    );
    match one("healthcheck cmd [\"/bin/check\", \"-q\"]") {
        Inst::Healthcheck(Health::Check { test, interval, .. }) => {
            assert_eq!(test, Command::Exec(vec!["/bin/check".into(), "-q".into()]));
            assert_eq!(interval, None);
        }
        other => panic!("{other:?}"),
    }
    match one("ONBUILD copy . /app") {
        Inst::Onbuild(i) => {
            assert_eq!(i.original, "copy . /app");
            assert!(matches!(&i.kind, Inst::Copy(c) if c.dest == "/app"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_realistic_multi_stage_file() {
    let text = r#"# syntax=docker/dockerfile:1
ARG DEBIAN=bookworm

FROM debian:${DEBIAN}-slim AS build
ARG DEBIAN
ENV DEBIAN_FRONTEND=noninteractive \
    CC=gcc
RUN apt-get update \
 # the compiler
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY hello.c .
RUN ${CC} -static -O2 -o /hello hello.c

FROM busybox
LABEL org.opencontainers.image.title="hello" \
      org.opencontainers.image.description="a static hello"
COPY --from=build --chmod=0755 /hello /usr/local/bin/hello
EXPOSE 8080/tcp
HEALTHCHECK --interval=10s --retries=2 CMD ["/usr/local/bin/hello", "--check"]
USER 1000:1000
ENTRYPOINT ["/usr/local/bin/hello"]
CMD ["--serve"]
"#;
    let d = parse(text).unwrap();
    assert_eq!(d.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(d.global_args[0].name, "DEBIAN");
    assert_eq!(d.stages.len(), 2);
    let build = &d.stages[0];
    assert_eq!((build.line, build.name.as_deref()), (4, Some("build")));
    let lines: Vec<usize> = build.instructions.iter().map(|i| i.line).collect();
    assert_eq!(lines, [5, 6, 8, 12, 13, 14]);
    match &build.instructions[2].kind {
        Inst::Run {
            command: Command::Shell(s),
            ..
        } => {
            assert_eq!(
                s,
                "apt-get update  && apt-get install -y --no-install-recommends gcc libc6-dev  && rm -rf /var/lib/apt/lists/*"
            );
        }
        other => panic!("{other:?}"),
    }
    let fin = &d.stages[1];
    assert_eq!(
        (fin.line, fin.name.as_deref(), fin.base.as_str()),
        (16, None, "busybox")
    );
    let lines: Vec<usize> = fin.instructions.iter().map(|i| i.line).collect();
    assert_eq!(lines, [17, 19, 20, 21, 22, 23, 24]);
    assert_eq!(
        fin.instructions[0].kind,
        Inst::Label(vec![
            ("org.opencontainers.image.title".into(), "\"hello\"".into()),
            (
                "org.opencontainers.image.description".into(),
                "\"a static hello\"".into()
            ),
        ])
    );
}
