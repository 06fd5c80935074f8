//! `/containers/...`: create, start, stop, list, inspect, wait, attach, logs, ...

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use crate::error::ApiResult;
use crate::routes::params::Params;
use crate::state::{engine, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/containers/json", get(list))
}

/// `GET /containers/json` (a first cut: ids and names; the docker-format module fills it).
async fn list(State(s): State<AppState>, p: Params) -> ApiResult<Json<serde_json::Value>> {
    let all = p.flag("all", false)?;
    let rows = s
        .blocking(move |e| {
            let list = engine(e.list(all))?;
            Ok(list
                .into_iter()
                .map(|(rec, st)| {
                    serde_json::json!({
                        "Id": rec.id,
                        "Names": [format!("/{}", rec.name)],
                        "State": st.state.as_str(),
                    })
                })
                .collect::<Vec<_>>())
        })
        .await?;
    Ok(Json(serde_json::Value::Array(rows)))
}
