//! `GET /containers/{id}/stats?stream=&one-shot=`: docker's stats documents from the
//! engine's samples; streamed once a second (each with the one before as `precpu`) until the
//! client goes or the container stops.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use barge_engine::docker::stats::stats_json;
use tokio::sync::mpsc;

use crate::error::ApiResult;
use crate::routes::params::Params;
use crate::state::{engine, AppState};

pub async fn stats(
    State(s): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    let stream = p.flag("stream", true)?;
    let one_shot = p.flag("one-shot", false)?;
    // The first sample now; an unknown container is a 404. A container that does not run
    // has no usage: one document of zeros, as dockerd answers.
    let (rec, first) = s
        .blocking(move |e| {
            let rec = engine(e.db.find(&id))?;
            if !e.status(&rec).state.is_active() {
                return Ok((rec, None));
            }
            let cur = engine(e.stats_sample(&rec.id))?;
            Ok((rec, Some(cur)))
        })
        .await?;
    let name = format!("/{}", rec.name);
    let Some(first) = first else {
        let zero = barge_engine::stats::StatsSample::default();
        let mut doc = stats_json(&rec.id, &name, None, &zero);
        doc["read"] = serde_json::json!("0001-01-01T00:00:00Z");
        return Ok(json_response(Body::from(format!("{doc}\n"))));
    };
    if !stream {
        let prev = if one_shot {
            None
        } else {
            // docker waits for a second sample so the CPU percentage can be computed.
            tokio::time::sleep(Duration::from_millis(1000)).await;
            let id = rec.id.clone();
            let next = s.blocking(move |e| engine(e.stats_sample(&id))).await?;
            return Ok(json_response(Body::from(format!(
                "{}\n",
                stats_json(&rec.id, &name, Some(&first), &next)
            ))));
        };
        return Ok(json_response(Body::from(format!(
            "{}\n",
            stats_json(&rec.id, &name, prev, &first)
        ))));
    }
    let (tx, rx) = mpsc::channel::<Bytes>(2);
    tokio::spawn(async move {
        let mut prev = None;
        let mut cur = first;
        loop {
            let doc = stats_json(&rec.id, &name, prev.as_ref(), &cur);
            if tx.send(Bytes::from(format!("{doc}\n"))).await.is_err() {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = tx.closed() => return,
            }
            let id = rec.id.clone();
            match s.blocking(move |e| engine(e.stats_sample(&id))).await {
                Ok(next) => {
                    prev = Some(std::mem::replace(&mut cur, next));
                }
                Err(_) => return,
            }
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    Ok(json_response(Body::from_stream(body)))
}

fn json_response(body: Body) -> Response {
    let mut r = Response::new(body);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}
