//! Requests between the nodes of a cluster: a forwarded request is served only with the
//! cluster's secret.

use std::net::IpAddr;

use dormouse_runtime::placement::{
    ADOPT_SOCKET_HEADER, CLUSTER_SECRET_HEADER, FORWARDED_OBJECT_HEADER,
};
use dormouse_sdk::{Response, response};
use dormouse_ws::relay::Relay;

use crate::admin::auth::same_secret;
use http::{HeaderMap, StatusCode};

/// A request that says it comes from a peer, for this object.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ForwardedTo {
    pub(crate) binding: String,
    pub(crate) id: String,
    /// The socket to adopt, when the request asks for that rather than for the object's
    /// `fetch`.
    pub(crate) adopt: Option<Adopt>,
}

/// A relayed socket to adopt: its tags and attachment, as its previous owner reported them.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Adopt {
    pub(crate) tags: Vec<String>,
    pub(crate) attachment: Option<Vec<u8>>,
}

/// Why a request that says it was forwarded is not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    /// It does not carry the cluster's secret.
    #[error(
        "Unauthorized: a forwarded request must carry the cluster secret in {CLUSTER_SECRET_HEADER}"
    )]
    NoSecret,
    /// Its object header is not `binding/id`.
    #[error("{FORWARDED_OBJECT_HEADER} must be binding/id")]
    Malformed,
    /// Its socket to adopt is not a relay state message in base64.
    #[error("{ADOPT_SOCKET_HEADER} must be a relay state message in base64")]
    MalformedAdopt,
}

impl Refusal {
    /// The answer to the request.
    pub(crate) fn response(self) -> Response {
        let status = match self {
            Refusal::NoSecret => StatusCode::UNAUTHORIZED,
            Refusal::Malformed | Refusal::MalformedAdopt => StatusCode::BAD_REQUEST,
        };
        response::text(status, self.to_string())
    }
}

/// Reads a forwarded request's object and checks its secret (a refusal for want of it is
/// logged). `Ok(None)`: not a forwarded request.
pub(crate) fn forwarded_to(
    headers: &HeaderMap,
    secret: Option<&str>,
    from: IpAddr,
) -> Result<Option<ForwardedTo>, Refusal> {
    let Some(object) = headers.get(FORWARDED_OBJECT_HEADER) else {
        return Ok(None);
    };
    // Without a secret this node is not in a cluster: the header means nothing here.
    let Some(secret) = secret else {
        return Ok(None);
    };
    let offered = headers
        .get(CLUSTER_SECRET_HEADER)
        .map(|value| value.as_bytes())
        .unwrap_or_default();
    if !same_secret(offered, secret.as_bytes()) {
        tracing::warn!(%from, "refused a forwarded request without the cluster secret");
        return Err(Refusal::NoSecret);
    }
    let parsed = object
        .to_str()
        .ok()
        .and_then(|object| object.split_once('/'))
        .map(|(binding, id)| ForwardedTo {
            binding: binding.to_owned(),
            id: id.to_owned(),
            adopt: None,
        });
    let mut target = parsed.ok_or(Refusal::Malformed)?;
    if let Some(state) = headers.get(ADOPT_SOCKET_HEADER) {
        target.adopt = Some(adopt(state.as_bytes()).ok_or(Refusal::MalformedAdopt)?);
    }
    Ok(Some(target))
}

/// The socket an adoption request describes.
fn adopt(header: &[u8]) -> Option<Adopt> {
    use base64::Engine as _;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(header)
        .ok()?;
    match Relay::decode(&payload).ok()? {
        Relay::State { tags, attachment } => Some(Adopt { tags, attachment }),
        Relay::Moved => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, value.parse().unwrap());
        }
        headers
    }

    const FROM: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn a_forwarded_request_needs_the_secret() {
        let object = (FORWARDED_OBJECT_HEADER, "COUNTER/ab");
        let target = forwarded_to(
            &headers(&[object, (CLUSTER_SECRET_HEADER, "s3cret")]),
            Some("s3cret"),
            FROM,
        );
        assert_eq!(
            target.unwrap(),
            Some(ForwardedTo {
                binding: "COUNTER".into(),
                id: "ab".into(),
                adopt: None,
            })
        );
        for wrong in [
            headers(&[object]),
            headers(&[object, (CLUSTER_SECRET_HEADER, "s3creT")]),
            headers(&[object, (CLUSTER_SECRET_HEADER, "s3cret!")]),
        ] {
            let refused = forwarded_to(&wrong, Some("s3cret"), FROM).unwrap_err();
            assert_eq!(refused, Refusal::NoSecret);
            assert_eq!(refused.response().status(), StatusCode::UNAUTHORIZED);
        }
    }

    #[test]
    fn without_a_cluster_the_header_means_nothing() {
        let plain = headers(&[(FORWARDED_OBJECT_HEADER, "COUNTER/ab")]);
        assert_eq!(forwarded_to(&plain, None, FROM).unwrap(), None);
        assert_eq!(
            forwarded_to(&HeaderMap::new(), Some("s"), FROM).unwrap(),
            None
        );
    }

    #[test]
    fn an_adoption_carries_the_sockets_state() {
        use base64::Engine as _;
        let state = Relay::State {
            tags: vec!["room".into()],
            attachment: Some(vec![1, 2]),
        };
        let encoded = base64::engine::general_purpose::STANDARD.encode(state.encode());
        let adoption = headers(&[
            (FORWARDED_OBJECT_HEADER, "ROOMS/ab"),
            (CLUSTER_SECRET_HEADER, "s"),
            (ADOPT_SOCKET_HEADER, &encoded),
        ]);
        let target = forwarded_to(&adoption, Some("s"), FROM).unwrap().unwrap();
        assert_eq!(
            target.adopt,
            Some(Adopt {
                tags: vec!["room".into()],
                attachment: Some(vec![1, 2])
            })
        );
        let garbage = headers(&[
            (FORWARDED_OBJECT_HEADER, "ROOMS/ab"),
            (CLUSTER_SECRET_HEADER, "s"),
            (ADOPT_SOCKET_HEADER, "!!"),
        ]);
        assert_eq!(
            forwarded_to(&garbage, Some("s"), FROM).unwrap_err(),
            Refusal::MalformedAdopt
        );
    }

    #[test]
    fn a_malformed_object_is_a_bad_request() {
        let bad = headers(&[
            (FORWARDED_OBJECT_HEADER, "no-slash"),
            (CLUSTER_SECRET_HEADER, "s"),
        ]);
        let refused = forwarded_to(&bad, Some("s"), FROM).unwrap_err();
        assert_eq!(refused.response().status(), StatusCode::BAD_REQUEST);
    }
}
