//! Pulling images (`docker pull`, `POST /images/create`) through the registry helper, and the
//! pull policy of `create`/`run` (`--pull missing|always|never`).

use std::path::PathBuf;

use barge_image::platform::Platform;
use barge_image::reference::ImageRef;

use crate::error::{Error, Result};
use crate::registry::proto::{Credentials, PullEvent, Reply, Request};
use crate::Engine;

/// Where a pull's progress goes.
pub enum PullProgress<'a> {
    /// Drawn by the helper on the inherited stderr (bars on a terminal, lines otherwise).
    Terminal,
    /// Nothing.
    Quiet,
    /// Each step to this callback (docker's progress stream).
    Events(&'a mut dyn FnMut(PullEvent)),
}

/// How to pull.
pub struct PullOptions<'a> {
    /// os/arch[/variant]; the host's when None.
    pub platform: Option<String>,
    /// Plain HTTP for this registry.
    pub insecure: bool,
    /// Credentials for this pull instead of the stored ones.
    pub auth: Option<Credentials>,
    pub progress: PullProgress<'a>,
}

impl Default for PullOptions<'_> {
    fn default() -> Self {
        PullOptions {
            platform: None,
            insecure: false,
            auth: None,
            progress: PullProgress::Quiet,
        }
    }
}

/// What a pull got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// What the name resolved to (docker's "Digest:").
    pub digest: String,
    /// The stored name.
    pub name: String,
    /// The name had this image already.
    pub up_to_date: bool,
}

impl Pulled {
    /// docker's closing status line: "Downloaded newer image for busybox:latest".
    pub fn status(&self) -> String {
        let what = if self.up_to_date {
            "Image is up to date for"
        } else {
            "Downloaded newer image for"
        };
        format!("{what} {}", crate::docker::image::display_name(&self.name))
    }
}

/// `--pull`: when `create` pulls its image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PullPolicy {
    /// Only when it is not stored (the default).
    #[default]
    Missing,
    Always,
    Never,
}

impl PullPolicy {
    pub fn parse(s: &str) -> Result<PullPolicy> {
        match s {
            "missing" | "" => Ok(PullPolicy::Missing),
            "always" => Ok(PullPolicy::Always),
            "never" => Ok(PullPolicy::Never),
            other => Err(Error::BadParameter(format!(
                "--pull {other:?}: use missing, always or never"
            ))),
        }
    }
}

/// What the policy asks for an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullNeed {
    /// Stored, and no pull asked.
    No,
    /// Not stored: pull it.
    Missing,
    /// Stored, pulled again (`always`).
    Refresh,
}

/// The registry helper and the store and configuration it works on (for front ends that
/// pull without opening an engine, like `barge pull`).
#[derive(Debug, Clone)]
pub struct HelperPaths {
    pub helper: PathBuf,
    pub root: PathBuf,
    pub config: PathBuf,
}

/// Pull `reference` into the store at `at.root` through the helper.
pub fn pull(at: &HelperPaths, reference: &str, opts: &mut PullOptions<'_>) -> Result<Pulled> {
    // Bad names and platforms are refused here, before the helper starts.
    ImageRef::parse(reference)?;
    if let Some(p) = &opts.platform {
        Platform::parse(p)?;
    }
    let (events, quiet) = match opts.progress {
        PullProgress::Terminal => (false, false),
        PullProgress::Quiet => (false, true),
        PullProgress::Events(_) => (true, false),
    };
    let req = Request::Pull {
        root: at.root.clone(),
        config: at.config.clone(),
        image: reference.to_string(),
        platform: opts.platform.clone(),
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
        Reply::Pulled {
            digest,
            name,
            up_to_date,
        } => Ok(Pulled {
            digest,
            name,
            up_to_date,
        }),
        other => Err(Error::Registry {
            kind: crate::error::ErrorKind::Internal,
            msg: format!("the registry helper answered a pull with {other:?}"),
        }),
    }
}

/// Check `user`/`password` against `server` (docker login) through the helper.
pub fn login_check(
    at: &HelperPaths,
    server: &str,
    user: &str,
    password: &str,
    insecure: bool,
) -> Result<()> {
    let req = Request::Login {
        config: at.config.clone(),
        server: server.to_string(),
        user: user.to_string(),
        password: password.to_string(),
        insecure,
    };
    match crate::registry::call(&at.helper, &req, &mut |_| {})? {
        Reply::LoggedIn => Ok(()),
        other => Err(Error::Registry {
            kind: crate::error::ErrorKind::Internal,
            msg: format!("the registry helper answered a login with {other:?}"),
        }),
    }
}

/// What the registry offers for `reference` (docker's `/distribution/NAME/json`): the
/// descriptor it resolves to and its platforms, through the helper.
pub fn describe(
    at: &HelperPaths,
    reference: &str,
    auth: Option<Credentials>,
) -> Result<(serde_json::Value, Vec<serde_json::Value>)> {
    ImageRef::parse(reference)?;
    let req = Request::Distribution {
        config: at.config.clone(),
        image: reference.to_string(),
        auth,
    };
    match crate::registry::call(&at.helper, &req, &mut |_| {})? {
        Reply::Described {
            descriptor,
            platforms,
        } => Ok((descriptor, platforms)),
        other => Err(Error::Registry {
            kind: crate::error::ErrorKind::Internal,
            msg: format!("the registry helper answered a distribution request with {other:?}"),
        }),
    }
}

impl Engine {
    /// What the registry offers for `reference`, without pulling it.
    pub fn describe(
        &self,
        reference: &str,
        auth: Option<Credentials>,
    ) -> Result<(serde_json::Value, Vec<serde_json::Value>)> {
        describe(&self.helper_paths(), reference, auth)
    }

    /// Pull `reference` into the store.
    pub fn pull(&self, reference: &str, opts: &mut PullOptions<'_>) -> Result<Pulled> {
        pull(&self.helper_paths(), reference, opts)
    }

    /// Check `user`/`password` against `server` (docker login) through the helper.
    pub fn login_check(
        &self,
        server: &str,
        user: &str,
        password: &str,
        insecure: bool,
    ) -> Result<()> {
        login_check(&self.helper_paths(), server, user, password, insecure)
    }

    pub(crate) fn helper_paths(&self) -> HelperPaths {
        HelperPaths {
            helper: self.opts.registry.clone(),
            root: self.opts.root.clone(),
            config: self.opts.config.clone(),
        }
    }

    /// Whether `image` must be pulled before a create under `policy`. A name that is not
    /// stored must be one that can be pulled (docker's "invalid reference format"); `never`
    /// with a missing image is an error naming it.
    pub fn pull_needed(&self, image: &str, policy: PullPolicy) -> Result<PullNeed> {
        let have = self.images.resolve(image).is_ok();
        if !have {
            ImageRef::parse(image)?;
        }
        match (policy, have) {
            (PullPolicy::Always, true) => Ok(PullNeed::Refresh),
            (_, true) => Ok(PullNeed::No),
            (PullPolicy::Never, false) => {
                Err(Error::NoSuchImage(format!("{image} (--pull never)")))
            }
            (_, false) => Ok(PullNeed::Missing),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies() {
        assert_eq!(PullPolicy::parse("always").unwrap(), PullPolicy::Always);
        assert_eq!(PullPolicy::parse("missing").unwrap(), PullPolicy::Missing);
        assert!(PullPolicy::parse("sometimes").is_err());
        let (_dir, engine) = crate::testing::engine();
        assert_eq!(
            engine.pull_needed("busybox", PullPolicy::Missing).unwrap(),
            PullNeed::Missing
        );
        let e = engine
            .pull_needed("busybox", PullPolicy::Never)
            .unwrap_err();
        assert!(e.to_string().contains("busybox"), "{e}");
        assert!(engine.pull_needed("Bad Ref!", PullPolicy::Missing).is_err());
    }

    #[test]
    fn pull_without_helper_names_it() {
        let (_dir, engine) = crate::testing::engine();
        let e = engine
            .pull("127.0.0.1:1/x:y", &mut PullOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("starting the registry helper"), "{e}");
    }
}
