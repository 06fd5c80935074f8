//! Engine errors as gRPC statuses, by the engine's [`ErrorKind`].

use barge_engine::{Error, ErrorKind};
use tonic::Status;

pub type CriResult<T> = Result<T, Status>;

/// The gRPC status for an engine error: NotFound, AlreadyExists (a name in use),
/// FailedPrecondition (wrong state), InvalidArgument, Unavailable, Unauthenticated, Internal.
pub fn from_engine(e: Error) -> Status {
    let msg = e.to_string();
    match (&e, e.kind()) {
        (Error::BadState { .. }, _) => Status::failed_precondition(msg),
        (_, ErrorKind::NotFound) => Status::not_found(msg),
        (_, ErrorKind::Conflict) => Status::already_exists(msg),
        (_, ErrorKind::BadParameter) => Status::invalid_argument(msg),
        (_, ErrorKind::Unavailable) => Status::unavailable(msg),
        (_, ErrorKind::Unauthorized) => Status::unauthenticated(msg),
        (_, ErrorKind::NotExecutable | ErrorKind::ProgramNotFound) => {
            Status::failed_precondition(msg)
        }
        (_, ErrorKind::Internal) => Status::internal(msg),
    }
}

/// Shorthand: an engine result with its error as a status.
pub fn engine<T>(r: barge_engine::Result<T>) -> CriResult<T> {
    r.map_err(from_engine)
}

/// Whether an engine error means "no such object".
pub fn is_not_found(e: &Error) -> bool {
    e.kind() == ErrorKind::NotFound
}

pub fn image_error(e: barge_image::Error) -> Status {
    from_engine(Error::Image(e))
}
