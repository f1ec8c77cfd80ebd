//! `agent-host:agent/job`: facts about the job, and asking it to end.
//!
//! [`JobView`] is what the import reaches: the job's info and dispatch (read
//! only) and the power to close its room session, nothing of the session
//! itself. `shutdown` closes the session to the guest at once, as the WIT
//! promises: room actions fail with `closed` from that call on, not only
//! once the guest has read `closed(shutdown-requested)`.

use wasmtime::component::HasData;

use super::room::SessionCloser;
use crate::bindings::agent_host::agent::job::Host;
use crate::bindings::types::{DispatchInfo, JobInfo};
use crate::bounded;

/// What the `job` import reaches.
pub(crate) struct JobView<'a> {
    /// The job as it runs (`job.info`).
    pub(crate) info: &'a JobInfo,
    /// How the job was dispatched (`job.dispatch`).
    pub(crate) dispatch: &'a DispatchInfo,
    /// Closes the job's room session (`job.shutdown`).
    pub(crate) room: SessionCloser<'a>,
}

/// [`HasData`] for the `job` import, whose data is a [`JobView`].
pub(crate) struct JobData;

impl HasData for JobData {
    type Data<'a> = JobView<'a>;
}

impl Host for JobView<'_> {
    async fn info(&mut self) -> wasmtime::Result<JobInfo> {
        Ok(self.info.clone())
    }

    async fn dispatch(&mut self) -> wasmtime::Result<DispatchInfo> {
        Ok(self.dispatch.clone())
    }

    async fn shutdown(&mut self, reason: String) -> wasmtime::Result<()> {
        tracing::info!(reason = %bounded::log_line(&reason), "job asked to shut down");
        self.room.shut_down();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::agent_host::agent::audio::Host as _;
    use crate::bindings::agent_host::agent::room::Host as _;
    use crate::bindings::audio::AudioFormat;
    use crate::bindings::types::{CloseReason, RoomError, RoomEvent};
    use crate::imports::testing::{Joined, job_info, joined};
    use crate::imports::{AudioView, RoomView};

    fn dispatch() -> DispatchInfo {
        DispatchInfo {
            dispatch_id: "AD_test".into(),
            deployment: "staging".into(),
            enable_recording: true,
            enable_redaction: false,
        }
    }

    async fn shut_down(joined: &mut Joined) -> wasmtime::Result<()> {
        let (info, dispatch) = (job_info("shutdown"), dispatch());
        let mut job = JobView {
            info: &info,
            dispatch: &dispatch,
            room: SessionCloser::new(&mut joined.link),
        };
        assert_eq!(job.info().await?, info);
        assert_eq!(job.dispatch().await?, dispatch);
        job.shutdown("done".into()).await
    }

    /// Every room and audio action, each of which must fail with `closed`.
    async fn every_action(joined: &mut Joined) -> wasmtime::Result<Vec<Result<(), RoomError>>> {
        let mut room = RoomView {
            link: &mut joined.link,
            max_payload: 1024,
        };
        let mut results = vec![
            room.publish_data(b"x".to_vec(), None, true, vec![]).await?,
            room.send_text("bye".into(), "lk.chat".into(), vec![])
                .await?,
            room.set_metadata("m".into()).await?,
            room.set_attributes(vec![("k".into(), "v".into())]).await?,
        ];
        let mut track = None;
        let mut audio = AudioView {
            link: &mut joined.link,
            track: &mut track,
            identity: "agent-AJ_test",
            max_payload: 1024,
        };
        let format = AudioFormat {
            sample_rate: 16000,
            channels: 1,
        };
        results.push(audio.subscribe("bob".into(), format).await?);
        results.push(audio.publish("voice".into(), format).await?);
        Ok(results)
    }

    #[tokio::test]
    async fn shutdown_closes_the_room_session_at_once() -> wasmtime::Result<()> {
        let mut joined = joined("shutdown").await;
        shut_down(&mut joined).await?;
        assert_eq!(*joined.end.borrow(), Some(CloseReason::ShutdownRequested));
        // Before the guest has read a single event: closed, and nothing
        // reaches the room.
        for result in every_action(&mut joined).await? {
            assert_eq!(result, Err(RoomError::Closed));
        }
        assert_eq!(joined.next_output(), None);
        let mut room = RoomView {
            link: &mut joined.link,
            max_payload: 1024,
        };
        let closed = Some(RoomEvent::Closed(CloseReason::ShutdownRequested));
        assert_eq!(room.next_event(Some(0)).await?, closed);
        Ok(())
    }

    #[tokio::test]
    async fn a_termination_after_shutdown_does_not_reopen_the_session() -> wasmtime::Result<()> {
        let mut joined = joined("shutdown").await;
        shut_down(&mut joined).await?;
        // What `Terminator::terminate` does: the end becomes `terminated`,
        // which alone would leave the session open for the grace period.
        joined.end.send_replace(Some(CloseReason::Terminated));
        for result in every_action(&mut joined).await? {
            assert_eq!(result, Err(RoomError::Closed));
        }
        assert_eq!(joined.next_output(), None);
        Ok(())
    }
}
