//! HTTP fetch: fetches a URL through outbound HTTP (`wasi:http`) and reports
//! the status and the start of the body into the room as chat text.
//!
//! - Job metadata that is an `http://` or `https://` URL: fetch it once at
//!   start, report, and end the job (failed, with the reason, if the fetch
//!   failed).
//! - Otherwise: every chat message (`lk.chat`) that is such a URL is
//!   fetched and answered to its sender, until the room closes. Each fetch
//!   is its own task, so chat keeps being answered while one runs; fetches
//!   still running when the room closes are dropped with the job.
//!
//! The host only lets requests through to destinations on its allow-list
//! (`--allow-http`); everything else fails with `HttpRequestDenied` or
//! `DestinationIpProhibited`, which is what gets reported then.

use agent_host_sdk::{AsyncAgent, CHAT_TOPIC, JobContext, RoomEvent, http, spawn, warn};

/// Most body characters shown in a report.
const EXCERPT: usize = 200;

/// Most body bytes read (the host caps it too).
const MAX_BODY: usize = 1 << 20;

struct HttpFetch;

impl AsyncAgent for HttpFetch {
    async fn run(ctx: JobContext) -> Result<(), String> {
        let room = ctx.room();
        let metadata = ctx.info().metadata;
        if is_url(&metadata) {
            let report = fetch(&metadata).await;
            room.send_text(&text(&report))?;
            return report.map(drop);
        }
        let mut fetches = Vec::new();
        let mut events = room.stream();
        while let Some(event) = events.next().await {
            let RoomEvent::TextReceived(msg) = event else {
                continue;
            };
            if msg.topic != CHAT_TOPIC || !is_url(&msg.text) {
                continue;
            }
            fetches.retain(|task: &agent_host_sdk::Task<()>| !task.is_finished());
            fetches.push(spawn(async move {
                let report = fetch(&msg.text).await;
                if let Err(err) = room.send_text_to(&[&msg.sender], &text(&report)) {
                    warn!("answering {}: {err}", msg.sender);
                }
            }));
        }
        Ok(())
    }
}

agent_host_sdk::export_agent!(async HttpFetch);

fn is_url(text: &str) -> bool {
    let text = text.trim();
    text.starts_with("http://") || text.starts_with("https://")
}

/// What a report says: `"<status> <excerpt>"`, or `"error: <why>"`.
fn text(report: &Result<String, String>) -> String {
    match report {
        Ok(summary) => summary.clone(),
        Err(err) => format!("error: {err}"),
    }
}

/// `GET url`: `"<status> <excerpt>"`, or why it failed.
async fn fetch(url: &str) -> Result<String, String> {
    let url = url.trim();
    let fail = |err: http::Error| format!("fetch {url}: {err}");
    let response = http::get(url)
        .max_body(MAX_BODY)
        .send()
        .await
        .map_err(fail)?;
    let status = response.status();
    let text = response.text().await.map_err(fail)?;
    let excerpt: String = text.chars().take(EXCERPT).collect();
    Ok(format!("{status} {excerpt}"))
}
