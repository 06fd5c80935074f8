//! The CRI socket and its two services (RuntimeService, ImageService) on the daemon's tokio
//! runtime; engine work runs on blocking threads.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use barge_engine::Engine;
use tonic::Status;

use crate::proto::image_service_server::ImageServiceServer;
use crate::proto::runtime_service_server::RuntimeServiceServer;
use crate::status::CriResult;

/// The streaming server's URLs for Exec, Attach and PortForward (implemented by the daemon
/// with the CRI streaming server); None: those RPCs answer Unavailable.
pub trait Streaming: Send + Sync + 'static {
    fn exec_url(&self, req: &crate::proto::ExecRequest) -> CriResult<String>;
    /// `stdin_once`: the container's (its stdin closes when the client's ends).
    fn attach_url(&self, req: &crate::proto::AttachRequest, stdin_once: bool) -> CriResult<String>;
    /// `netns`: the pinned network namespace file of the sandbox.
    fn portforward_url(&self, netns: PathBuf, ports: Vec<u16>) -> CriResult<String>;
}

/// What every RPC shares.
#[derive(Clone)]
pub struct Cri {
    pub engine: Arc<Engine>,
    pub streaming: Option<Arc<dyn Streaming>>,
    /// The pod CIDR kubelet set with UpdateRuntimeConfig ("" until then).
    pub pod_cidr: Arc<Mutex<String>>,
}

impl Cri {
    pub fn new(engine: Arc<Engine>, streaming: Option<Arc<dyn Streaming>>) -> Cri {
        Cri {
            engine,
            streaming,
            pod_cidr: Arc::default(),
        }
    }

    /// Run engine work on a blocking thread (the engine is sync). A panic there fails this
    /// call only.
    pub async fn blocking<T, F>(&self, f: F) -> CriResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Engine) -> CriResult<T> + Send + 'static,
    {
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || f(&engine))
            .await
            .map_err(|e| Status::internal(format!("engine call failed: {e}")))?
    }
}

/// Parse `--cri`: `unix:///PATH`, or `none` (None).
pub fn parse_endpoint(s: &str) -> Result<Option<PathBuf>, String> {
    if s == "none" {
        return Ok(None);
    }
    match s.strip_prefix("unix://") {
        Some(p) if p.starts_with('/') => Ok(Some(PathBuf::from(p))),
        _ => Err(format!(
            "--cri {s:?}: use unix:///PATH (the CRI socket) or none (no CRI server)"
        )),
    }
}

/// Bind the CRI socket at `path` (mode 0600: the CRI gives root on the host); a stale
/// socket file is replaced, its directory created.
pub fn bind(path: &Path) -> Result<std::os::unix::net::UnixListener, String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("create the CRI socket's directory {}: {e}", dir.display()))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()) => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(format!(
                    "CRI socket {}: another server is listening on it",
                    path.display()
                ));
            }
            let _ = std::fs::remove_file(path);
        }
        Ok(_) => {
            return Err(format!(
                "CRI socket {}: the path exists and is not a socket",
                path.display()
            ))
        }
        Err(_) => {}
    }
    let l = std::os::unix::net::UnixListener::bind(path)
        .map_err(|e| format!("bind the CRI socket {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("chmod the CRI socket {}: {e}", path.display()))?;
    l.set_nonblocking(true)
        .map_err(|e| format!("CRI socket {}: {e}", path.display()))?;
    Ok(l)
}

/// Serve both CRI services on `listener` until `shutdown` resolves.
pub async fn serve(
    cri: Cri,
    listener: std::os::unix::net::UnixListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), String> {
    let l =
        tokio::net::UnixListener::from_std(listener).map_err(|e| format!("CRI listener: {e}"))?;
    let incoming = tokio_stream::wrappers::UnixListenerStream::new(l);
    tonic::transport::Server::builder()
        .add_service(RuntimeServiceServer::new(cri.clone()))
        .add_service(ImageServiceServer::new(cri))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .map_err(|e| format!("CRI server: {e}"))
}
