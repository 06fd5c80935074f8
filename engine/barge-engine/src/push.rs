//! Pushing images (`docker push`, `POST /images/{name}/push`) through the registry helper.
//! The failure kinds a caller decides on: the image is not stored (`NotFound`), the registry
//! refused the credentials (`Unauthorized`), the registry failed or is unreachable
//! (`Unavailable`); see [`crate::error::ErrorKind`].

use barge_image::reference::ImageRef;

use crate::error::{Error, ErrorKind, Result};
use crate::pull::{HelperPaths, PullProgress};
use crate::registry::proto::{Credentials, PullEvent, Reply, Request};
use crate::Engine;

/// How to push.
pub struct PushOptions<'a> {
    /// Plain HTTP for this registry.
    pub insecure: bool,
    /// Credentials for this push instead of the stored ones.
    pub auth: Option<Credentials>,
    /// Where progress goes (docker's push statuses: "Preparing", "Pushing", "Pushed",
    /// "Layer already exists", "Mounted from REPO").
    pub progress: PullProgress<'a>,
}

impl Default for PushOptions<'_> {
    fn default() -> Self {
        PushOptions {
            insecure: false,
            auth: None,
            progress: PullProgress::Quiet,
        }
    }
}

/// What a push put on the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// `registry/repository:tag`.
    pub reference: String,
    pub tag: String,
    /// The digest of the manifest (or index) the tag names now.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
}

impl Pushed {
    /// docker's closing line: `v1: digest: sha256:… size: 527`.
    pub fn status(&self) -> String {
        format!("{}: digest: {} size: {}", self.tag, self.digest, self.size)
    }
}

/// Push the stored image `image` to `target` (the same name when `target` is `None`) through
/// the helper at `at`.
pub fn push(
    at: &HelperPaths,
    image: &str,
    target: Option<&str>,
    opts: &mut PushOptions<'_>,
) -> Result<Pushed> {
    let target = target.unwrap_or(image);
    // A bad target is refused here, before the helper starts.
    let parsed = ImageRef::parse(target)?;
    if parsed.digest().is_some() {
        return Err(Error::BadParameter(format!(
            "push {target}: push to a tag, not a digest (the registry computes the digest)"
        )));
    }
    let (events, quiet) = match opts.progress {
        PullProgress::Terminal => (false, false),
        PullProgress::Quiet => (false, true),
        PullProgress::Events(_) => (true, false),
    };
    let req = Request::Push {
        root: at.root.clone(),
        config: at.config.clone(),
        image: image.to_string(),
        target: target.to_string(),
        insecure: opts.insecure,
        quiet,
        events,
        auth: opts.auth.clone(),
    };
    let mut ignore = |_: PullEvent| {};
    let sink: &mut dyn FnMut(PullEvent) = match &mut opts.progress {
        PullProgress::Events(f) => &mut **f,
        _ => &mut ignore,
    };
    match crate::registry::call(&at.helper, &req, sink)? {
        Reply::Pushed {
            reference,
            tag,
            digest,
            size,
        } => Ok(Pushed {
            reference,
            tag,
            digest,
            size,
        }),
        other => Err(Error::Registry {
            kind: ErrorKind::Internal,
            msg: format!("the registry helper answered a push with {other:?}"),
        }),
    }
}

impl Engine {
    /// Push the stored image `image` to `target` (or under its own name). An image that is
    /// not stored is [`Error::NoSuchImage`] before anything is sent.
    pub fn push(
        &self,
        image: &str,
        target: Option<&str>,
        opts: &mut PushOptions<'_>,
    ) -> Result<Pushed> {
        if self.images.resolve(image).is_err() {
            return Err(Error::NoSuchImage(format!(
                "{image}: an image does not exist locally with this name"
            )));
        }
        push(&self.helper_paths(), image, target, opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_before_the_helper() {
        let (_dir, engine) = crate::testing::engine();
        let e = engine
            .push("127.0.0.1:1/x:y", None, &mut PushOptions::default())
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        assert!(e.to_string().contains("127.0.0.1:1/x:y"), "{e}");
        let at = engine.helper_paths();
        let d = format!("x@sha256:{}", "a".repeat(64));
        let e = push(&at, "x", Some(&d), &mut PushOptions::default()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BadParameter, "{e}");
    }

    #[test]
    fn docker_status_line() {
        let p = Pushed {
            reference: "r/x:v1".into(),
            tag: "v1".into(),
            digest: "sha256:ab".into(),
            size: 527,
        };
        assert_eq!(p.status(), "v1: digest: sha256:ab size: 527");
    }
}
