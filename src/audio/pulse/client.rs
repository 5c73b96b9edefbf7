//! Connecting to the PulseAudio server and the requests that set a stream up, each waiting for
//! its reply; and the errors a connection meets, as cpal errors.
//!
//! Only stream setup waits here (within its timeout); the pump never calls in.

use std::io::BufReader;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use cpal::{Error, ErrorKind};
use pulseaudio::protocol;

/// Connects and authenticates; the socket has `timeout` on reads and writes until the stream
/// is set up.
pub(super) fn connect(timeout: Duration) -> Result<(UnixStream, u16), Error> {
    let path = pulseaudio::socket_path_from_env().ok_or_else(|| {
        Error::with_message(
            ErrorKind::HostUnavailable,
            "no PulseAudio server socket (PULSE_SERVER, XDG_RUNTIME_DIR/pulse/native)",
        )
    })?;
    let socket = UnixStream::connect(&path).map_err(|e| {
        Error::with_message(
            ErrorKind::HostUnavailable,
            format!("cannot connect to PulseAudio at {}: {e}", path.display()),
        )
    })?;
    socket.set_read_timeout(Some(timeout)).map_err(io_error)?;
    socket.set_write_timeout(Some(timeout)).map_err(io_error)?;
    let mut reader = BufReader::new(socket.try_clone().map_err(io_error)?);
    let mut writer = socket;

    let cookie = pulseaudio::cookie_path_from_env()
        .and_then(|p| std::fs::read(p).ok())
        .unwrap_or_default();
    let auth = protocol::AuthParams {
        version: protocol::MAX_VERSION,
        supports_shm: false,
        supports_memfd: false,
        cookie,
    };
    let reply: protocol::AuthReply = request(
        &mut writer,
        &mut reader,
        (0, protocol::MAX_VERSION),
        &protocol::Command::Auth(auth),
        "authenticating",
        || {
            (
                ErrorKind::PermissionDenied,
                "PulseAudio refused Booth's connection".to_owned(),
            )
        },
    )?;
    let version = reply.version.min(protocol::MAX_VERSION);

    let mut props = protocol::Props::new();
    props.set(protocol::Prop::ApplicationName, c"Booth");
    let _: protocol::SetClientNameReply = request(
        &mut writer,
        &mut reader,
        (1, version),
        &protocol::Command::SetClientName(props),
        "naming the client",
        || {
            (
                ErrorKind::DeviceNotAvailable,
                "PulseAudio refused Booth's name".to_owned(),
            )
        },
    )?;
    // Nothing is buffered past the replies: the server says nothing unasked before a stream.
    Ok((writer, version))
}

/// Sends `command` (sequence number and protocol version in `seq_version`) and reads its reply.
/// A refusal from the server becomes the error `refused` describes, with the server's code.
pub(super) fn request<R: protocol::CommandReply>(
    writer: &mut UnixStream,
    reader: &mut BufReader<UnixStream>,
    (seq, version): (u32, u16),
    command: &protocol::Command,
    doing: &str,
    refused: impl FnOnce() -> (ErrorKind, String),
) -> Result<R, Error> {
    protocol::write_command_message(writer, seq, command, version)
        .map_err(|e| protocol_error(doing, &e))?;
    match protocol::read_reply_message::<R>(reader, version) {
        Ok((_, reply)) => Ok(reply),
        Err(protocol::ProtocolError::ServerError(code)) => {
            let (kind, what) = refused();
            Err(Error::with_message(kind, format!("{what}: {code:?}")))
        }
        Err(other) => Err(protocol_error(doing, &other)),
    }
}

pub(super) fn io_error(e: std::io::Error) -> Error {
    Error::with_message(
        ErrorKind::BackendError,
        format!("PulseAudio connection: {e}"),
    )
}

pub(super) fn protocol_error(doing: &str, e: &protocol::ProtocolError) -> Error {
    Error::with_message(
        ErrorKind::DeviceNotAvailable,
        format!("PulseAudio failed while {doing}: {e}"),
    )
}

pub(super) fn lost_connection(e: &dyn std::fmt::Display) -> Error {
    Error::with_message(
        ErrorKind::HostUnavailable,
        format!("the PulseAudio connection closed: {e}"),
    )
}
