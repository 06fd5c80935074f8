use super::grammar::{self, Refused};
use super::*;

fn canon(s: &str) -> String {
    match ImageRef::parse(s) {
        Ok(r) => r.canonical(),
        Err(e) => panic!("{s:?} refused: {e}"),
    }
}

fn refused(s: &str) -> Refused {
    match grammar::parse(s) {
        Ok(p) => panic!("{s:?} accepted as {p:?}"),
        Err(e) => e,
    }
}

const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

#[test]
fn normalises_like_docker() {
    for (input, want) in [
        ("busybox", "docker.io/library/busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox:latest"),
        ("foo/bar", "docker.io/foo/bar:latest"),
        ("foo/bar/baz", "docker.io/foo/bar/baz:latest"),
        ("docker.io/busybox", "docker.io/library/busybox:latest"),
        (
            "docker.io/library/busybox",
            "docker.io/library/busybox:latest",
        ),
        ("docker.io/foo/bar:1", "docker.io/foo/bar:1"),
        (
            "index.docker.io/busybox",
            "docker.io/library/busybox:latest",
        ),
        ("index.docker.io/foo/bar", "docker.io/foo/bar:latest"),
        ("quay.io/org/app:1", "quay.io/org/app:1"),
        (
            "registry.local:5000/team/app:1.2",
            "registry.local:5000/team/app:1.2",
        ),
        (
            "127.0.0.1:5000/busybox:latest",
            "127.0.0.1:5000/busybox:latest",
        ),
        ("127.0.0.1:5000/busybox", "127.0.0.1:5000/busybox:latest"),
        // localhost is a domain even without a port or a dot.
        ("localhost/x", "localhost/x:latest"),
        ("localhost:5000/x/y:t", "localhost:5000/x/y:t"),
        // ... but a lone name is always on docker.io, port-like tag or not.
        ("localhost", "docker.io/library/localhost:latest"),
        ("localhost:5000", "docker.io/library/localhost:5000"),
        // Any first part with a ':' is a domain.
        ("myhost:5000/x", "myhost:5000/x:latest"),
        // Upper case in the first part makes it a domain (docker's rule).
        ("Registry/x", "Registry/x:latest"),
        ("Registry.Local:5000/x", "Registry.Local:5000/x:latest"),
        // IPv6 hosts, with and without a port.
        ("[::1]:5000/busybox:1", "[::1]:5000/busybox:1"),
        ("[::1]/busybox", "[::1]/busybox:latest"),
        ("[fe80::1:2aB]:443/a/b", "[fe80::1:2aB]:443/a/b:latest"),
        ("[2001:db8::1]:5000/x", "[2001:db8::1]:5000/x:latest"),
    ] {
        assert_eq!(canon(input), want, "{input}");
    }
}

#[test]
fn parts() {
    let r = ImageRef::parse("registry.local:5000/team/app:1.2").unwrap();
    assert_eq!(r.registry(), "registry.local:5000");
    assert_eq!(r.repository(), "team/app");
    assert_eq!(r.tag(), Some("1.2"));
    assert_eq!(r.digest(), None);
    assert_eq!(r.repo_name(), "registry.local:5000/team/app");
    let r = ImageRef::parse("busybox").unwrap();
    assert_eq!(r.tag(), Some("latest"));
    assert_eq!(familiar(&r.repo_name()), "busybox");
    let r = ImageRef::parse("[::1]:5000/a/b").unwrap();
    assert_eq!(r.registry(), "[::1]:5000");
    assert_eq!(r.repository(), "a/b");
    assert!(is_loopback_registry(r.registry()));
}

#[test]
fn digests() {
    let r = ImageRef::parse(&format!("localhost:5000/a@{D}")).unwrap();
    assert_eq!(r.digest().unwrap().as_str(), D);
    assert_eq!(r.tag(), None);
    assert_eq!(r.canonical(), format!("localhost:5000/a@{D}"));
    // Tag and digest: the digest wins, as in docker.
    let r = ImageRef::parse(&format!("busybox:1.36@{D}")).unwrap();
    assert_eq!(r.tag(), Some("1.36"));
    assert_eq!(r.canonical(), format!("docker.io/library/busybox@{D}"));
    let r = ImageRef::parse(&format!("[::1]:5000/x:t@{D}")).unwrap();
    assert_eq!(r.canonical(), format!("[::1]:5000/x@{D}"));
    // The grammar: algorithm components, at least 32 hex digits.
    for bad in [
        "x@",
        "x@sha256",
        "x@sha256:",
        "x@sha256:abc",
        "x@:e3b0c44298fc1c149afbf4c8996fb924",
        "x@1sha:e3b0c44298fc1c149afbf4c8996fb924",
        "x@sha+:e3b0c44298fc1c149afbf4c8996fb924",
        "x@sha256:e3b0c44298fc1c149afbf4c8996fb92g",
        "x@sha256:e3b0c44298fc1c149afbf4c8996fb924@sha256:e3b0c44298fc1c149afbf4c8996fb924",
        "x@sha256:e3b0c44298fc1c149afbf4c8996fb924:1",
    ] {
        assert_eq!(refused(bad), Refused::Format, "{bad}");
    }
    for good in [
        "x@sha256:e3b0c44298fc1c149afbf4c8996fb924",
        "x@sha256+b64.v2-x_y:E3B0C44298FC1C149AFBF4C8996FB924",
    ] {
        assert!(grammar::parse(good).is_ok(), "{good}");
    }
    // ... then barge fetches by sha256 only, 64 lower-case hex digits.
    for bad in [
        "x@sha256:e3b0c44298fc1c149afbf4c8996fb924",
        "x@sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        &format!("x@{}", D.to_ascii_uppercase().replace("SHA", "sha")),
        "x@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85500",
    ] {
        assert!(ImageRef::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn uppercase_repository_refused_with_dockers_message() {
    for (input, remote) in [
        ("Busybox", "library/Busybox"),
        ("busybox/UPPER", "busybox/UPPER"),
        ("foo/Bar:tag", "foo/Bar"),
        ("127.0.0.1:5000/Team/app", "Team/app"),
        ("localhost/A", "A"),
        ("docker.io/Busybox", "library/Busybox"),
    ] {
        assert_eq!(
            refused(input),
            Refused::Uppercase(remote.to_string()),
            "{input}"
        );
        let e = ImageRef::parse(input).unwrap_err().to_string();
        assert!(e.contains("repository name"), "{e}");
        assert!(e.contains("must be lowercase"), "{e}");
    }
    // Upper case in a tag is fine, as in a domain.
    assert_eq!(canon("busybox:Latest"), "docker.io/library/busybox:Latest");
    assert_eq!(canon("Reg.Io/x:T_1"), "Reg.Io/x:T_1");
}

#[test]
fn path_components_and_separators() {
    for ok in [
        "a",
        "a.b",
        "a_b",
        "a__b",
        "a-b",
        "a--b",
        "a---b",
        "a.b_c__d-e",
        "0",
        "a/b/c/d/e",
        "a1/2b",
    ] {
        assert!(grammar::parse(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        "/",
        "a/",
        "/a",
        "a//b",
        "a/b/",
        "reg.io/",
        "reg.io//a",
        "a.",
        ".a",
        "a..b",
        "a___b",
        "a_.b",
        "a._b",
        "a.-b",
        "-a",
        "a-",
        "_a",
        "a_",
        "a b",
        "a+b",
        "a/b c",
        "é",
        "reg.io/a b",
    ] {
        assert_eq!(refused(bad), Refused::Format, "{bad:?}");
    }
}

#[test]
fn domains_and_ports() {
    for ok in [
        "a.b/x",
        "a-b.c/x",
        "a--b.c/x",
        "1.2.3.4/x",
        "a.b:1/x",
        "a.b:65535/x",
        "h:0/x",
        "[::]/x",
        "[1:2:3:4:5:6:7:8]:80/x",
    ] {
        assert!(grammar::parse(ok).is_ok(), "{ok}");
    }
    for bad in [
        "-a.b/x",
        "a-.b/x",
        "a..b/x",
        ".a/x",
        "a./x",
        "a_b.c/x",
        "a.b:/x",
        "a.b:x/x",
        "a.b:5000:1/x",
        ":5000/x",
        "a.b:-1/x",
        "[]/x",
        "[::1/x",
        "[::1]5000/x",
        "[::1]:/x",
        "[::g]/x",
        "[fe80::1%eth0]/x",
        "::1/x",
    ] {
        assert_eq!(refused(bad), Refused::Format, "{bad}");
    }
}

#[test]
fn tags() {
    let t128 = "t".repeat(128);
    for ok in [
        "x:a",
        "x:1",
        "x:_",
        "x:a.b-c_d",
        "x:A",
        &format!("x:{t128}"),
    ] {
        assert!(grammar::parse(ok).is_ok(), "{ok}");
    }
    let t129 = "t".repeat(129);
    for bad in [
        "x:",
        "x:.a",
        "x:-a",
        "x:a+b",
        "x:a/b",
        "x:a:b",
        "x:é",
        &format!("x:{t129}"),
        "reg:5000/x:",
    ] {
        assert_eq!(refused(bad), Refused::Format, "{bad}");
    }
}

#[test]
fn name_length() {
    // The whole name (domain/path, normalised) is at most 255 characters.
    let fits = format!("reg.io/{}", "a".repeat(255 - 7));
    assert_eq!(ImageRef::parse(&fits).unwrap().repo_name().len(), 255);
    assert!(ImageRef::parse(&format!("{fits}:tag")).is_ok());
    assert_eq!(refused(&format!("{fits}a")), Refused::TooLong);
    // docker.io/library/ counts.
    let fits = "a".repeat(255 - "docker.io/library/".len());
    assert!(ImageRef::parse(&fits).is_ok());
    assert_eq!(refused(&format!("{fits}a")), Refused::TooLong);
    let e = ImageRef::parse(&format!("{fits}a"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("must not be more than 255 characters"), "{e}");
    // Long but malformed is a format error first.
    assert_eq!(
        refused(&"A".repeat(300)),
        Refused::Uppercase(format!("library/{}", "A".repeat(300)))
    );
}

#[test]
fn ids_are_not_names() {
    let hex = &D["sha256:".len()..];
    assert_eq!(refused(hex), Refused::Identifier);
    // 63 or 65 hex characters are a name like any other.
    assert!(grammar::parse(&hex[1..]).is_ok());
    assert!(grammar::parse(&format!("{hex}0")).is_ok());
}

#[test]
fn oci_client_reference_is_built_not_parsed() {
    let r = ImageRef::parse("registry.local:5000/team/app:1.2")
        .unwrap()
        .oci();
    assert_eq!(r.registry(), "registry.local:5000");
    assert_eq!(r.repository(), "team/app");
    assert_eq!(r.tag(), Some("1.2"));
    assert_eq!(r.digest(), None);
    let r = ImageRef::parse("busybox").unwrap().oci();
    assert_eq!(r.resolve_registry(), "index.docker.io");
    assert_eq!(r.tag(), Some("latest"));
    let r = ImageRef::parse(&format!("[::1]:5000/x:t@{D}")).unwrap();
    let o = r.oci();
    assert_eq!(o.digest(), Some(D));
    assert_eq!(o.registry(), "[::1]:5000");
    let d = Digest::of(b"child");
    let o = ImageRef::parse("a.b/c:1").unwrap().with_digest(&d).oci();
    assert_eq!((o.tag(), o.digest()), (None, Some(d.as_str())));
}

/// Where oci-spec's regex parser accepts a reference, ours gives the same parts; where the two
/// disagree, it is one of the known differences (each docker's behaviour, not oci-spec's).
#[test]
fn agrees_with_oci_spec_on_a_corpus() {
    use oci_spec::distribution::Reference;
    let mut corpus: Vec<String> = [
        "busybox",
        "busybox:1.36",
        "library/busybox:latest",
        "foo/bar",
        "foo/bar-baz_x.y:v1.2-rc",
        "a__b/c",
        "a--b/c---d",
        "quay.io/org/app:1",
        "localhost/x",
        "localhost:5000/x",
        "registry.example.com/a/b/c:tag",
        "registry.local:5000/team/app:1.2",
        "127.0.0.1:5000/busybox:latest",
        "docker.io/library/busybox",
        "docker.io/busybox",
        "index.docker.io/busybox",
        "localhost:5000",
        "REG.IO:1/x:T",
        "Busybox",
        "foo/Bar",
        "x:",
        "x:.t",
        "a/-b",
        "a//b",
        "a/",
        "",
        "x@sha256:00",
        "a b",
        "x:a+b",
        "x:y:z",
        "a.b:/x",
        "a.b:x/x",
        "-a.b/x",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    corpus.push(format!("busybox@{D}"));
    corpus.push(format!("reg.io:5000/a/b:1@{D}"));
    corpus.push(format!("x:{}", "t".repeat(128)));
    corpus.push(format!("x:{}", "t".repeat(129)));
    corpus.push(format!("reg.io/{}", "a".repeat(240)));
    for s in &corpus {
        let theirs = s.parse::<Reference>();
        let ours = ImageRef::parse(s);
        match (&theirs, &ours) {
            (Ok(t), Ok(o)) => {
                assert_eq!(t.registry(), o.registry(), "{s}");
                assert_eq!(t.repository(), o.repository(), "{s}");
                assert_eq!(t.tag(), o.tag(), "{s}");
                assert_eq!(t.digest(), o.digest().as_ref().map(Digest::as_str), "{s}");
            }
            (Err(_), Err(_)) => {}
            _ => panic!("{s:?}: oci-spec {theirs:?}, barge {ours:?}"),
        }
    }
    // The known differences, all docker's way.
    let hex = &D["sha256:".len()..];
    for (s, why) in [
        ("[::1]:5000/x", "IPv6 hosts (oci-spec has no IPv6)"),
        ("a_b.c/x", "a host with '_' (oci-spec takes it as a path)"),
        (hex, "an image ID (docker refuses it as a name)"),
    ] {
        let theirs = s.parse::<Reference>().is_ok();
        let ours = ImageRef::parse(s).is_ok();
        assert_ne!(theirs, ours, "{s}: {why}");
    }
    // A first part with upper case is a domain for docker; oci-spec keeps it in the path.
    let theirs: Reference = "Registry/x".parse().unwrap();
    assert_eq!(theirs.registry(), "docker.io");
    assert_eq!(
        ImageRef::parse("Registry/x").unwrap().registry(),
        "Registry"
    );
}
