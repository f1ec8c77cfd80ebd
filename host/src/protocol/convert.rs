//! The guest's (WIT) view of what the server sends: offered jobs, how they
//! were dispatched, participants.
//!
//! Policy: every field the WIT has is copied; maps become lists sorted by
//! key (a guest sees the same order every time); a participant kind the
//! WIT does not name is a `connector`.

use std::collections::HashMap;

use livekit_protocol as proto;

use crate::wit;

/// The guest's view of an offered job.
pub(crate) fn job_request(job: &proto::Job) -> wit::JobRequest {
    let room = job.room.clone().unwrap_or_default();
    wit::JobRequest {
        id: job.id.clone(),
        job_type: match job.r#type() {
            proto::JobType::JtRoom => wit::JobType::Room,
            proto::JobType::JtPublisher => wit::JobType::Publisher,
            proto::JobType::JtParticipant => wit::JobType::Participant,
        },
        room: wit::RoomInfo {
            sid: room.sid,
            name: room.name,
            metadata: room.metadata,
        },
        participant: job.participant.as_ref().map(participant),
        agent_name: job.agent_name.clone(),
        metadata: job.metadata.clone(),
        attributes: sorted(&job.attributes),
    }
}

/// The guest's view of how the job was dispatched (`job.dispatch`).
pub(crate) fn dispatch_info(job: &proto::Job) -> wit::DispatchInfo {
    wit::DispatchInfo {
        dispatch_id: job.dispatch_id.clone(),
        deployment: job.deployment.clone(),
        enable_recording: job.enable_recording,
        enable_redaction: job.enable_redaction,
    }
}

/// The guest's view of a participant.
fn participant(p: &proto::ParticipantInfo) -> wit::Participant {
    use proto::participant_info::Kind;
    wit::Participant {
        sid: p.sid.clone(),
        identity: p.identity.clone(),
        name: p.name.clone(),
        metadata: p.metadata.clone(),
        attributes: sorted(&p.attributes),
        kind: match p.kind() {
            Kind::Standard => wit::ParticipantKind::Standard,
            Kind::Ingress => wit::ParticipantKind::Ingress,
            Kind::Egress => wit::ParticipantKind::Egress,
            Kind::Sip => wit::ParticipantKind::Sip,
            Kind::Agent => wit::ParticipantKind::Agent,
            _ => wit::ParticipantKind::Connector,
        },
    }
}

fn sorted(map: &HashMap<String, String>) -> Vec<(String, String)> {
    let mut pairs: Vec<_> = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    pairs.sort();
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offer_becomes_the_guests_job_request() {
        let job = proto::Job {
            id: "AJ_1".into(),
            r#type: proto::JobType::JtPublisher as i32,
            room: Some(proto::Room {
                sid: "RM_1".into(),
                name: "room".into(),
                metadata: "rm".into(),
                ..Default::default()
            }),
            participant: Some(proto::ParticipantInfo {
                identity: "alice".into(),
                kind: proto::participant_info::Kind::Sip as i32,
                attributes: HashMap::from([("b".into(), "2".into()), ("a".into(), "1".into())]),
                ..Default::default()
            }),
            agent_name: "agent".into(),
            metadata: "meta".into(),
            attributes: HashMap::from([("z".into(), "26".into()), ("y".into(), "25".into())]),
            ..Default::default()
        };
        let request = job_request(&job);
        assert_eq!(request.id, "AJ_1");
        assert!(matches!(request.job_type, wit::JobType::Publisher));
        assert_eq!(
            (request.room.sid.as_str(), request.room.name.as_str()),
            ("RM_1", "room")
        );
        let alice = request.participant.unwrap();
        assert_eq!(alice.identity, "alice");
        assert!(matches!(alice.kind, wit::ParticipantKind::Sip));
        assert_eq!(
            alice.attributes,
            [("a".into(), "1".into()), ("b".into(), "2".into())]
        );
        assert_eq!(
            request.attributes,
            [("y".into(), "25".into()), ("z".into(), "26".into())]
        );
    }
}
