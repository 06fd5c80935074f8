//! RuntimeService: each RPC checks its request, then calls the engine on a blocking thread
//! through the modules for sandboxes, containers, exec, stats and events.

use std::collections::HashMap;

use tonic::{Request, Response, Status};

use crate::proto::runtime_service_server::RuntimeService;
use crate::proto::*;
use crate::server::Cri;
use crate::status::engine;

type R<T> = Result<Response<T>, Status>;

fn ok<T>(t: T) -> R<T> {
    Ok(Response::new(t))
}

/// The CRI API version served.
pub const API_VERSION: &str = "v1";

impl Cri {
    fn streaming(&self) -> Result<&std::sync::Arc<dyn crate::server::Streaming>, Status> {
        self.streaming.as_ref().ok_or_else(|| {
            Status::unavailable(
                "the CRI streaming server (exec, attach, port-forward) is not running in this daemon",
            )
        })
    }

    /// The container `id` must be a running CRI container (for exec and attach); whether
    /// it was created with stdin_once.
    async fn running(&self, id: String) -> Result<bool, Status> {
        self.blocking(move |e| {
            let rec = crate::container::find(e, &id)?;
            if !e.status(&rec).state.is_active() {
                return Err(Status::failed_precondition(format!(
                    "container {id} is not running"
                )));
            }
            Ok(rec.config.labels.contains_key(crate::labels::STDIN_ONCE))
        })
        .await
    }
}

#[tonic::async_trait]
impl RuntimeService for Cri {
    async fn version(&self, _req: Request<VersionRequest>) -> R<VersionResponse> {
        ok(VersionResponse {
            version: "0.1.0".into(),
            runtime_name: "barge".into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
            runtime_api_version: API_VERSION.into(),
        })
    }

    async fn run_pod_sandbox(
        &self,
        req: Request<RunPodSandboxRequest>,
    ) -> R<RunPodSandboxResponse> {
        let req = req.into_inner();
        if !req.runtime_handler.is_empty() && req.runtime_handler != "barge" {
            return Err(Status::invalid_argument(format!(
                "RunPodSandbox: unknown runtime handler {:?} (barge has one, \"\")",
                req.runtime_handler
            )));
        }
        let Some(config) = req.config else {
            return Err(Status::invalid_argument("RunPodSandbox: no sandbox config"));
        };
        let pod_sandbox_id = self
            .blocking(move |e| crate::sandbox::run(e, &config))
            .await?;
        ok(RunPodSandboxResponse { pod_sandbox_id })
    }

    async fn stop_pod_sandbox(
        &self,
        req: Request<StopPodSandboxRequest>,
    ) -> R<StopPodSandboxResponse> {
        let id = req.into_inner().pod_sandbox_id;
        if id.is_empty() {
            return Err(Status::invalid_argument(
                "StopPodSandbox: no pod_sandbox_id",
            ));
        }
        self.blocking(move |e| crate::sandbox::stop(e, &id)).await?;
        ok(StopPodSandboxResponse {})
    }

    async fn remove_pod_sandbox(
        &self,
        req: Request<RemovePodSandboxRequest>,
    ) -> R<RemovePodSandboxResponse> {
        let id = req.into_inner().pod_sandbox_id;
        if id.is_empty() {
            return Err(Status::invalid_argument(
                "RemovePodSandbox: no pod_sandbox_id",
            ));
        }
        self.blocking(move |e| crate::sandbox::remove(e, &id))
            .await?;
        ok(RemovePodSandboxResponse {})
    }

    async fn pod_sandbox_status(
        &self,
        req: Request<PodSandboxStatusRequest>,
    ) -> R<PodSandboxStatusResponse> {
        let req = req.into_inner();
        let r = self
            .blocking(move |e| crate::sandbox::status(e, &req.pod_sandbox_id, req.verbose))
            .await?;
        ok(r)
    }

    async fn list_pod_sandbox(
        &self,
        req: Request<ListPodSandboxRequest>,
    ) -> R<ListPodSandboxResponse> {
        let f = req.into_inner().filter;
        let items = self
            .blocking(move |e| crate::sandbox::list(e, f.as_ref()))
            .await?;
        ok(ListPodSandboxResponse { items })
    }

    async fn create_container(
        &self,
        req: Request<CreateContainerRequest>,
    ) -> R<CreateContainerResponse> {
        let req = req.into_inner();
        let Some(config) = req.config else {
            return Err(Status::invalid_argument(
                "CreateContainer: no container config",
            ));
        };
        let container_id = self
            .blocking(move |e| {
                crate::container::create(
                    e,
                    &req.pod_sandbox_id,
                    &config,
                    req.sandbox_config.as_ref(),
                )
            })
            .await?;
        ok(CreateContainerResponse { container_id })
    }

    async fn start_container(
        &self,
        req: Request<StartContainerRequest>,
    ) -> R<StartContainerResponse> {
        let id = req.into_inner().container_id;
        self.blocking(move |e| {
            let rec = crate::container::find(e, &id)?;
            engine(e.start(&rec.id, None)).map(drop)
        })
        .await?;
        ok(StartContainerResponse {})
    }

    async fn stop_container(&self, req: Request<StopContainerRequest>) -> R<StopContainerResponse> {
        let req = req.into_inner();
        let timeout = u32::try_from(req.timeout.max(0)).unwrap_or(u32::MAX);
        self.blocking(move |e| {
            let rec = crate::container::find(e, &req.container_id)?;
            engine(e.stop(&rec.id, Some(timeout))).map(drop)
        })
        .await?;
        ok(StopContainerResponse {})
    }

    async fn remove_container(
        &self,
        req: Request<RemoveContainerRequest>,
    ) -> R<RemoveContainerResponse> {
        let id = req.into_inner().container_id;
        if id.is_empty() {
            return Err(Status::invalid_argument("RemoveContainer: no container_id"));
        }
        self.blocking(move |e| crate::container::remove(e, &id))
            .await?;
        ok(RemoveContainerResponse {})
    }

    async fn list_containers(
        &self,
        req: Request<ListContainersRequest>,
    ) -> R<ListContainersResponse> {
        let f = req.into_inner().filter;
        let containers = self
            .blocking(move |e| crate::container::list(e, f.as_ref()))
            .await?;
        ok(ListContainersResponse { containers })
    }

    async fn container_status(
        &self,
        req: Request<ContainerStatusRequest>,
    ) -> R<ContainerStatusResponse> {
        let req = req.into_inner();
        let r = self
            .blocking(move |e| crate::container::status(e, &req.container_id, req.verbose))
            .await?;
        ok(r)
    }

    async fn update_container_resources(
        &self,
        req: Request<UpdateContainerResourcesRequest>,
    ) -> R<UpdateContainerResourcesResponse> {
        let req = req.into_inner();
        self.blocking(move |e| crate::container::update(e, &req.container_id, req.linux.as_ref()))
            .await?;
        ok(UpdateContainerResourcesResponse {})
    }

    async fn reopen_container_log(
        &self,
        req: Request<ReopenContainerLogRequest>,
    ) -> R<ReopenContainerLogResponse> {
        let id = req.into_inner().container_id;
        self.blocking(move |e| {
            let rec = crate::container::find(e, &id)?;
            if rec.config.log_path.is_none() {
                return Err(Status::failed_precondition(format!(
                    "container {id} has no CRI log_path"
                )));
            }
            engine(e.reopen_log(&rec.id))
        })
        .await?;
        ok(ReopenContainerLogResponse {})
    }

    async fn exec_sync(&self, req: Request<ExecSyncRequest>) -> R<ExecSyncResponse> {
        let req = req.into_inner();
        let r = self
            .blocking(move |e| crate::exec::exec_sync(e, &req.container_id, req.cmd, req.timeout))
            .await?;
        ok(r)
    }

    async fn exec(&self, req: Request<ExecRequest>) -> R<ExecResponse> {
        let req = req.into_inner();
        let s = self.streaming()?.clone();
        self.running(req.container_id.clone()).await?;
        let url = s.exec_url(&req)?;
        ok(ExecResponse { url })
    }

    async fn attach(&self, req: Request<AttachRequest>) -> R<AttachResponse> {
        let req = req.into_inner();
        let s = self.streaming()?.clone();
        let stdin_once = self.running(req.container_id.clone()).await?;
        let url = s.attach_url(&req, stdin_once)?;
        ok(AttachResponse { url })
    }

    async fn port_forward(&self, req: Request<PortForwardRequest>) -> R<PortForwardResponse> {
        let req = req.into_inner();
        let s = self.streaming()?.clone();
        let id = req.pod_sandbox_id.clone();
        let netns = self
            .blocking(move |e| {
                let i = engine(e.pod_inspect(&id))?;
                i.sandbox.namespaces.get("network").cloned().ok_or_else(|| {
                    Status::failed_precondition(format!(
                        "sandbox {id} has no network namespace of its own (not ready, or the host's)"
                    ))
                })
            })
            .await?;
        let mut ports = Vec::new();
        for p in req.port {
            ports.push(u16::try_from(p).ok().filter(|p| *p > 0).ok_or_else(|| {
                Status::invalid_argument(format!("PortForward: port {p} is out of range"))
            })?);
        }
        let url = s.portforward_url(netns, ports)?;
        ok(PortForwardResponse { url })
    }

    async fn container_stats(
        &self,
        req: Request<ContainerStatsRequest>,
    ) -> R<ContainerStatsResponse> {
        let id = req.into_inner().container_id;
        let stats = self.blocking(move |e| crate::stats::one(e, &id)).await?;
        ok(ContainerStatsResponse { stats: Some(stats) })
    }

    async fn list_container_stats(
        &self,
        req: Request<ListContainerStatsRequest>,
    ) -> R<ListContainerStatsResponse> {
        let f = req.into_inner().filter;
        let stats = self
            .blocking(move |e| crate::stats::list(e, f.as_ref()))
            .await?;
        ok(ListContainerStatsResponse { stats })
    }

    async fn pod_sandbox_stats(
        &self,
        req: Request<PodSandboxStatsRequest>,
    ) -> R<PodSandboxStatsResponse> {
        let id = req.into_inner().pod_sandbox_id;
        let stats = self
            .blocking(move |e| crate::stats::sandbox(e, &id))
            .await?;
        ok(PodSandboxStatsResponse { stats: Some(stats) })
    }

    async fn list_pod_sandbox_stats(
        &self,
        req: Request<ListPodSandboxStatsRequest>,
    ) -> R<ListPodSandboxStatsResponse> {
        let f = req.into_inner().filter;
        let stats = self
            .blocking(move |e| crate::stats::sandboxes(e, f.as_ref()))
            .await?;
        ok(ListPodSandboxStatsResponse { stats })
    }

    async fn update_runtime_config(
        &self,
        req: Request<UpdateRuntimeConfigRequest>,
    ) -> R<UpdateRuntimeConfigResponse> {
        let cidr = req
            .into_inner()
            .runtime_config
            .and_then(|c| c.network_config)
            .map(|n| n.pod_cidr)
            .unwrap_or_default();
        if !cidr.is_empty() {
            for part in cidr.split(',') {
                let ok = part.split_once('/').is_some_and(|(a, l)| {
                    a.parse::<std::net::IpAddr>().is_ok_and(|ip| {
                        l.parse::<u8>()
                            .is_ok_and(|l| l <= if ip.is_ipv4() { 32 } else { 128 })
                    })
                });
                if !ok {
                    return Err(Status::invalid_argument(format!(
                        "UpdateRuntimeConfig: pod_cidr {part:?} is not a CIDR"
                    )));
                }
            }
        }
        if let Ok(mut c) = self.pod_cidr.lock() {
            *c = cidr;
        }
        ok(UpdateRuntimeConfigResponse {})
    }

    async fn status(&self, req: Request<StatusRequest>) -> R<StatusResponse> {
        let verbose = req.into_inner().verbose;
        let cond = |t: &str, ok: bool, reason: &str, message: String| RuntimeCondition {
            r#type: t.into(),
            status: ok,
            reason: if ok { String::new() } else { reason.into() },
            message,
        };
        let net = self
            .blocking(|e| {
                let dirs = &e.opts.network.plugin_dirs;
                let found = dirs.iter().any(|d| d.join("bridge").exists());
                Ok((found, dirs.clone()))
            })
            .await?;
        let net_msg = if net.0 {
            String::new()
        } else {
            format!("no CNI bridge plugin in {:?}", net.1)
        };
        let mut info = HashMap::new();
        if verbose {
            let cidr = self.pod_cidr.lock().map(|c| c.clone()).unwrap_or_default();
            info.insert(
                "config".to_string(),
                serde_json::json!({"podCIDR": cidr, "cgroupDriver": "cgroupfs"}).to_string(),
            );
        }
        ok(StatusResponse {
            status: Some(RuntimeStatus {
                conditions: vec![
                    cond("RuntimeReady", true, "", String::new()),
                    cond("NetworkReady", net.0, "NetworkPluginNotReady", net_msg),
                ],
            }),
            info,
            runtime_handlers: Vec::new(),
            features: None,
        })
    }

    async fn checkpoint_container(
        &self,
        _req: Request<CheckpointContainerRequest>,
    ) -> R<CheckpointContainerResponse> {
        Err(Status::unimplemented(
            "CheckpointContainer: barge cannot checkpoint containers yet",
        ))
    }

    type GetContainerEventsStream =
        tokio_stream::wrappers::ReceiverStream<Result<ContainerEventResponse, Status>>;

    async fn get_container_events(
        &self,
        _req: Request<GetEventsRequest>,
    ) -> R<Self::GetContainerEventsStream> {
        let engine = self.engine.clone();
        let rx = tokio::task::spawn_blocking(move || crate::events::follow(engine))
            .await
            .map_err(|e| Status::internal(format!("follow events: {e}")))??;
        ok(tokio_stream::wrappers::ReceiverStream::new(rx))
    }

    async fn list_metric_descriptors(
        &self,
        _req: Request<ListMetricDescriptorsRequest>,
    ) -> R<ListMetricDescriptorsResponse> {
        ok(ListMetricDescriptorsResponse::default())
    }

    async fn list_pod_sandbox_metrics(
        &self,
        _req: Request<ListPodSandboxMetricsRequest>,
    ) -> R<ListPodSandboxMetricsResponse> {
        ok(ListPodSandboxMetricsResponse::default())
    }

    async fn runtime_config(
        &self,
        _req: Request<RuntimeConfigRequest>,
    ) -> R<RuntimeConfigResponse> {
        ok(RuntimeConfigResponse {
            linux: Some(LinuxRuntimeConfiguration {
                cgroup_driver: CgroupDriver::Cgroupfs as i32,
            }),
        })
    }
}
