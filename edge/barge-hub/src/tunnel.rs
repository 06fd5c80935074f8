//! Exec and logs streams to an edge, through its session: the API calls
//! [`Tunnels::open`]; if this hub holds the node's session the request goes on it, otherwise
//! it is forwarded to the hub that does (from `conns/<node>` and `hubs/<id>` in etcd).

use tokio::sync::mpsc;

/// What to open on the edge.
#[derive(Debug, Clone)]
pub enum TunnelRequest {
    Exec {
        namespace: String,
        pod: String,
        container: String,
        cmd: Vec<String>,
        stdin: bool,
        tty: bool,
    },
    Logs {
        namespace: String,
        pod: String,
        container: String,
        follow: bool,
        tail: Option<u64>,
        timestamps: bool,
    },
}

/// From the edge.
#[derive(Debug, Clone)]
pub enum TunnelOutput {
    /// fd 1 or 2.
    Data { fd: u8, data: Vec<u8> },
    /// The end: exit code, or why it failed.
    End {
        exit_code: Option<i32>,
        error: Option<String>,
    },
}

/// An open stream. Dropping `input` closes stdin; dropping the whole stream cancels it on
/// the edge.
pub struct TunnelStream {
    /// stdin (an empty Vec closes stdin).
    pub input: mpsc::Sender<Vec<u8>>,
    pub output: mpsc::Receiver<TunnelOutput>,
}

/// The tunnel registry.
#[derive(Default)]
pub struct Tunnels {}

impl Tunnels {
    /// Open a stream to `node`. NotFound when the node is unknown; Unavailable when it has
    /// no session on any hub.
    pub async fn open(&self, node: &str, req: TunnelRequest) -> crate::Result<TunnelStream> {
        let _ = req;
        Err(crate::Error::Unavailable(format!(
            "node {node}: tunnels are not implemented yet"
        )))
    }
}
