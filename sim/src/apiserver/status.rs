//! Errors as the Kubernetes API server reports them: a `metav1.Status` with code, reason, message
//! and details.

use serde_json::{Value, json};

use super::resource::Resource;
use super::validation::{FieldError, invalid_message};

/// The `reason` of a failed request, which fixes its HTTP code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// 400: the request could not be understood (broken JSON, wrong kind, bad selector).
    BadRequest,
    /// 401: the bearer token is missing or wrong.
    Unauthorized,
    /// 403: the request is understood and refused.
    Forbidden,
    /// 404: the object, its namespace, or the path does not exist.
    NotFound,
    /// 405: the verb is not served on this path.
    MethodNotAllowed,
    /// 406: none of the media types in `Accept` can be produced.
    NotAcceptable,
    /// 409: create of a name that exists.
    AlreadyExists,
    /// 409: a precondition (resourceVersion, uid) did not hold.
    Conflict,
    /// 410: the resourceVersion asked for has been compacted away.
    Expired,
    /// 413: the request body is over the server's limit.
    RequestEntityTooLarge,
    /// 415: the body's content type is not one this verb accepts.
    UnsupportedMediaType,
    /// 422: the object failed validation.
    Invalid,
    /// 429: the client is being throttled; `Retry-After` says when to come back.
    TooManyRequests,
    /// 500: the server failed (injected, or an etcd error).
    InternalError,
    /// 503: the server is unavailable (injected).
    ServiceUnavailable,
    /// 504: the request did not complete in time (injected).
    Timeout,
}

impl Reason {
    /// The HTTP status code that goes with the reason.
    pub fn code(self) -> u16 {
        match self {
            Reason::BadRequest => 400,
            Reason::Unauthorized => 401,
            Reason::Forbidden => 403,
            Reason::NotFound => 404,
            Reason::MethodNotAllowed => 405,
            Reason::NotAcceptable => 406,
            Reason::AlreadyExists | Reason::Conflict => 409,
            Reason::Expired => 410,
            Reason::RequestEntityTooLarge => 413,
            Reason::UnsupportedMediaType => 415,
            Reason::Invalid => 422,
            Reason::TooManyRequests => 429,
            Reason::InternalError => 500,
            Reason::ServiceUnavailable => 503,
            Reason::Timeout => 504,
        }
    }

    /// The `reason` string of the Status (`Conflict`).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::BadRequest => "BadRequest",
            Reason::Unauthorized => "Unauthorized",
            Reason::Forbidden => "Forbidden",
            Reason::NotFound => "NotFound",
            Reason::MethodNotAllowed => "MethodNotAllowed",
            Reason::NotAcceptable => "NotAcceptable",
            Reason::AlreadyExists => "AlreadyExists",
            Reason::Conflict => "Conflict",
            Reason::Expired => "Expired",
            Reason::RequestEntityTooLarge => "RequestEntityTooLarge",
            Reason::UnsupportedMediaType => "UnsupportedMediaType",
            Reason::Invalid => "Invalid",
            Reason::TooManyRequests => "TooManyRequests",
            Reason::InternalError => "InternalError",
            Reason::ServiceUnavailable => "ServiceUnavailable",
            Reason::Timeout => "Timeout",
        }
    }
}

/// A failed request: everything needed to render the `Status` a real API server would send.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message} ({})", reason.as_str())]
pub struct ApiError {
    /// Why the request failed; fixes the HTTP code.
    pub reason: Reason,
    /// The human-readable message, worded as kube-apiserver words it.
    pub message: String,
    /// `details` of the Status, if any (name, group, kind, causes, retryAfterSeconds).
    pub details: Option<Value>,
    /// Seconds for a `Retry-After` header (429 and some 5xx).
    pub retry_after_seconds: Option<u32>,
}

fn object_details(resource: Resource, name: &str) -> Value {
    let mut details = json!({ "name": name });
    if !resource.group().is_empty() {
        details["group"] = json!(resource.group());
    }
    details["kind"] = json!(resource.plural());
    details
}

impl ApiError {
    /// An error with a reason and message and no details.
    pub fn new(reason: Reason, message: impl Into<String>) -> ApiError {
        ApiError {
            reason,
            message: message.into(),
            details: None,
            retry_after_seconds: None,
        }
    }

    /// 400 with a message.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(Reason::BadRequest, message)
    }

    /// 404 for a named object: `configmaps "x" not found`.
    pub fn not_found(resource: Resource, name: &str) -> ApiError {
        ApiError {
            details: Some(object_details(resource, name)),
            ..ApiError::new(
                Reason::NotFound,
                format!("{} \"{name}\" not found", resource.qualified_plural()),
            )
        }
    }

    /// 404 for a path the server does not serve.
    pub fn path_not_found() -> ApiError {
        ApiError {
            details: Some(json!({})),
            ..ApiError::new(
                Reason::NotFound,
                "the server could not find the requested resource",
            )
        }
    }

    /// 409 for a create whose name is taken: `configmaps "x" already exists`.
    pub fn already_exists(resource: Resource, name: &str) -> ApiError {
        ApiError {
            details: Some(object_details(resource, name)),
            ..ApiError::new(
                Reason::AlreadyExists,
                format!("{} \"{name}\" already exists", resource.qualified_plural()),
            )
        }
    }

    /// 409 for a failed compare-and-swap, with the real message.
    pub fn conflict(resource: Resource, name: &str) -> ApiError {
        ApiError::conflict_with(
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 409 for a failed precondition with a specific cause.
    pub fn conflict_with(resource: Resource, name: &str, cause: &str) -> ApiError {
        ApiError {
            details: Some(object_details(resource, name)),
            ..ApiError::new(
                Reason::Conflict,
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": {cause}",
                    resource.qualified_plural()
                ),
            )
        }
    }

    /// 422 for an object that failed validation; `causes` must not be empty.
    pub fn invalid(resource: Resource, name: &str, causes: &[FieldError]) -> ApiError {
        ApiError::invalid_kind(
            resource.group(),
            resource.kind(),
            &resource.qualified_kind(),
            name,
            causes,
        )
    }

    /// 422 for a request's options (`ListOptions`, `CreateOptions`, ...), as
    /// `ListOptions.meta.k8s.io "" is invalid: ...`.
    pub fn invalid_options(kind: &str, causes: &[FieldError]) -> ApiError {
        ApiError::invalid_kind(
            "meta.k8s.io",
            kind,
            &format!("{kind}.meta.k8s.io"),
            "",
            causes,
        )
    }

    fn invalid_kind(
        group: &str,
        kind: &str,
        qualified_kind: &str,
        name: &str,
        causes: &[FieldError],
    ) -> ApiError {
        assert!(
            !causes.is_empty(),
            "an Invalid error needs at least one cause"
        );
        let mut details = json!({ "name": name });
        if !group.is_empty() {
            details["group"] = json!(group);
        }
        details["kind"] = json!(kind);
        details["causes"] = causes
            .iter()
            .map(|c| json!({ "reason": c.reason, "message": c.message, "field": c.field }))
            .collect();
        ApiError {
            details: Some(details),
            ..ApiError::new(
                Reason::Invalid,
                invalid_message(qualified_kind, name, causes),
            )
        }
    }

    /// 410 for a watch or list from a compacted resourceVersion.
    pub fn expired(requested: u64, oldest: u64) -> ApiError {
        ApiError::new(
            Reason::Expired,
            format!("too old resource version: {requested} ({oldest})"),
        )
    }

    /// 429 with `Retry-After`.
    pub fn too_many_requests(retry_after_seconds: u32) -> ApiError {
        ApiError {
            details: Some(json!({ "retryAfterSeconds": retry_after_seconds })),
            retry_after_seconds: Some(retry_after_seconds),
            ..ApiError::new(
                Reason::TooManyRequests,
                "Too many requests, please try again later.",
            )
        }
    }

    /// 500 with a cause, worded like the server's `InternalError`.
    pub fn internal(cause: &str) -> ApiError {
        ApiError {
            details: Some(json!({ "causes": [{ "message": cause }] })),
            ..ApiError::new(
                Reason::InternalError,
                format!("Internal error occurred: {cause}"),
            )
        }
    }

    /// 503.
    pub fn service_unavailable() -> ApiError {
        ApiError {
            retry_after_seconds: Some(1),
            ..ApiError::new(
                Reason::ServiceUnavailable,
                "the server is currently unable to handle the request",
            )
        }
    }

    /// 504, as the server's request timeout filter words it.
    pub fn timeout() -> ApiError {
        ApiError::new(
            Reason::Timeout,
            "Timeout: request did not complete within requested timeout - context deadline exceeded",
        )
    }

    /// 401.
    pub fn unauthorized() -> ApiError {
        ApiError::new(Reason::Unauthorized, "Unauthorized")
    }

    /// 405.
    pub fn method_not_allowed() -> ApiError {
        ApiError::new(
            Reason::MethodNotAllowed,
            "the server does not allow this method on the requested resource",
        )
    }

    /// 413, with the limit the server enforces.
    pub fn too_large(limit_bytes: usize) -> ApiError {
        ApiError::new(
            Reason::RequestEntityTooLarge,
            format!("Request entity too large: limit is {limit_bytes}"),
        )
    }

    /// 415 naming what the verb accepts.
    pub fn unsupported_media_type(content_type: &str, accepted: &[&str]) -> ApiError {
        ApiError::new(
            Reason::UnsupportedMediaType,
            format!(
                "the body of the request was in an unknown format ({content_type:?}) - accepted media types include: {}",
                accepted.join(", ")
            ),
        )
    }

    /// The HTTP status code.
    pub fn code(&self) -> u16 {
        self.reason.code()
    }

    /// Whether this is a 409 Conflict (a failed compare-and-swap).
    pub fn is_conflict(&self) -> bool {
        self.reason == Reason::Conflict
    }

    /// Whether this is a 404.
    pub fn is_not_found(&self) -> bool {
        self.reason == Reason::NotFound
    }

    /// The `metav1.Status` body.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason.as_str(),
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status["code"] = json!(self.code());
        status
    }
}

/// The `Status` a successful delete returns for kinds that do not return the object.
pub fn delete_success(resource: Resource, name: &str, uid: &str) -> Value {
    let mut details = object_details(resource, name);
    details["uid"] = json!(uid);
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_has_the_real_message_and_details() {
        let status = ApiError::conflict(Resource::ConfigMap, "x").to_status();
        assert_eq!(
            status["message"],
            "Operation cannot be fulfilled on configmaps \"x\": the object has been modified; please apply your changes to the latest version and try again"
        );
        assert_eq!(status["code"], 409);
        assert_eq!(status["reason"], "Conflict");
        assert_eq!(
            status["details"],
            json!({"name": "x", "kind": "configmaps"})
        );
    }

    #[test]
    fn not_found_names_the_group() {
        let status = ApiError::not_found(Resource::Lease, "l").to_status();
        assert_eq!(
            status["message"],
            "leases.coordination.k8s.io \"l\" not found"
        );
        assert_eq!(
            status["details"],
            json!({"name": "l", "group": "coordination.k8s.io", "kind": "leases"})
        );
        assert_eq!(status["code"], 404);
    }

    #[test]
    fn reasons_map_to_their_codes() {
        assert_eq!(ApiError::too_many_requests(1).code(), 429);
        assert_eq!(ApiError::expired(1, 5).code(), 410);
        assert_eq!(ApiError::timeout().code(), 504);
        assert!(ApiError::conflict(Resource::Lease, "a").is_conflict());
        assert!(!ApiError::already_exists(Resource::Lease, "a").is_conflict());
    }
}
